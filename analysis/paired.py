"""Paired comparisons over the same examples: is system A better than system B at the same budget, beyond seed and
example noise? And what share of the full model does each system keep, with a 95 % interval over seeds?

A *system* is a method on a kind of checkpoint: `learned (ours)`, `learned (paper)`, `heavy_hitter` (on the full
model), `random (ours)` (on a retention checkpoint of recipe `ours`); the recipe is the results' `study` field. Results
are paired by task, budget, seed and example id (the evaluation set is the same examples in the same order for every
system of a seed; anything else is an error).
- Metrics that are 0/100 per example (accuracy; micro-F1 of single-label classes): the exact sign-flip test of each
  example's seed-mean difference (`sign_flip`; with one seed McNemar's exact test), two-sided. Until session 23 the
  discordant (seed, example) pairs were pooled into one McNemar test, which counts an example once per seed.
- Other metrics (F1 of spans, ROUGE): a paired bootstrap over examples (the same resampled examples for every seed),
  two-sided percentile p-value.
The difference's 95 % interval is the paired bootstrap's in both cases. Reads result files only; never trains.
    python -m analysis.paired RESULT_JSON... --reference "learned (ours)" [--metric accuracy] --out paired.csv [--markdown paired.md]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from adaptive_retention.data import get_task
from adaptive_retention.io import write_atomic

from .aggregate import ci95

FULL = "full"
BOOTSTRAP = 10_000
TEST = "exact sign-flip over examples"  # `sign_flip`, as the tables name it


def system_of(result: dict) -> str:
    """`method`, or `method (recipe)` for a checkpoint trained with retention under a named recipe."""
    return result["method"] if not result.get("study") else f"{result['method']} ({result['study']})"


def load(paths: list[str], metric: str | None = None) -> pd.DataFrame:
    """One row per result: task, system, ratio (None for the full model), seed, ids, per-example scores of `metric`
    (default: each task's headline metric, `data.TASKS[task].metrics[0]`)."""
    rows = []
    for p in paths:
        r = json.loads(Path(p).read_text())
        name = metric or get_task(r["task"]).metrics[0]
        each = r.get("per_example")
        if not each or name not in each:
            raise SystemExit(f"paired: {p} has no per-example {name!r} scores (evaluate it again with this version)")
        rows.append({"task": r["task"], "system": system_of(r), "ratio": r["ratio"] if r["method"] != FULL else None,
                     "seed": r["seed"], "ids": tuple(map(str, each["id"])), "scores": np.asarray(each[name], dtype=float),
                     "file": p})
    return pd.DataFrame(rows)


def seed_interval(values) -> tuple[float, float]:
    """(mean, half-width of the 95 % t-interval over seeds; NaN with one seed)."""
    v = np.asarray(values, dtype=float)
    return float(v.mean()), ci95(v)


def sign_flip(a, b) -> float:
    """Exact two-sided paired test of 0/1 outcomes (any positive value is a success) over examples: a (seeds_a,
    examples), b (seeds_b, examples), or 1-D for one seed. The example is the unit: its difference is the seed-mean of a
    minus that of b (an example's seeds are not independent draws — a sample hard for a press stays hard for every
    seed — so pooling (seed, example) pairs overstates the evidence), and under the null each nonzero difference is as
    likely + as −, independently (the sign-flip permutation test). Exact: the null law of the summed difference is a
    convolution of binomials. With one seed on each side it is McNemar's exact test."""
    a, b = np.atleast_2d(np.asarray(a) > 0), np.atleast_2d(np.asarray(b) > 0)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"paired outcomes on different examples: {a.shape[1]} vs {b.shape[1]}")
    scale = np.lcm(a.shape[0], b.shape[0])  # the differences as integers: scale × (mean a − mean b)
    diff = a.sum(0) * (scale // a.shape[0]) - b.sum(0) * (scale // b.shape[0])    # (examples,)
    sizes, counts = np.unique(np.abs(diff[diff != 0]), return_counts=True)
    if not len(sizes):
        return 1.0
    law = np.ones(1)  # of Σ size·B_size, B_size ~ Binomial(count, 1/2): the positive signs' share of the sum
    for size, count in zip(sizes, counts):
        term = np.zeros(size * count + 1)
        term[::size] = stats.binom.pmf(np.arange(count + 1), count, 0.5)
        law = np.convolve(law, term)
    total = 2 * np.arange(len(law)) - int((sizes * counts).sum())  # each value of the signed sum
    return float(min(1.0, law[np.abs(total) >= abs(int(diff.sum()))].sum()))


def paired_bootstrap(a: np.ndarray, b: np.ndarray, n: int = BOOTSTRAP, seed: int = 0) -> tuple[float, float, float]:
    """a, b: (seeds, examples) scores of two systems on the same examples. (low, high) of the 95 % percentile interval
    of mean(a − b) over examples resampled with replacement (the same examples for every seed), and the two-sided
    bootstrap p-value 2·min(P(δ* ≤ 0), P(δ* ≥ 0))."""
    diff = (np.asarray(a, float) - np.asarray(b, float)).mean(0)  # (examples,): the seed-mean difference of each example
    rng = np.random.default_rng(seed)
    draws = np.stack([diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(n)])
    p = min(1.0, 2 * min((draws <= 0).mean(), (draws >= 0).mean()))
    return float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5)), float(p)


