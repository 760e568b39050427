"""Every user-settable value of a run, validated once, with its default: the retention switches (SPEC §2),
the training keys, the evaluation plan, and the choices each may take. Imports no torch, so the workflow
and the run plan can validate a whole grid in a fraction of a second.
"""

from __future__ import annotations

import json
import math
import re
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields

# --- choices: the allowed values of every switch (the schema's enums are checked against these) ---------
SCHEDULES = ("constant", "linear", "geometric")
PLACEMENTS = ("layerwise", "final")
SCORERS = ("mlp", "recurrent")
GATES = ("hard_concrete", "sigmoid")  # sigmoid: the "no Hard-Concrete" ablation
BUDGET_PROBS = ("hard_concrete", "sigmoid")
SOFT_MASKS = ("states", "states+attention")
RESTORES = ("last_state", "mask")
DUAL_MODES = ("per_layer", "global")
DUAL_UNITS = ("fraction", "tokens")
DUAL_UPDATES = ("ascent", "fixed", "single_timescale")  # fixed, single_timescale: the paper's ablations
PROJECTIONS = ("nonnegative", "none")
SCORER_SCHEDULES = ("constant", "linear")  # the scorers' LR after warm-up: constant, or decaying to 0 like the backbone's
WEIGHT_AVERAGES = ("none", "scorers", "all")  # the weights a run saves: the last step's, or the last epoch's mean of the scorers / of every weight
BATCHINGS = ("random", "by_length")  # by_length: each batch drawn from examples of similar length (less padding)
DEVICES = ("auto", "cpu", "cuda")
SOURCES = ("auto", "local", "hub", "prepared")  # prepared: a snapshot made by prepare.prepare_data (data_dir = its root)
BENCH_MODES = ("inference", "train_step")
SOURCE_SPLITS = ("train", "eval")  # the splits a dataset provides (files, hub splits, prepared snapshots)
SPLITS = ("train", "dev", "eval")  # a task's splits: dev is carved from the source's train split by document, train is the rest
MIN_LENGTH = 8  # the shortest max_length: [CLS] … [SEP] with room for a question or a few words
KEPT_RATIO = {"gt": 0, "le": 1}  # the bounds of every kept ratio ρ = M/T (a `setting` rule)

# Hard-Concrete parameters (Louizos et al., 2018), SPEC §1
BETA, GAMMA, ZETA = 0.66, -0.1, 1.1


def check_choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {list(allowed)}")


