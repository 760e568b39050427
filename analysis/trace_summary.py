"""How each training run met its budget: expected kept fraction and λ over the last 10 % of steps. `gap_se` is the
standard error of that mean (the per-batch kept fraction is noisy: over 25 steps a true gap of 0.01 can read 0.02).

Reads trace.tsv files only. Usage: python -m analysis.trace_summary RUN_DIR... [--markdown out.md]
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
    rows = []
    for col in [c for c in trace.columns if c.startswith("kept_")]:
        b = col.split("_", 1)[1]
        kept, lam = last[col], last[f"lambda_{b}"] if f"lambda_{b}" in last else last.filter(like="lambda_").iloc[:, 0]
        target = float(last[f"target_{b}"].iloc[-1])
        rows.append({"run": str(run), "layer": int(b), "steps": len(trace), "target": target,
                     "kept_last10pct_mean": kept.mean(), "kept_last10pct_std": kept.std(), "gap": kept.mean() - target,
                     "gap_se": kept.std() / len(kept) ** 0.5 if len(kept) > 1 else float("nan"),
                     "lambda_last10pct_mean": lam.mean(), "lambda_last10pct_range": lam.max() - lam.min(),
                     "lambda_max": trace[lam.name].max()})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--markdown")
    args = ap.parse_args(argv)
    rows = [r for run in args.runs if (run / TRACE_FILE).exists() for r in summarise(run)]
    table = pd.DataFrame(rows)
    text = table.to_markdown(index=False, floatfmt=".3f") if len(table) else "(no retention traces)"
    if args.markdown:
        write_atomic(args.markdown, text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
