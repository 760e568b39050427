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
import hashlib
import io
import json
import lzma
import math
import os
import random
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .config import SOURCES, SPLITS
from .io import atomic_path

KINDS = ("classification", "qa", "summarization")
MANIFEST = "manifest.json"  # a prepared snapshot's record of where it came from


class DataError(ValueError):
    """Bad or missing data: the message names the file, line or field."""


@dataclass(frozen=True)
class HubSource:
    """A dataset repo on the Hugging Face Hub, pinned: what `datasets.load_dataset` is called with."""
    repo: str  # namespace/name (huggingface_hub 2.x rejects ids without a namespace)
    config: str | None  # config name from the dataset card; None where the repo has one config
    revision: str  # a commit sha, or a named ref (refs/convert/parquet: the Hub's parquet export of a script-only repo)
    why: str  # why this repo, config and revision (README task table)
    data_dir: str | None = None  # one config's folder, where the revision has no card (parquet exports)

    def describe(self) -> str:
        return f"{self.repo}" + (f" config {self.config}" if self.config else "") + (f" dir {self.data_dir}" if self.data_dir else "") \
            + f" @ {self.revision}"


@dataclass(frozen=True)
class ArchiveSource:
    """A dataset's official release archive (a zip of SQuAD-format JSON files), flattened to one record per
    question as the retired Hub loading script did. For datasets whose Hub repo is a script only."""
    url: str  # pinned to a commit
    members: dict[str, str]  # the dataset's split -> JSON file name inside the archive
    why: str

    def describe(self) -> str:
        return self.url


# Users' clusters reach github.com; tests point this at a local server that serves the same paths.
ARCHIVE_ENDPOINT_ENV = "ADAPTIVE_RETENTION_ARCHIVE_ENDPOINT"
GITHUB = "https://github.com"


@dataclass(frozen=True)
class TaskSpec:
    id: str
    kind: str
    hub: HubSource | ArchiveSource  # where `source: hub` reads from
    local: str  # folder name under the local data dir
    splits: dict[str, str]  # our split -> the dataset's split name
    fields: tuple[str, ...]  # fields every raw record must have
    to_examples: Callable[[dict, int], list[dict]]  # raw record (and its row number) -> examples
    group: Callable[[dict], str]  # document a raw record belongs to (for splits without leaks)
    metrics: tuple[str, ...]  # primary metrics of the quality tables; the first is the headline (figures, Table 3)
    labels: tuple[str, ...] = ()  # classification label names (index = label id); a hub ClassLabel's names win
    max_length: int = 512
    eval_fraction: float = 0.2  # share of documents held out when a split must be made
    dev_fraction: float = 0.1  # share of the training documents held out as the dev split (choices are made there)
    notes: str = ""


# --- per-task record -> example converters ---------------------------------------------------


def _text(value, what: str) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, got {value!r}")


def _text_label(text_field: str):
    def convert(r: dict, i: int) -> list[dict]:
        _text(r[text_field], text_field)
        label = r["label"]  # names are mapped to ids later
        if not isinstance(label, str) and (isinstance(label, bool) or int(label) != label):
            raise ValueError(f"label must be a label id or name, got {label!r}")
        label = label if isinstance(label, str) else int(label)
        return [{"id": str(r.get("idx", r.get("arxiv_id", i))), "text": r[text_field], "label": label}]
    return convert


def _squad(r: dict, i: int) -> list[dict]:
    return [{"id": r["id"], "question": r["question"], "context": r["context"],
             "answers": {"text": list(r["answers"]["text"]), "answer_start": list(r["answers"]["answer_start"])}}]


CUAD_MIN_CONTRACTS = 10  # categories annotated in fewer contracts than this are left out


def cuad_category(record: dict) -> str:
    """The clause category that ends a CUAD record id: `<contract>__<Category>`, or `<contract>__<Category>_<N>`
    for the N-th chunk of a long contract in the release's train split."""
    tail = record["id"].rsplit("__", 1)[-1]
    chunk = re.fullmatch(r"(.+)_\d+", tail)
    if tail not in CUAD_CATEGORIES_ALL and chunk and chunk.group(1) in CUAD_CATEGORIES_ALL:
        return chunk.group(1)
    return tail


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

