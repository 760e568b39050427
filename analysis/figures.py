"""The figures a user decides from: the Pareto curves (quality vs kept ratio, vs measured throughput and
peak memory) and "what is kept" (real inputs, each token shaded by the block where it was dropped).
Reads result files only.

  python -m analysis.figures --tidy results/tables/tidy.csv --efficiency results/efficiency/throughput.tsv \\
      --examples RUN/kept_examples.json ... --out-dir results/figures
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

import pandas as pd

from adaptive_retention.config import BETA, GAMMA, ZETA
from adaptive_retention.data import TASKS
from adaptive_retention.io import save_figure
from adaptive_retention.methods import BASELINES, label
from adaptive_retention.plan import REFERENCE

from .aggregate import ci95
from .tables import headline, main_runs


def trained_at(budget: float) -> str:
    return f"{label('learned')} (trained at {budget:g})"


def pareto_frame(tidy: pd.DataFrame) -> pd.DataFrame:
    """Quality against kept ratio, one line per method: learned scores of each retention checkpoint, baselines
    on the full model, and the full model at ratio 1."""
    rows = headline(main_runs(tidy))
    full = rows[rows.method == "full"].assign(ratio=1.0)
    learned = rows[(rows.method == "learned") & rows.budget.notna()]
    learned = learned.assign(method=learned.budget.map(trained_at))
    base = rows[rows.method.isin(BASELINES) & rows.budget.isna()].assign(method=lambda f: f.method.map(label))
    return pd.concat([full.assign(method=label("full")), learned, base], ignore_index=True)


def _cost_panel(ax, part: pd.DataFrame, full: float, eff: pd.DataFrame, mode: str, column: str, axis: str, task: str) -> None:
    """Quality (at each benchmarked ratio) against a measured cost of the same variant, one line per method."""
    rows = eff[eff["mode"] == mode]
    T = rows.seq_len.max()
    rows = rows[(rows.seq_len == T) & (rows.variant != "plain-copy")]
    if column not in rows:
        return
    for method in ("learned", *BASELINES):
        pts = []
        for _, r in rows[rows.method == method].iterrows():
            # learned: the checkpoint trained at this ratio; baselines: on the full model
            match = part.method == (trained_at(r.ratio) if method == "learned" else label(method))
            q = part[match & ((part.ratio - r.ratio).abs() < 1e-9)]["value"]
            if len(q):
                pts.append((r[column], q.mean()))
        if pts:
            ax.plot(*zip(*sorted(pts)), "o-", label=label(method))
    plain = rows[rows.variant == "plain"]
    if len(plain):
        ax.plot(plain[column], [full], "ks", label="full model")
    ax.set(xlabel=f"{axis}, T = {T})", ylabel=f"{task} {TASKS[task].metrics[0]}", title=f"{task}: quality vs {'throughput' if column == 'examples_per_s' else 'memory'}")
    ax.legend(fontsize=7)


def pareto_figure(tidy: pd.DataFrame, eff: pd.DataFrame | None, caption: str):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    frame = pareto_frame(tidy)
    tasks = sorted(frame.task.unique())
    ncols = 3 if eff is not None else 1
    if eff is not None and "peak_mem_bytes" in eff:
        eff = eff.assign(peak_mem_mib=eff.peak_mem_bytes / 2 ** 20)
    fig, axes = plt.subplots(len(tasks), ncols, figsize=(5.2 * ncols, 3.4 * len(tasks)), squeeze=False)
    for row, task in enumerate(tasks):
        part = frame[frame.task == task]
        ax = axes[row][0]
        sns.lineplot(data=part[part.method != label("full")], x="ratio", y="value", hue="method", marker="o", errorbar=("ci", 95), ax=ax)
        full = part[part.method == label("full")]["value"].mean()
        ax.axhline(full, color="black", lw=0.8, ls="--", label="full model")
        ax.axhline(0.95 * full, color="grey", lw=0.6, ls=":", label="95 % of full")
        ax.set(xlabel="kept ratio ρ (content tokens)", ylabel=f"{task} {TASKS[task].metrics[0]}", title=f"{task}: quality vs kept ratio")
        ax.legend(fontsize=7)
        if eff is not None:
            _cost_panel(axes[row][1], part, full, eff, "inference", "examples_per_s", "measured examples/s (inference", task)
            mem_mode = "train_step" if "train_step" in set(eff["mode"]) else "inference"
            _cost_panel(axes[row][2], part, full, eff, mem_mode, "peak_mem_mib", f"peak memory beyond weights, MiB ({mem_mode}", task)
    fig.suptitle(caption, fontsize=8)
    fig.tight_layout()
    return fig


DEFAULTS = {"beta": BETA, "gamma": GAMMA, "zeta": ZETA}  # where the reference run sits
AXES = {"beta": "temperature β", "gamma": "stretch γ", "zeta": "stretch ζ"}


def sensitivity_figure(tidy: pd.DataFrame, caption: str):
    """Figure 2: quality of the study runs against β, γ and ζ (the reference run sits at the defaults): each seed a dot,
    the mean with its 95 % interval over seeds, the chance level and the full model's score as lines."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    study = headline(tidy[tidy.study.notna() & (tidy.method == "learned")])
    if study.empty:
        return None
    task, metric = study.task.iloc[0], study.metric.iloc[0]
    full = headline(main_runs(tidy))
    full = full[(full.task == task) & (full.method == "full")].value
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), sharey=True)
    ref = study[study.study == REFERENCE]
    for ax, (param, default) in zip(axes, DEFAULTS.items()):
        groups = ([(default, ref.value)] if len(ref) else [])
        groups += [(value, part.value) for value, part in study[study.sweep_param == param].groupby("sweep_value")]
        if groups:
            groups.sort(key=lambda g: g[0])
            xs = [x for x, _ in groups]
            for x, values in groups:
                ax.plot([x] * len(values), values, ".", color="grey", alpha=0.6)
            ax.errorbar(xs, [v.mean() for _, v in groups], yerr=[ci95(v.to_numpy()) for _, v in groups], fmt="o-", capsize=3,
                        label=f"mean ± 95 % CI ({study.seed.nunique()} seed(s))")
            ax.axvline(default, color="grey", lw=0.8, ls=":", label=f"default {default}")
        if study.chance.notna().any():
            ax.axhline(study.chance.mean(), color="red", lw=0.8, ls="--", label="chance (best constant prediction)")
        if len(full):
            ax.axhline(full.mean(), color="black", lw=0.8, ls="-.", label="full model")
        ax.set(xlabel=AXES[param], ylabel=f"{task} {metric}")
        ax.legend(fontsize=6)
    fig.suptitle(f"Figure 2: sensitivity to the Hard-Concrete parameters (learned retention at ρ = {study.ratio.iloc[0]:g}). {caption}",
                 fontsize=8)
    fig.tight_layout()
    return fig


