"""Gather evaluation JSONs into one tidy table and a summary over seeds (mean, std, 95 % CI).

Reads result files only; never trains. Usage:
    python -m analysis.aggregate RESULT_JSON... --tidy tidy.csv --summary summary.csv [--markdown table.md]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from adaptive_retention import plan
from adaptive_retention.io import write_atomic

IDENTITY = list(plan.IDENTITY)  # every result record carries them (plan.Run.identity)
KEYS = [k for k in IDENTITY if k not in ("run", "seed")] + ["method", "ratio"]  # a row of the summary: all seeds of one cell


def tidy(paths: list[str]) -> pd.DataFrame:
    rows = []
    for p in paths:
        try:
            loaded = json.loads(Path(p).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise SystemExit(f"aggregate: cannot read result {p}: {e}")
        for r in loaded if isinstance(loaded, list) else [loaded]:  # a bundle (list) or one result
            missing = [k for k in IDENTITY if k not in r]
            if missing:
                raise SystemExit(f"aggregate: result {p} lacks identity field(s) {missing}: it predates run plans; evaluate it again")
            rows.extend(_rows(r, p))
    return pd.DataFrame(rows, columns=[*IDENTITY, "method", "ratio", "metric", "value", "chance", "kept_fraction", "n_examples",
                                       "wall_seconds", "file"])


def _rows(r: dict, p) -> list[dict]:
    """One row per metric of one evaluation result (`chance`: the metric of the best constant prediction on the same
    examples; NaN for results written before it was recorded)."""
    kept = r.get("kept_fraction_tokens") or {}
    chance = r.get("chance") or {}
    return [{**{k: r[k] for k in IDENTITY}, "method": r["method"], "ratio": r["ratio"] if r["ratio"] is not None else np.nan,
             "metric": metric, "value": value, "chance": chance.get(metric, np.nan),
             "kept_fraction": float(np.mean(list(kept.values()))) if kept else 1.0,
             "n_examples": r["n_examples"], "wall_seconds": r["wall_seconds"], "file": str(p)} for metric, value in r["metrics"].items()]


def ci95(values: np.ndarray) -> float:
    """Half-width of the 95 % t-interval of the mean (NaN with one seed)."""
    n = len(values)
    return float(stats.t.ppf(0.975, n - 1) * np.std(values, ddof=1) / np.sqrt(n)) if n > 1 else float("nan")


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    g = df.groupby(KEYS + ["metric"], dropna=False)
    out = g["value"].agg(mean="mean", std=lambda v: float(np.std(v, ddof=1)) if len(v) > 1 else float("nan"),
                         ci95=lambda v: ci95(np.asarray(v)), n_seeds="count").reset_index()
    out["kept_fraction"] = g["kept_fraction"].mean().values
    out["chance"] = g["chance"].mean().values
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("results", nargs="+")
    ap.add_argument("--tidy", required=True)
    ap.add_argument("--summary", required=True)
    ap.add_argument("--markdown")
    args = ap.parse_args(argv)
    df = tidy(args.results)
    summary = summarise(df)
    write_atomic(args.tidy, df.to_csv(index=False))
    write_atomic(args.summary, summary.to_csv(index=False))
    if args.markdown:
        write_atomic(args.markdown, summary.to_markdown(index=False, floatfmt=".2f") + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
