"""Fine-tune a backbone with retention under the Lagrangian budget (SPEC §1), or without retention.

One optimiser step on (θ, scorers) with AdamW, then one projected dual-ascent step on λ. Checkpoints
every N steps hold everything needed to resume bit-for-bit on CPU (weights, optimiser, schedule,
controller, RNG states, trace). Outputs in `out/`: `model/` (the final checkpoint), `trace.tsv`,
`step_times.tsv` (wall seconds per step), `summary.json`; `resume.pt` while the run is unfinished,
`.lock` (the PID) while a process writes there.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from tqdm.auto import tqdm

from .backbones import check_model_name, pick_device, resolve_model_path
from .batching import epoch_batches
from .budget import DualController
from .checkpoint import RUN_FILE, read_run, save_checkpoint
from .config import RetentionConfig, TrainConfig
from .data import get_task, stream_examples
from .distill import distill_loss
from .io import STEP_TIMES_FILE, TRACE_FILE, claimed_folder, torch_save_atomic, write_json, write_trace
from .modeling import Retention, apply_retention, info_of, retention_of
from .tasks import collate, featurize_stream, kind_module

RESUME_FILE = "resume.pt"


class TrainingError(RuntimeError):
    """The run cannot go on (a NaN/inf loss); nothing final was written."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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


@dataclass
class _Run:
    """What one training run holds between steps."""
    cfg: TrainConfig
    kind: ModuleType
    tokenizer: object
    model: torch.nn.Module
    retention: Retention | None
    features: list[dict]
    split: object  # the training split's header (labels, origin)
    n_examples: int
    max_length: int
    device: torch.device
    total: int  # optimiser steps
    steps_per_epoch: int
    optimizer: torch.optim.Optimizer | None = None
    scheduler: object = None
    controller: DualController | None = None
    teacher: torch.nn.Module | None = None  # the frozen full model distilled from (distill_weight > 0)
    epoch_batches: tuple[int, list[list[int]]] = (-1, [])  # (epoch, its batches): computed once per epoch
    weight_mean: dict | None = None  # weight_average: {"count": steps averaged, "params": [running means]}


def _build(cfg: TrainConfig) -> _Run:
    """Data, model (with retention when the config asks for it), optimiser, schedules and controller; seeded."""
    from transformers import AutoTokenizer

    spec = get_task(cfg.task)
    kind = kind_module(spec.kind)
    device = pick_device(cfg.device)
    seed_everything(cfg.seed)
    max_length = cfg.max_length or spec.max_length
    path = resolve_model_path(cfg.model) if cfg.init_from is None else cfg.init_from
    tokenizer = AutoTokenizer.from_pretrained(path)
    split, n_examples, features = training_data(cfg, tokenizer, max_length)
    if cfg.init_from is not None:
        check_warm_start(cfg, split.labels)
    model = kind.build_model(path, num_labels=max(2, len(split.labels)))
    retention = None
    if cfg.retention is not None:
        apply_retention(model, RetentionConfig.from_dict(cfg.retention), tokenizer.all_special_ids)
        retention = retention_of(model)
    model.to(device)
    steps_per_epoch = math.ceil(len(features) / cfg.batch_size)
    run = _Run(cfg, kind, tokenizer, model, retention, features, split, n_examples, max_length, device,
               max(1, math.ceil(cfg.epochs * steps_per_epoch)), steps_per_epoch)
    run.optimizer, run.scheduler = _optimizer(run)
    run.controller = _controller(run)
    if cfg.distill_weight > 0:
        run.teacher = kind.build_model(cfg.init_from, num_labels=max(2, len(split.labels))).to(device).eval().requires_grad_(False)
    return run


def check_warm_start(cfg: TrainConfig, labels) -> None:
    """A warm start begins from a checkpoint of the same backbone fine-tuned on the same task and label set without
    retention (PoWER-BERT's and LTP's recipe): anything else would silently start from another model."""
    done = read_run(cfg.init_from)
    problems = [f"its task is {done['task']!r}, not {cfg.task!r}"] if done["task"] != cfg.task else []
    if done["train_config"].get("model") != cfg.model:
        problems.append(f"it was fine-tuned from {done['train_config'].get('model')!r}, not {cfg.model!r}")
    if done.get("retention") is not None:
        problems.append("it was trained with retention (start from the full model's checkpoint)")
    if list(done["labels"]) != list(labels):
        problems.append(f"its labels {done['labels']} differ from the data's {list(labels)}")
    if problems:
        raise ValueError(f"init_from {cfg.init_from}: cannot warm-start from it: " + "; ".join(problems))


