"""The learned KV cache (issue 19): the gated attention against its definition, the learned score in the cache,
saving and loading the gates, and the diagnostics that read them."""

import numpy as np
import pandas as pd
import pytest
import torch

from adaptive_retention.decoding.cache import RetentionCache, RetentionPolicy
from adaptive_retention.decoding.learned import CacheGates, GatedAttention, gate_bias, gated_attention
from adaptive_retention.decoding.models import tiny_llama
from adaptive_retention.gates import HardConcrete

MODEL = tiny_llama(layers=3)
VOCAB = MODEL.config.vocab_size


def _script(name: str):
    """A diagnostic under scripts/, imported as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, f"scripts/{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prompt(length, seed=0, batch=1):
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


def gates_with(log_alpha: float) -> CacheGates:
    """Gates that give every token the same log α (the output layer's bias; its weights zeroed)."""
    gates = CacheGates.for_model(MODEL)
    for scorer in gates.scorers:
        torch.nn.init.zeros_(scorer.net[2].weight)
        torch.nn.init.constant_(scorer.net[2].bias, log_alpha)
    return gates


def test_open_gates_leave_the_model_unchanged_and_the_switch_restores_it():
    ids = prompt(40, batch=2)
    with torch.no_grad():
        ref = MODEL(ids).logits
        with GatedAttention(MODEL, gates_with(50.0), sample=True) as gated:
            out = MODEL(ids).logits
        after = MODEL(ids).logits
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)
    assert torch.equal(after, ref) and MODEL.config._attn_implementation == "sdpa"
    assert gated.expected_kept.shape == (3,) and (gated.expected_kept > 0.999).all()


def test_a_closed_gate_hides_its_key_from_queries_beyond_the_window_only():
    """Key 10's gate at 0 (the others open): the logits equal a forward with a 4-D mask that hides key 10 from
    queries ≥ 10 + window, up to the log floor (1e-6 of a weight)."""
    length, key, window = 32, 10, 4
    ids = prompt(length)
    gates = gates_with(50.0)

    def closed_at_key(layer, hidden):
        log_alpha = torch.full((hidden.shape[0], 1, hidden.shape[1]), 50.0)                  # (B, 1, T)
        log_alpha[..., key] = -50.0
        return log_alpha

    gates.forward = closed_at_key
    mask = torch.tril(torch.ones(length, length, dtype=torch.bool))
    mask[key + window:, key] = False
    with torch.no_grad():
        ref = MODEL(ids, attention_mask=mask[None, None]).logits
        with GatedAttention(MODEL, gates, sinks=4, window=window, sample=False):
            out = MODEL(ids).logits
        full = MODEL(ids).logits
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-4)
    assert (out[0, key + window:] - full[0, key + window:]).abs().max() > 1e-2  # the gate did act
    torch.testing.assert_close(out[0, :key + window], full[0, :key + window], rtol=0, atol=1e-5)


def test_sinks_and_window_are_never_gated():
    log_gate = torch.full((1, 1, 12), -5.0)
    bias = gate_bias(log_gate, 12, sinks=2, window=3)[0, 0]                   # (q, T)
    q, k = torch.meshgrid(torch.arange(12), torch.arange(12), indexing="ij")
    assert torch.equal(torch.isinf(bias), k > q)                             # causal
    assert torch.equal(bias == -5.0, (k >= 2) & (q - k >= 3))                 # gated: beyond the sinks and window
    assert (bias[(k <= q) & ~((k >= 2) & (q - k >= 3))] == 0).all()


def test_expected_kept_is_the_hard_concrete_l0_of_the_gated_tokens():
    log_alpha = HardConcrete().log_alpha_for(0.3)
    with torch.no_grad(), GatedAttention(MODEL, gates_with(log_alpha), sinks=4) as gated:
        MODEL(prompt(20))
    torch.testing.assert_close(gated.expected_kept, torch.full((3,), 0.3), rtol=0, atol=1e-6)


