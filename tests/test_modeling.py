"""apply_retention: equivalences (ratio 1 ≡ untouched, gathered ≡ masked) and the kept-token invariants."""

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import (AutoModel, AutoModelForQuestionAnswering, AutoModelForSequenceClassification)

from adaptive_retention.config import RetentionConfig
from adaptive_retention.modeling import apply_retention, budget_counts, retention_of

from conftest import batch_with_lengths, tiny_config

FAMILIES = ["bert", "distilbert", "roberta"]
HEADS = [AutoModel, AutoModelForSequenceClassification, AutoModelForQuestionAnswering]
SPECIAL = [101 % 120, 102 % 120]


def _outputs(out):
    """Every tensor a head returns (logits, start/end logits, hidden states)."""
    return [v for k, v in out.items() if isinstance(v, torch.Tensor)]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("head", HEADS, ids=lambda h: h.__name__)
def test_ratio_one_is_the_untouched_model(family, head):
    model = head.from_config(tiny_config(family)).eval()
    ids, mask = batch_with_lengths([12, 7, 3])
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=mask)
        apply_retention(model, RetentionConfig(ratio=1.0, schedule="linear", start_layer=0), SPECIAL)
        out = model(input_ids=ids, attention_mask=mask)
    for a, b in zip(_outputs(ref), _outputs(out)):
        valid = mask.bool() if a.dim() >= 2 and a.shape[:2] == mask.shape else torch.ones(a.shape[:1], dtype=torch.bool)
        assert torch.allclose(a[valid], b[valid], atol=1e-5)
    assert out.retention.kept_counts.tolist() == [[10] * 4, [5] * 4, [1] * 4]


def _pair(family, cfg_kwargs, head=AutoModelForQuestionAnswering):
    model = head.from_config(tiny_config(family)).eval()
    gathered = apply_retention(copy.deepcopy(model), RetentionConfig(gather=True, **cfg_kwargs), SPECIAL)
    masked = apply_retention(copy.deepcopy(model), RetentionConfig(gather=False, **cfg_kwargs), SPECIAL)
    masked.load_state_dict(gathered.state_dict())
    return gathered, masked


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("schedule,restore", [("constant", "last_state"), ("linear", "last_state"), ("geometric", "mask")])
def test_gathered_equals_masked(family, schedule, restore):
    gathered, masked = _pair(family, dict(ratio=0.3, schedule=schedule, start_layer=1, restore=restore))
    ids, mask = batch_with_lengths([20, 13, 6, 2])
    with torch.no_grad():
        g = gathered.base_model(input_ids=ids, attention_mask=mask)
        m = masked.base_model(input_ids=ids, attention_mask=mask)
        gq, mq = gathered(input_ids=ids, attention_mask=mask), masked(input_ids=ids, attention_mask=mask)
    valid = mask.bool()
    assert g.last_hidden_state.shape == ids.shape + (32,)  # restored to full length
    assert torch.allclose(g.last_hidden_state[valid], m.last_hidden_state[valid], atol=1e-5)
    assert torch.equal(g.retention.kept_mask, m.retention.kept_mask)
    assert torch.allclose(gq.start_logits[valid], mq.start_logits[valid], atol=1e-5)


def test_restore_keeps_dropped_state_and_mask_zeroes_it():
    """Dropped tokens keep their state from the drop layer (last_state) or are zero (mask)."""
    model = AutoModel.from_config(tiny_config("bert", layers=3)).eval()
    ids, mask = batch_with_lengths([16])
    cfg = dict(ratio=0.25, start_layer=2)
    last = apply_retention(copy.deepcopy(model), RetentionConfig(**cfg), SPECIAL)
    zero = apply_retention(copy.deepcopy(model), RetentionConfig(restore="mask", **cfg), SPECIAL)
    zero.load_state_dict(last.state_dict())
    with torch.no_grad():
        out = last(input_ids=ids, attention_mask=mask)
        h = model.embeddings(input_ids=ids)
        for block in model.encoder.layer[:2]:
            h = block(h)
        z = zero(input_ids=ids, attention_mask=mask).last_hidden_state
    dropped = ~out.retention.kept_mask[0]
    assert dropped.sum() == 14 - 3  # 14 content tokens, ⌊0.25·14⌋ = 3 kept
    assert torch.allclose(out.last_hidden_state[0, dropped], h[0, dropped], atol=1e-5)
    assert torch.all(z[0, dropped] == 0)
    assert torch.allclose(z[0, ~dropped], out.last_hidden_state[0, ~dropped], atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(lengths=st.lists(st.integers(2, 30), min_size=1, max_size=5), ratio=st.floats(0.05, 1.0),
       schedule=st.sampled_from(["constant", "linear", "geometric"]), start=st.integers(0, 3),
       family=st.sampled_from(FAMILIES), seed=st.integers(0, 1000))
def test_kept_counts_and_tokens(lengths, ratio, schedule, start, family, seed):
    torch.manual_seed(seed)
    model = apply_retention(AutoModel.from_config(tiny_config(family)).eval(), RetentionConfig(ratio=ratio, schedule=schedule, start_layer=start), SPECIAL)
    ids, mask = batch_with_lengths(lengths, seed=seed)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask)
    info, retention = out.retention, retention_of(model)
    n = torch.tensor([length - 2 for length in lengths])
    assert torch.equal(info.n_tokens, n)
    expected = torch.stack([budget_counts(n, retention.ratios[b]) for b in info.boundaries], 1)
    expected = torch.minimum(expected, torch.cummin(expected, 1).values)
    assert torch.equal(info.kept_counts, expected)  # exactly M_l
    assert torch.all(info.kept_counts[:, 1:] <= info.kept_counts[:, :-1])  # never increases with depth
    kept = info.kept_mask
    assert not torch.any(kept & ~mask.bool())  # padding never kept
    for b, length in enumerate(lengths):
        assert kept[b, 0] and kept[b, length - 1]  # [CLS] and [SEP] always kept
    assert torch.equal(kept.sum(1), info.kept_counts[:, -1] + 2)
    assert out.last_hidden_state.shape == (len(lengths), max(lengths), 32)
    assert torch.isfinite(out.last_hidden_state[mask.bool()]).all()
    assert len(info.scores) == len(info.boundaries) and info.scores[0].shape == ids.shape


