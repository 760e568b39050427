"""Evaluate one checkpoint under several token-selection methods and budgets.

Writes one JSON per (method, ratio): the run's identity (run id, task, variant, budget, study, seed),
method, ratio, split, n_examples, the task's metrics, `chance` (the same metrics of the best constant prediction: the
majority label, an empty answer or summary), the measured kept fraction per retention layer,
wall seconds, and `per_example` (each example's id and its share of every metric that is a mean; the class
predictions): what paired tests compare. Analysis groups on these fields, never on file paths.
A checkpoint trained without retention can still be evaluated with the baseline selectors: they
are attached with the retention switches given (default: SPEC §2 defaults), untrained scorers unused.
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .backbones import pick_device
from .baselines import selector_for
from .checkpoint import load_checkpoint, read_run
from .config import EvalConfig, RetentionConfig, Selection
from .data import DataError, examples_of, get_task, load_examples, read_jsonl
from .io import check_writable, claimed_folder, write_atomic, write_json
from .methods import METHODS
from .modeling import Retention, apply_retention, info_of, retention_of
from .plan import identity_of
from .tasks import collate, kind_module


def examples_from_file(task: str, path: str | Path, labels: list[str]) -> list[dict]:
    """Any file in the task's raw (hub) schema, converted and checked like the task's own splits, labels against the
    checkpoint's label set."""
    spec = get_task(task)
    examples = list(examples_of(spec, read_jsonl(Path(path), spec.fields), str(path), tuple(labels)))
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


@dataclass
class _Loaded:
    """A checkpoint and the examples and features it is evaluated on."""
    model: torch.nn.Module
    tokenizer: object
    run: dict
    kind: object
    examples: list[dict]
    features: list[dict]
    origin: str
    split: str
    device: torch.device
    identity: dict  # the run's, copied into every result
    checkpoint: str
    chance: dict  # the metrics of the best constant prediction on these examples (kind.constant_prediction)

    @property
    def retention(self) -> Retention | None:
        return retention_of(self.model) if hasattr(self.model.base_model, "retention") else None


def _check_fits(run: dict, cfg: EvalConfig, checkpoint) -> None:
    """The evaluation config asks nothing of the checkpoint it does not have (before any loading or compute)."""
    if cfg.retention is not None and run.get("retention") is not None:
        raise ValueError(f"{checkpoint} was trained with retention: its switches are fixed ({run['retention']}); retention "
                         "switches of the evaluation config apply only to checkpoints trained without retention")
    needs = [m for m in cfg.plan if METHODS[m].needs_scorers]
    if needs and run.get("retention") is None:
        raise ValueError(f"{checkpoint} was trained without retention: it has no learned scorers (method(s) {needs}); "
                         "use full / random / truncation / heavy_hitter")


def num_labels_of(run: dict) -> int | None:
    return len(run.get("labels", [])) or None


def _load(checkpoint, cfg: EvalConfig) -> _Loaded:
    device = pick_device(cfg.device)
    model, tokenizer, run = load_checkpoint(checkpoint, device)
    spec = get_task(run["task"])
    if cfg.data_file is not None:
        examples, origin, split = examples_from_file(run["task"], cfg.data_file, run.get("labels", [])), str(cfg.data_file), "file"
    else:
        s = load_examples(run["task"], cfg.split, cfg.source, cfg.data_dir, size=cfg.size, seed=0)
        examples, origin, split = s.examples, s.origin, cfg.split
    train_cfg = run["train_config"]
    kind = kind_module(spec.kind)
    features = kind.featurize(examples, tokenizer, run["max_length"], k=train_cfg.get("k", 3), stride=train_cfg.get("stride", 128))
    if run.get("retention") is None and any(m != "full" for m in cfg.plan):
        apply_retention(model, RetentionConfig.from_dict(cfg.retention or {}), tokenizer.all_special_ids)
    identity = {**identity_of(run, str(checkpoint)), **cfg.identity}
    chance = kind.score(kind.constant_prediction(examples), examples, num_labels=num_labels_of(run))
    return _Loaded(model, tokenizer, run, kind, examples, features, origin, split, device, identity, str(checkpoint), chance)


def _selecting(loaded: _Loaded, sel: Selection, seed: int):
    """The model's retention set to this selection for the duration of a `with` block (nothing to set without retention)."""
    if loaded.retention is None:
        return nullcontext()
    return loaded.retention.selecting(selector_for(sel.method, loaded.model, seed), sel.tau, 1.0 if sel.ratio is None else sel.ratio)


