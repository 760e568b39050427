"""The KV-cache bench's table and figure (issue 18), from the cells' TSVs (decode-bench) and the cost TSV.

Accuracy per probe, length, method and compression with its Clopper-Pearson 95 % interval (the samples are the
unit: n per cell), and an exact McNemar test of each method against the full cache and against the best other
method at the same compression, over the same samples (`paired.sign_flip`, which is McNemar's for one seed).

Streaming perplexity (decode-perplexity): exp of the mean per-document NLL with a t-interval over documents, and
Wilcoxon signed-rank tests against the full cache and against the closest other method on the same documents.

Cost (decode-cost): cache memory and milliseconds per generated token against context length, as a figure.

The learned cache (issue 19; `--learned` cells named `<probe>-<length>-c<compression>-s<training seed>.tsv`): per
probe, length and compression, its accuracy over training seeds (mean, t-interval over seeds clipped to [0, 1];
with one seed, the exact interval over its samples, marked so) and, against the full cache and every press at that
compression, the difference and the exact sign-flip test of each sample's seed-mean difference — the samples are
the unit, as for every seeded binary outcome (`analysis.paired`); and the ceiling any cache no better than the full
one meets: the full cache's own p against the best press on these samples. Several learned variants (other training
recipes, gates trained at another compression) share one table as `--learned-as NAME CELL.tsv ...`, each on its own
rows under its name (`--learned` is the variant named "learned"); `--perplexity-as NAME ppl.tsv ...` does the same
for their perplexity files.

    python -m analysis.decoding CELL.tsv ... [--learned L.tsv ...] [--learned-as NAME L.tsv ...]... \
        [--cost cost.tsv [--cost-figure C.png]] [--perplexity ppl.tsv ... [--perplexity-as NAME ppl.tsv ...]...] \
        --table T.csv [--learned-table L.csv] --markdown T.md --figure F.png
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from adaptive_retention.decoding.defaults import LABELS, LEARNED, METHODS
from adaptive_retention.io import save_figure, write_atomic

from .aggregate import ci95
from .paired import sign_flip
from .result_tsv import read_bench, read_cost, read_perplexity

KEYS = ["probe", "length", "compression", "method"]
LEARNED_CELL = re.compile(r"-c(?P<compression>[\d.]+)-s(?P<seed>\d+)\.tsv$")  # rules/decoding.smk names them so


def load(paths: list[str]) -> pd.DataFrame:
    frames = [read_bench(p) for p in paths]
    rows = pd.concat(frames, ignore_index=True)
    duplicated = rows.duplicated(["sample", "method", "compression"])
    if duplicated.any():
        raise ValueError(f"{int(duplicated.sum())} rows appear twice (same sample, method, compression) across {paths}")
    return rows


def table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: n, accuracy, its 95 % interval, p vs the full cache and vs the best other method."""
    out = []
    for (probe, length), cell in rows.groupby(["probe", "length"], sort=True):
        by = {key: g.set_index("sample")["correct"] for key, g in cell.groupby(["method", "compression"])}
        full = by[("full", 0.0)]
        for (method, c), right in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][0] != "full", kv[0][0])):
            k, n = int(right.sum()), len(right)
            low, high = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
            row = dict(probe=probe, length=length, compression=c, method=method, n=n, accuracy=k / n,
                       ci_low=low, ci_high=high)
            if method != "full":
                row["p_vs_full"] = sign_flip(right.loc[full.index].to_numpy(), full.to_numpy())
                rivals = {m: v for (m, cc), v in by.items() if cc == c and m != method}
                best = max(rivals, key=lambda m: (rivals[m].mean(), m)) if rivals else None
                if best is not None:
                    row["best_other"] = best
                    row["p_vs_best_other"] = sign_flip(right.loc[rivals[best].index].to_numpy(), rivals[best].to_numpy())
            out.append(row)
    return pd.DataFrame(out)


def load_learned(paths: list[str], variant: str = LEARNED) -> pd.DataFrame:
    """The learned cells' rows, each with the training seed its file name gives and the variant's name."""
    frames = []
    for path in paths:
        match = LEARNED_CELL.search(Path(path).name)
        if match is None:
            raise ValueError(f"{path}: a learned cell is named <probe>-<length>-c<compression>-s<seed>.tsv")
        rows = read_bench(path)
        if set(rows["method"]) != {LEARNED}:
            raise ValueError(f"{path}: a learned cell holds only method {LEARNED!r} rows, found {sorted(set(rows['method']))}")
        frames.append(rows.assign(train_seed=int(match["seed"]), variant=variant))
    return pd.concat(frames, ignore_index=True)


