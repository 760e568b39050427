"""The decoding bench's pieces without a real model (issue 18): defaults in one place, seeded probes, batching of
compressed caches, the command line's errors, and the analysis' intervals and paired tests."""

import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from scipy import stats
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptive_retention.cli import main
from adaptive_retention.decoding import defaults
from adaptive_retention.decoding.bench import greedy, stack
from adaptive_retention.decoding.defaults import budget_for
from adaptive_retention.decoding.cache import RetentionCache, RetentionPolicy
from adaptive_retention.decoding.models import tiny_llama
from adaptive_retention.decoding.probes import GENERATORS, Sample, correct, make_probe
from adaptive_retention.decoding.perplexity import SOURCES
from adaptive_retention.decoding.scores import SCORES
from analysis.decoding import table
ROOT = Path(__file__).resolve().parents[1]


class WordTokenizer:
    """Whitespace tokens: enough for the probe generators' length arithmetic."""

    def __call__(self, text, add_special_tokens=True):
        return type("Encoding", (), {"input_ids": text.split()})()


def test_defaults_are_defined_once_and_agree_with_the_schema_and_the_registries():
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())["properties"]["decoding"]
    props = schema["properties"]
    assert tuple(props["methods"]["items"]["enum"]) == defaults.METHODS == tuple(SCORES)
    assert tuple(props["probes"]["items"]["enum"]) == defaults.PROBES == tuple(GENERATORS)
    assert schema["default"]["methods"] == list(defaults.METHODS) and schema["default"]["probes"] == list(defaults.PROBES)
    assert (schema["default"]["sinks"], schema["default"]["window"]) == (defaults.SINKS, defaults.WINDOW)
    assert tuple(schema["default"]["compressions"]) == defaults.COMPRESSIONS
    assert tuple(schema["default"]["cost"]["lengths"]) == defaults.COST_LENGTHS
    assert schema["default"]["perplexity"] == defaults.PERPLEXITY
    sources = props["perplexity"]["properties"]["sources"]["items"]["enum"]
    assert tuple(sources) == defaults.DOCUMENT_SOURCES == tuple(SOURCES)
    assert (RetentionPolicy(budget=None).sinks, RetentionPolicy(budget=None).window) == (defaults.SINKS, defaults.WINDOW)


def test_the_learned_sections_schema_names_every_training_setting():
    """decoding.learned.train and .refine in the schema = TrainConfig's fields but the four the workflow sets itself;
    each enum is the library's list; refine's default is the library's REFINE (the learned section's default too)."""
    from dataclasses import fields

    from adaptive_retention.decoding.train_config import CHOICES, REFINE, TrainConfig

    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    learned = schema["properties"]["decoding"]["properties"]["learned"]
    train = schema["$defs"]["decode_train"]["properties"]
    assert learned["properties"]["train"]["$ref"] == "#/$defs/decode_train" == learned["properties"]["refine"]["allOf"][0]["$ref"]
    assert set(train) | {"compression", "seed", "sinks", "window"} == {f.name for f in fields(TrainConfig)}
    assert {name: tuple(train[name]["enum"]) for name in CHOICES} == CHOICES
    assert learned["properties"]["refine"]["default"] == learned["default"]["refine"] == REFINE and set(REFINE) <= set(train)


@pytest.mark.parametrize("refine, error", [({"init_gates": "g.pt"}, "should not be valid"),  # the workflow sets it
                                           ({"kl_focus": "far"}, "'far' is not one of"), ({"lr": 0}, "exclusiveMinimum")])
def test_a_bad_refine_key_is_refused_at_validation(refine, error):
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    config = yaml.safe_load((ROOT / "config/test.yaml").read_text())
    config["decoding"]["learned"]["refine"] = refine
    with pytest.raises(WorkflowError, match=error):
        validate(config, str(ROOT / "workflow/schemas/config.schema.yaml"))


