"""Training runs side by side, step by step: wall seconds per step (it falls as the gates close when exact-zero gates
leave the sequence, `train_gather`), the expected kept fraction and the loss; and a table of each run's total time.

Reads `step_times.tsv` and `trace.tsv` of each run folder. Usage:
  python -m analysis.step_times RUN_DIR... --labels A B --out fig.png [--markdown table.md]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from adaptive_retention.io import STEP_TIMES_FILE, TRACE_FILE, read_trace, save_figure, write_atomic

SMOOTH = 25  # steps in the rolling median of the time curve (single steps jitter by tens of percent here)


def run_table(runs: list[Path], labels: list[str]) -> pd.DataFrame:
    """One row per run: steps, total and median seconds per step, final kept fraction and loss (mean of the last 10 %)."""
    rows = []
    for run, label in zip(runs, labels):
        times, trace = read_trace(run / STEP_TIMES_FILE), read_trace(run / TRACE_FILE)
        tail = trace.tail(max(1, len(trace) // 10))
        kept = [c for c in trace.columns if c.startswith("kept_")]
        rows.append({"run": label, "steps": len(times), "train_seconds": times["seconds"].sum(),
                     "median_step_s": times["seconds"].median(),
                     "kept_last10pct": tail[kept[-1]].mean() if kept else float("nan"), "loss_last10pct": tail["loss"].mean()})
    table = pd.DataFrame(rows)
    table["speedup_vs_first"] = table["train_seconds"].iloc[0] / table["train_seconds"]
    return table


def plot(runs: list[Path], labels: list[str], out: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for run, label in zip(runs, labels):
        times, trace = read_trace(run / STEP_TIMES_FILE), read_trace(run / TRACE_FILE)
        axes[0].plot(times["step"], times["seconds"].rolling(SMOOTH, min_periods=1).median(), label=label)
        for col in [c for c in trace.columns if c.startswith("kept_")]:
            axes[1].plot(trace["step"], trace[col], label=f"{label} ({col})", lw=0.8)
        axes[2].plot(trace["step"], trace["loss"].rolling(SMOOTH, min_periods=1).mean(), label=label, lw=0.8)
    axes[0].set(xlabel="step", ylabel=f"seconds per step (rolling median of {SMOOTH})", title="step time")
    axes[1].set(xlabel="step", ylabel="expected kept fraction", title="budget")
    axes[2].set(xlabel="step", ylabel=f"loss (rolling mean of {SMOOTH})", title="loss")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--labels", nargs="+")
    ap.add_argument("--out", required=True, help="figure (PNG; a PDF beside it)")
    ap.add_argument("--markdown")
    args = ap.parse_args(argv)
    labels = args.labels or [str(r) for r in args.runs]
    if len(labels) != len(args.runs):
        ap.error(f"{len(args.runs)} runs but {len(labels)} labels")
    missing = [str(r / f) for r in args.runs for f in (STEP_TIMES_FILE, TRACE_FILE) if not (r / f).is_file()]
    if missing:
        ap.error(f"missing: {', '.join(missing)}")
    table = run_table(args.runs, labels)
    plot(args.runs, labels, args.out)
    text = table.to_markdown(index=False, floatfmt=".3f")
    if args.markdown:
        write_atomic(args.markdown, text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
