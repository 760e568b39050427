"""Training the learned cache's gates (issue 19) on a tiny random Llama: the budget is met, each switch acts, a killed
run resumes to the same gates, a NaN loss stops with the step named; the training corpus never holds a document
that streaming perplexity scores."""

import json
import math

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptive_retention.decoding import train as train_module
from adaptive_retention.decoding.corpus import with_copy
from adaptive_retention.decoding.learned import CacheGates
from adaptive_retention.decoding.models import tiny_llama
from adaptive_retention.decoding.train import train_gates
from adaptive_retention.decoding.train_config import RANK_SCORES, TrainConfig
from adaptive_retention.gates import HardConcrete

MODEL = tiny_llama(layers=2)
_g = torch.Generator().manual_seed(0)
TRAIN = [torch.randint(0, 128, (64,), generator=_g) for _ in range(20)]
HELD = [torch.randint(0, 128, (64,), generator=_g) for _ in range(2)]
FAST = dict(compression=0.5, kl_tokens=32, sinks=2, window=4, warmup_steps=20, eval_every=40, checkpoint_every=5,
            copy_length=8)


def run(tmp_path, name="gates.pt", **overrides):
    cfg = TrainConfig(**{**FAST, "steps": 40, **overrides})
    gates = train_gates(MODEL, TRAIN, HELD, cfg, tmp_path / name, quiet=True)
    trace = [json.loads(line) for line in (tmp_path / f"{name}.trace.jsonl").read_text().splitlines()]
    return gates, trace, cfg


def test_the_target_is_what_the_inference_budget_leaves_the_gated_tokens():
    cfg = TrainConfig(compression=0.5, sinks=4, window=16)
    assert cfg.target(1024) == pytest.approx((512 - 20) / (1024 - 20))


def test_training_meets_its_budget(tmp_path):
    gates, trace, cfg = run(tmp_path, steps=400)
    last = [r["kept"] for r in trace[-40:]]
    assert abs(sum(last) / len(last) - cfg.target(64)) < 0.03
    assert trace[0]["kept"] > 0.85 and {"held_out_kl", "held_out_recall_kl"} <= set(trace[-1])


def test_a_fixed_capacity_weight_replaces_the_lagrangian(tmp_path):
    _, lagrangian, _ = run(tmp_path, "a.pt")
    _, fixed, _ = run(tmp_path, "b.pt", capacity_weight=0.5)
    assert all(r["lam"] == 0 for r in fixed) and any(r["lam"] != 0 for r in lagrangian)
    assert fixed[-1]["kept"] < fixed[0]["kept"]