def _optimizer(run: _Run):
    """AdamW over two groups: backbone + head (warm-up, then linear decay to 0) and scorers (warm-up, then constant,
    so the budget can still be met late; or, `scorer_schedule: linear`, the backbone's decay)."""
    cfg = run.cfg
    scorer_params = list(run.retention.parameters()) if run.retention is not None else []
    scorer_ids = {id(p) for p in scorer_params}
    groups = [{"params": [p for p in run.model.parameters() if id(p) not in scorer_ids], "lr": cfg.lr, "name": "backbone"}]
    if scorer_params:
        groups.append({"params": scorer_params, "lr": cfg.scorer_lr, "name": "scorers"})
    optimizer = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    warm = int(cfg.lr_warmup * run.total)
    backbone = _lr_lambda(run.total, warm)
    scorers = backbone if cfg.scorer_schedule == "linear" else (lambda step: min(1.0, (step + 1) / max(1, warm)))
    schedules = [backbone, scorers]
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedules[: len(groups)])


def _controller(run: _Run) -> DualController | None:
    if run.retention is None:
        return None
    cfg = run.cfg
    eta = cfg.lr if cfg.dual_update == "single_timescale" else cfg.eta
    return DualController([run.retention.ratios[b] for b in run.retention.boundaries], eta=eta,
                          warmup_steps=int(cfg.budget_warmup * run.total), lambda_init=cfg.lambda_init, mode=cfg.dual,
                          projection=cfg.dual_projection, quadratic=cfg.budget_quadratic, filter=cfg.budget_filter)


# Retention keys added since runs were first saved, with the behaviour a run saved before had: it resumes (or counts as
# finished) only under that value. Runs record these keys explicitly (`_recorded`), so a missing one means "before".
RETENTION_BEFORE = {"train_gather": False}  # the masked training step


def _recorded(cfg: TrainConfig) -> TrainConfig:
    """The config as a run records it: the retention keys of RETENTION_BEFORE written out (their defaults if unset)."""
    if cfg.retention is None or set(RETENTION_BEFORE) <= set(cfg.retention):
        return cfg
    defaults = RetentionConfig()
    return replace(cfg, retention={**{k: getattr(defaults, k) for k in RETENTION_BEFORE}, **cfg.retention})


def _same_config(saved: dict, cfg: TrainConfig) -> bool:
    """A saved run's config (resume state or finished checkpoint) is this run's (`cfg` as `_recorded` writes it): the
    same values, and any key added since it was written at its default — or, for a retention key, at the behaviour it
    had then (RETENTION_BEFORE) — so a run written before an upgrade resumes, or counts as finished, after it, and only
    as what it was."""
    current, defaults = asdict(cfg), {f.name: f.default for f in fields(TrainConfig)}
    if isinstance(saved.get("retention"), dict):
        saved = {**saved, "retention": {**RETENTION_BEFORE, **saved["retention"]}}
    return set(saved) <= set(current) and all(saved[k] == current[k] for k in saved) and \
        all(current[k] == defaults[k] for k in set(current) - set(saved))


def _resume(run: _Run, path: Path) -> tuple[list[dict], list[dict], int]:
    """(trace so far, step times so far, next step) from the run's resumable state, or ([], [], 0) for a fresh run."""
    if not path.exists():
        return [], [], 0
    state = torch.load(path, weights_only=False)
    if not _same_config(state["config"], run.cfg):
        raise ValueError(f"{path} belongs to a run with a different config; use --force to start afresh, or another output folder")
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    if run.controller is not None:
        run.controller.load_state_dict(state["controller"])
    _set_rng_state(state["rng"])
    run.weight_mean = state.get("weight_mean")
    return state["trace"], state.get("step_times", []), state["step"]  # a state written before step times: none


