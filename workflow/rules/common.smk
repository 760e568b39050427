# Helpers shared by the rules: the run plan (adaptive_retention.plan) and how rules call the CLI. No rule here.
# Nothing here imports torch: parsing the DAG of the paper grid stays fast, on the head node and in every job.
import os
import re
import shlex
import sys
from pathlib import Path

import yaml

from adaptive_retention.data import DataError, check_available
from adaptive_retention.io import json_text
from adaptive_retention.plan import PlanError, backbone, build_plan, data_snapshots, quality_table_name
from adaptive_retention.prepare import PreflightError, check_dataset, check_model

RESULTS = config["results_dir"]
# how rules call the library's CLI and the analysis package: the interpreter running Snakemake,
# unless the config names commands (e.g. `adaptive-retention` and `python` inside conda envs)
AR = config.get("cli") or f"{shlex.quote(sys.executable)} -m adaptive_retention.cli"
PY = config.get("python") or shlex.quote(sys.executable)
# analysis jobs take one core (Snakemake's default for a rule), and so one torch thread: two jobs on two cores never
# oversubscribe them (two 2-thread torch processes on 2 cores spent half their time in the kernel, spinning)
ANALYSIS = f"OMP_NUM_THREADS=1 PYTHONPATH={shlex.quote(workflow.basedir)} {PY} -m analysis"  # + .aggregate, .tables, .figures, .theory.<check>
PREPARED = config.get("prepared_dir") or f"{RESULTS}/prepared"
OFFLINE_JOB = "HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1"  # training and evaluation read snapshots only
TORCH_THREADS = "OMP_NUM_THREADS={threads}"  # a job's torch threads are the cores it holds (resources.<kind>.threads)
TINY = "resources/tiny-bert"  # the random test backbone, made by rule make_tiny_model (not there yet at start-up)

try:
    PLAN = build_plan(config, PREPARED, local_models={TINY})
except PlanError as e:
    raise WorkflowError(str(e))
RUNS = PLAN.runs
BENCH = {**config["benchmark"], "model": PLAN.timed_model}
DECODING = config["decoding"]  # the KV-cache bench (rules/decoding.smk)
DECODING_PROBES = DECODING["probes"]
DECODING_SQUAD = DECODING.get("squad_file") or f"{config['data_dir']}/squad/validation.jsonl.gz"
# smollm2 is dequantised from its GGUF file once (rule prepare_decoder), every decoding job then loads the folder
DECODER = "resources/smollm2" if DECODING["model"] == "smollm2" else DECODING["model"]
DECODER_INPUT = [DECODER] if DECODING["model"] == "smollm2" else []

wildcard_constraints:
    run="|".join(re.escape(r) for r in RUNS),
    seed=r"\d+",  # a theory seed (results/theory/seed<s>/)


HUB_MODELS = PLAN.hub_models  # snapshot name -> hub id: every backbone a job loads from a prepared snapshot
DATA = data_snapshots(PREPARED)


def prepared_model(model):
    """Where a job loads a backbone from: the prepared snapshot for hub ids, else the name itself."""
    return backbone(model, PREPARED, {TINY})


SNAPSHOTS = {prepared_model(m) for m in HUB_MODELS.values()}


def backbone_inputs(path):
    """What a job needs for the backbone it loads from `path`: the tiny model's folder, a snapshot's prepared.json, or nothing."""
    if path == TINY:
        return [TINY]
    return [f"{path}/prepared.json"] if path in SNAPSHOTS else []


def data_manifest(task):
    return f"{DATA}/{task}/manifest.json"


def run_inputs(wc):
    """A training job's inputs: its task's data snapshot and its backbone (and, warm-started, the full model it starts from)."""
    run = RUNS[wc.run]
    warm = [f"{run.train['init_from']}/run.json"] if run.train.get("init_from") else []
    return [data_manifest(run.task)] + backbone_inputs(run.train["model"]) + warm


