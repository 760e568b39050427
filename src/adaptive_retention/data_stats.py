"""Token lengths of each task's examples under a backbone's tokenizer: what `max_length` cuts or windows."""

from __future__ import annotations


def data_stats(args) -> int:
    """`adaptive-retention data-stats`: examples per split and the token-length distribution of each task."""
    import numpy as np
    from transformers import AutoTokenizer

    from .backbones import resolve_model_path
    from .config import SPLITS
    from .data import TASKS, DataError, load_examples, subsample
    from .tasks import token_lengths

    tok = AutoTokenizer.from_pretrained(resolve_model_path(args.model))
    tok.model_max_length = 10**9  # count, do not truncate
    print(f"# token lengths under {args.model}'s tokenizer (special tokens included); source={args.source}, data_dir={args.data_dir}; "
          f"lengths over at most {args.max_examples} examples of each split (seeded sample)")
    print(f"{'task':<15} {'kind':<14} {'train':>6} {'dev':>6} {'eval':>6} {'median':>7} {'p95':>7} {'max':>7}  origin")
    for task in args.tasks or sorted(TASKS):
        spec = TASKS[task] if task in TASKS else None
        try:
            train, dev, ev = (load_examples(task, s, args.source, args.data_dir) for s in SPLITS)
        except DataError as e:
            print(f"{task:<15} {spec.kind if spec else '?':<14} unavailable: {e}")
            continue
        sample = [e for part in (train, dev, ev) for e in subsample(part.examples, args.max_examples, 0, stratify=False)]
        lengths = np.array(token_lengths(sample, spec.kind, tok))
        print(f"{task:<15} {spec.kind:<14} {len(train.examples):>6} {len(dev.examples):>6} {len(ev.examples):>6} {np.median(lengths):>7.0f} "
              f"{np.percentile(lengths, 95):>7.0f} {lengths.max():>7}  {ev.origin}")
    return 0
