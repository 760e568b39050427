"""Training text for the learned cache (issue 19): windows of `length` tokens cut from long real documents in the
local mirrors — arXiv papers, CUAD contracts, IMDb training reviews concatenated to length — never the probes'
templates, and never a document that streaming perplexity scores (`perplexity.documents` with the evaluation's
length and count: those ids are excluded here and listed in the manifest).

Documents, not windows, are split: every `HELD_OUT`-th document of each source (by sorted id) goes to the held-out
split (the KL curve), so no held-out window shares a document with a training one. Windows of the sources alternate
(arXiv, CUAD, IMDb, arXiv, …) in a seeded order within each source; the held-out windows' order is the same for every
seed, so every run's trace and `decode-heldout` score the same windows and runs of different seeds compare on them.

`with_copy` is the recall pressure (`TrainConfig.copy_spans`): ordinary text rarely needs a token again hundreds of
positions later, so gates trained on it alone learn to drop what a retrieval needs (they keep none of the passkey's
digits in layers 0–2 and 27–28 of SmolLM2, `scripts/learned_ranks.py`). A span of the window repeated verbatim in its scored tail makes the KL depend on that span being
kept; which span is repeated is random, so the gates can only learn which tokens are worth keeping in case they are.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import torch

from ..data import read_jsonl
from .perplexity import SOURCES, documents
from .train_config import CORPORA

IMDB = ("imdb/train.jsonl.gz", "text")
HELD_OUT = 10  # every 10th document of a source (by sorted id) is held out
HELD_OUT_ORDER = "held-out"  # the held-out windows' shuffle, one for every seed


def _texts(data_dir: Path, source: str) -> dict[str, str]:
    """id → text of a source's documents (IMDb: the reviews, ids by line, each a short document)."""
    if source == "imdb":
        file, field = IMDB
        return {f"{i:05d}": r[field] for i, r in enumerate(read_jsonl(data_dir / file, (field,)))}
    file, text_field, id_field = SOURCES[source]
    texts: dict[str, str] = {}
    for r in read_jsonl(data_dir / file, (text_field, id_field)):
        texts.setdefault(r[id_field], r[text_field])  # CUAD repeats each contract once per question
    return texts


def windows(data_dir: str | os.PathLike, tokenizer, length: int, sources: tuple[str, ...] = CORPORA,
            exclude_length: int = 1024, exclude_documents: int = 8, seed: int = 0, per_source: int | None = None
            ) -> tuple[dict[str, list[torch.Tensor]], dict]:
    """({"train": [ids (length,)], "held_out": [...]}, manifest). `exclude_*`: the streaming-perplexity evaluation
    whose documents never enter (its length and document count). `per_source` caps each source's windows."""
    data_dir = Path(data_dir)
    unknown = sorted(set(sources) - set(CORPORA))
    if unknown:
        raise ValueError(f"unknown training source(s) {unknown}; choose from {list(CORPORA)}")
    rng = random.Random(f"corpus-{seed}")
    split: dict[str, list[list[torch.Tensor]]] = {"train": [], "held_out": []}
    manifest = {"length": length, "excluded": {}, "documents": {}}
    for source in sources:
        texts = _texts(data_dir, source)
        excluded = set() if source == "imdb" else {doc for doc, _ in documents(data_dir, source, tokenizer,
                                                                                   exclude_length, exclude_documents)}
        manifest["excluded"][source] = sorted(excluded)
        kept = [doc for doc in sorted(texts) if doc not in excluded]
        parts = {"train": [d for i, d in enumerate(kept) if i % HELD_OUT], "held_out": kept[::HELD_OUT]}
        for name, docs in parts.items():
            cut = _cut(tokenizer, [texts[d] for d in docs], length, joined=source == "imdb", limit=per_source)
            order = list(range(len(cut)))
            rng.shuffle(order)  # the seed's stream draws for both splits: every seed's training order as it always was
            if name == "held_out":  # but one held-out order for every seed
                order.sort()
                random.Random(f"{HELD_OUT_ORDER}-{source}").shuffle(order)
            cut = [cut[i] for i in order]
            split[name].append(cut[:per_source] if per_source else cut)
            manifest["documents"][f"{source}/{name}"] = dict(documents=len(docs), windows=len(split[name][-1]),
                                                             ids=[] if source == "imdb" else docs)
    return {name: _interleave(per) for name, per in split.items()}, manifest


def with_copy(ids: torch.Tensor, tail: int, span: int, start: int, generator: torch.Generator
              ) -> tuple[torch.Tensor, int]:
    """(ids with ids[src:src+span] written over ids[dst:dst+span], dst): src uniform in [start, T − tail − span], dst
    uniform in the last `tail` positions; the original is untouched. ids (T,)."""
    length = ids.shape[-1]
    if start + span > length - tail or span > tail:
        raise ValueError(f"no room for a {span}-token copy in {length} tokens (source from {start}, into the last {tail})")
    pick = lambda lo, hi: int(torch.randint(lo, hi + 1, (1,), generator=generator))
    src, dst = pick(start, length - tail - span), pick(length - tail, length - span)
    out = ids.clone()
    out[dst:dst + span] = ids[src:src + span]
    return out, dst


def _cut(tokenizer, texts: list[str], length: int, joined: bool, limit: int | None = None) -> list[torch.Tensor]:
    """Non-overlapping windows of `length` tokens from each text (joined: the texts concatenated, separated by a
    blank line, read only until `limit` windows are full)."""
    encode = lambda text: tokenizer(text, add_special_tokens=False).input_ids
    if joined:
        stream, separator = [], encode("\n\n")
        for text in texts:
            stream += encode(text) + separator
            if limit and len(stream) >= limit * length:
                break
        streams = [stream]
    else:
        streams = [encode(text) for text in texts]
    out = []
    for ids in map(torch.tensor, streams):
        out += [ids[i:i + length] for i in range(0, len(ids) - length + 1, length)]
    return out


def _interleave(per_source: list[list[torch.Tensor]]) -> list[torch.Tensor]:
    """Round-robin over the sources until each runs out."""
    out = []
    for i in range(max((len(s) for s in per_source), default=0)):
        out += [s[i] for s in per_source if i < len(s)]
    return out
