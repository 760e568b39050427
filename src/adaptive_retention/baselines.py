"""Baseline token selectors behind one interface (SPEC §4): scores (B, N) from which the
retention loop keeps the top M_l, exactly as it does with the learned scores.

- `random`: uniform random scores from a seeded generator (a fresh draw per call).
- `truncation`: earlier positions score higher: keeps the first M tokens.
- `heavy_hitter` (H2O-style): attention each token receives — attention probabilities of the
  block the tokens are about to enter, summed over heads and (valid) queries. Computed from that
  block's own query/key projections only where needed, so the blocks keep their SDPA kernels.
"""

from __future__ import annotations

import torch
from torch import nn

from .modeling import Retention, retention_of


def random_selector(seed: int):
    generator = torch.Generator().manual_seed(seed)

    def select(h, positions, valid, boundary):
        return torch.rand(positions.shape, generator=generator).to(h.device)
    return select


def truncation_selector():
    def select(h, positions, valid, boundary):
        return -positions.to(h.dtype)
    return select


def attention_received(block: nn.Module, retention: Retention, h: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Σ_heads Σ_valid queries softmax(q kᵀ/√d_h + mask) for each key: (B, N)."""
    W_q, W_k, heads = retention.family.query_key(block)
    B, N, _ = h.shape
    q = W_q(h).view(B, N, heads, -1).transpose(1, 2)  # (B, H, N, d_h)
    k = W_k(h).view(B, N, heads, -1).transpose(1, 2)
    logits = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5  # (B, H, N, N)
    logits = logits.masked_fill(~valid[:, None, None, :], float("-inf"))
    probs = torch.softmax(logits, dim=-1) * valid[:, None, :, None]
    return probs.sum(dim=(1, 2))


def heavy_hitter_selector(model: nn.Module):
    retention = retention_of(model)
    blocks = retention.family.blocks(model.base_model)

    def select(h, positions, valid, boundary):
        return attention_received(blocks[min(boundary, len(blocks) - 1)], retention, h, valid)
    return select


# one factory per baseline of methods.BASELINES (a test checks they agree): (model, seed) -> selector
SELECTORS = {"random": lambda model, seed: random_selector(seed), "truncation": lambda model, seed: truncation_selector(),
             "heavy_hitter": lambda model, seed: heavy_hitter_selector(model)}


def selector_for(method: str, model: nn.Module, seed: int):
    """The selector of a baseline method; None for the learned scores (and for full / threshold)."""
    return SELECTORS[method](model, seed) if method in SELECTORS else None
