"""The dataset registry: each task's hub id, local mirror, splits and fields (SPEC §3).

`load_examples(task, split, source, data_dir, size, seed)` returns plain dicts in one schema per
task kind — classification `{id, text, label}`, QA `{id, question, context, answers}`,
summarisation `{id, sentences, abstract}` — read from the Hugging Face Hub or from a local folder
laid out like `../shared/data` (`<folder>/<split>.jsonl[.gz|.xz]`). Where a mirror lacks a split,
train and eval are made from the split it has by a seeded split over documents (articles,
contracts, papers), never over rows, so no document is in both.
"""

from __future__ import annotations

import gzip
import json
import lzma
import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

KINDS = ("classification", "qa", "summarization")
SOURCES = ("auto", "local", "hub")
SPLITS = ("train", "eval")


class DataError(ValueError):
    """Bad or missing data: the message names the file, line or field."""


@dataclass(frozen=True)
class TaskSpec:
    id: str
    kind: str
    hub: tuple[str, str | None]  # (path, config) for datasets.load_dataset
    local: str  # folder name under the local data dir
    splits: dict[str, str]  # our split -> the dataset's split name
    fields: tuple[str, ...]  # fields every raw record must have
    to_examples: Callable[[dict, int], list[dict]]  # raw record (and its row number) -> examples
    group: Callable[[dict], str]  # document a raw record belongs to (for splits without leaks)
    metric: str
    labels: tuple[str, ...] = ()  # classification label names (index = label id)
    max_length: int = 512
    eval_fraction: float = 0.2  # share of documents held out when a split must be made
    notes: str = ""


# --- per-task record -> example converters ---------------------------------------------------


def _text_label(text_field: str):
    def convert(r: dict, i: int) -> list[dict]:
        label = r["label"] if isinstance(r["label"], str) else int(r["label"])  # names are mapped to ids later
        return [{"id": str(r.get("idx", r.get("arxiv_id", i))), "text": r[text_field], "label": label}]
    return convert


def _squad(r: dict, i: int) -> list[dict]:
    return [{"id": r["id"], "question": r["question"], "context": r["context"],
             "answers": {"text": list(r["answers"]["text"]), "answer_start": list(r["answers"]["answer_start"])}}]


CUAD_MIN_CONTRACTS = 10  # categories annotated in fewer contracts than this are left out


def cuad_category(record: dict) -> str:
    return record["id"].rsplit("__", 1)[-1]


def _cuad_clauses(r: dict, i: int) -> list[dict]:
    """Each annotated clause span of a CUAD QA record becomes one example labelled with its category."""
    cat = cuad_category(r)
    if cat not in CUAD_LABELS:
        return []
    return [{"id": f"{r['id']}#{k}", "text": t, "label": CUAD_LABELS.index(cat)} for k, t in enumerate(r["answers"]["text"]) if t.strip()]


def _qasper(r: dict, i: int) -> list[dict]:
    """Questions with extractive answers; context = the paper's paragraphs; gold = every annotator's spans."""
    paragraphs = [p for sec in r["full_text"]["paragraphs"] for p in sec if p and p.strip()]
    context = "\n".join(paragraphs)
    qas, out = r["qas"], []
    for q, qid, answers in zip(qas["question"], qas["question_id"], qas["answers"]):
        texts, starts = [], []
        for a in answers["answer"]:
            for span in a.get("extractive_spans") or []:
                start = context.find(span)
                if span.strip() and start >= 0:
                    texts.append(span)
                    starts.append(start)
        if texts:
            out.append({"id": qid, "question": q, "context": context, "answers": {"text": texts, "answer_start": starts}})
    return out


def _article_abstract(article_field: str, abstract_field: str):
    def convert(r: dict, i: int) -> list[dict]:
        sentences = [s.strip() for s in r[article_field].split("\n") if s.strip()]
        return [{"id": str(r.get("id", i)), "sentences": sentences, "abstract": r[abstract_field]}] if sentences else []
    return convert


