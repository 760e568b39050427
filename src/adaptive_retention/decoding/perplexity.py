"""Streaming perplexity under a budgeted cache (issue 18): long real documents — arXiv papers and CUAD contracts from
the local mirrors — read in chunks through a RetentionCache that is cut back to M entries after every chunk, so
eviction happens while the text streams, not once after a prompt.

Each document's per-token negative log-likelihood is scored over the tokens read once the cache is full (positions
≥ M, where eviction can matter); the full cache is scored on the same tokens, so every comparison is paired by
document. A chunk of c tokens attends to at most M + c − 1 entries (chunk 1: token by token, for a GPU).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..data import read_jsonl
from ..io import write_atomic
from .bench import FULL, tsv
from .cache import KEEP_ALL, RetentionCache, RetentionPolicy
from .defaults import budget_for

SOURCES = {"arxiv": ("arxiv-unarxive-sample/test.jsonl.gz", "text", "arxiv_id"),
           "cuad": ("cuad-qa/test.jsonl.xz", "context", "title")}  # = defaults.DOCUMENT_SOURCES: (file under data_dir, text, id fields)
PPL_COLUMNS = ("source", "document", "tokens", "method", "compression", "budget", "scored", "nll")


def documents(data_dir: str | os.PathLike, source: str, tokenizer, length: int, n: int) -> list[tuple[str, torch.Tensor]]:
    """The first `n` documents (by id) of at least `length` tokens, cut to `length`: (id, ids (1, length))."""
    if source not in SOURCES:
        raise ValueError(f"unknown document source {source!r}; choose from {sorted(SOURCES)}")
    file, text_field, id_field = SOURCES[source]
    records = {r[id_field]: r[text_field] for r in read_jsonl(Path(data_dir) / file, (text_field, id_field))}
    chosen = []
    for doc_id in sorted(records):
        ids = tokenizer(records[doc_id], return_tensors="pt").input_ids
        if ids.shape[1] >= length:
            chosen.append((doc_id, ids[:, :length]))
        if len(chosen) == n:
            break
    return chosen


@torch.no_grad()
def token_nll(model, ids: torch.Tensor, policy: RetentionPolicy, chunk: int, gates=None) -> torch.Tensor:
    """Per-token NLL (length − 1,) of predicting token t + 1, reading `ids` in chunks through a cache under `policy`."""
    cache = RetentionCache(model, policy, gates=gates)
    ids = ids.to(model.device)
    losses = []
    for start in range(0, ids.shape[1] - 1, chunk):
        piece, targets = ids[:, start:start + chunk], ids[0, start + 1:start + chunk + 1]
        logits = model(piece, cache=cache).logits[0, :targets.shape[0]]
        losses.append(F.cross_entropy(logits.float(), targets, reduction="none"))
    return torch.cat(losses).cpu()


def run_perplexity(model, tokenizer, data_dir, sources: list[str], length: int, n: int, methods: list[str],
                   compressions: list[float], sinks: int, window: int, chunk: int, out: str | os.PathLike,
                   seed: int = 0, quiet: bool = False, gates=None) -> list[dict]:
    rows = []
    for source in sources:
        for doc_id, ids in tqdm(documents(data_dir, source, tokenizer, length, n), desc=f"perplexity {source}", disable=quiet):
            full = token_nll(model, ids, KEEP_ALL, chunk)
            for c in compressions:
                budget = budget_for(length, c, sinks + window)
                scored = slice(budget - 1, None)  # predictions of tokens at positions ≥ M
                base = dict(source=source, document=doc_id, tokens=length, compression=c, budget=budget,
                            scored=int(full[scored].numel()))
                rows.append(dict(base, method=FULL, nll=float(full[scored].mean())))
                for m in methods:
                    nll = token_nll(model, ids, RetentionPolicy(budget, m, sinks, window, seed=seed), chunk, gates)
                    rows.append(dict(base, method=m, nll=float(nll[scored].mean())))
    write_atomic(out, tsv(rows, PPL_COLUMNS))
    return rows