@pytest.mark.parametrize("probe", ["passkey", "multikey", "vt"])
def test_probes_are_seeded_sized_and_hold_their_answers(probe):
    a = make_probe(probe, WordTokenizer(), 400, 10, seed=0)
    assert a == make_probe(probe, WordTokenizer(), 400, 10, seed=0)
    assert [s.answers for s in a] != [s.answers for s in make_probe(probe, WordTokenizer(), 400, 10, seed=1)]
    for s in a:
        assert 360 <= len(s.context.split()) <= 420
        assert all(answer in s.context for answer in s.answers) and not any(x in s.question for x in s.answers[1:])
    assert {s.depth for s in a} == ({0.0, 0.25, 0.5, 0.75, 1.0} if probe == "passkey" else {s.depth for s in a})


def test_the_passkey_sits_at_its_depth():
    for s in make_probe("passkey", WordTokenizer(), 1000, 5, seed=0):
        at = s.context.index(f"The pass key is {s.answers[0]}") / len(s.context)
        assert abs(at - s.depth) < 0.1


def test_qa_puts_the_asked_paragraph_among_others():
    squad = ROOT.parent / "shared/data/squad/validation.jsonl.gz"
    samples = make_probe("qa", WordTokenizer(), 600, 4, seed=0, squad_file=squad)
    for s in samples:
        assert 450 <= len(s.context.split()) <= 600 and s.context.count("\n\n") >= 2
    with pytest.raises(ValueError, match="needs a SQuAD file"):
        make_probe("qa", WordTokenizer(), 600, 4, seed=0)


def test_correct_reads_the_first_line_and_normalises_qa():
    needle = Sample("passkey", "p", "", "", "", ("12345",), 0.0, 8)
    assert correct(needle, " 12345. Remember") and not correct(needle, "\n\n1234\n12345")
    vt = Sample("vt", "v", "", "", "", ("AB", "CD"), 0.0, 8)
    assert correct(vt, "CD, AB") and not correct(vt, "AB only")
    qa = Sample("qa", "q", "", "", "", ("the Denver Broncos",), 0.0, 8)
    assert correct(qa, "Denver Broncos!") and not correct(qa, "Carolina")


@settings(max_examples=50, deadline=None)
@given(tokens=st.integers(1, 10_000), compression=st.floats(0.01, 0.99), floor=st.integers(0, 40))
def test_budget_is_kvpress_n_kept_with_a_floor(tokens, compression, floor):
    assert budget_for(tokens, compression, floor) == max(floor, int(tokens * (1 - compression)))


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.5])
def test_budget_rejects_compressions_outside_the_open_interval(bad):
    with pytest.raises(ValueError, match="compression must be in"):
        budget_for(100, bad, 0)


def test_a_stacked_batch_answers_as_each_cache_alone():
    """The bench answers every score of one compression in one batch: each row's logits are those of its cache
    alone, to float rounding (batched kernels sum in another order), and the rows differ from each other."""
    model = tiny_llama(layers=2)
    context, question = torch.randint(0, 128, (1, 60)), torch.randint(0, 128, (1, 5))
    full = RetentionCache(model, RetentionPolicy(budget=None), observe=tuple(SCORES))
    with torch.no_grad():
        model(context, cache=full)
        policies = [RetentionPolicy(budget=24, score=s, window=4) for s in sorted(SCORES)]
        together = model(question.expand(len(policies), -1), cache=stack([full.compressed(p) for p in policies], model)).logits
        alone = torch.cat([model(question, cache=full.compressed(p)).logits for p in policies])
    torch.testing.assert_close(together, alone, rtol=0, atol=1e-5)
    assert (alone[1:] - alone[:1]).abs().amax(dim=(1, 2)).min() > 1e-3  # the scores did keep different entries
    assert len(greedy(model, stack([full.compressed(p) for p in policies], model), question, 4, set(), set(), set())) == 6


