"""Task kinds: examples → features, the head, predictions → metric. One module per kind."""

from __future__ import annotations

from types import ModuleType

import torch

from . import classification, qa, summarization

KIND_MODULES: dict[str, ModuleType] = {"classification": classification, "qa": qa, "summarization": summarization}


def kind_module(kind: str) -> ModuleType:
    if kind not in KIND_MODULES:
        raise ValueError(f"unknown task kind {kind!r}; allowed: {sorted(KIND_MODULES)}")
    return KIND_MODULES[kind]


def token_lengths(examples: list[dict], kind: str, tokenizer) -> list[int]:
    """Untruncated tokens per example (special tokens included): what max_length cuts or windows."""
    if kind == "classification":
        enc = tokenizer([e["text"] for e in examples])
    elif kind == "qa":
        enc = tokenizer([e["question"] for e in examples], [e["context"] for e in examples])
    else:
        enc = tokenizer(["\n".join(e["sentences"]) for e in examples])
    return [len(ids) for ids in enc["input_ids"]]


def collate(features: list[dict], inputs: dict, pad_id: int = 0) -> dict[str, torch.Tensor]:
    """Pad the features of one batch to its longest sequence: a dict of tensors for the model."""
    batch = {}
    for key, pad in inputs.items():
        if key not in features[0]:
            continue
        values = [f[key] for f in features]
        if pad is None:
            batch[key] = torch.tensor(values)
            continue
        pad = pad_id if key == "input_ids" else pad
        width = max(len(v) for v in values)
        batch[key] = torch.tensor([list(v) + [pad] * (width - len(v)) for v in values])
    return batch
