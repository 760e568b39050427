"""Each re-implemented eviction score equals NVIDIA kvpress's on the same inputs (issue 18).

kvpress pins transformers<5.3, so this runs in its own environment: `make test-kvpress` (.venv-kvpress: torch 2.13,
kvpress 0.5.5, transformers 5.2) with the project's `src` on the path; the main suite does not collect this folder.
Inputs: layer 1 of a random tiny Llama (4 query heads over 2 KV heads), 96 random hidden states, as kvpress's
presses see them at the end of a prefill.
"""

import pytest
import torch
from kvpress import (KnormPress, ObservedAttentionPress, RandomPress, SnapKVPress, StreamingLLMPress,
                     TOVAPress)
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from adaptive_retention.decoding.cache import RetentionLayer, RetentionPolicy, evict, queries_of
from adaptive_retention.decoding.scores import AttentionStats, SCORES, window_attention

T, HIDDEN = 96, 64


@pytest.fixture(scope="module")
def layer():
    """(attention module, hidden states, position embeddings, keys, values, queries) at the end of a prefill."""
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=128, hidden_size=HIDDEN, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, attn_implementation="eager")
    model = LlamaForCausalLM(config).eval()
    module = model.model.layers[1].self_attn
    hidden = torch.randn(1, T, HIDDEN)
    embeddings = model.model.rotary_emb(hidden, torch.arange(T)[None])
    with torch.no_grad():
        keys = module.k_proj(hidden).view(1, T, 2, 16).transpose(1, 2)
        keys = apply_rotary_pos_emb(keys, keys, *embeddings)[0]
        values = module.v_proj(hidden).view(1, T, 2, 16).transpose(1, 2)
        queries = queries_of(module, hidden, embeddings)
    return module, hidden, embeddings, keys, values, queries


def ours(name, layer, **extra):
    module, hidden, embeddings, keys, values, queries = layer
    positions = torch.arange(T).expand(1, 2, T)
    return SCORES[name](keys=keys, positions=positions, queries=queries, query_positions=torch.arange(T), **extra)


def theirs(press, layer, attentions=None):
    module, hidden, embeddings, keys, values, queries = layer
    with torch.no_grad():
        return press.score(module, hidden, keys, values, attentions, {"position_embeddings": embeddings})


def test_knorm(layer):
    torch.testing.assert_close(ours("knorm", layer), theirs(KnormPress(0.5), layer), rtol=0, atol=0)


def test_random_from_the_same_seed(layer):
    torch.testing.assert_close(ours("random", layer, generator=torch.Generator().manual_seed(7)),
                               theirs(RandomPress(0.5, seed=7), layer), rtol=0, atol=0)


def test_snapkv(layer):
    torch.testing.assert_close(ours("snapkv", layer), theirs(SnapKVPress(0.5), layer), rtol=1e-5, atol=1e-7)


def test_tova_over_every_head_as_a_per_layer_cache_averages_it(layer):
    """Our TOVA scores each KV head by its own query heads; a per-layer cache (the default) averages over KV heads,
    which is kvpress's mean over every query head. The newest entry scores above all others in both (the max + 1
    padding, taken over per-head scores here, over their mean in kvpress)."""
    per_layer, reference = ours("tova", layer).mean(dim=1, keepdim=True).expand(1, 2, T), theirs(TOVAPress(0.5), layer)
    torch.testing.assert_close(per_layer[..., :-1], reference[..., :-1], rtol=1e-5, atol=1e-7)
    assert (per_layer[..., -1:] > per_layer[..., :-1]).all() and (reference[..., -1:] > reference[..., :-1]).all()


def test_h2o_is_observed_attention(layer):
    module, hidden, embeddings, keys, values, queries = layer
    weights = window_attention(queries, torch.arange(T), keys, torch.arange(T).expand(1, 2, T))  # (1, 4, T, T)
    total = weights.sum(dim=2).view(1, 2, 2, T).mean(dim=2)
    count = torch.arange(T, 0, -1, dtype=torch.float32).expand(1, 2, T)
    with torch.no_grad():  # kvpress reads the model's own eager attention weights
        mask = torch.full((T, T), float("-inf")).triu(1)[None, None]
        _, eager = module(hidden, position_embeddings=embeddings, attention_mask=mask)
    torch.testing.assert_close(eager, weights, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours("h2o", layer, attention=AttentionStats(total, count)),
                               theirs(ObservedAttentionPress(0.5), layer, attentions=eager), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name,press,sinks", [("streaming_llm", StreamingLLMPress(0.75), 4),
                                              ("knorm", KnormPress(0.75), 0), ("snapkv", SnapKVPress(0.25), 0)])
def test_the_kept_entries_equal_kvpress_compress(layer, name, press, sinks):
    """Per KV head, no window: our eviction keeps exactly what kvpress's compress keeps (StreamingLLM: its 4 sinks).
    SnapKV keeps 72 ≥ its 64-query window: below that kvpress picks among equal scores in topk's arbitrary order,
    where ours keeps the most recent (test_decoding_cache)."""
    module, hidden, embeddings, keys, values, queries = layer
    cached = RetentionLayer()
    cached.update(keys, values)
    cached.queries, cached.query_positions = queries, torch.arange(T)
    kept = T - int(T * press.compression_ratio)  # kvpress's compute_n_kept
    evict(cached, RetentionPolicy(budget=kept, score=name, sinks=sinks, window=0, per_head=True))
    with torch.no_grad():
        kept_keys, _ = press.compress(module, hidden, keys, values, None, {"position_embeddings": embeddings})
    for head in range(2):
        expected = {tuple(k.tolist()) for k in kept_keys[0, head]}
        assert {tuple(k.tolist()) for k in cached.keys[0, head]} == expected
