"""`adaptive-retention` command line: one subcommand per stage."""

from __future__ import annotations

import argparse
import json
import platform
import sys

import torch


def _bench_setup(args):
    """The backbone (AutoModel), its tokenizer ids and the retention config the benchmarks time."""
    from transformers import AutoModel, AutoTokenizer

    from .backbones import resolve_model_path
    from .modeling import RetentionConfig

    torch.manual_seed(args.seed)
    path = resolve_model_path(args.model)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, attn_implementation=args.attn)
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device)
    model = model.to(device)
    cfg = RetentionConfig(start_layer=args.start_layer, schedule=args.schedule)
    return model, tok, cfg


def _hardware(model, args) -> str:
    device = next(model.parameters()).device
    hw = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    return (f"{args.model} ({model.config.num_hidden_layers} layers, d={model.config.hidden_size}), {device.type} [{hw}], fp32, "
            f"attention {args.attn}, torch {torch.__version__}, schedule={args.schedule} start_layer={args.start_layer}")


def _progress(quiet: bool):
    return (lambda msg: None) if quiet else (lambda msg: print(f"  … {msg}", file=sys.stderr, flush=True))


def _write_tsv(path: str, rows: list[dict], **extra) -> None:
    import pandas as pd

    from .checkpoint import write_atomic

    write_atomic(path, pd.DataFrame(rows).assign(**extra).to_csv(sep="\t", index=False))


def _bench(args) -> int:
    from .efficiency import MODES, measure

    for m in args.modes:
        if m not in MODES:
            raise ValueError(f"unknown mode {m!r}; allowed: {list(MODES)}")
    model, tok, cfg = _bench_setup(args)
    rows = measure(model, tok.all_special_ids, tok.cls_token_id, tok.sep_token_id, args.lengths, args.ratios, modes=args.modes,
                   selectors=args.selectors, batch_size=args.batch_size, repeats=args.repeats, memory=not args.no_memory,
                   flops=not args.no_flops, base_config=cfg, seed=args.seed, progress=_progress(args.quiet))
    hardware = _hardware(model, args)
    print(f"# {hardware}; batch {args.batch_size}; median of {args.repeats} alternating repeats")
    print(f"{'mode':>10} {'T':>5} {'variant':>18} {'s/batch':>8} {'s/1k tok':>8} {'ex/s':>7} {'speedup':>8} {'ideal':>6} {'share':>6}"
          f" {'peak MiB':>9} {'mem −':>6} {'FLOPs':>9} {'counted/analytic':>16}")
    for r in rows:
        mem = f"{r['peak_mem_bytes'] / 2**20:>9.1f} {r['mem_reduction']:>6.0%}" if "peak_mem_bytes" in r else f"{'-':>9} {'-':>6}"
        agree = f"{r['counted_flops'] / r['analytic_flops'] - 1:>+15.2%}" if "counted_flops" in r else f"{'-':>16}"
        print(f"{r['mode']:>10} {r['seq_len']:>5} {r['variant']:>18} {r['sec_per_batch']:>8.3f} {r['sec_per_1k_tokens']:>8.4f} "
              f"{r['examples_per_s']:>7.1f} {r['speedup']:>7.2f}x {r['ideal_speedup']:>5.2f}x {r['share_of_ideal']:>6.0%} {mem} "
              f"{r['analytic_flops'] / 1e9:>8.1f}G {agree}")
    for line in _targets(rows):
        print(line)
    if args.out:
        _write_tsv(args.out, rows, hardware=hardware, repeats=args.repeats)
    return 0


