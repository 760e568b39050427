"""Quality at each trained budget with the paper's value beside ours (its Tables 1–2), ablations (Table 3), compute
(Table 4, from the efficiency benchmark) and the kept fraction per block (Tables 5–6, measured). Reads result files
only; groups on the identity fields every result carries (adaptive_retention.plan), never on names or paths.

  python -m analysis.tables --summary results/tables/summary.csv --tidy results/tables/tidy.csv --budgets 0.5 0.3 \\
      [--efficiency results/efficiency/throughput.tsv] --out-dir results/tables
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from adaptive_retention.data import TASKS
from adaptive_retention.io import write_atomic
from adaptive_retention.methods import TABLE_METHODS, label
from adaptive_retention.plan import REFERENCE, quality_table_name

PAPER = Path(__file__).resolve().parent / "paper_values.csv"
CHANCE = "Chance (best constant prediction)"


def main_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """The runs of the grid (not the study's)."""
    return frame[frame.study.isna()]


def headline(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of each task's headline metric (its first primary metric)."""
    return frame[frame.metric == frame.task.map(lambda t: TASKS[t].metrics[0])]


def cell_rows(s: pd.DataFrame, method: str, budget: float) -> pd.DataFrame:
    """The summary rows of one quality-table cell: the full model at 1.0; learned retention trained at ρ evaluated at ρ;
    a baseline dropping tokens from the full model at ρ."""
    if method == "full":
        return s[(s.method == "full") & s.budget.isna()]
    if method == "learned":
        return s[(s.method == "learned") & np.isclose(s.budget, budget) & np.isclose(s.ratio, budget)]
    return s[(s.method == method) & s.budget.isna() & np.isclose(s.ratio, budget)]


def quality_table(summary: pd.DataFrame, paper: pd.DataFrame, budget: float) -> pd.DataFrame:
    """Long table: one row per (method, task, metric) at this budget, ours (mean, CI) beside the paper's."""
    rows = []
    summary = main_runs(summary)
    for task in sorted(summary["task"].unique()):
        for metric in TASKS[task].metrics:
            s = summary[(summary.task == task) & (summary.metric == metric)]
            full = cell_rows(s, "full", budget)
            full_mean = float(full["mean"].iloc[0]) if len(full) else np.nan
            p = paper[np.isclose(paper.budget, budget) & (paper.task == task) & (paper.metric == metric)].set_index("method")["value"]
            pfull = float(p["full"]) if "full" in p.index else np.nan
            for method in TABLE_METHODS:
                ours = cell_rows(s, method, budget)
                if ours.empty:
                    continue
                mean, ci = float(ours["mean"].iloc[0]), float(ours["ci95"].iloc[0])
                pv = float(p[method]) if method in p.index else np.nan
                rows.append({"budget": budget, "method": method, "task": task, "metric": metric, "mean": mean, "ci95": ci,
                             "n_seeds": int(ours["n_seeds"].iloc[0]), "pct_of_full": 100 * mean / full_mean if full_mean else np.nan,
                             "paper": pv, "diff_vs_paper": mean - pv, "paper_pct_of_full": 100 * pv / pfull,
                             "chance": float(ours["chance"].iloc[0])})
    return pd.DataFrame(rows)


def quality_markdown(table: pd.DataFrame) -> str:
    """Wide view: methods × (task metric); each cell 'ours ± CI (paper P, Δ D) · % of full'; a last row, the chance level
    (the best constant prediction on the same examples)."""
    if table.empty:
        return "(no results at this budget)\n"

    def cell(r):
        ci = "" if np.isnan(r["ci95"]) else f" ± {r['ci95']:.1f}"
        paper = "" if np.isnan(r["paper"]) else f" (paper {r['paper']:.1f}, Δ {r['diff_vs_paper']:+.1f})"
        return f"{r['mean']:.1f}{ci}{paper} · {r['pct_of_full']:.0f} %"

    t = table.assign(column=table.task + " " + table.metric, cell=table.apply(cell, axis=1))
    wide = t.pivot(index="method", columns="column", values="cell").reindex([m for m in TABLE_METHODS if m in set(t.method)])
    wide.index = [label(m) for m in wide.index]
    chance = t.groupby("column")["chance"].mean()
    wide.loc[CHANCE] = [f"{chance[c]:.1f}" if c in chance and not np.isnan(chance[c]) else "–" for c in wide.columns]
    return wide.fillna("–").to_markdown() + "\n"


def num_layers_of(checkpoint: str, default: int = 6) -> int:
    """Blocks of the backbone a result was evaluated on (its checkpoint's config.json)."""
    try:
        cfg = json.loads((Path(checkpoint) / "config.json").read_text())
    except (OSError, json.JSONDecodeError, TypeError):
        return default
    return int(cfg.get("num_hidden_layers", cfg.get("n_layers", default)))


def kept_per_block(evals: list[dict], num_layers: int | None = None) -> pd.DataFrame:
    """Tables 5–6: measured fraction of content tokens entering each block, learned retention of the grid's runs at
    their training budget."""
    rows = []
    for r in evals:
        if r["method"] != "learned" or r["study"] is not None or r["budget"] is None or not np.isclose(r["ratio"], r["budget"]):
            continue
        blocks = num_layers or num_layers_of(r.get("checkpoint"))
        kept = {int(b): v for b, v in r["kept_fraction"].items()}
        frac = 1.0
        for block in range(blocks):
            frac = kept.get(block, frac)
            rows.append({"task": r["task"], "budget": r["budget"], "seed": r["seed"], "block": block + 1, "kept_fraction": frac})
    if not rows:
        return pd.DataFrame(columns=["task", "budget", "block", "kept_fraction", "n_seeds"])
    df = pd.DataFrame(rows)
    return df.groupby(["task", "budget", "block"]).agg(kept_fraction=("kept_fraction", "mean"), n_seeds=("seed", "nunique")).reset_index()


def ablation_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Table 3: each study run (learned at its budget; threshold inference of the reference) against the reference
    run that shares its training settings, on the task's headline metric."""
    study = headline(summary[summary.study.notna()])
    rows = []
    for (task, variant, method), part in study.groupby(["task", "variant", "method"]):
        first = part.iloc[0]
        rows.append({"task": task, "budget": float(first.budget), "run": label(method) if method == "threshold" else first.study,
                     "study": first.study, "variant": variant, "metric": first.metric, "mean": float(first["mean"]),
                     "ci95": float(first.ci95), "n_seeds": int(first.n_seeds), "chance": float(first.chance),
                     "kept_fraction": float(first.kept_fraction)})
    t = pd.DataFrame(rows)
    if t.empty:
        return t
    ref = t[(t.run == REFERENCE)].set_index("task")["mean"]
    t["diff_vs_reference"] = t["mean"] - t.task.map(ref)
    return t.sort_values(["task", "run"]).reset_index(drop=True)


def compute_table(eff: pd.DataFrame) -> pd.DataFrame:
    """Table 4: time per batch, per 1k tokens and throughput × full, per mode, length and variant."""
    cols = ["mode", "seq_len", "variant", "batch_size", "sec_per_batch", "sec_per_1k_tokens", "speedup", "ideal_speedup"]
    cols += [c for c in ("peak_mem_bytes", "mem_reduction", "hardware") if c in eff.columns]
    t = eff[eff.variant != "plain-copy"][cols].copy()
    if "peak_mem_bytes" in t:
        t["peak_mem_mib"] = t.pop("peak_mem_bytes") / 2 ** 20
    return t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--summary", required=True)
    ap.add_argument("--evals", nargs="*", default=[], help="evaluation bundles (for the kept fraction per block)")
    ap.add_argument("--budgets", type=float, nargs="+", required=True, help="the trained budgets: one quality table each")
    ap.add_argument("--efficiency")
    ap.add_argument("--num-layers", type=int, help="blocks of the backbone (default: read from each result's checkpoint)")
    ap.add_argument("--out-dir", required=True)
    args = ap.parse_args(argv)
    summary = pd.read_csv(args.summary)
    paper = pd.read_csv(PAPER)
    out = Path(args.out_dir)
    for budget in args.budgets:
        t = quality_table(summary, paper, budget)
        write_atomic(out / f"{quality_table_name(budget)}.csv", t.to_csv(index=False))
        write_atomic(out / f"{quality_table_name(budget)}.md", quality_markdown(t))
    abl = ablation_table(summary)
    write_atomic(out / "ablations.csv", abl.to_csv(index=False))
    write_atomic(out / "ablations.md", (abl.to_markdown(index=False, floatfmt=".2f") if len(abl) else "(no study runs)") + "\n")
    evals = [r for p in args.evals for r in json.loads(Path(p).read_text())]
    k = kept_per_block(evals, args.num_layers)
    write_atomic(out / "kept_per_block.csv", k.to_csv(index=False))
    write_atomic(out / "kept_per_block.md",
                 (k.pivot_table(index=["task", "budget"], columns="block", values="kept_fraction").to_markdown(floatfmt=".3f")
                  if len(k) else "(no learned-retention evaluations)") + "\n")
    if args.efficiency:
        c = compute_table(pd.read_csv(args.efficiency, sep="\t"))
        write_atomic(out / "compute.csv", c.to_csv(index=False))
        write_atomic(out / "compute.md", c.drop(columns=["hardware"], errors="ignore").to_markdown(index=False, floatfmt=".3f")
                     + (f"\n\nHardware: {c['hardware'].iloc[0]}\n" if "hardware" in c else "\n"))
    print((out / f"{quality_table_name(min(args.budgets))}.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
