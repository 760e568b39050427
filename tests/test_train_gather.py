"""train_gather: the Lagrangian step with its exact-zero gates gathered out equals the masked step.

Why a tolerance at all: in the masked step a token whose gate is 0 stays as a key with log z̃ clamped at
log ε (ε = 1e-6, gates.LOG_GATE_FLOOR), so each query still gives it ≤ ε·e^Δ of the attention weight that a
live key with the same logit gets (Δ: the logit gap, O(1) in these tiny random models). With n_dead such keys
per query the masked step's states move by ≈ n_dead · ε relative, ≤ 2e-5 here (≤ 20 dead keys); the gradients
inherit it. The gathered step drops those keys (and float sums change order with the widths). RTOL = 1e-4
GATHER = modeling.gather_kept
leaves 5× room above that bound and is still 1,000× below what dropping a live token does (the last test).
Dropout is off: its masks are drawn on tensors of another shape once tokens are gathered.
"""

import copy
from dataclasses import replace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoModelForSequenceClassification

from adaptive_retention.config import RetentionConfig
from adaptive_retention.gates import HardConcrete
from adaptive_retention import modeling
from adaptive_retention.modeling import apply_retention, retention_of

from conftest import batch_with_lengths, tiny_config

SPECIAL = [101 % 120, 102 % 120]
FAMILIES = ["bert", "distilbert", "roberta", "longformer"]
LENGTHS = [20, 13, 6, 2]  # mixed, with an example of special tokens only
RTOL = 1e-4
GATHER = modeling.gather_kept


def _config(family: str, window: int = 64):
    cfg = tiny_config(family, layers=3)
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout", "attention_dropout", "seq_classif_dropout"):
        if hasattr(cfg, key):
            setattr(cfg, key, 0.0)
    if family == "longformer":  # a window over the whole sequence: gathering changes no token's neighbours
        cfg.attention_window = window
    return cfg


def _pair(family: str, seed: int, keep: float = 0.4, window: int = 64, **retention):
    """(masked, gathered): one randomly initialised classifier, its gates set so P(z̃ > 0) = keep."""
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(_config(family, window))
    cfg = RetentionConfig(ratio=keep, start_layer=1, **retention)
    masked = apply_retention(copy.deepcopy(model), replace(cfg, train_gather=False), SPECIAL)
    gathered = apply_retention(copy.deepcopy(model), replace(cfg, train_gather=True), SPECIAL)
    for m in (masked, gathered):
        for scorer in retention_of(m).scorers.values():
            torch.nn.init.constant_(scorer.net[2].bias, HardConcrete().log_alpha_for(keep))
    gathered.load_state_dict(masked.state_dict())
    return masked.train(), gathered.train()


def _step(model, seed: int):
    """Loss (class logits + every token's output + the budget term), gradients, RetentionInfo, and the widths the
    blocks after the retention layer saw; gates drawn from `seed`."""
    ids, mask = batch_with_lengths(LENGTHS, seed=seed)
    widths, outputs = [], {}
    blocks = retention_of(model).family.blocks(model.base_model)
    hooks = [blk.register_forward_pre_hook(lambda m, args, kw: widths.append((args[0] if args else kw["hidden_states"]).shape[1]),
                                           with_kwargs=True) for blk in list(blocks)[1:]]
    hooks.append(model.base_model.register_forward_hook(lambda m, a, out: outputs.update(h=out.last_hidden_state)))
    torch.manual_seed(seed)  # the same gate draws in both steps
    out = model(input_ids=ids, attention_mask=mask, labels=torch.tensor([0, 1, 1, 0]))
    for h in hooks:
        h.remove()
    valid = mask.bool()
    w = torch.randn(outputs["h"].shape[-1], generator=torch.Generator().manual_seed(1))
    loss = out.loss + 0.1 * (outputs["h"][valid] @ w).sum() + 0.7 * out.retention.expected_kept.sum()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), grads, out.retention, outputs["h"].detach()[valid], widths


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Within RTOL; + 1e-9 for gradients that are 0 in exact arithmetic (attention key biases: a softmax ignores a
    shift shared by every key), which float noise leaves at ≈ 1e-10 in either step."""
    return float((a - b).norm()) <= RTOL * float(b.norm()) + 1e-9


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gathered_step_equals_masked_step(family, seed, monkeypatch):
    masked, gathered = _pair(family, seed)
    loss_m, grads_m, info_m, h_m, widths_m = _step(masked, seed)
    gathers = []
    monkeypatch.setattr(modeling, "gather_kept", lambda keep, multiple=1: gathers.append(keep) or GATHER(keep, multiple))
    loss_g, grads_g, info_g, h_g, widths_g = _step(gathered, seed)
    assert len(gathers) == 1 and not gathers[0].all()  # the step did gather, and something was dropped
    if family == "longformer":  # widths stay whole windows (64) here
        assert widths_g == widths_m == [64, 64]
    else:
        assert max(widths_g) < max(widths_m) == max(LENGTHS)
    assert torch.equal(info_m.kept_mask, info_g.kept_mask) and torch.equal(info_m.kept_counts, info_g.kept_counts)
    assert torch.equal(info_m.expected_kept, info_g.expected_kept)  # computed before the gather
    assert abs(float(loss_m - loss_g)) <= RTOL * abs(float(loss_m))
    assert _close(h_g, h_m)  # every real token's output: survivors and the restored states of the dropped
    assert grads_m.keys() == grads_g.keys() and any(k.startswith(("classifier", "pre_classifier")) for k in grads_m)
    bad = [name for name in grads_m if not _close(grads_g[name], grads_m[name])]
    assert not bad, f"gradients differ beyond {RTOL}: {bad}"


def test_dropping_a_live_token_moves_the_step_far_beyond_the_tolerance():
    """The control: the tolerance sees a real change (one more token dropped, every other draw the same)."""
    masked, gathered = _pair("bert", 0)
    _, grads_m, *_ = _step(masked, 0)
    gate = retention_of(gathered).gate
    real_sample = gate.sample

    def one_more_zero(log_alpha, u=None):
        z = real_sample(log_alpha, u)
        first_alive = (z[0, 1:-1] > 0).nonzero()[0, 0] + 1  # a content token of the first example that survived
        return z.index_put((torch.tensor(0), first_alive), torch.tensor(0.0))
    gate.sample = one_more_zero
    _, grads_g, *_ = _step(gathered, 0)
    far = [n for n in grads_m if float((grads_g[n] - grads_m[n]).norm()) > 100 * RTOL * float(grads_m[n].norm())]
    assert len(far) > len(grads_m) // 2


class _FixedScores(torch.nn.Module):
    """A scorer that gives position t the score table[t]: gates exactly 1 (+50) or 0 (−50)."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = table

    def forward(self, h):
        return self.table[: h.shape[1]].expand(h.shape[0], -1)