def prefilled(gates: CacheGates, ids: torch.Tensor) -> tuple[RetentionCache, dict]:
    """(a learned cache of 16 entries, 2 sinks, a window of 4, after a prefill of ids; {layer: the hidden states
    entering its attention}, from a second forward without the cache)."""
    cache = RetentionCache(MODEL, RetentionPolicy(budget=16, score="learned", sinks=2, window=4), gates=gates)
    hidden = {}
    with torch.no_grad():
        MODEL(ids, cache=cache)
        hooks = [m.register_forward_pre_hook(lambda mod, a, kw: hidden.__setitem__(mod.layer_idx, kw["hidden_states"]),
                                             with_kwargs=True) for m in MODEL.modules() if hasattr(m, "q_proj")]
        MODEL(ids)
        for h in hooks:
            h.remove()
    return cache, hidden


def kept_by(log_alpha: torch.Tensor) -> set[int]:
    """What `prefilled`'s cache keeps of 48 tokens by these log α (T,): the sinks, the window, and the 10 highest of
    the rest — equal log α (a token repeated, in layer 0) going to the most recent, as evict does."""
    top = sorted(range(2, 44), key=lambda p: (-float(log_alpha[p]), -p))[:10]
    return {0, 1, *range(44, 48), *top}


def test_the_learned_score_keeps_the_entries_of_highest_log_alpha():
    gates = CacheGates.for_model(MODEL)
    cache, hidden = prefilled(gates, prompt(48))
    for index, layer in enumerate(cache.layers):
        log_alpha = gates(index, hidden[index])[0, 0].detach()                # (T,)
        assert set(layer.positions[0, 0].tolist()) == kept_by(log_alpha)
        torch.testing.assert_close(layer.learned[0, 0], log_alpha[layer.positions[0, 0]])


def test_learned_score_without_gates_fails_clearly():
    with pytest.raises(ValueError, match="needs the trained gates"):
        RetentionCache(MODEL, RetentionPolicy(budget=32, score="learned"))


def test_gates_save_and_load_exactly(tmp_path):
    gates = CacheGates.for_model(MODEL, init_keep=0.7)
    gates.save(tmp_path / "gates.pt")
    loaded = CacheGates.load(tmp_path / "gates.pt")
    h = torch.randn(2, 5, MODEL.config.hidden_size)
    assert loaded.config == gates.config and torch.equal(loaded(1, h), gates(1, h))
    with pytest.raises(FileNotFoundError, match="no learned cache gates"):
        CacheGates.load(tmp_path / "missing.pt")


