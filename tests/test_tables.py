"""Table builders on a small synthetic results table: means and CIs, the paper's values in the right cells."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from adaptive_retention.plan import variant_name
from analysis import aggregate, tables


def _result(tmp_path, seed, method, ratio, acc, budget=None, study=None, kept=None, sweep=(None, None), chance=50.9):
    """One evaluation record as `evaluate` writes it: the run's identity fields, then the result. The file lives in an
    arbitrary folder: analysis must not read anything from the path."""
    variant = variant_name(budget, study)
    r = {"run": f"sst2/{variant}/seed{seed}", "task": "sst2", "variant": variant, "budget": budget, "study": study,
         "sweep_param": sweep[0], "sweep_value": sweep[1], "seed": seed, "method": method, "ratio": ratio,
         "metrics": {"accuracy": acc}, "chance": {"accuracy": chance}, "n_examples": 872, "wall_seconds": 1.0, "kept_fraction": kept or {},
         "kept_fraction_tokens": kept or {}, "checkpoint": "nowhere"}
    p = tmp_path / f"bundle_{abs(hash(r['run'])) % 10**8}.json"
    existing = json.loads(p.read_text()) if p.exists() else []
    p.write_text(json.dumps(existing + [r]))
    return p


@pytest.fixture
def summary(tmp_path):
    accs = {"full": [90.0, 92.0, 91.0], "random": [80.0, 82.0, 84.0], "learned": [88.0, 89.0, 90.0]}
    paths = set()
    for seed in range(3):
        paths.add(_result(tmp_path, seed, "full", 1.0, accs["full"][seed]))
        _result(tmp_path, seed, "random", 0.5, accs["random"][seed])
        paths.add(_result(tmp_path, seed, "learned", 0.5, accs["learned"][seed], 0.5, kept={"1": 0.5}))
    _result(tmp_path, 0, "learned", 0.5, 85.0, 0.5, "reference")
    _result(tmp_path, 0, "learned", 0.5, 83.0, 0.5, "beta1", sweep=("beta", 1.0))
    df = aggregate.tidy(sorted(str(p) for p in tmp_path.glob("bundle_*.json")))
    return aggregate.summarise(df), accs


def test_means_cis_and_paper_cells(summary):
    s, accs = summary
    t = tables.quality_table(s, pd.read_csv(tables.PAPER), 0.5).set_index("method")
    assert list(t.index) == ["full", "random", "learned"]  # no truncation / heavy hitter results: no rows
    half = stats.t.ppf(0.975, 2) * np.std(accs["learned"], ddof=1) / np.sqrt(3)
    assert t.loc["learned", "mean"] == pytest.approx(89.0) and t.loc["learned", "ci95"] == pytest.approx(half)
    assert t.loc["learned", "pct_of_full"] == pytest.approx(100 * 89.0 / 91.0)
    # SPEC §5, 50 % table, SST-2: Full 92.1, Random 88.4, Adaptive Retention 91.5
    assert (t.loc["full", "paper"], t.loc["random", "paper"], t.loc["learned", "paper"]) == (92.1, 88.4, 91.5)
    assert t.loc["random", "diff_vs_paper"] == pytest.approx(82.0 - 88.4)
    assert t.loc["learned", "paper_pct_of_full"] == pytest.approx(100 * 91.5 / 92.1)
    assert (t.n_seeds == 3).all()
    md = tables.quality_markdown(t.reset_index())
    assert "89.0 ± " in md and "(paper 91.5, Δ -2.5)" in md and "Adaptive Retention" in md
    assert (t.chance == 50.9).all() and md.splitlines()[-1].startswith(f"| {tables.CHANCE}") and "| 50.9" in md.splitlines()[-1]


def test_thirty_percent_table_uses_the_other_paper_values(summary):
    s, _ = summary
    t = tables.quality_table(s, pd.read_csv(tables.PAPER), 0.3)
    assert list(t.method) == ["full"] and t.paper.iloc[0] == 90.8  # the paper's Full row differs between its tables


def test_ablation_table_against_reference(summary):
    s, _ = summary
    t = tables.ablation_table(s).set_index("run")
    assert t.loc["beta1", "diff_vs_reference"] == pytest.approx(-2.0) and t.loc["reference", "diff_vs_reference"] == 0.0


def test_study_over_seeds_shows_its_noise(summary, tmp_path):
    """Table 3 and Figure 2 with two study seeds: means over seeds, their interval, every seed on the figure."""
    _result(tmp_path, 1, "learned", 0.5, 87.0, 0.5, "reference")
    _result(tmp_path, 1, "learned", 0.5, 80.0, 0.5, "beta1", sweep=("beta", 1.0))
    df = aggregate.tidy(sorted(str(p) for p in tmp_path.glob("bundle_*.json")))
    t = tables.ablation_table(aggregate.summarise(df)).set_index("run")
    assert t.loc["reference", "mean"] == 86.0 and t.loc["reference", "n_seeds"] == 2
    assert t.loc["reference", "ci95"] == pytest.approx(stats.t.ppf(0.975, 1) * np.std([85.0, 87.0], ddof=1) / np.sqrt(2))
    assert t.loc["beta1", "diff_vs_reference"] == pytest.approx(81.5 - 86.0) and t.loc["beta1", "chance"] == 50.9
    from analysis.figures import sensitivity_figure

    beta = sensitivity_figure(df, "test").axes[0]
    dots = [line for line in beta.lines if line.get_marker() == "."]
    assert sorted(sorted(line.get_ydata()) for line in dots) == [[80.0, 83.0], [85.0, 87.0]]  # each seed shown
    assert any(line.get_ydata()[0] == 50.9 for line in beta.lines)  # the chance level


def test_kept_per_block_from_evaluations():
    evals = [{"task": "sst2", "method": "learned", "ratio": 0.3, "seed": s, "budget": 0.3, "study": None,
              "kept_fraction": {"1": 0.3 + 0.01 * s, "3": 0.2}} for s in range(2)]
    evals.append({**evals[0], "ratio": 0.5})  # another budget than trained: not in the table
    evals.append({**evals[0], "study": "reference", "kept_fraction": {"1": 0.9}})  # a study run: not in the table
    k = tables.kept_per_block(evals, num_layers=4)
    assert k.kept_fraction.round(4).tolist() == [1.0, 0.305, 0.305, 0.2] and (k.n_seeds == 2).all()


def test_trace_summary_gap_and_its_standard_error(tmp_path):
    """The budget criterion is judged on the last 10 % of steps: their mean kept fraction minus ρ, and its noise."""
    from analysis import trace_summary

    kept = [0.9] * 90 + [0.32, 0.28] * 5  # the last 10 steps alternate around 0.30
    rows = ["step\tkept_1\ttarget_1\tlambda_1"] + [f"{i + 1}\t{k}\t0.3\t0.1" for i, k in enumerate(kept)]
    (tmp_path / "trace.tsv").write_text("\n".join(rows) + "\n")
    (r,) = trace_summary.summarise(tmp_path)
    assert r["steps"] == 100 and r["gap"] == pytest.approx(0.0, abs=1e-12)
    assert r["gap_se"] == pytest.approx(np.std([0.32, 0.28] * 5, ddof=1) / np.sqrt(10))
    (half,) = trace_summary.summarise(tmp_path, tail=0.5)  # steps 51–100: 40 at 0.9, then the alternation
    assert half["gap"] == pytest.approx((40 * 0.9 + 5 * 0.6) / 50 - 0.3) and "kept_last50pct_mean" in half
    with pytest.raises(SystemExit):
        trace_summary.main([str(tmp_path), "--tail", "1.5"])


def test_step_times_table_and_figure(tmp_path):
    """analysis.step_times: total seconds per run, speed-up against the first run, the figure written."""
    from adaptive_retention.io import write_trace
    from analysis import step_times

    for name, seconds in (("masked", [2.0] * 10), ("gathered", [2.0, 2.0] + [0.5] * 8)):
        (tmp_path / name).mkdir()
        write_trace([{"step": i + 1, "seconds": s} for i, s in enumerate(seconds)], tmp_path / name / "step_times.tsv")
        write_trace([{"step": i + 1, "loss": 1.0 / (i + 1), "kept_1": 1 - 0.07 * i, "target_1": 0.3} for i in range(10)],
                    tmp_path / name / "trace.tsv")
    runs = [tmp_path / "masked", tmp_path / "gathered"]
    assert step_times.main([*map(str, runs), "--labels", "masked", "gathered", "--out", str(tmp_path / "f.png")]) == 0
    table = step_times.run_table(runs, ["masked", "gathered"]).set_index("run")
    assert table.loc["gathered", "train_seconds"] == pytest.approx(8.0)
    assert table.loc["gathered", "speedup_vs_first"] == pytest.approx(2.5)
    assert table.loc["masked", "kept_last10pct"] == pytest.approx(1 - 0.63)
    assert (tmp_path / "f.png").stat().st_size > 0 and (tmp_path / "f.pdf").exists()
    with pytest.raises(SystemExit):
        step_times.main([str(tmp_path / "masked"), str(tmp_path / "nowhere"), "--out", str(tmp_path / "g.png")])
