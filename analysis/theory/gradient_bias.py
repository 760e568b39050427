"""Lemma 1: is the Hard-Concrete (reparameterised) gradient unbiased for the Bernoulli objective?

Exact Bernoulli gradient ∇_s E_{z~Bernoulli(σ(s))}[L(z)] by enumerating the masks of toy problems
(toy.py); Hard-Concrete pathwise gradient ∇_s E_u[L(z̃(s, u))] by Monte Carlo (the library's
HardConcrete sampler, many draws, standard error from independent chunks), for several β at the
paper's stretch (γ, ζ) = (−0.1, 1.1) and without stretch (γ, ζ) → (0, 1) approximated by (−1e-6, 1 + 1e-6).

  python -m analysis.theory.gradient_bias --out results/theory/gradient_bias.json
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from adaptive_retention.io import save_figure

from .common import parser, problem_seeds, write_verdict
from .toy import Toy

from adaptive_retention.gates import HardConcrete

BETAS = (2.0, 1.0, 0.66, 0.33, 0.1, 0.03)


def hc_grad(toy: Toy, s: torch.Tensor, gate: HardConcrete, draws: int, chunks: int, generator: torch.Generator):
    """Mean and standard error of the pathwise gradient over `draws` noise samples (in `chunks`)."""
    grads = []
    for _ in range(chunks):
        s_ = s.detach().clone().requires_grad_(True)
        u = torch.rand(draws // chunks, toy.T, generator=generator, dtype=torch.float64)
        toy.loss(gate.sample(s_.expand_as(u), u)).mean().backward()
        grads.append(s_.grad)
    g = torch.stack(grads)
    return g.mean(0), g.std(0) / chunks ** 0.5


def measure(seeds, T: int = 6, draws: int = 400_000, chunks: int = 20) -> list[dict]:
    rows = []
    for seed in seeds:
        toy = Toy(T=T, seed=seed)
        gen = torch.Generator().manual_seed(seed)
        s = torch.randn(T, generator=gen, dtype=torch.float64)
        exact = toy.bernoulli_grad(s)
        for stretch, (gamma, zeta) in {"paper (−0.1, 1.1)": (-0.1, 1.1), "none (0, 1)": (-1e-6, 1 + 1e-6)}.items():
            for beta in BETAS:
                g, se = hc_grad(toy, s, HardConcrete(beta, gamma, zeta), draws, chunks, gen)
                rows.append({"seed": seed, "stretch": stretch, "beta": beta,
                             "rel_bias": float((g - exact).norm() / exact.norm()),
                             "rel_se": float(se.norm() / exact.norm()),
                             "cosine": float(torch.nn.functional.cosine_similarity(g, exact, dim=0))})
    return rows


def main(argv=None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--n-problems", type=int, default=5)
    ap.add_argument("--draws", type=int, default=400_000)
    args = ap.parse_args(argv)
    seeds = problem_seeds(args.seed, args.n_problems)
    rows = measure(seeds, draws=args.draws)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    t = pd.DataFrame(rows)
    table = t.groupby(["stretch", "beta"]).agg(rel_bias=("rel_bias", "mean"), rel_se=("rel_se", "mean"), cosine=("cosine", "mean"))
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for stretch, part in table.reset_index().groupby("stretch"):
        ax.errorbar(part["beta"], part["rel_bias"], yerr=2 * part["rel_se"], marker="o", capsize=3, label=f"stretch {stretch}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("temperature β")
    ax.set_ylabel("‖g_HC − g_Bernoulli‖ / ‖g_Bernoulli‖")
    ax.set_title(f"Lemma 1: Hard-Concrete gradient bias (T = 6, {len(seeds)} problems, ±2 SE)", fontsize=9)
    ax.axvline(0.66, color="grey", lw=0.8, ls=":")
    ax.legend(fontsize=8)
    save_figure(fig, Path(args.out).with_suffix(".png"))

    paper = table.loc["paper (−0.1, 1.1)"]
    at_default = float(paper.loc[0.66, "rel_bias"])
    smallest = float(paper.loc[min(BETAS), "rel_bias"])
    numbers = {"by_stretch_and_beta": {f"{k[0]} β={k[1]}": v for k, v in table.to_dict("index").items()},
               "rel_bias_at_default": at_default, "rel_bias_at_smallest_beta": smallest}
    print(table.to_string())
    write_verdict(args.out, "Lemma 1: the Hard-Concrete gradient is an unbiased estimator of the Bernoulli objective's gradient",
                  f"exact Bernoulli gradient (all 2^6 masks) vs the Monte Carlo mean of the pathwise Hard-Concrete gradient "
                  f"({args.draws:,} draws) on {len(seeds)} toy problems, β ∈ {list(BETAS)}",
                  numbers, "does not hold" if at_default > 0.05 else "holds approximately",
                  f"relative bias {at_default:.1%} at the default β = 0.66 (paper stretch), {smallest:.1%} at β = {min(BETAS)}; "
                  "the bias shrinks as β → 0 (the relaxation approaches the Bernoulli gates) while the estimator's variance grows",
                  seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
