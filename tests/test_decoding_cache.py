"""The retention cache for decoders (issue 18): equivalence at full budget, the budget, sinks, window and positions
invariants, each switch's effect, and each score against its definition. kvpress itself: tests/kvpress/."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adaptive_retention.decoding.cache import RetentionCache, RetentionPolicy
from adaptive_retention.decoding.models import tiny_llama
from adaptive_retention.decoding.scores import SCORES

MODEL = tiny_llama(layers=3)  # 4 query heads over 2 KV heads, head dim 16
VOCAB = MODEL.config.vocab_size


def prompt(length, seed=0, batch=1):
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


def greedy(ids, cache=None, new=6):
    kwargs = {} if cache is None else {"cache": cache}
    return MODEL.generate(ids, max_new_tokens=new, do_sample=False, output_scores=True, return_dict_in_generate=True,
                          pad_token_id=0, **kwargs)


@pytest.mark.parametrize("score", sorted(SCORES))
def test_a_budget_above_the_length_is_the_models_own_generation(score):
    ids = prompt(40, batch=2)
    ref, out = greedy(ids), greedy(ids, RetentionCache(MODEL, RetentionPolicy(budget=46, score=score)))
    assert torch.equal(ref.sequences, out.sequences)
    assert all(torch.equal(a, b) for a, b in zip(ref.scores, out.scores))


def steps(policy, length, new, seed=0):
    """Prefill `length` tokens then feed `new` more one at a time; yield the cache after each step."""
    ids = prompt(length + new, seed)
    cache = RetentionCache(MODEL, policy)
    with torch.no_grad():
        MODEL(ids[:, :length], cache=cache)
        yield cache
        for t in range(length, length + new):
            MODEL(ids[:, t:t + 1], cache=cache)
            yield cache


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(score=st.sampled_from(sorted(SCORES)), budget=st.integers(8, 40), sinks=st.integers(0, 4),
       window=st.integers(0, 4), per_head=st.booleans(), length=st.integers(2, 60))
def test_budget_sinks_window_and_positions_hold_at_every_step(score, budget, sinks, window, per_head, length):
    policy = RetentionPolicy(budget=budget, score=score, sinks=sinks, window=window, per_head=per_head)
    for cache in steps(policy, length, new=3):
        for layer in cache.layers:
            seen, positions = layer.seen, layer.positions[0]                       # (Hkv, T)
            assert layer.keys.shape[2] == positions.shape[-1] == min(budget, seen)  # never above the budget
            for head in positions:
                kept = set(head.tolist())
                assert len(kept) == len(head) and head.tolist() == sorted(kept)  # distinct true positions, in order
                assert kept >= set(range(min(sinks, seen))) | set(range(max(0, seen - window), seen))
                assert max(kept) == seen - 1 or window == 0 and score not in {"tova", "snapkv", "streaming_llm"}
            if not per_head:
                assert (positions == positions[:1]).all()


def test_kept_keys_keep_their_rope_positions_and_the_mask_is_right():
    """After the prompt is cut to sinks + recent, the next token's logits equal a full forward in which its
    query sees exactly the kept positions (a 4-D mask): nothing was renumbered."""
    length, ids = 40, prompt(41)
    cache = RetentionCache(MODEL, RetentionPolicy(budget=12, score="streaming_llm", sinks=4, window=0))
    with torch.no_grad():
        MODEL(ids[:, :length], cache=cache)
        kept = cache.layers[0].positions[0, 0].clone()
        out = MODEL(ids[:, length:], cache=cache).logits[0, -1]
        mask = torch.tril(torch.ones(length + 1, length + 1, dtype=torch.bool))
        mask[length] = False
        mask[length, kept] = mask[length, length] = True
        ref = MODEL(ids, attention_mask=mask[None, None]).logits[0, -1]
        full = MODEL(ids).logits[0, -1]
    assert kept.tolist() == [0, 1, 2, 3, *range(32, 40)]
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)
    assert (out - full).abs().max() > 1e-2  # the evictions did change the output


def test_memory_shrinks_to_the_budget():
    full = RetentionCache(MODEL, RetentionPolicy(budget=None))
    kept = RetentionCache(MODEL, RetentionPolicy(budget=16, window=4))
    with torch.no_grad():
        for cache in (full, kept):
            MODEL(prompt(64), cache=cache)
    per_entry = 2 * MODEL.config.num_key_value_heads * (MODEL.config.hidden_size // 4) * 4 * MODEL.config.num_hidden_layers
    assert full.nbytes() == 64 * per_entry and kept.nbytes() == 16 * per_entry


def last(policy, length=48):
    *_, cache = steps(policy, length, new=0)
    return cache.layers[1]


def test_per_head_lets_each_kv_head_keep_its_own_entries():
    per_layer = last(RetentionPolicy(budget=16, score="knorm", sinks=0, window=0))
    per_head = last(RetentionPolicy(budget=16, score="knorm", sinks=0, window=0, per_head=True))
    assert (per_layer.positions[0] == per_layer.positions[0, :1]).all()
    assert not (per_head.positions[0] == per_head.positions[0, :1]).all()
    norms = torch.linalg.vector_norm(per_head.keys, dim=-1)[0]  # each head kept its own smallest-norm keys
    full = last(RetentionPolicy(budget=None, score="knorm"))
    all_norms = torch.linalg.vector_norm(full.keys, dim=-1)[0]
    for head in range(norms.shape[0]):
        assert torch.equal(norms[head].sort().values, all_norms[head].sort().values[:16])


@pytest.mark.parametrize("sinks,window", [(0, 0), (4, 0), (0, 8)])
def test_sinks_and_window_switches_protect_what_they_name(sinks, window):
    kept = set(last(RetentionPolicy(budget=16, score="knorm", sinks=sinks, window=window)).positions[0, 0].tolist())
    first, recent = set(range(4)), set(range(40, 48))
    assert (first <= kept, recent <= kept) == (sinks == 4, window == 8)  # knorm alone keeps neither whole


def test_streaming_keeps_the_sinks_and_the_most_recent():
    assert last(RetentionPolicy(budget=16, score="streaming_llm", sinks=4, window=0)).positions[0, 0].tolist() == \
        [0, 1, 2, 3, *range(36, 48)]


def test_tova_keeps_what_the_last_query_attends_most():
    full = last(RetentionPolicy(budget=None, score="tova"))
    logits = full.queries[:, :, -1:] @ full.keys.repeat_interleave(2, 1).transpose(-1, -2) / 4.0  # (B, Hq, 1, T)
    attention = logits.softmax(dim=-1)[0, :, 0].mean(0)                          # (T,) mean over every query head
    expected = set(attention[:-1].topk(15).indices.tolist()) | {47}
    assert set(last(RetentionPolicy(budget=16, score="tova", sinks=0, window=0)).positions[0, 0].tolist()) == expected


def test_h2o_statistics_are_the_mean_attention_each_entry_received():
    """Against the eager attention weights of the same model: column sums over the queries that saw each key,
    averaged over the query heads of each KV head (kvpress's ObservedAttentionPress)."""
    ids = prompt(48)
    full = RetentionCache(MODEL, RetentionPolicy(budget=None, score="h2o"))
    with torch.no_grad():
        MODEL(ids, cache=full)
        weights = tiny_llama(layers=3, attention="eager")(ids, output_attentions=True).attentions  # (B, Hq, T, T)
    count = torch.arange(48, 0, -1, dtype=torch.float32)
    for layer, w in zip(full.layers, weights):
        expected = (w.sum(dim=2) / count).view(1, 2, 2, 48).mean(dim=2)
        torch.testing.assert_close(layer.attention.total / layer.attention.count, expected, rtol=1e-4, atol=1e-6)
        assert torch.equal(layer.attention.count[0, 0], count)


def test_compressed_equals_a_cache_filled_under_that_policy():
    ids = prompt(48)
    recorded = RetentionCache(MODEL, RetentionPolicy(budget=None), observe=tuple(SCORES))
    with torch.no_grad():
        MODEL(ids, cache=recorded)
    for score in sorted(SCORES):
        policy = RetentionPolicy(budget=16, score=score, window=4)
        direct = RetentionCache(MODEL, policy)
        with torch.no_grad():
            MODEL(ids, cache=direct)
        copy = recorded.compressed(policy)
        for a, b in zip(direct.layers, copy.layers):
            assert torch.equal(a.positions, b.positions) and torch.equal(a.keys, b.keys)
    assert recorded.entries() == 48  # the recording itself is untouched


def test_bad_policies_fail_before_any_work():
    with pytest.raises(ValueError, match="unknown eviction score 'lru'"):
        RetentionPolicy(budget=8, score="lru")
    with pytest.raises(ValueError, match="cannot hold 4 sinks"):
        RetentionPolicy(budget=10, sinks=4, window=8)
    with pytest.raises(ValueError, match="did not record"):
        RetentionCache(MODEL, RetentionPolicy(budget=None, score="knorm")).compressed(RetentionPolicy(budget=8, score="h2o", window=0))


def test_equal_scores_keep_the_most_recent_entries():
    """SnapKV on a context shorter than its 64-query window scores every entry alike: the newest are kept."""
    kept = last(RetentionPolicy(budget=8, score="snapkv", sinks=0, window=0), length=25).positions[0, 0].tolist()
    assert kept == list(range(17, 25))