def _binary(scores: np.ndarray) -> bool:
    return bool(np.isin(scores, (0.0, 100.0)).all())


def _stack(df: pd.DataFrame, seeds: list[int]) -> np.ndarray:
    """(seeds, examples) scores of one system, rows in `seeds` order (ids: `_check_same_examples`)."""
    by_seed = {r.seed: r for r in df.itertuples()}
    return np.stack([by_seed[s].scores for s in seeds])


def compare(df: pd.DataFrame, reference: str) -> pd.DataFrame:
    """For each task and budget: the reference system against every other system with the same seeds, and each system's
    share of the full model (mean over seeds of metric / full's metric, with its 95 % interval). A full model trained
    otherwise (a recipe, e.g. `full (long)`: as many epochs as a warm-started retention run saw in all) keeps every
    token, so it is compared at every budget."""
    rows = []
    for (task, ratio), cell in df[df.ratio.notna()].groupby(["task", "ratio"]):
        full = df[(df.task == task) & (df.system == FULL)]
        cell = pd.concat([cell, df[(df.task == task) & df.ratio.isna() & (df.system != FULL)].assign(ratio=ratio)])
        ref = cell[cell.system == reference]
        for system, other in cell.groupby("system"):
            seeds = sorted(set(other.seed) & set(ref.seed)) if system != reference else sorted(other.seed)
            row = {"task": task, "ratio": ratio, "system": system, "n_seeds": len(other), "n_examples": len(other.iloc[0].scores)}
            row["mean"], row["ci95"] = seed_interval([s.mean() for s in other.scores])
            with_full = sorted(set(other.seed) & set(full.seed))
            if with_full:
                row["of_full_pct"], row["of_full_ci95"] = seed_interval(
                    [100 * _stack(other, [s]).mean() / _stack(full, [s]).mean() for s in with_full])
            if system != reference and seeds:
                _check_same_examples(pd.concat([ref, other]), seeds)
                a, b = _stack(ref, seeds), _stack(other, seeds)
                low, high, p_boot = paired_bootstrap(a, b)
                binary = _binary(a) and _binary(b)
                row.update({"vs": reference, "paired_seeds": len(seeds), "diff": float((a - b).mean()), "diff_low": low,
                            "diff_high": high, "test": TEST if binary else "paired bootstrap",
                            "p_value": sign_flip(a, b) if binary else p_boot})
            rows.append(row)
    return pd.DataFrame(rows)


def _check_same_examples(df: pd.DataFrame, seeds: list[int]) -> None:
    for s in seeds:
        ids = {r.ids for r in df[df.seed == s].itertuples()}
        if len(ids) > 1:
            files = list(df[df.seed == s].file)
            raise SystemExit(f"paired: results of seed {s} are not on the same examples ({files}); evaluate them on one set")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+")
    ap.add_argument("--reference", required=True, help="the system compared with every other, e.g. 'learned (ours)'")
    ap.add_argument("--metric", help="a per-example metric of the results (accuracy, f1_micro, f1, rouge1); default: the task's "
                                     "headline metric (data.TASKS)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--markdown")
    args = ap.parse_args(argv)
    table = compare(load(args.results, args.metric), args.reference)
    write_atomic(args.out, table.to_csv(index=False))
    if args.markdown:
        write_atomic(args.markdown, table.to_markdown(index=False, floatfmt=".3g") + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
