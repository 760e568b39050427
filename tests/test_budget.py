"""Schedules and the dual controller."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import torch

from adaptive_retention.budget import DualController, layer_ratios


def test_schedules():
    assert layer_ratios("constant", 0.3, 1, 6) == {1: 0.3}
    lin = layer_ratios("linear", 0.3, 2, 6)
    assert list(lin) == [2, 3, 4, 5] and lin[5] == pytest.approx(0.3)
    assert all(a > b for a, b in zip(list(lin.values()), list(lin.values())[1:]))
    geo = layer_ratios("geometric", 0.25, 4, 6)
    assert geo == {4: pytest.approx(0.5), 5: pytest.approx(0.25)}
    assert layer_ratios("constant", 0.5, 1, 6, "final") == {6: 0.5}


@pytest.mark.parametrize("args,match", [(("cosine", 0.5, 1, 6), "unknown schedule 'cosine'"), (("constant", 1.5, 1, 6), "ratio"),
                                        (("constant", 0.0, 1, 6), "ratio"), (("constant", 0.5, 6, 6), "start_layer")])
def test_schedule_errors(args, match):
    with pytest.raises(ValueError, match=match):
        layer_ratios(*args)


def test_controller_raises_when_over_and_projects_to_zero():
    c = DualController([0.5, 0.3], eta=0.1)
    lam = c.update(torch.tensor([0.9, 0.3]))  # layer 0 over budget by 0.4, layer 1 on budget
    assert lam[0] == pytest.approx(0.04, abs=1e-6) and lam[1] == pytest.approx(0.0, abs=1e-6)
    for _ in range(10):
        lam = c.update(torch.tensor([0.2, 0.1]))  # under budget: λ decreases, never below 0
        assert torch.all(lam >= 0)
    assert torch.all(lam == 0)


def test_controller_warmup_and_penalty():
    c = DualController([0.3], eta=1.0, warmup_steps=10, lambda_init=2.0)
    assert c.current_targets()[0] == pytest.approx(1.0)
    assert c.current_targets(5)[0] == pytest.approx(0.65)
    assert c.current_targets(20)[0] == pytest.approx(0.3)
    kept = torch.tensor([0.8], requires_grad=True)
    pen = c.penalty(kept)
    assert pen.item() == pytest.approx(2.0 * (0.8 - 1.0))
    pen.backward()
    assert kept.grad.item() == pytest.approx(2.0)


def test_global_mode_and_state_roundtrip():
    c = DualController([0.5, 0.3], eta=0.5, mode="global")
    c.update(torch.tensor([0.7, 0.5]))
    assert c.lambdas.tolist() == [pytest.approx(0.1)]
    d = DualController([0.5, 0.3], eta=0.5, mode="global")
    d.load_state_dict(c.state_dict())
    assert d.lambdas.tolist() == c.lambdas.tolist() and d.step_count == 1
    with pytest.raises(ValueError, match="controller state"):
        DualController([0.5, 0.3]).load_state_dict(c.state_dict())
    with pytest.raises(ValueError, match="unknown dual mode"):
        DualController([0.5], mode="both")


def test_unprojected_dual_goes_negative_under_budget():
    c = DualController([0.5], eta=0.5, projection="none")
    assert c.update(torch.tensor([0.3]))[0] == pytest.approx(-0.1, abs=1e-6)  # pushes kept back up to ρ
    with pytest.raises(ValueError, match="unknown dual projection"):
        DualController([0.5], projection="abs")


def test_quadratic_term_pulls_towards_the_target_from_both_sides():
    """(ρ_q/2)(kept − ρ)²: gradient ρ_q(kept − ρ) + λ, so under budget with λ = 0 the penalty pushes kept up."""
    c = DualController([0.3, 0.5], quadratic=10.0, lambda_init=0.2)
    kept = torch.tensor([0.2, 0.6], requires_grad=True)
    pen = c.penalty(kept)
    assert pen.item() == pytest.approx(0.2 * (-0.1 + 0.1) + 5.0 * (0.01 + 0.01))
    pen.backward()
    assert kept.grad.tolist() == [pytest.approx(0.2 - 1.0), pytest.approx(0.2 + 1.0)]
    d = DualController([0.3, 0.5])
    d.load_state_dict(c.state_dict())
    assert d.quadratic == 10.0
    with pytest.raises(ValueError, match="quadratic"):
        DualController([0.5], quadratic=-1.0)


@settings(max_examples=50, deadline=None)
@given(misses=st.lists(st.floats(-0.5, 0.5), min_size=1, max_size=8), beta=st.floats(0.0, 0.99), q=st.floats(0.0, 100.0),
       lam=st.floats(0.0, 2.0))
def test_filtered_quadratic_term_pulls_on_the_misses_moving_average(misses, beta, q, lam):
    """budget_filter β: the penalty's gradient is λ + ρ_q·m̄, m̄ the misses' moving average with this batch's miss folded
    in; its value stays the batch's; β = 0 is the unfiltered term exactly; the average survives a state round trip."""
    rho, c, plain = 0.3, DualController([0.3], eta=0.0, quadratic=q, lambda_init=lam, filter=beta), \
        DualController([0.3], eta=0.0, quadratic=q, lambda_init=lam)
    average = None
    for m in misses:
        kept, kept_plain = (torch.tensor([rho + m], dtype=torch.float64, requires_grad=True) for _ in range(2))
        average = m if average is None else beta * average + (1 - beta) * m
        pen, pen_plain = c.penalty(kept), plain.penalty(kept_plain)
        pen.backward(), pen_plain.backward()
        assert pen.item() == pytest.approx(pen_plain.item(), abs=1e-9)
        assert kept.grad.item() == pytest.approx(lam + q * average, abs=1e-6)
        if beta == 0:
            assert kept.grad.item() == pytest.approx(kept_plain.grad.item(), abs=1e-9)
        c.update(kept.detach()), plain.update(kept_plain.detach())
    d = DualController([0.3], quadratic=q, filter=0.5)
    d.load_state_dict(c.state_dict())
    assert (d.filter, d.mean_miss.item()) == (beta, pytest.approx(average))


def test_filter_outside_zero_one_is_refused():
    with pytest.raises(ValueError, match="filter"):
        DualController([0.5], filter=1.0)
