"""KV-cache eviction scores behind one interface (issue 18). Pure torch: no transformers import.

A score maps what one cache layer holds to one number per entry, higher = keep:
  keys       (B, Hkv, T, D)  after RoPE, as the cache stores them
  positions  (B, Hkv, T)     each entry's true token position (never renumbered)
  queries    (B, Hq, w, D)   the latest w queries after RoPE, `query_positions` (w,) their positions
  attention  AttentionStats  running sum and count of the attention each entry received (H2O)
and returns (B, Hkv, T). The definitions follow NVIDIA kvpress 0.5.5 — StreamingLLMPress, ObservedAttentionPress
(H2O's accumulated attention, as a mean over the queries that saw the entry), TOVAPress, SnapKVPress, KnormPress,
RandomPress — and `tests/kvpress/` checks each against kvpress itself in an environment that has it (`.ci/run`).
Entries inside the observation window (position ≥ the oldest query's) score max + 1, as kvpress pads them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .defaults import LEARNED  # the trained gates' log α, fixed when the entry is created (decoding.learned)

SNAPKV_WINDOW = 64  # kvpress SnapKVPress defaults: observation window and pooling kernel
SNAPKV_KERNEL = 5


@dataclass
class AttentionStats:
    """Attention received per entry, summed over the queries that saw it (group-averaged), and how many did."""

    total: torch.Tensor  # (B, Hkv, T)
    count: torch.Tensor  # (B, Hkv, T)


def window_attention(queries: torch.Tensor, query_positions: torch.Tensor, keys: torch.Tensor,
                     positions: torch.Tensor) -> torch.Tensor:
    """softmax(q kᵀ / √d) over the cache, float32, causal in true positions: (B, Hq, w, T)."""
    groups = queries.shape[1] // keys.shape[1]
    k = keys.repeat_interleave(groups, dim=1).float()                               # (B, Hq, T, D)
    logits = queries.float() @ k.transpose(-1, -2) / math.sqrt(queries.shape[-1])   # (B, Hq, w, T)
    future = positions.repeat_interleave(groups, dim=1)[:, :, None, :] > query_positions[None, None, :, None]
    return logits.masked_fill(future, float("-inf")).softmax(dim=-1)


def group_mean(per_query_head: torch.Tensor, kv_heads: int) -> torch.Tensor:
    """(B, Hq, T) → (B, Hkv, T): the mean over the query heads that share a KV head."""
    b, hq, t = per_query_head.shape
    return per_query_head.view(b, kv_heads, hq // kv_heads, t).mean(dim=2)


def _pad_window(scores: torch.Tensor, in_window: torch.Tensor) -> torch.Tensor:
    """Entries the observation window covers score max + 1 (kvpress's padding): always kept."""
    return scores.masked_fill(in_window, scores.max().item() + 1)


def streaming_llm(keys, positions, **_) -> torch.Tensor:
    """StreamingLLM: the most recent entries (the cache's sinks keep the first ones)."""
    return positions.to(torch.float32)


def knorm(keys, **_) -> torch.Tensor:
    """Knorm: keep the keys of smallest L2 norm."""
    return -torch.linalg.vector_norm(keys, dim=-1, dtype=torch.promote_types(keys.dtype, torch.float32))


def random(keys, generator: torch.Generator | None = None, **_) -> torch.Tensor:
    """Random: uniform scores from the cache's seeded generator."""
    return torch.rand(*keys.shape[:-1], generator=generator, dtype=keys.dtype).to(keys.device)  # a CPU generator


def tova(keys, positions, queries, query_positions, **_) -> torch.Tensor:
    """TOVA: the newest query's attention, averaged over the query heads of each KV head (over all heads when the
    cache selects per layer — kvpress's TOVAPress)."""
    attention = window_attention(queries[:, :, -1:], query_positions[-1:], keys, positions)[:, :, 0]  # (B, Hq, T)
    return _pad_window(group_mean(attention, keys.shape[1]), positions >= query_positions[-1])


def snapkv(keys, positions, queries, query_positions, window: int = SNAPKV_WINDOW, kernel: int = SNAPKV_KERNEL,
           **_) -> torch.Tensor:
    """SnapKV: the last `window` queries' attention, averaged, pooled over neighbouring entries (kernel), averaged
    over each KV head's query heads. Entries sit in position order, the window's own at the end; zeroing those
    before pooling equals kvpress's zero padding at the window's edge."""
    queries, query_positions = queries[:, :, -window:], query_positions[-window:]
    in_window = positions >= query_positions[0]
    attention = window_attention(queries, query_positions, keys, positions).mean(dim=-2)           # (B, Hq, T)
    attention = attention.masked_fill(in_window.repeat_interleave(attention.shape[1] // keys.shape[1], dim=1), 0.0)
    pooled = F.avg_pool1d(attention, kernel_size=kernel, padding=kernel // 2, stride=1)
    return _pad_window(group_mean(pooled, keys.shape[1]), in_window)


def h2o(keys, attention: AttentionStats, **_) -> torch.Tensor:
    """H2O: the attention an entry received, accumulated over every query since it entered, per query that saw it
    (kvpress's ObservedAttentionPress at prefill)."""
    return attention.total / attention.count


SCORES = {"streaming_llm": streaming_llm, "h2o": h2o, "tova": tova, "snapkv": snapkv, "knorm": knorm,
          "random": random}
NEEDS_QUERIES = {"tova": 1, "snapkv": SNAPKV_WINDOW}  # how many recent queries a score reads
NEEDS_ATTENTION = {"h2o"}  # scores that read the running attention statistics


def check_score(name: str) -> str:
    if name not in SCORES and name != LEARNED:
        raise ValueError(f"unknown eviction score {name!r}; choose from {sorted(SCORES) + [LEARNED]}")
    return name
