"""A KV cache that keeps at most M entries per layer while a causal LM decodes (issue 18).

`RetentionCache` is a `transformers` Cache: pass it to `model(..., cache=...)` or `model.generate(..., cache=...)`.
After each attention layer runs, a forward hook (installed once per model, acting only for a RetentionCache) scores
the layer's entries with the policy's score (`decoding.scores`) and evicts the lowest until M remain — after the
prompt (prefill) and after every generated token, as kvpress's presses do: a step attends to its M entries plus
its own tokens, then the cache is cut back to M. The first `sinks` positions and the last `window` positions are
never evicted. Keys are stored after RoPE at their original positions; `get_seq_length` reports the tokens seen,
not the entries kept, so position ids continue from the true length and the causal mask stays right.
Rows of a batch must not be padded (every row has seen the same positions).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn
from transformers.cache_utils import Cache, DynamicLayer
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from .defaults import SINKS, WINDOW
from .scores import (LEARNED, NEEDS_ATTENTION, NEEDS_QUERIES, SCORES, AttentionStats, check_score, group_mean,
                     window_attention)

_QUERY_CHUNK = 256  # queries per block when accumulating attention statistics over a long prefill


@dataclass(frozen=True)
class RetentionPolicy:
    """What a cache keeps: at most `budget` entries per layer (None: all), chosen by `score`."""

    budget: int | None
    score: str = "tova"
    sinks: int = SINKS
    window: int = WINDOW
    per_head: bool = False  # False: one set of positions per layer; True: each KV head keeps its own M
    seed: int = 0  # the `random` score's generator

    def __post_init__(self):
        check_score(self.score)
        if self.sinks < 0 or self.window < 0:
            raise ValueError(f"sinks and window must be ≥ 0, got {self.sinks} and {self.window}")
        if self.budget is not None and self.budget < max(1, self.sinks + self.window):
            raise ValueError(f"budget {self.budget} cannot hold {self.sinks} sinks + a window of {self.window}")


KEEP_ALL = RetentionPolicy(budget=None, score="streaming_llm")  # the full cache (its score records nothing)


class RetentionLayer(DynamicLayer):
    """One layer's entries, their true positions and what the scores read (recent queries, attention received)."""

    def __init__(self):
        super().__init__()
        self.seen = 0  # tokens this layer has processed: the next token's position
        self.positions = None  # (B, Hkv, T) long
        self.queries = self.query_positions = None  # (B, Hq, ≤w, D) after RoPE, (≤w,)
        self.attention: AttentionStats | None = None
        self.learned = None  # (B, Hkv, T) the learned gates' log α of each entry, set when it was created

    def update(self, key_states, value_states, *args, **kwargs):
        new = key_states.shape[-2]
        keys, values = super().update(key_states, value_states)
        b, h = key_states.shape[:2]
        fresh = torch.arange(self.seen, self.seen + new, device=keys.device).expand(b, h, new)
        self.positions = fresh if self.positions is None else torch.cat([self.positions, fresh], dim=-1)
        if self.attention is not None:
            zeros = key_states.new_zeros((b, h, new), dtype=torch.float32)
            self.attention = AttentionStats(torch.cat([self.attention.total, zeros], -1),
                                            torch.cat([self.attention.count, zeros], -1))
        self.seen += new
        return keys, values

    def get_seq_length(self) -> int:
        return self.seen

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        """The kept entries sit at mask indices seen − kept … seen − 1: every one lies before the new queries."""
        kept = self.keys.shape[-2] if self.is_initialized and self.keys.numel() else 0
        return kept + query_length, self.seen - kept

    def crop(self, max_length: int) -> None:
        raise NotImplementedError("a RetentionCache cannot be cropped: evicted entries are gone")

    def entries(self) -> int:
        return 0 if self.positions is None else self.positions.shape[-1]

    def select(self, keep: torch.Tensor) -> None:
        """Keep the entries at `keep` (B, Hkv, M) along the sequence axis."""
        index = keep.unsqueeze(-1).expand(-1, -1, -1, self.keys.shape[-1])
        self.keys, self.values = self.keys.gather(2, index), self.values.gather(2, index)
        self.positions = self.positions.gather(2, keep)
        if self.learned is not None:
            self.learned = self.learned.gather(2, keep)
        if self.attention is not None:
            self.attention = AttentionStats(self.attention.total.gather(2, keep), self.attention.count.gather(2, keep))

    def clone(self) -> "RetentionLayer":
        copy = RetentionLayer()
        copy.__dict__.update({k: (v.clone() if torch.is_tensor(v) else v) for k, v in self.__dict__.items()})
        if self.attention is not None:
            copy.attention = AttentionStats(self.attention.total.clone(), self.attention.count.clone())
        return copy