def test_the_global_dual_mode_shares_one_lambda(tmp_path, monkeypatch):
    seen = []
    real = train_module.DualController
    monkeypatch.setattr(train_module, "DualController", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    run(tmp_path, "global.pt", dual_mode="global", steps=3)
    run(tmp_path, "layer.pt", steps=3)
    assert [len(c.lambdas) for c in seen] == [1, 2]


def test_kv_head_gates_hold_a_budget_per_layer_and_head(tmp_path, monkeypatch):
    seen = []
    real = train_module.DualController
    monkeypatch.setattr(train_module, "DualController", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    gates, trace, cfg = run(tmp_path, gate_scope="kv_head", steps=400)
    assert gates.config["heads"] == MODEL.config.num_key_value_heads == 2 and len(seen[0].lambdas) == 2 * 2
    last = trace[-40:]
    assert abs(sum(r["kept"] for r in last) / len(last) - cfg.target(64)) < 0.03
    assert abs(sum(r["kept_min"] for r in last) / len(last) - cfg.target(64)) < 0.06  # no head far below its budget
    assert abs(sum(r["kept_max"] for r in last) / len(last) - cfg.target(64)) < 0.06
    CacheGates.for_model(MODEL).save(tmp_path / "layer.pt")
    with pytest.raises(ValueError, match="holds gates for"):  # per-layer gates cannot start a per-head run
        run(tmp_path, "bad.pt", steps=1, gate_scope="kv_head", init_gates=str(tmp_path / "layer.pt"))


def test_sigmoid_gates_count_the_mean_gate_not_its_l0(tmp_path):
    """Both start at log α = HardConcrete().log_alpha_for(0.9): the Hard-Concrete run keeps P(z > 0) = 0.9, the sigmoid
    run σ(log α) (its gates are that value, not samples)."""
    _, sigmoid, _ = run(tmp_path, "a.pt", gate="sigmoid", steps=2)
    _, hard_concrete, _ = run(tmp_path, "b.pt", steps=2)
    start = HardConcrete().log_alpha_for(0.9)
    assert sigmoid[0]["kept"] == pytest.approx(1 / (1 + math.exp(-start)), abs=0.01)
    assert hard_concrete[0]["kept"] == pytest.approx(0.9, abs=0.01)


def test_a_killed_run_resumes_to_the_same_gates(tmp_path, monkeypatch):
    straight, _, _ = run(tmp_path, "straight.pt", steps=12)
    calls, real = [], train_module._loss

    def dies_at_the_ninth_step(*args, **kwargs):
        calls.append(1)
        if len(calls) == 9:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "_loss", dies_at_the_ninth_step)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, "resumed.pt", steps=12)
    assert (tmp_path / "resumed.pt.ckpt").is_file() and not (tmp_path / "resumed.pt").exists()
    so_far = [json.loads(line)["step"] for line in (tmp_path / "resumed.pt.trace.jsonl").read_text().splitlines()]
    assert so_far == list(range(5))  # the trace as of the last checkpoint (every 5 steps), to follow a run
    monkeypatch.setattr(train_module, "_loss", real)
    resumed, trace, _ = run(tmp_path, "resumed.pt", steps=12)
    assert [r["step"] for r in trace] == list(range(12))
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="another configuration"):
        run(tmp_path, "resumed.pt", steps=13, lr=1e-2)


def test_a_nan_loss_stops_with_the_step_named(tmp_path, monkeypatch):
    real = train_module._loss
    calls = []

    def nan_at_the_seventh(*args, **kwargs):
        calls.append(1)
        divergence, kept, ranking = real(*args, **kwargs)
        return (divergence * float("nan") if len(calls) == 7 else divergence), kept, ranking

    monkeypatch.setattr(train_module, "_loss", nan_at_the_seventh)
    with pytest.raises(FloatingPointError, match="at step 6"):
        run(tmp_path, "nan.pt", steps=12)
    assert torch.load(tmp_path / "nan.pt.ckpt", weights_only=False)["step"] == 5


@pytest.mark.parametrize("bad, message", [(dict(compression=1.0), "compression"), (dict(gate="relu"), "unknown gate"),
                                          (dict(capacity_weight=-1.0), "capacity_weight"),
                                          (dict(dual_mode="per_head"), "unknown dual_mode"),
                                          (dict(projection="box"), "unknown projection"),
                                          (dict(eta=float("nan")), "eta"), (dict(quadratic=-1.0), "quadratic"),
                                          (dict(copy_spans=1.5), "copy_spans"), (dict(copy_length=1), "copy_length"),
                                          (dict(copy_length=300), "copy_length")])
def test_bad_settings_fail_before_training(bad, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**bad)


def test_trained_gates_load_into_the_cache_and_a_checkpoint_holds_the_same(tmp_path):
    from adaptive_retention.decoding.cache import RetentionCache, RetentionPolicy

    run(tmp_path, steps=5)
    gates = CacheGates.load(tmp_path / "gates.pt")
    from_checkpoint = CacheGates.load(tmp_path / "gates.pt.ckpt")  # checkpoint_every 5: the final step
    assert from_checkpoint.config == gates.config
    assert all(torch.equal(a, b) for a, b in zip(gates.state_dict().values(), from_checkpoint.state_dict().values()))
    cache = RetentionCache(MODEL, RetentionPolicy(budget=24, score="learned", sinks=2, window=4), gates=gates)
    with torch.no_grad():
        MODEL(TRAIN[0][None], cache=cache)
    assert all(layer.entries() == 24 for layer in cache.layers)


