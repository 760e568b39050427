"""`adaptive-retention` command line: one subcommand per stage."""

from __future__ import annotations

import argparse
import platform
import sys

import torch


def _bench(args) -> int:
    from transformers import AutoModel, AutoTokenizer

    from .backbones import resolve_model_path
    from .efficiency import throughput_table
    from .modeling import RetentionConfig

    torch.manual_seed(args.seed)
    path = resolve_model_path(args.model)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path)
    cfg = RetentionConfig(start_layer=args.start_layer, schedule=args.schedule)
    rows = throughput_table(model, tok.all_special_ids, tok.cls_token_id, tok.sep_token_id, args.lengths, args.ratios,
                            batch_size=args.batch_size, repeats=args.repeats, base_config=cfg)
    print(f"# {args.model} ({model.config.num_hidden_layers} layers, d={model.config.hidden_size}), inference, batch {args.batch_size}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"schedule={cfg.schedule} start_layer={cfg.start_layer}, median of {args.repeats} alternating repeats")
    print(f"{'length':>6} {'variant':>11} {'s/batch':>8} {'ex/s':>7} {'speedup':>8} {'FLOP ratio':>10} {'ideal':>6} {'share':>6}")
    for r in rows:
        print(f"{r['seq_len']:>6} {r['variant']:>11} {r['sec_per_batch']:>8.3f} {r['examples_per_s']:>7.1f} {r['speedup']:>7.2f}x "
              f"{r['flop_ratio']:>10.3f} {r['ideal_speedup']:>5.2f}x {r['share_of_ideal']:>6.0%}")
    return 0


def _data_stats(args) -> int:
    import numpy as np
    from transformers import AutoTokenizer

    from .backbones import resolve_model_path
    from .data import TASKS, DataError, load_examples, subsample
    from .tasks import token_lengths

    tok = AutoTokenizer.from_pretrained(resolve_model_path(args.model))
    tok.model_max_length = 10**9  # count, do not truncate
    print(f"# token lengths under {args.model}'s tokenizer (special tokens included); source={args.source}, data_dir={args.data_dir}; "
          f"lengths over at most {args.max_examples} examples of each split (seeded sample)")
    print(f"{'task':<15} {'kind':<14} {'train':>6} {'eval':>6} {'median':>7} {'p95':>7} {'max':>7}  origin")
    for task in args.tasks or sorted(TASKS):
        spec = TASKS[task] if task in TASKS else None
        try:
            train, ev = (load_examples(task, s, args.source, args.data_dir) for s in ("train", "eval"))
        except DataError as e:
            print(f"{task:<15} {spec.kind if spec else '?':<14} unavailable: {e}")
            continue
        sample = [e for part in (train, ev) for e in subsample(part.examples, args.max_examples, 0, stratify=False)]
        lengths = np.array(token_lengths(sample, spec.kind, tok))
        print(f"{task:<15} {spec.kind:<14} {len(train.examples):>6} {len(ev.examples):>6} {np.median(lengths):>7.0f} "
              f"{np.percentile(lengths, 95):>7.0f} {lengths.max():>7}  {ev.origin}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="adaptive-retention", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bench", help="inference throughput of the plain model vs retention at several ratios")
    b.add_argument("--model", default="minilm", help="folder, hub id, or 'minilm' (the offline all-MiniLM-L6-v2)")
    b.add_argument("--lengths", type=int, nargs="+", default=[128, 512])
    b.add_argument("--ratios", type=float, nargs="+", default=[1.0, 0.5, 0.3])
    b.add_argument("--batch-size", type=int, default=32)
    b.add_argument("--repeats", type=int, default=5)
    b.add_argument("--start-layer", type=int, default=1)
    b.add_argument("--schedule", default="constant")
    b.add_argument("--seed", type=int, default=0)
    b.set_defaults(func=_bench)
    d = sub.add_parser("data-stats", help="examples per split and token-length distribution of each task")
    d.add_argument("--tasks", nargs="*", help="task ids (default: all)")
    d.add_argument("--source", default="auto", help="auto | local | hub")
    d.add_argument("--data-dir", default="../shared/data", help="folder of local mirrors")
    d.add_argument("--model", default="minilm")
    d.add_argument("--max-examples", type=int, default=5000)
    d.set_defaults(func=_data_stats)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as e:
        print(f"adaptive-retention {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