CUAD_RELEASE = "TheAtticusProject/cuad/raw/67faa0e6023b04fcaae6cc09497ab00e5d63a2a2/data.zip"  # main of the CUAD repo, 2021-10-21

HUB: dict[str, HubSource | ArchiveSource] = {  # every hub source, pinned, with the reason (README task table)
    "sst2": HubSource("nyu-mll/glue", "sst2", "a3f3ab759b9d7018046ce361f115ef38276d2e1e",
                      "`glue` without a namespace is rejected by huggingface_hub 2.x; the repo is nyu-mll/glue; this commit "
                      "converted it to parquet (one folder per config)"),
    "imdb": HubSource("stanfordnlp/imdb", "plain_text", "610bdae015434d0a02e81468da0abb51c2164bc8",
                      "the commit that converted the repo to parquet (config plain_text); labels neg/pos from its ClassLabel"),
    "cuad": ArchiveSource(f"{GITHUB}/{CUAD_RELEASE}", {"train": "train_separate_questions.json", "test": "test.json"},
                          "theatticusproject/cuad-qa holds only a loading script (refused by datasets >= 4) and no known parquet "
                          "export; the script read this release archive, so we read it the same way, pinned to a commit"),
    "arxiv": HubSource("ccdv/arxiv-summarization", "section", "240aaf1a969b3f8cd0ade6986bfad0cd730ee288",
                       "parquet since this commit, two configs; `section` keeps one sentence per line (what the old script's "
                       "default gave and what sentences are split on); `document` joins them with spaces"),
    "arxiv-category": HubSource("ccdv/arxiv-classification", "default", "main",
                                "parquet since commit d4bf86d (main; its full sha is not recorded here); labels are a "
                                "ClassLabel of 11 arXiv categories, names taken from the features"),
    "qasper": HubSource("allenai/qasper", None, "refs/convert/parquet",
                        "main holds only qasper.py (refused by datasets >= 4); the Hub's parquet export lives at this named "
                        "ref, one folder per config and no card, so the config is read as its folder", data_dir="qasper"),
    "pubmed": HubSource("ccdv/pubmed-summarization", "section", "6b30a2cae59b11ed77cb19959bffccbbd18e1106",
                        "parquet since this commit, two configs; `section` keeps one sentence per line"),
    "squad": HubSource("rajpurkar/squad", "plain_text", "main", "parquet on main (config plain_text); not a paper task"),
}

TASKS: dict[str, TaskSpec] = {t.id: t for t in [
    TaskSpec(id="sst2", kind="classification", hub=HUB["sst2"], local="glue-sst2", splits={"train": "train", "eval": "validation"},
             fields=("sentence", "label"), to_examples=_text_label("sentence"), group=lambda r: str(r["idx"]),
             metrics=("accuracy",), labels=("negative", "positive"), max_length=64),
    TaskSpec(id="imdb", kind="classification", hub=HUB["imdb"], local="imdb", splits={"train": "train", "eval": "test"},
             fields=("text", "label"), to_examples=_text_label("text"), group=lambda r: r["text"],
             metrics=("accuracy",), labels=("neg", "pos"), max_length=512),
    TaskSpec(id="cuad", kind="classification", hub=HUB["cuad"], local="cuad-qa", splits={"train": "train", "eval": "test"},
             fields=("id", "title", "answers"), to_examples=_cuad_clauses, group=lambda r: r["title"],
             metrics=("f1_micro", "f1_macro"), labels=CUAD_LABELS, max_length=256,
             notes="clause-type classification built from the QA records; split by contract"),
    TaskSpec(id="arxiv", kind="summarization", hub=HUB["arxiv"], local="arxiv-summarization", splits={"train": "train", "eval": "test"},
             fields=("article", "abstract"), to_examples=_article_abstract("article", "abstract"), group=lambda r: r["article"][:200],
             metrics=("rouge1",), max_length=4096,
             notes="the local stand-in (arxiv-unarxive-sample) has no abstracts: see task arxiv-category"),
    TaskSpec(id="arxiv-category", kind="classification", hub=HUB["arxiv-category"], local="arxiv-unarxive-sample",
             splits={"train": "train", "eval": "test"}, fields=("text", "label"), to_examples=_text_label("text"),
             group=lambda r: r.get("arxiv_id", r["text"][:200]), metrics=("accuracy",), max_length=4096,
             notes="long-document path on the local stand-in: label = arXiv primary category"),
    TaskSpec(id="qasper", kind="qa", hub=HUB["qasper"], local="qasper", splits={"train": "train", "eval": "validation"},
             fields=("id", "full_text", "qas"), to_examples=_qasper, group=lambda r: r["id"], metrics=("f1", "exact_match"),
             max_length=4096),
    TaskSpec(id="pubmed", kind="summarization", hub=HUB["pubmed"], local="pubmed-summarization",
             splits={"train": "train", "eval": "test"}, fields=("article", "abstract"),
             to_examples=_article_abstract("article", "abstract"), group=lambda r: r["article"][:200],
             metrics=("rouge1", "rougeL"), max_length=4096),
    TaskSpec(id="squad", kind="qa", hub=HUB["squad"], local="squad", splits={"train": "train", "eval": "validation"},
             fields=("id", "title", "context", "question", "answers"), to_examples=_squad, group=lambda r: r["title"],
             metrics=("f1", "exact_match"), max_length=384),
]}


