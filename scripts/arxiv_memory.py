"""Peak memory of the largest task's data path, measured on a scaled replica: N synthetic ArXiv articles
(sentences and sentence counts drawn from the mirror's real full-text papers) served by the local Hub of
the tests, then, each in its own process under /usr/bin/time (peak RSS):
(1) `prepare-data` from the hub into an Arrow snapshot;
(2) `load_examples` of the snapshot's train split: every article as Python strings (the old training path);
(3) `train.training_data` on M articles: what a training job now does — examples streamed from the
    snapshot, featurised a chunk at a time at 4,096 tokens, features kept as compact arrays (their size by
    sys.getsizeof, seconds per article);
(4) the old features as Python lists, for comparison (tracemalloc, a few articles).
Prints a table and the linear extrapolation to the 203,037 training articles of ccdv/arxiv-summarization.

    .venv/bin/python scripts/arxiv_memory.py --articles 20000 --train-size 100 --out measurements/arxiv_memory.json
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "hub"))
FULL_TRAIN = 203_037

LOAD = """
import sys
from adaptive_retention.data import load_examples
s = load_examples("arxiv", "train", "prepared", sys.argv[1])
print(len(s.examples), sum(len(x) for e in s.examples for x in e["sentences"]))
"""
TRAINING_DATA = """
import sys, time
from transformers import AutoTokenizer
from adaptive_retention.backbones import resolve_model_path
from adaptive_retention.config import TrainConfig
from adaptive_retention.train import training_data
tok = AutoTokenizer.from_pretrained(resolve_model_path("minilm"))
cfg = TrainConfig(task="arxiv", source="prepared", data_dir=sys.argv[1], train_size=int(sys.argv[2]), k=7)
t = time.perf_counter()
split, n, features = training_data(cfg, tok, 4096)
seconds = time.perf_counter() - t
held = sum(sys.getsizeof(f) + sum(sys.getsizeof(v) for v in f.values()) for f in features)  # arrays own their buffers
print(n, sum(len(f["input_ids"]) for f in features), seconds, held / 2**20)
"""
LIST_FEATURES = """
import sys, tracemalloc
from transformers import AutoTokenizer
from adaptive_retention.backbones import resolve_model_path
from adaptive_retention.data import load_examples
from adaptive_retention.tasks import summarization
s = load_examples("arxiv", "train", "prepared", sys.argv[1], size=int(sys.argv[2]), seed=0)
tok = AutoTokenizer.from_pretrained(resolve_model_path("minilm"))
tracemalloc.start()
f = summarization.featurize(s.examples, tok, 4096, k=7)
print(len(f), tracemalloc.get_traced_memory()[0] / 2**20)
"""


def peak(cmd: list[str], env: dict) -> tuple[float, str]:
    """(peak RSS in MiB, stdout) of one process."""
    out = subprocess.run(["/usr/bin/time", "-f", "PEAK_KB %M", *cmd], env=env, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    kb = int(next(line for line in out.stderr.splitlines() if line.startswith("PEAK_KB")).split()[1])
    return kb / 1024, out.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--articles", type=int, default=20000)
    ap.add_argument("--train-size", type=int, default=100, help="articles a training job featurises in step (3)")
    ap.add_argument("--list-size", type=int, default=20, help="articles featurised into Python lists in step (4)")
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--out", help="also write the figures as JSON here")
    args = ap.parse_args()
    import replicas
    from server import serve

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        sizes = replicas.build(tmp / "repos", args.data_dir, arxiv_articles=args.articles, only=("arxiv",))
        print(f"replica: {sizes['arxiv']} ({time.perf_counter() - t0:.0f}s)", file=sys.stderr)
        server, _ = serve(tmp / "repos")
        url = f"http://127.0.0.1:{server.server_address[1]}"
        env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
        env.update(HF_ENDPOINT=url, HF_HOME=str(tmp / "hf"), HF_HUB_DISABLE_PROGRESS_BARS="1", HF_DATASETS_DISABLE_PROGRESS_BARS="1")
        py = [sys.executable]
        rows = {}
        rows["prepare-data (hub -> Arrow snapshot)"], _ = peak(py + ["-m", "adaptive_retention.cli", "prepare-data", "--task", "arxiv", "--source",
                                                                      "hub", "--out", str(tmp / "prep" / "arxiv")], env)
        offline = {**env, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        rows["load_examples (snapshot -> examples)"], out = peak(py + ["-c", LOAD, str(tmp / "prep")], offline)
        n_train, chars = map(int, out.split())
        imports, _ = peak(py + ["-c", "import datasets, transformers, adaptive_retention.data, adaptive_retention.tasks"], offline)
        rows["training_data (stream -> compact features)"], out = peak(py + ["-c", TRAINING_DATA, str(tmp / "prep"),
                                                                              str(args.train_size)], offline)
        n_feat, tokens, seconds, held = out.split()
        _, out = peak(py + ["-c", LIST_FEATURES, str(tmp / "prep"), str(args.list_size)], offline)
        n_list, list_held = out.split()
        server.shutdown()
    per_feature = float(held) / int(n_feat)
    per_list_feature = float(list_held) / int(n_list)
    per_example = (rows["load_examples (snapshot -> examples)"] - imports) / n_train  # beyond the interpreter and its imports
    job_peak = rows["training_data (stream -> compact features)"] + per_feature * (FULL_TRAIN - int(n_feat))
    report = {"articles": n_train, "text_chars": chars, "peak_mib": rows, "imports_mib": imports, "mib_per_example": per_example,
              "training_data": {"n": int(n_feat), "tokens": int(tokens), "seconds": float(seconds), "mib_per_compact_feature": per_feature},
              "list_features": {"n": int(n_list), "mib_per_feature": per_list_feature},
              "extrapolated_203k": {"old_examples_gib": per_example * FULL_TRAIN / 1024, "old_list_features_gib": per_list_feature * FULL_TRAIN / 1024,
                                    "compact_features_gib": per_feature * FULL_TRAIN / 1024, "train_job_peak_gib": job_peak / 1024,
                                    "featurize_hours_one_core": float(seconds) / int(n_feat) * FULL_TRAIN / 3600}}
    e = report["extrapolated_203k"]
    print(f"scaled replica: {n_train} train articles, {chars / 1e6:.0f} M characters of sentences ({chars / n_train / 1e3:.0f} k per article)")
    print(f"  {'interpreter + imports':<44} peak RSS {imports:8.0f} MiB")
    for name, mib in rows.items():
        print(f"  {name:<44} peak RSS {mib:8.0f} MiB")
    print(f"  old path: examples {per_example * 1024:.0f} KiB per article; features as lists {per_list_feature:.3f} MiB per article "
          f"({n_list} articles)")
    print(f"  new path: features as arrays {per_feature:.3f} MiB per article ({n_feat} articles, {float(seconds) / int(n_feat):.2f} s each)")
    print(f"extrapolated to {FULL_TRAIN:,} articles of this length: old path examples {e['old_examples_gib']:.1f} GiB + features "
          f"{e['old_list_features_gib']:.1f} GiB; new path: a training job's peak {e['train_job_peak_gib']:.1f} GiB "
          f"(features {e['compact_features_gib']:.1f} GiB); featurising {e['featurize_hours_one_core']:.1f} h on one core")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