# Snakemake starts the ready jobs of highest priority first: a task's full model (its retention runs start from it),
# then the tasks' retention runs, then the study's many small runs, which fill the gaps. Without it the longest chain
# went last (CUAD's full model started 1,236 s into a 1,958-s default run).
PRIORITY = {"full": 2, "retention": 1, "study": 0}


def run_priority(wc):
    """A run's jobs' priority (config, training, evaluation)."""
    run = RUNS[wc.run]
    return PRIORITY["study" if run.study is not None else "retention" if run.budget is not None else "full"]


def run_files(runs, *names):
    return [f"{RESULTS}/{r.id}/{name}" for r in runs for name in names]


def eval_bundles():
    return run_files(RUNS.values(), "eval.json")


def _preflight(hub_tasks):
    """Hub datasets and models resolved (metadata only) before any job: a script-only repo, a missing config or an
    unknown id stops the run here, naming the task, the repo and the fix. Snapshots already prepared are not
    checked again (so the head node does not reach for the hub on a rerun)."""
    checks = [(check_dataset, task) for task in hub_tasks if not Path(data_manifest(task)).exists()]
    checks += [(check_model, m) for m in HUB_MODELS.values() if not all(Path(p).exists() for p in backbone_inputs(prepared_model(m)))]
    problems = []
    for check, what in checks:
        try:
            check(what)
        except PreflightError as e:
            problems.append(f"pre-flight: {e}")
    return problems


def _check_data():
    """Fail at start-up, before any training, when a task's data cannot be had. Not inside cluster jobs: their
    inputs are the prepared snapshots, which Snakemake checks itself."""
    if workflow.remote_exec:
        return
    problems, hub_tasks = [], []
    for task in config["tasks"]:
        try:
            if check_available(task, config["source"], config["data_dir"]).startswith("hub:"):
                hub_tasks.append(task)
        except DataError as e:
            problems.append(f"config tasks.{task}: {e}")
    problems += _preflight(hub_tasks) if not problems else []
    if problems:
        raise WorkflowError("\n".join(problems))


RESOURCE_DEFAULTS = {key: spec["default"] for key, spec in
                     yaml.safe_load(Path(workflow.basedir, CONFIG_SCHEMA).read_text())["$defs"]["resources"]["properties"].items()}


def res(kind, key):
    """Resource of a rule kind (train / evaluate / benchmark), from config.resources or the schema's default."""
    return config.get("resources", {}).get(kind, {}).get(key, RESOURCE_DEFAULTS[key])


TABLES = [quality_table_name(b) for b in PLAN.budgets] + ["ablations", "kept_per_block"] + (["compute"] if config["benchmark"]["enabled"] else [])
# what every figure says about where it came from
CAPTION = (f"config {config['results_dir']}: model {config['model']}, retention switches {config['retention'] or 'SPEC defaults'}, "
           f"seeds {config['seeds']}, CPU/GPU as in the efficiency table")


def shown_runs():
    """Per task, the run whose kept tokens the figures show: retention at the smallest budget, first seed."""
    return [PLAN.run(t, min(PLAN.budgets), config["seeds"][0]) for t in PLAN.tasks]


def all_targets():
    """Every training output and evaluation bundle too, not only the tables: Snakemake regenerates a
    deleted intermediate file only when something requested needs it, so a deleted result re-runs."""
    targets = run_files(RUNS.values(), "model/run.json", "trace.tsv", "summary.json", "eval.json")
    targets += [f"{RESULTS}/tables/summary.csv", f"{RESULTS}/tables/summary.md"]
    targets += [f"{RESULTS}/tables/{name}.csv" for name in TABLES] + [f"{RESULTS}/figures/pareto.png"]
    if config["benchmark"]["enabled"]:
        targets += [f"{RESULTS}/efficiency/throughput.tsv"] + length_sweeps()
    if config["theory"]["enabled"]:
        targets += [f"{RESULTS}/theory/summary.csv", f"{RESULTS}/theory/summary.md"]
    if DECODING["enabled"]:
        targets += decoding_cells() + learned_cells() + [f"{RESULTS}/tables/decoding.md",
                                                         f"{RESULTS}/figures/decoding.png", f"{RESULTS}/figures/decoding-cost.png"]
    return targets


