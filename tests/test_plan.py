"""Every fact in one place: the run plan built from the configs, the registries against the schema and the docs,
and a rename made in one place reaching every table, figure and rule."""

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from snakemake.utils import validate

from adaptive_retention.config import BENCH_MODES, SOURCES, RetentionConfig, TrainConfig, allowed, parse_sets
from adaptive_retention.data import TASKS
from adaptive_retention.methods import BASELINES, METHODS
from adaptive_retention.plan import OWNED, PlanError, build_plan, variant_name
from analysis import aggregate, figures, tables

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"


def workflow_config(name: str, **changes) -> dict:
    """A config file as the workflow sees it: validated against the schema, defaults filled in."""
    config = {**yaml.safe_load((ROOT / "config" / name).read_text()), **changes}
    validate(config, str(SCHEMA))
    return config


# --- registries against the schema and the docs ----------------------------------------------------


def test_schema_enums_equal_the_registries():
    props = yaml.safe_load(SCHEMA.read_text())["properties"]
    assert props["tasks"]["propertyNames"]["enum"] == list(TASKS)
    assert props["baselines"]["items"]["enum"] == list(BASELINES)
    assert props["baselines_on_retention"]["items"]["enum"] == list(BASELINES)
    assert props["benchmark"]["properties"]["selectors"]["items"]["enum"] == list(BASELINES)
    assert props["benchmark"]["properties"]["modes"]["items"]["enum"] == list(BENCH_MODES)
    assert props["source"]["enum"] == [s for s in SOURCES if s != "prepared"]  # prepared: what jobs read, set by the plan


def _documented(heading: str) -> dict[str, tuple[str, str]]:
    """key -> (default, allowed) of the `| `key` | `default` | allowed | meaning |` rows of one section of config/README.md."""
    text = (ROOT / "config/README.md").read_text().split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    return {k: (d, a.replace("\\|", "|")) for k, d, a in re.findall(r"^\| `(\w+)` \| `([^`]*)` \| ((?:[^|\\]|\\\|)*) \|", text, re.M)}


@pytest.mark.parametrize("heading,cls,not_documented", [
    ("Training keys", TrainConfig, set(OWNED)),
    ("Retention switches", RetentionConfig, {"ratio"}),
])
def test_documented_defaults_and_ranges_equal_the_dataclass(heading, cls, not_documented):
    documented = _documented(heading)
    fields = {f.name: f.default for f in dataclasses.fields(cls)}
    assert set(documented) == set(fields) - not_documented
    for key, (text, words) in documented.items():
        value = parse_sets([f"{key}={text}"])[key]  # read as the CLI reads a --set value
        assert value == fields[key], f"config/README.md says {key} = {text}, the code says {fields[key]!r}"
        assert words == allowed(cls, key), f"config/README.md says {key} may be {words!r}, the code says {allowed(cls, key)!r}"


def test_every_baseline_has_a_selector_and_a_cost():
    from adaptive_retention.baselines import SELECTORS
    from adaptive_retention.flops import SELECTIONS

    assert set(SELECTORS) == set(BASELINES)
    assert {m.selection for m in METHODS.values() if m.selection} <= set(SELECTIONS)


def test_every_task_metric_is_one_its_kind_scores():
    from adaptive_retention.tasks import kind_module

    examples = {"classification": [{"label": 0}], "qa": [{"answers": {"text": ["a"]}}], "summarization": [{"abstract": "a b"}]}
    predictions = {"classification": [0], "qa": ["a"], "summarization": ["a b"]}
    for spec in TASKS.values():
        scored = kind_module(spec.kind).score(predictions[spec.kind], examples[spec.kind], num_labels=2)
        assert set(spec.metrics) <= set(scored), spec.id


# --- the plan ----------------------------------------------------------------------------------


