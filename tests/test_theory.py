"""The theory checks' exact parts against hand-computed values (T ≤ 4), and their invariants."""

import math

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from adaptive_retention.gates import HardConcrete
from analysis.theory import duality, variance
from analysis.theory.gradient_bias import hc_grad
from analysis.theory.toy import Toy


def softplus(x):
    return math.log1p(math.exp(x))


@pytest.fixture
def toy2():
    """T = 2 tokens whose read-outs are a = (1, −2), label +1: L(z) = softplus(−(z1 − 2 z2))."""
    toy = Toy(T=2, k=2)
    toy.x = torch.eye(2, dtype=torch.float64)
    toy.w = torch.tensor([1.0, -2.0], dtype=torch.float64)
    toy.y = 1.0
    toy.mask_loss = toy.loss(toy.masks)
    return toy


def test_mask_losses_and_expected_loss_by_hand(toy2):
    L00, L01, L10, L11 = math.log(2), softplus(2), softplus(-1), softplus(1)
    assert toy2.masks.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert toy2.mask_loss.tolist() == pytest.approx([L00, L01, L10, L11])
    p1, p2 = 0.5, 0.25
    hand = (1 - p1) * (1 - p2) * L00 + (1 - p1) * p2 * L01 + p1 * (1 - p2) * L10 + p1 * p2 * L11
    assert float(toy2.expected_loss(torch.tensor([p1, p2], dtype=torch.float64))) == pytest.approx(hand)


def test_bernoulli_gradient_by_hand(toy2):
    """∂/∂s1 E = σ'(s1) (E[L | z1 = 1] − E[L | z1 = 0])."""
    s = torch.tensor([0.3, -1.1], dtype=torch.float64)
    p = torch.sigmoid(s).tolist()
    L00, L01, L10, L11 = toy2.mask_loss.tolist()
    g1 = p[0] * (1 - p[0]) * (((1 - p[1]) * L10 + p[1] * L11) - ((1 - p[1]) * L00 + p[1] * L01))
    g2 = p[1] * (1 - p[1]) * (((1 - p[0]) * L01 + p[0] * L11) - ((1 - p[0]) * L00 + p[0] * L10))
    assert toy2.bernoulli_grad(s).tolist() == pytest.approx([g1, g2])


def test_f_star_and_lagrangian_minimiser_by_hand(toy2):
    L00, L01, L10, L11 = toy2.mask_loss.tolist()
    assert toy2.f_star(0) == pytest.approx(L00)
    assert toy2.f_star(1) == pytest.approx(min(L00, L01, L10)) == pytest.approx(L10)
    loss, delta = toy2.lagrangian_min(0.1, 0)  # keep z1: L10 + 0.1 beats L00
    assert (loss, delta) == (pytest.approx(L10), 1.0)
    loss, delta = toy2.lagrangian_min(1.0, 0)
    assert (loss, delta) == (pytest.approx(L00), 0.0)


def test_lagrangian_minimum_is_at_a_vertex():
    """E[L] + λ(Σp − M) is multilinear in p: no point of a dense grid beats the best mask."""
    toy = Toy(T=3, seed=4)
    lam, M = 0.05, 1
    grid = torch.linspace(0, 1, 11, dtype=torch.float64)
    ps = torch.cartesian_prod(grid, grid, grid)
    values = torch.stack([toy.expected_loss(p) + lam * (p.sum() - M) for p in ps])
    loss, delta = toy.lagrangian_min(lam, M)
    assert float(values.min()) >= loss + lam * delta - 1e-12


def test_slackness_holds_exactly_on_toys():
    rows = duality.toy_grid(seeds=[0, 1, 2], T=4, M=2)
    assert all(r["delta"] <= r["slack_bound"] + 1e-9 for r in rows)
    assert all(r["gap"] >= -1e-12 for r in rows)  # weak duality: g(λ) ≤ F*


def test_hard_concrete_gradient_bias_shrinks_with_beta(toy2):
    s = torch.tensor([0.3, -1.1], dtype=torch.float64)
    exact = toy2.bernoulli_grad(s)
    gen = torch.Generator().manual_seed(0)
    bias = {}
    for beta in (2.0, 0.05):
        g, se = hc_grad(toy2, s, HardConcrete(beta, -0.1, 1.1), 200_000, 10, gen)
        bias[beta] = float((g - exact).norm() / exact.norm())
    assert bias[2.0] > 0.2 and bias[0.05] < 0.05


