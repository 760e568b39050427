"""The run plan: a workflow config turned into a table of runs (the sample-sheet idea). Each run has its
identity (task, variant, seed, trained budget, study entry), its resolved training config and its evaluation
plan. The workflow looks runs up by id and never builds or parses a name; every result record carries the
identity, and analysis groups on those fields. Building the plan validates every run. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .config import EvalConfig, TrainConfig

FULL = "full"
REFERENCE = "reference"  # the study run with the default switches, which every other study run is compared with
SWEPT = ("beta", "gamma", "zeta")  # Hard-Concrete parameters of Figure 2, tried one value at a time


IDENTITY = ("run", "task", "variant", "budget", "study", "sweep_param", "sweep_value", "seed")  # every result record has these


def variant_name(budget: float | None, study: str | None = None) -> str:
    """The only place a variant's name is made: `full`, `r<ρ>`, or `r<ρ>-<study entry>`."""
    if budget is None:
        return FULL
    return f"r{budget:g}" + (f"-{study}" if study else "")


def run_id(task: str, variant: str, seed: int) -> str:
    """A run's id, also its folder under results_dir."""
    return f"{task}/{variant}/seed{seed}"


def _identity(run: str, task: str, seed: int, budget: float | None, study: str | None = None, sweep: tuple | None = None) -> dict:
    return dict(zip(IDENTITY, (run, task, variant_name(budget, study), budget, study, *(sweep or (None, None)), seed)))


def identity_of(run: dict, checkpoint: str) -> dict:
    """The identity of a checkpoint evaluated outside a plan (from its run.json): variant and budget from its retention."""
    return _identity(checkpoint, run["task"], run["seed"], (run.get("retention") or {}).get("ratio"))


def data_snapshots(prepared_dir: str) -> str:
    """The folder of the prepared data snapshots, one `<task>/` each (what jobs read as `source: prepared`)."""
    return f"{prepared_dir}/data"


def backbone(model: str, prepared_dir: str, local_models=()) -> str:
    """Where a job loads a backbone from: a hub id's prepared snapshot, else the name itself (a folder, `minilm`, or one
    of `local_models`, folders a rule makes)."""
    from .prepare import is_hub_model, model_slug

    return f"{prepared_dir}/models/{model_slug(model)}" if is_hub_model(model) and model not in local_models else model


def quality_table_name(budget: float) -> str:
    """The name of the quality table at one trained budget (the paper's Tables 1-2 at 0.5 and 0.3)."""
    return f"quality_{budget:g}"


@dataclass(frozen=True)
class Run:
    task: str
    seed: int
    budget: float | None  # the kept ratio retention is trained at; None: the full model
    train: dict  # the resolved TrainConfig keys
    evaluate: dict  # the resolved EvalConfig keys (identity included)
    study: str | None = None  # the study entry (Table 3 / Figure 2): reference, an ablation, or <param><value>
    sweep: tuple[str, float] | None = None  # (β/γ/ζ, value) of a sensitivity run

    @property
    def variant(self) -> str:
        return variant_name(self.budget, self.study)

    @property
    def id(self) -> str:
        return run_id(self.task, self.variant, self.seed)

    def identity(self) -> dict:
        return _identity(self.id, self.task, self.seed, self.budget, self.study, self.sweep)


@dataclass(frozen=True)
class Plan:
    runs: dict[str, Run]  # by id, in a stable order
    budgets: tuple[float, ...]  # the main budgets (one quality table each)
    tasks: tuple[str, ...]
    study_task: str | None
    timed_model: str  # the efficiency benchmark's backbone: its own `benchmark.model`, else the workflow's
    hub_models: dict[str, str] = field(default_factory=dict)  # prepared snapshot name -> hub id, every backbone the config needs

    def main_runs(self) -> list[Run]:
        return [r for r in self.runs.values() if r.study is None]

    def study_runs(self) -> list[Run]:
        return [r for r in self.runs.values() if r.study is not None]

    def retention_runs(self) -> list[Run]:
        return [r for r in self.main_runs() if r.budget is not None]

    def run(self, task: str, budget: float | None, seed: int, study: str | None = None) -> Run:
        return self.runs[run_id(task, variant_name(budget, study), seed)]


class PlanError(ValueError):
    """The config cannot be turned into runs; one line per problem, each naming the config key."""


OWNED = {"task": "tasks", "seed": "seeds", "retention": "budgets and retention", "source": "source", "data_dir": "data_dir",
         "init_from": "warm_start"}  # train keys the plan sets


def _owned_problems(config: dict, study: dict) -> list[str]:
    """Keys the plan sets itself, written where they would be silently replaced: a training key it owns, a retention ratio."""
    places = [("train", config["train"])] + [(f"tasks.{t}.train", v.get("train", {})) for t, v in config["tasks"].items()]
    places += [("study.train", study.get("train", {}))] + [(f"study.ablations.{n}.train", a.get("train", {}))
                                                           for n, a in study.get("ablations", {}).items()]
    problems = [f"config {where}.{k}: set by the plan from config `{OWNED[k]}`; remove it here" for where, keys in places for k in keys
                if k in OWNED]
    retentions = [("retention", config["retention"])] + [(f"study.ablations.{n}.retention", a.get("retention", {}))
                                                        for n, a in study.get("ablations", {}).items()]
    problems += [f"config {where}.ratio: kept ratios come from config `budgets`; remove it here" for where, r in retentions if "ratio" in r]
    if not config.get("model", "").strip():
        problems.append("config model: empty; name a folder, a hub id or 'minilm'")
    return problems