def test_the_test_config_plan():
    config = workflow_config("test.yaml")
    plan = build_plan(config, "P")
    study = config["study"]
    n_study = 1 + len(study["ablations"]) + sum(len(study[p]) for p in ("beta", "gamma", "zeta"))
    assert len(plan.runs) == len(config["tasks"]) * (1 + len(config["budgets"])) * len(config["seeds"]) + n_study
    full = plan.run("sst2", None, 0)
    assert full.id == "sst2/full/seed0" and full.train["retention"] is None and full.train["source"] == "prepared"
    assert full.evaluate["plan"] == {"full": [1.0], **{m: [0.25, 0.5, 1.0] for m in config["baselines"]}}
    learned = plan.run("sst2", 0.5, 1)
    assert learned.train["retention"] == {"ratio": 0.5} and learned.train["lr"] == 1e-3 and learned.train["data_dir"] == "P/data"
    assert learned.evaluate["plan"] == {"learned": [0.25, 0.5, 1.0], "random": [0.5], "threshold": []}
    beta = plan.run("sst2", 0.5, 0, "beta1")
    assert beta.train["retention"] == {"beta": 1.0, "ratio": 0.5} and beta.train["train_size"] == 32
    assert beta.identity() == {"run": "sst2/r0.5-beta1/seed0", "task": "sst2", "variant": "r0.5-beta1", "seed": 0, "budget": 0.5,
                               "study": "beta1", "sweep_param": "beta", "sweep_value": 1.0}
    assert beta.evaluate["identity"] == beta.identity()


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "config").glob("*.yaml")))
def test_every_shipped_config_validates_and_plans(name):
    assert build_plan(workflow_config(name), "P").runs


def test_the_default_run_trains_cuad_not_squad_warm_started_and_distilled():
    config = workflow_config("config.yaml")
    plan = build_plan(config, "P")
    assert list(config["tasks"]) == ["sst2", "imdb", "cuad"] and "squad" in workflow_config("squad.yaml")["tasks"]
    assert all(run.train.get("init_from") is not None for run in plan.retention_runs())  # the study's too: none at chance
    paper = [r for r in plan.study_runs() if r.study == "paper_loss"]
    assert paper and all(r.train["distill_weight"] == 0 and r.train["budget_quadratic"] == 0 for r in paper)
    assert {r.seed for r in plan.study_runs()} == {0, 1} and len(config["theory"]["seeds"]) == 3


def test_the_paper_plan_resolves_hub_models_to_snapshots():
    plan = build_plan(workflow_config("paper.yaml"), "P")
    assert len(plan.runs) == 6 * 3 * 3 + 14
    assert plan.hub_models == {"distilbert--distilbert-base-uncased": "distilbert/distilbert-base-uncased",
                               "allenai--longformer-base-4096": "allenai/longformer-base-4096"}
    assert plan.run("qasper", 0.3, 2).train["model"] == "P/models/allenai--longformer-base-4096"


def test_warm_start_points_retention_runs_at_their_full_run():
    plan = build_plan(workflow_config("test.yaml", warm_start=True), "P")
    for run in plan.runs.values():
        full = plan.run(run.task, None, run.seed)
        assert run.train.get("init_from") == (None if run.budget is None else f"results/test/{full.id}/model")
    assert not any("init_from" in r.train for r in build_plan(workflow_config("test.yaml", warm_start=False), "P").runs.values())


def test_distillation_is_for_retention_runs_and_a_study_run_may_start_cold():
    cfg = workflow_config("test.yaml", warm_start=True, train={"distill_weight": 1.0})
    cfg["study"] = {**cfg["study"], "ablations": {"paper_recipe": {"warm_start": False, "train": {"distill_weight": 0}}}}
    plan = build_plan(cfg, "P")
    for run in plan.runs.values():  # the full run is the teacher: no distillation keys, no error for lacking init_from
        assert ("distill_weight" in run.train) == (run.budget is not None)
    paper = next(r for r in plan.study_runs() if r.study == "paper_recipe")
    assert "init_from" not in paper.train and paper.train["distill_weight"] == 0
    assert all(r.train["init_from"] and r.train["distill_weight"] == 1.0 for r in plan.retention_runs() if r.study != "paper_recipe")


def test_study_seeds_repeat_every_study_run_warm_starting_from_a_full_run_that_exists():
    cfg = workflow_config("test.yaml", warm_start=True)
    default = build_plan(cfg, "P").study_runs()
    plan = build_plan({**cfg, "study": {**cfg["study"], "seeds": [cfg["seeds"][0], 7]}}, "P")
    assert {r.seed for r in default} == {cfg["seeds"][0]} and len(plan.study_runs()) == 2 * len(default)
    full_ids = {r.id for r in plan.runs.values() if r.budget is None}
    for run in plan.study_runs():  # seed 7 has no full run in the grid: the first seed's
        full = plan.run(run.task, None, run.seed if run.seed in cfg["seeds"] else cfg["seeds"][0])
        assert run.train["init_from"] == f"results/test/{full.id}/model" and full.id in full_ids


