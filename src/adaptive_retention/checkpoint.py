"""Checkpoints on disk, written atomically: a model folder in the Hugging Face layout (config.json,
model.safetensors, tokenizer files) plus `run.json` (task, labels, retention config, controller state)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model

from .config import RetentionConfig
from .io import atomic_folder
from .modeling import apply_retention

RUN_FILE = "run.json"


def save_checkpoint(model, tokenizer, run: dict, folder: str | os.PathLike) -> Path:
    """Write the whole folder next to its final place, then swap it in."""
    with atomic_folder(folder) as tmp:
        model.config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        save_model(model, str(tmp / "model.safetensors"))
        (tmp / RUN_FILE).write_text(json.dumps(run, indent=2, sort_keys=True))
    return Path(folder)


def read_run(folder: str | os.PathLike) -> dict:
    folder = Path(folder)
    run_file = folder / RUN_FILE
    if not folder.is_dir() or not run_file.exists() or not (folder / "model.safetensors").exists():
        raise ValueError(f"{folder} is not a checkpoint folder: expected {RUN_FILE}, config.json and model.safetensors in it")
    try:
        return json.loads(run_file.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{run_file}: corrupt ({e})") from None


def load_checkpoint(folder: str | os.PathLike, device: str | torch.device = "cpu"):
    """(model, tokenizer, run) from a folder written by `save_checkpoint`."""
    from transformers import AutoConfig, AutoTokenizer

    from .data import get_task
    from .tasks import kind_module

    run = read_run(folder)
    config = AutoConfig.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    kind = kind_module(get_task(run["task"]).kind)
    model = kind.build_model(config, num_labels=max(2, len(run.get("labels", []))), pretrained=False)
    if run.get("retention") is not None:
        apply_retention(model, RetentionConfig.from_dict(run["retention"]), tokenizer.all_special_ids)
    load_model(model, str(Path(folder) / "model.safetensors"), strict=True)
    return model.to(device).eval(), tokenizer, run
