"""Checkpoints on disk, written atomically: a model folder in the Hugging Face layout (config.json,
model.safetensors, tokenizer files) plus `run.json` (task, labels, retention config, controller state)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
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


MODEL_FILES = ("config.json", "model.safetensors", RUN_FILE, "tokenizer_config.json")
VOCABULARIES = (("tokenizer.json",), ("vocab.txt",), ("vocab.json", "merges.txt"), ("sentencepiece.bpe.model",), ("spiece.model",))
RUN_KEYS = {"task": str, "labels": list, "max_length": int, "seed": int, "train_config": dict}  # what loading and evaluation read


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be loaded as it was saved: the message names the folder and what is wrong."""


def read_run(folder: str | os.PathLike) -> dict:
    """run.json of a checkpoint folder, after checking every file the model and its tokenizer need is there (a tokenizer
    silently rebuilt from nothing would map every word to [UNK]) and the record names a known task and label set."""
    from .data import TASKS

    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder} is not a checkpoint folder (no such folder)")
    missing = [f for f in MODEL_FILES if not (folder / f).is_file()]
    if not any(all((folder / f).is_file() for f in group) for group in VOCABULARIES):
        missing.append("the tokenizer's vocabulary (" + " or ".join(" + ".join(g) for g in VOCABULARIES) + ")")
    if missing:
        raise CheckpointError(f"{folder} is not a whole checkpoint: missing {', '.join(missing)}")
    try:
        run = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{folder / RUN_FILE}: corrupt ({e})") from None
    bad = [k for k, t in RUN_KEYS.items() if not isinstance(run.get(k) if isinstance(run, dict) else None, t)]
    if bad:
        raise CheckpointError(f"{folder / RUN_FILE}: missing or malformed key(s) {bad}")
    if run["task"] not in TASKS:
        raise CheckpointError(f"{folder / RUN_FILE}: unknown task {run['task']!r}; known: {sorted(TASKS)}")
    if TASKS[run["task"]].kind == "classification" and (len(run["labels"]) < 2 or not all(isinstance(x, str) for x in run["labels"])):
        raise CheckpointError(f"{folder / RUN_FILE}: a classification checkpoint needs its label names (≥ 2), got {run['labels']!r}")
    if run.get("retention") is not None:
        try:
            RetentionConfig.from_dict(run["retention"])
        except ValueError as e:
            raise CheckpointError(f"{folder / RUN_FILE}: bad retention config ({e})") from None
    return run


def load_checkpoint(folder: str | os.PathLike, device: str | torch.device = "cpu"):
    """(model, tokenizer, run) from a folder written by `save_checkpoint`."""
    from transformers import AutoConfig, AutoTokenizer

    from .data import get_task
    from .tasks import kind_module

    run = read_run(folder)
    try:
        config = AutoConfig.from_pretrained(folder)
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{folder}: cannot load its config or tokenizer ({e})") from None
    kind = kind_module(get_task(run["task"]).kind)
    model = kind.build_model(config, num_labels=max(2, len(run["labels"])), pretrained=False)
    if run.get("retention") is not None:
        apply_retention(model, RetentionConfig.from_dict(run["retention"]), tokenizer.all_special_ids)
    try:
        load_model(model, str(Path(folder) / "model.safetensors"), strict=True)
    except (OSError, RuntimeError, SafetensorError) as e:
        raise CheckpointError(f"{folder / 'model.safetensors'}: does not match the checkpoint's config ({str(e).splitlines()[0]})") from None
    return model.to(device).eval(), tokenizer, run
