"""Throughput of the plain model against retained copies, measured in one process.

Timings on a shared CPU drift by tens of percent between runs, so the variants are timed in
alternation (one batch each, round after round) and compared by their medians.
"""

from __future__ import annotations

import copy
import statistics
import time

import torch
from torch import nn

from .flops import encoder_flops
from .modeling import RetentionConfig, apply_retention


def synthetic_batch(vocab_size: int, batch_size: int, seq_len: int, cls_id: int, sep_id: int, seed: int = 0) -> dict:
    """Full-length token ids (no padding) framed by [CLS] … [SEP]: throughput does not depend on the words."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, vocab_size, (batch_size, seq_len), generator=g)
    ids[:, 0], ids[:, -1] = cls_id, sep_id
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def time_alternating(models: dict[str, nn.Module], batch: dict, repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds per batch for each model, timed round-robin so drift hits every variant alike."""
    device = next(iter(models.values())).device
    batch = {k: v.to(device) for k, v in batch.items()}
    times = {name: [] for name in models}
    for r in range(warmup + repeats):
        for name, model in models.items():
            _sync(device)
            t0 = time.perf_counter()
            model(**batch)
            _sync(device)
            if r >= warmup:
                times[name].append(time.perf_counter() - t0)
    return times


def throughput_table(model: nn.Module, special_token_ids: list[int], cls_id: int, sep_id: int, lengths: list[int],
                     ratios: list[float], batch_size: int = 32, repeats: int = 5, base_config: RetentionConfig | None = None):
    """Rows of examples/s, speedup over the plain model, FLOP-ideal speedup and the share achieved."""
    base_config = base_config or RetentionConfig()
    model = model.eval()
    variants = {"plain": model, "plain-copy": copy.deepcopy(model)}  # the copy shows the noise floor of one run
    for r in ratios:
        variants[f"ratio={r}"] = apply_retention(copy.deepcopy(model), RetentionConfig(**{**base_config.to_dict(), "ratio": r}), special_token_ids).eval()
    c = model.config
    rows = []
    for T in lengths:
        batch = synthetic_batch(c.vocab_size, batch_size, T, cls_id, sep_id)
        times = time_alternating(variants, batch, repeats)
        t_plain = statistics.median(times["plain"])
        f_plain = encoder_flops(T, c.num_hidden_layers, c.hidden_size, c.intermediate_size, scorer=None)
        for name, ts in times.items():
            t = statistics.median(ts)
            if name.startswith("plain"):
                ratio, f = None, f_plain
            else:
                ratio = float(name.split("=")[1])
                f = encoder_flops(T, c.num_hidden_layers, c.hidden_size, c.intermediate_size, ratio=ratio, schedule=base_config.schedule,
                                  start_layer=base_config.start_layer, placement=base_config.placement, scorer=base_config.scorer)
            speedup, ideal = t_plain / t, f_plain / f
            rows.append({"seq_len": T, "variant": name, "ratio": ratio, "sec_per_batch": t, "examples_per_s": batch_size / t,
                         "speedup": speedup, "flop_ratio": f / f_plain, "ideal_speedup": ideal, "share_of_ideal": speedup / ideal})
    return rows