def _targets(rows: list[dict]) -> list[str]:
    """The efficiency issue's targets at the longest length and ratio 0.3 (and the same figures at 0.5)."""
    out, T = [], max(r["seq_len"] for r in rows)
    pick = {(r["mode"], r["variant"]): r for r in rows if r["seq_len"] == T}
    for ratio in (0.3, 0.5):
        inf, trn = pick.get(("inference", f"learned@{ratio}")), pick.get(("train_step", f"learned@{ratio}"))
        checks = []
        if inf:
            checks += [("inference throughput ≥ 1.8× full", inf["speedup"], inf["speedup"] >= 1.8, "{:.2f}×"),
                       ("achieved ≥ 80 % of the FLOP-ideal speed-up", inf["share_of_ideal"], inf["share_of_ideal"] >= 0.8, "{:.0%}")]
            if "mem_reduction" in inf:
                checks.append(("inference peak activation memory (reported)", inf["mem_reduction"], None, "{:.0%} below full"))
        if trn and "mem_reduction" in trn:
            checks.append(("training-step peak memory ≥ 40 % below full", trn["mem_reduction"], trn["mem_reduction"] >= 0.4, "{:.0%}"))
        for name, value, ok, fmt in checks:
            verdict = "report" if ok is None else ("PASS" if ok else "MISS")
            out.append(f"TARGET T={T} ratio={ratio}: {name}: {fmt.format(value)} [{verdict if ratio == 0.3 or ok is None else 'report'}]")
    floor = [r for r in rows if r["variant"] == "plain-copy"]
    if floor:
        out.append("noise floor (plain copy vs plain): " + ", ".join(f"{r['mode']} T={r['seq_len']} {r['speedup']:.2f}×" for r in floor))
    flops = [abs(r["counted_flops"] / r["analytic_flops"] - 1) for r in rows if "counted_flops" in r]
    if flops:
        out.append(f"FLOPs: FlopCounterMode vs analytic, worst disagreement {max(flops):.2%} [{'PASS' if max(flops) <= 0.05 else 'MISS'} ≤ 5 %]")
    return out


def _bench_sweep(args) -> int:
    import json as _json

    from .checkpoint import write_atomic
    from .efficiency import fit_exponent, long_encoder_like, measure

    model, tok, cfg = _bench_setup(args)
    limit = model.config.max_position_embeddings
    long_model = long_encoder_like(model, max(args.lengths)) if max(args.lengths) > limit else None
    rows = []
    for T in args.lengths:
        m = model if T <= limit else long_model
        for r in measure(m, tok.all_special_ids, tok.cls_token_id, tok.sep_token_id, [T], args.ratios, modes=args.modes, selectors=(),
                         batch_size=args.batch_size, repeats=args.repeats, flops=False, base_config=cfg, seed=args.seed,
                         progress=_progress(args.quiet)):
            rows.append({**r, "weights": "pretrained" if T <= limit else "random-init, same shape"})
    fits = []
    for mode in args.modes:
        for variant in ["plain"] + [f"learned@{r}" for r in args.ratios]:
            sel = [r for r in rows if r["mode"] == mode and r["variant"] == variant]
            for quantity in ("sec_per_batch", "peak_mem_bytes"):
                fit = fit_exponent([r["seq_len"] for r in sel], [r[quantity] for r in sel])
                fits.append({"mode": mode, "variant": variant, "quantity": quantity, **fit})
    hardware = _hardware(model, args)
    print(f"# length sweep: {hardware}; batch {args.batch_size}; beyond {limit} tokens a random-init encoder of the same shape")
    print(f"{'mode':>10} {'T':>5} {'variant':>12} {'s/batch':>8} {'peak MiB':>9}")
    for r in rows:
        if r["variant"] != "plain-copy":
            print(f"{r['mode']:>10} {r['seq_len']:>5} {r['variant']:>12} {r['sec_per_batch']:>8.3f} {r['peak_mem_bytes'] / 2**20:>9.1f}")
    print(f"{'mode':>10} {'variant':>12} {'quantity':>15} {'exponent':>9} {'95% CI':>16} {'R²':>5}")
    for f in fits:
        print(f"{f['mode']:>10} {f['variant']:>12} {f['quantity']:>15} {f['exponent']:>9.2f} [{f['ci_low']:>6.2f}, {f['ci_high']:>6.2f}] {f['r2']:>5.2f}")
    if args.out:
        _write_tsv(args.out, rows, hardware=hardware, repeats=args.repeats)
    if args.fit:
        write_atomic(args.fit, _json.dumps({"hardware": hardware, "lengths": args.lengths, "fits": fits}, indent=2))
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


