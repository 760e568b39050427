"""How each training run met its budget: expected kept fraction and λ over the last 10 % of steps (`--tail`: another
share, e.g. 0.5 = the second of two epochs; the columns say which). `gap_se` is the standard error of that mean (the
per-batch kept fraction is noisy: over 25 steps a true gap of 0.01 can read 0.02).

Reads trace.tsv files only. Usage: python -m analysis.trace_summary RUN_DIR... [--tail 0.1] [--markdown out.md]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from adaptive_retention.io import TRACE_FILE, read_trace, write_atomic


def summarise(run: Path, tail: float = 0.1) -> list[dict]:
    trace = read_trace(run / TRACE_FILE)
    last = trace.tail(max(1, int(len(trace) * tail)))
    span = f"last{round(100 * tail)}pct"  # the column names say which share of the steps they summarise
    rows = []
    for col in [c for c in trace.columns if c.startswith("kept_")]:
        b = col.split("_", 1)[1]
        kept, lam = last[col], last[f"lambda_{b}"] if f"lambda_{b}" in last else last.filter(like="lambda_").iloc[:, 0]
        target = float(last[f"target_{b}"].iloc[-1])
        rows.append({"run": str(run), "layer": int(b), "steps": len(trace), "target": target,
                     f"kept_{span}_mean": kept.mean(), f"kept_{span}_std": kept.std(), "gap": kept.mean() - target,
                     "gap_se": kept.std() / len(kept) ** 0.5 if len(kept) > 1 else float("nan"),
                     f"lambda_{span}_mean": lam.mean(), f"lambda_{span}_range": lam.max() - lam.min(),
                     "lambda_max": trace[lam.name].max()})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--tail", type=float, default=0.1, help="the share of the last steps summarised, in (0, 1]")
    ap.add_argument("--markdown")
    args = ap.parse_args(argv)
    if not 0 < args.tail <= 1:
        ap.error(f"--tail must lie in (0, 1], got {args.tail}")
    rows = [r for run in args.runs if (run / TRACE_FILE).exists() for r in summarise(run, args.tail)]
    table = pd.DataFrame(rows)
    text = table.to_markdown(index=False, floatfmt=".3f") if len(table) else "(no retention traces)"
    if args.markdown:
        write_atomic(args.markdown, text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
