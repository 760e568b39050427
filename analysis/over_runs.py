"""Training variants compared over training runs, not over samples: each decode-bench TSV is one run's learned cache
on the calibration samples, and the run is the unit. gate_sets' paired test pairs samples and is blind to how far a second
run of the same variant moves (session 18: one recipe, two run seeds, 14 vs 2 of 40 passkey samples).

Each `--variant NAME FILE...` lists one variant's runs; the k-th file of every variant must come from the same stage-1
gates and run seed (`decode-train --seed`, which fixes the windows and the gates' noise), so runs pair by position.
Per variant: its accuracy per run, the mean over runs with a 95 % t-interval and the standard deviation over runs;
against the reference (the first variant) the paired difference per run with its t-interval and the exact sign-flip p
over the run pairs (scipy's permutation_test: with n pairs, p ≥ 2 / 2^n), and the Brown–Forsythe p that the two spread
equally over runs (scipy's levene, median-centred) — a variant can tie on the mean and still be the one whose every run
is usable.

    python -m analysis.over_runs --variant rank10 A.tsv B.tsv ... --variant rank30w3 C.tsv D.tsv ... [--compression C]
        [--markdown OUT.md]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from scipy import stats

from adaptive_retention.io import write_atomic

from .aggregate import ci95
from .gate_sets import systems


def run_accuracy(path: str, compression: float | None = None) -> pd.Series:
    """One run: its learned rows' correct (0/1) by sample (a file without learned rows is refused, naming it)."""
    learned = {name: correct for name, correct in systems([path], compression).items() if ":" not in name}
    if not learned:
        raise ValueError(f"{path}: no learned rows (a run is one gate set's decode-bench table)")
    return next(iter(learned.values()))


def sign_flip_p(diff: np.ndarray) -> float:
    """Two-sided exact p of the mean paired difference under random signs (1 when every difference is 0)."""
    if not np.any(diff):
        return 1.0
    return float(stats.permutation_test((diff,), np.mean, permutation_type="samples", n_resamples=np.inf).pvalue)


def spread_p(a: np.ndarray, b: np.ndarray) -> float:
    """Brown–Forsythe p that a and b spread equally (1 when both have the same absolute deviations from their medians)."""
    da, db = np.abs(a - np.median(a)), np.abs(b - np.median(b))
    if np.allclose(np.sort(da), np.sort(db)):
        return 1.0
    return float(stats.levene(a, b, center="median").pvalue)


def compare(variants: dict[str, list[str]], compression: float | None = None) -> pd.DataFrame:
    """One row per variant: runs, accuracy per run, mean ± 95 % half-width and sd over runs; vs the first variant the
    mean paired difference ± half-width, the sign-flip p and the equal-spread p. Runs that pair must hold the same
    samples."""
    runs = {name: [run_accuracy(path, compression) for path in paths] for name, paths in variants.items()}
    reference = next(iter(runs))
    counts = {name: len(r) for name, r in runs.items()}
    if len(set(counts.values())) > 1:
        raise ValueError(f"every variant needs the same runs, paired by position: runs per variant {counts}")
    ref = np.array([run.mean() for run in runs[reference]])  # (runs,) the reference's accuracy per run
    out = []
    for name, found in runs.items():
        for k, (run, ref_run) in enumerate(zip(found, runs[reference])):
            if not run.index.equals(ref_run.index):
                raise ValueError(f"{variants[name][k]} and {variants[reference][k]} hold different samples; "
                                 "pair only runs scored on the same calibration samples")
        acc = np.array([run.mean() for run in found])
        diff, other = acc - ref, name != reference
        out.append(dict(variant=name, runs=len(acc), samples=len(found[0]), per_run=acc, accuracy=acc.mean(),
                        accuracy_ci95=ci95(acc), sd=np.std(acc, ddof=1), delta=diff.mean(),
                        delta_ci95=ci95(diff) if other else float("nan"), p_value=sign_flip_p(diff) if other else float("nan"),
                        spread_p=spread_p(acc, ref) if other else float("nan")))
    return pd.DataFrame(out)


def markdown(table: pd.DataFrame) -> str:
    reference = table.variant.iloc[0]
    lines = [f"| variant | runs × samples | correct per run | mean ± 95 % | sd over runs | Δ vs {reference} ± 95 % | "
             "sign-flip p | equal-spread p |", "|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in table.itertuples():
        per_run = ", ".join(f"{round(a * r.samples)}" for a in r.per_run)
        vs = "reference | | " if r.variant == reference else \
            f"{r.delta:+.3f} ± {r.delta_ci95:.3f} | {r.p_value:.2g} | {r.spread_p:.2g}"
        lines.append(f"| {r.variant} | {r.runs} × {r.samples} | {per_run} | {r.accuracy:.3f} ± {r.accuracy_ci95:.3f} | "
                     f"{r.sd:.3f} | {vs} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", nargs="+", action="append", required=True, metavar=("NAME", "TSV"),
                   help="a variant's name, then its runs' decode-bench TSVs (paired by position across variants)")
    p.add_argument("--compression", type=float, help="the compression to compare at (needed when a file holds several)")
    p.add_argument("--markdown")
    args = p.parse_args(argv)
    if any(len(v) < 2 for v in args.variant):
        p.error("--variant takes a name and at least one TSV")
    variants = {v[0]: v[1:] for v in args.variant}
    if len(variants) < len(args.variant):
        p.error("a variant named twice")
    text = markdown(compare(variants, args.compression))
    if args.markdown:
        write_atomic(args.markdown, text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