def _make_tiny_model(args) -> int:
    from transformers import AutoTokenizer, BertConfig, BertModel

    from .backbones import resolve_model_path

    torch.manual_seed(args.seed)
    tok = AutoTokenizer.from_pretrained(resolve_model_path("minilm"))
    model = BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=args.hidden, num_hidden_layers=args.layers,
                                 num_attention_heads=2, intermediate_size=2 * args.hidden, max_position_embeddings=512))
    model.save_pretrained(args.out)
    tok.save_pretrained(args.out)
    print(f"wrote a random {args.layers}-layer BERT (d={args.hidden}) to {args.out}")
    return 0


def _parse_sets(pairs: list[str]) -> dict:
    """key=value pairs (values parsed as YAML) into a nested dict; dotted keys nest (retention.ratio=0.3)."""
    import yaml

    out: dict = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ValueError(f"--set expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        try:  # JSON first: PyYAML reads 3e-05 (no dot) as a string
            node[leaf] = json.loads(value)
        except json.JSONDecodeError:
            node[leaf] = yaml.safe_load(value)
    return out


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out.get(k) or {}, v) if isinstance(v, dict) and isinstance(out.get(k), (dict, type(None))) else v
    return out


def _train(args) -> int:
    import yaml

    from .train import TrainConfig, train

    cfg: dict = {}
    if args.config:
        try:
            cfg = yaml.safe_load(open(args.config)) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ValueError(f"cannot read training config {args.config}: {e}") from None
    cfg = _merge(cfg, _parse_sets(args.set))
    if args.task:
        cfg["task"] = args.task
    if args.seed is not None:
        cfg["seed"] = args.seed
    if args.ratio is not None:
        cfg["retention"] = {**(cfg.get("retention") or {}), "ratio": args.ratio}
    if args.full:
        cfg["retention"] = None
    if "task" not in cfg:
        raise ValueError("no task given (--task or 'task:' in --config)")
    summary = train(TrainConfig.from_dict(cfg), args.out, progress=not args.quiet)
    print(f"trained {summary['task']} ({summary['steps']} steps) -> {args.out}/model; final kept {summary['final_kept']}")
    return 0


