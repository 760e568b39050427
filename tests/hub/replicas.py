"""Replica Hub repos built from the offline mirrors (`../shared/data`), in the real repos' layouts, for
the local Hub (`server.py`):

- parquet repos with a dataset card (`configs:` and ClassLabel `dataset_info`) at the commit the task
  pins: nyu-mll/glue (sst2/…), stanfordnlp/imdb (plain_text/…), ccdv/arxiv-summarization and
  ccdv/pubmed-summarization (section/… and document/…), ccdv/arxiv-classification (data/…, 11-class
  ClassLabel);
- script-only mains where the real repo is script-only (theatticusproject/cuad-qa, allenai/qasper),
  and the auto-converter's `refs/convert/parquet` layout for QASPER (`qasper/<split>/0000.parquet`, no card);
- the CUAD release archive (`data.zip`: train_separate_questions.json with long contracts chunked into
  `…__<Category>_<N>` ids, test.json) at the path the task pins, under `static/`;
- model repos distilbert/distilbert-base-uncased (a tiny random DistilBERT with the real uncased
  vocabulary, from the offline MiniLM's tokenizer) and allenai/longformer-base-4096 (its config only).

Contents are stand-ins where the mirror lacks a split (noted per repo); sizes are whatever the mirror
gives and are returned by `build()` so tests can compare. `build(root, data_dir, arxiv_articles=N)`
replaces the arXiv replica by N synthetic articles with the mirror's length distribution (memory runs).
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
import shutil
import zipfile
from pathlib import Path

from adaptive_retention.data import CUAD_RELEASE, HUB, TASKS, group_split, read_jsonl, split_file

CARD_HEAD = "---\n"


def _sha(*parts: str) -> str:
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()


def _repo(root: Path, kind: str, repo: str, commits: dict[str, dict[str, bytes]]) -> None:
    """commits: ref or sha -> {path: bytes}; a ref that is not 40 hex digits gets a derived sha."""
    folder = root / kind / repo
    refs = {}
    for rev, files in commits.items():
        sha = rev if re.fullmatch(r"[0-9a-f]{40}", rev) else _sha(repo, rev)
        refs[rev] = sha
        refs.setdefault("main", sha)
        for path, data in files.items():
            p = folder / "commits" / sha / path
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
    (folder / "refs.json").write_text(json.dumps(refs))


def _parquet(records: list[dict], features=None) -> bytes:
    import datasets

    buf = io.BytesIO()
    datasets.Dataset.from_list(records, features=features).to_parquet(buf)
    return buf.getvalue()


def _card(configs: dict[str, dict[str, str]], label_names: dict[str, list[str]] | None = None, fields: dict[str, list] | None = None) -> bytes:
    """A dataset card whose YAML names each config's data files per split (and its features)."""
    lines = [CARD_HEAD.strip(), "configs:"]
    for name, splits in configs.items():
        lines += [f"- config_name: {name}", "  data_files:"]
        lines += [f"  - split: {s}\n    path: {p}" for s, p in splits.items()]
    if fields:
        lines.append("dataset_info:")
        for name in configs:
            lines += [f"- config_name: {name}", "  features:"]
            for f, dtype in fields[name]:
                if f == "label" and label_names:
                    names = "\n".join(f"          '{i}': {n}" for i, n in enumerate(label_names[name]))
                    lines.append(f"  - name: label\n    dtype:\n      class_label:\n        names:\n{names}")
                else:
                    lines.append(f"  - name: {f}\n    dtype: {dtype}")
    lines += ["---", "", "Replica built from the offline mirror for the local Hub of the tests.", ""]
    return "\n".join(lines).encode()


def _mirror(data_dir: Path, task: str, split: str) -> list[dict]:
    spec = TASKS[task]
    return read_jsonl(split_file(data_dir / spec.local, split), spec.fields)


def _class_features(names: list[str], text: str = "text", extra: dict | None = None):
    import datasets

    return datasets.Features({text: datasets.Value("string"), "label": datasets.ClassLabel(names=names), **(extra or {})})


def glue(root: Path, data_dir: Path) -> dict:
    import datasets

    names = ["negative", "positive"]
    feats = _class_features(names, "sentence", {"idx": datasets.Value("int32")})
    splits = {s: _mirror(data_dir, "sst2", s) for s in ("train", "validation")}
    files = {f"sst2/{s}-00000-of-00001.parquet": _parquet(r, feats) for s, r in splits.items()}
    files["README.md"] = _card({"sst2": {s: f"sst2/{s}-*" for s in splits}}, {"sst2": names},
                               {"sst2": [("sentence", "string"), ("label", None), ("idx", "int32")]})
    _repo(root, "datasets", HUB["sst2"].repo, {HUB["sst2"].revision: files})
    return {"train": len(splits["train"]), "eval": len(splits["validation"]), "labels": names}


