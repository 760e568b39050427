"""Latency, throughput, peak memory and FLOPs of the plain model against retained copies, in one process.

Timings on a shared CPU drift by tens of percent between runs, so the variants are timed in
alternation (one batch each, round after round) and compared by their medians. Two modes:
- `inference`: a forward pass under `torch.inference_mode`.
- `train_step`: forward + backward + AdamW step (lr 0, so repeats are identical). Retained variants
  drop tokens physically here too: the retention module runs its top-M selection (scorers frozen)
  while the backbone trains — fine-tuning at a fixed budget. `soft@ρ` and `sparse@ρ` are the method's own
  Lagrangian phase instead, its gates in their end-of-training state (P(z̃>0) = ρ): `soft@ρ` keeps every token at
  full length, masked (`train_gather: false`), which saves nothing; `sparse@ρ` drops the tokens whose gates are
  exactly 0 (`train_gather: true`).

Peak memory excludes the weights: on CUDA, `max_memory_allocated` after a reset minus what was
allocated before the step; on CPU, the peak of everything that is not a parameter or buffer, as
`torch.distributed._tools.mem_tracker.MemTracker` (a TorchDispatchMode) categorises it —
activations, temporaries, gradients and optimiser state.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
import warnings
from contextlib import nullcontext
from dataclasses import replace
from typing import Callable

import torch
from torch import nn

from .baselines import selector_for
from .config import BENCH_MODES as MODES
from .config import RetentionConfig
from .flops import encoder_flops, measured_flops
from .methods import BASELINES as SELECTORS
from .methods import METHODS
from .modeling import apply_retention, retention_of


def synthetic_batch(vocab_size: int, batch_size: int, seq_len: int, cls_id: int, sep_id: int, seed: int = 0,
                    special_ids=()) -> dict:
    """Full-length token ids (no padding) framed by [CLS] … [SEP], with no special id inside (those are
    always kept and would change the budget): cost does not depend on the words."""
    g = torch.Generator().manual_seed(seed)
    low = 1000 if vocab_size > 2000 else 0  # BERT-style vocabularies keep their special and unused ids below 1000
    ids = torch.randint(low, vocab_size, (batch_size, seq_len), generator=g)
    special = torch.tensor(sorted({cls_id, sep_id, *special_ids}))
    filler = next(i for i in range(low, vocab_size) if i not in special)
    ids = torch.where(torch.isin(ids, special), filler, ids)
    ids[:, 0], ids[:, -1] = cls_id, sep_id
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_variants(model: nn.Module, special_token_ids: list[int], ratios: list[float], selectors=SELECTORS,
                   base_config: RetentionConfig | None = None) -> dict[str, nn.Module]:
    """plain, plain-copy (the noise floor of one run), learned@ρ and each baseline selector @ρ (ratios < 1); a baseline
    variant is a retention copy whose scores `make_step` replaces by the baseline's selector."""
    base_config = base_config or RetentionConfig()
    out = {"plain": model, "plain-copy": copy.deepcopy(model)}
    for r in ratios:
        cfg = replace(base_config, ratio=r)
        out[f"learned@{r}"] = apply_retention(copy.deepcopy(model), cfg, special_token_ids)
        for name in selectors if r < 1.0 else ():
            out[f"{name}@{r}"] = apply_retention(copy.deepcopy(model), cfg, special_token_ids)
    return out


LAGRANGIAN = {"soft": False, "sparse": True}  # training variant -> its train_gather


def lagrangian_variant(model: nn.Module, special_token_ids: list[int], ratio: float, base_config: RetentionConfig,
                       gather: bool) -> nn.Module:
    """A retention copy in the Lagrangian phase's end state for ρ: each scorer's output bias at the log α where
    P(z̃ > 0) is its layer's share ρ_l / ρ_(l−1), so the sampled gates drop what a trained model drops."""
    copy_ = apply_retention(copy.deepcopy(model), replace(base_config, ratio=ratio, train_gather=gather), special_token_ids)
    retention, kept = retention_of(copy_), 1.0
    for b in retention.boundaries:
        output = [m for m in retention.scorers[str(b)].modules() if isinstance(m, nn.Linear)][-1]
        nn.init.constant_(output.bias, retention.gate.log_alpha_for(retention.ratios[b] / kept))
        kept = retention.ratios[b]
    return copy_


