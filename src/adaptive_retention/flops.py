"""Analytic FLOPs of an encoder forward under a retention schedule (nanoGPT's estimate_mfu, ours).

Counts matrix multiplies only, 2 FLOPs per multiply-add, which is what
`torch.utils.flop_counter.FlopCounterMode` counts too. Per block with n tokens, width d, FFN width f:
Q, K, V and output projections 8 n d², attention scores and weighted values 4 n² d, FFN 4 n d f.
"""

from __future__ import annotations

import torch

from .budget import layer_ratios
from .modeling import budget_counts


def block_flops(n: int, d: int, f: int) -> int:
    return 8 * n * d * d + 4 * n * n * d + 4 * n * d * f


def scorer_flops(n: int, d: int, kind: str = "mlp") -> int:
    """The MLP scorer d → d/2 → 1; the recurrent scorer adds U m, and the T×T moving-average product."""
    h = d // 2
    if kind == "mlp":
        return 2 * n * d * h + 2 * n * h
    return 2 * n * d * h * 2 + 2 * n * h + 2 * n * n * d


def tokens_per_block(n_content: int, n_special: int, num_layers: int, ratios: dict[int, float]) -> list[int]:
    """Tokens entering each block: special tokens plus ⌊ρ_l T⌋ content tokens after each drop."""
    counts, n = [], n_content
    for i in range(num_layers):
        if i in ratios:
            n = min(n, int(budget_counts(torch.tensor(n_content), ratios[i])))
        counts.append(n_special + n)
    return counts


SELECTIONS = ("learned", "free", "heavy_hitter", "soft")


def selection_flops(n: int, d: int, selection: str, scorer: str = "mlp") -> int:
    """Cost of choosing among n tokens: the scorer (learned, soft), nothing (random, truncation), or the
    next block's query/key projections and attention logits (heavy hitter: 4 n d² + 2 n² d)."""
    if selection in ("learned", "soft"):
        return scorer_flops(n, d, scorer)
    if selection == "heavy_hitter":
        return 4 * n * d * d + 2 * n * n * d
    if selection == "free":
        return 0
    raise ValueError(f"unknown selection {selection!r}; allowed: {list(SELECTIONS)}")


def encoder_flops(seq_len: int, num_layers: int, d: int, f: int, ratio: float = 1.0, schedule: str = "constant",
                  start_layer: int = 1, placement: str = "layerwise", scorer: str | None = "mlp", n_special: int = 2,
                  selection: str = "learned") -> int:
    """FLOPs of one example's forward through the blocks (embeddings and head excluded).

    `seq_len` counts every token; `n_special` of them are always kept. `scorer=None` is the plain
    model: no scorers, no drops. `selection="soft"` is training with gates at full length: every
    block sees every token, plus the scorers.
    """
    n_content = seq_len - n_special
    if scorer is None:
        return sum(block_flops(seq_len, d, f) for _ in range(num_layers))
    ratios = layer_ratios(schedule, ratio, start_layer, num_layers, placement)
    counts = [seq_len] * num_layers if selection == "soft" else tokens_per_block(n_content, n_special, num_layers, ratios)
    total = sum(block_flops(n, d, f) for n in counts)
    for b in ratios:  # the selection sees the tokens that left the block before it
        total += selection_flops(seq_len if b == 0 else counts[b - 1], d, selection, scorer)
    return total


def _register_cpu_sdpa() -> None:
    """FlopCounterMode has formulas for the CUDA attention kernels, not for the CPU flash kernel
    that SDPA dispatches to here; give it the same formula so measured and analytic counts compare."""
    from torch.utils import flop_counter as fc

    ops = (torch.ops.aten._scaled_dot_product_flash_attention_for_cpu, torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward)
    if ops[0] in fc.flop_registry:
        return

    @fc.register_flop_formula(ops[0])
    def _fwd(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        return fc.sdpa_flop_count(query_shape, key_shape, value_shape)

    @fc.register_flop_formula(ops[1])
    def _bwd(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        return fc.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def measured_flops(fn, *args, **kwargs) -> int:
    """FLOPs of `fn(*args, **kwargs)` as torch.utils.flop_counter counts them (CPU SDPA included)."""
    from torch.utils.flop_counter import FlopCounterMode

    _register_cpu_sdpa()
    with FlopCounterMode(display=False) as counter:
        fn(*args, **kwargs)
    return counter.get_total_flops()