class RetentionCache(Cache):
    """A Cache that holds at most `policy.budget` entries per layer. `observe` names extra scores whose statistics
    to record (a full-cache prefill that several policies will later compress: `compressed`). Score "learned"
    reads `gates` (`decoding.learned.CacheGates`), run on each token's hidden state as it enters the cache; with
    per-KV-head gates the learned score keeps each head's own entries (per_head), whatever the policy says."""

    @classmethod
    def full(cls, model: nn.Module, observe: tuple[str, ...] = (), gates=None) -> RetentionCache:
        """A cache that keeps every entry and records what `observe`'s scores (and `gates`) read: the prefill that
        compressed variants copy, the teacher a trained cache is measured against."""
        return cls(model, KEEP_ALL, observe, gates)

    def __init__(self, model: nn.Module, policy: RetentionPolicy, observe: tuple[str, ...] = (), gates=None):
        install(model)
        config = model.config.get_text_config(decoder=True)
        super().__init__(layers=[RetentionLayer() for _ in range(config.num_hidden_layers)])
        self.observe = {policy.score, *map(check_score, observe)}
        if LEARNED in self.observe and gates is None:
            raise ValueError("score 'learned' needs the trained gates: RetentionCache(..., gates=CacheGates.load(path))")
        self.gates = gates if LEARNED in self.observe else None
        if self.gates is not None and self.gates.config["heads"] not in (1, kv_heads(model)):
            raise ValueError(f"gates for {self.gates.config['heads']} heads, but the model has {kv_heads(model)} KV heads")
        self.policy = self._for_gates(policy)
        self.generator = torch.Generator().manual_seed(policy.seed)

    def _for_gates(self, policy: RetentionPolicy) -> RetentionPolicy:
        """The policy the cache applies: per-KV-head gates make the learned score choose per head."""
        per_head_gates = self.gates is not None and self.gates.config["heads"] > 1
        return replace(policy, per_head=True) if policy.score == LEARNED and per_head_gates else policy

    def entries(self) -> int:
        """Entries held in the fullest layer."""
        return max(layer.entries() for layer in self.layers)

    def nbytes(self) -> int:
        """Bytes of keys and values held (what eviction saves)."""
        return sum(layer.keys.nbytes + layer.values.nbytes for layer in self.layers if layer.is_initialized)

    def compressed(self, policy: RetentionPolicy) -> "RetentionCache":
        """A copy of this cache cut to `policy` by its score, as if it had been filled under that policy."""
        if policy.score not in self.observe:
            raise ValueError(f"this cache did not record what {policy.score!r} reads (observe={sorted(self.observe)})")
        copy = RetentionCache.__new__(RetentionCache)
        Cache.__init__(copy, layers=[layer.clone() for layer in self.layers])
        copy.observe, copy.gates = {policy.score}, self.gates if policy.score == LEARNED else None
        copy.policy = policy = copy._for_gates(policy)
        copy.generator = torch.Generator().manual_seed(policy.seed)
        for layer in copy.layers:
            if policy.score not in NEEDS_ATTENTION:
                layer.attention = None
            if policy.score != LEARNED:
                layer.learned = None
            evict(layer, policy, copy.generator)
        return copy

    def observe_step(self, index: int, queries: torch.Tensor, hidden_states: torch.Tensor) -> None:
        """Record what the scores read from layer `index`'s step — its queries (B, Hq, q, D) and, for the learned
        score, its input hidden states (B, q, d) — then evict down to the budget."""
        layer = self.layers[index]
        q = queries.shape[2]
        if self.gates is not None:
            b, h = layer.positions.shape[:2]
            fresh = self.gates(index, hidden_states).expand(b, h, q)                         # (B, Hkv, q)
            layer.learned = fresh if layer.learned is None else torch.cat([layer.learned, fresh], dim=-1)
        query_positions = torch.arange(layer.seen - q, layer.seen, device=queries.device)
        window = max((NEEDS_QUERIES.get(name, 0) for name in self.observe), default=0)
        if window:
            kept = queries if layer.queries is None else torch.cat([layer.queries, queries], dim=2)
            kept_positions = query_positions if layer.queries is None else torch.cat([layer.query_positions,
                                                                                       query_positions])
            layer.queries, layer.query_positions = kept[:, :, -window:], kept_positions[-window:]
        if NEEDS_ATTENTION & self.observe:
            self._accumulate(layer, queries, query_positions)
        evict(layer, self.policy, self.generator)

    @staticmethod
    def _accumulate(layer: RetentionLayer, queries: torch.Tensor, query_positions: torch.Tensor) -> None:
        if layer.attention is None:  # first step: every entry so far is this step's
            zeros = layer.positions.new_zeros(layer.positions.shape, dtype=torch.float32)
            layer.attention = AttentionStats(zeros, zeros.clone())
        for start in range(0, queries.shape[2], _QUERY_CHUNK):
            chunk, chunk_positions = queries[:, :, start:start + _QUERY_CHUNK], query_positions[start:start + _QUERY_CHUNK]
            weights = window_attention(chunk, chunk_positions, layer.keys, layer.positions)        # (B, Hq, c, T)
            layer.attention.total += group_mean(weights.sum(dim=2), layer.keys.shape[1])
            layer.attention.count += (layer.positions[:, :, None, :] <= chunk_positions[None, None, :, None]).sum(2)


