"""The Snakemake workflow: lint, the paper grid resolves, the test config runs end to end, reruns are
incremental, bad config fails at start-up, and the conda env agrees with pyproject."""

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import torch
import yaml

from adaptive_retention.io import json_text
from adaptive_retention.methods import label
from adaptive_retention.plan import build_plan
from test_plan import workflow_config

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def smk(*args, check=True):
    out = subprocess.run(SNAKEMAKE + list(args), cwd=ROOT, env=ENV, capture_output=True, text=True)
    if check and out.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out


def test_lint_is_clean():
    out = smk("--lint", "--configfile", "config/test.yaml", check=False)
    text = out.stdout + out.stderr
    assert out.returncode == 0 and "Lints for" not in text, text[-4000:]


def test_paper_grid_resolves_and_passes_preflight_against_the_local_hub(local_hub):
    out = subprocess.run(SNAKEMAKE + ["-n", "--configfile", "config/paper.yaml", "--quiet", "rules"], cwd=ROOT, env=local_hub.env(),
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out.stdout, re.M))
    n_runs = str(len(build_plan(workflow_config("paper.yaml"), "P").runs))  # the grid's size comes from the plan
    assert counts["train"] == counts["evaluate"] == counts["run_config"] == n_runs and counts["aggregate"] == "1"
    assert counts["tables"] == counts["figures"] == counts["theory_summary"] == counts["theory_complexity"] == "1"
    theory_seeds = str(len(workflow_config("paper.yaml")["theory"]["seeds"]))  # each seeded check once per theory seed
    assert theory_seeds == "3" and counts["theory_variance"] == counts["theory_duality"] == counts["theory_generalisation"] == theory_seeds
    assert counts["prepare_data"] == "6" and counts["prepare_model"] == "2"  # DistilBERT and Longformer, fetched once


def test_paper_grid_with_a_broken_id_stops_before_any_job(local_hub):
    out = subprocess.run(SNAKEMAKE + ["-n", "--configfile", "config/paper.yaml", "--config", "model=distilbert/no-such-model"], cwd=ROOT,
                         env=local_hub.env(), capture_output=True, text=True)
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "pre-flight: model 'distilbert/no-such-model'" in text and "Job stats" not in text, text[-3000:]


def test_paper_grid_offline_says_hub_sources_cannot_be_checked():
    out = smk("-n", "--configfile", "config/paper.yaml", check=False)
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "cannot be checked offline" in text and "source: local" in text, text[-3000:]


def test_bad_config_value_fails_at_start_up_naming_the_key(tmp_path):
    cfg = yaml.safe_load((ROOT / "config/test.yaml").read_text())
    cfg["budgets"] = [1.5]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    out = smk("-n", "--configfile", str(bad), check=False)
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "budgets" in text and "1.5" in text, text[-2000:]


def test_missing_task_data_fails_before_training(tmp_path):
    cfg = yaml.safe_load((ROOT / "config/test.yaml").read_text())
    cfg["data_dir"] = str(tmp_path / "nowhere")
    bad = tmp_path / "nodata.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    out = smk("-n", "--configfile", str(bad), check=False)
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "config tasks.sst2: task 'sst2': no data" in text and "nowhere/glue-sst2" in text, text[-2000:]


def test_a_jobs_threads_come_from_its_kind_and_set_its_torch_threads(tmp_path):
    """resources.train.threads = 1: every train job holds one core and runs one torch thread; evaluate keeps the
    schema's default (2); analysis jobs run one torch thread (two jobs on two cores never oversubscribe them)."""
    cfg = yaml.safe_load((ROOT / "config/test.yaml").read_text())
    cfg["resources"] = {"train": {"threads": 1}}
    path = tmp_path / "threads.yaml"
    path.write_text(yaml.safe_dump(cfg))
    text = smk("-n", "-p", "--cores", "2", "--configfile", str(path)).stdout
    jobs = {m.group(1): m.group(2) for m in re.finditer(r"^rule (\w+):\n(.*?)(?=^\[|^rule |\Z)", text, re.M | re.S)}
    assert "threads:" not in jobs["train"] and "OMP_NUM_THREADS=1 " in jobs["train"] and "train --config" in jobs["train"]  # 1: not printed
    assert "threads: 2" in jobs["evaluate"] and "OMP_NUM_THREADS=2 " in jobs["evaluate"]
    assert "OMP_NUM_THREADS=1 " in jobs["theory_variance"]