def test_ties_go_to_the_earlier_position():
    model = apply_retention(AutoModel.from_config(tiny_config("bert")).eval(), RetentionConfig(ratio=0.5, start_layer=0), SPECIAL)
    ids, mask = batch_with_lengths([10])
    with torch.no_grad(), retention_of(model).selecting(selector=lambda h, positions, valid, b: torch.zeros(positions.shape)):
        kept = model(input_ids=ids, attention_mask=mask).retention.kept_mask
    assert kept[0].nonzero().flatten().tolist() == [0, 1, 2, 3, 4, 9]  # 8 content tokens, M = 4
    assert retention_of(model).selector is None  # the context restores the learned scores


def test_special_tokens_mask_argument_and_middle_sep():
    model = apply_retention(AutoModel.from_config(tiny_config("bert")).eval(), RetentionConfig(ratio=0.1, start_layer=0), SPECIAL)
    ids, mask = batch_with_lengths([12])
    ids[0, 5] = SPECIAL[1]  # a pair: [CLS] q [SEP] c [SEP]
    with torch.no_grad():
        kept = model(input_ids=ids, attention_mask=mask).retention.kept_mask[0]
        assert kept[[0, 5, 11]].all()
        stm = torch.zeros_like(ids)
        stm[0, [0, 3, 11]] = 1
        kept = model(input_ids=ids, attention_mask=mask, special_tokens_mask=stm).retention.kept_mask[0]
    assert kept[[0, 3, 11]].all()


def test_training_mode_gates_and_expected_kept():
    model = AutoModelForSequenceClassification.from_config(tiny_config("bert"))
    apply_retention(model, RetentionConfig(ratio=0.3, schedule="linear", start_layer=1), SPECIAL)
    model.train()
    ids, mask = batch_with_lengths([20, 9])
    out = model(input_ids=ids, attention_mask=mask, labels=torch.tensor([0, 1]))
    info = out.retention
    assert info.expected_kept.shape == (3,) and info.expected_kept.requires_grad
    assert torch.all(info.expected_kept[1:] <= info.expected_kept[:-1])  # cumulative: survival shrinks
    (out.loss + info.expected_kept.sum()).backward()
    for scorer in retention_of(model).scorers.values():
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in scorer.parameters())
    assert torch.all(info.kept_mask[:, 0])  # [CLS] gate is never sampled


@pytest.mark.parametrize("soft_mask,matches", [("states+attention", True), ("states", False)])
def test_zero_gates_in_training_match_dropping_at_inference(soft_mask, matches):
    """With log z̃ on the keys, a token whose gate is 0 vanishes from attention, as it does at inference."""
    cfg = tiny_config("bert", layers=3)
    cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = 0.0
    model = apply_retention(AutoModel.from_config(cfg), RetentionConfig(ratio=0.01, start_layer=1, soft_mask=soft_mask), SPECIAL)
    torch.nn.init.constant_(retention_of(model).scorers["1"].net[2].bias, -50.0)  # every content gate exactly 0
    ids, mask = batch_with_lengths([9])
    with torch.no_grad():
        train_cls = model.train()(input_ids=ids, attention_mask=mask).last_hidden_state[0, [0, 8]]
        eval_cls = model.eval()(input_ids=ids, attention_mask=mask).last_hidden_state[0, [0, 8]]  # M = 0: only [CLS], [SEP]
    assert torch.allclose(train_cls, eval_cls, atol=1e-4) == matches
