"""The dataset registry: the local mirrors, a synthetic mirror, document-level splits, bad data."""

import gzip
import json
import lzma
from pathlib import Path

import pytest

from adaptive_retention.data import TASKS, DataError, group_split, load_examples, read_jsonl, source_records, subsample

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
LOCAL_TASKS = [t for t in TASKS if t != "arxiv"]  # the arXiv stand-in has no abstracts (task arxiv-category)


def _write(path: Path, records, raw_lines=()):
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if path.suffix == ".gz" else lzma.open if path.suffix == ".xz" else open
    with opener(path, "wt", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
        for line in raw_lines:
            f.write(line + "\n")


def make_synthetic_mirror(root: Path) -> Path:
    """A tiny folder laid out like ../shared/data, one or two splits per task, in the hub schemas."""
    ctx = "The cat sat on the mat. Paris is the capital of France. Water boils at 100 degrees."
    squad = [{"id": f"q{i}", "title": f"doc{i % 3}", "context": ctx, "question": "What is the capital of France?",
              "answers": {"text": ["Paris"], "answer_start": [ctx.index("Paris")]}} for i in range(6)]
    _write(root / "squad" / "validation.jsonl", squad)
    _write(root / "glue-sst2" / "train.jsonl.gz", [{"sentence": f"good film {i}", "label": i % 2, "idx": i} for i in range(10)])
    _write(root / "glue-sst2" / "validation.jsonl.gz", [{"sentence": "bad film", "label": 0, "idx": 0}, {"sentence": "fine", "label": 1, "idx": 1}])
    _write(root / "imdb" / "train.jsonl.gz", [{"text": f"review {i}", "label": i % 2} for i in range(8)])
    _write(root / "imdb" / "test.jsonl.gz", [{"text": "a review", "label": 1}, {"text": "another", "label": 0}])
    contract = "This LICENSE AGREEMENT is governed by the laws of New York."
    cuad = [{"id": f"C{c}__{cat}", "title": f"C{c}", "context": contract, "question": f"Highlight {cat}",
             "answers": {"text": [span], "answer_start": [contract.index(span)]}}
            for c in range(5) for cat, span in [("Document Name", "LICENSE AGREEMENT"), ("Governing Law", "laws of New York")]]
    _write(root / "cuad-qa" / "test.jsonl.xz", cuad)
    arts = [{"article": f"article {i} : first sentence about cells .\nsecond sentence on mice .\nthird one is filler .",
             "abstract": "cells and mice ."} for i in range(5)]
    _write(root / "pubmed-summarization" / "test.jsonl.gz", arts)
    _write(root / "arxiv-summarization" / "test.jsonl.gz", arts)
    _write(root / "arxiv-unarxive-sample" / "test.jsonl.gz", [{"text": f"paper {i} text", "label": ["math.PR", "cs.LG"][i % 2], "arxiv_id": str(i), "license": "x"} for i in range(6)])
    para = "We use BERT on a dataset of tweets. The dataset has 5000 tweets."
    qasper = [{"id": f"p{i}", "title": "t", "abstract": "a", "full_text": {"section_name": ["Intro"], "paragraphs": [[para]]},
               "qas": {"question": ["What model?", "Is it good?"], "question_id": [f"p{i}q0", f"p{i}q1"],
                       "answers": [{"answer": [{"extractive_spans": ["BERT"], "unanswerable": False}, {"extractive_spans": ["BERT on a dataset"]}]},
                                   {"answer": [{"extractive_spans": [], "yes_no": True}]}]}} for i in range(5)]
    _write(root / "qasper" / "train.jsonl.gz", qasper)
    return root


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return make_synthetic_mirror(tmp_path_factory.mktemp("mirror"))


@pytest.mark.parametrize("task", LOCAL_TASKS)
def test_every_task_loads_from_the_shared_mirror(task):
    for split in ("train", "eval"):
        s = load_examples(task, split, "local", SHARED)
        assert s.examples and s.task.id == task
        keys = {"classification": {"id", "text", "label"}, "qa": {"id", "question", "context", "answers"},
                "summarization": {"id", "sentences", "abstract"}}[s.task.kind]
        assert keys <= set(s.examples[0])


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_loads_from_a_synthetic_mirror(task, synthetic):
    train, ev = load_examples(task, "train", "local", synthetic), load_examples(task, "eval", "local", synthetic)
    assert train.examples and ev.examples


def test_arxiv_summarisation_has_no_local_mirror_and_says_why():
    with pytest.raises(DataError, match="no local mirror for task 'arxiv'.*arxiv-category"):
        load_examples("arxiv", "train", "local", SHARED)


@pytest.mark.parametrize("task,group", [("squad", "title"), ("cuad", "title"), ("qasper", "id")])
def test_single_split_mirrors_are_split_by_document(task, group):
    spec = TASKS[task]
    records = read_jsonl(next((SHARED / spec.local).iterdir()), spec.fields)
    parts = group_split(records, spec.group, 0.2, seed=0)
    train_docs, eval_docs = {r[group] for r in parts["train"]}, {r[group] for r in parts["eval"]}
    assert train_docs and eval_docs and not train_docs & eval_docs
    assert len(parts["train"]) + len(parts["eval"]) == len(records)
    again = group_split(records, spec.group, 0.2, seed=0)
    assert [r[group] for r in again["eval"]] == [r[group] for r in parts["eval"]]  # seeded


def test_cuad_clauses_keep_29_categories_and_no_contract_leaks():
    train, dev, ev = (load_examples("cuad", s, "local", SHARED) for s in ("train", "dev", "eval"))
    assert len(train.labels) == 29
    contracts = lambda s: {e["id"].split("__")[0] for e in s.examples}
    assert not contracts(train) & contracts(ev) and not contracts(train) & contracts(dev) and not contracts(dev) & contracts(ev)


@pytest.mark.parametrize("task,key", [("squad", lambda e: e["id"]), ("sst2", lambda e: e["id"])])
def test_dev_is_carved_from_the_training_data_by_document(task, key):
    """dev + train = the source's training split, disjoint, dev ≈ 10 % of its documents; the eval split is untouched."""
    spec = TASKS[task]
    source, _, _, _ = source_records(spec, "train", "local", SHARED, 0)
    everything = [e for i, r in enumerate(source) for e in spec.to_examples(r, i)]
    train, dev = load_examples(task, "train", "local", SHARED), load_examples(task, "dev", "local", SHARED)
    assert sorted(map(key, train.examples + dev.examples)) == sorted(map(key, everything))
    assert not set(map(key, train.examples)) & set(map(key, dev.examples))
    groups = lambda s: {spec.group(r) for r in source if any(key(e) in s for e in spec.to_examples(r, 0))}
    if task == "sst2":
        assert abs(len(dev.examples) / len(everything) - spec.dev_fraction) < 0.01
    else:
        dev_ids = set(map(key, dev.examples))
        assert not groups(dev_ids) & groups(set(map(key, train.examples)))  # no article on both sides
    assert "held out as dev" in dev.origin and "held out as dev" in train.origin


def test_stratified_subsample_is_deterministic_and_proportional():
    examples = [{"label": int(i % 10 == 0), "i": i} for i in range(1000)]  # 10 % positives
    a, b = subsample(examples, 100, seed=3, stratify=True), subsample(examples, 100, seed=3, stratify=True)
    assert a == b and len(a) == 100 and sum(e["label"] for e in a) == 10
    c = subsample(examples, 100, seed=4, stratify=True)  # another seed: other examples, the same proportions, input order
    assert [e["i"] for e in c] != [e["i"] for e in a] and sum(e["label"] for e in c) == 10
    assert [e["i"] for e in c] == sorted(e["i"] for e in c)
    sst = load_examples("sst2", "train", "local", SHARED, size=500, seed=1)
    assert len(sst.examples) == 500 and sst.examples == load_examples("sst2", "train", "local", SHARED, size=500, seed=1).examples


# --- bad data ----------------------------------------------------------------------------------


def test_unknown_task():
    with pytest.raises(ValueError, match=r"unknown task 'mnli'; allowed: \["):
        load_examples("mnli", "train", "local", SHARED)


def test_malformed_line_names_file_and_line(tmp_path):
    _write(tmp_path / "imdb" / "train.jsonl", [{"text": "ok", "label": 1}], raw_lines=['{"text": "broken", '])
    _write(tmp_path / "imdb" / "test.jsonl", [{"text": "ok", "label": 1}])
    with pytest.raises(DataError, match=r"imdb/train.jsonl:2: malformed JSON"):
        load_examples("imdb", "train", "local", tmp_path)


def test_missing_field_names_file_line_and_field(tmp_path):
    _write(tmp_path / "glue-sst2" / "train.jsonl.gz", [{"sentence": "ok", "label": 1, "idx": 0}, {"sentence": "no label", "idx": 1}])
    _write(tmp_path / "glue-sst2" / "validation.jsonl.gz", [{"sentence": "ok", "label": 1, "idx": 0}])
    with pytest.raises(DataError, match=r"train.jsonl.gz:2: missing field\(s\) \['label'\]"):
        load_examples("sst2", "train", "local", tmp_path)


def test_empty_split(tmp_path):
    _write(tmp_path / "imdb" / "train.jsonl", [])
    _write(tmp_path / "imdb" / "test.jsonl", [{"text": "ok", "label": 1}])
    with pytest.raises(DataError, match=r"imdb/train.jsonl: empty split"):
        load_examples("imdb", "train", "local", tmp_path)


def test_corrupt_compressed_file(tmp_path):
    (tmp_path / "imdb").mkdir()
    (tmp_path / "imdb" / "train.jsonl.gz").write_bytes(b"not gzip at all")
    _write(tmp_path / "imdb" / "test.jsonl", [{"text": "ok", "label": 1}])
    with pytest.raises(DataError, match=r"imdb/train.jsonl.gz: cannot read"):
        load_examples("imdb", "train", "local", tmp_path)


def test_bad_source_and_split():
    with pytest.raises(ValueError, match="unknown source 'web'"):
        load_examples("sst2", "train", "web", SHARED)
    with pytest.raises(ValueError, match="unknown split 'validation'"):
        load_examples("sst2", "validation", "local", SHARED)


def test_hub_offline_is_a_clear_error():
    with pytest.raises(DataError, match="hub dataset nyu-mll/glue config sst2 @ a3f3ab7[0-9a-f]+ split 'train': cannot load"):
        load_examples("sst2", "train", "hub")