@pytest.mark.parametrize("change,message", [
    ({"train": {"etaa": 0.1}}, "config tasks.sst2: unknown training config key(s) ['etaa']"),
    ({"retention": {"scorer": "gru"}}, "unknown scorer 'gru'"),
    ({"study": {"enabled": True, "task": "imdb"}}, "config study.task: 'imdb' is not one of tasks"),
    ({"train": {"seed": 3}}, "config train.seed: set by the plan from config `seeds`; remove it here"),
    ({"train": {"init_from": "x"}}, "config train.init_from: set by the plan from config `warm_start`"),
    ({"tasks": {"sst2": {"train": {"task": "imdb"}}}}, "config tasks.sst2.train.task: set by the plan"),
    ({"retention": {"ratio": 0.2}}, "config retention.ratio: kept ratios come from config `budgets`"),
    ({"model": "/no/such/folder"}, "config model: model folder /no/such/folder does not exist"),
    ({"train": {"eta": "0.1", "lr_warmup": 2}}, "config tasks.sst2: lr_warmup must lie in [0, 1], got 2; eta must be a finite number"),
])
def test_a_bad_config_is_refused_naming_the_key(change, message):
    with pytest.raises(PlanError) as e:
        build_plan(workflow_config("test.yaml", **change), "P")
    assert message in str(e.value)


def test_the_plan_and_config_modules_import_no_torch():
    code = ("import sys, adaptive_retention.plan, adaptive_retention.config, adaptive_retention.methods, adaptive_retention.io, "
            "adaptive_retention.prepare, adaptive_retention.cli; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- a rename in one place reaches every table, figure and rule ------------------------------------


def _records(plan, accuracy):
    """An evaluation record per (run, method, ratio) of the plan, with the run's identity, as evaluate writes them."""
    out = []
    for run in plan.runs.values():
        for method, ratios in run.evaluate["plan"].items():
            for ratio in ratios or [None]:
                out.append({**run.identity(), "method": method, "ratio": ratio, "metrics": {"accuracy": accuracy(run, method)},
                            "n_examples": 40, "wall_seconds": 1.0, "kept_fraction": {"1": ratio or 0.5},
                            "kept_fraction_tokens": {"1": ratio or 0.5}, "checkpoint": "nowhere"})
    return out


def test_renaming_a_study_run_renames_it_in_every_table_figure_and_rule(tmp_path):
    config = workflow_config("test.yaml", tasks={"sst2": {"train": {"train_size": 48}}})
    config["study"]["ablations"] = {"hc_off": config["study"]["ablations"].pop("no_hard_concrete")}
    plan = build_plan(config, "P")
    bundle = tmp_path / "all.json"
    bundle.write_text(json.dumps(_records(plan, lambda run, method: 60.0 + 10 * (run.study == "hc_off"))))
    tidy = aggregate.tidy([str(bundle)])
    summary = aggregate.summarise(tidy)
    ablations = tables.ablation_table(summary).set_index("run")
    assert "hc_off" in ablations.index and "no_hard_concrete" not in ablations.index
    assert ablations.loc["hc_off", "diff_vs_reference"] == pytest.approx(10.0)
    assert ablations.loc["hc_off", "variant"] == variant_name(0.5, "hc_off")
    quality = tables.quality_table(summary, pd.read_csv(tables.PAPER), 0.5)
    assert set(quality.method) == {"full", *BASELINES, "learned"} and (quality["mean"] == 60.0).all()  # study runs stay out
    frame = figures.pareto_frame(tidy)
    assert not frame.run.str.contains("hc_off").any()
    assert figures.sensitivity_figure(tidy, "") is not None
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    cfg = tmp_path / "renamed.yaml"
    cfg.write_text(yaml.safe_dump({**yaml.safe_load((ROOT / "config/test.yaml").read_text()), "study": config["study"],
                                   "results_dir": str(tmp_path / "results")}))
    out = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile", str(cfg), "--cores", "1"], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "sst2/r0.5-hc_off/seed0/model/run.json" in out.stdout and "no_hard_concrete" not in out.stdout


def test_renaming_a_method_label_reaches_the_tables_and_figures(monkeypatch, tmp_path):
    from adaptive_retention import methods

    monkeypatch.setitem(methods.METHODS, "learned", dataclasses.replace(methods.METHODS["learned"], label="Our gates"))
    plan = build_plan(workflow_config("test.yaml", tasks={"sst2": {}}), "P")
    bundle = tmp_path / "all.json"
    bundle.write_text(json.dumps(_records(plan, lambda run, method: 70.0)))
    tidy = aggregate.tidy([str(bundle)])
    quality = tables.quality_table(aggregate.summarise(tidy), pd.read_csv(tables.PAPER), 0.5)
    assert "Our gates" in tables.quality_markdown(quality) and "Adaptive Retention" not in tables.quality_markdown(quality)
    assert figures.pareto_frame(tidy).method.str.startswith("Our gates").any()
