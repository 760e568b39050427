"""Wall time of `snakemake -n --configfile config/paper.yaml` (the paper grid's DAG, pre-flight included) and whether
torch was imported while parsing, for this tree and, alternating with it, another checkout (e.g. a git worktree of an
older commit). Pre-flight runs against the local Hub of the tests (replicas of the real repos), offline otherwise.

  .venv/bin/python scripts/parse_time.py [--other /tmp/before-src] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "hub"))
SITE = "import atexit, sys\natexit.register(lambda: sys.stderr.write(f\"TORCH_IMPORTED={'torch' in sys.modules}\\n\"))\n"


def parse(tree: Path, env: dict, extra: list[str] | None) -> tuple[float, str, int]:
    command = ["--version"] if extra is None else ["-n", "--configfile", "config/paper.yaml", "--quiet", "rules", *extra]
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "snakemake", *command], cwd=tree, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    torch = [line for line in out.stderr.splitlines() if line.startswith("TORCH_IMPORTED=")]
    return seconds, torch[0].split("=")[1] if torch else "?", out.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--other", type=Path, help="another checkout to time alternately (its src/ goes first on PYTHONPATH)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import replicas

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        replicas.build(tmp / "repos", ROOT.parent / "shared" / "data")
        (tmp / "site").mkdir()
        (tmp / "site" / "sitecustomize.py").write_text(SITE)
        server = subprocess.Popen([sys.executable, str(ROOT / "tests/hub/server.py"), str(tmp / "repos"), "--port-file", str(tmp / "port")])
        try:
            while not (tmp / "port").exists():
                time.sleep(0.05)
            url = f"http://127.0.0.1:{(tmp / 'port').read_text()}"
            base = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
            base.update(HF_ENDPOINT=url, ADAPTIVE_RETENTION_ARCHIVE_ENDPOINT=url, HF_HOME=str(tmp / "hf"), ADAPTIVE_RETENTION_CACHE=str(tmp / "ar"))
            trees = {"this tree": (ROOT, str(tmp / "site"))}
            if args.other:
                trees["other"] = (args.other, f"{tmp / 'site'}{os.pathsep}{args.other / 'src'}")
            prepared = tmp / "prepared"  # snapshots present (as after the preparation stage): no pre-flight, what every rerun parses
            for task in ("sst2", "imdb", "cuad", "arxiv", "qasper", "pubmed"):
                (prepared / "data" / task).mkdir(parents=True)
                (prepared / "data" / task / "manifest.json").write_text("{}")
            for slug in ("distilbert--distilbert-base-uncased", "allenai--longformer-base-4096"):
                (prepared / "models" / slug).mkdir(parents=True)
                (prepared / "models" / slug / "prepared.json").write_text("{}")
            scenarios = {"first parse (pre-flight)": [], "rerun (snapshots prepared)": ["--config", f"prepared_dir={prepared}"],
                         "snakemake --version": None}  # Snakemake's own start-up, the floor of every parse
            times = {(name, sc): [] for name in trees for sc in scenarios}
            for _ in range(args.repeats):
                for sc, extra in scenarios.items():
                    for name, (tree, path) in trees.items():
                        seconds, torch, rc = parse(tree, {**base, "PYTHONPATH": path}, extra)
                        times[name, sc].append(seconds)
                        print(f"{sc:>27} {name:>10}: {seconds:6.2f} s  rc={rc}  torch imported while parsing: {torch}", flush=True)
            for (name, sc), ts in times.items():
                print(f"{sc:>27} {name:>10}: median {statistics.median(ts):.2f} s over {len(ts)}")
        finally:
            server.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