def imdb(root: Path, data_dir: Path) -> dict:
    names = ["neg", "pos"]
    feats = _class_features(names)
    splits = {s: [{"text": r["text"], "label": r["label"]} for r in _mirror(data_dir, "imdb", s)] for s in ("train", "test")}
    files = {f"plain_text/{s}-00000-of-00001.parquet": _parquet(r, feats) for s, r in splits.items()}
    files["README.md"] = _card({"plain_text": {s: f"plain_text/{s}-*" for s in splits}}, {"plain_text": names},
                               {"plain_text": [("text", "string"), ("label", None)]})
    _repo(root, "datasets", HUB["imdb"].repo, {HUB["imdb"].revision: files})
    return {"train": len(splits["train"]), "eval": len(splits["test"]), "labels": names}


def _squad_json(records: list[dict]) -> dict:
    docs: dict[str, dict] = {}
    for r in records:
        doc = docs.setdefault(r["title"], {"title": r["title"], "paragraphs": {}})
        para = doc["paragraphs"].setdefault(r["context"], {"context": r["context"], "qas": []})
        para["qas"].append({"id": r["id"], "question": r["question"], "is_impossible": not r["answers"]["text"],
                            "answers": [{"text": t, "answer_start": s} for t, s in zip(r["answers"]["text"], r["answers"]["answer_start"])]})
    return {"version": "aok_v1.0", "data": [{"title": d["title"], "paragraphs": list(d["paragraphs"].values())} for d in docs.values()]}


def _chunked(records: list[dict], width: int) -> list[dict]:
    """Long contracts split into chunks of `width` characters, ids suffixed `_<N>` (as in the release's train split);
    each chunk keeps the answers that fall inside it."""
    out = []
    for r in records:
        if len(r["context"]) <= width:
            out.append(r)
            continue
        for n, start in enumerate(range(0, len(r["context"]), width)):
            spans = [(t, s - start) for t, s in zip(r["answers"]["text"], r["answers"]["answer_start"]) if start <= s and s + len(t) <= start + width]
            out.append({**r, "id": f"{r['id']}_{n}", "context": r["context"][start:start + width],
                        "answers": {"text": [t for t, _ in spans], "answer_start": [s for _, s in spans]}})
    return out


def cuad(root: Path, data_dir: Path, chunk_width: int = 60_000) -> dict:
    """The mirror is the release's test split (102 contracts); the replica puts 80 % of its contracts in train
    (long ones chunked) and 20 % in test, so both files exist and no contract is in both."""
    records = _mirror(data_dir, "cuad", "test")
    parts = group_split(records, lambda r: r["title"], 0.2, seed=0)
    train = _chunked(parts["train"], chunk_width)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("train_separate_questions.json", json.dumps(_squad_json(train)))
        z.writestr("test.json", json.dumps(_squad_json(parts["eval"])))
    archive = root / "static" / CUAD_RELEASE
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.write_bytes(buf.getvalue())
    script = b"# replica of the retired loading script: datasets >= 4 refuses repos whose main holds one\n"
    _repo(root, "datasets", "theatticusproject/cuad-qa", {"main": {"cuad-qa.py": script, "README.md": b"---\n---\nCUAD QA\n"}})
    return {"train_rows": len(train), "eval_rows": len(parts["eval"]),
            "chunked_rows": sum(1 for r in train if re.search(r"_\d+$", r["id"]))}


