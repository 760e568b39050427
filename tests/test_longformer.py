"""The Longformer adapter: exact at ratio 1, packed widths on window multiples, global tokens kept."""


import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoModel, AutoModelForSequenceClassification

from adaptive_retention.config import RetentionConfig
from adaptive_retention.modeling import apply_retention, budget_counts, packed_length, retention_of

from conftest import batch_with_lengths, tiny_config

SPECIAL = [101 % 120, 102 % 120]
WINDOW = 8


def _model(head=AutoModelForSequenceClassification, layers=3):
    cfg = tiny_config("longformer", layers=layers)
    cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = 0.0
    return head.from_config(cfg).eval()


@pytest.mark.parametrize("head", [AutoModel, AutoModelForSequenceClassification], ids=lambda h: h.__name__)
def test_ratio_one_is_the_untouched_model(head):
    model = _model(head)
    ids, mask = batch_with_lengths([21, 13, 5])  # 21: not a multiple of the window
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=mask)
        apply_retention(model, RetentionConfig(ratio=1.0, schedule="linear", start_layer=0), SPECIAL)
        out = model(input_ids=ids, attention_mask=mask)
    key = "last_hidden_state" if head is AutoModel else "logits"
    valid = mask.bool() if key == "last_hidden_state" else torch.ones(3, dtype=torch.bool)
    assert out[key].shape == ref[key].shape
    assert torch.allclose(ref[key][valid], out[key][valid], atol=1e-5)


@settings(max_examples=15, deadline=None)
@given(lengths=st.lists(st.integers(3, 40), min_size=1, max_size=4), ratio=st.floats(0.05, 1.0))
def test_blocks_see_window_multiples_and_exact_budgets(lengths, ratio):
    model = apply_retention(_model(), RetentionConfig(ratio=ratio, schedule="linear", start_layer=1), SPECIAL)
    widths = []
    for block in model.base_model.encoder.layer:
        block.register_forward_pre_hook(lambda mod, args, kwargs: widths.append(args[0].shape[1]), with_kwargs=True)
    ids, mask = batch_with_lengths(lengths)
    global_ = torch.zeros_like(ids)
    global_[:, 0] = 1
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, global_attention_mask=global_)
    info = out.retention
    assert all(w % WINDOW == 0 for w in widths)
    assert widths == sorted(widths, reverse=True)  # packing never widens
    n = torch.tensor(lengths) - 2
    for k, b in enumerate(info.boundaries):
        assert info.kept_counts[:, k].tolist() == torch.minimum(budget_counts(n, info.target_ratios[k]), n).tolist()
    assert info.kept_mask.shape == ids.shape and bool(info.kept_mask[:, 0].all())  # the global <s> is always kept


def test_zero_gates_in_training_remove_keys_as_masking_does():
    """Longformer's kernel takes a key mask, so in the masked training step (train_gather: false) a zero gate removes
    the key, as inference with gather: false does (gathered, both see the gathered windows: test_train_gather.py)."""
    model = apply_retention(_model(AutoModel), RetentionConfig(ratio=0.01, start_layer=1, gather=False, train_gather=False),
                            SPECIAL)
    torch.nn.init.constant_(retention_of(model).scorers["1"].net[2].bias, -50.0)  # every content gate exactly 0
    ids, mask = batch_with_lengths([19])
    with torch.no_grad():
        train = model.train()(input_ids=ids, attention_mask=mask).last_hidden_state[0, [0, 18]]
        masked = model.eval()(input_ids=ids, attention_mask=mask).last_hidden_state[0, [0, 18]]
    assert torch.allclose(train, masked, atol=1e-4)


def test_training_step_has_scorer_gradients():
    model = apply_retention(_model(), RetentionConfig(ratio=0.3, start_layer=1), SPECIAL).train()
    ids, mask = batch_with_lengths([30, 11])
    out = model(input_ids=ids, attention_mask=mask, labels=torch.tensor([0, 1]))
    (out.loss + out.retention.expected_kept.sum()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in retention_of(model).scorers.parameters())


@pytest.mark.parametrize("n,multiple,limit,width", [(0, 8, 16, 0), (1, 8, 16, 8), (8, 8, 16, 8), (9, 8, None, 16), (17, 8, 16, 16),
                                                    (2049, 512, 4096, 2560), (1230, 512, 4096, 1536), (5, 1, None, 5)])
def test_packed_length(n, multiple, limit, width):
    assert packed_length(n, multiple, limit) == width