CUAD_CATEGORIES_ALL = (  # the 41 CUAD categories, as they end the record ids
    "Document Name", "Parties", "Agreement Date", "Effective Date", "Expiration Date", "Renewal Term",
    "Notice Period To Terminate Renewal", "Governing Law", "Most Favored Nation", "Non-Compete", "Exclusivity",
    "No-Solicit Of Customers", "Competitive Restriction Exception", "No-Solicit Of Employees", "Non-Disparagement",
    "Termination For Convenience", "Rofr/Rofo/Rofn", "Change Of Control", "Anti-Assignment", "Revenue/Profit Sharing",
    "Price Restrictions", "Minimum Commitment", "Volume Restriction", "Ip Ownership Assignment", "Joint Ip Ownership",
    "License Grant", "Non-Transferable License", "Affiliate License-Licensor", "Affiliate License-Licensee",
    "Unlimited/All-You-Can-Eat-License", "Irrevocable Or Perpetual License", "Source Code Escrow",
    "Post-Termination Services", "Audit Rights", "Uncapped Liability", "Cap On Liability", "Liquidated Damages",
    "Warranty Duration", "Insurance", "Covenant Not To Sue", "Third Party Beneficiary",
)
# Annotated in ≥ 10 of the 102 contracts of the mirror (counted from its records), so that a 20 %
# contract-level split leaves examples of each kept category on both sides: 29 of the 41.
CUAD_LABELS = (
    "Parties", "License Grant", "Cap On Liability", "Audit Rights", "Anti-Assignment", "Revenue/Profit Sharing",
    "Document Name", "Insurance", "Non-Transferable License", "Governing Law", "Exclusivity", "Agreement Date",
    "Expiration Date", "Effective Date", "Minimum Commitment", "Change Of Control", "Post-Termination Services",
    "Ip Ownership Assignment", "Renewal Term", "Non-Compete", "Uncapped Liability", "Rofr/Rofo/Rofn",
    "Covenant Not To Sue", "Volume Restriction", "Termination For Convenience", "Affiliate License-Licensee",
    "Notice Period To Terminate Renewal", "Competitive Restriction Exception", "Irrevocable Or Perpetual License",
)

TASKS: dict[str, TaskSpec] = {t.id: t for t in [
    TaskSpec("sst2", "classification", ("glue", "sst2"), "glue-sst2", {"train": "train", "eval": "validation"},
             ("sentence", "label"), _text_label("sentence"), lambda r: str(r["idx"]), "accuracy", ("negative", "positive"), 64),
    TaskSpec("imdb", "classification", ("stanfordnlp/imdb", None), "imdb", {"train": "train", "eval": "test"},
             ("text", "label"), _text_label("text"), lambda r: r["text"], "accuracy", ("negative", "positive"), 512),
    TaskSpec("cuad", "classification", ("theatticusproject/cuad-qa", None), "cuad-qa", {"train": "train", "eval": "test"},
             ("id", "title", "answers"), _cuad_clauses, lambda r: r["title"], "f1", CUAD_LABELS, 256,
             notes="clause-type classification built from the QA records; split by contract"),
    TaskSpec("arxiv", "summarization", ("ccdv/arxiv-summarization", None), "arxiv-summarization", {"train": "train", "eval": "test"},
             ("article", "abstract"), _article_abstract("article", "abstract"), lambda r: r["article"][:200], "rouge", (), 4096,
             notes="the local stand-in (arxiv-unarxive-sample) has no abstracts: see task arxiv-category"),
    TaskSpec("arxiv-category", "classification", ("ccdv/arxiv-classification", None), "arxiv-unarxive-sample",
             {"train": "train", "eval": "test"}, ("text", "label"), _text_label("text"), lambda r: r.get("arxiv_id", r["text"][:200]),
             "accuracy", (), 4096, notes="long-document path on the local stand-in: label = arXiv primary category"),
    TaskSpec("qasper", "qa", ("allenai/qasper", None), "qasper", {"train": "train", "eval": "validation"},
             ("id", "full_text", "qas"), _qasper, lambda r: r["id"], "squad", (), 4096),
    TaskSpec("pubmed", "summarization", ("ccdv/pubmed-summarization", None), "pubmed-summarization",
             {"train": "train", "eval": "test"}, ("article", "abstract"), _article_abstract("article", "abstract"),
             lambda r: r["article"][:200], "rouge", (), 4096),
    TaskSpec("squad", "qa", ("rajpurkar/squad", None), "squad", {"train": "train", "eval": "validation"},
             ("id", "title", "context", "question", "answers"), _squad, lambda r: r["title"], "squad", (), 384),
]}