def qasper(root: Path, data_dir: Path) -> dict:
    """The mirror's 10 papers (all from the train split): 8 in train, 2 in validation (by paper)."""
    records = _mirror(data_dir, "qasper", "train")
    parts = group_split(records, lambda r: r["id"], 0.2, seed=0)
    export = {".gitattributes": b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"}
    export.update({f"qasper/{s}/0000.parquet": _parquet(parts[p]) for s, p in (("train", "train"), ("validation", "eval"))})
    main = {"qasper.py": b"# replica of the loading script on main\n", "README.md": b"---\n---\nQASPER\n"}
    _repo(root, "datasets", "allenai/qasper", {"main": main, "refs/convert/parquet": export})
    return {"train": len(parts["train"]), "eval": len(parts["eval"])}


def _summarisation_repo(root: Path, task: str, splits: dict[str, list[dict]], configs=(("section", "\n"), ("document", " "))) -> None:
    files = {}
    for config, sep in configs:
        for s, rows in splits.items():
            files[f"{config}/{s}-00000-of-00001.parquet"] = _parquet(
                [{"article": sep.join(r["article"].split("\n")), "abstract": r["abstract"]} for r in rows])
    files["README.md"] = _card({c: {s: f"{c}/{s}-*" for s in splits} for c, _ in configs})
    _repo(root, "datasets", HUB[task].repo, {HUB[task].revision: files})


def pubmed(root: Path, data_dir: Path) -> dict:
    records = _mirror(data_dir, "pubmed", "test")
    splits = {"train": records[:10], "validation": records[10:12], "test": records[12:]}
    _summarisation_repo(root, "pubmed", splits)
    return {"train": 10, "eval": len(splits["test"])}


def _paper_as_summary(text: str) -> dict:
    """A full-text paper as an (article, abstract) pair: sentences one per line; its first three sentences as the abstract."""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
    return {"article": "\n".join(sentences[3:]), "abstract": " ".join(sentences[:3])}


def arxiv(root: Path, data_dir: Path, n_articles: int | None = None, seed: int = 0) -> dict:
    """Stand-in: the mirror's 49 full-text papers as articles (no abstracts in the mirror: the first sentences serve).
    With n_articles, that many synthetic articles whose sentence counts and lengths are drawn from the mirror's."""
    papers = [_paper_as_summary(r["text"]) for r in _mirror(data_dir, "arxiv-category", "test")]
    if n_articles:
        rng = random.Random(seed)
        lines = [s for p in papers for s in p["article"].split("\n")]
        counts = [p["article"].count("\n") + 1 for p in papers]
        papers = [{"article": "\n".join(rng.choices(lines, k=rng.choice(counts))), "abstract": " ".join(rng.choices(lines, k=3))}
                  for _ in range(n_articles)]
    n = len(papers)
    splits = {"train": papers[: n - 2 * max(1, n // 10)], "validation": papers[n - 2 * max(1, n // 10): n - max(1, n // 10)],
              "test": papers[n - max(1, n // 10):]}
    _summarisation_repo(root, "arxiv", splits, (("section", "\n"),) if n_articles else (("section", "\n"), ("document", " ")))
    return {"train": len(splits["train"]), "eval": len(splits["test"])}


ARXIV_CLASSES = ["math.AC", "cs.CV", "cs.AI", "cs.SY", "math.GR", "cs.CE", "cs.PL", "cs.IT", "cs.DS", "cs.NE", "math.ST"]


def arxiv_classification(root: Path, data_dir: Path) -> dict:
    """The mirror's papers with labels cast to the 11 ccdv classes (stand-ins: the mirror's categories differ)."""
    rows = [{"text": r["text"], "label": i % len(ARXIV_CLASSES)} for i, r in enumerate(_mirror(data_dir, "arxiv-category", "test"))]
    feats = _class_features(ARXIV_CLASSES)
    splits = {"train": rows[:39], "validation": rows[39:44], "test": rows[44:]}
    files = {f"data/{s}-00000-of-00001.parquet": _parquet(r, feats) for s, r in splits.items()}
    files["README.md"] = _card({"default": {s: f"data/{s}-*" for s in splits}}, {"default": ARXIV_CLASSES},
                               {"default": [("text", "string"), ("label", None)]})
    _repo(root, "datasets", HUB["arxiv-category"].repo, {HUB["arxiv-category"].revision: files})
    return {"train": len(splits["train"]), "eval": len(splits["test"]), "labels": ARXIV_CLASSES}


def models(root: Path) -> None:
    """A tiny random DistilBERT under the real id (real uncased vocabulary), and Longformer's config only."""
    import tempfile

    import torch
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertModel, LongformerConfig

    from adaptive_retention.backbones import resolve_model_path

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(resolve_model_path("minilm"))
    with tempfile.TemporaryDirectory() as tmp:
        DistilBertModel(DistilBertConfig(vocab_size=tok.vocab_size, dim=32, n_heads=2, hidden_dim=64, n_layers=2,
                                         max_position_embeddings=512)).save_pretrained(tmp)
        tok.save_pretrained(tmp)
        files = {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}
    _repo(root, "models", "distilbert/distilbert-base-uncased", {"main": files})
    config = LongformerConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=64, attention_window=8)
    _repo(root, "models", "allenai/longformer-base-4096", {"main": {"config.json": config.to_json_string().encode()}})


def build(root: str | Path, data_dir: str | Path, arxiv_articles: int | None = None, only: tuple[str, ...] | None = None) -> dict:
    """Every replica under `root`; returns the sizes each task must load with (and label names)."""
    root, data_dir = Path(root), Path(data_dir)
    shutil.rmtree(root, ignore_errors=True)
    builders = {"sst2": glue, "imdb": imdb, "cuad": cuad, "qasper": qasper, "pubmed": pubmed,
                "arxiv": lambda r, d: arxiv(r, d, arxiv_articles), "arxiv-category": arxiv_classification}
    sizes = {task: f(root, data_dir) for task, f in builders.items() if only is None or task in only}
    if only is None or "models" in only:
        models(root)
    return sizes


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="build the local Hub's replica repos")
    ap.add_argument("root")
    ap.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2].parent / "shared" / "data"))
    ap.add_argument("--arxiv-articles", type=int)
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    print(json.dumps(build(args.root, args.data_dir, args.arxiv_articles, tuple(args.only) if args.only else None), indent=1))