def test_the_rank_diagnostic_finds_every_answer_token_and_reports_each_layer(tmp_path, capsys):
    """scripts/learned_ranks.py: the answer's tokens are exactly those overlapping its occurrences; one row per layer."""
    from transformers import AutoTokenizer

    from adaptive_retention.backbones import resolve_model_path
    from adaptive_retention.decoding.models import tiny_llama

    ranks = _script("learned_ranks")
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("minilm"))
    context = "filler words here. the pass key is 40712. remember it. 40712 is the pass key. more filler."
    ids, positions = ranks.answer_positions(tokenizer, context, ("40712",))
    assert "".join(tokenizer.decode(ids[0, p]).replace("#", "") for p in positions) == "40712" * 2
    _, cue = ranks.answer_positions(tokenizer, context, ("40712",), tokens="cue")  # the answer's sentences, less it
    assert " ".join(tokenizer.decode(ids[0, p]) for p in cue) == "the pass key is is the pass key"
    folder = tmp_path / "tiny"
    tiny_llama(layers=2, vocab=len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    gates = CacheGates(64, 2)
    gates.save(tmp_path / "g.pt")
    assert ranks.main([str(tmp_path / "g.pt"), "--model", str(folder), "--length", "128", "--samples", "2"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].split("\t") == ["gates", "layer", "answer_tokens", "kept_share"] and len(rows) == 3
    assert all(0 <= float(r.split("\t")[3]) <= 1 and int(r.split("\t")[2]) > 0 for r in rows[1:])
    per_head_copy(gates).save(tmp_path / "heads.pt")  # per-KV-head gates: the mean over heads, equal heads → equal shares
    assert ranks.main([str(tmp_path / "heads.pt"), "--model", str(folder), "--length", "128", "--samples", "2"]) == 0
    assert [r.split("\t")[1:] for r in capsys.readouterr().out.splitlines()[1:]] == [r.split("\t")[1:] for r in rows[1:]]


def test_the_answer_attention_diagnostic_sums_each_layers_attention_on_the_answer(tmp_path, capsys):
    """scripts/answer_attention.py: per sample, method and layer one row; under the full cache every answer token is
    in every layer and the attention on them is a share of one head's attention (in [0, 1]); the compressed caches keep
    no more of them than the full one."""
    from transformers import AutoTokenizer

    from adaptive_retention.backbones import resolve_model_path

    script = _script("answer_attention")
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("minilm"))
    folder = tmp_path / "tiny"
    tiny_llama(layers=2, vocab=len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    CacheGates(64, 2).save(tmp_path / "g.pt")
    assert script.main([str(tmp_path / "g.pt"), "--model", str(folder), "--length", "128", "--samples", "2"]) == 0
    rows = [r.split("\t") for r in capsys.readouterr().out.splitlines()]
    assert rows[0][:6] == ["sample", "method", "layer", "answer_kept", "mass_mean", "mass_max"] and len(rows) == 1 + 2 * 3 * 2
    kept = {(r[0], r[1], r[2]): float(r[3]) for r in rows[1:]}
    assert all(0 <= float(r[4]) <= float(r[5]) <= 1 for r in rows[1:])
    for (sample, method, layer), n in kept.items():
        assert 0 <= n <= kept[(sample, "full", layer)] and kept[(sample, "full", layer)] > 0
    per_head_copy(CacheGates.load(tmp_path / "g.pt")).save(tmp_path / "heads.pt")  # each head reads its own positions:
    assert script.main([str(tmp_path / "heads.pt"), "--model", str(folder), "--length", "128", "--samples", "2"]) == 0
    assert [r.split("\t") for r in capsys.readouterr().out.splitlines()] == rows  # equal heads → the per-layer rows


def test_answer_positions_with_special_tokens_point_at_the_same_text():
    """Encoded as the bench encodes a context (with the tokenizer's special tokens), the positions still hold the answer."""
    from transformers import AutoTokenizer

    from adaptive_retention.backbones import resolve_model_path

    ranks = _script("learned_ranks")
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("minilm"))  # adds [CLS] … [SEP]
    context = "filler words here. the pass key is 40712. remember it. 40712 is the pass key."
    ids, positions = ranks.answer_positions(tokenizer, context, ("40712",), add_special_tokens=True)
    assert ids[0, 0] == tokenizer.cls_token_id
    assert "".join(tokenizer.decode(ids[0, p]).replace("#", "") for p in positions) == "40712" * 2


# --- per-KV-head gates (gate_scope: kv_head) -------------------------------------------------------


def per_head_copy(gates: CacheGates, heads: int = 2) -> CacheGates:
    """Per-KV-head gates whose every head scores as `gates` does (its output row repeated)."""
    copy = CacheGates(**{**gates.config, "heads": heads})
    for one, many in zip(gates.scorers, copy.scorers):
        many.net[0].load_state_dict(one.net[0].state_dict())
        many.net[2].weight.data, many.net[2].bias.data = one.net[2].weight.repeat(heads, 1), one.net[2].bias.repeat(heads)
    return copy


def test_per_kv_head_gates_that_agree_across_heads_act_as_per_layer_gates():
    gates = CacheGates.for_model(MODEL)
    for scorer in gates.scorers:
        torch.nn.init.normal_(scorer.net[2].weight, std=1.0)                # log α that vary by token
    heads = per_head_copy(gates, MODEL.config.num_key_value_heads)
    ids = prompt(48)
    with torch.no_grad():
        with GatedAttention(MODEL, gates, sinks=2, window=4, sample=False) as one:
            ref = MODEL(ids).logits
        with GatedAttention(MODEL, heads, sinks=2, window=4, sample=False) as per_head:
            out = MODEL(ids).logits
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(per_head.expected_kept, one.expected_kept.repeat_interleave(2))  # (layers × heads,)
    policy = RetentionPolicy(budget=16, score="learned", sinks=2, window=4)
    caches = [RetentionCache(MODEL, policy, gates=g) for g in (gates, heads)]
    with torch.no_grad():
        for cache in caches:
            MODEL(ids, cache=cache)
    assert caches[1].policy.per_head and not caches[0].policy.per_head     # per-head gates choose per head
    for a, b in zip(*(c.layers for c in caches)):
        assert torch.equal(a.positions, b.positions)


def test_a_kv_heads_closed_gate_hides_its_key_from_that_heads_query_group_only():
    """KV head 0's gate closed at key 10, head 1's open: query heads 0–1 (group 0) attend as if key 10 were masked
    beyond the window, query heads 2–3 (group 1) as if nothing were gated."""
    t, key, window = 24, 10, 4
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, h, t, 8, generator=g) for h in (4, 2, 2))
    log_gate = torch.zeros(1, 2, t)
    log_gate[0, 0, key] = -1e4
    module = type("Attention", (), {"_retention_gate": (log_gate, 2, window)})()
    out = gated_attention(module, q, k, v, None)[0].transpose(1, 2)        # (1, Hq, T, D)
    mask = torch.tril(torch.ones(t, t, dtype=torch.bool))
    plain = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
    mask[key + window:, key] = False
    hidden = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
    torch.testing.assert_close(out[:, :2], hidden[:, :2], rtol=0, atol=1e-5)
    torch.testing.assert_close(out[:, 2:], plain[:, 2:], rtol=0, atol=1e-5)
    assert (out[:, :2, key + window:] - plain[:, :2, key + window:]).abs().max() > 1e-3


