"""Efficiency measurements on a tiny encoder: the right keys, sane numbers, counted FLOPs = analytic."""

import math

import pytest
import torch
from transformers import AutoModel

from adaptive_retention.efficiency import fit_exponent, long_encoder_like, measure, synthetic_batch

from conftest import tiny_config

SPECIAL = [101 % 120, 102 % 120]


@pytest.fixture(scope="module")
def rows():
    torch.manual_seed(0)
    model = AutoModel.from_config(tiny_config("bert", layers=3))
    return measure(model, SPECIAL, *SPECIAL, lengths=[40], ratios=[1.0, 0.3], batch_size=2, repeats=1)


def test_rows_have_every_variant_and_sane_numbers(rows):
    names = {(r["mode"], r["variant"]) for r in rows}
    for mode in ("inference", "train_step"):
        assert {(mode, v) for v in ("plain", "plain-copy", "learned@1.0", "learned@0.3", "random@0.3", "truncation@0.3",
                                    "heavy_hitter@0.3")} <= names
    for lagrangian in ("soft@0.3", "sparse@0.3"):  # the method's own training step: no inference counterpart
        assert ("train_step", lagrangian) in names and ("inference", lagrangian) not in names
    for r in rows:
        for key in ("sec_per_batch", "examples_per_s", "tokens_per_s", "sec_per_1k_tokens", "speedup", "peak_mem_bytes",
                    "peak_act_bytes", "analytic_flops", "counted_flops", "ideal_speedup"):
            assert math.isfinite(r[key]) and r[key] > 0, (r["variant"], key, r[key])
        assert r["sec_per_1k_tokens"] == pytest.approx(1000 * r["sec_per_batch"] / (2 * 40))


def test_counted_flops_agree_with_the_analytic_count(rows):
    by = {(r["mode"], r["variant"]): r for r in rows}
    for r in rows:
        pooler = 2 * 32 * 32 * 2 * (3 if r["mode"] == "train_step" else 1)  # BertModel's pooler on [CLS], batch 2
        if r["method"] == "sparse":  # the analytic count is the ideal ρT; a step keeps what its gates drew (padded)
            assert r["counted_flops"] < 0.8 * by["train_step", "soft@0.3"]["counted_flops"]
        else:
            assert r["counted_flops"] == pytest.approx(r["analytic_flops"] + pooler, rel=0.01), (r["mode"], r["variant"])


def test_retention_cuts_training_activations_and_so_do_gathered_gates_but_masked_ones_do_not(rows):
    by = {(r["mode"], r["variant"]): r for r in rows}
    plain = by["train_step", "plain"]["peak_act_bytes"]
    assert by["train_step", "learned@0.3"]["peak_act_bytes"] < 0.8 * plain
    assert by["train_step", "soft@0.3"]["peak_act_bytes"] >= plain  # the masked Lagrangian step runs at full length
    assert by["train_step", "sparse@0.3"]["peak_act_bytes"] < 0.8 * plain  # gathered: exact-zero gates leave
    assert by["inference", "learned@0.3"]["flop_ratio"] < 0.6  # block 0 runs at full length


def test_synthetic_batch_keeps_special_ids_out_of_the_content():
    b = synthetic_batch(120, 4, 50, 101, 102, special_ids=[0, 100, 103])
    content = b["input_ids"][:, 1:-1]
    assert not torch.isin(content, torch.tensor([0, 100, 101, 102, 103])).any()
    assert (b["input_ids"][:, 0] == 101).all() and (b["input_ids"][:, -1] == 102).all()


def test_fit_exponent_recovers_a_power_law():
    lengths = [128, 256, 512, 1024]
    fit = fit_exponent(lengths, [3e-6 * t ** 1.7 for t in lengths])
    assert fit["exponent"] == pytest.approx(1.7) and fit["r2"] == pytest.approx(1.0)


def test_long_encoder_like_extends_positions():
    model = AutoModel.from_config(tiny_config("bert"))
    long = long_encoder_like(model, 200)
    assert long.config.max_position_embeddings == 200 and long.config.hidden_size == model.config.hidden_size
    with torch.no_grad():
        assert long(**synthetic_batch(120, 1, 150, *SPECIAL)).last_hidden_state.shape == (1, 150, 32)