def get_task(task_id: str) -> TaskSpec:
    if task_id not in TASKS:
        raise ValueError(f"unknown task {task_id!r}; allowed: {sorted(TASKS)}")
    return TASKS[task_id]


# --- reading -----------------------------------------------------------------------------------


def _open(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    if path.suffix == ".xz":
        return lzma.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def split_file(folder: Path, split: str) -> Path | None:
    for ext in (".jsonl", ".jsonl.gz", ".jsonl.xz"):
        if (p := folder / f"{split}{ext}").exists():
            return p
    return None


def read_jsonl(path: Path, fields: tuple[str, ...] = ()) -> list[dict]:
    """Every record of a JSON-lines file; a bad line or a missing field names the file and line."""
    records = []
    try:
        with _open(path) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    r = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}:{n}: malformed JSON ({e.msg})") from None
                if not isinstance(r, dict):
                    raise DataError(f"{path}:{n}: expected a JSON object, got {type(r).__name__}")
                missing = [k for k in fields if k not in r]
                if missing:
                    raise DataError(f"{path}:{n}: missing field(s) {missing}; this task needs {list(fields)}")
                records.append(r)
    except (OSError, EOFError, lzma.LZMAError) as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    if not records:
        raise DataError(f"{path}: empty split (no records)")
    return records


def _hub_records(spec: TaskSpec, split: str) -> list[dict]:
    import datasets

    path, name = spec.hub
    try:
        ds = datasets.load_dataset(path, name, split=split)
    except Exception as e:  # offline, unknown id, no such split: all end the same way for the user
        raise DataError(f"hub dataset {path}{'/' + name if name else ''} split {split!r}: cannot load "
                        f"({type(e).__name__}: {e}); without a network use source 'local' with a mirror folder") from None
    missing = [k for k in spec.fields if k not in ds.column_names]
    if missing:
        raise DataError(f"hub dataset {path}/{name or ''} split {split}: missing field(s) {missing}")
    return list(ds)


def group_split(records: list[dict], group: Callable[[dict], str], eval_fraction: float, seed: int) -> dict[str, list[dict]]:
    """Seeded train/eval split over documents: all records of one document land on the same side."""
    groups = sorted({group(r) for r in records})
    random.Random(seed).shuffle(groups)
    n_eval = max(1, math.ceil(eval_fraction * len(groups))) if len(groups) > 1 else 0
    held = set(groups[:n_eval])
    return {"train": [r for r in records if group(r) not in held], "eval": [r for r in records if group(r) in held]}


