"""Tables 1–2 (quality at 50 % and 30 % kept, the paper's value beside ours), Tables 5–6 (kept fraction
per block, measured) and Table 4 (compute, from the efficiency benchmark). Reads result files only.

  python analysis/tables.py --summary results/tables/summary.csv --evals RUN/eval.json ... \\
      [--efficiency results/efficiency/throughput.tsv] --out-dir results/tables
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

PAPER = Path(__file__).resolve().parent / "paper_values.csv"
METHODS = ["full", "random", "truncation", "heavy_hitter", "learned"]
LABELS = {"full": "Full", "random": "Random", "truncation": "Truncation", "heavy_hitter": "Heavy hitter (H2O)",
          "learned": "Adaptive Retention"}
PRIMARY = {"sst2": ["accuracy"], "imdb": ["accuracy"], "cuad": ["f1_micro", "f1_macro"], "arxiv": ["rouge1"],
           "arxiv-category": ["accuracy"], "qasper": ["exact_match", "f1"], "pubmed": ["rouge1", "rougeL"], "squad": ["exact_match", "f1"]}


def quality_table(summary: pd.DataFrame, paper: pd.DataFrame, budget: float) -> pd.DataFrame:
    """Long table: one row per (method, task, metric) at this budget, ours (mean, CI) beside the paper's.

    Baselines drop tokens from the full model (the `full-model` checkpoint at ratio ρ); learned
    retention is the checkpoint trained at ρ evaluated at ρ; full is the full model at 1.0.
    """
    rows = []
    if "variant" in summary:  # the main runs only (study runs are r<ρ>-<name>)
        summary = summary[~summary.variant.astype(str).str.contains("-")]
    for task in sorted(summary["task"].unique()):
        for metric in PRIMARY.get(task, []):
            s = summary[(summary.task == task) & (summary.metric == metric)]
            full = s[(s.method == "full") & (s.trained == "full-model")]
            full_mean = float(full["mean"].iloc[0]) if len(full) else np.nan
            p = paper[(paper.budget == budget) & (paper.task == task) & (paper.metric == metric)].set_index("method")["value"]
            for method in METHODS:
                if method == "full":
                    ours = full
                elif method == "learned":
                    ours = s[(s.method == "learned") & (s.trained == f"retention@{budget}") & np.isclose(s.ratio, budget)]
                else:
                    ours = s[(s.method == method) & (s.trained == "full-model") & np.isclose(s.ratio, budget)]
                if ours.empty:
                    continue
                mean, ci = float(ours["mean"].iloc[0]), float(ours["ci95"].iloc[0])
                pv = float(p[method]) if method in p.index else np.nan
                pfull = float(p["full"]) if "full" in p.index else np.nan
                rows.append({"budget": budget, "method": method, "task": task, "metric": metric, "mean": mean, "ci95": ci,
                             "n_seeds": int(ours["n_seeds"].iloc[0]), "pct_of_full": 100 * mean / full_mean if full_mean else np.nan,
                             "paper": pv, "diff_vs_paper": mean - pv, "paper_pct_of_full": 100 * pv / pfull})
    return pd.DataFrame(rows)


def quality_markdown(table: pd.DataFrame) -> str:
    """Wide view: methods × (task metric); each cell 'ours ± CI (paper P, Δ D) · % of full'."""
    if table.empty:
        return "(no results at this budget)\n"

    def cell(r):
        ci = "" if np.isnan(r["ci95"]) else f" ± {r['ci95']:.1f}"
        paper = "" if np.isnan(r["paper"]) else f" (paper {r['paper']:.1f}, Δ {r['diff_vs_paper']:+.1f})"
        return f"{r['mean']:.1f}{ci}{paper} · {r['pct_of_full']:.0f} %"

    t = table.assign(column=table.task + " " + table.metric, cell=table.apply(cell, axis=1))
    wide = t.pivot(index="method", columns="column", values="cell").reindex([m for m in METHODS if m in set(t.method)])
    wide.index = [LABELS[m] for m in wide.index]
    return wide.fillna("–").to_markdown() + "\n"


def num_layers_of(checkpoint: str, default: int = 6) -> int:
    """Blocks of the backbone a result was evaluated on (its checkpoint's config.json)."""
    try:
        cfg = json.loads((Path(checkpoint) / "config.json").read_text())
    except (OSError, json.JSONDecodeError, TypeError):
        return default
    return int(cfg.get("num_hidden_layers", cfg.get("n_layers", default)))


def kept_per_block(evals: list[dict], num_layers: int | None = None) -> pd.DataFrame:
    """Tables 5–6: measured fraction of content tokens entering each block, learned retention at its training budget."""
    rows = []
    for r in evals:
        blocks = num_layers or num_layers_of(r.get("checkpoint"))
        tr = r.get("trained_retention")
        if r["method"] != "learned" or tr is None or r["ratio"] is None or not np.isclose(r["ratio"], tr["ratio"]):
            continue
        kept = {int(b): v for b, v in r["kept_fraction"].items()}
        frac = 1.0
        for block in range(blocks):
            frac = kept.get(block, frac)
            rows.append({"task": r["task"], "budget": tr["ratio"], "seed": r["seed"], "block": block + 1, "kept_fraction": frac})
    if not rows:
        return pd.DataFrame(columns=["task", "budget", "block", "kept_fraction", "n_seeds"])
    df = pd.DataFrame(rows)
    return df.groupby(["task", "budget", "block"]).agg(kept_fraction=("kept_fraction", "mean"), n_seeds=("seed", "nunique")).reset_index()


def ablation_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Table 3: each study run (learned at its budget; threshold inference of the reference) against the
    reference run that shares its training settings."""
    if "variant" not in summary:
        return pd.DataFrame()
    study = summary[summary.variant.astype(str).str.contains("-")]
    rows = []
    for (task, variant, method), part in study.groupby(["task", "variant", "method"]):
        for metric in PRIMARY.get(task, [])[:1]:
            r = part[part.metric == metric]
            if r.empty:
                continue
            budget, name = variant.split("-", 1)
            label = "threshold inference (p > τ)" if method == "threshold" else name
            rows.append({"task": task, "budget": float(budget[1:]), "run": label, "variant": variant, "metric": metric,
                         "mean": float(r["mean"].iloc[0]), "kept_fraction": float(r["kept_fraction"].iloc[0])})
    t = pd.DataFrame(rows)
    if t.empty:
        return t
    ref = t[(t.run == "reference")].set_index("task")["mean"]
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
    ap.add_argument("--evals", nargs="*", default=[])
    ap.add_argument("--efficiency")
    ap.add_argument("--num-layers", type=int, help="blocks of the backbone (default: read from each result's checkpoint)")
    ap.add_argument("--out-dir", required=True)
    args = ap.parse_args(argv)
    from adaptive_retention.checkpoint import write_atomic

    summary = pd.read_csv(args.summary)
    paper = pd.read_csv(PAPER)
    out = Path(args.out_dir)
    for n, budget in ((1, 0.5), (2, 0.3)):
        t = quality_table(summary, paper, budget)
        write_atomic(out / f"table{n}_quality_{budget:g}.csv", t.to_csv(index=False))
        write_atomic(out / f"table{n}_quality_{budget:g}.md", quality_markdown(t))
    abl = ablation_table(summary)
    write_atomic(out / "table3_ablations.csv", abl.to_csv(index=False))
    write_atomic(out / "table3_ablations.md", (abl.to_markdown(index=False, floatfmt=".2f") if len(abl) else "(no study runs)") + "\n")
    evals = [r for p in args.evals for r in json.loads(Path(p).read_text())]
    k = kept_per_block(evals, args.num_layers)
    write_atomic(out / "table5_kept_per_block.csv", k.to_csv(index=False))
    write_atomic(out / "table5_kept_per_block.md",
                 (k.pivot_table(index=["task", "budget"], columns="block", values="kept_fraction").to_markdown(floatfmt=".3f")
                  if len(k) else "(no learned-retention evaluations)") + "\n")
    if args.efficiency:
        c = compute_table(pd.read_csv(args.efficiency, sep="\t"))
        write_atomic(out / "table4_compute.csv", c.to_csv(index=False))
        write_atomic(out / "table4_compute.md", c.drop(columns=["hardware"], errors="ignore").to_markdown(index=False, floatfmt=".3f")
                     + (f"\n\nHardware: {c['hardware'].iloc[0]}\n" if "hardware" in c else "\n"))
    print((out / "table2_quality_0.3.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