def _save_resume(run: _Run, trace: list[dict], times: list[dict], step: int, path: Path) -> None:
    torch_save_atomic({"config": asdict(run.cfg), "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
                       "scheduler": run.scheduler.state_dict(), "controller": run.controller.state_dict() if run.controller else None,
                       "rng": _rng_state(), "trace": trace, "step_times": times, "step": step, "weight_mean": run.weight_mean}, path)


def _batch(run: _Run, step: int) -> dict:
    """The batch of optimiser step `step` (batching.epoch_batches, seeded per epoch), padded to its longest feature."""
    cfg = run.cfg
    epoch, pos = divmod(step, run.steps_per_epoch)
    if run.epoch_batches[0] != epoch:
        lengths = [len(f["input_ids"]) for f in run.features]
        run.epoch_batches = (epoch, epoch_batches(lengths, cfg.batch_size, cfg.seed, epoch, cfg.batching))
    chosen = [run.features[i] for i in run.epoch_batches[1][pos]]
    batch = collate(chosen, run.kind.INPUTS, run.tokenizer.pad_token_id)
    return {k: v.to(run.device) for k, v in batch.items()}


def _step(run: _Run, step: int, resume_path: Path) -> dict:
    """One primal step (task loss + the budget penalty) and one dual step; returns the trace row."""
    cfg, controller = run.cfg, run.controller
    run.model.train()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if run.device.type == "cuda" else torch.autocast("cpu", enabled=False)
    batch = _batch(run, step)
    with autocast:
        output = run.model(**batch)
    task_loss = loss = output["loss"]
    row = {"step": step + 1, "epoch": step // run.steps_per_epoch}
    if run.teacher is not None:
        with torch.no_grad(), autocast:
            teacher = run.teacher(**batch)
        distilled = distill_loss(get_task(cfg.task).kind, output, teacher, batch, cfg.distill_temperature)
        loss = loss + cfg.distill_weight * distilled
        row["distill_loss"] = distilled.item()
    if controller is not None:
        info = info_of(output)
        scale = info.n_tokens.float().mean().item() if cfg.dual_units == "tokens" else 1.0
        kept = info.expected_kept.float()
        loss = loss + controller.penalty(kept, scale)
    if not torch.isfinite(loss):
        raise TrainingError(f"non-finite loss {loss.item()} at step {step + 1} (task loss {task_loss.item()}); "
                            f"no final checkpoint written; last resumable state: {resume_path if resume_path.exists() else 'none'}")
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.max_grad_norm)
    run.optimizer.step()
    run.scheduler.step()
    row.update(loss=loss.item(), task_loss=task_loss.item())
    if controller is not None:
        targets = controller.current_targets()
        controller.update(kept, float(scale), ascend=cfg.dual_update != "fixed")
        for j, b in enumerate(run.retention.boundaries):
            row[f"kept_{b}"] = kept[j].item()
            row[f"target_{b}"] = targets[j].item()
            row[f"lambda_{b}"] = controller.lambdas[min(j, len(controller.lambdas) - 1)].item()
    for g in run.optimizer.param_groups:
        row[f"lr_{g['name']}"] = g["lr"]
    return row


def _averaged(run: _Run) -> list[torch.nn.Parameter]:
    """The parameters `weight_average` averages: the scorers', every one, or none."""
    if run.cfg.weight_average == "all":
        return list(run.model.parameters())
    return list(run.retention.parameters()) if run.cfg.weight_average == "scorers" and run.retention is not None else []


@torch.no_grad()
def _average_weights(run: _Run, step: int) -> None:
    """`weight_average`: fold the weights after step `step` into their running mean if it lies in the averaging window
    (the last `average_steps` steps; 0: the last epoch's). Why: the dual controller pulls the kept fraction onto ρ on
    average, while the last iterate swings about it with the batches (SST-2: ±0.05 at the end); the iterates' mean
    settles where the average lies (Polyak–Ruppert averaging, the ergodic iterate of gradient descent–ascent)."""
    window = run.cfg.average_steps or run.steps_per_epoch
    if step < run.total - min(window, run.total) or not (params := _averaged(run)):
        return
    if run.weight_mean is None:
        run.weight_mean = {"count": 0, "params": [torch.zeros_like(p) for p in params]}
    run.weight_mean["count"] += 1
    for mean, p in zip(run.weight_mean["params"], params):
        mean.add_((p - mean) / run.weight_mean["count"])