def test_each_kv_head_keeps_the_entries_of_its_own_highest_log_alpha():
    torch.manual_seed(0)
    gates = CacheGates.for_model(MODEL, per_kv_head=True)
    for scorer in gates.scorers:
        torch.nn.init.normal_(scorer.net[2].weight, std=1.0)
    cache, hidden = prefilled(gates, prompt(48))
    kept = [[set(layer.positions[0, head].tolist()) for head in range(2)] for layer in cache.layers]
    for index, heads in enumerate(kept):
        log_alpha = gates(index, hidden[index])[0].detach()                 # (heads, T)
        assert heads == [kept_by(log_alpha[0]), kept_by(log_alpha[1])]
    assert any(a != b for a, b in kept)  # the heads chose differently somewhere


def test_per_kv_head_gates_save_load_and_must_match_the_models_kv_heads(tmp_path):
    gates = CacheGates.for_model(MODEL, per_kv_head=True)
    gates.save(tmp_path / "heads.pt")
    loaded = CacheGates.load(tmp_path / "heads.pt")
    h = torch.randn(2, 5, MODEL.config.hidden_size)
    assert loaded.config["heads"] == 2 and loaded(1, h).shape == (2, 2, 5) and torch.equal(loaded(1, h), gates(1, h))
    assert CacheGates.for_model(MODEL)(1, h).shape == (2, 1, 5)
    with pytest.raises(ValueError, match="gates for 3 heads, but the model has 2 KV heads"):
        RetentionCache(MODEL, RetentionPolicy(budget=32, score="learned"), gates=CacheGates(MODEL.config.hidden_size, 3, heads=3))