def test_jobs_others_wait_on_start_first():
    """Priorities (common.smk PRIORITY): a task's full model 2, its retention runs 1, the study's runs 0 — a run's config
    job has its run's priority and a task's data snapshot the full model's (a training job cannot start before them)."""
    text = smk("-n", "--cores", "2", "--configfile", str(ROOT / "config/test.yaml"), "--forceall").stdout
    jobs = re.finditer(r"^rule (prepare_data|run_config|train|evaluate):\n(.*?)(?=^\[|^rule |\Z)", text, re.M | re.S)
    priority = {}
    for m in jobs:
        target = re.search(r"wildcards: (?:run|task)=(\S+)", m.group(2)).group(1)
        found = re.search(r"priority: (\d+)", m.group(2))
        priority[(m.group(1), target)] = int(found.group(1)) if found else 0  # 0: not printed
    snapshots = {target: p for (rule, target), p in priority.items() if rule == "prepare_data"}
    assert snapshots == {"sst2": 2, "squad": 2}
    variants = {run.split("/")[1]: p for (rule, run), p in priority.items() if rule != "prepare_data"}
    assert variants == {"full": 2, "r0.5": 1, "r0.5-reference": 0, "r0.5-no_hard_concrete": 0, "r0.5-beta1": 0}
    assert len(priority) == 2 + 3 * (2 * 2 * 2 + 3)  # 2 snapshots + (config, train, evaluate) × (2 tasks × 2 seeds × (full, r0.5) + 3 study runs)


def test_the_learned_cells_read_the_refined_gates_unless_refine_is_empty(tmp_path):
    """decoding.learned.refine (default: the reported recipe) adds decode_refine between training and every learned
    cell; refine: {} scores the first stage's gates, and no decode_refine job exists."""
    def gates_read(refine):
        cfg = yaml.safe_load((ROOT / "config/test.yaml").read_text())
        cfg["decoding"]["learned"]["refine"] = refine
        path = tmp_path / "learned.yaml"
        path.write_text(yaml.safe_dump(cfg))
        text = smk("-n", "-p", "--configfile", str(path), "--config", "results_dir=results/refine", "--",
                   "results/refine/decoding/learned/passkey-96-c0.5-s0.tsv").stdout
        return re.search(r"--gates (\S+)", text).group(1), "rule decode_refine:" in text

    assert gates_read({"steps": 1}) == ("results/refine/decoding/gates/c0.5-s0-refined.pt", True)
    assert gates_read({}) == ("results/refine/decoding/gates/c0.5-s0.pt", False)