def make_step(model: nn.Module, batch: dict, mode: str, soft: bool = False, selector=None) -> tuple[Callable[[], None], torch.optim.Optimizer | None]:
    """A closure running one batch in `mode` (and the optimiser it steps, for memory tracking); `selector` replaces
    the learned scores during the step (a baseline)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; allowed: {list(MODES)}")
    selecting = (lambda: retention_of(model).selecting(selector)) if selector is not None else nullcontext
    if mode == "inference":
        model.eval()

        def infer():
            with torch.inference_mode(), selecting():
                model(**batch)
        return infer, None
    model.train()
    if hasattr(model.base_model, "retention") and not soft:
        retention_of(model).eval()  # physical top-M selection while the backbone trains
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=0.0)

    def train_step():
        with selecting():
            out = model(**batch)
        out.last_hidden_state.float().pow(2).mean().backward()  # a stand-in loss: the head's cost is negligible
        opt.step()
        opt.zero_grad(set_to_none=True)
    return train_step, opt


def variant_step(variants: dict[str, nn.Module], name: str, batch: dict, mode: str, seed: int):
    """make_step for a named variant: `soft@ρ` / `sparse@ρ` train with the sampled gates, `<baseline>@ρ` uses its selector."""
    method = name.split("@")[0]
    return make_step(variants[name], batch, mode, soft=method in LAGRANGIAN, selector=selector_for(method, variants[name], seed))


def time_alternating(steps: dict[str, Callable[[], None]], device: torch.device, repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds per batch for each step, timed round-robin so drift hits every variant alike."""
    times = {name: [] for name in steps}
    for r in range(warmup + repeats):
        for name, step in steps.items():
            _sync(device)
            t0 = time.perf_counter()
            step()
            _sync(device)
            if r >= warmup:
                times[name].append(time.perf_counter() - t0)
    return times


def peak_memory(step: Callable[[], None], model: nn.Module, opt: torch.optim.Optimizer | None, device: torch.device) -> dict:
    """Peak bytes of one step beyond the weights (see the module docstring for what each device counts);
    on CPU also the activations and temporaries alone at that peak (gradients and optimiser state excluded)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        step()
        torch.cuda.synchronize(device)
        return {"peak_mem_bytes": torch.cuda.max_memory_allocated(device) - before}
    from torch.distributed._tools.mem_tracker import MemTracker, _MemRefType

    tracker = MemTracker()
    tracker.track_external(model, *([opt] if opt is not None else []))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with tracker:
            step()
    snap = tracker.get_tracker_snapshot("peak")[device]
    return {"peak_mem_bytes": int(snap["Total"] - snap[_MemRefType.PARAM] - snap[_MemRefType.BUFFER]),
            "peak_act_bytes": int(snap[_MemRefType.ACT] + snap[_MemRefType.TEMP])}


def selection_of(method: str) -> str:
    """How a variant's choice of tokens is costed: a method's (methods.METHODS), or the gates of training (`sparse`:
    the scorers, then ρ of the tokens, as the learned selection)."""
    return {"soft": "soft", "sparse": "learned"}.get(method) or METHODS[method].selection


def analytic_flops(model_config, seq_len: int, variant: str, mode: str, base_config: RetentionConfig) -> int:
    """Per-example FLOPs of a variant from `flops.py`. A training step counts forward + backward (2 × forward)
    for the blocks; a hard selection (top-M) has no backward, the training gates' scorers do."""
    c = model_config
    shape = (seq_len, c.num_hidden_layers, c.hidden_size, c.intermediate_size)
    if "@" not in variant:
        fwd = encoder_flops(*shape, scorer=None)
        return fwd if mode == "inference" else 3 * fwd
    method, ratio = variant.split("@")
    b = base_config
    kw = dict(ratio=float(ratio), schedule=b.schedule, start_layer=b.start_layer, placement=b.placement, scorer=b.scorer)
    fwd = encoder_flops(*shape, selection=selection_of(method), **kw)
    if mode == "inference":
        return fwd
    if method in LAGRANGIAN:
        return 3 * fwd
    blocks = encoder_flops(*shape, selection="free", **kw)
    return 3 * blocks + (fwd - blocks)