def test_the_layer_swap_diagnostic_swapping_every_layer_is_the_other_cache(tmp_path, capsys):
    """scripts/layer_swap.py: a row per variant and sample; with one group holding every layer, the learned cache with
    TOVA's choice there answers exactly as TOVA's cache, and the reverse as the learned cache."""
    from transformers import AutoTokenizer

    from adaptive_retention.backbones import resolve_model_path

    script = _script("layer_swap")
    answers = []
    script.correct = lambda sample, text: answers.append(text) or 1  # every answer counts: the variants' texts are compared
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("minilm"))
    folder = tmp_path / "tiny"
    tiny_llama(layers=2, vocab=len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    CacheGates(64, 2).save(tmp_path / "g.pt")
    argv = [str(tmp_path / "g.pt"), "--model", str(folder), "--length", "128", "--samples", "5"]
    assert script.main(argv + ["--group", "2"]) == 0
    rows = [r.split("\t") for r in capsys.readouterr().out.splitlines()]
    from analysis.result_tsv import SWAP_COLUMNS
    assert rows[0] == list(SWAP_COLUMNS) and len(rows) == 1 + 4 * 5  # the reader's columns are the script's header
    assert {r[2] for r in rows[1:]} == {"learned", "tova", "learned+tova@0-1", "tova+learned@0-1"}
    assert {float(r[4]) for r in rows[1:]} == {0, 0.25, 0.5, 0.75, 1} and {r[5] for r in rows[1:]} == {"1"}  # passkey's depths
    per_sample = [answers[i:i + 4] for i in range(0, len(answers), 4)]  # learned, tova, learned+tova, tova+learned
    assert len(per_sample) == 5 and all(a[2] == a[1] and a[3] == a[0] for a in per_sample)
    assert any(a[0] != a[1] for a in per_sample)  # the two scores' caches do answer differently
    assert script.main(argv + ["--group", "1"]) == 0  # one layer per group: both layers swapped in turn
    assert {r.split("\t")[2] for r in capsys.readouterr().out.splitlines()[1:]} == {
        "learned", "tova", "learned+tova@0-0", "learned+tova@1-1", "tova+learned@0-0", "tova+learned@1-1"}


def test_the_layer_swap_table_pairs_each_swap_with_the_cache_it_went_into(tmp_path):
    """analysis.layer_swap: `tova+learned@0-4` is compared with `tova` on the same samples — 12 samples TOVA answers and
    the swap does not, none the other way: Δ −12, exact McNemar p = 2 × 0.5^12."""
    from analysis.layer_swap import main, table

    samples = [f"s{i}" for i in range(20)]
    tova = [1] * 19 + [0]
    swap = [0] * 12 + [1] * 7 + [0]
    rows = pd.DataFrame([dict(gates="g.pt", probe="passkey", variant=v, sample=s, depth=0.5, correct=c)
                         for v, scores in (("learned", [0] * 20), ("tova", tova), ("tova+learned@0-4", swap))
                         for s, c in zip(samples, scores)])
    summary = table(rows).set_index("variant")
    assert summary.loc["tova+learned@0-4", ["correct", "n", "base", "delta"]].tolist() == [7, 20, "tova", -12]
    assert summary.loc["tova+learned@0-4", "p_value"] == pytest.approx(2 * 0.5 ** 12)
    assert summary.loc["tova", "base"] == "" and np.isnan(summary.loc["tova", "p_value"])
    path = tmp_path / "swap.tsv"
    rows.sample(frac=1, random_state=0).to_csv(path, sep="\t", index=False)  # row order does not matter: pairs by sample
    other = tmp_path / "swap-random.tsv"  # a second run on the same gates and probe, another score swapped in
    rows.replace({"variant": {"tova": "random", "tova+learned@0-4": "random+learned@0-4"}}).to_csv(other, sep="\t", index=False)
    assert main([str(path), str(other), "--markdown", str(tmp_path / "T.md")]) == 0
    text = (tmp_path / "T.md").read_text()
    assert "| tova+learned@0-4 | 7 / 20 | tova | -12 | 0.00049 |" in text and "| random+learned@0-4 | 7 / 20 | random | -12 |" in text
    rows.drop(columns="variant").to_csv(other, sep="\t", index=False)  # not a layer-swap table: refused, naming it
    with pytest.raises(ValueError, match="swap-random.tsv: not a layer-swap table \\(no column variant\\)"):
        main([str(path), str(other)])


def _bench_tsv(path, scores, method="learned", samples=range(20)) -> str:
    """A decode-bench table of one method's 0/1 scores on passkey samples, its rows shuffled (readers pair by sample)."""
    rows = pd.DataFrame([dict(probe="passkey", length=1024, tokens=1000, sample=s, depth=0.5, method=method,
                              compression=0.5, budget=512, correct=c, answer="x") for s, c in zip(samples, scores)])
    rows.sample(frac=1, random_state=len(path.name)).to_csv(path, sep="\t", index=False)
    return str(path)


def test_the_gate_sets_table_pairs_each_file_with_the_reference_by_sample(tmp_path):
    """analysis.gate_sets: each file's learned rows are one system named by the file, a press in a file is
    `<file>:<method>`; the rank gates answer 10 samples stage 1 misses and lose none: Δ +10, p = 2 × 0.5^10. Files in
    any row order pair by sample; a file over other samples is refused, naming it. `--pool` pairs two recipes over
    their training seeds, each sample's seed-mean difference the unit."""
    from analysis.gate_sets import main

    def bench(name, scores, method="learned", samples=range(20)):
        return _bench_tsv(tmp_path / name, scores, method, samples)

    stage1 = bench("stage1.tsv", [1] * 4 + [0] * 16)
    pd.concat([pd.read_csv(stage1, sep="\t"), pd.read_csv(bench("t.tsv", [1] * 19 + [0], "tova"), sep="\t")]).to_csv(
        stage1, sep="\t", index=False)
    rank = bench("rank.tsv", [1] * 14 + [0] * 6)
    assert main([stage1, rank, "--markdown", str(tmp_path / "T.md")]) == 0
    text = (tmp_path / "T.md").read_text()
    assert "| stage1 | 4 / 20 | reference | |" in text and "| stage1:tova | 19 / 20 | +15 |" in text
    assert f"| rank | 14 / 20 | +10 | {2 * 0.5 ** 10:.2g} |" in text
    assert main([stage1, rank, "--reference", "stage1:tova"]) == 0
    with pytest.raises(ValueError, match="'other'.*different samples"):
        main([stage1, bench("other.tsv", [1] * 20, samples=range(1, 21))])
    with pytest.raises(ValueError, match="reference 'nope'"):
        main([stage1, "--reference", "nope"])
    (tmp_path / "swap.tsv").write_text("gates\tprobe\tvariant\tsample\tdepth\tcorrect\n")  # a layer-swap table
    with pytest.raises(ValueError, match="swap.tsv: not a decode-bench table \\(no column answer, budget, compression, length, method, tokens\\)"):
        main([stage1, str(tmp_path / "swap.tsv")])
    (tmp_path / "s16").mkdir()  # one bench file name per probe and seed: a second folder's is named by its folder
    (tmp_path / "s16" / "rank.tsv").write_text((tmp_path / "rank.tsv").read_text())
    assert main([stage1, rank, str(tmp_path / "s16" / "rank.tsv"), "--markdown", str(tmp_path / "T.md")]) == 0
    assert "| s16/rank | 14 / 20 | +10 |" in (tmp_path / "T.md").read_text()
    presses = tmp_path / "presses.tsv"  # the presses' cell: the full cache's rows (compression 0) and two compressions
    pd.concat([pd.read_csv(bench(n, c, m), sep="\t").assign(compression=x) for n, c, m, x in
               (("f.tsv", [1] * 20, "full", 0.0), ("a.tsv", [1] * 19 + [0], "tova", 0.5), ("b.tsv", [0] * 20, "tova", 0.75))]
              ).to_csv(presses, sep="\t", index=False)
    with pytest.raises(ValueError, match="presses.tsv holds compressions.*--compression"):
        main([rank, str(presses)])
    assert main([rank, str(presses), "--compression", "0.5", "--markdown", str(tmp_path / "T.md")]) == 0
    text = (tmp_path / "T.md").read_text()
    assert "| presses:full | 20 / 20 | +6 |" in text and "| presses:tova | 19 / 20 | +5 |" in text
    for top in ("a", "b"):  # two folders of one name: no name tells them apart
        (tmp_path / top / "s16").mkdir(parents=True)
        (tmp_path / top / "s16" / "rank.tsv").write_text((tmp_path / "rank.tsv").read_text())
    with pytest.raises(ValueError, match="'s16/rank' twice"):
        main([rank, str(tmp_path / "a" / "s16" / "rank.tsv"), str(tmp_path / "b" / "s16" / "rank.tsv")])
    # --pool: two training seeds of each recipe, one system per recipe over its seeds, paired by sample
    seeds = [bench(f"{r}-s{k}.tsv", [1] * n + [0] * (20 - n)) for r, k, n in (("stage1", 0, 4), ("stage1", 1, 6),
                                                                              ("rank", 0, 14), ("rank", 1, 10))]
    assert main([*seeds, "--pool", "--markdown", str(tmp_path / "P.md")]) == 0
    # 10 samples differ, all rank's (samples 6–9 by 1, 4–5 and 10–13 by ½): 2 × 0.5^10, not the 14 pooled pairs' 2 × 0.5^14
    assert f"| rank-s* | 24 / 40 | +14 | {2 * 0.5 ** 10:.2g} |" in (tmp_path / "P.md").read_text()
    with pytest.raises(ValueError, match="'rank' is not named <name>-s<seed>"):
        main([*seeds, rank, "--pool"])
    with pytest.raises(ValueError, match="'rank-s\\*' and the reference 'stage1-s\\*' hold different samples"):
        main([*seeds[:2], seeds[2], "--pool"])  # seed 1 of rank missing: not the same pairs


def test_variants_are_compared_over_runs_paired_by_position(tmp_path):
    """analysis.over_runs: variant B answers 2, 4, 6, 8 more of 20 samples than A in the four paired runs → Δ +0.25
    with the t-interval of (0.1, 0.2, 0.3, 0.4), and every difference positive gives the exact sign-flip p = 2 / 2^4;
    a variant shifted by a constant spreads as the reference does (Brown–Forsythe p = 1); unequal runs per variant and runs over other samples are refused, naming the files."""
    from scipy import stats

    from analysis.over_runs import compare, main

    a = [_bench_tsv(tmp_path / f"a{k}.tsv", [1] * (3 * k) + [0] * (20 - 3 * k)) for k in range(4)]
    b = [_bench_tsv(tmp_path / f"b{k}.tsv", [1] * (5 * k + 2) + [0] * (18 - 5 * k)) for k in range(4)]
    table = compare({"A": a, "B": b}).set_index("variant")
    assert table.loc["B", "delta"] == pytest.approx(0.25) and table.loc["B", "p_value"] == pytest.approx(2 / 16)
    assert table.loc["B", "delta_ci95"] == pytest.approx(stats.t.ppf(0.975, 3) * np.std([0.1, 0.2, 0.3, 0.4], ddof=1) / 2)
    assert table.loc["A", "accuracy"] == pytest.approx(np.mean([0, 0.15, 0.3, 0.45])) and np.isnan(table.loc["A", "p_value"])
    assert table.loc["A", "sd"] == pytest.approx(np.std([0, 0.15, 0.3, 0.45], ddof=1))
    assert table.loc["B", "spread_p"] < 1  # B's runs spread wider (sd 0.32 vs 0.19)
    same = compare({"A": a, "A again": a}).set_index("variant").loc["A again"]
    assert same.p_value == 1 and same.spread_p == 1
    shifted = [_bench_tsv(tmp_path / f"c{k}.tsv", [1] * (3 * k + 5) + [0] * (15 - 3 * k)) for k in range(4)]
    assert compare({"A": a, "A + 5": shifted}).set_index("variant").loc["A + 5", "spread_p"] == 1  # a shift: same spread
    assert main(["--variant", "A", *a, "--variant", "B", *b, "--markdown", str(tmp_path / "T.md")]) == 0
    assert "| B | 4 × 20 | 2, 7, 12, 17 | 0.475 ± 0.514 | 0.323 | +0.250 ± 0.205 | 0.12 |" in (tmp_path / "T.md").read_text()
    with pytest.raises(ValueError, match="same runs, paired by position"):
        compare({"A": a, "B": b[:3]})
    other = _bench_tsv(tmp_path / "other.tsv", [1] * 20, samples=range(1, 21))
    with pytest.raises(ValueError, match="other.tsv and .*a3.tsv hold different samples"):
        compare({"A": a, "B": b[:3] + [other]})
