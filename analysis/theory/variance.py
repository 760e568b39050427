"""Lemma 2: Var[ḡ_B] ≤ C / B for the scorer gradient averaged over B independent Hard-Concrete noise draws.

A real model (a retention checkpoint, or the offline MiniLM with fresh retention) and a real batch of
SST-2 validation sentences; N single-draw gradients of the task loss w.r.t. the scorer parameters
(model and batch fixed, only the gate noise varies); for each B, the N draws are split into N/B
disjoint groups and the total variance (trace of the covariance) of the group means is estimated.
Fit log Var against log B: slope (expected −1; averaged over random regroupings of the draws) with its 95 % interval,
and C = Var at B = 1. The interval is a
bootstrap over the N draws (resampled with replacement, every group variance and the slope recomputed): the points of
the fit share their draws and the large-B points rest on few groups, so the least-squares standard error (which
assumes independent, equally noisy points) is too narrow — it made the verdict flip between seeds.
For independent draws Var[ḡ_B] = Var[g]/B is an identity, so what this adds is C itself and the
signal-to-noise ratio ‖E g‖² / C: the number of draws one step needs before the mean dominates.

  python -m analysis.theory.variance --out results/theory/variance.json [--checkpoint RUN/model]
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

from adaptive_retention.io import save_figure

from .common import parser, write_verdict


def load(checkpoint: str | None, ratio: float):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from adaptive_retention.backbones import resolve_model_path
    from adaptive_retention.checkpoint import load_checkpoint
    from adaptive_retention.config import RetentionConfig
    from adaptive_retention.modeling import apply_retention

    if checkpoint:
        model, tok, run = load_checkpoint(checkpoint)
        return model, tok, f"checkpoint {checkpoint} (task {run['task']})"
    path = resolve_model_path("minilm")
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    apply_retention(model, RetentionConfig(ratio=ratio), tok.all_special_ids)
    return model, tok, f"all-MiniLM-L6-v2 with fresh retention at ratio {ratio}"


def single_draw_grads(model, batch, labels, n: int, seed: int) -> torch.Tensor:
    """(n, P) gradients of the task loss w.r.t. the scorer parameters, one noise draw each."""
    from adaptive_retention.modeling import retention_of

    params = list(retention_of(model).scorers.parameters())
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    model.train()
    for m in model.modules():  # only the gate noise varies: no dropout
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    torch.manual_seed(seed)
    out = []
    for _ in range(n):
        loss = model(**batch, labels=labels).loss
        out.append(torch.cat([g.flatten() for g in torch.autograd.grad(loss, params)]))
    return torch.stack(out)


def gram(grads: torch.Tensor) -> torch.Tensor:
    """(N, N) inner products of the N draws, in float64: every group variance below is a quadratic form in it, so the
    ~1,200 regroupings and resamples cost (N × N) work each instead of (N × P) (P = 74k scorer parameters for MiniLM:
    the bootstrap on the draws themselves took three minutes per seed)."""
    g = grads.double()
    return g @ g.T


def reorder(G: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """The Gram matrix of the draws grads[index]."""
    return G[index][:, index]


def group_variance(G: torch.Tensor, B: int) -> float:
    """Total variance of the mean of B draws, from the disjoint groups of the N draws, given their Gram matrix G.
    With A (n × N) averaging each group and H = I − 1/n centering the n group means, it is tr(H A G Aᵀ H) / (n − 1)."""
    n = len(G) // B
    A = torch.kron(torch.eye(n, dtype=G.dtype), torch.full((1, B), 1.0 / B, dtype=G.dtype))  # (n, n·B)
    HA = A - A.mean(0, keepdim=True)  # H A
    return float(torch.trace(HA @ G[: n * B, : n * B] @ HA.T) / (n - 1))


def slope(G: torch.Tensor, Bs: list[int]) -> float:
    """Least-squares slope of log Var[ḡ_B] against log B."""
    from scipy import stats

    return float(stats.linregress([math.log(b) for b in Bs], [math.log(group_variance(G, B)) for B in Bs]).slope)


def regrouped_slope(G: torch.Tensor, Bs: list[int], n: int = 200, seed: int = 0) -> float:
    """The slope averaged over `n` random orders of the draws (each a valid disjoint grouping): one fixed grouping is a
    noise source of its own (fresh MiniLM, seed 1: −0.75 in draw order, outside its own bootstrap interval
    [−1.20, −0.82], which regroups every resample)."""
    g = torch.Generator().manual_seed(seed)
    return sum(slope(reorder(G, torch.randperm(len(G), generator=g)), Bs) for _ in range(n)) / n


def bootstrap_slopes(G: torch.Tensor, Bs: list[int], n: int = 1000, seed: int = 0) -> torch.Tensor:
    """Slopes over `n` resamples of the draws with replacement (each resample grouped afresh in its drawn order)."""
    g = torch.Generator().manual_seed(seed)
    return torch.tensor([slope(reorder(G, torch.randint(0, len(G), (len(G),), generator=g)), Bs) for _ in range(n)])


def main(argv=None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--checkpoint")
    ap.add_argument("--ratio", type=float, default=0.3)
    ap.add_argument("--draws", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--data-dir", default="../shared/data")
    args = ap.parse_args(argv)
    from scipy import stats

    from adaptive_retention.data import load_examples

    torch.manual_seed(args.seed)  # a fresh model's classifier head and scorers are drawn here: reruns must be identical
    model, tok, what = load(args.checkpoint, args.ratio)
    examples = load_examples("sst2", "eval", data_dir=args.data_dir, size=args.batch_size, seed=args.seed).examples
    batch = tok([e["text"] for e in examples], padding=True, truncation=True, max_length=64, return_tensors="pt")
    labels = torch.tensor([e["label"] for e in examples])
    grads = single_draw_grads(model, batch, labels, args.draws, args.seed)
    G = gram(grads)
    Bs = [2 ** i for i in range(int(math.log2(args.draws // 8)) + 1)]  # at least 8 groups per B
    var = [group_variance(G, B) for B in Bs]
    fit = stats.linregress([math.log(b) for b in Bs], [math.log(v) for v in var])
    estimate = regrouped_slope(G, Bs, seed=args.seed)
    boot = bootstrap_slopes(G, Bs, seed=args.seed)
    low, high = (float(q) for q in torch.quantile(boot, torch.tensor([0.025, 0.975], dtype=boot.dtype)))
    C = var[0]
    snr = float(grads.mean(0).pow(2).sum()) / C

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.loglog(Bs, var, "o", label="measured Var[ḡ_B] (disjoint groups)")
    ax.loglog(Bs, [C / b for b in Bs], "--", label="C / B")
    ax.set_xlabel("noise draws averaged, B")
    ax.set_ylabel("total variance of the scorer gradient")
    ax.set_title(f"Lemma 2: slope {estimate:.2f} [{low:.2f}, {high:.2f}], {args.draws} draws", fontsize=9)
    ax.legend(fontsize=8)
    save_figure(fig, Path(args.out).with_suffix(".png"))
    holds = low <= -1 <= high
    close = abs(estimate + 1) <= 0.1
    print(f"slope {estimate:.3f} [{low:.3f}, {high:.3f}] (draw order: {fit.slope:.3f}), C = {C:.3e}, SNR at B=1 = {snr:.3f}")
    write_verdict(args.out, "Lemma 2: Var[ḡ_B] ≤ C / B for the gradient averaged over B noise draws",
                  f"{args.draws} single-draw scorer gradients on {what}, a batch of {args.batch_size} SST-2 validation sentences; "
                  f"variance of disjoint group means for B ∈ {Bs}; log-log least squares; 95 % interval: bootstrap over the "
                  f"draws ({len(boot)} resamples)",
                  {"B": Bs, "variance": var, "slope": estimate, "slope_ci95": [low, high], "slope_draw_order": fit.slope, "slope_ci95_ols": [
                      fit.slope - (h := stats.t.ppf(0.975, len(Bs) - 2) * fit.stderr), fit.slope + h], "C": C,
                   "snr_at_B1": snr, "draws_for_snr_1": (1 / snr) if snr > 0 else None, "n_parameters": grads.shape[1]},
                  "holds" if holds else ("holds approximately" if close else "does not hold"),
                  f"slope {estimate:.2f} (95 % bootstrap CI [{low:.2f}, {high:.2f}]) vs −1; "
                  f"signal-to-noise ‖E g‖²/C = {snr:.3f} at B = 1", [args.seed])
    return 0


if __name__ == "__main__":
    sys.exit(main())
