"""Prop. 2: two-timescale convergence of the alternating primal-dual updates. Which ordering converges?

Toy (toy.py, exact gradients): scores s (p = σ(s)) follow gradient descent on E[L] + λ(Σp − M) with
steps a_k, λ projected ascent with steps b_k. Three Robbins–Monro orderings: θ fastest
(a_k = a0 k^−0.55, b_k = b0 k^−0.95: the paper's assumption b_k / a_k → 0), λ fastest (swapped
exponents: what the paper's proof sketch uses) and equal rates (both k^−0.75). Converged = the
iterate is feasible (violation ≤ 0.05 tokens) with E[L] within 0.01 of the exact optimum F* over the
last 10 % of steps, and λ's range there is < 0.01. Real runs: the traces' λ and violation over steps.

  python -m analysis.theory.timescales --out results/theory/timescales.json [--traces RUN/trace.tsv ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from adaptive_retention.io import read_trace, save_figure

from .common import parser, problem_seeds, write_verdict
from .toy import Toy

ORDERINGS = {"θ fastest (paper's assumption)": (0.55, 0.95), "λ fastest (proof sketch)": (0.95, 0.55), "equal rates": (0.75, 0.75)}


def run(toy: Toy, M: int, primal_exp: float, dual_exp: float, steps: int, a0: float = 5.0, b0: float = 1.0):
    s = torch.zeros(toy.T, dtype=torch.float64, requires_grad=True)
    lam = 0.0
    history = []
    for k in range(1, steps + 1):
        p = torch.sigmoid(s)
        lagrangian = toy.expected_loss(p) + lam * (p.sum() - M)
        (g,) = torch.autograd.grad(lagrangian, s)
        with torch.no_grad():
            s -= a0 * k ** -primal_exp * g
            p = torch.sigmoid(s)
            violation = float(p.sum() - M)
            loss = float(toy.expected_loss(p))
        lam = max(0.0, lam + b0 * k ** -dual_exp * violation)
        history.append((violation, lam, loss))
    return history


def converged(history, f_star: float) -> dict:
    tail = history[-max(1, len(history) // 10):]
    mean_v = sum(h[0] for h in tail) / len(tail)
    lam = [h[1] for h in tail]
    excess = sum(h[2] for h in tail) / len(tail) - f_star
    lam_range = max(lam) - min(lam)
    ok = mean_v <= 0.05 and abs(excess) <= 0.01 and lam_range <= 0.01
    return {"violation_tail": mean_v, "lambda_tail": sum(lam) / len(lam), "lambda_range_tail": lam_range,
            "loss_minus_f_star": excess, "converged": ok}


def main(argv=None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--n-problems", type=int, default=4)
    ap.add_argument("--traces", nargs="*", default=[])
    args = ap.parse_args(argv)
    seeds = problem_seeds(args.seed, args.n_problems)
    M = 3
    results, curves = {}, {}
    for name, (pe, de) in ORDERINGS.items():
        per = []
        for seed in seeds:
            toy = Toy(T=8, seed=seed)
            h = run(toy, M, pe, de, args.steps)
            per.append(converged(h, toy.f_star(M)))
            if seed == seeds[0]:
                curves[name] = h
        results[name] = {"converged": sum(r["converged"] for r in per), "of": len(per), "runs": per}

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    real = []
    ncols = 2 + (1 if args.traces else 0)
    fig, axes = plt.subplots(1, ncols, figsize=(4.6 * ncols, 3.6))
    for name, h in curves.items():
        axes[0].plot([x[0] for x in h], label=name, lw=1)
        axes[1].plot([x[1] for x in h], label=name, lw=1)
    axes[0].axhline(0, color="grey", lw=0.6)
    axes[0].set_ylim(-3, 7)
    axes[0].set(xlabel="step", ylabel="Σp − M (tokens)", title="toy: constraint violation")
    axes[1].set(xlabel="step", ylabel="λ", title="toy: λ")
    axes[1].set_xscale("log")
    axes[0].set_xscale("log")
    axes[0].legend(fontsize=7)
    for path in args.traces:
        t = read_trace(path)
        kept = [c for c in t.columns if c.startswith("kept_")]
        if not kept:
            continue
        b = kept[0].split("_", 1)[1]
        violation = (t[f"kept_{b}"] - t[f"target_{b}"]).rolling(20, min_periods=1).mean()
        tail = t.tail(max(1, len(t) // 10))
        real.append({"trace": path, "violation_tail": float((tail[f"kept_{b}"] - tail[f"target_{b}"]).mean()),
                     "lambda_tail": float(tail[f"lambda_{b}"].mean()), "lambda_range_tail": float(tail[f"lambda_{b}"].max() - tail[f"lambda_{b}"].min())})
        axes[2].plot(t["step"], violation, lw=1, label=Path(path).parent.parent.name + "/" + Path(path).parent.name)
    if args.traces:
        axes[2].axhline(0, color="grey", lw=0.6)
        axes[2].set(xlabel="step", ylabel="kept − target (20-step mean)", title="real runs (η = 1e-2, θ faster)")
        axes[2].legend(fontsize=6)
    fig.tight_layout()
    save_figure(fig, Path(args.out).with_suffix(".png"))

    import statistics

    summary = {k: {"converged": f"{v['converged']}/{v['of']}",
                   "median_loss_minus_f_star": statistics.median(r["loss_minus_f_star"] for r in v["runs"]),
                   "max_lambda_range_tail": max(r["lambda_range_tail"] for r in v["runs"]),
                   "max_violation_tail": max(r["violation_tail"] for r in v["runs"])} for k, v in results.items()}
    print(summary)
    best = min(summary, key=lambda k: summary[k]["median_loss_minus_f_star"])
    paper = "θ fastest (paper's assumption)"
    strict = results[paper]["converged"] == len(seeds)
    text = "; ".join(f"{k}: excess loss {v['median_loss_minus_f_star']:.3f}, λ range {v['max_lambda_range_tail']:.3f}, "
                     f"worst violation {v['max_violation_tail']:+.2f}" for k, v in summary.items())
    write_verdict(args.out, "Prop. 2: under two-timescale Robbins–Monro steps the primal-dual iterates converge (λ settles, violation → 0)",
                  f"exact-gradient primal-dual iterations on {len(seeds)} toy problems (T = 8, M = 3, {args.steps} steps) for three "
                  f"step-size orderings, distance of E[L] from the exact F* over the last 10 %; and the λ / violation traces of "
                  f"{len(real)} real training runs",
                  {"toy": results, "by_ordering": summary, "real": real},
                  "holds" if strict else ("holds approximately" if best == paper else "does not hold"),
                  f"closest to the optimum: {best}. {text}. Strict criterion (feasible, |E[L] − F*| ≤ 0.01, λ range ≤ 0.01): "
                  f"{ {k: v['converged'] for k, v in summary.items()} }", seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