def measure(model: nn.Module, special_token_ids: list[int], cls_id: int, sep_id: int, lengths: list[int], ratios: list[float],
            modes=MODES, selectors=SELECTORS, batch_size: int = 32, repeats: int = 5, memory: bool = True, flops: bool = True,
            base_config: RetentionConfig | None = None, seed: int = 0, progress: Callable[[str], None] = lambda s: None) -> list[dict]:
    """One row per (mode, length, variant): latency, throughput, speed-up, peak memory, FLOPs (counted and analytic)."""
    base_config = base_config or RetentionConfig()
    device = next(model.parameters()).device
    variants = build_variants(model, special_token_ids, ratios, selectors, base_config)
    if "train_step" in modes:
        for r in ratios:
            for method, gather in LAGRANGIAN.items() if r < 1.0 else ():
                variants[f"{method}@{r}"] = lagrangian_variant(model, special_token_ids, r, base_config, gather)
    rows = []
    for mode in modes:
        for T in lengths:
            batch = {k: v.to(device) for k, v in synthetic_batch(model.config.vocab_size, batch_size, T, cls_id, sep_id, seed, special_token_ids).items()}
            names = [n for n in variants if mode == "train_step" or n.split("@")[0] not in LAGRANGIAN]
            steps = {n: variant_step(variants, n, batch, mode, seed) for n in names}
            progress(f"{mode} T={T}: timing {len(names)} variants × {repeats}")
            times = time_alternating({n: s for n, (s, _) in steps.items()}, device, repeats)
            t_plain = statistics.median(times["plain"])
            for n in names:
                step, opt = variant_step(variants, n, batch, mode, seed)  # fresh optimiser: first-step state
                t = statistics.median(times[n])
                row = {"mode": mode, "seq_len": T, "variant": n, "method": n.split("@")[0],
                       "ratio": float(n.split("@")[1]) if "@" in n else 1.0, "batch_size": batch_size,
                       "sec_per_batch": t, "examples_per_s": batch_size / t, "tokens_per_s": batch_size * T / t,
                       "sec_per_1k_tokens": 1000 * t / (batch_size * T), "speedup": t_plain / t,
                       "analytic_flops": analytic_flops(model.config, T, n, mode, base_config) * batch_size}
                if flops:
                    progress(f"{mode} T={T} {n}: counting FLOPs")
                    row["counted_flops"] = measured_flops(step)
                if memory:
                    progress(f"{mode} T={T} {n}: tracking memory")
                    row.update(peak_memory(step, variants[n], opt, device))
                rows.append(row)
            plain = next(r for r in rows[-len(names):] if r["variant"] == "plain")
            for r in rows[-len(names):]:
                r["flop_ratio"] = r["analytic_flops"] / plain["analytic_flops"]
                r["ideal_speedup"] = 1 / r["flop_ratio"]
                r["share_of_ideal"] = r["speedup"] / r["ideal_speedup"]
                if memory:
                    r["mem_reduction"] = 1 - r["peak_mem_bytes"] / plain["peak_mem_bytes"]
    return rows


def fit_exponent(lengths: list[int], values: list[float]) -> dict[str, float]:
    """Slope of log(value) against log(T) with its 95 % confidence interval (scipy.stats.linregress)."""
    from scipy import stats

    fit = stats.linregress([math.log(x) for x in lengths], [math.log(v) for v in values])
    half = stats.t.ppf(0.975, len(lengths) - 2) * fit.stderr if len(lengths) > 2 else float("nan")
    return {"exponent": fit.slope, "ci_low": fit.slope - half, "ci_high": fit.slope + half, "r2": fit.rvalue ** 2}


def long_encoder_like(model: nn.Module, max_positions: int) -> nn.Module:
    """A randomly initialised encoder of the same shape with `max_positions` positions (timing only)."""
    from transformers import AutoModel

    cfg = copy.deepcopy(model.config)
    cfg.max_position_embeddings = max(cfg.max_position_embeddings, max_positions)
    torch.manual_seed(0)
    return AutoModel.from_config(cfg).to(next(model.parameters()).device)
