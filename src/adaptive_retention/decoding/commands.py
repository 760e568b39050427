"""The decoding subcommands' bodies: `decode-bench` (one probe × length cell) and `decode-cost`."""

from __future__ import annotations

import math
from pathlib import Path

from ..io import check_writable, write_atomic
from .bench import run_cell, tsv
from .cost import COST_COLUMNS, decode_cost
from .models import load_causal_lm
from .probes import make_probe


def bench_command(args) -> int:
    check_writable(args.out)
    if args.probe == "qa" and not Path(args.squad_file).is_file():
        raise FileNotFoundError(f"probe 'qa' reads SQuAD from --squad-file {args.squad_file}: no such file")
    model, tokenizer = load_causal_lm(args.model)
    samples = make_probe(args.probe, tokenizer, args.length, args.samples, args.seed, args.squad_file)
    rows = run_cell(model, tokenizer, samples, args.out, args.methods, args.compressions, args.sinks, args.window,
                    args.per_head, args.seed, length=args.length, quiet=args.quiet)
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
    model, tokenizer = load_causal_lm(args.model)
    rows = decode_cost(model, len(tokenizer), args.lengths, args.methods, args.compressions, args.sinks, args.window,
                       args.tokens, args.repeats, args.seed, args.quiet)
    table = tsv(rows, COST_COLUMNS)
    print(table, end="")
    if args.out:
        write_atomic(args.out, table)
    return 0


def perplexity_command(args) -> int:
    from .perplexity import run_perplexity

    check_writable(args.out)
    model, tokenizer = load_causal_lm(args.model)
    rows = run_perplexity(model, tokenizer, args.data_dir, args.sources, args.length, args.documents, args.methods,
                          args.compressions, args.sinks, args.window, args.chunk, args.out, args.seed, args.quiet)
    for c in sorted({r["compression"] for r in rows}):
        for method in dict.fromkeys(r["method"] for r in rows):
            nll = [r["nll"] for r in rows if r["method"] == method and r["compression"] == c]
            print(f"perplexity @ {c:.3f} {method:>13}: {math.exp(sum(nll) / len(nll)):.2f} ({len(nll)} documents)")
    return 0
