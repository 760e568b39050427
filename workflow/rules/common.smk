# Helpers shared by the rules: what to run, from the config. No rule here.
import json
import sys
from pathlib import Path

from adaptive_retention.data import DataError, check_available
from adaptive_retention.train import TrainConfig

RESULTS = config["results_dir"]
# how rules call the library's CLI and the analysis scripts: the interpreter running Snakemake,
# unless the config names commands (e.g. `adaptive-retention` and `python` inside conda envs)
BENCH = {"model": config["model"], **config["benchmark"]}  # the backbone timed defaults to the workflow's
AR = config.get("cli") or f"{sys.executable} -m adaptive_retention.cli"
PY = config.get("python") or sys.executable
ANALYSIS = Path(workflow.basedir) / "analysis"
BASELINES = [m for m in config["baselines"]]


def _check_data():
    """Fail at start-up, before any training, when a task's data cannot be had."""
    problems = []
    for task in config["tasks"]:
        try:
            check_available(task, config["source"], config["data_dir"])
            for b in [None] + config["budgets"]:  # training keys and retention switches, validated now
                retention = None if b is None else {**config["retention"], "ratio": b}
                TrainConfig.from_dict({**config["train"], **config["tasks"][task].get("train", {}), "task": task, "retention": retention})
        except (DataError, ValueError) as e:
            problems.append(f"config tasks.{task}: {e}")
    if problems:
        raise WorkflowError("\n".join(problems))


_check_data()


RESOURCE_DEFAULTS = {"gpu": 0, "runtime": 60, "mem_mb": 8000}


def res(kind, key):
    """Cluster resource of a rule kind (train / evaluate / benchmark), from config.resources or the default."""
    return config.get("resources", {}).get(kind, {}).get(key, RESOURCE_DEFAULTS[key])


def budget_name(b):
    return f"r{b:g}"


def variants():
    return ["full"] + [budget_name(b) for b in config["budgets"]]


def budget_of(variant):
    return None if variant == "full" else float(variant[1:])


def train_sets(wildcards):
    """key=value overrides for `adaptive-retention train --set`: common keys, then the task's."""
    keys = {"model": config["model"], "source": config["source"], "data_dir": config["data_dir"], **config["train"],
            **config["tasks"][wildcards.task].get("train", {})}
    pairs = [f"{k}={json.dumps(v)}" for k, v in keys.items()]
    if wildcards.variant != "full":
        pairs += [f"retention.{k}={json.dumps(v)}" for k, v in config["retention"].items()]
    return " ".join(f"'{p}'" for p in pairs)


def eval_plan(variant):
    """method -> ratios evaluated on a checkpoint: the full model gets the baselines over the Pareto
    grid; a retention checkpoint gets its learned scores over the grid and the baselines at its budget."""
    grid = sorted(set(config["pareto_ratios"]) | set(config["budgets"]))
    if variant == "full":
        return {"full": [1.0], **{m: grid for m in BASELINES}}
    b = budget_of(variant)
    plan = {"learned": grid, **{m: [b] for m in config["baselines_on_retention"]}}
    if config.get("threshold_tau"):
        plan["threshold"] = [None]
    return plan


def eval_plan_json(wildcards):
    plan = {m: [r for r in rs if r is not None] for m, rs in eval_plan(wildcards.variant).items()}
    return f"'{json.dumps(plan)}'"


def eval_bundles(task):
    return [f"{RESULTS}/{task}/{v}/seed{s}/eval.json" for v in variants() for s in config["seeds"]]


def all_targets():
    """Every training output and evaluation bundle too, not only the tables: Snakemake regenerates a
    deleted intermediate file only when something requested needs it, so a deleted result re-runs."""
    runs = [f"{RESULTS}/{t}/{v}/seed{s}" for t in config["tasks"] for v in variants() for s in config["seeds"]]
    targets = [f"{r}/{name}" for r in runs for name in ("model/run.json", "trace.tsv", "summary.json", "eval.json")]
    targets += [f"{RESULTS}/tables/summary.csv", f"{RESULTS}/tables/summary.md"]
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