def get_task(task_id: str) -> TaskSpec:
    if task_id not in TASKS:
        raise ValueError(f"unknown task {task_id!r}; allowed: {sorted(TASKS)}")
    return TASKS[task_id]


# --- reading -----------------------------------------------------------------------------------


def _open(path: Path):
    """The file's bytes (decompressed): lines are decoded one at a time, so a bad byte is reported with its line."""
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    if path.suffix == ".xz":
        return lzma.open(path, "rb")
    return open(path, "rb")


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
            for n, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise DataError(f"{path}:{n}: not UTF-8 (byte {raw[e.start]:#04x} at column {e.start + 1})") from None
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


def hub_offline() -> bool:
    return os.environ.get("HF_DATASETS_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1"


def load_hub_split(source: HubSource, split: str):
    """One split of a pinned hub dataset as an Arrow-backed `datasets.Dataset` (memory-mapped, not a list)."""
    import datasets

    return datasets.load_dataset(source.repo, source.config, revision=source.revision, data_dir=source.data_dir, split=split)


def class_label_names(ds, field: str = "label") -> tuple[str, ...]:
    """The names of a ClassLabel column (label ids index them), or () where the column is not one (or ds is a list)."""
    feature = getattr(ds, "features", {}).get(field)
    return tuple(getattr(feature, "names", ()))


def archive_url(source: ArchiveSource) -> str:
    endpoint = os.environ.get(ARCHIVE_ENDPOINT_ENV)
    return source.url.replace(GITHUB, endpoint.rstrip("/"), 1) if endpoint else source.url


def fetch_archive(source: ArchiveSource, cache_dir: str | os.PathLike | None = None) -> Path:
    """The release archive in the local cache, downloaded once (atomically) where the network is."""
    import urllib.request

    url = archive_url(source)
    cache = Path(cache_dir or os.environ.get("ADAPTIVE_RETENTION_CACHE") or Path.home() / ".cache" / "adaptive-retention") / "archives"
    path = cache / (hashlib.sha1(source.url.encode()).hexdigest()[:16] + "-" + source.url.rsplit("/", 1)[-1])
    if path.exists():
        return path
    if hub_offline():
        raise DataError(f"release archive {source.url}: not in the cache ({path}) and the hub is offline (HF_HUB_OFFLINE=1)")
    try:
        with atomic_path(path) as tmp, urllib.request.urlopen(url, timeout=120) as r, open(tmp, "wb") as f:
            while chunk := r.read(1 << 20):
                f.write(chunk)
            f.flush()
            zipfile.ZipFile(tmp).testzip()
    except (OSError, zipfile.BadZipFile) as e:
        raise DataError(f"release archive {url}: cannot download ({type(e).__name__}: {e})") from None
    return path


def squad_records(squad: dict) -> list[dict]:
    """SQuAD-format JSON -> one record per question {id, title, context, question, answers} (the old loader's flattening;
    the context string is shared by the questions of a paragraph, not copied)."""
    out = []
    for doc in squad["data"]:
        title = doc.get("title", "").strip()
        for para in doc["paragraphs"]:
            context = para["context"].strip()
            for qa in para["qas"]:
                out.append({"id": qa["id"], "title": title, "context": context, "question": qa["question"].strip(),
                            "answers": {"text": [a["text"].strip() for a in qa["answers"]],
                                        "answer_start": [a["answer_start"] for a in qa["answers"]]}})
    return out


def load_archive_split(source: ArchiveSource, split: str) -> list[dict]:
    member = source.members[split]
    path = fetch_archive(source)
    with zipfile.ZipFile(path) as z:
        names = [n for n in z.namelist() if n.rsplit("/", 1)[-1] == member]
        if not names:
            raise DataError(f"release archive {source.url}: no member {member!r} (has {z.namelist()[:10]})")
        with z.open(names[0]) as f:
            return squad_records(json.load(io.TextIOWrapper(f, encoding="utf-8")))


def _hub_records(spec: TaskSpec, split: str):
    """(records of one hub split, label names from its features or ()); records stay Arrow-backed for parquet repos."""
    source = spec.hub
    try:
        if isinstance(source, ArchiveSource):
            ds = load_archive_split(source, split)
            columns = list(ds[0]) if ds else []
        else:
            ds = load_hub_split(source, split)
            columns = ds.column_names
    except DataError:
        raise
    except Exception as e:  # offline, unknown id, no such split: all end the same way for the user
        raise DataError(f"task {spec.id!r}: hub dataset {source.describe()} split {split!r}: cannot load "
                        f"({type(e).__name__}: {e}); without a network use source 'local' with a mirror folder") from None
    missing = [k for k in spec.fields if k not in columns]
    if missing:
        raise DataError(f"task {spec.id!r}: hub dataset {source.describe()} split {split}: missing field(s) {missing}")
    return ds, class_label_names(ds)


def read_manifest(folder: str | os.PathLike) -> dict:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise DataError(f"no prepared snapshot at {folder} (missing {MANIFEST}); run the workflow's prepare_data rule "
                        f"or `adaptive-retention prepare-data`")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: corrupt manifest ({e.msg}); delete the folder and prepare it again") from None


def load_prepared(folder: str | os.PathLike, split: str):
    """(records, label names, origin) of one split of a snapshot; records are memory-mapped Arrow rows."""
    import datasets

    manifest = read_manifest(folder)
    if split not in manifest["splits"]:
        raise DataError(f"{folder}: snapshot has no split {split!r} (has {sorted(manifest['splits'])})")
    ds = datasets.load_from_disk(str(Path(folder) / split))
    return ds, tuple(manifest.get("labels", ())), f"prepared:{folder}/{split} <- {manifest['splits'][split]['origin']}"


def spec_labels(spec: TaskSpec, everything) -> tuple[str, ...]:
    """Label names of a task without a hub ClassLabel: the spec's, else (labels given as strings, the arXiv
    stand-in) the sorted names found in the whole file."""
    if spec.labels or spec.kind != "classification":
        return spec.labels
    values = everything["label"] if hasattr(everything, "column_names") else [r["label"] for r in everything]
    return tuple(sorted({str(v) for v in values})) if values and isinstance(values[0], str) else ()


def held_out(keys: list[str], fraction: float, seed: int) -> set[str]:
    """The documents (keys) a seeded split over documents holds out: `fraction` of them, at least one."""
    groups = sorted(set(keys))
    random.Random(seed).shuffle(groups)
    return set(groups[:max(1, math.ceil(fraction * len(groups))) if len(groups) > 1 else 0])


def group_split(records: list[dict], group: Callable[[dict], str], eval_fraction: float, seed: int) -> dict[str, list[dict]]:
    """Seeded train/eval split over documents: all records of one document land on the same side."""
    keys = [group(r) for r in records]
    held = held_out(keys, eval_fraction, seed)
    return {"train": [r for r, k in zip(records, keys) if k not in held], "eval": [r for r, k in zip(records, keys) if k in held]}


def _raw_records(spec: TaskSpec, split: str, source: str, data_dir: str | os.PathLike | None, split_seed: int):
    """(records, every record of the file they came from, where they came from, label names of a hub ClassLabel or (),
    the rows of `records` in the split or None for all). The dev and train splits are the two sides of one document split
    of the source's training records (so nothing chosen on dev was trained on); rows keep a record's number in its file."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; allowed: {list(SPLITS)}")
    if split == "eval":
        return (*source_records(spec, "eval", source, data_dir, split_seed), None)
    records, everything, origin, labels = source_records(spec, "train", source, data_dir, split_seed)
    keys = [spec.group(r) for _, r in iter_records(records)]
    held = held_out(keys, spec.dev_fraction, split_seed)
    rows = [i for i, k in enumerate(keys) if (k in held) == (split == "dev")]
    return records, everything, f"{origin} ({split} part: {spec.dev_fraction:.0%} of its documents held out as dev, seed {split_seed})", labels, rows


def source_records(spec: TaskSpec, split: str, source: str, data_dir: str | os.PathLike | None, split_seed: int):
    """`_raw_records` of one of the source's own splits (SOURCE_SPLITS: train, eval), before dev is carved."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; allowed: {list(SOURCES)}")
    if source == "prepared":
        if data_dir is None:
            raise ValueError("source 'prepared' needs data_dir: the folder of prepared snapshots")
        records, labels, origin = load_prepared(Path(data_dir) / spec.id, split)
        return records, records, origin, labels
    folder = Path(data_dir) / spec.local if data_dir is not None else None
    has_local = folder is not None and folder.is_dir() and any(split_file(folder, s) for s in spec.splits.values())
    if source == "local" or (source == "auto" and has_local):
        if not has_local:
            raise DataError(f"no local mirror for task {spec.id!r}: expected {folder}/<split>.jsonl[.gz|.xz] "
                            f"with split in {sorted(set(spec.splits.values()))}" + (f" ({spec.notes})" if spec.notes else ""))
        if all(split_file(folder, s) for s in spec.splits.values()):
            path = split_file(folder, spec.splits[split])
            records = read_jsonl(path, spec.fields)
            return records, records, str(path), ()
        # the mirror has one split only: train and eval are both made from it, by document
        path = next(p for s in spec.splits.values() if (p := split_file(folder, s)))
        everything = read_jsonl(path, spec.fields)
        parts = group_split(everything, spec.group, spec.eval_fraction, split_seed)
        return parts[split], everything, f"{path} ({split} part of a {1 - spec.eval_fraction:.0%}/{spec.eval_fraction:.0%} document split, seed {split_seed})", ()
    records, labels = _hub_records(spec, spec.splits[split])
    return records, records, f"hub:{spec.hub.describe()}/{spec.splits[split]}", labels


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


UNLABELLED = -1  # GLUE-style test splits: no gold label


def check_example(kind: str, e: dict, labels: tuple[str, ...]) -> dict:
    """An example of its kind's schema with text where text belongs and (classification) a label id of `labels`, the label
    names mapped to ids; else ValueError saying which field is wrong (a None sentence would otherwise fail deep in the
    tokenizer, and a -1 label be scored as an error)."""
    if kind == "classification":
        _text(e["text"], "text")
        label = e["label"]
        if isinstance(label, str):
            if label not in labels:
                raise ValueError(f"label {label!r} is not one of the label set {list(labels)}")
            return {**e, "label": labels.index(label)}
        if label == UNLABELLED:
            raise ValueError(f"label {UNLABELLED} marks an unlabelled example (a GLUE-style test split), which cannot be scored "
                             "or trained on; use a labelled split or file")
        if labels and not 0 <= label < len(labels):
            raise ValueError(f"label {label} is outside the label set (ids 0..{len(labels) - 1}: {list(labels)})")
    elif kind == "qa":
        _text(e["question"], "question")
        _text(e["context"], "context")
        for t in e["answers"]["text"]:
            _text(t, "answer")
    else:
        for t in e["sentences"]:
            _text(t, "sentence")
    return e


def iter_records(records, rows: list[int] | None = None, chunk: int = 1024):
    """(number, record) of each record (of those at `rows`, in that order). Arrow-backed records are read a chunk at a
    time: one `records[i]` per row is ~10× slower, and a training job visits every row of a 67k-row split."""
    rows = range(len(records)) if rows is None else rows
    if not hasattr(records, "column_names"):
        yield from ((i, records[i]) for i in rows)
        return
    for k in range(0, len(rows), chunk):
        part = list(rows[k:k + chunk])
        yield from zip(part, records.select(part).to_list())


def examples_by_record(spec: TaskSpec, records, origin: str, labels: tuple[str, ...], rows: list[int] | None = None):
    """(number, its examples) of each record (of those at `rows`, if given) in order, made one record at a time, checked
    (`check_example`); a bad record names where it came from and its number there."""
    for i, r in iter_records(records, rows):
        try:
            yield i, [check_example(spec.kind, e, labels) for e in spec.to_examples(r, i)]
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"{origin}: record {i + 1}: {e if isinstance(e, ValueError) else f'bad or missing field ({type(e).__name__}: {e})'}") from None