def _study_entries(study: dict) -> list[tuple[str, dict, tuple | None]]:
    """(name, {train, retention, warm_start} switches, sweep) of every study run: the reference, the ablations, β/γ/ζ."""
    entries = [(REFERENCE, {}, None)] + [(name, switches, None) for name, switches in study["ablations"].items()]
    for param in SWEPT:
        entries += [(f"{param}{v:g}", {"retention": {param: v}}, (param, float(v))) for v in study.get(param, [])]
    return entries


def _eval_plan(config: dict, budget: float | None, study: str | None) -> dict:
    """method -> ratios: the full model gets the baselines over the Pareto grid; a retention checkpoint its learned scores
    over the grid and the baselines at its budget; a study run its learned scores at its budget (the reference also
    threshold inference)."""
    grid = sorted(set(config["pareto_ratios"]) | set(config["budgets"]))
    threshold = {"threshold": []} if config.get("threshold_tau") else {}
    if budget is None:
        return {"full": [1.0], **{m: grid for m in config["baselines"]}}
    if study is not None:
        return {"learned": [budget], **(threshold if study == REFERENCE else {})}
    return {"learned": grid, **{m: [budget] for m in config["baselines_on_retention"]}, **threshold}


def build_plan(config: dict, prepared_dir: str, local_models=()) -> Plan:
    """Every run of a (schema-validated) workflow config. Hub backbones resolve to their prepared snapshots (except
    `local_models`, folders a rule makes); data is read from the prepared snapshots. Raises PlanError naming each bad key."""
    from .backbones import check_model_name
    from .prepare import model_slug

    study = config.get("study") or {"enabled": False}
    problems, runs, models, hub_models = _owned_problems(config, study), {}, [], {}
    data_dir = data_snapshots(prepared_dir)
    if study["enabled"] and study["task"] not in config["tasks"]:
        problems.append(f"config study.task: {study['task']!r} is not one of tasks {list(config['tasks'])}")
    specs = [(t, b, s, None, None) for t in config["tasks"] for b in [None, *config["budgets"]] for s in config["seeds"]]
    if study["enabled"] and not problems:
        specs += [(study["task"], min(config["budgets"]), seed, name, (switches, sweep))
                  for seed in study.get("seeds") or config["seeds"][:1] for name, switches, sweep in _study_entries(study)]
    for task, budget, seed, name, entry in specs:
        switches, sweep = entry or ({}, None)
        keys = {"model": config["model"], **config["train"], **config["tasks"][task].get("train", {}),
                **(study["train"] if name else {}), **switches.get("train", {})}
        models.append(keys["model"])
        model = backbone(keys["model"], prepared_dir, local_models) if isinstance(keys["model"], str) else keys["model"]
        train = {**keys, "task": task, "seed": seed, "model": model, "source": "prepared", "data_dir": data_dir,
                 "retention": None if budget is None else {**config["retention"], **switches.get("retention", {}), "ratio": budget}}
        if budget is None:  # the full run is the teacher: distillation keys are about retention runs
            for key in ("distill_weight", "distill_temperature"):
                train.pop(key, None)
        elif switches.get("warm_start", config.get("warm_start")):  # from the full model of the same task and seed
            full_seed = seed if seed in config["seeds"] else config["seeds"][0]  # a study seed the grid lacks: the first's
            train["init_from"] = f"{config['results_dir']}/{run_id(task, FULL, full_seed)}/model"
        run = Run(task, seed, budget, train, {}, name, sweep)
        run = replace(run, evaluate={"plan": _eval_plan(config, budget, name), "size": config["tasks"][task].get("eval_size"),
                                     "tau": config.get("threshold_tau") or 0.5, "source": "prepared", "data_dir": data_dir,
                                     "identity": run.identity(), "retention": dict(config["retention"]) if budget is None else None})
        where = f"study run {run.variant}" if name else f"tasks.{task}"
        try:
            TrainConfig.from_dict(run.train)
            EvalConfig.from_dict(run.evaluate)
        except ValueError as e:
            problems.append(f"config {where}: {e}")
        runs[run.id] = run
    timed = (config.get("benchmark") or {}).get("model") or config["model"]
    models = list(dict.fromkeys(m for m in [*models, timed] if isinstance(m, str) and m not in local_models))  # others: TrainConfig says
    for model in models:
        try:
            check_model_name(model)
        except ValueError as e:
            problems.append(f"config model: {e}")
    for model in models:
        if backbone(model, prepared_dir, local_models) != model:
            hub_models[model_slug(model)] = model
    if problems:
        raise PlanError("\n".join(dict.fromkeys(problems)))
    return Plan(runs, tuple(config["budgets"]), tuple(config["tasks"]), study["task"] if study["enabled"] else None, timed, hub_models)

