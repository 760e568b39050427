"""The decoding subcommands' bodies: `decode-bench` (one probe × length cell), `decode-cost`, `decode-perplexity`,
`decode-train` and `decode-heldout`."""

from __future__ import annotations

import math
from pathlib import Path

from ..io import check_writable, write_atomic
from .bench import run_cell, tsv
from .defaults import LEARNED
from .cost import COST_COLUMNS, decode_cost
from .models import load_causal_lm
from .probes import make_probe


def gates_of(args):
    """The trained gates when --methods names the learned score (checked before any model loads), else None."""
    if LEARNED not in args.methods:
        return None
    if not args.gates:
        raise ValueError(f"score {LEARNED!r} needs --gates (decode-train's output)")
    from .learned import CacheGates

    return CacheGates.load(args.gates)


def bench_command(args) -> int:
    check_writable(args.out)
    if args.probe == "qa" and not Path(args.squad_file).is_file():
        raise FileNotFoundError(f"probe 'qa' reads SQuAD from --squad-file {args.squad_file}: no such file")
    gates = gates_of(args)
    model, tokenizer = load_causal_lm(args.model)
    samples = make_probe(args.probe, tokenizer, args.length, args.samples, args.seed, args.squad_file)
    rows = run_cell(model, tokenizer, samples, args.out, args.methods, args.compressions, args.sinks, args.window,
                    args.per_head, args.seed, length=args.length, quiet=args.quiet,
                    gates=None if gates is None else gates.to(model.device), full_row=not args.no_full)
    for method in dict.fromkeys(r["method"] for r in rows):
        for c in sorted({r["compression"] for r in rows if r["method"] == method}):
            cell = [r["correct"] for r in rows if r["method"] == method and r["compression"] == c]
            print(f"{args.probe} {args.length} {method:>13} @ {c:.3f}: {sum(cell)}/{len(cell)}")
    return 0


def cost_command(args) -> int:
    import torch

    if args.out:
        check_writable(args.out)
    torch.set_grad_enabled(False)
    gates = gates_of(args)
    model, tokenizer = load_causal_lm(args.model)
    rows = decode_cost(model, len(tokenizer), args.lengths, args.methods, args.compressions, args.sinks, args.window,
                       args.tokens, args.repeats, args.seed, args.quiet, gates=None if gates is None else gates.to(model.device))
    table = tsv(rows, COST_COLUMNS)
    print(table, end="")
    if args.out:
        write_atomic(args.out, table)
    return 0


def perplexity_command(args) -> int:
    from .perplexity import run_perplexity

    check_writable(args.out)
    gates = gates_of(args)
    model, tokenizer = load_causal_lm(args.model)
    rows = run_perplexity(model, tokenizer, args.data_dir, args.sources, args.length, args.documents, args.methods,
                          args.compressions, args.sinks, args.window, args.chunk, args.out, args.seed, args.quiet,
                          gates=None if gates is None else gates.to(model.device))
    for c in sorted({r["compression"] for r in rows}):
        for method in dict.fromkeys(r["method"] for r in rows):
            nll = [r["nll"] for r in rows if r["method"] == method and r["compression"] == c]
            print(f"perplexity @ {c:.3f} {method:>13}: {math.exp(sum(nll) / len(nll)):.2f} ({len(nll)} documents)")
    return 0


def train_command(args) -> int:
    """decode-train: the corpus (its manifest beside the gates), then the resumable training."""
    import json
    from dataclasses import fields

    from .corpus import windows
    from .train import train_gates
    from .train_config import TrainConfig

    check_writable(args.out)
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    cfg.target(args.length)  # a window with room for the gates, before any work
    model, tokenizer = load_causal_lm(args.model)
    split, manifest = windows(args.data_dir, tokenizer, args.length, tuple(args.sources), args.exclude_length,
                              args.exclude_documents, cfg.seed, args.per_source)
    write_atomic(args.out + ".corpus.json", json.dumps(manifest, indent=1))
    train_gates(model, split["train"], split["held_out"], cfg, args.out, args.quiet)
    return 0


HELDOUT_COLUMNS = ("gates", "window", "kl", "recall_kl", "kept")


def heldout_command(args) -> int:
    """decode-heldout: each gate set on the first --windows held-out windows of the corpus decode-train reads (same
    corpus options; the same windows for every seed), one row per gate set and window — the held-out split is where
    gate sets are chosen."""
    from .corpus import windows
    from .learned import CacheGates
    from .train import held_out_rows
    from .train_config import TrainConfig

    check_writable(args.out)
    cfg = TrainConfig(sinks=args.sinks, window=args.window, kl_tokens=args.kl_tokens,
                      copy_length=args.copy_length, gate=args.gate)
    cfg.target(args.length)
    gate_sets = {path: CacheGates.load(path) for path in args.gates}  # every file read before the model loads
    model, tokenizer = load_causal_lm(args.model)
    split, _ = windows(args.data_dir, tokenizer, args.length, tuple(args.sources), args.exclude_length,
                       args.exclude_documents, cfg.seed, args.per_source)
    held = split["held_out"][:args.windows]
    if not held:
        raise ValueError(f"no held-out window of {args.length} tokens in {args.data_dir} (sources {args.sources})")
    rows = []
    per_set = held_out_rows(model, [g.to(model.device) for g in gate_sets.values()], held, cfg, quiet=args.quiet)
    for path, scored in zip(gate_sets, per_set):
        rows += [dict(gates=path, window=i, **r) for i, r in enumerate(scored)]
        mean = lambda key: sum(r[key] for r in scored) / len(scored)
        print(f"{path}: KL {mean('kl'):.4f}, recall KL {mean('recall_kl'):.4f}, kept {mean('kept'):.4f} ({len(held)} windows)")
    write_atomic(args.out, tsv(rows, HELDOUT_COLUMNS))
    return 0
