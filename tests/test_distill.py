"""The distillation losses against their closed forms: zero at the teacher, torch's KL, the gradient T·(p_s − p_t)/B,
padding ignored, a sentence's Bernoulli ≡ a two-class softmax."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given, settings
from hypothesis import strategies as st

from adaptive_retention.distill import bernoulli_kl, distill_loss, softened_kl

shapes = st.tuples(st.integers(1, 5), st.integers(2, 7))
temperatures = st.floats(0.5, 4.0)


def _logits(shape, seed, scale=3.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale


@settings(max_examples=40, deadline=None)
@given(shapes, temperatures, st.integers(0, 10**6))
@example((1, 2), 3.876, 2)  # found by CI: float32 round-off × T² above a fixed atol of 1e-6
def test_softened_kl_is_torchs_kl_times_t_squared_and_zero_at_the_teacher(shape, T, seed):
    s, t = _logits(shape, seed), _logits(shape, seed + 1)
    want = F.kl_div(F.log_softmax(s / T, -1), F.log_softmax(t / T, -1), log_target=True, reduction="batchmean") * T ** 2
    # softened_kl works in float32: each log-probability is off by ≈ eps·|log p| ≤ eps·(max|s| + max|t|)/T, then × T²
    # (over 20,000 draws the error stayed below 2.3× eps·T²·(1 + (max|s| + max|t|)/T); 8× leaves room).
    eps = torch.finfo(torch.float32).eps
    atol = 8 * eps * T ** 2 * (1 + (s.abs().max() + t.abs().max()).item() / T)
    assert torch.allclose(softened_kl(s, t, T).double(), want, rtol=1e-5, atol=atol)
    assert softened_kl(s, t, T) >= 0 and softened_kl(t, t, T).abs() < 1e-6


@settings(max_examples=40, deadline=None)
@given(shapes, temperatures, st.integers(0, 10**6))
def test_gradient_is_t_times_the_probability_gap(shape, T, seed):
    s, t = _logits(shape, seed).float().requires_grad_(), _logits(shape, seed + 1).float()
    softened_kl(s, t, T).backward()
    want = T * (torch.softmax(s.detach() / T, -1) - torch.softmax(t / T, -1)) / shape[0]
    assert torch.allclose(s.grad, want, atol=1e-5)


@settings(max_examples=30, deadline=None)
@given(shapes, st.integers(1, 4), temperatures, st.integers(0, 10**6))
def test_padding_positions_change_nothing(shape, pad, T, seed):
    s, t = _logits(shape, seed), _logits(shape, seed + 1)
    junk = _logits((shape[0], pad), seed + 2, scale=50.0)
    valid = torch.cat([torch.ones(shape, dtype=torch.bool), torch.zeros(shape[0], pad, dtype=torch.bool)], -1)
    padded = softened_kl(torch.cat([s, junk], -1), torch.cat([t, -junk], -1), T, valid)
    assert torch.allclose(padded, softened_kl(s, t, T), atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(shapes, temperatures, st.integers(0, 10**6))
def test_a_sentence_decision_is_a_two_class_softmax(shape, T, seed):
    s, t = _logits(shape, seed), _logits(shape, seed + 1)
    valid = torch.ones(shape, dtype=torch.bool)
    as_two_classes = softened_kl(torch.stack([torch.zeros_like(s), s], -1).flatten(0, 1),
                                 torch.stack([torch.zeros_like(t), t], -1).flatten(0, 1), T)
    assert torch.allclose(bernoulli_kl(s, t, T, valid).double(), as_two_classes.double(), atol=1e-5)


def test_each_kind_compares_its_own_outputs():
    b = {"attention_mask": torch.tensor([[1, 1, 1, 0]])}
    span = {"start_logits": torch.tensor([[1.0, 2.0, 0.0, 9.0]]), "end_logits": torch.tensor([[0.0, 1.0, 3.0, -9.0]])}
    moved = {**span, "start_logits": span["start_logits"] + torch.tensor([[0.0, 0.0, 0.0, 5.0]])}  # padding only
    assert distill_loss("qa", moved, span, b, 2.0).abs() < 1e-6
    sentences = {"logits": torch.tensor([[0.5, -1.0, float("-inf")]])}  # the third sentence is absent
    assert distill_loss("summarization", sentences, sentences, b, 2.0).abs() < 1e-6
    assert distill_loss("classification", {"logits": torch.tensor([[0.0, 1.0]])}, {"logits": torch.tensor([[1.0, 0.0]])}, b, 1.0) > 0
    with pytest.raises(ValueError, match="no distillation loss for task kind 'regression'"):
        distill_loss("regression", {}, {}, b, 1.0)