def examples_of(spec: TaskSpec, records, origin: str, labels: tuple[str, ...], rows: list[int] | None = None):
    """The examples of `examples_by_record`, one after another."""
    for _, examples in examples_by_record(spec, records, origin, labels, rows):
        yield from examples


def _open_split(task: str, split: str, source: str, data_dir, split_seed: int):
    """(Split without examples, a function that makes (number, examples) of its records afresh, one record at a time,
    those at the given record numbers only if any, labels as ids)."""
    spec = get_task(task)
    records, everything, origin, hub_labels, rows = _raw_records(spec, split, source, data_dir, split_seed)
    labels = hub_labels or spec_labels(spec, everything)  # label names as strings (the arXiv stand-in): the whole file's

    def by_record(only: list[int] | None = None):
        return examples_by_record(spec, records, origin, labels, rows if only is None else only)

    return Split(spec, split, origin, [], labels), by_record


def _no_examples(head: Split) -> DataError:
    return DataError(f"{head.origin}: no usable {head.task.kind} examples for task {head.task.id!r}")


def stream_examples(task: str, split: str, source: str = "auto", data_dir: str | os.PathLike | None = None,
                    size: int | None = None, seed: int = 0, split_seed: int = 0):
    """(Split without examples, how many examples it yields, a generator of them): the same examples as
    `load_examples`, in the same order, without holding them all — records stay where they are (memory-mapped
    Arrow for hub and prepared sources) and are converted once to choose the subsample (labels only), and the
    records holding a chosen example once more as they are consumed. What a training job uses on long-document tasks."""
    head, by_record = _open_split(task, split, source, data_dir, split_seed)
    classification = head.task.kind == "classification"
    stubs = [{"label": e["label"], "at": (i, k)} if classification else {"at": (i, k)}  # at: (record number, its k-th example)
             for i, examples in by_record() for k, e in enumerate(examples)]
    if not stubs:
        raise _no_examples(head)
    chosen = subsample(stubs, size, seed, stratify=classification)  # in the stubs' order
    keep = {c["at"] for c in chosen}
    records = list(dict.fromkeys(c["at"][0] for c in chosen))  # in order; the second pass converts only these records
    return head, len(chosen), (e for i, examples in by_record(records) for k, e in enumerate(examples) if (i, k) in keep)