def _forward(loaded: _Loaded, sel: Selection, cfg: EvalConfig, progress: bool, passes: dict) -> tuple:
    """(outputs, kept, seconds, the selection whose pass it is). At ratio 1.0 every method keeps every token
    (`Retention._forward_eval`: the same computation whatever scored the tokens), so those selections share one pass;
    tests/test_train_evaluate.py checks it against separate passes."""
    shared = sel.ratio == 1.0 and sel.tau is None
    if shared and "everything" in passes:
        return passes["everything"]
    with _selecting(loaded, sel, cfg.seed):
        t0 = time.perf_counter()
        outputs, kept = run_features(loaded.model, loaded.features, loaded.kind.INPUTS, loaded.tokenizer.pad_token_id,
                                     get_task(loaded.run["task"]).kind, cfg.batch_size, loaded.device,
                                     f"{sel.method}@{sel.ratio}", progress)
        made = (outputs, kept, time.perf_counter() - t0, sel)
    if shared:  # only this pass is kept: the others' outputs are freed once scored
        passes["everything"] = made
    return made


def evaluate_one(loaded: _Loaded, sel: Selection, cfg: EvalConfig, progress: bool, passes: dict | None = None) -> dict:
    """One (method, ratio) over every feature: the result record. `passes`: forward passes already made on this
    checkpoint, which one that keeps every token reuses."""
    task, run = loaded.run["task"], loaded.run
    outputs, kept, wall, made_by = _forward(loaded, sel, cfg, progress, {} if passes is None else passes)
    k = run["train_config"].get("k", 3)
    predictions = loaded.kind.predict(outputs, loaded.features, loaded.examples, k=k)
    each = loaded.kind.per_example(predictions, loaded.examples)
    metrics = loaded.kind.score(predictions, loaded.examples, num_labels=num_labels_of(run), each=each)
    boundaries = loaded.retention.boundaries if loaded.retention is not None else ()
    per_example = {"id": [e.get("id", i) for i, e in enumerate(loaded.examples)], **each}
    if get_task(task).kind == "classification":
        per_example["prediction"] = predictions
    return {**loaded.identity, "method": sel.method, "ratio": sel.ratio, "tau": sel.tau, "eval_seed": cfg.seed, "split": loaded.split,
            "origin": loaded.origin, "n_examples": len(loaded.examples), "n_features": len(loaded.features), "metrics": metrics,
            "chance": loaded.chance, **kept_summary(kept, boundaries), "wall_seconds": wall,
            "pass_of": f"{made_by.method}@{made_by.ratio:g}" if made_by.ratio is not None else made_by.method, "checkpoint": loaded.checkpoint,
            "trained_retention": run.get("retention"), "device": str(loaded.device), "per_example": per_example}


def evaluate(checkpoint: str | Path, cfg: EvalConfig, out_dir: str | Path, progress: bool = True, bundle: str | Path | None = None,
             examples_out: str | Path | None = None, n_examples: int = 5) -> list[dict]:
    """Evaluate a checkpoint under every selection of `cfg`; one JSON per (method, ratio) in out_dir, and all of them as
    one list in `bundle` if given. `examples_out`: the first `n_examples` inputs with the block each token was dropped at
    (learned scores at the trained budget; an empty list for a checkpoint trained without retention)."""
    _check_fits(read_run(checkpoint), cfg, checkpoint)
    for path in (bundle, examples_out):
        check_writable(path)
    with claimed_folder(out_dir):  # writable and ours before any compute
        loaded = _load(checkpoint, cfg)
        results, passes = [], {}
        for sel in cfg.selections():
            result = evaluate_one(loaded, sel, cfg, progress, passes)
            write_json(Path(out_dir) / sel.file_name, result)
            results.append(result)
        if examples_out is not None:
            shown = []
            if loaded.run.get("retention") is not None:
                with loaded.retention.selecting(ratio=loaded.run["retention"]["ratio"]):
                    rows = kept_examples(loaded.model, loaded.tokenizer, loaded.features[:n_examples], loaded.kind.INPUTS, loaded.device)
                shown = [{"run": loaded.identity["run"], "task": loaded.identity["task"], **row} for row in rows]
            write_atomic(examples_out, json.dumps(shown, indent=1))
        if bundle is not None:
            write_json(bundle, results)
    return results