def _evaluate(args) -> int:
    from .evaluate import evaluate

    methods = args.methods
    if args.plan:
        try:
            methods = json.loads(args.plan)
        except json.JSONDecodeError as e:
            raise ValueError(f"--plan is not JSON ({e}): {args.plan!r}") from None
        if not isinstance(methods, dict):
            raise ValueError(f"--plan must map method -> list of ratios, got {args.plan!r}")
    results = evaluate(args.checkpoint, methods, args.ratios, args.out, split=args.split, data_file=args.data_file,
                       size=args.size, source=args.source, data_dir=args.data_dir, seed=args.seed, tau=args.tau,
                       batch_size=args.batch_size, retention=_parse_sets(args.set).get("retention"), progress=not args.quiet,
                       bundle=args.bundle, examples_out=args.examples_out, n_examples=args.examples)
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="adaptive-retention", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    def bench_args(b, lengths, ratios, batch, repeats, modes):
        b.add_argument("--model", default="minilm", help="folder, hub id, or 'minilm' (the offline all-MiniLM-L6-v2)")
        b.add_argument("--lengths", type=int, nargs="+", default=lengths)
        b.add_argument("--ratios", type=float, nargs="+", default=ratios)
        b.add_argument("--batch-size", type=int, default=batch)
        b.add_argument("--repeats", type=int, default=repeats)
        b.add_argument("--modes", nargs="+", default=modes, help="inference and/or train_step")
        b.add_argument("--attn", default="sdpa", help="attention implementation: sdpa | eager")
        b.add_argument("--device", default="auto", help="auto | cpu | cuda")
        b.add_argument("--start-layer", type=int, default=1)
        b.add_argument("--schedule", default="constant")
        b.add_argument("--seed", type=int, default=0)
        b.add_argument("--out", help="also write the table as TSV here")
        b.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    b = sub.add_parser("bench", help="latency, throughput, peak memory and FLOPs: plain model vs retention and baselines")
    bench_args(b, [512], [0.5, 0.3], 32, 5, ["inference", "train_step"])
    b.add_argument("--selectors", nargs="*", default=["random", "truncation", "heavy_hitter"], help="baseline selectors timed too")
    b.add_argument("--no-memory", action="store_true", help="skip the peak-memory pass")
    b.add_argument("--no-flops", action="store_true", help="skip counting FLOPs with FlopCounterMode")
    b.set_defaults(func=_bench)
    s = sub.add_parser("bench-sweep", help="time and peak memory against sequence length, with fitted exponents")
    bench_args(s, [128, 256, 512, 1024, 2048, 4096], [0.3], 1, 3, ["inference"])
    s.add_argument("--fit", help="write the fitted exponents as JSON here")
    s.set_defaults(func=_bench_sweep)
    m = sub.add_parser("make-tiny-model", help="write a randomly initialised small BERT (with the MiniLM tokenizer) for tests")
    m.add_argument("--out", required=True)
    m.add_argument("--layers", type=int, default=2)
    m.add_argument("--hidden", type=int, default=32)
    m.add_argument("--seed", type=int, default=0)
    m.set_defaults(func=_make_tiny_model)
    t = sub.add_parser("train", help="fine-tune a backbone with retention (or the full model) for one task, ratio and seed")
    t.add_argument("--out", required=True, help="output folder: model/, trace.tsv, summary.json (resume.pt while running)")
    t.add_argument("--config", help="YAML file of training config keys (see train.TrainConfig)")
    t.add_argument("--task")
    t.add_argument("--ratio", type=float, help="retention ratio ρ (enables retention)")
    t.add_argument("--full", action="store_true", help="train the full model (no retention)")
    t.add_argument("--seed", type=int)
    t.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override config keys, e.g. epochs=2 retention.schedule=linear")
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(func=_train)
    e = sub.add_parser("evaluate", help="evaluate a checkpoint under selection methods and budgets; one JSON per (method, ratio)")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--out", required=True)
    e.add_argument("--methods", nargs="+", default=["full", "learned"])
    e.add_argument("--ratios", type=float, nargs="+", default=[0.5, 0.3])
    e.add_argument("--split", default="eval")
    e.add_argument("--data-file", help="evaluate any JSON-lines file in the task's schema instead of a split")
    e.add_argument("--size", type=int, help="evaluate a seeded subsample of this many examples")
    e.add_argument("--source", default="auto")
    e.add_argument("--data-dir", default="../shared/data")
    e.add_argument("--seed", type=int, default=0, help="seed of the random selector")
    e.add_argument("--tau", type=float, default=0.5, help="threshold method: keep tokens with p > tau")
    e.add_argument("--batch-size", type=int, default=32)
    e.add_argument("--set", nargs="*", default=[], metavar="retention.KEY=VALUE", help="retention switches for a checkpoint trained without retention")
    e.add_argument("--plan", help='JSON {method: [ratios]} instead of --methods x --ratios, e.g. \'{"learned": [0.5, 0.3], "random": [0.5]}\'')
    e.add_argument("--bundle", help="also write every result as one JSON list here")
    e.add_argument("--examples-out", help="write the first --examples inputs with the block each token was dropped at here")
    e.add_argument("--examples", type=int, default=5)
    e.add_argument("--quiet", action="store_true")
    e.set_defaults(func=_evaluate)
    f = sub.add_parser("preflight", help="resolve hub datasets (metadata only) and model ids (config only); fail naming the fix")
    f.add_argument("--tasks", nargs="*", default=[])
    f.add_argument("--models", nargs="*", default=[])
    f.set_defaults(func=_preflight)
    pd = sub.add_parser("prepare-data", help="snapshot a task's train and eval records (Arrow + manifest.json) for offline jobs")
    pd.add_argument("--task", required=True)
    pd.add_argument("--source", default="auto", help="auto | local | hub")
    pd.add_argument("--data-dir", default="../shared/data", help="folder of local mirrors")
    pd.add_argument("--split-seed", type=int, default=0, help="seed of the document split where a mirror has one split")
    pd.add_argument("--out", required=True)
    pd.set_defaults(func=_prepare_data)
    pm = sub.add_parser("prepare-model", help="snapshot a hub model (config, tokenizer, weights) for offline jobs")
    pm.add_argument("--model", required=True)
    pm.add_argument("--revision", default="main")
    pm.add_argument("--out", required=True)
    pm.set_defaults(func=_prepare_model)
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
    except ValueError as e:  # bad input (config, data, checkpoint): one clear line, no traceback
        print(f"adaptive-retention {args.command}: error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # e.g. a non-finite loss
        print(f"adaptive-retention {args.command}: failed: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