def _raw_records(spec: TaskSpec, split: str, source: str, data_dir: str | os.PathLike | None, split_seed: int) -> tuple[list[dict], list[dict], str]:
    """(records of the split, every record of the file they came from, where they came from)."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; allowed: {list(SOURCES)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; allowed: {list(SPLITS)}")
    folder = Path(data_dir) / spec.local if data_dir is not None else None
    has_local = folder is not None and folder.is_dir() and any(split_file(folder, s) for s in spec.splits.values())
    if source == "local" or (source == "auto" and has_local):
        if not has_local:
            raise DataError(f"no local mirror for task {spec.id!r}: expected {folder}/<split>.jsonl[.gz|.xz] "
                            f"with split in {sorted(set(spec.splits.values()))}" + (f" ({spec.notes})" if spec.notes else ""))
        if all(split_file(folder, s) for s in spec.splits.values()):
            path = split_file(folder, spec.splits[split])
            records = read_jsonl(path, spec.fields)
            return records, records, str(path)
        # the mirror has one split only: train and eval are both made from it, by document
        path = next(p for s in spec.splits.values() if (p := split_file(folder, s)))
        everything = read_jsonl(path, spec.fields)
        parts = group_split(everything, spec.group, spec.eval_fraction, split_seed)
        return parts[split], everything, f"{path} ({split} part of a {1 - spec.eval_fraction:.0%}/{spec.eval_fraction:.0%} document split, seed {split_seed})"
    records = _hub_records(spec, spec.splits[split])
    return records, records, f"hub:{spec.hub[0]}/{spec.splits[split]}"


def subsample(examples: list[dict], size: int | None, seed: int, stratify: bool) -> list[dict]:
    """A deterministic subset of `size` examples (all if None or ≥ len); per-label proportions kept when stratified."""
    if size is None or size >= len(examples):
        return examples
    if size <= 0:
        raise ValueError(f"subsample size must be > 0, got {size}")
    rng = random.Random(seed)
    if not stratify:
        return [examples[i] for i in sorted(rng.sample(range(len(examples)), size))]
    by_label: dict[int, list[int]] = {}
    for i, e in enumerate(examples):
        by_label.setdefault(e["label"], []).append(i)
    quotas = {k: size * len(v) / len(examples) for k, v in by_label.items()}
    counts = {k: int(q) for k, q in quotas.items()}
    for k in sorted(quotas, key=lambda k: (counts[k] - quotas[k], k))[: size - sum(counts.values())]:
        counts[k] += 1  # largest remainders first
    chosen = [i for k in sorted(by_label) for i in rng.sample(by_label[k], counts[k])]
    return [examples[i] for i in sorted(chosen)]


@dataclass
class Split:
    task: TaskSpec
    name: str
    origin: str  # file or hub id it came from
    examples: list[dict] = field(default_factory=list)
    labels: tuple[str, ...] = ()


def load_examples(task: str, split: str, source: str = "auto", data_dir: str | os.PathLike | None = None,
                  size: int | None = None, seed: int = 0, split_seed: int = 0) -> Split:
    spec = get_task(task)
    records, everything, origin = _raw_records(spec, split, source, data_dir, split_seed)
    examples = []
    for i, r in enumerate(records):
        try:
            examples.extend(spec.to_examples(r, i))
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"{origin}: record {i + 1}: bad or missing field ({type(e).__name__}: {e})") from None
    if not examples:
        raise DataError(f"{origin}: no usable {spec.kind} examples for task {spec.id!r}")
    labels = spec.labels
    if spec.kind == "classification" and isinstance(examples[0]["label"], str):
        # label names as strings (the arXiv stand-in): ids over the categories of the whole file
        labels = labels or tuple(sorted({str(r["label"]) for r in everything}))
        examples = [{**e, "label": labels.index(e["label"])} for e in examples]
    examples = subsample(examples, size, seed, stratify=spec.kind == "classification")
    return Split(spec, split, origin, examples, labels)


def check_available(task: str, source: str, data_dir: str | os.PathLike | None) -> str:
    """Fail fast (before any training) when a task's data cannot be had; returns where it will come from."""
    spec = get_task(task)
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; allowed: {list(SOURCES)}")
    if source == "hub":  # cannot be checked without the network; load_examples says so if it fails
        return f"hub:{spec.hub[0]}"
    folder = Path(data_dir) / spec.local if data_dir is not None else None
    files = [split_file(folder, s) for s in spec.splits.values()] if folder is not None and folder.is_dir() else []
    if any(files):
        return str(folder)
    offline = os.environ.get("HF_DATASETS_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1"
    if source == "local" or offline:
        raise DataError(f"task {spec.id!r}: no data — looked for {folder}/<split>.jsonl[.gz|.xz] "
                        f"(splits {sorted(set(spec.splits.values()))})" + (" and the hub is offline" if source == "auto" else "")
                        + (f"; {spec.notes}" if spec.notes else ""))
    return f"hub:{spec.hub[0]}"