def _train_and_infer(model):
    """Last hidden states of one batch in training and at inference, gates fixed at 0/1 on the same tokens."""
    retention = retention_of(model)
    retention.scorers["1"] = _FixedScores(torch.tensor([50.0 if t % 2 else -50.0 for t in range(64)]))  # odd: kept
    ids, mask = batch_with_lengths([17, 10], seed=0)  # content at 1…15 (8 odd positions) and 1…8 (4), then padding
    with torch.no_grad():
        train = model.train().base_model(input_ids=ids, attention_mask=mask)
        retention.set_ratio(0.55)  # M = ⌊0.55 × 15⌋ = 8 and ⌊0.55 × 8⌋ = 4: the same tokens by score
        infer = model.eval().base_model(input_ids=ids, attention_mask=mask)
    assert train.retention.kept_mask[0].tolist() == [t == 0 or t % 2 == 1 or t == 16 for t in range(17)]
    assert torch.equal(train.retention.kept_mask, infer.retention.kept_mask)
    return train.last_hidden_state, infer.last_hidden_state, mask.bool()


@pytest.mark.parametrize("family,window", [("bert", 64), ("longformer", 8)])
def test_with_gates_exactly_zero_or_one_training_runs_what_inference_runs(family, window):
    """Gathered training at 0/1 gates is inference's forward — padding positions too — even where a sliding window
    makes the masked step differ (Longformer, window 8: a gathered token's window holds other neighbours)."""
    masked, gathered = _pair(family, 0, keep=0.5, window=window)
    train, infer, _ = _train_and_infer(gathered)
    assert torch.allclose(train, infer, atol=1e-5)
    train, infer, valid = _train_and_infer(masked)
    assert torch.allclose(train[valid], infer[valid], atol=1e-5) == (family != "longformer")  # measured: 0.013 apart


@pytest.mark.parametrize("switch", [dict(train_gather=False), dict(soft_mask="states"), dict(gate="sigmoid")])
def test_the_switch_and_where_it_cannot_apply(switch):
    """`train_gather: false` keeps full length; so does `soft_mask: states` (a dropped token still attends as a key:
    removing it would change the step) and a sigmoid gate (never exactly 0: nothing to remove)."""
    _, gathered = _pair("bert", 0)
    assert max(_step(gathered, 0)[-1]) < max(LENGTHS)
    _, model = _pair("bert", 0)
    retention_of(model).config = replace(retention_of(model).config, **switch)
    assert _step(model, 0)[-1] == [max(LENGTHS)] * 2


@settings(max_examples=50, deadline=None)
@given(p=st.floats(1e-4, 1 - 1e-4), beta=st.floats(0.1, 2.0), gamma=st.floats(-0.5, -0.01), zeta=st.floats(1.01, 1.5))
def test_log_alpha_for_inverts_prob_nonzero(p, beta, gamma, zeta):
    gate = HardConcrete(beta, gamma, zeta)
    assert float(gate.prob_nonzero(torch.tensor(gate.log_alpha_for(p), dtype=torch.float64))) == pytest.approx(p, rel=1e-9)
