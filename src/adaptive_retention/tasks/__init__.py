"""Task kinds: examples → features, the head, predictions → metric. One module per kind."""

from __future__ import annotations

from types import ModuleType

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
