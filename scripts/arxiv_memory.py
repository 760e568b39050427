"""Peak memory of the largest task's data path, measured on a scaled replica: N synthetic ArXiv articles
(sentences and sentence counts drawn from the mirror's real full-text papers) served by the local Hub of
the tests, then (1) `prepare-data` from the hub into an Arrow snapshot, (2) `load_examples` of the
snapshot's train split (what a training job does first), (3) `featurize` of a sample at 4,096 tokens,
each in its own process under /usr/bin/time (peak RSS). Prints a table and the linear extrapolation to the
203,037 training articles of ccdv/arxiv-summarization.

    .venv/bin/python scripts/arxiv_memory.py --articles 20000 --featurize 200
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
FEATURIZE = """
import sys, time, tracemalloc
from transformers import AutoTokenizer
from adaptive_retention.backbones import resolve_model_path
from adaptive_retention.data import load_examples
from adaptive_retention.tasks import summarization
s = load_examples("arxiv", "train", "prepared", sys.argv[1], size=int(sys.argv[2]), seed=0)
tok = AutoTokenizer.from_pretrained(resolve_model_path("minilm"))
summarization.featurize(s.examples[:1], tok, 4096, k=7)  # warm the tokenizer and scorer
t = time.perf_counter()
f = summarization.featurize(s.examples, tok, 4096, k=7)  # timed untraced
seconds = time.perf_counter() - t
del f
tracemalloc.start()  # Python objects the features hold (RSS does not grow while freed heap is reused)
f = summarization.featurize(s.examples, tok, 4096, k=7)
held, _ = tracemalloc.get_traced_memory()
print(len(f), sum(len(x["input_ids"]) for x in f), seconds, held / 2**20)
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
    ap.add_argument("--featurize", type=int, default=200, help="articles featurised for the per-feature cost")
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
        _, out = peak(py + ["-c", FEATURIZE, str(tmp / "prep"), str(args.featurize)], offline)
        n_feat, tokens, seconds, grown = out.split()
        server.shutdown()
    per_feature = float(grown) / int(n_feat)  # memory the features hold (tracemalloc, inside the process)
    per_example = (rows["load_examples (snapshot -> examples)"] - imports) / n_train  # beyond the interpreter and its imports
    report = {"articles": n_train, "text_chars": chars, "peak_mib": rows, "imports_mib": imports, "mib_per_example": per_example, "featurize": {"n": int(n_feat), "tokens": int(tokens),
              "seconds": float(seconds), "mib_per_feature": per_feature},
              "extrapolated_203k_mib": {"load_examples": per_example * FULL_TRAIN, "features": per_feature * FULL_TRAIN,
                                        "featurize_hours_one_core": float(seconds) / int(n_feat) * FULL_TRAIN / 3600}}
    print(f"scaled replica: {n_train} train articles, {chars / 1e6:.0f} M characters of sentences ({chars / n_train / 1e3:.0f} k per article)")
    print(f"  {'interpreter + imports':<40} peak RSS {imports:8.0f} MiB")
    for name, mib in rows.items():
        print(f"  {name:<40} peak RSS {mib:8.0f} MiB")
    print(f"  featurize {n_feat} articles at 4,096 tokens (k=7)     {per_feature:8.2f} MiB per feature, {float(seconds) / int(n_feat):.2f} s per article")
    e = report["extrapolated_203k_mib"]
    print(f"  examples beyond the imports: {per_example * 1024:.0f} KiB per article")
    print(f"extrapolated to {FULL_TRAIN:,} articles of this length: examples {e['load_examples'] / 1024:.1f} GiB, features {e['features'] / 1024:.1f} GiB, "
          f"featurising {e['featurize_hours_one_core']:.1f} h on one core")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