def load_examples(task: str, split: str, source: str = "auto", data_dir: str | os.PathLike | None = None,
                  size: int | None = None, seed: int = 0, split_seed: int = 0) -> Split:
    head, by_record = _open_split(task, split, source, data_dir, split_seed)
    head.examples = [e for _, examples in by_record() for e in examples]  # one pass: the examples are held anyway
    if not head.examples:
        raise _no_examples(head)
    head.examples = subsample(head.examples, size, seed, stratify=head.task.kind == "classification")
    return head


def check_available(task: str, source: str, data_dir: str | os.PathLike | None) -> str:
    """Fail fast (before any training) when a task's data cannot be had; returns where it will come from."""
    spec = get_task(task)
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; allowed: {list(SOURCES)}")
    if source == "prepared":
        return read_manifest(Path(data_dir) / spec.id)["splits"]["train"]["origin"]
    if source == "hub":  # checked by the workflow's pre-flight (prepare.check_dataset), which needs the network
        return f"hub:{spec.hub.describe()}"
    folder = Path(data_dir) / spec.local if data_dir is not None else None
    files = [split_file(folder, s) for s in spec.splits.values()] if folder is not None and folder.is_dir() else []
    if any(files):
        return str(folder)
    if source == "local" or hub_offline():
        raise DataError(f"task {spec.id!r}: no data — looked for {folder}/<split>.jsonl[.gz|.xz] "
                        f"(splits {sorted(set(spec.splits.values()))})" + (" and the hub is offline" if source == "auto" else "")
                        + (f"; {spec.notes}" if spec.notes else ""))
    return f"hub:{spec.hub.describe()}"
