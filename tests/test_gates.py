"""Hard-Concrete closed forms and the scorers."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptive_retention.gates import HardConcrete, MLPScorer, RecurrentScorer, make_scorer

N = 200_000


@pytest.mark.parametrize("log_alpha", [-3.0, -1.0, 0.0, 0.7, 2.5])
@pytest.mark.parametrize("beta", [0.66, 0.3, 1.0])
def test_monte_carlo_matches_closed_forms(log_alpha, beta):
    hc = HardConcrete(beta=beta)
    la = torch.full((N,), log_alpha, dtype=torch.float64)
    z = hc.sample(la)
    for empirical, exact in [
        ((z > 0).double().mean(), hc.prob_nonzero(la[:1])[0]),
        ((z == 1).double().mean(), hc.prob_one(la[:1])[0]),
    ]:
        se = math.sqrt(exact * (1 - exact) / N) + 1e-12
        assert abs(empirical - exact) < 5 * se
    mean_exact = hc.mean(la[:1])[0]
    se = z.std() / math.sqrt(N)
    assert abs(z.mean() - mean_exact) < 5 * se


def test_default_shifts_are_plus_minus_1_58():
    hc = HardConcrete()
    s = torch.linspace(-4, 4, 9)
    assert torch.allclose(hc.prob_nonzero(s), torch.sigmoid(s + 0.66 * math.log(11)), atol=1e-6)
    assert torch.allclose(hc.prob_nonzero(s), torch.sigmoid(s + 1.5826), atol=1e-4)
    assert torch.allclose(hc.prob_one(s), torch.sigmoid(s - 1.5826), atol=1e-4)


def test_samples_in_unit_interval_with_mass_at_both_ends():
    z = HardConcrete().sample(torch.zeros(50_000))
    assert z.min() >= 0 and z.max() <= 1
    assert (z == 0).float().mean() > 0.1 and (z == 1).float().mean() > 0.1


def test_deterministic_gate_is_clamped_stretch():
    hc = HardConcrete()
    s = torch.tensor([-10.0, 0.0, 10.0])
    assert torch.allclose(hc.deterministic(s), torch.tensor([0.0, 0.5, 1.0]))


def test_gradient_reaches_log_alpha():
    la = torch.zeros(1000, requires_grad=True)
    HardConcrete().sample(la).sum().backward()
    assert la.grad is not None and la.grad.abs().sum() > 0
    la2 = torch.zeros(3, requires_grad=True)
    HardConcrete().prob_nonzero(la2).sum().backward()
    assert torch.all(la2.grad > 0)


@pytest.mark.parametrize("kw", [dict(beta=0.0), dict(gamma=0.1), dict(zeta=0.9)])
def test_bad_parameters_raise(kw):
    with pytest.raises(ValueError):
        HardConcrete(**kw)


@settings(max_examples=20, deadline=None)
@given(T=st.integers(1, 17), decay=st.floats(0.0, 0.99))
def test_recurrent_summary_equals_loop(T, decay):
    torch.manual_seed(T)
    sc = RecurrentScorer(8, decay=decay).double()
    h = torch.randn(2, T, 8, dtype=torch.float64)
    m, prev = torch.zeros(2, 8, dtype=torch.float64), []
    for t in range(T):
        prev.append(m.clone())  # m_{t-1}
        m = decay * m + (1 - decay) * h[:, t]
    assert torch.allclose(sc.summaries(h), torch.stack(prev, 1), atol=1e-10)
    ref = sc.v(torch.tanh(sc.W(h) + sc.U(torch.stack(prev, 1)))).squeeze(-1)
    assert torch.allclose(sc(h), ref, atol=1e-10)


def test_scorer_shapes_and_init_bias():
    for kind in ("mlp", "recurrent"):
        sc = make_scorer(kind, 16, init_bias=3.0)
        assert sc(torch.zeros(2, 5, 16)).shape == (2, 5)
        s = sc(torch.randn(4, 7, 16))
        assert (s - 3.0).abs().max() < 0.2  # gates start open, nearly uniformly
    with pytest.raises(ValueError, match="unknown scorer 'gru'"):
        make_scorer("gru", 16)


def test_an_mlp_scorer_with_several_outputs_scores_each_and_one_output_is_unchanged():
    torch.manual_seed(0)
    one = MLPScorer(8, init_bias=1.5)
    torch.manual_seed(0)
    three = MLPScorer(8, init_bias=1.5, outputs=3)
    h = torch.randn(2, 5, 8)
    assert one(h).shape == (2, 5) and three(h).shape == (2, 3, 5)
    torch.testing.assert_close(three(h)[:, 0], h.new_tensor(0) + one.net[0](h).relu() @ three.net[2].weight[0] + 1.5)
    assert torch.equal(one.net[0].weight, three.net[0].weight)  # the same draws for the shared layer
