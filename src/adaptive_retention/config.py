"""Every user-settable value of a run, validated once, with its default: the retention switches (SPEC §2),
the training keys, the evaluation plan, and the choices each may take. Imports no torch, so the workflow
and the run plan can validate a whole grid in a fraction of a second.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields

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
DEVICES = ("auto", "cpu", "cuda")
SOURCES = ("auto", "local", "hub", "prepared")  # prepared: a snapshot made by prepare.prepare_data (data_dir = its root)
BENCH_MODES = ("inference", "train_step")

# Hard-Concrete parameters (Louizos et al., 2018), SPEC §1
BETA, GAMMA, ZETA = 0.66, -0.1, 1.1


def check_choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {list(allowed)}")


def check_stretch(beta, gamma, zeta) -> None:
    """β > 0 and γ < 0 < 1 < ζ: what gives a Hard-Concrete gate mass at exactly 0 and exactly 1."""
    if not _is_number(beta) or not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta!r}")
    if not (_is_number(gamma) and _is_number(zeta) and gamma < 0 and zeta > 1):
        raise ValueError(f"need gamma < 0 < 1 < zeta for mass at 0 and 1, got gamma={gamma!r}, zeta={zeta!r}")


def check_ratio(ratio, name: str = "ratio") -> float:
    if not _is_number(ratio) or not 0.0 < ratio <= 1.0:
        raise ValueError(f"{name} must lie in (0, 1], got {ratio!r}")
    return float(ratio)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def strict_from_dict(cls, d: dict, what: str):
    """Build dataclass `cls` from `d`; an unknown key is an error that names it and the allowed ones."""
    if not isinstance(d, dict):
        raise ValueError(f"{what} must be a mapping of keys to values, got {d!r}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"unknown {what} key(s) {unknown}; allowed: {sorted(known)}")
    return cls(**d)


@dataclass(frozen=True)
class RetentionConfig:
    """Every open choice of SPEC §2, with its default. Validated on construction."""

    ratio: float = 0.5  # ρ = M/T, the final kept fraction of content tokens
    schedule: str = "constant"  # constant | linear | geometric
    start_layer: int = 1  # first block that sees fewer tokens
    placement: str = "layerwise"  # layerwise | final
    scorer: str = "mlp"  # mlp | recurrent
    scorer_decay: float = 0.9  # γ_m of the recurrent scorer's running summary
    beta: float = BETA
    gamma: float = GAMMA
    zeta: float = ZETA
    gate: str = "hard_concrete"  # hard_concrete | sigmoid (ablation: no Hard-Concrete relaxation)
    budget_prob: str = "hard_concrete"  # P(z̃>0) | σ(s) in the budget penalty
    soft_mask: str = "states+attention"  # states | states+attention
    restore: str = "last_state"  # last_state | mask
    init_log_alpha: float = 3.0  # scorer output bias at init: gates start open (P(z̃>0) ≈ 0.99)
    gather: bool = True  # eval: physically gather kept tokens (False: mask them; same outputs, no savings)

    def __post_init__(self):
        check_ratio(self.ratio)
        for name, allowed in [("schedule", SCHEDULES), ("placement", PLACEMENTS), ("scorer", SCORERS), ("gate", GATES),
                              ("budget_prob", BUDGET_PROBS), ("soft_mask", SOFT_MASKS), ("restore", RESTORES)]:
            check_choice(name, getattr(self, name), allowed)
        if not isinstance(self.start_layer, int) or isinstance(self.start_layer, bool) or self.start_layer < 0:
            raise ValueError(f"start_layer must be an integer ≥ 0, got {self.start_layer!r}")
        check_stretch(self.beta, self.gamma, self.zeta)
        if not _is_number(self.scorer_decay) or not 0.0 <= self.scorer_decay < 1.0:
            raise ValueError(f"scorer_decay must lie in [0, 1), got {self.scorer_decay!r}")

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
    source: str = "auto"
    data_dir: str = "../shared/data"
    train_size: int | None = None  # subsample of the training split (stratified for classification)
    max_length: int | None = None  # default: the task's
    epochs: float = 1.0
    batch_size: int = 16
    lr: float = 3e-5  # backbone and head
    scorer_lr: float = 1e-3
    weight_decay: float = 0.01
    lr_warmup: float = 0.06  # fraction of steps of linear LR warm-up, then linear decay to 0
    max_grad_norm: float = 1.0
    seed: int = 0
    retention: dict | None = None  # RetentionConfig fields; None trains the full model
    eta: float = 1e-2  # dual step size η
    budget_warmup: float = 0.1  # fraction of steps over which the target goes from 1.0 to ρ_l
    lambda_init: float = 0.0
    budget_quadratic: float = 0.0  # ρ_q of the augmented-Lagrangian term (ρ_q/2)(kept − ρ)²; 0 = the paper's linear penalty only
    dual: str = "per_layer"  # per_layer | global
    dual_units: str = "fraction"  # fraction | tokens
    dual_update: str = "ascent"  # ascent | fixed (λ = lambda_init throughout) | single_timescale (η = lr)
    dual_projection: str = "nonnegative"  # nonnegative (λ ≥ 0: kept ≤ ρ, SPEC) | none (kept = ρ, λ may go negative)
    checkpoint_every: int = 50  # steps
    k: int = 3  # summary sentences (summarisation)
    stride: int = 128  # window overlap (QA)
    device: str = "auto"  # auto | cpu | cuda

    def __post_init__(self):
        from .data import get_task

        get_task(self.task)
        for name, allowed in [("dual", DUAL_MODES), ("dual_units", DUAL_UNITS), ("dual_update", DUAL_UPDATES),
                              ("dual_projection", PROJECTIONS), ("device", DEVICES), ("source", SOURCES)]:
            check_choice(name, getattr(self, name), allowed)
        for name in ("epochs", "lr", "scorer_lr", "weight_decay", "lr_warmup", "max_grad_norm", "eta", "budget_warmup", "lambda_init",
                     "budget_quadratic"):
            if not _is_number(getattr(self, name)):
                raise ValueError(f"{name} must be a number, got {getattr(self, name)!r}")
        for name in ("epochs", "batch_size", "lr", "checkpoint_every"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.retention is not None:
            RetentionConfig.from_dict(self.retention)  # validates keys and values

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


def default_plan(methods=DEFAULT_METHODS, ratios=DEFAULT_RATIOS) -> dict:
    """Each method at every ratio (`full` runs at 1.0 whatever its ratios)."""
    return {m: list(ratios) for m in methods}


@dataclass
class EvalConfig:
    """What to evaluate a checkpoint on and how: the plan {method: [ratios]} and the data."""

    plan: dict = field(default_factory=lambda: default_plan())  # method -> kept ratios
    split: str = "eval"
    data_file: str | None = None  # any JSON-lines file in the task's raw schema instead of a split
    size: int | None = None  # a seeded subsample of this many examples
    source: str = "auto"
    data_dir: str = "../shared/data"
    seed: int = 0  # seed of the random selector
    tau: float = 0.5  # threshold method: keep tokens with p > tau
    batch_size: int = 32
    retention: dict | None = None  # switches to attach the baselines to a checkpoint trained without retention
    device: str = "auto"
    identity: dict = field(default_factory=dict)  # the run's identity (run plan), copied into every result

    def __post_init__(self):
        from .methods import check_methods

        if not isinstance(self.plan, dict) or not all(isinstance(v, list) for v in self.plan.values()):
            raise ValueError(f"the evaluation plan must map method -> list of ratios, got {self.plan!r}")
        check_methods(list(self.plan))
        bad = [r for m, rs in self.plan.items() if m not in ("full", "threshold") for r in rs if not _is_number(r) or not 0.0 < r <= 1.0]
        if bad:
            raise ValueError(f"ratio(s) {bad} outside (0, 1]")
        if not _is_number(self.tau) or not 0.0 < self.tau < 1.0:
            raise ValueError(f"tau must lie in (0, 1), got {self.tau!r}")
        check_choice("source", self.source, SOURCES)
        check_choice("device", self.device, DEVICES)
        if self.retention is not None:
            RetentionConfig.from_dict(self.retention)

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


def read_config_file(path: str) -> dict:
    """A YAML (or JSON) mapping of config keys; an unreadable file is one clear error."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            loaded = yaml.safe_load(f) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ValueError(f"cannot read config {path}: {e}") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"config {path}: expected a mapping of keys, got {type(loaded).__name__}")
    return loaded