def test_the_corpus_holds_out_documents_and_never_holds_a_perplexity_document():
    from transformers import AutoTokenizer

    from adaptive_retention.backbones import resolve_model_path
    from adaptive_retention.decoding.corpus import windows
    from adaptive_retention.decoding.perplexity import documents

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("minilm"))
    split, manifest = windows("../shared/data", tokenizer, 256, exclude_length=512, exclude_documents=3, per_source=4)
    for source in ("arxiv", "cuad"):
        scored = {doc for doc, _ in documents("../shared/data", source, tokenizer, 512, 3)}
        train, held = (set(manifest["documents"][f"{source}/{part}"]["ids"]) for part in ("train", "held_out"))
        assert set(manifest["excluded"][source]) == scored and len(scored) == 3
        assert not (train | held) & scored and not train & held and held
    assert len(split["train"]) == 12 and all(w.shape == (256,) for w in split["train"] + split["held_out"])
    other, _ = windows("../shared/data", tokenizer, 256, exclude_length=512, exclude_documents=3, per_source=4, seed=1)
    same = lambda a, b: len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))
    assert same(other["held_out"], split["held_out"]) and not same(other["train"], split["train"])  # one held-out set
    with pytest.raises(ValueError, match="unknown training source"):
        windows("../shared/data", tokenizer, 256, sources=("arxiv", "wiki"))


