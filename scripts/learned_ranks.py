"""Where trained cache gates put a probe's answer: per layer, the share of the answer's context tokens that the learned
cache keeps at prefill (top-M by log α beyond the sinks and the recent window, as `cache.evict` does; per-KV-head
gates: the mean over the layer's heads). A diagnostic of
why a learned cache fails or succeeds on a probe; it reads gates, it never trains. Use the calibration probe seed (7),
not the evaluation seed (0).

    .venv/bin/python scripts/learned_ranks.py GATES [GATES ...] [--probe passkey] [--length 1024] [--samples 20]
        [--seed 7] [--compression 0.5] [--tokens answer|cue] > ranks.tsv
"""

from __future__ import annotations

import argparse
import sys

import torch

from adaptive_retention.decoding.cache import attention_modules, hook_hidden_states
from adaptive_retention.decoding.defaults import MODEL, SINKS, WINDOW, budget_for
from adaptive_retention.decoding.learned import CacheGates
from adaptive_retention.decoding.models import load_causal_lm
from adaptive_retention.decoding.probes import make_probe, prompt_parts


def answer_positions(tokenizer, context: str, answers: tuple[str, ...], tokens: str = "answer",
                     add_special_tokens: bool = False) -> tuple[torch.Tensor, list[int]]:
    """(ids (1, T), positions of the tokens asked for): `answer` — every token overlapping an occurrence of an answer
    string in the context; `cue` — the rest of each sentence holding one ("The pass key is ·", "· is the pass key",
    "One of the special magic numbers for W is: ·"), what a retrieval has to find the answer by. Special tokens, when
    added, have empty offsets: never an answer's."""
    encoded = tokenizer(context, return_offsets_mapping=True, add_special_tokens=add_special_tokens)
    spans, positions = [], []
    for answer in answers:
        start = context.find(answer)
        while start >= 0:
            end = start + len(answer)
            if tokens == "answer":
                spans.append((start, end))
            else:  # the sentence around it, the answer left out
                spans += [(context.rfind(". ", 0, start) + 2, start), (end, context.find(".", end))]
            start = context.find(answer, start + 1)
    for i, (a, b) in enumerate(encoded.offset_mapping):
        if any(a < end and b > begin for begin, end in spans):
            positions.append(i)
    return torch.tensor(encoded.input_ids)[None], positions


@torch.no_grad()
def log_alphas(model, gates: CacheGates, ids: torch.Tensor) -> list[torch.Tensor]:
    """Each layer's log α (heads, T) for the tokens of `ids`, from the hidden states entering its attention."""
    out = []
    hook = lambda module, args, kwargs: out.append(gates(module.layer_idx, hook_hidden_states(args, kwargs))[0])
    handles = [m.register_forward_pre_hook(hook, with_kwargs=True) for m in attention_modules(model)]
    try:
        model(ids)
    finally:
        for h in handles:
            h.remove()
    return out


def probe_arguments(p: argparse.ArgumentParser, samples: int) -> None:
    """The options the learned-cache diagnostics share: the model, and which calibration samples at what compression
    (the probes whose answer stands in the context; QA's needs its SQuAD file)."""
    p.add_argument("--model", default=MODEL)
    p.add_argument("--probe", default="passkey", choices=("passkey", "multikey", "vt"))
    p.add_argument("--length", type=int, default=1024)
    p.add_argument("--samples", type=int, default=samples)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--compression", type=float, default=0.5)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("gates", nargs="+")
    probe_arguments(p, samples=20)
    p.add_argument("--tokens", default="answer", choices=("answer", "cue"), help="the answer's tokens, or its sentence's others")
    args = p.parse_args(argv)
    model, tokenizer = load_causal_lm(args.model)
    samples = make_probe(args.probe, tokenizer, args.length, args.samples, args.seed)
    print("gates\tlayer\tanswer_tokens\tkept_share")
    for path in args.gates:
        gates = CacheGates.load(path)
        kept = torch.zeros(gates.config["layers"])
        total = 0
        for sample in samples:
            ids, positions = answer_positions(tokenizer, prompt_parts(sample, tokenizer)[0], sample.answers, args.tokens)
            length = ids.shape[-1]
            free = budget_for(length, args.compression, SINKS + WINDOW) - SINKS - WINDOW
            gated = torch.arange(SINKS, length - WINDOW)                 # positions competing for the free slots
            inside = [q for q in positions if SINKS <= q < length - WINDOW]
            for layer, heads in enumerate(log_alphas(model, gates, ids)):
                for scores in heads:  # per-KV-head gates: each head keeps its own top; the share is their mean
                    top = set(gated[scores[gated].topk(free).indices].tolist())
                    kept[layer] += sum(q in top for q in inside) / len(heads)
            total += len(inside)
        for layer, k in enumerate(kept.tolist()):
            print(f"{path}\t{layer}\t{total}\t{k / max(total, 1):.3f}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
