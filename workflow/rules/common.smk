# Helpers shared by the rules: what to run, from the config. No rule here.
import json
import re
import sys
from pathlib import Path

from adaptive_retention.data import DataError, check_available
from adaptive_retention.prepare import PreflightError, check_dataset, check_model, is_hub_model, model_slug as slug
from adaptive_retention.train import TrainConfig

RESULTS = config["results_dir"]
# how rules call the library's CLI and the analysis scripts: the interpreter running Snakemake,
# unless the config names commands (e.g. `adaptive-retention` and `python` inside conda envs)
BENCH = {"model": config["model"], **config["benchmark"]}  # the backbone timed defaults to the workflow's
AR = config.get("cli") or f"{sys.executable} -m adaptive_retention.cli"
PY = config.get("python") or sys.executable
ANALYSIS = Path(workflow.basedir) / "analysis"
BASELINES = [m for m in config["baselines"]]
PREPARED = config.get("prepared_dir") or f"{RESULTS}/prepared"
OFFLINE_JOB = "HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1"  # training and evaluation read snapshots only
MADE_BY_RULES = {"resources/tiny-bert"}  # model folders a rule writes (not there yet at start-up)


def model_of(task):
    """The backbone a task trains: its own `tasks.<id>.train.model`, else the config's."""
    return config["tasks"][task].get("train", {}).get("model", config["model"])


HUB_MODELS = {slug(m): m for m in [*(model_of(t) for t in config["tasks"]), config["benchmark"].get("model") or config["model"]]
              if m not in MADE_BY_RULES and is_hub_model(m)}


def prepared_model(model):
    """Where a job loads a backbone from: the prepared snapshot for hub ids, else the name itself."""
    return f"{PREPARED}/models/{slug(model)}" if slug(model) in HUB_MODELS else model


def model_inputs(model):
    """The prepared snapshot a job needs for a backbone: [its prepared.json] for a hub id, else []."""
    return [f"{prepared_model(model)}/prepared.json"] if slug(model) in HUB_MODELS else []


def data_manifest(task):
    return f"{PREPARED}/data/{task}/manifest.json"


def prepared_inputs(task):
    """A job's prepared inputs: the task's data snapshot and, for a hub backbone, the model snapshot."""
    return [data_manifest(task)] + model_inputs(model_of(task))


def _preflight(hub_tasks):
    """Hub datasets and models resolved (metadata only) before any job: a script-only repo, a missing config or an
    unknown id stops the run here, naming the task, the repo and the fix. Snapshots already prepared are not
    checked again (so jobs on offline compute nodes, which parse this file too, never reach for the hub)."""
    if workflow.remote_exec:
        return []
    checks = [(check_dataset, task) for task in hub_tasks if not Path(data_manifest(task)).exists()]
    checks += [(check_model, model) for model in HUB_MODELS.values() if not all(Path(p).exists() for p in model_inputs(model))]
    problems = []
    for check, what in checks:
        try:
            check(what)
        except PreflightError as e:
            problems.append(f"pre-flight: {e}")
    return problems


def _check_data():
    """Fail at start-up, before any training, when a task's data cannot be had."""
    problems, hub_tasks = [], []
    for task in config["tasks"]:
        try:
            if check_available(task, config["source"], config["data_dir"]).startswith("hub:"):
                hub_tasks.append(task)
            for b in [None] + config["budgets"]:  # training keys and retention switches, validated now
                retention = None if b is None else {**config["retention"], "ratio": b}
                TrainConfig.from_dict({**config["train"], **config["tasks"][task].get("train", {}), "task": task, "retention": retention})
        except (DataError, ValueError) as e:
            problems.append(f"config tasks.{task}: {e}")
    if STUDY["enabled"] and STUDY["task"] not in config["tasks"]:
        problems.append(f"config study.task: {STUDY['task']!r} is not one of tasks {list(config['tasks'])}")
    for name, run in study_runs().items() if not problems else ():
        b = budget_of(name)
        try:
            TrainConfig.from_dict({**config["train"], **config["tasks"][STUDY["task"]].get("train", {}), **STUDY["train"],
                                   **run.get("train", {}), "task": STUDY["task"],
                                   "retention": {**config["retention"], **run.get("retention", {}), "ratio": b}})
        except ValueError as e:
            problems.append(f"config study run {name}: {e}")
    problems += _preflight(hub_tasks) if not problems else []
    if problems:
        raise WorkflowError("\n".join(problems))


RESOURCE_DEFAULTS = {"gpu": 0, "runtime": 60, "mem_mb": 8000}


def res(kind, key):
    """Cluster resource of a rule kind (train / evaluate / benchmark), from config.resources or the default."""
    return config.get("resources", {}).get(kind, {}).get(key, RESOURCE_DEFAULTS[key])


def budget_name(b):
    return f"r{b:g}"


def variants():
    return ["full"] + [budget_name(b) for b in config["budgets"]]


def budget_of(variant):
    return None if variant == "full" else float(variant[1:].split("-", 1)[0])


STUDY = config["study"]
TABLES = {1: "table1_quality_0.5", 2: "table2_quality_0.3", 3: "table3_ablations", 5: "table5_kept_per_block"}
if config["benchmark"]["enabled"]:
    TABLES[4] = "table4_compute"