def test_decode_train_then_the_bench_reads_the_gates(tmp_path, capsys):
    """The CLI end to end on a tiny Llama saved with a real tokenizer: decode-train writes the gates, their trace and
    the corpus manifest; decode-bench scores the learned cache beside a press on the same samples."""
    from transformers import AutoTokenizer

    from adaptive_retention.backbones import resolve_model_path
    from adaptive_retention.cli import main

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("minilm"))
    folder = tmp_path / "tiny"
    tiny_llama(layers=2, vocab=len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    gates = str(tmp_path / "gates.pt")
    assert main(["decode-train", "--model", str(folder), "--length", "128", "--per-source", "2", "--steps", "3",
                 "--held-out", "1", "--eval-every", "3", "--kl-tokens", "16", "--copy-length", "8", "--exclude-length", "128",
                 "--exclude-documents", "2", "--out", gates, "--quiet"]) == 0
    assert len((tmp_path / "gates.pt.trace.jsonl").read_text().splitlines()) == 3
    assert json.loads((tmp_path / "gates.pt.corpus.json").read_text())["length"] == 128
    cell = tmp_path / "passkey.tsv"
    assert main(["decode-bench", "--model", str(folder), "--probe", "passkey", "--length", "128", "--samples", "2",
                 "--methods", "learned", "tova", "--gates", gates, "--compressions", "0.5", "--out", str(cell),
                 "--quiet"]) == 0
    rows = cell.read_text().splitlines()
    assert len(rows) == 1 + 2 * 3 and sum("\tlearned\t" in r for r in rows) == 2
    # decode-heldout: the trace's held-out numbers again, window by window, and a second gate set on the same windows
    CacheGates.for_model(tiny_llama(layers=2, vocab=len(tokenizer))).save(tmp_path / "fresh.pt")
    heldout = tmp_path / "heldout.tsv"
    assert main(["decode-heldout", "--model", str(folder), "--length", "128", "--per-source", "2", "--kl-tokens", "16",
                 "--copy-length", "8", "--exclude-length", "128", "--exclude-documents", "2", "--windows", "1",
                 "--gates", gates, str(tmp_path / "fresh.pt"), "--out", str(heldout), "--quiet"]) == 0
    table = pd.read_csv(heldout, sep="\t")
    last = json.loads((tmp_path / "gates.pt.trace.jsonl").read_text().splitlines()[-1])
    trained = table[table.gates == gates].iloc[0]
    assert list(table.gates) == [gates, str(tmp_path / "fresh.pt")] and (table.window == 0).all()
    assert (trained.kl, trained.recall_kl, trained.kept) == pytest.approx(
        (last["held_out_kl"], last["held_out_recall_kl"], last["held_out_kept"]), abs=2e-6)
    assert table.kept.iloc[1] == pytest.approx(0.9, abs=0.01)  # fresh gates: their starting P(z > 0)
    # no arXiv paper is a million tokens long (IMDb, joined, would always fill one): an error, and no file
    assert main(["decode-heldout", "--model", str(folder), "--sources", "arxiv", "--length", "1000000", "--gates", gates,
                 "--out", str(tmp_path / "none.tsv"), "--quiet"]) != 0
    assert "no held-out window of 1000000 tokens" in capsys.readouterr().err and not (tmp_path / "none.tsv").exists()


def test_the_learned_score_without_gates_fails_before_any_model_loads(tmp_path, capsys):
    from adaptive_retention.cli import main

    assert main(["decode-bench", "--probe", "passkey", "--length", "128", "--methods", "learned",
                 "--out", str(tmp_path / "x.tsv")]) != 0
    assert "needs --gates" in capsys.readouterr().err and not (tmp_path / "x.tsv").exists()


@settings(max_examples=50, deadline=None)
@given(length=st.integers(24, 200), data=st.data())
def test_a_copy_repeats_one_span_in_the_tail_and_nothing_else(length, data):
    tail = data.draw(st.integers(2, length // 2))
    span = data.draw(st.integers(1, tail))
    start = data.draw(st.integers(0, length - tail - span))
    ids = torch.arange(length) + 1000                                   # every token distinct: the copy is findable
    out, dst = with_copy(ids, tail, span, start, torch.Generator().manual_seed(data.draw(st.integers(0, 99))))
    assert torch.equal(ids, torch.arange(length) + 1000)               # the window itself untouched
    src = int(out[dst]) - 1000
    assert start <= src <= length - tail - span and length - tail <= dst <= length - span
    assert torch.equal(out[dst:dst + span], ids[src:src + span])
    changed = (out != ids).nonzero().flatten().tolist()
    assert changed == list(range(dst, dst + span))


def test_a_copy_without_room_fails_clearly():
    with pytest.raises(ValueError, match="no room"):
        with_copy(torch.arange(40), 16, 16, 10, torch.Generator())
    with pytest.raises(ValueError, match="copy_length"):
        run(Path("/nonexistent"), steps=1, copy_length=31)


def test_copy_spans_sets_how_many_training_windows_carry_a_copy(tmp_path, monkeypatch):
    seen, real = [], train_module._loss

    def record(model, gates, ids, cfg, sample, **kwargs):
        if sample:
            seen.append(ids[0].clone())
        return real(model, gates, ids, cfg, sample, **kwargs)

    monkeypatch.setattr(train_module, "_loss", record)
    originals = {tuple(w.tolist()) for w in TRAIN}
    counts = {}
    for share in (0.0, 0.5, 1.0):
        seen.clear()
        run(tmp_path, f"copy{share}.pt", steps=40, copy_spans=share)
        counts[share] = sum(tuple(ids.tolist()) not in originals for ids in seen)
    assert counts[0.0] == 0 and counts[1.0] == 40 and 10 < counts[0.5] < 30


def test_the_recall_kl_scores_exactly_the_predictable_tokens_of_the_copy():
    cfg = TrainConfig(**FAST)
    window = torch.arange(64) + 1000
    ids, scored = train_module._copied(window, cfg, torch.Generator().manual_seed(3))
    first = 64 - cfg.kl_tokens                                          # logits index j predicts token first + j + 1
    predicted = ids[first + scored.start + 1: first + scored.stop + 1]
    dst = int((ids != window).nonzero()[0])
    assert torch.equal(predicted, ids[dst + 1: dst + cfg.copy_length]) and len(predicted) == cfg.copy_length - 1


def test_a_checkpoint_from_before_a_new_setting_resumes_with_its_default(tmp_path):
    run(tmp_path, "old.pt", steps=5)
    path = tmp_path / "old.pt.ckpt"
    state = torch.load(path, weights_only=False)
    del state["config"]["copy_spans"]  # a run saved before the switch existed, trained without copies
    state["step"], state["trace"] = 4, state["trace"][:4]
    torch.save(state, path)
    (tmp_path / "old.pt").unlink()
    _, trace, _ = run(tmp_path, "old.pt", steps=5)
    assert [r["step"] for r in trace] == list(range(5))


def test_long_range_focus_weights_each_position_by_what_the_far_context_changes():
    """focus long_range = the KL's mean weighted by KL(full ‖ sinks + window only) per position; a window that covers
    every key leaves nothing far, so every weight is zero."""
    from adaptive_retention.decoding.learned import GatedAttention

    cfg = TrainConfig(**FAST)
    gates = CacheGates.for_model(MODEL, 0.5)
    ids = TRAIN[0][None]
    with torch.no_grad():
        plain, _, _ = train_module._loss(MODEL, gates, ids, cfg, sample=False)
        focused, _, _ = train_module._loss(MODEL, gates, ids, cfg, sample=False, focus="long_range")
        full = MODEL(ids, logits_to_keep=cfg.kl_tokens).logits
        with GatedAttention(MODEL, train_module.ClosedGates(2), cfg.sinks, cfg.window, sample=False):
            local = MODEL(ids, logits_to_keep=cfg.kl_tokens).logits
        with GatedAttention(MODEL, gates, cfg.sinks, cfg.window, sample=False):
            student = MODEL(ids, logits_to_keep=cfg.kl_tokens).logits
        weight = train_module.kl_per_position(full, local)
        per = train_module.kl_per_position(full, student)
        assert float(plain) == pytest.approx(float(per.mean()), rel=1e-5)
        assert float(focused) == pytest.approx(float((per * weight).sum() / weight.sum()), rel=1e-5)
        assert float(focused) != pytest.approx(float(plain), rel=1e-3) and (weight > 0).all()
        wide = TrainConfig(**{**FAST, "window": 64})
        with GatedAttention(MODEL, train_module.ClosedGates(2), wide.sinks, wide.window, sample=False):
            assert torch.allclose(MODEL(ids, logits_to_keep=32).logits, full, atol=1e-5)


def test_a_run_can_start_from_trained_gates(tmp_path):
    trained, trace, _ = run(tmp_path, "first.pt", steps=200)
    _, warm, _ = run(tmp_path, "warm.pt", steps=1, init_gates=str(tmp_path / "first.pt"), warmup_steps=0)
    _, cold, _ = run(tmp_path, "cold.pt", steps=1)
    assert warm[0]["kept"] == pytest.approx(trace[-1]["held_out_kept"], abs=0.1) and cold[0]["kept"] > 0.85
    with pytest.raises(ValueError, match="no gates file"):
        TrainConfig(init_gates=str(tmp_path / "missing.pt"))
    CacheGates(32, 2).save(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="holds gates for"):
        run(tmp_path, "bad.pt", steps=1, init_gates=str(tmp_path / "other.pt"))


def test_the_held_out_comparison_pairs_gate_sets_by_window(tmp_path):
    """analysis.heldout: B = A + 0.1 on every window → Δ = +0.1 exactly, a Wilcoxon p below 0.05 over 8 windows; the
    reference defaults to the first gate set; gate sets scored on other windows are refused."""
    from analysis.heldout import compare, main

    rng = np.random.default_rng(0)
    a = pd.DataFrame(dict(gates="a.pt", window=range(8), kl=rng.random(8), recall_kl=rng.random(8), kept=0.49))
    b = a.assign(gates="b.pt", kl=a.kl + 0.1)
    table = compare(pd.concat([a, b])).set_index("gates")
    assert table.loc["b.pt", "kl_vs_ref"] == pytest.approx(0.1) and table.loc["b.pt", "kl_vs_ref_ci95"] == pytest.approx(0, abs=1e-12)
    assert table.loc["b.pt", "kl_p"] < 0.05 and np.isnan(table.loc["a.pt", "kl_p"]) and table.loc["b.pt", "recall_kl_vs_ref"] == 0
    assert compare(pd.concat([a, b]), reference="b.pt").set_index("gates").loc["a.pt", "kl_vs_ref"] == pytest.approx(-0.1)
    with pytest.raises(ValueError, match="same windows"):
        compare(pd.concat([a, b.assign(window=b.window + 1)]))
    path = tmp_path / "heldout.tsv"
    pd.concat([a, b]).to_csv(path, sep="\t", index=False)
    assert main([str(path), "--markdown", str(tmp_path / "T.md")]) == 0
    assert "| `b.pt` | 8 |" in (tmp_path / "T.md").read_text() and "+0.1000 ± 0.0000" in (tmp_path / "T.md").read_text()
    a.drop(columns="recall_kl").to_csv(path, sep="\t", index=False)  # an older or foreign table: refused, naming it
    with pytest.raises(ValueError, match="heldout.tsv: not a decode-heldout table \\(no column recall_kl\\)"):
        main([str(path)])


def _sharp_model():
    """The tiny Llama with its queries scaled up, so attention (and every press's score) is far from uniform."""
    import copy

    from adaptive_retention.decoding.cache import attention_modules

    sharp = copy.deepcopy(MODEL)
    for module in attention_modules(sharp):
        module.q_proj.weight.data.mul_(100)
    return sharp


@pytest.mark.parametrize("score", RANK_SCORES)
def test_the_ranking_loss_is_zero_exactly_where_log_alpha_ranks_as_its_press(score):
    """rank_divergence = KL(the press's score normalised over the ranked entries ‖ softmax of log α there): zero for
    log α = log score + a shift on those entries, whatever log α holds on the sinks, the recent window and the press's
    own queries (SnapKV's last 64, which it pads as kept); positive against another press's choice (the switch
    changes the teacher)."""
    import dataclasses

    from adaptive_retention.decoding.cache import RetentionCache
    from adaptive_retention.decoding.scores import NEEDS_QUERIES, SCORES

    sharp, ids = _sharp_model(), torch.randint(0, 128, (1, 100), generator=torch.Generator().manual_seed(1))
    cfg = TrainConfig(rank_weight=1.0, rank_layers=2, rank_score=score, sinks=2, window=4)

    def teacher(name):
        cache = RetentionCache.full(sharp, observe=(name,))
        with torch.no_grad():
            sharp(ids, cache=cache)
        return cache

    cache, noise = teacher(score), torch.Generator().manual_seed(2)
    ranked = slice(2, 100 - max(4, NEEDS_QUERIES.get(score, 0)))
    log_alphas = []
    for layer in cache.layers:
        target = SCORES[score](keys=layer.keys, positions=layer.positions, queries=layer.queries,
                               query_positions=layer.query_positions, attention=layer.attention)  # (1, Hkv, 100)
        log_alpha = 10 * torch.randn(target.shape, generator=noise)
        log_alpha[..., ranked] = target[..., ranked].log() + 3.0
        log_alphas.append(log_alpha)
    assert float(train_module.rank_divergence(cache, log_alphas, cfg)) == pytest.approx(0.0, abs=1e-5)
    log_alphas[1] = 10 * torch.randn(log_alphas[1].shape, generator=noise)  # layer 1 now ranks otherwise
    one, every = (float(train_module.rank_divergence(cache, log_alphas, dataclasses.replace(cfg, rank_layers=n)))
                  for n in (1, "all"))
    assert one == pytest.approx(0.0, abs=1e-5) and every > 0.01  # "all" reaches the last layer, 1 only the first
    assert every == pytest.approx(float(train_module.rank_divergence(cache, log_alphas, cfg)))  # all = both layers
    other = next(s for s in RANK_SCORES if s != score)
    assert float(train_module.rank_divergence(teacher(other), log_alphas, dataclasses.replace(cfg, rank_score=other))) > 0.01


def test_the_ranking_loss_teaches_the_first_layers_tovas_choice_and_leaves_the_budget(tmp_path):
    """rank_weight > 0: the trace logs the ranking loss and it falls; at the end the ranked layer's log α ranks a
    held-out window nearer TOVA's choice than the same run's without it; the budget is met as before (the loss is
    blind to a shift of log α). A tiny Llama whose queries are scaled up, so TOVA's attention is not near uniform.
    rank_layers beyond the model's layers is refused."""
    sharp = _sharp_model()

    def train(name, **overrides):
        cfg = TrainConfig(**{**FAST, "steps": 400, **overrides})
        gates = train_gates(sharp, TRAIN, HELD, cfg, tmp_path / name, quiet=True)
        return gates, [json.loads(line) for line in (tmp_path / f"{name}.trace.jsonl").read_text().splitlines()], cfg

    ranked_gates, ranked, cfg = train("ranked.pt", rank_weight=1.0, rank_layers=1)
    plain_gates, plain, _ = train("plain.pt")
    assert "rank_kl" not in plain[0] and all("rank_kl" in r for r in ranked)
    first, last = (sum(r["rank_kl"] for r in rows) / 20 for rows in (ranked[:20], ranked[-20:]))
    assert last < 0.75 * first  # measured 0.58 vs 0.90

    def divergence(gates):
        with torch.no_grad():
            return float(train_module._loss(sharp, gates, HELD[0][None], cfg, sample=False, rank=True)[2])

    assert divergence(ranked_gates) < 0.6 * divergence(plain_gates)  # measured 0.91 vs 2.24
    for rows in (ranked, plain):  # as test_training_meets_its_budget
        assert abs(sum(r["kept"] for r in rows[-40:]) / 40 - cfg.target(64)) < 0.03
    with pytest.raises(ValueError, match="rank_layers 3 > the model's 2 layers"):
        train("bad.pt", steps=1, rank_weight=1.0, rank_layers=3)
    assert TrainConfig(rank_layers="all").ranked_layers(30) == 30 and TrainConfig(rank_layers=10).ranked_layers(30) == 10
    for bad in (0, "most", 2.5):
        with pytest.raises(ValueError, match="rank_layers counts layers from the first"):
            TrainConfig(rank_layers=bad)
    with pytest.raises(ValueError, match="rank_weight"):
        TrainConfig(rank_weight=-1.0)


def test_held_out_rows_read_each_window_once_with_the_full_model_for_every_gate_set():
    """Three gate sets on the held-out windows: the same rows as each set scored alone, with the full model's pass made
    once per window and copy (2 per window) and one gated pass per set (2 per window and set) — not 4 per set."""
    cfg = TrainConfig(**FAST)
    torch.manual_seed(0)
    gate_sets = [CacheGates.for_model(MODEL, init_keep=keep) for keep in (0.3, 0.6, 0.9)]
    alone = [train_module.held_out_rows(MODEL, [g], HELD, cfg)[0] for g in gate_sets]
    calls = []
    hook = MODEL.register_forward_pre_hook(lambda module, args: calls.append(1))
    try:
        together = train_module.held_out_rows(MODEL, gate_sets, HELD, cfg)
    finally:
        hook.remove()
    assert len(calls) == 2 * len(HELD) + 2 * len(HELD) * len(gate_sets)
    assert together == alone and len({r[0]["kept"] for r in together}) == 3
    own_teacher = train_module._loss(MODEL, gate_sets[0], HELD[0][None], cfg, sample=False)[0]  # the full model's pass inside
    assert alone[0][0]["kl"] == pytest.approx(float(own_teacher), rel=1e-4)  # (outside no_grad: other kernels)