def test_group_variance_of_iid_draws_is_sigma2_over_b():
    g = torch.randn(4096, 3, generator=torch.Generator().manual_seed(0)) * 2.0  # total variance 3 × 4 = 12
    for B in (1, 4, 16):
        assert variance.group_variance(variance.gram(g), B) == pytest.approx(12.0 / B, rel=0.2)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(4, 40), p=st.integers(1, 30), B=st.integers(1, 8), seed=st.integers(0, 10_000))
def test_group_variance_from_gram_equals_the_variance_of_the_group_means(n, p, B, seed):
    """The Gram form is exact: for any draws, resampled in any order, it equals the total variance of the group means
    computed from the draws themselves."""
    assume(n // B >= 2)
    gen = torch.Generator().manual_seed(seed)
    g = torch.randn(n, p, generator=gen, dtype=torch.float64) + torch.randn(p, generator=gen, dtype=torch.float64)
    index = torch.randint(0, n, (n,), generator=gen)
    means = g[index][: (n // B) * B].view(-1, B, p).mean(1)
    direct = float(((means - means.mean(0)) ** 2).sum() / (len(means) - 1))
    assert variance.group_variance(variance.reorder(variance.gram(g), index), B) == pytest.approx(direct, rel=1e-9, abs=1e-12)


def test_variance_slope_interval_covers_minus_one_for_iid_draws():
    """Lemma 2's interval is honest: on independent Gaussian draws (where the slope is −1 exactly) the bootstrap interval
    covers −1 at least at its nominal rate; the least-squares interval it replaced did not (its points share draws)."""
    import math

    from scipy import stats

    Bs, covered, covered_ols = [2 ** i for i in range(5)], 0, 0
    for s in range(12):
        g = torch.randn(128, 20, generator=torch.Generator().manual_seed(s))
        G = variance.gram(g)
        low, high = torch.quantile(variance.bootstrap_slopes(G, Bs, n=100, seed=s), torch.tensor([0.025, 0.975]))
        fit = stats.linregress([math.log(b) for b in Bs], [math.log(variance.group_variance(G, B)) for B in Bs])
        half = stats.t.ppf(0.975, len(Bs) - 2) * fit.stderr
        covered += bool(low <= -1 <= high)
        covered_ols += bool(fit.slope - half <= -1 <= fit.slope + half)
    assert covered >= 11 and covered_ols < covered


def test_theory_seeds_draw_disjoint_toy_problems():
    from analysis.theory.common import problem_seeds

    blocks = [set(problem_seeds(s, 5)) for s in (0, 1, 2)]
    assert problem_seeds(0, 5) == [0, 1, 2, 3, 4] and all(len(b) == 5 for b in blocks)
    assert not (blocks[0] & blocks[1] or blocks[1] & blocks[2] or blocks[0] & blocks[2])


def test_theory_summary_calls_a_verdict_that_differs_between_seeds_unstable(tmp_path):
    from analysis.theory import summary
    from analysis.theory.common import problem_seeds, write_verdict

    paths = []
    for seed, flips in ((0, "holds"), (1, "does not hold")):
        for check in summary.ORDER[:-1]:
            verdict = flips if check == "variance" else "holds approximately"
            paths.append(str(tmp_path / f"seed{seed}" / f"{check}.json"))
            write_verdict(paths[-1], check, "m", {}, verdict, "d", problem_seeds(seed, 5))
    paths.append(str(tmp_path / "complexity.json"))
    write_verdict(paths[-1], "complexity", "m", {}, "holds", "d", [])
    t = summary.table(paths).set_index("check")
    assert t.loc["variance", "verdict"] == "unstable" and not t.loc["variance", "stable"]
    assert t.loc["variance", "verdicts"] == "holds (seeds 0–4); does not hold (seeds 5–9)"
    assert (t.drop(index="variance").stable).all() and t.loc["slackness", "verdict"] == "holds approximately"
    assert list(t.runs) == [2] * 6 + [1] and t.loc["complexity", "verdicts"] == "holds (no random draws)"
    with pytest.raises(SystemExit, match="complexity"):
        summary.table(paths[:-1])


def test_every_seeded_theory_rule_passes_its_seed_to_its_check():
    """A rule whose outputs live under theory/seed<s>/ must hand that seed to its script (one did not: its three
    'seeds' were the same run)."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "workflow/rules/theory.smk").read_text()
    rules = re.split(r"\nrule ", text)[1:]
    seeded = [r for r in rules if "seed{{seed}}" in r]
    assert len(seeded) == 5  # duality (slackness + duality gap), gradient bias, variance, timescales, generalisation
    for rule in seeded:
        assert "--seed {wildcards.seed}" in rule.split("shell:")[1], rule.split(":")[0]