def test_conda_env_pins_agree_with_pyproject():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((ROOT / "envs/adaptive-retention.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert sorted(deps) == sorted(p for p in pip if not p.startswith("-e"))


RESULTS = "results/test run"  # a space in the path: every rule quotes its paths
TEST = ("--configfile", "config/test.yaml", "--config", f"results_dir={RESULTS}")


def test_test_config_end_to_end_in_a_folder_with_a_space_then_incremental():
    shutil.rmtree(ROOT / RESULTS, ignore_errors=True)
    smk(*TEST, "--cores", "2")
    cfg = workflow_config("test.yaml")
    summary = pd.read_csv(ROOT / f"{RESULTS}/tables/summary.csv")
    tidy = pd.read_csv(ROOT / f"{RESULTS}/tables/tidy.csv")
    # a row per expected evaluation: full ckpt: full + 3 baselines × 3 ratios; r0.5: learned × 3, random × 1, threshold
    n_ratios = len(cfg["pareto_ratios"])
    per_task_seed = (1 + 3 * n_ratios) + (n_ratios + 1 + 1)
    main = tidy[tidy.study.isna()]
    accuracy = main[main.metric == "accuracy"]
    assert len(accuracy) == per_task_seed * len(cfg["seeds"])
    assert len(main[(main.task == "squad") & (main.metric == "f1")]) == per_task_seed * len(cfg["seeds"])
    # study runs on sst2, first seed: reference (learned + threshold), one ablation, one β value
    study = tidy[tidy.study.notna() & (tidy.metric == "accuracy")]
    assert sorted(study.study + ":" + study.method) == ["beta1:learned", "no_hard_concrete:learned", "reference:learned",
                                                        "reference:threshold"]
    assert tidy.value.between(0, 100).all() and tidy.kept_fraction.between(0, 1).all()
    assert (summary[summary.study.isna()].n_seeds == 2).all() and summary.ci95.notna().any()
    learned = tidy[(tidy.method == "learned") & (tidy.ratio == 0.25) & (tidy.metric == "accuracy")]
    assert (learned.kept_fraction - 0.25).abs().max() < 0.1
    eff = pd.read_csv(ROOT / f"{RESULTS}/efficiency/throughput.tsv", sep="\t")
    assert set(eff["mode"]) == {"inference", "train_step"} and (eff.peak_mem_bytes > 0).all()
    assert ((eff.counted_flops / eff.analytic_flops - 1).abs() < 0.05).all()
    for attn in ("sdpa", "eager"):
        assert len(pd.read_csv(ROOT / f"{RESULTS}/efficiency/length_sweep_{attn}.tsv", sep="\t")) == 3 * 3  # lengths × variants
    theory = pd.read_csv(ROOT / f"{RESULTS}/theory/summary.csv")
    assert list(theory.check) == ["slackness", "gradient_bias", "variance", "timescales", "duality_gap", "generalisation", "complexity"]
    assert theory.verdict.isin(["holds", "holds approximately", "does not hold"]).all() and theory.stable.all()
    assert (theory.runs == [len(cfg["theory"]["seeds"])] * 6 + [1]).all()  # complexity reads the sweeps: no seed
    figures = [f"seed{s}/{c}" for s in cfg["theory"]["seeds"] for c in theory.check[:-1] if c != "duality_gap"] + ["complexity"]
    assert all((ROOT / f"{RESULTS}/theory/{f}.png").stat().st_size > 5_000 for f in figures)
    t1 = pd.read_csv(ROOT / f"{RESULTS}/tables/quality_0.5.csv")
    assert set(t1.method) == {"full", "random", "truncation", "heavy_hitter", "learned"} and set(t1.task) == {"sst2", "squad"}
    assert t1[t1.method == "full"].pct_of_full.dropna().eq(100).all()  # NaN where the full model scores 0
    sst2 = t1[t1.task == "sst2"].set_index("method")
    assert sst2.loc["learned", "paper"] == 91.5 and sst2.loc["full", "paper"] == 92.1  # the paper's 50 % table, SPEC §5
    assert t1[t1.task == "squad"].paper.isna().all() and sst2.loc["learned", "diff_vs_paper"] == sst2.loc["learned", "mean"] - 91.5
    t3 = pd.read_csv(ROOT / f"{RESULTS}/tables/ablations.csv")
    assert set(t3.run) == {"reference", "no_hard_concrete", "beta1", label("threshold")}
    for fig in ("pareto", "sensitivity", "kept_sst2", "kept_squad"):
        assert (ROOT / f"{RESULTS}/figures/{fig}.png").stat().st_size > 10_000
    decoding = pd.read_csv(ROOT / f"{RESULTS}/tables/decoding.csv")  # SmolLM2 on two tiny cells
    assert set(decoding.probe) == {"passkey", "qa"} and set(decoding.method) == {"full", "tova", "random"}
    assert (decoding.n == cfg["decoding"]["samples"]).all() and (decoding.ci_low <= decoding.accuracy).all()
    assert decoding[decoding.method != "full"].p_vs_full.between(0, 1).all()
    cost = pd.read_csv(ROOT / f"{RESULTS}/decoding/cost.tsv", sep="\t")
    assert len(cost) == 2 * 3 and (cost[cost.method != "full"].memory_ratio < 0.6).all()
    refined = torch.load(ROOT / f"{RESULTS}/decoding/gates/c0.5-s0-refined.pt.ckpt", weights_only=False)  # 2nd stage
    assert refined["config"]["init_gates"] == f"{RESULTS}/decoding/gates/c0.5-s0.pt"
    assert refined["config"]["rank_layers"] == cfg["decoding"]["learned"]["refine"]["rank_layers"] and refined["config"]["rank_weight"] > 0
    trace = (ROOT / f"{RESULTS}/decoding/gates/c0.5-s0-refined.pt.trace.jsonl").read_text().splitlines()
    assert "rank_kl" in json.loads(trace[-1])  # the ranking loss ran
    assert refined["config"]["kl_tokens"] == cfg["decoding"]["learned"]["train"]["kl_tokens"] and refined["step"] == 1  # train's keys, refine's on top
    learned = pd.read_csv(ROOT / f"{RESULTS}/tables/decoding-learned.csv")  # one training seed at 0.5, both probes
    assert set(learned.probe) == {"passkey", "qa"} and (learned.seeds == 1).all() and (learned.compression == 0.5).all()
    assert "learned cache (ours)" in (ROOT / f"{RESULTS}/tables/decoding.md").read_text()
    for figure in ("decoding.png", "decoding-cost.png"):
        assert (ROOT / f"{RESULTS}/figures/{figure}").stat().st_size > 10_000
    ppl = pd.read_csv(ROOT / f"{RESULTS}/decoding/perplexity.tsv", sep="\t")
    assert len(ppl) == 2 * 3 and ppl.nll.between(0, 20).all() and "Streaming perplexity" in (ROOT / f"{RESULTS}/tables/decoding.md").read_text()
    smk(*TEST, "--report", f"{RESULTS}/report.html")
    assert (ROOT / f"{RESULTS}/report.html").stat().st_size > 10_000
    # nothing to do on a rerun; deleting one result re-runs only what depends on it
    config_file = ROOT / RESULTS / build_plan(cfg, "P").run("sst2", 0.5, 1).id / "train_config.json"  # run_config's printf
    assert json_text(json.loads(config_file.read_text())) == config_file.read_text() and "sst2" in config_file.read_text()
    assert "Nothing to be done" in smk("-n", *TEST, "--cores", "2").stdout
    (ROOT / RESULTS / build_plan(cfg, "P").run("sst2", 0.5, 1).id / "eval.json").unlink()
    out = smk("-n", *TEST, "--cores", "2", "--quiet", "rules").stdout
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out, re.M))
    assert counts == {"evaluate": "1", "aggregate": "1", "tables": "1", "figures": "1", "all": "1", "total": "5"}


def test_dry_run_exits_non_zero_on_a_lock_left_by_a_killed_run():
    """Snakemake prints a warning and exits 0 on `-n` where the real run would stop; the workflow stops the dry run too."""
    results, locks = "results/test-locked", ROOT / ".snakemake" / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    lock = locks / "0.output.lock"
    lock.write_text(f"{results}/tables/summary.csv\n")  # what a run killed by SIGKILL leaves
    try:
        out = smk("-n", "--configfile", "config/test.yaml", "--config", f"results_dir={results}", check=False)
        text = out.stdout + out.stderr
        assert out.returncode != 0 and "locked by another Snakemake run, or by one that was killed" in text and "--unlock" in text, text[-2000:]
    finally:
        lock.unlink(missing_ok=True)