@pytest.mark.parametrize("argv,message", [
    (["decode-bench", "--probe", "passkey", "--length", "512", "--compressions", "1", "--out", "x.tsv"], "in (0, 1)"),
    (["decode-bench", "--probe", "needle", "--length", "512", "--out", "x.tsv"], "invalid choice: 'needle'"),
    (["decode-bench", "--probe", "passkey", "--length", "512", "--methods", "lru", "--out", "x.tsv"], "invalid choice: 'lru'"),
    (["decode-cost", "--lengths", "32"], "must be ≥ 64"),
    (["decode-train", "--rank-layers", "0", "--out", "g.pt"], "rank_layers is a count of layers ≥ 1 or 'all'; got 0"),
    (["decode-train", "--rank-layers", "most", "--out", "g.pt"], "expected a number, got 'most'"),
])
def test_bad_arguments_fail_before_any_model_loads(argv, message, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    assert message in capsys.readouterr().err


def test_qa_without_its_squad_file_names_the_file(tmp_path, capsys):
    missing = tmp_path / "nope.jsonl"
    assert main(["decode-bench", "--probe", "qa", "--length", "512", "--squad-file", str(missing),
                 "--out", str(tmp_path / "qa.tsv")]) != 0
    assert str(missing) in capsys.readouterr().err and not (tmp_path / "qa.tsv").exists()


def test_analysis_intervals_and_paired_tests():
    rows = []
    for i in range(20):
        rows.append(dict(probe="passkey", length=1024, sample=f"s{i}", method="full", compression=0.0, correct=1))
        rows.append(dict(probe="passkey", length=1024, sample=f"s{i}", method="tova", compression=0.5, correct=int(i < 18)))
        rows.append(dict(probe="passkey", length=1024, sample=f"s{i}", method="random", compression=0.5, correct=int(i < 2)))
    summary = table(pd.DataFrame(rows)).set_index("method")
    assert summary.loc["full", "accuracy"] == 1 and summary.loc["full", "ci_high"] == 1
    assert summary.loc["full", "ci_low"] == pytest.approx(0.025 ** (1 / 20))  # Clopper-Pearson at k = n
    assert summary.loc["tova", "p_vs_full"] == pytest.approx(0.5)  # 2 discordant samples: exact McNemar
    assert summary.loc["random", "best_other"] == "tova" and summary.loc["random", "p_vs_best_other"] == pytest.approx(2 * 0.5 ** 16)
    from analysis.decoding import overview

    assert overview(summary.reset_index())[2] == "| passkey | 1024 | 0.5 | 100 [83, 100] | **90** | 10 |"  # TOVA, random


def test_the_core_grid_overlay_layers_on_the_default_config():
    """config/overlays/decoding.yaml is a second --configfile: merged key by key (as Snakemake does), it validates and
    asks for every probe at 1k and 2k tokens with 100 samples, every score, in its own results folder."""
    from snakemake.utils import update_config, validate

    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    update_config(config, yaml.safe_load((ROOT / "config/overlays/decoding.yaml").read_text()))
    validate(config, str(ROOT / "workflow/schemas/config.schema.yaml"))
    d = config["decoding"]
    assert d["enabled"] and d["probes"] == list(defaults.PROBES) and d["lengths"] == [1024, 2048] and d["samples"] == 100
    assert d["methods"] == list(defaults.METHODS) and config["results_dir"] != "results" and config["tasks"]
    assert not d["learned"]["enabled"]
    update_config(config, yaml.safe_load((ROOT / "config/overlays/learned.yaml").read_text()))
    validate(config, str(ROOT / "workflow/schemas/config.schema.yaml"))
    learned = config["decoding"]["learned"]
    assert learned["enabled"] and learned["seeds"] == [0, 1, 2] and set(learned["compressions"]) <= set(d["compressions"])


def test_the_cost_figure_needs_the_cost_table(tmp_path, capsys):
    from analysis.decoding import main as analysis_main

    cell = tmp_path / "passkey-8.tsv"
    cell.write_text("probe\tlength\tsample\tmethod\tcompression\tcorrect\tanswer\npasskey\t8\ts\tfull\t0.0\t1\t1\n")
    outputs = ["--table", str(tmp_path / "t.csv"), "--markdown", str(tmp_path / "t.md"), "--figure", str(tmp_path / "f.png")]
    with pytest.raises(SystemExit):
        analysis_main([str(cell), "--cost-figure", str(tmp_path / "c.png"), *outputs])
    assert "--cost-figure draws --cost" in capsys.readouterr().err and not (tmp_path / "t.csv").exists()
    from analysis.result_tsv import read_cost
    cost = tmp_path / "cost.tsv"  # a cost table without its memory column: refused, naming the file and the column
    cost.write_text("length\tmethod\tcompression\tbudget\tcache_mib\tms_per_token\ttime_ratio\n1024\tfull\t0\t1024\t1\t1\t1\n")
    with pytest.raises(ValueError, match="cost.tsv: not a decode-cost table \\(no column memory_ratio\\)"):
        read_cost(str(cost))


def test_the_learned_cache_is_compared_over_seeds_and_samples(tmp_path):
    """Two training seeds of a learned cell against a cell with the full cache and two presses: the mean over seeds,
    Δ and the exact paired test over samples (each sample's seed-mean difference), the full cache's own p against the
    best press, whether every press is beaten; the interval over seeds stays within [0, 1]."""
    from analysis.decoding import learned_table, load_learned

    cells, learned = [], []
    for i in range(30):
        base = dict(probe="passkey", length=1024, tokens=1000, sample=f"s{i}", depth=0.5, budget=512)
        cells += [dict(base, method="full", compression=0.0, correct=1),
                  dict(base, method="tova", compression=0.5, correct=int(i < 15)),
                  dict(base, method="knorm", compression=0.5, correct=int(i < 5))]
        learned += [dict(base, method="learned", compression=0.5, correct=int(i < 27), train_seed=0, answer=""),
                    dict(base, method="learned", compression=0.5, correct=int(i < 25), train_seed=1, answer="")]
    paths = []
    for seed in (0, 1):
        path = tmp_path / f"passkey-1024-c0.5-s{seed}.tsv"
        pd.DataFrame([r for r in learned if r["train_seed"] == seed]).drop(columns="train_seed").to_csv(path, sep="\t", index=False)
        paths.append(str(path))
    shutil.copy(paths[0], paths[0].replace("-s0", "-s2"))  # a third seed equal to the first
    row = learned_table(load_learned(paths), pd.DataFrame(cells)).iloc[0]
    assert row.seeds == 2 and row.accuracy == pytest.approx(26 / 30) and row.best_press == "tova"
    # 12 samples differ from TOVA (10 by both seeds, 2 by seed 0), all ours: 2 × 0.5^12 — not the pooled 22 (seed, sample) pairs' 2 × 0.5^22
    assert row.delta_tova == pytest.approx(26 / 30 - 0.5) and row.p_tova == pytest.approx(2 * 0.5 ** 12)
    assert row.p_full_vs_best_press == pytest.approx(2 * 0.5 ** 15)  # the full cache right on the 15 samples TOVA misses
    assert row.delta_full == pytest.approx(26 / 30 - 1) and row.beats_every_press
    assert not row.seeds_clear_best_press  # its interval over two seeds reaches below TOVA's 0.5
    assert row.ci_over == "seeds" and row.ci_low == pytest.approx(26 / 30 - 12.706 / 30, abs=1e-3)  # t(1) · sem of 27/30, 25/30
    twice = learned_table(load_learned([paths[0], paths[0].replace("-s0", "-s2")]), pd.DataFrame(cells)).iloc[0]
    assert (twice.ci_low, twice.ci_high) == pytest.approx((27 / 30, 27 / 30))  # seeds that agree exactly: a zero-width interval, not NaN
    assert twice.seeds_clear_best_press  # ... above TOVA's 0.5
    one = learned_table(load_learned(paths[:1]), pd.DataFrame(cells)).iloc[0]
    assert twice.p_tova == pytest.approx(one.p_tova)  # a seed read twice is one seed's evidence
    far = tmp_path / "far" / "passkey-1024-c0.5-s1.tsv"  # seeds at 27/30 and 3/30: t(1) gives ±3.8, clipped to [0, 1]
    far.parent.mkdir()
    pd.read_csv(paths[1], sep="\t").assign(correct=lambda d: (d["sample"].str[1:].astype(int) < 3).astype(int)).to_csv(far, sep="\t", index=False)
    apart = learned_table(load_learned([paths[0], str(far)]), pd.DataFrame(cells)).iloc[0]
    assert (apart.ci_low, apart.ci_high) == (0.0, 1.0) and apart.accuracy == pytest.approx(0.5)
    assert not one.seeds_clear_best_press  # one seed: the exact interval over samples  # one seed says nothing of another
    assert one.ci_over == "samples" and (one.ci_low, one.ci_high) == pytest.approx(stats.binomtest(27, 30).proportion_ci(0.95, "exact"))
    with pytest.raises(ValueError, match="is named"):
        load_learned([str(tmp_path / "passkey-1024.tsv")])


def test_learned_variants_share_one_table_each_under_its_name(tmp_path, capsys):
    """Two learned variants whose cells carry the same names (other folders): each compared with the presses on its
    own rows; in the CLI's markdown and figure each under its name; a variant named like a press, a name given twice
    or a name without cells is refused before anything is written."""
    from analysis.decoding import learned_table, load_variants
    from analysis.decoding import main as analysis_main

    base = dict(probe="passkey", length=8, tokens=8, depth=0.5, budget=4, answer="")
    cells = [dict(base, sample=f"s{i}", method=m, compression=c, correct=k)
             for i in range(20) for m, c, k in (("full", 0.0, 1), ("tova", 0.5, int(i < 10)))]
    bench = tmp_path / "passkey-8.tsv"
    pd.DataFrame(cells).to_csv(bench, sep="\t", index=False)
    variants = {}
    for name, right in (("learned", 18), ("trained at 0.75", 4)):
        folder = tmp_path / name.replace(" ", "_")
        folder.mkdir()
        path = folder / "passkey-8-c0.5-s0.tsv"
        pd.DataFrame([dict(base, sample=f"s{i}", method="learned", compression=0.5, correct=int(i < right))
                      for i in range(20)]).to_csv(path, sep="\t", index=False)
        variants[name] = [str(path)]
    rows = learned_table(load_variants(variants), pd.DataFrame(cells)).set_index("variant")
    assert rows.loc["learned", "accuracy"] == 0.9 and rows.loc["trained at 0.75", "accuracy"] == 0.2
    assert rows.loc["learned", "delta_tova"] == pytest.approx(0.4) and rows.loc["trained at 0.75", "delta_tova"] == pytest.approx(-0.3)
    assert rows.loc["learned", "p_tova"] == pytest.approx(2 * 0.5 ** 8)  # 8 discordant pairs, all the variant's
    outputs = ["--table", str(tmp_path / "t.csv"), "--markdown", str(tmp_path / "t.md"), "--figure", str(tmp_path / "f.png"),
               "--learned-table", str(tmp_path / "l.csv")]
    assert analysis_main([str(bench), "--learned", *variants["learned"],
                          "--learned-as", "trained at 0.75", *variants["trained at 0.75"], *outputs]) == 0
    markdown = (tmp_path / "t.md").read_text()
    assert "| passkey | 8 | 0.5 | learned (ours) | 1 | 90.0 |" in markdown and "| passkey | 8 | 0.5 | trained at 0.75 | 1 | 20.0 |" in markdown
    assert list(pd.read_csv(tmp_path / "l.csv")["variant"]) == ["learned", "trained at 0.75"]
    with pytest.raises(ValueError, match=r"named like a method of the bench: \['tova'\]"):
        load_variants({"tova": variants["learned"]})
    for bad in (["--learned-as", "learned", *variants["trained at 0.75"]], ["--learned-as", "x", "--learned-as", "x", *variants["learned"]]):
        (tmp_path / "t.csv").unlink(missing_ok=True)
        with pytest.raises(SystemExit):
            analysis_main([str(bench), "--learned", *variants["learned"], *bad, *outputs])
        assert "give each variant a new name and its files" in capsys.readouterr().err and not (tmp_path / "t.csv").exists()
    with pytest.raises(SystemExit):  # a variant's perplexity without the bench's (full cache, presses) to compare with
        analysis_main([str(bench), "--perplexity-as", "x", str(bench), *outputs])
    assert "--perplexity-as needs --perplexity" in capsys.readouterr().err and not (tmp_path / "t.csv").exists()


def test_perplexity_files_merge_and_the_learned_cache_is_tested_against_the_closest_press(tmp_path):
    """The bench's and the learned cache's perplexity files share the full cache's rows (kept once; a disagreement is an
    error); training seeds average per document; each method gets a Wilcoxon test against the closest other method (a
    learned variant: the closest press); another variant's files (`--perplexity-as`) stand under its own name."""
    from analysis.decoding import load_perplexity, perplexity_table

    docs = [dict(source="arxiv", document=f"d{i}", tokens=1024, compression=0.5, budget=512, scored=512, nll=2.0 + 0.1 * i)
            for i in range(8)]
    bench = [dict(d, method="full") for d in docs] + [dict(d, method="h2o", nll=d["nll"] + 0.2) for d in docs] + \
        [dict(d, method="tova", nll=d["nll"] + 0.3 + 0.01 * i) for i, d in enumerate(docs)]
    learned = [dict(d, method="full") for d in docs] + [dict(d, method="learned", nll=d["nll"] + 0.1 + 0.01 * i) for i, d in enumerate(docs)]
    paths = [tmp_path / "bench.tsv", tmp_path / "learned.tsv"]
    for path, rows in zip(paths, (bench, learned)):
        pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    rows = load_perplexity([str(p) for p in paths])
    assert len(rows) == 32  # the full cache once
    table = perplexity_table(rows).set_index("method")
    assert table.loc["learned", "closest_other"] == "h2o" and table.loc["h2o", "closest_other"] == "learned"
    assert table.loc["learned", "nll_vs_closest"] == pytest.approx(-0.1 + 0.035)
    assert table.loc["learned", "p_vs_closest"] == pytest.approx(stats.wilcoxon([-0.1 + 0.01 * i for i in range(8)]).pvalue)
    seed1 = tmp_path / "perplexity-c0.5-s1.tsv"  # a second training seed: its per-document NLL averaged with the first's
    pd.DataFrame([dict(r, nll=r["nll"] + 0.2 * (r["method"] == "learned")) for r in learned]).to_csv(seed1, sep="\t", index=False)
    two = perplexity_table(load_perplexity([str(p) for p in paths] + [str(seed1)])).set_index("method")
    assert two.loc["learned", "nll_vs_full"] == pytest.approx(table.loc["learned", "nll_vs_full"] + 0.1)
    assert two.loc["learned", "documents"] == 8 and two.loc["h2o", "perplexity"] == table.loc["h2o", "perplexity"]
    variant = tmp_path / "other" / "perplexity-c0.5-s0.tsv"  # another learned variant, closer than anything: under its own name
    variant.parent.mkdir()
    pd.DataFrame([dict(r, nll=r["nll"] - 0.05 * (r["method"] == "learned")) for r in learned]).to_csv(variant, sep="\t", index=False)
    three = perplexity_table(load_perplexity([str(p) for p in paths], {"trained at 0.75": [str(variant)]})).set_index("method")
    assert three.loc["trained at 0.75", "nll_vs_full"] == pytest.approx(table.loc["learned", "nll_vs_full"] - 0.05)
    assert three.loc["learned", "closest_other"] == "h2o" and three.loc["trained at 0.75", "closest_other"] == "h2o"  # presses only
    assert three.loc["h2o", "closest_other"] == "trained at 0.75" and three.loc["learned"].equals(table.loc["learned"])
    for name in ("learned", "tova", "full"):
        with pytest.raises(ValueError, match=f"named like a method of the bench: \\['{name}'\\]"):
            load_perplexity([str(p) for p in paths], {name: [str(variant)]})
    pd.DataFrame([dict(r, nll=r["nll"] + 1e-7 * (r["method"] == "full")) for r in learned]).to_csv(paths[1], sep="\t", index=False)
    assert len(load_perplexity([str(p) for p in paths])) == 32  # read with another thread count: float noise, the same rows
    pd.DataFrame([dict(r, nll=r["nll"] + (r["method"] == "full")) for r in learned]).to_csv(paths[1], sep="\t", index=False)
    with pytest.raises(ValueError, match="differ across .* \\(NLL apart by 1\\)"):
        load_perplexity([str(p) for p in paths])
    pd.DataFrame(bench).drop(columns="scored").to_csv(paths[0], sep="\t", index=False)  # an older or foreign table
    with pytest.raises(ValueError, match="bench.tsv: not a decode-perplexity table \\(no column scored\\)"):
        load_perplexity([str(p) for p in paths])
    from analysis.decoding import load
    with pytest.raises(ValueError, match="bench.tsv: not a decode-bench table \\(no column answer, correct, depth"):
        load([str(paths[0])])
