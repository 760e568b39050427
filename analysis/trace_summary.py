"""How each training run met its budget: expected kept fraction and λ over the last 10 % of steps.

Reads trace.tsv files only. Usage: python -m analysis.trace_summary RUN_DIR... [--markdown out.md]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from adaptive_retention.io import TRACE_FILE, read_trace


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
        Path(args.markdown).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