def evict(layer: RetentionLayer, policy: RetentionPolicy, generator: torch.Generator | None = None) -> None:
    """Cut the layer to the budget: drop the lowest scores outside the sinks and the recent window."""
    if policy.budget is None or layer.entries() <= policy.budget:
        return
    if policy.score == LEARNED:
        scores = layer.learned                                                                  # (B, Hkv, T)
    else:
        scores = SCORES[policy.score](keys=layer.keys, positions=layer.positions, queries=layer.queries,
                                      query_positions=layer.query_positions, attention=layer.attention,
                                      generator=generator)                                     # (B, Hkv, T)
    protected = (layer.positions < policy.sinks) | (layer.positions >= layer.seen - policy.window)
    if not policy.per_head:  # one choice per layer: positions agree across heads
        scores, protected = scores.mean(dim=1, keepdim=True), protected[:, :1]
    scores = scores.masked_fill(protected, float("inf"))
    # highest scores first, equal scores broken towards the most recent entry (not left to topk's arbitrary order:
    # SnapKV over a context shorter than its window, for one, scores every entry alike)
    recent_first = layer.positions[:, :scores.shape[1]].argsort(dim=-1, descending=True, stable=True)
    ranked = scores.gather(-1, recent_first).argsort(dim=-1, descending=True, stable=True)
    keep = recent_first.gather(-1, ranked[..., :policy.budget]).sort(dim=-1).values
    layer.select(keep.expand(-1, layer.keys.shape[1], -1))


def queries_of(attention: nn.Module, hidden_states: torch.Tensor, position_embeddings) -> torch.Tensor:
    """A Llama-like attention module's queries after RoPE: (B, q, hidden) → (B, Hq, q, D)."""
    b, q, _ = hidden_states.shape
    queries = attention.q_proj(hidden_states).view(b, q, -1, attention.head_dim).transpose(1, 2)
    cos, sin = position_embeddings
    return apply_rotary_pos_emb(queries, queries, cos, sin)[0]


def kv_heads(model: nn.Module) -> int:
    """The model's key/value heads (its attention heads when it does not group them)."""
    config = model.config.get_text_config(decoder=True)
    return config.num_key_value_heads or config.num_attention_heads


def attention_modules(model: nn.Module) -> list[nn.Module]:
    """The model's Llama-like attention modules (q_proj, layer_idx), in layer order: what every hook here attaches to."""
    modules = [m for m in model.modules() if hasattr(m, "q_proj") and hasattr(m, "layer_idx")]
    if not modules:
        raise ValueError(f"{type(model).__name__} has no Llama-like attention modules (q_proj, layer_idx) to hook")
    return modules


def hook_hidden_states(args: tuple, kwargs: dict) -> torch.Tensor:
    """The hidden states (B, T, hidden) an attention module is called with, as a hook `with_kwargs=True` sees them."""
    return args[0] if args else kwargs["hidden_states"]


def _after_attention(module, args, kwargs, output):
    cache = kwargs.get("cache", kwargs.get("past_key_values"))
    if isinstance(cache, RetentionCache):
        hidden_states = hook_hidden_states(args, kwargs)
        with torch.no_grad():
            queries = queries_of(module, hidden_states, kwargs["position_embeddings"])
            cache.observe_step(module.layer_idx, queries, hidden_states)
    return output


def install(model: nn.Module) -> None:
    """Hook every attention module once; the hook acts only when the call's cache is a RetentionCache."""
    if getattr(model, "_retention_hooks", None):
        return
    model._retention_hooks = [module.register_forward_hook(_after_attention, with_kwargs=True)
                              for module in attention_modules(model)]
