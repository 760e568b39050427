"""Task kinds: examples → features, the head, predictions → metric. One module per kind."""

from __future__ import annotations

from itertools import islice
from types import ModuleType
from typing import Iterable

import numpy as np
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


def compact(value):
    """A list of numbers as a NumPy array (int32 / float32: 4 bytes a token instead of a Python int object and
    its pointer); anything else (scalars, offsets with None) as it is."""
    if not isinstance(value, list) or not value or type(value[0]) not in (int, float):
        return value
    array = np.asarray(value)
    if array.dtype.kind == "i":
        return array.astype(np.int32)
    return array.astype(np.float32) if array.dtype.kind == "f" else value


def featurize_stream(kind: ModuleType, examples: Iterable[dict], tokenizer, max_length: int, chunk: int = 256, **kwargs) -> list[dict]:
    """`kind.featurize` over a stream of examples, a chunk at a time, features stored compactly: the examples
    are never all in memory (ArXiv's 203k articles, extrapolated in README: ~29 GiB as Python strings, features
    ~43 GiB as Python lists, ~9 GiB compact). Same features as featurising the whole list (featurize is per example)."""
    features, offset, it = [], 0, iter(examples)
    while batch := list(islice(it, chunk)):
        for f in kind.featurize(batch, tokenizer, max_length, **kwargs):
            features.append({k: (v + offset if k == "example_index" else compact(v)) for k, v in f.items()})
        offset += len(batch)
    return features


def collate(features: list[dict], inputs: dict, pad_id: int = 0) -> dict[str, torch.Tensor]:
    """Pad the features of one batch to its longest sequence: a dict of tensors for the model (int64, or float32
    where the padding value is a float); sequences may be lists or arrays."""
    batch = {}
    for key, pad in inputs.items():
        if key not in features[0]:
            continue
        values = [f[key] for f in features]
        if pad is None:
            batch[key] = torch.tensor(values)
            continue
        pad = pad_id if key == "input_ids" else pad
        out = np.full((len(values), max(len(v) for v in values)), pad, dtype=np.float32 if isinstance(pad, float) else np.int64)
        for i, v in enumerate(values):
            out[i, : len(v)] = v
        batch[key] = torch.from_numpy(out)
    return batch