def kept_figure(examples: list[dict], title: str, width: int = 110):
    """Each token shaded by the block at which it was dropped (darker = kept longer; black = kept to the end)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = examples[:4]
    lines = []
    for ex in shown:
        line, n = [], 0
        for tok, drop in zip(ex["tokens"], ex["dropped_at"]):
            if n + len(tok) + 1 > width:
                lines.append(line)
                line, n = [], 0
            line.append((tok, drop, ex["boundaries"]))
            n += len(tok) + 1
        lines.append(line)
        lines.append(None)  # gap between examples
    fig, ax = plt.subplots(figsize=(12, 0.28 * len(lines) + 1.0))
    ax.axis("off")
    cmap = matplotlib.colormaps["Blues"]
    for i, line in enumerate(lines):
        if not line:
            continue
        x = 0.0
        for tok, drop, bounds in line:
            shade = 1.0 if drop is None else 0.25 + 0.5 * (bounds.index(drop) / max(1, len(bounds)))
            color = "black" if drop is None else cmap(shade)
            ax.text(x, -i, tok, fontsize=8, family="monospace", color="white" if drop is None else "black",
                    bbox=dict(facecolor=color, edgecolor="none", pad=1.2))
            x += (len(tok) + 1) / width
    ax.set_xlim(0, 1.05)
    ax.set_ylim(-len(lines), 1)
    ax.set_title(title + "\nblack: kept to the last block; blue: dropped (lighter = dropped earlier)", fontsize=9)
    return fig


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tidy", required=True)
    ap.add_argument("--efficiency")
    ap.add_argument("--examples", nargs="*", default=[])
    ap.add_argument("--caption", default="")
    ap.add_argument("--out-dir", required=True)
    args = ap.parse_args(argv)
    out = Path(args.out_dir)
    tidy = pd.read_csv(args.tidy)
    eff = pd.read_csv(args.efficiency, sep="\t") if args.efficiency else None
    save_figure(pareto_figure(tidy, eff, args.caption), out / "pareto.png")
    fig = sensitivity_figure(tidy, args.caption)
    if fig is not None:
        save_figure(fig, out / "sensitivity.png")
    shown = {}
    for p in args.examples:
        rows = json.loads(Path(p).read_text())
        if rows:
            shown.setdefault(rows[0]["task"], rows)
    for task, rows in shown.items():
        title = f"{task}: what learned retention keeps at ρ = {rows[0]['ratio']} ({rows[0]['run']})"
        save_figure(kept_figure(rows, textwrap.shorten(title, 140)), out / f"kept_{task}.png")
    print(f"figures in {out}: pareto.png, " + ", ".join(f"kept_{t}.png" for t in shown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