def refuse_bench_names(names, taken=()) -> None:
    """A learned variant named like the full cache, a press (or a name in `taken`) would merge with its rows."""
    clash = set(names) & {"full", *METHODS, *taken}
    if clash:
        raise ValueError(f"a learned variant cannot be named like a method of the bench: {sorted(clash)}")


def load_variants(variants: dict[str, list[str]]) -> pd.DataFrame:
    """Every learned variant's cells, {name: paths}; a name that is a press's or the full cache's is refused."""
    refuse_bench_names(variants)
    return pd.concat([load_learned(paths, name) for name, paths in variants.items()], ignore_index=True)


def learned_table(learned: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Per variant, probe, length, compression: the learned cache over training seeds against the full cache and each
    press."""
    out = []
    for (variant, probe, length, c), rows in learned.groupby(["variant", "probe", "length", "compression"], sort=False):
        ours = rows.pivot(index="train_seed", columns="sample", values="correct")          # (seeds, samples)
        cell = cells[(cells.probe == probe) & (cells.length == length)]
        rivals = {m: g.set_index("sample")["correct"] for m, g in cell[cell.compression.isin([c, 0.0])].groupby("method")}
        per_seed = ours.mean(axis=1)
        if len(per_seed) > 1:  # over training seeds
            half = ci95(per_seed.to_numpy())  # 0 when the seeds agree exactly (scipy's t.interval gives NaN there)
            low, high = max(per_seed.mean() - half, 0.0), min(per_seed.mean() + half, 1.0)  # an accuracy lies in [0, 1]
        else:  # one seed: over its samples, as for a press (it says nothing of another seed)
            low, high = stats.binomtest(int(ours.to_numpy().sum()), ours.shape[1]).proportion_ci(0.95, method="exact")
        row = dict(variant=variant, probe=probe, length=length, compression=c, seeds=len(per_seed), n=ours.shape[1],
                   accuracy=per_seed.mean(), ci_low=low, ci_high=high, ci_over="seeds" if len(per_seed) > 1 else "samples")
        theirs = {method: right.loc[ours.columns].to_numpy() for method, right in sorted(rivals.items())}  # (samples,)
        for method, right in theirs.items():
            row[f"delta_{method}"] = per_seed.mean() - right.mean()
            row[f"p_{method}"] = sign_flip(ours.to_numpy(), right)  # the samples are the unit
        presses = [m for m in theirs if m != "full"]
        best = max(presses, key=lambda m: (theirs[m].mean(), m))
        row.update(best_press=best, p_full_vs_best_press=sign_flip(theirs["full"], theirs[best]),
                   beats_every_press=all(row[f"delta_{m}"] > 0 and row[f"p_{m}"] < 0.05 for m in presses),
                   # the paired test holds these gate sets fixed; a new training run clears the press only if the seeds' interval does
                   seeds_clear_best_press=len(per_seed) > 1 and low > theirs[best].mean())
        out.append(row)
    return pd.DataFrame(out).sort_values(["probe", "length", "compression"], kind="stable", ignore_index=True)


PERPLEXITY_KEYS = ["source", "document", "method", "compression"]
SAME_NLL = 1e-5  # one document's NLL read twice: other thread counts move it by ~1e-7 (float sums in another order)


def load_perplexity(paths: list[str], variants: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """decode-perplexity TSVs as one table: the bench's and the learned cache's files (named like a learned cell,
    `...-c<compression>-s<training seed>.tsv`: its seed goes in `train_seed`) each hold the full cache's rows, kept once
    when they agree within `SAME_NLL` (the same documents read the same way); rows that disagree are an error.
    `variants` ({name: paths}) are other learned variants' files: their learned rows become method `name`."""
    variants = variants or {}
    refuse_bench_names(variants, taken=[LEARNED])  # `paths`' learned rows are "learned"
    frames = []
    for name, path in [(LEARNED, p) for p in paths] + [(n, p) for n, ps in variants.items() for p in ps]:
        named = LEARNED_CELL.search(Path(path).name)
        frame = read_perplexity(path)
        ours = frame["method"] == LEARNED
        frame["train_seed"] = np.where(ours, int(named["seed"]) if named else 0, -1)
        frame.loc[ours, "method"] = name
        frames.append(frame)
    rows = pd.concat(frames, ignore_index=True)
    keys = PERPLEXITY_KEYS + ["train_seed"]
    spread = rows.groupby(keys)["nll"].agg(lambda nll: nll.max() - nll.min())
    clash = spread[spread > SAME_NLL]
    if len(clash):
        raise ValueError(f"{len(clash)} perplexity rows differ across {paths}, e.g. {dict(zip(keys, clash.index[0]))} "
                         f"(NLL apart by {clash.iloc[0]:.3g})")
    return rows.drop_duplicates(keys).reset_index(drop=True)


def _wilcoxon(diff: pd.Series) -> float:
    return stats.wilcoxon(diff).pvalue if (diff != 0).any() else np.nan


def perplexity_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per compression and method: perplexity exp(mean NLL) over documents, its 95 % interval, Wilcoxon p vs full and
    vs the closest other method (the lowest mean NLL among the rest; for a learned variant, among the presses), on the
    same documents. The learned cache's per-document NLL is its mean over training seeds (`train_seed`, if given): the
    documents are the unit."""
    out = []
    for c, at in rows.groupby("compression"):
        docs = {m: g.groupby(["source", "document"])["nll"].mean() for m, g in at.groupby("method")}
        for method, nll in sorted(docs.items(), key=lambda kv: (kv[0] != "full", kv[0])):
            low, high = stats.t.interval(0.95, len(nll) - 1, loc=nll.mean(), scale=stats.sem(nll)) if len(nll) > 1 else (np.nan,) * 2
            diff = nll - docs["full"].loc[nll.index]
            row = dict(compression=c, method=method, documents=len(nll), perplexity=np.exp(nll.mean()),
                       ci_low=np.exp(low), ci_high=np.exp(high), nll_vs_full=diff.mean(),
                       p_vs_full=np.nan if method == "full" else _wilcoxon(diff))
            rivals = {m: v for m, v in docs.items() if m not in ("full", method) and (method in METHODS or m in METHODS)}
            if method != "full":
                best = min(rivals, key=lambda m: (rivals[m].mean(), m)) if rivals else None
                to_best = nll - rivals[best].loc[nll.index] if best else pd.Series(np.nan, index=nll.index)
                row.update(closest_other=best or "—", nll_vs_closest=to_best.mean(),
                           p_vs_closest=_wilcoxon(to_best) if best else np.nan)
            out.append(row)
    return pd.DataFrame(out)


def overview(summary: pd.DataFrame) -> list[str]:
    """One line per probe, length and compression, one column per method: accuracy (%), the best in bold (ties
    too); the full cache with its 95 % interval."""
    present = set(summary["method"]) - {"full"}
    methods = [m for m in (*METHODS, LEARNED) if m in present] + sorted(present - {*METHODS, LEARNED})
    lines = ["| probe | length | compression | full cache | " + " | ".join(LABELS.get(m, m) for m in methods) + " |",
             "|---|---|---|---|" + "---:|" * len(methods)]
    for (probe, length), cell in summary.groupby(["probe", "length"]):
        full = cell[cell.method == "full"].iloc[0]
        for c in sorted(cell.compression.unique()):
            if c == 0:
                continue
            at = cell[cell.compression == c].set_index("method")["accuracy"]
            best = at.max()
            values = [("**{:.0f}**" if at.get(m) == best else "{:.0f}").format(100 * at[m]) if m in at else ""
                      for m in methods]
            lines.append(f"| {probe} | {length} | {c:g} | {100 * full.accuracy:.0f} [{100 * full.ci_low:.0f}, "
                         f"{100 * full.ci_high:.0f}] | " + " | ".join(values) + " |")
    return lines + [""]


def markdown(summary: pd.DataFrame, cost: pd.DataFrame | None, perplexity: pd.DataFrame | None = None,
             learned: pd.DataFrame | None = None) -> str:
    lines = ["# KV-cache retention bench", "",
             "Accuracy (%) per method (the best at each compression in bold), the full cache with its exact 95 % "
             "interval; the sections below give every cell's interval and exact McNemar tests.", ""]
    lines += overview(summary)
    lines += ["Accuracy (%) with its exact 95 % interval; p: exact McNemar over the same samples against the full "
              "cache and against the best other method at that compression.", ""]
    if learned is not None:
        lines += ["## The learned cache (ours) over training seeds", "",
                  "Mean accuracy (%) over seeds with its t-interval (one seed: the exact interval over its samples, "
                  "marked *); Δ and p (exact sign-flip over samples of each sample's seed-mean difference) "
                  "against the full cache and the best press at that compression; the full cache's own p against "
                  "that press (no cache better than it can show a smaller one on these samples: the test's ceiling); "
                  "the last column: whether the interval over seeds lies above the best press (a new training run "
                  "beats it, not only these).", "",
                  "| probe | length | compression | variant | seeds | accuracy | 95 % CI | Δ vs full | p | best press | Δ vs it | p | full cache vs it, p | beats every press | interval over seeds above it |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in learned.itertuples():
            r = r._asdict()
            best = r["best_press"]
            lines.append(f"| {r['probe']} | {r['length']} | {r['compression']:g} | {LABELS.get(r['variant'], r['variant'])} | "
                         f"{r['seeds']} | {100 * r['accuracy']:.1f} | "
                         f"[{100 * r['ci_low']:.1f}, {100 * r['ci_high']:.1f}]{'*' if r['ci_over'] == 'samples' else ''} | {100 * r['delta_full']:+.1f} | {r['p_full']:.2g} | "
                         f"{LABELS.get(best, best)} | {100 * r[f'delta_{best}']:+.1f} | {r[f'p_{best}']:.2g} | {r['p_full_vs_best_press']:.2g} | "
                         f"{'yes' if r['beats_every_press'] else 'no'} | {'yes' if r['seeds_clear_best_press'] else 'no'} |")
        lines.append("")
    for (probe, length), cell in summary.groupby(["probe", "length"]):
        lines += [f"## {probe}, {length} tokens (n = {cell['n'].iloc[0]})", "",
                  "| compression | method | accuracy | 95 % CI | p vs full | best other | p vs it |", "|---|---|---|---|---|---|---|"]
        for r in cell.itertuples():
            p_full = "" if r.method == "full" else f"{r.p_vs_full:.2g}"
            best = getattr(r, "best_other", "")
            best = "" if not isinstance(best, str) else LABELS.get(best, best)
            p_best = "" if not best else f"{r.p_vs_best_other:.2g}"
            lines.append(f"| {r.compression:g} | {LABELS.get(r.method, r.method)} | {100 * r.accuracy:.1f} | "
                         f"[{100 * r.ci_low:.1f}, {100 * r.ci_high:.1f}] | {p_full} | {best} | {p_best} |")
        lines.append("")
    if perplexity is not None:
        lines += ["## Streaming perplexity (documents read through the budgeted cache; Wilcoxon over documents)", "",
                  "| compression | method | documents | perplexity | 95 % CI | ΔNLL vs full | p vs full | closest other | ΔNLL vs it | p vs it |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in perplexity.to_dict("records"):
            rest = ("| | |" if r["method"] == "full" else
                    f"{r['p_vs_full']:.2g} | {LABELS.get(r['closest_other'], r['closest_other'])} | {r['nll_vs_closest']:+.4f} | {r['p_vs_closest']:.2g} |")
            lines.append(f"| {r['compression']:g} | {LABELS.get(r['method'], r['method'])} | {r['documents']} | {r['perplexity']:.2f} | "
                         f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}] | {r['nll_vs_full']:+.4f} | {rest}")
        lines.append("")
    if cost is not None:
        lines += ["## Cost: cache memory and time per generated token (ratios to the full cache, one process)", "",
                  cost.to_markdown(index=False), ""]
    return "\n".join(lines)


def figure(summary: pd.DataFrame, path: str) -> None:
    """Accuracy against compression, one panel per probe and length, one line per method (full cache at 0)."""
    import matplotlib

    matplotlib.use("Agg")
    import seaborn as sns

    data = summary.assign(label=summary["method"].map(lambda m: LABELS.get(m, m)),
                          panel=summary["probe"] + ", " + summary["length"].astype(str) + " tokens")
    full = data[data["method"] == "full"]
    lines = pd.concat([data[data["method"] != "full"]] +
                      [full.assign(method=m, label=LABELS.get(m, m)) for m in data["method"].unique() if m != "full"])
    grid = sns.relplot(data=lines.sort_values("compression"), x="compression", y="accuracy", hue="label",
                       col="panel", col_wrap=min(4, lines["panel"].nunique()), kind="line", marker="o", height=3)
    grid.set_axis_labels("compression (entries removed)", "accuracy")
    grid.set(ylim=(-0.02, 1.02))
    grid.set_titles("{col_name}")
    grid.legend.set_title(None)
    save_figure(grid.figure, path)


def cost_figure(cost: pd.DataFrame, path: str) -> None:
    """Two panels against context length: the cache's MiB (one line per compression: every score keeps the same
    number of entries) and ms per generated token (one line per method and compression, the full cache's included)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    data = cost.assign(label=cost["method"].map(lambda m: LABELS.get(m, m)),
                       kept=cost["compression"].map(lambda c: "full cache" if c == 0 else f"compression {c:g}"))
    fig, (memory, time) = plt.subplots(1, 2, figsize=(10, 3.8))
    sns.lineplot(data=data.drop_duplicates(["length", "compression"]), x="length", y="cache_mib", hue="kept",
                 marker="o", ax=memory)
    sns.lineplot(data=data, x="length", y="ms_per_token", hue="label", style="kept", marker="o", ax=time)
    for ax in (memory, time):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("context length (tokens)")
    memory.set_ylabel("cache (MiB)")
    time.set_ylabel("decode time per token (ms)")
    time.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cells", nargs="+")
    p.add_argument("--learned", nargs="+", default=[], help="the learned cache's cells (<probe>-<length>-c<c>-s<seed>.tsv)")
    p.add_argument("--learned-as", nargs="+", action="append", default=[], metavar=("NAME", "CELL"),
                   help="another learned variant's cells under its own name (repeatable)")
    p.add_argument("--learned-table", help="CSV of the learned variants' rows (empty without --learned or --learned-as)")
    p.add_argument("--cost")
    p.add_argument("--cost-figure")
    p.add_argument("--perplexity", nargs="+", help="decode-perplexity TSVs (the bench's; the learned cache's)")
    p.add_argument("--perplexity-as", nargs="+", action="append", default=[], metavar=("NAME", "TSV"),
                   help="another learned variant's decode-perplexity TSVs under its own name (repeatable)")
    p.add_argument("--table", required=True)
    p.add_argument("--markdown", required=True)
    p.add_argument("--figure", required=True)
    args = p.parse_args(argv)
    if args.cost_figure and not args.cost:
        p.error("--cost-figure draws --cost: give both")

    def named(flag: str, groups: list[list[str]], variants: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, *paths in groups:
            if not paths or name in variants:
                p.error(f"{flag} {name}: give each variant a new name and its files")
            variants[name] = paths
        return variants

    variants = named("--learned-as", args.learned_as, {LEARNED: args.learned} if args.learned else {})
    perplexity_variants = named("--perplexity-as", args.perplexity_as, {})
    if perplexity_variants and not args.perplexity:
        p.error("--perplexity-as needs --perplexity (the bench's full-cache and press rows)")
    cells = load(args.cells)
    summary = table(cells)
    learned = learned_table(load_variants(variants), cells) if variants else None
    cost = read_cost(args.cost) if args.cost else None
    perplexity = perplexity_table(load_perplexity(args.perplexity, perplexity_variants)) if args.perplexity else None
    write_atomic(args.table, summary.to_csv(index=False, float_format="%.4g"))
    write_atomic(args.markdown, markdown(summary, cost, perplexity, learned))
    if args.learned_table:
        write_atomic(args.learned_table, "" if learned is None else learned.to_csv(index=False, float_format="%.4g"))
    if learned is not None:
        summary = pd.concat([summary, learned.assign(method=learned["variant"])[["probe", "length", "compression", "method", "accuracy"]]])
    figure(summary, args.figure)
    if args.cost_figure:
        cost_figure(cost, args.cost_figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