def check_stretch(beta, gamma, zeta) -> None:
    """β > 0 and γ < 0 < 1 < ζ (RetentionConfig's rules): what gives a Hard-Concrete gate mass at exactly 0 and exactly 1."""
    rules = {f.name: f.metadata for f in fields(RetentionConfig)}
    bad = [f"{name} must {_bounds(rules[name])}, got {v!r}" for name, v in (("beta", beta), ("gamma", gamma), ("zeta", zeta))
           if not _is_number(v) or not _in_bounds(v, rules[name])]
    if bad:
        raise ValueError("; ".join(bad) + " (what gives the gate mass at exactly 0 and 1)")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class ConfigError(ValueError):
    """Bad config values: every problem, each naming its key, in one message."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


def setting(default=MISSING, *, factory=MISSING, choices=None, ge=None, gt=None, le=None, lt=None):
    """A config key: its default and what it may hold beyond its annotated type (a choice, or bounds)."""
    rule = {k: v for k, v in dict(choices=choices, ge=ge, gt=gt, le=le, lt=lt).items() if v is not None}
    return field(default=default, default_factory=factory, metadata=rule)


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string", dict: "a mapping", list: "a list",
               type(None): "null"}


def _type_ok(value, t) -> bool:
    if t is bool:
        return isinstance(value, bool)
    if t is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if t is float:
        return _is_number(value)
    return isinstance(value, t)


def _quoted(value) -> bool:
    """A number or boolean written as text ('16', "true"): what a quoted YAML/JSON value looks like."""
    if not isinstance(value, str):
        return False
    try:
        float(value)
        return True
    except ValueError:
        return value.lower() in ("true", "false")


def _bounds(rule: dict) -> str:
    lo = f"({rule['gt']}" if "gt" in rule else f"[{rule['ge']}" if "ge" in rule else None
    hi = f"{rule['lt']})" if "lt" in rule else f"{rule['le']}]" if "le" in rule else None
    if lo and hi:
        return f"lie in {lo}, {hi}"
    return f"be > {rule['gt']}" if "gt" in rule else f"be ≥ {rule['ge']}" if "ge" in rule else f"be < {rule['lt']}" if "lt" in rule \
        else f"be ≤ {rule['le']}"


def is_kept_ratio(value) -> bool:
    return _is_number(value) and _in_bounds(value, KEPT_RATIO)


def kept_ratio_problem(value) -> str:
    return f"a kept ratio must {_bounds(KEPT_RATIO)}, got {value}"


def _in_bounds(v, rule: dict) -> bool:
    return all([v > rule.get("gt", -math.inf), v >= rule.get("ge", -math.inf), v < rule.get("lt", math.inf), v <= rule.get("le", math.inf)])


def allowed(cls, name: str) -> str:
    """What key `name` of config dataclass `cls` may hold, in words (config/README.md's `allowed` column, drift-tested)."""
    f = next(f for f in fields(cls) if f.name == name)
    hint = typing.get_type_hints(cls)[name]
    types = [t for t in (typing.get_args(hint) or (hint,)) if t is not type(None)]
    words = " or ".join(_TYPE_NAMES[t].removeprefix("an ").removeprefix("a ").removeprefix("finite ") for t in types)
    if "choices" in f.metadata:
        words = " | ".join(f.metadata["choices"])
    elif any(k in f.metadata for k in ("gt", "ge", "lt", "le")):
        words += " " + _bounds(f.metadata).removeprefix("be ").replace("lie in", "in")
    return words + (", or null" if len(types) < len(typing.get_args(hint) or (hint,)) else "")


def key_problems(obj) -> list[str]:
    """Each field of a config dataclass against its annotated type and its `setting` rule: one line per bad key."""
    hints = typing.get_type_hints(type(obj))
    problems = []
    for f in fields(obj):
        value, types = getattr(obj, f.name), typing.get_args(hints[f.name]) or (hints[f.name],)
        if not any(_type_ok(value, t) for t in types):
            wanted = " or ".join(_TYPE_NAMES[t] for t in types)
            problems.append(f"{f.name} must be {wanted}, got {value!r}" + (" (text: write it without quotes)" if _quoted(value) else ""))
        elif value is not None and "choices" in f.metadata and value not in f.metadata["choices"]:
            problems.append(f"unknown {f.name} {value!r}; allowed: {list(f.metadata['choices'])}")
        elif value is not None and not isinstance(value, (str, dict, list, bool)) and not _in_bounds(value, f.metadata):
            problems.append(f"{f.name} must {_bounds(f.metadata)}, got {value!r}")
    return problems


def nested_problems(name: str, cls, value) -> list[str]:
    """A nested config mapping (e.g. `retention`) checked as `cls`; its problems prefixed with `name:` (not a mapping:
    the outer type check says so)."""
    if not isinstance(value, dict):
        return []
    try:
        cls.from_dict(value)
    except ConfigError as e:
        return [f"{name}: {p}" for p in e.problems]
    return []


def strict_from_dict(cls, d: dict, what: str):
    """Build dataclass `cls` from `d`; an unknown key is an error that names it and the allowed ones."""
    if not isinstance(d, dict):
        raise ValueError(f"{what} must be a mapping of keys to values, got {d!r}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError([f"unknown {what} key(s) {unknown}; allowed: {sorted(known)}"])
    missing = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING and f.name not in d]
    if missing:
        raise ConfigError([f"{what}: missing key(s) {missing}"])
    return cls(**d)


@dataclass(frozen=True)
class RetentionConfig:
    """Every open choice of SPEC §2, with its default. Validated on construction."""

    ratio: float = setting(0.5, **KEPT_RATIO)  # ρ = M/T, the final kept fraction of content tokens
    schedule: str = setting("constant", choices=SCHEDULES)
    start_layer: int = setting(1, ge=0)  # first block that sees fewer tokens
    placement: str = setting("layerwise", choices=PLACEMENTS)
    scorer: str = setting("mlp", choices=SCORERS)
    scorer_decay: float = setting(0.9, ge=0, lt=1)  # γ_m of the recurrent scorer's running summary
    beta: float = setting(BETA, gt=0)
    gamma: float = setting(GAMMA, lt=0)
    zeta: float = setting(ZETA, gt=1)
    gate: str = setting("hard_concrete", choices=GATES)  # sigmoid: the ablation without the Hard-Concrete relaxation
    budget_prob: str = setting("hard_concrete", choices=BUDGET_PROBS)  # P(z̃>0) | σ(s) in the budget penalty
    soft_mask: str = setting("states+attention", choices=SOFT_MASKS)
    restore: str = setting("last_state", choices=RESTORES)
    init_log_alpha: float = 3.0  # scorer output bias at init: gates start open (P(z̃>0) ≈ 0.99)
    gather: bool = True  # eval: physically gather kept tokens (False: mask them; same outputs, no savings)
    # training: after the last retention layer, drop the tokens whose sampled gate product is exactly 0 (False: keep them
    # masked at full length, as the paper's formulation reads; the same step up to ε = 1e-6 attention weights)
    train_gather: bool = True

    def __post_init__(self):
        if problems := key_problems(self):
            raise ConfigError(problems)

    @classmethod
    def from_dict(cls, d: dict) -> "RetentionConfig":
        return strict_from_dict(cls, d, "retention config")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainConfig:
    """One training run: the task, the backbone, the optimiser, the budget controller (SPEC §1)."""

    task: str
    model: str = "minilm"  # folder, hub id, or 'minilm' (offline all-MiniLM-L6-v2)
    init_from: str | None = None  # warm start: a checkpoint of `model` fine-tuned on this task without retention
    source: str = setting("auto", choices=SOURCES)
    data_dir: str = "../shared/data"
    train_size: int | None = setting(None, ge=1)  # subsample of the training split (stratified for classification)
    max_length: int | None = setting(None, ge=MIN_LENGTH)  # default: the task's
    epochs: float = setting(1.0, gt=0)
    batch_size: int = setting(16, ge=1)
    batching: str = setting("random", choices=BATCHINGS)  # the paper does not say; batching.epoch_batches
    lr: float = setting(3e-5, gt=0)  # backbone and head
    scorer_lr: float = setting(1e-3, gt=0)
    scorer_schedule: str = setting("constant", choices=SCORER_SCHEDULES)  # linear: tried on SST-2, froze the gates above ρ
    weight_average: str = setting("none", choices=WEIGHT_AVERAGES)  # the iterates' mean over the last epoch, not the last swing
    average_steps: int = setting(0, ge=0)  # weight_average's window: the last N steps; 0 = the last epoch's
    weight_decay: float = setting(0.01, ge=0)
    lr_warmup: float = setting(0.06, ge=0, le=1)  # fraction of steps of linear LR warm-up, then linear decay to 0
    max_grad_norm: float = setting(1.0, gt=0)
    seed: int = setting(0, ge=0, lt=2**32)
    retention: dict | None = None  # RetentionConfig fields; None trains the full model
    eta: float = setting(1e-2, ge=0)  # dual step size η
    budget_warmup: float = setting(0.1, ge=0, le=1)  # fraction of steps over which the target goes from 1.0 to ρ_l
    lambda_init: float = 0.0
    budget_quadratic: float = setting(0.0, ge=0)  # ρ_q of the augmented-Lagrangian term (ρ_q/2)(kept − ρ)²; 0 = the paper's linear penalty only
    budget_filter: float = setting(0.0, ge=0, lt=1)  # β: the quadratic term pulls on the misses' moving average (β old, 1 − β new); 0 = this batch's miss
    distill_weight: float = setting(0.0, ge=0)  # weight of the distillation loss toward init_from's outputs (distill.py); 0 = the paper's loss
    distill_temperature: float = setting(2.0, gt=0)  # T of the softened distributions
    dual: str = setting("per_layer", choices=DUAL_MODES)
    dual_units: str = setting("fraction", choices=DUAL_UNITS)
    dual_update: str = setting("ascent", choices=DUAL_UPDATES)  # fixed: λ = lambda_init throughout; single_timescale: η = lr
    dual_projection: str = setting("nonnegative", choices=PROJECTIONS)  # nonnegative: λ ≥ 0, kept ≤ ρ (SPEC); none: kept = ρ
    checkpoint_every: int = setting(50, ge=1)  # steps
    k: int = setting(3, ge=1)  # summary sentences (summarisation)
    stride: int = setting(128, ge=0)  # window overlap (QA)
    device: str = setting("auto", choices=DEVICES)

    def __post_init__(self):
        from .data import TASKS

        problems = key_problems(self)
        if isinstance(self.task, str) and self.task not in TASKS:
            problems.insert(0, f"unknown task {self.task!r}; allowed: {sorted(TASKS)}")
        elif not problems and TASKS[self.task].kind == "qa" and self.stride >= (length := self.max_length or TASKS[self.task].max_length):
            problems.append(f"stride ({self.stride}) must be < max_length ({length}): QA windows overlap by stride tokens")
        if _is_number(self.distill_weight) and self.distill_weight > 0 and self.init_from is None:
            problems.append("distill_weight > 0 needs init_from: the teacher is the warm-start checkpoint (the task's full model)")
        if isinstance(self.average_steps, int) and self.average_steps > 0 and self.weight_average == "none":
            problems.append("average_steps > 0 needs weight_average: scorers or all (it is the window they average over)")
        if _is_number(self.budget_filter) and self.budget_filter > 0 and self.budget_quadratic == 0:
            problems.append("budget_filter > 0 needs budget_quadratic > 0 (it filters the quadratic term's pull)")
        if isinstance(self.model, str) and not self.model.strip():
            problems.append("model must name a folder, a hub id or 'minilm', got ''")
        problems += nested_problems("retention", RetentionConfig, self.retention)
        if problems:
            raise ConfigError(problems)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return strict_from_dict(cls, d, "training config")


@dataclass(frozen=True)
class Selection:
    """How one evaluation picks tokens: a method at a kept ratio, or the threshold method at p > tau."""

    method: str
    ratio: float | None  # None: the threshold method (its kept fraction is whatever p > tau keeps)
    tau: float | None = None

    @property
    def file_name(self) -> str:
        return f"{self.method}.json" if self.ratio is None or self.method == "full" else f"{self.method}_{self.ratio:g}.json"


DEFAULT_METHODS, DEFAULT_RATIOS = ("full", "learned"), (0.5, 0.3)  # what `evaluate` runs when told nothing


def plan_problems(plan) -> list[str]:
    """An evaluation plan {method: [ratios in (0, 1]]}, methods from methods.METHODS."""
    from .methods import METHODS

    if not isinstance(plan, dict) or not plan:
        return [f"plan must map each method to a list of ratios, e.g. {{\"learned\": [0.5, 0.3]}}, got {plan!r}"]
    unknown = [m for m in plan if m not in METHODS]
    problems = [f"unknown method(s) {unknown}; allowed: {list(METHODS)}"] if unknown else []
    for m, ratios in plan.items():
        if not isinstance(ratios, list) or (not ratios and m not in ("full", "threshold")):
            problems.append(f"plan.{m} must be a list of ratios, e.g. [{ratios if _is_number(ratios) else 0.5}], got {ratios!r}")
        elif m not in ("full", "threshold") and (bad := [r for r in ratios if not is_kept_ratio(r)]):
            problems.append(f"plan.{m}: ratio(s) {bad} outside {_bounds(KEPT_RATIO).removeprefix('lie in ')}")
    return problems


def default_plan(methods=DEFAULT_METHODS, ratios=DEFAULT_RATIOS) -> dict:
    """Each method at every ratio (`full` runs at 1.0 whatever its ratios)."""
    return {m: list(ratios) for m in methods}


@dataclass
class EvalConfig:
    """What to evaluate a checkpoint on and how: the plan {method: [ratios]} and the data."""

    plan: dict = setting(factory=lambda: default_plan())  # method -> kept ratios
    split: str = setting("eval", choices=SPLITS)
    data_file: str | None = None  # any JSON-lines file in the task's raw schema instead of a split
    size: int | None = setting(None, ge=1)  # a seeded subsample of this many examples
    source: str = setting("auto", choices=SOURCES)
    data_dir: str = "../shared/data"
    seed: int = setting(0, ge=0, lt=2**32)  # seed of the random selector
    tau: float = setting(0.5, gt=0, lt=1)  # threshold method: keep tokens with p > tau
    batch_size: int = setting(32, ge=1)
    retention: dict | None = None  # switches to attach the baselines to a checkpoint trained without retention
    device: str = setting("auto", choices=DEVICES)
    identity: dict = setting(factory=dict)  # the run's identity (run plan), copied into every result

    def __post_init__(self):
        problems = key_problems(self) + plan_problems(self.plan) + nested_problems("retention", RetentionConfig, self.retention)
        if problems:
            raise ConfigError(problems)

    def selections(self) -> list[Selection]:
        """The plan unrolled: `full` once at 1.0, `threshold` once at tau, every other method at each of its ratios."""
        out = []
        for method, ratios in self.plan.items():
            if method == "full":
                out.append(Selection("full", 1.0))
            elif method == "threshold":
                out.append(Selection("threshold", None, self.tau))
            else:
                out += [Selection(method, float(r)) for r in ratios]
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "EvalConfig":
        return strict_from_dict(cls, d, "evaluation config")


# --- key=value overrides (CLI --set) ----------------------------------------------------------------


def parse_sets(pairs: list[str]) -> dict:
    """key=value pairs (values parsed as YAML) into a nested dict; dotted keys nest (retention.ratio=0.3)."""
    import yaml

    out: dict = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ValueError(f"--set expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        try:  # JSON first: PyYAML reads 3e-05 (no dot) as a string
            node[leaf] = json.loads(value)
        except json.JSONDecodeError:
            node[leaf] = yaml.safe_load(value)
    return out


def merge(base: dict, extra: dict) -> dict:
    """`extra` over `base`, nested mappings merged key by key (a None base mapping is replaced)."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = merge(out.get(k) or {}, v) if isinstance(v, dict) and isinstance(out.get(k), (dict, type(None))) else v
    return out


_YAML12_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")  # exponent forms YAML 1.1 misses


def read_config_file(path: str) -> dict:
    """A YAML (or JSON) mapping of config keys; an unreadable file is one clear error. Numbers are read as YAML 1.2 and
    JSON read them: `3e-05` (how json writes 3e-5, and how users write it) is a float, not PyYAML's YAML 1.1 string."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", _YAML12_FLOAT, list("-+0123456789."))
    try:
        with open(path, encoding="utf-8") as f:
            loaded = yaml.load(f, Loader=Loader) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ValueError(f"cannot read config {path}: {e}") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"config {path}: expected a mapping of keys, got {type(loaded).__name__}")
    return loaded
