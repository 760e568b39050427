"""Evaluate one checkpoint under several token-selection methods and budgets.

Writes one JSON per (method, ratio): task, method, ratio, seed, split, n_examples, the task's
metrics, the measured kept fraction per retention layer, wall seconds.
A checkpoint trained without retention can still be evaluated with the baseline selectors: they
are attached with the retention switches given (default: SPEC §2 defaults), untrained scorers unused.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .baselines import selector_for
from .checkpoint import load_checkpoint, write_atomic
from .data import DataError, get_task, load_examples, read_jsonl
from .modeling import RetentionConfig, apply_retention, info_of, retention_of
from .tasks import collate, kind_module
from .train import pick_device

METHODS = ("full", "learned", "random", "truncation", "heavy_hitter", "threshold")


def examples_from_file(task: str, path: str | Path, labels: list[str]) -> list[dict]:
    """Any file in the task's raw (hub) schema, converted like the task's own splits."""
    spec = get_task(task)
    examples = [e for i, r in enumerate(read_jsonl(Path(path), spec.fields)) for e in spec.to_examples(r, i)]
    for e in examples:
        if isinstance(e.get("label"), str):
            if e["label"] not in labels:
                raise DataError(f"{path}: example {e['id']}: label {e['label']!r} not among the checkpoint's labels")
            e["label"] = labels.index(e["label"])
    if not examples:
        raise DataError(f"{path}: no usable examples for task {task!r}")
    return examples


def _outputs_of(kind: str, output, batch) -> list[dict]:
    """Per-feature outputs as numpy: logits per class or sentence; QA span logits cropped to each window."""
    if kind == "qa":
        lengths = batch["attention_mask"].sum(1).tolist()
        s, e = output["start_logits"].float().cpu().numpy(), output["end_logits"].float().cpu().numpy()
        return [{"start_logits": s[i, :n], "end_logits": e[i, :n]} for i, n in enumerate(lengths)]
    return [{"logits": row} for row in output["logits"].float().cpu().numpy()]


def _model_inputs(batch: dict, device) -> dict:
    return {k: v.to(device) for k, v in batch.items() if k not in ("labels", "start_positions", "end_positions", "sentence_labels")}


@torch.inference_mode()
def run_features(model, features: list[dict], inputs: dict, pad_id: int, kind: str, batch_size: int, device, desc: str, progress: bool):
    """Model outputs and kept fractions per feature, batched by length (less padding), in feature order."""
    order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
    outputs: list = [None] * len(features)
    kept = [None] * len(features)
    for start in tqdm(range(0, len(order), batch_size), desc=desc, disable=not progress, leave=False):
        idx = order[start:start + batch_size]
        batch = collate([features[i] for i in idx], inputs, pad_id)
        model_inputs = _model_inputs(batch, device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out = model(**model_inputs)
        info = info_of(out)
        for j, (i, o) in enumerate(zip(idx, _outputs_of(kind, out, batch))):
            outputs[i] = o
            if info is not None:
                kept[i] = (info.kept_counts[j].cpu().numpy(), int(info.n_tokens[j]))
    return outputs, kept


def kept_summary(kept: list, boundaries: tuple[int, ...]) -> dict:
    """Mean per-example kept fraction per retention layer, and the token-weighted fraction."""
    rows = [k for k in kept if k is not None and k[1] > 0]
    if not rows:
        return {"kept_fraction": {}, "kept_fraction_tokens": {}}
    counts = np.stack([k[0] for k in rows])  # (n, K)
    n = np.array([k[1] for k in rows])[:, None]
    return {"kept_fraction": {str(b): float(v) for b, v in zip(boundaries, (counts / n).mean(0))},
            "kept_fraction_tokens": {str(b): float(v) for b, v in zip(boundaries, counts.sum(0) / n.sum())}}


@torch.inference_mode()
def kept_examples(model, tokenizer, features: list[dict], inputs, device) -> list[dict]:
    """Each token of these features and the boundary (block index) where learned retention dropped it;
    None where it reached the last block. What a person looks at to see what the model keeps."""
    batch = collate(features, inputs, tokenizer.pad_token_id)
    out = model(**_model_inputs(batch, device))
    info = info_of(out)
    rows = []
    for i in range(len(features)):
        n = int(batch["attention_mask"][i].sum())
        present = torch.stack([~torch.isnan(s[i, :n].float()) for s in info.scores]).cpu()  # (K, n): still there at boundary k
        kept_to_end = info.kept_mask[i, :n].cpu()
        dropped = []
        for t in range(n):
            gone = [k for k in range(len(info.boundaries)) if present[k, t] and
                    (not present[k + 1, t] if k + 1 < len(info.boundaries) else not kept_to_end[t])]
            dropped.append(info.boundaries[gone[0]] if gone else None)
        rows.append({"tokens": tokenizer.convert_ids_to_tokens(batch["input_ids"][i, :n].tolist()), "dropped_at": dropped,
                     "boundaries": list(info.boundaries), "ratio": retention_of(model).config.ratio})
    return rows


def evaluate(checkpoint: str | Path, methods: list[str] | dict[str, list[float]], ratios: list[float], out_dir: str | Path, split: str = "eval",
             data_file: str | None = None, size: int | None = None, source: str = "auto", data_dir: str = "../shared/data",
             seed: int = 0, tau: float = 0.5, batch_size: int = 32, retention: dict | None = None, device: str = "auto",
             progress: bool = True, bundle: str | Path | None = None, examples_out: str | Path | None = None,
             n_examples: int = 5) -> list[dict]:
    """Evaluate; one JSON per (method, ratio) in out_dir, and all of them as one list in `bundle` if given.
    `examples_out`: the first `n_examples` inputs with the block each token was dropped at (learned scores at
    the trained budget; an empty list for a checkpoint trained without retention).

    `methods` is a list (each at every ratio of `ratios`) or a plan {method: [ratios]}; `full` always
    runs at 1.0 and `threshold` once (its kept fraction is whatever p > tau keeps).
    """
    plan = dict(methods) if isinstance(methods, dict) else {m: list(ratios) for m in methods}
    plan = {m: [1.0] if m == "full" else [None] if m == "threshold" else [float(r) for r in rs] for m, rs in plan.items()}
    methods = list(plan)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; allowed: {list(METHODS)}")
    bad = [r for rs in plan.values() for r in rs if r is not None and not 0.0 < r <= 1.0]
    if bad:
        raise ValueError(f"ratio(s) {bad} outside (0, 1]")
    if not 0.0 < tau < 1.0:
        raise ValueError(f"tau must lie in (0, 1), got {tau}")
    dev = pick_device(device)
    model, tokenizer, run = load_checkpoint(checkpoint, dev)
    if "learned" in methods and run.get("retention") is None:
        raise ValueError(f"{checkpoint} was trained without retention: it has no learned scorers (method 'learned'); "
                         "use full / random / truncation / heavy_hitter")
    spec = get_task(run["task"])
    kind = kind_module(spec.kind)
    if data_file is not None:
        examples, origin, split = examples_from_file(run["task"], data_file, run.get("labels", [])), str(data_file), "file"
    else:
        s = load_examples(run["task"], split, source, data_dir, size=size, seed=0)
        examples, origin = s.examples, s.origin
    cfg = run["train_config"]
    features = kind.featurize(examples, tokenizer, run["max_length"], k=cfg.get("k", 3), stride=cfg.get("stride", 128))
    if run.get("retention") is None and any(m != "full" for m in methods):
        apply_retention(model, RetentionConfig.from_dict(retention or {}), tokenizer.all_special_ids)
    has_retention = hasattr(model.base_model, "retention")
    out_dir = Path(out_dir)
    results = []
    for method in methods:
        for ratio in plan[method]:
            if has_retention:
                r = retention_of(model)
                r.set_ratio(1.0 if ratio is None else ratio)
                r.selector = selector_for(method, model, seed)
                r.threshold = tau if method == "threshold" else None
            t0 = time.perf_counter()
            outputs, kept = run_features(model, features, kind.INPUTS, tokenizer.pad_token_id, spec.kind, batch_size, dev,
                                         f"{method}@{ratio}", progress)
            wall = time.perf_counter() - t0
            predictions = kind.predict(outputs, features, examples, k=cfg.get("k", 3))
            metrics = kind.score(predictions, examples, num_labels=len(run.get("labels", [])) or None)
            boundaries = retention_of(model).boundaries if has_retention else ()
            result = {"task": run["task"], "method": method, "ratio": ratio, "tau": tau if method == "threshold" else None,
                      "seed": run["seed"], "eval_seed": seed, "split": split, "origin": origin, "n_examples": len(examples),
                      "n_features": len(features), "metrics": metrics, **kept_summary(kept, boundaries),
                      "wall_seconds": wall, "checkpoint": str(checkpoint), "trained_retention": run.get("retention"),
                      "device": str(dev)}
            name = f"{method}.json" if ratio is None or method == "full" else f"{method}_{ratio:g}.json"
            write_atomic(out_dir / name, json.dumps(result, indent=2, sort_keys=True))
            results.append(result)
    if has_retention:  # leave the model as it was loaded
        r = retention_of(model)
        r.selector, r.threshold = None, None
    if examples_out is not None:
        shown = []
        if run.get("retention") is not None:
            retention_of(model).set_ratio(run["retention"]["ratio"])
            shown = kept_examples(model, tokenizer, features[:n_examples], kind.INPUTS, dev)
        write_atomic(examples_out, json.dumps(shown, indent=1))
    if bundle is not None:
        write_atomic(bundle, json.dumps(results, indent=2, sort_keys=True))
    return results