def decoding_cells():
    return [f"{RESULTS}/decoding/{probe}-{length}.tsv" for probe in DECODING_PROBES for length in DECODING["lengths"]]


def learned_cells():
    """The learned cache's cells (issue 19): every probe and length, per compression and training seed."""
    learned = DECODING["learned"]
    if not learned["enabled"]:
        return []
    return [f"{RESULTS}/decoding/learned/{probe}-{length}-c{c:g}-s{seed}.tsv" for probe in DECODING_PROBES
            for length in DECODING["lengths"] for c in learned["compressions"] for seed in learned["seeds"]]


def train_options(keys):
    """decode-train's options for training keys {name: value} (--name-with-dashes value)."""
    return " ".join(f"--{k.replace('_', '-')} {shlex.quote(str(v))}" for k, v in keys.items())


def learned_gates(wc):
    """The gates a learned cell reads: the refined stage's (rule decode_refine) unless decoding.learned.refine is {}."""
    stage = rules.decode_refine if DECODING["learned"]["refine"] else rules.decode_train
    return expand(stage.output.gates, compression=wc.compression, gseed=wc.gseed)


def learned_perplexity():
    """The learned cache's streaming perplexity (issue 19), per compression and training seed."""
    learned = DECODING["learned"]
    if not learned["enabled"]:
        return []
    return [f"{RESULTS}/decoding/learned/perplexity-c{c:g}-s{seed}.tsv" for c in learned["compressions"] for seed in learned["seeds"]]


def length_sweeps():
    return [f"{RESULTS}/efficiency/length_sweep_{attn}.tsv" for attn in ("sdpa", "eager")]


def retention_traces():
    """trace.tsv of every retention training run (what the theory checks read for real-run dynamics)."""
    return run_files(PLAN.retention_runs(), "trace.tsv")


def theory_seeded():
    """The verdict files of one seed's run of the seeded theory checks (patterns in {seed}; rules of theory.smk)."""
    return [rules.theory_duality.output.slack, rules.theory_gradient_bias.output.verdict, rules.theory_variance.output.verdict,
            rules.theory_timescales.output.verdict, rules.theory_duality.output.gap, rules.theory_generalisation.output.verdict]


def variance_checkpoint():
    """The SST-2 retention checkpoint at the smallest budget, when the run trains one (else: fresh MiniLM)."""
    if "sst2" not in PLAN.tasks:
        return []
    return run_files([PLAN.run("sst2", min(PLAN.budgets), config["seeds"][0])], "model/run.json")


def _dry_run() -> bool:
    """Whether this is `snakemake -n` (Snakemake decides it after parsing; its flags are all there is to go on here)."""
    return any(a in ("-n", "--dry-run", "--dryrun") or re.fullmatch(r"-[A-Za-z]*n[A-Za-z]*", a) for a in sys.argv[1:])


def _check_locks():
    """A dry run stops, as the real run would, when another (or a killed) Snakemake run holds a lock on this config's outputs:
    Snakemake itself only prints a warning in a dry run and exits 0."""
    if workflow.remote_exec or not _dry_run() or "--unlock" in sys.argv or "--nolock" in sys.argv:
        return
    ours = tuple(os.path.abspath(p) + os.sep for p in (RESULTS, PREPARED))
    locks = sorted(Path(".snakemake/locks").glob("*.lock"))
    held = [f for f in locks if any(os.path.abspath(line.strip()).startswith(ours) for line in f.read_text().splitlines())]
    if held:
        raise WorkflowError(f"outputs of this config are locked by another Snakemake run, or by one that was killed ({held[0]}); "
                            f"the real run would stop here. If no other run is going on, `snakemake --unlock` (same config) removes it")


_check_locks()
_check_data()  # last: they use the helpers above
