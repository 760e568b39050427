"""What a retention cache costs and saves while decoding: cache memory and time per generated token against context
length, the full cache beside each score at each compression, measured in one process (issue 18).

Per length the context is prefilled once; each variant decodes from its own copy with eviction active (one entry in,
one out per token, the score computed every step). Variants alternate within each repeat, so drift on a shared
machine lands on all of them; the table reports each variant's median and its ratio to the full cache's.
"""

from __future__ import annotations

import statistics
import time

import torch
from tqdm import tqdm

from .bench import FULL, prefilled
from .cache import KEEP_ALL, RetentionCache, RetentionPolicy
from .defaults import budget_for

COST_COLUMNS = ("length", "method", "compression", "budget", "cache_mib", "memory_ratio", "ms_per_token", "time_ratio")


@torch.no_grad()
def _decode_time(model, cache: RetentionCache, first: torch.Tensor, tokens: int) -> float:
    """Seconds per token of greedy decoding `tokens` tokens from `cache` (which it extends)."""
    token = first
    sync = torch.cuda.synchronize if first.is_cuda else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(tokens):
        token = model(token, cache=cache, logits_to_keep=1).logits[:, -1:].argmax(dim=-1)
    sync()
    return (time.perf_counter() - start) / tokens


def decode_cost(model, vocab: int, lengths: list[int], methods: list[str], compressions: list[float], sinks: int,
                window: int, tokens: int = 16, repeats: int = 3, seed: int = 0, quiet: bool = False, gates=None) -> list[dict]:
    rows = []
    generator = torch.Generator().manual_seed(seed)
    for length in lengths:
        context = torch.randint(0, vocab, (1, length), generator=generator).to(model.device)
        full = prefilled(model, context, tuple(methods), gates)
        variants = [(FULL, 0.0, KEEP_ALL)]
        variants += [(m, c, RetentionPolicy(budget_for(length, c, sinks + window), m, sinks, window))
                     for c in compressions for m in methods]
        times = {v[:2]: [] for v in variants}
        memory = {}
        for _ in tqdm(range(repeats), desc=f"cost {length}", disable=quiet):
            for method, c, policy in variants:
                cache = full.compressed(policy)
                memory[method, c] = cache.nbytes()
                times[method, c].append(_decode_time(model, cache, context[:, -1:], tokens))
        base_time, base_memory = statistics.median(times[FULL, 0.0]), memory[FULL, 0.0]
        for method, c, policy in variants:
            t = statistics.median(times[method, c])
            rows.append(dict(length=length, method=method, compression=c, budget=policy.budget or length,
                             cache_mib=round(memory[method, c] / 2**20, 2),
                             memory_ratio=round(memory[method, c] / base_memory, 3),
                             ms_per_token=round(1000 * t, 2), time_ratio=round(t / base_time, 3)))
    return rows
