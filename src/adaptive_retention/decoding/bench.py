"""The KV-cache retention bench: every eviction score on the same prefilled cache (issue 18).

Per sample the context is prefilled once into a full cache that records what every score reads; each (score,
compression) cuts a copy of it (`RetentionCache.compressed`), and the question is asked after compression
(query-agnostic, kvpress's protocol): the copies of one compression have the same size, so they answer in one batch
(each row's logits are its cache's alone up to float rounding: batched kernels sum in another order).
The question and answer then add their tokens uncompressed. Rows go to a progress file as each sample finishes, so
a killed cell resumes where it stopped; the finished cell is one TSV, written atomically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from tqdm import tqdm

from ..io import write_atomic
from .cache import RetentionCache, RetentionLayer, RetentionPolicy
from .defaults import budget_for
from .probes import Sample, correct, prompt_parts
from .scores import check_score

FULL = "full"  # the uncompressed cache's row
COLUMNS = ("probe", "length", "tokens", "sample", "depth", "method", "compression", "budget", "correct", "answer")


def stack(caches: list[RetentionCache], model) -> RetentionCache:
    """One batch from caches of equal size (each of batch 1); it evicts nothing more."""
    stacked = RetentionCache.full(model)
    for i, layer in enumerate(stacked.layers):
        parts = [c.layers[i] for c in caches]
        layer.lazy_initialization(parts[0].keys, parts[0].values)
        layer.keys = torch.cat([p.keys for p in parts])
        layer.values = torch.cat([p.values for p in parts])
        layer.positions = torch.cat([p.positions for p in parts])
        layer.seen = parts[0].seen
    return stacked


def prompt_ids(sample: Sample, tokenizer, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(context (1, T), question (1, q)) token ids: what is prefilled and compressed, and what is asked after it."""
    context_text, question_text = prompt_parts(sample, tokenizer)
    context = tokenizer(context_text, return_tensors="pt").input_ids.to(device)
    return context, tokenizer(question_text, add_special_tokens=False, return_tensors="pt").input_ids.to(device)


@torch.no_grad()
def prefilled(model, context: torch.Tensor, observe: tuple[str, ...], gates=None) -> RetentionCache:
    """The context read into a full cache that records what each score in `observe` reads: every (score,
    compression) is then a `compressed` copy of it."""
    full = RetentionCache.full(model, observe, gates)
    model(context, cache=full, logits_to_keep=1)
    return full


@torch.no_grad()
def greedy(model, cache: RetentionCache, question: torch.Tensor, new_tokens: int, eos: set[int],
           newline: set[int], blank: set[int]) -> list[list[int]]:
    """Greedy answers for every row of `cache` to the same question (1, q): at most `new_tokens` tokens each, a row
    ending at an end-of-sequence token or at a line break after some text (whitespace before the text is kept)."""
    rows = cache.layers[0].keys.shape[0]
    logits = model(question.expand(rows, -1), cache=cache, logits_to_keep=1).logits[:, -1]
    answers, finished = [[] for _ in range(rows)], [False] * rows
    for _ in range(new_tokens):
        token = logits.argmax(dim=-1)                                                           # (rows,)
        for row, t in enumerate(token.tolist()):
            if not finished[row]:
                finished[row] = t in eos or (t in newline and any(a not in blank for a in answers[row]))
                answers[row] += [] if finished[row] else [t]
        if all(finished):
            break
        logits = model(token[:, None], cache=cache, logits_to_keep=1).logits[:, -1]
    return answers


def whitespace_tokens(tokenizer) -> tuple[set[int], set[int]]:
    """(tokens that are whitespace with a line break, tokens that are whitespace only)."""
    text = {i: tokenizer.decode([i]) for i in range(len(tokenizer))}
    blank = {i for i, t in text.items() if t and not t.strip()}
    return {i for i in blank if "\n" in text[i]}, blank


def _read_progress(path: Path) -> dict[str, list[dict]]:
    """Rows already done, by sample id; a line cut short by a kill is dropped (its sample runs again)."""
    done = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows = json.loads(line)
            except json.JSONDecodeError:
                continue
            done[rows[0]["sample"]] = rows
    return done


def run_cell(model, tokenizer, samples: list[Sample], out: str | os.PathLike, methods: list[str],
             compressions: list[float], sinks: int, window: int, per_head: bool = False, seed: int = 0,
             length: int | None = None, quiet: bool = False, gates=None, full_row: bool = True) -> list[dict]:
    """Score every method at every compression on `samples`; rows (COLUMNS) to the TSV `out`. Method "learned"
    reads `gates` (`decoding.learned.CacheGates`). full_row=False leaves out the full cache's row (a learned cell
    beside the presses' cell, which has it)."""
    for name in methods:
        check_score(name)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    progress = out.with_name(out.name + ".progress.jsonl")
    done = _read_progress(progress)
    eos = {tokenizer.eos_token_id} - {None}
    newline, blank = whitespace_tokens(tokenizer)
    with open(progress, "a", encoding="utf-8") as log:
        for index, sample in enumerate(tqdm(samples, desc=out.stem, disable=quiet)):
            if sample.id in done:
                continue
            context, question = prompt_ids(sample, tokenizer, model.device)
            tokens = context.shape[1]
            full = prefilled(model, context, tuple(methods), gates)
            base = dict(probe=sample.probe, length=length or tokens, tokens=tokens, sample=sample.id, depth=sample.depth)
            runs = [(FULL, 0.0, tokens, [full.compressed(full.policy)])] if full_row else []
            for c in compressions:
                budget = budget_for(tokens, c, sinks + window)
                policies = [RetentionPolicy(budget, m, sinks, window, per_head, seed=seed * 1_000_003 + index)
                            for m in methods]
                runs += [(methods, c, budget, [full.compressed(p) for p in policies])]
            rows = []
            for names, c, budget, caches in runs:
                # stacked even alone: the question and answer add their tokens uncompressed, for every row
                answers = greedy(model, stack(caches, model), question, sample.max_new_tokens, eos, newline, blank)
                for name, answer in zip([names] if isinstance(names, str) else names, answers):
                    text = tokenizer.decode(answer, skip_special_tokens=True)
                    rows.append(dict(base, method=name, compression=c, budget=budget,
                                     correct=int(correct(sample, text)), answer=text))
            log.write(json.dumps(rows) + "\n")
            log.flush()
            done[sample.id] = rows
    rows = [row for sample in samples for row in done[sample.id]]
    write_atomic(out, tsv(rows, COLUMNS))
    progress.unlink()
    return rows


def tsv(rows: list[dict], columns: tuple[str, ...]) -> str:
    """The decoding outputs' one table format: a header, then one line per row (tabs and line breaks in values
    become spaces)."""
    clean = lambda v: str(v).replace("\t", " ").replace("\n", " ")
    return "\t".join(columns) + "\n" + "".join("\t".join(clean(r[c]) for c in columns) + "\n" for r in rows)