# what every figure says about where it came from
CAPTION = (f"config {config['results_dir']}: model {config['model']}, retention switches {config['retention'] or 'SPEC defaults'}, "
           f"seeds {config['seeds']}, CPU/GPU as in the efficiency table").replace("'", "")


def study_runs():
    """The extra retention runs of Table 3 (ablations) and Figure 2 (β, γ, ζ sensitivity), on the study
    task at the smallest budget, first seed: variant name -> {"train": {...}, "retention": {...}}.
    They share `study.train` (a smaller run), so each is compared with `r<ρ>-reference`, the same run with
    the defaults."""
    if not STUDY["enabled"]:
        return {}
    b = budget_name(min(config["budgets"]))
    runs = {f"{b}-reference": {}}
    for name, switches in STUDY["ablations"].items():
        runs[f"{b}-{name}"] = switches
    for param in ("beta", "gamma", "zeta"):
        for value in STUDY[param]:
            runs[f"{b}-{param}{value:g}"] = {"retention": {param: value}}
    return runs


def study_targets():
    return [f"{RESULTS}/{STUDY['task']}/{v}/seed{config['seeds'][0]}" for v in study_runs()]


def train_sets(wildcards):
    """key=value overrides for `adaptive-retention train --set`: common keys, the task's, then a study run's."""
    study = study_runs().get(wildcards.variant)
    keys = {"model": config["model"], "source": config["source"], "data_dir": config["data_dir"], **config["train"],
            **config["tasks"][wildcards.task].get("train", {}), **(STUDY["train"] if study is not None else {}),
            **((study or {}).get("train", {}))}
    keys.update(model=prepared_model(keys["model"]), source="prepared", data_dir=f"{PREPARED}/data")
    pairs = [f"{k}={json.dumps(v)}" for k, v in keys.items()]
    if wildcards.variant != "full":
        retention = {**config["retention"], **((study or {}).get("retention", {}))}
        pairs += [f"retention.{k}={json.dumps(v)}" for k, v in retention.items()]
    return " ".join(f"'{p}'" for p in pairs)


def eval_plan(variant):
    """method -> ratios evaluated on a checkpoint: the full model gets the baselines over the Pareto
    grid; a retention checkpoint gets its learned scores over the grid and the baselines at its budget."""
    grid = sorted(set(config["pareto_ratios"]) | set(config["budgets"]))
    if variant == "full":
        return {"full": [1.0], **{m: grid for m in BASELINES}}
    b = budget_of(variant)
    if variant in study_runs():  # study runs: learned scores at their budget (and threshold inference for the reference)
        return {"learned": [b], **({"threshold": [None]} if variant.endswith("-reference") and config.get("threshold_tau") else {})}
    plan = {"learned": grid, **{m: [b] for m in config["baselines_on_retention"]}}
    if config.get("threshold_tau"):
        plan["threshold"] = [None]
    return plan


def eval_plan_json(wildcards):
    plan = {m: [r for r in rs if r is not None] for m, rs in eval_plan(wildcards.variant).items()}
    return f"'{json.dumps(plan)}'"


def eval_bundles(task):
    study = [f"{r}/eval.json" for r in study_targets()] if task == STUDY["task"] else []
    return [f"{RESULTS}/{task}/{v}/seed{s}/eval.json" for v in variants() for s in config["seeds"]] + study


def all_targets():
    """Every training output and evaluation bundle too, not only the tables: Snakemake regenerates a
    deleted intermediate file only when something requested needs it, so a deleted result re-runs."""
    runs = [f"{RESULTS}/{t}/{v}/seed{s}" for t in config["tasks"] for v in variants() for s in config["seeds"]]
    targets = [f"{r}/{name}" for r in runs for name in ("model/run.json", "trace.tsv", "summary.json", "eval.json")]
    targets += [f"{r}/{name}" for r in study_targets() for name in ("model/run.json", "trace.tsv", "summary.json", "eval.json")]
    targets += [f"{RESULTS}/tables/summary.csv", f"{RESULTS}/tables/summary.md"]
    targets += [f"{RESULTS}/tables/{name}.csv" for name in TABLES.values()] + [f"{RESULTS}/figures/pareto.png"]
    if config["benchmark"]["enabled"]:
        targets += [f"{RESULTS}/efficiency/throughput.tsv"] + length_sweeps()
    if config["theory"]["enabled"]:
        targets += [f"{RESULTS}/theory/summary.csv", f"{RESULTS}/theory/summary.md"]
    return targets


def length_sweeps():
    return [f"{RESULTS}/efficiency/length_sweep_{attn}.tsv" for attn in ("sdpa", "eager")]


def retention_traces():
    """trace.tsv of every retention training run (what the theory checks read for real-run dynamics)."""
    return [f"{RESULTS}/{t}/{budget_name(b)}/seed{s}/trace.tsv" for t in config["tasks"] for b in config["budgets"] for s in config["seeds"]]


def variance_checkpoint():
    """The SST-2 retention checkpoint at the smallest budget, when the run trains one (else: fresh MiniLM)."""
    if "sst2" not in config["tasks"]:
        return []
    return [f"{RESULTS}/sst2/{budget_name(min(config['budgets']))}/seed{config['seeds'][0]}/model/run.json"]


_check_data()  # last: it uses the helpers above