def _finish(run: _Run, trace: list[dict], times: list[dict], out: Path, seconds: float) -> dict:
    """The final checkpoint, trace and summary, each written atomically."""
    cfg = run.cfg
    if run.weight_mean is not None:  # the saved weights are the averaging window's mean
        with torch.no_grad():
            for p, mean in zip(_averaged(run), run.weight_mean["params"]):
                p.copy_(mean)
    record = {"task": cfg.task, "labels": list(run.split.labels), "retention": cfg.retention, "seed": cfg.seed,
              "max_length": run.max_length, "train_config": asdict(cfg),
              "controller": run.controller.state_dict() if run.controller else None,
              "train_examples": run.n_examples, "train_origin": run.split.origin}
    save_checkpoint(run.model.cpu(), run.tokenizer, record, out / "model")
    write_trace(trace, out / TRACE_FILE)
    write_trace(times, out / STEP_TIMES_FILE)
    last = trace[-1] if trace else {}
    summary = {**record, "steps": run.total, "final_loss": last.get("loss"), "wall_seconds_this_session": seconds,
               "steps_averaged": run.weight_mean["count"] if run.weight_mean else 0,
               "final_kept": {k: v for k, v in last.items() if k.startswith(("kept_", "lambda_", "target_"))}}
    write_json(out / "summary.json", summary)
    return summary


def finished_run(cfg: TrainConfig, out: Path) -> dict | None:
    """The summary of a run already finished in `out` with this very config (as `_recorded` writes it); None if there is
    none. A finished run with another config is an error (the folder holds someone else's result)."""
    run_file, summary_file = out / "model" / RUN_FILE, out / "summary.json"
    if not (run_file.is_file() and summary_file.is_file()):
        return None
    done, wanted = read_run(out / "model").get("train_config", {}), asdict(cfg)
    if not _same_config(done, cfg):
        changed = sorted(k for k in set(done) | set(wanted) if done.get(k) != wanted.get(k))
        raise ValueError(f"{out} holds a finished run with another config (differs in {changed}); "
                         "use another output folder, or --force to replace it")
    return json.loads(summary_file.read_text())


def train(cfg: TrainConfig, out: str | Path, progress: bool = True, force: bool = False) -> dict:
    """Run (or resume) one training run; returns the summary also written to out/summary.json. A run already finished
    in `out` with the same config is returned as it is (`force`: train it again, from scratch)."""
    out, cfg = Path(out), _recorded(cfg)
    check_model_name(cfg.model)
    if cfg.init_from is not None:
        read_run(cfg.init_from)  # a whole checkpoint, before any compute (its fit to the run: once the data is read)
    with claimed_folder(out):  # writable and ours before any compute; leftovers of a killed final save removed
        resume_path = out / RESUME_FILE
        if force:
            resume_path.unlink(missing_ok=True)
        elif (done := finished_run(cfg, out)) is not None:
            return {**done, "already_finished": True}
        run = _build(cfg)
        trace, times, start = _resume(run, resume_path)
        bar = tqdm(range(start, run.total), initial=start, total=run.total, desc=f"train {cfg.task}", disable=not progress,
                   dynamic_ncols=True)
        t0 = time.perf_counter()
        for step in bar:
            t_step = time.perf_counter()
            row = _step(run, step, resume_path)
            _average_weights(run, step)
            trace.append(row)
            times.append({"step": step + 1, "seconds": time.perf_counter() - t_step})
            postfix = {"loss": f"{row['loss']:.3f}"}
            if run.controller is not None:
                kept = [v for k, v in row.items() if k.startswith("kept_")]
                postfix.update(kept=f"{sum(kept) / len(kept):.3f}", lam=f"{run.controller.lambdas.max().item():.3f}")
            bar.set_postfix(postfix)
            if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < run.total:
                _save_resume(run, trace, times, step + 1, resume_path)
        summary = _finish(run, trace, times, out, time.perf_counter() - t0)
        resume_path.unlink(missing_ok=True)
        return summary
