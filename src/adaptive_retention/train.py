"""Fine-tune a backbone with retention under the Lagrangian budget (SPEC §1), or without retention.

One optimiser step on (θ, scorers) with AdamW, then one projected dual-ascent step on λ. Checkpoints
every N steps hold everything needed to resume bit-for-bit on CPU (weights, optimiser, schedule,
controller, RNG states, trace). Outputs in `out/`: `model/` (the final checkpoint), `trace.tsv`,
`summary.json`; `resume.pt` while the run is unfinished.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .backbones import resolve_model_path
from .budget import DUAL_MODES, PROJECTIONS, DualController
from .checkpoint import save_checkpoint, torch_save_atomic, write_atomic
from .data import get_task, stream_examples
from .modeling import RetentionConfig, apply_retention, info_of, retention_of, strict_from_dict
from .tasks import collate, featurize_stream, kind_module

DUAL_UPDATES = ("ascent", "fixed", "single_timescale")
DUAL_UNITS = ("fraction", "tokens")
RESUME_FILE = "resume.pt"


class TrainingError(RuntimeError):
    """The run cannot go on (a NaN/inf loss); nothing final was written."""


@dataclass
class TrainConfig:
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
        get_task(self.task)
        for name, value, allowed in [("dual", self.dual, DUAL_MODES), ("dual_units", self.dual_units, DUAL_UNITS),
                                     ("dual_update", self.dual_update, DUAL_UPDATES), ("dual_projection", self.dual_projection, PROJECTIONS),
                                     ("device", self.device, ("auto", "cpu", "cuda"))]:
            if value not in allowed:
                raise ValueError(f"unknown {name} {value!r}; allowed: {list(allowed)}")
        for name in ("epochs", "lr", "scorer_lr", "weight_decay", "lr_warmup", "max_grad_norm", "eta", "budget_warmup", "lambda_init",
                     "budget_quadratic"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), (int, float)):
                raise ValueError(f"{name} must be a number, got {getattr(self, name)!r}")
        for name in ("epochs", "batch_size", "lr", "checkpoint_every"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.retention is not None:
            RetentionConfig.from_dict(self.retention)  # validates keys and values

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return strict_from_dict(cls, d, "training config")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    return torch.device(name)


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _lr_lambda(total: int, warmup: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))
    return f


def training_data(cfg: TrainConfig, tokenizer, max_length: int):
    """(split header, number of examples, compact features) of the training split, streamed: the examples are
    featurised a chunk at a time and never all held (what keeps ArXiv within a job's memory)."""
    kind = kind_module(get_task(cfg.task).kind)
    split, n_examples, examples = stream_examples(cfg.task, "train", cfg.source, cfg.data_dir, size=cfg.train_size, seed=cfg.seed)
    return split, n_examples, featurize_stream(kind, examples, tokenizer, max_length, k=cfg.k, stride=cfg.stride)


def train(cfg: TrainConfig, out: str | Path, progress: bool = True) -> dict:
    """Run (or resume) one training run; returns the summary also written to out/summary.json."""
    out = Path(out)  # created by the first checkpoint or final write: a run that fails early leaves nothing
    spec = get_task(cfg.task)
    kind = kind_module(spec.kind)
    device = pick_device(cfg.device)
    seed_everything(cfg.seed)
    max_length = cfg.max_length or spec.max_length

    from transformers import AutoTokenizer

    path = resolve_model_path(cfg.model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    split, n_examples, features = training_data(cfg, tokenizer, max_length)
    model = kind.build_model(path, num_labels=max(2, len(split.labels)))
    retention = None
    if cfg.retention is not None:
        apply_retention(model, RetentionConfig.from_dict(cfg.retention), tokenizer.all_special_ids)
        retention = retention_of(model)
    model.to(device)

    steps_per_epoch = math.ceil(len(features) / cfg.batch_size)
    total = max(1, math.ceil(cfg.epochs * steps_per_epoch))
    scorer_params = list(retention.parameters()) if retention is not None else []
    scorer_ids = {id(p) for p in scorer_params}
    groups = [{"params": [p for p in model.parameters() if id(p) not in scorer_ids], "lr": cfg.lr, "name": "backbone"}]
    if scorer_params:
        groups.append({"params": scorer_params, "lr": cfg.scorer_lr, "name": "scorers"})
    optimizer = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    warm = int(cfg.lr_warmup * total)  # backbone: warm-up then linear decay; scorers: warm-up then constant,
    schedules = [_lr_lambda(total, warm), lambda step: min(1.0, (step + 1) / max(1, warm))]  # so the budget can still be met late
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedules[: len(groups)])
    controller = None
    if retention is not None:
        eta = cfg.lr if cfg.dual_update == "single_timescale" else cfg.eta
        controller = DualController([retention.ratios[b] for b in retention.boundaries], eta=eta,
                                    warmup_steps=int(cfg.budget_warmup * total), lambda_init=cfg.lambda_init, mode=cfg.dual,
                                    projection=cfg.dual_projection, quadratic=cfg.budget_quadratic)

    trace: list[dict] = []
    start = 0
    resume_path = out / RESUME_FILE
    if resume_path.exists():
        state = torch.load(resume_path, weights_only=False)
        if state["config"] != asdict(cfg):
            raise ValueError(f"{resume_path} belongs to a run with a different config; remove it or use another output folder")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if controller is not None:
            controller.load_state_dict(state["controller"])
        _set_rng_state(state["rng"])
        trace, start = state["trace"], state["step"]

    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    bar = tqdm(range(start, total), initial=start, total=total, desc=f"train {cfg.task}", disable=not progress, dynamic_ncols=True)
    t0 = time.perf_counter()
    for step in bar:
        epoch, pos = divmod(step, steps_per_epoch)
        order = torch.randperm(len(features), generator=torch.Generator().manual_seed(cfg.seed * 100003 + epoch)).tolist()
        batch = collate([features[i] for i in order[pos * cfg.batch_size:(pos + 1) * cfg.batch_size]], kind.INPUTS, tokenizer.pad_token_id)
        batch = {k: v.to(device) for k, v in batch.items()}
        model.train()
        with autocast:
            output = model(**batch)
        task_loss = output["loss"]
        row = {"step": step + 1, "epoch": epoch}
        loss = task_loss
        if controller is not None:
            info = info_of(output)
            scale = info.n_tokens.float().mean().item() if cfg.dual_units == "tokens" else 1.0
            kept = info.expected_kept.float()
            loss = task_loss + controller.penalty(kept, scale)
        if not torch.isfinite(loss):
            raise TrainingError(f"non-finite loss {loss.item()} at step {step + 1} (task loss {task_loss.item()}); "
                                f"no final checkpoint written; last resumable state: {resume_path if resume_path.exists() else 'none'}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        optimizer.step()
        scheduler.step()
        row.update(loss=loss.item(), task_loss=task_loss.item())
        if controller is not None:
            targets = controller.current_targets()
            if cfg.dual_update != "fixed":
                controller.update(kept, float(scale))
            else:
                controller.step_count += 1
            for j, b in enumerate(retention.boundaries):
                row[f"kept_{b}"] = kept[j].item()
                row[f"target_{b}"] = targets[j].item()
                row[f"lambda_{b}"] = controller.lambdas[min(j, len(controller.lambdas) - 1)].item()
        for g in optimizer.param_groups:
            row[f"lr_{g['name']}"] = g["lr"]
        trace.append(row)
        postfix = {"loss": f"{row['loss']:.3f}"}
        if controller is not None:
            postfix.update(kept=f"{kept.mean().item():.3f}", lam=f"{controller.lambdas.max().item():.3f}")
        bar.set_postfix(postfix)
        if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < total:
            torch_save_atomic({"config": asdict(cfg), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                               "scheduler": scheduler.state_dict(), "controller": controller.state_dict() if controller else None,
                               "rng": _rng_state(), "trace": trace, "step": step + 1}, resume_path)

    run = {"task": cfg.task, "labels": list(split.labels), "retention": cfg.retention, "seed": cfg.seed,
           "max_length": max_length, "train_config": asdict(cfg), "controller": controller.state_dict() if controller else None,
           "train_examples": n_examples, "train_origin": split.origin}
    save_checkpoint(model.cpu(), tokenizer, run, out / "model")
    write_trace(trace, out / "trace.tsv")
    summary = {**run, "steps": total, "final_loss": trace[-1]["loss"] if trace else None,
               "wall_seconds_this_session": time.perf_counter() - t0,
               "final_kept": {k: v for k, v in trace[-1].items() if k.startswith(("kept_", "lambda_", "target_"))} if trace else {}}
    write_atomic(out / "summary.json", json.dumps(summary, indent=2, sort_keys=True))
    resume_path.unlink(missing_ok=True)
    return summary


def write_trace(trace: list[dict], path: Path) -> None:
    columns = list(dict.fromkeys(k for row in trace for k in row))
    lines = ["\t".join(columns)] + ["\t".join(_fmt(row.get(c, "")) for c in columns) for row in trace]
    write_atomic(path, "\n".join(lines) + "\n")


def _fmt(v) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)
