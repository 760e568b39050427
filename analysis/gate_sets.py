"""Several learned gate sets (and presses) scored on the same probe samples: per system the samples answered
correctly, and against a reference system the paired difference with an exact p over the samples (`paired.sign_flip`:
McNemar's for one seed) — how a training variant is
chosen on calibration samples (probe seed 7) before the bench's own samples (seed 0) are touched.

A system is one file's `learned` rows, named by the file's stem (`<folder>/<stem>` when an earlier file has that stem),
or a press's rows in it, named `<stem>:<method>`.
Every system must hold the same (probe, length, sample) rows as the reference, at one compression (`--compression`
picks it from files holding several, e.g. the presses' cell; their full-cache rows always count, as `<stem>:full`).

`--pool`: systems named `<name>-s<training seed>` (one file per training seed of a recipe) become one system
`<name>-s*` over its seeds, so two recipes are compared over every seed at once: each sample's seed-mean difference,
the samples the unit.

    python -m analysis.gate_sets BENCH.tsv [BENCH.tsv ...] [--compression C] [--pool] [--reference NAME] [--markdown OUT.md]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pandas as pd

from adaptive_retention.decoding.bench import FULL
from adaptive_retention.decoding.scores import LEARNED
from adaptive_retention.io import write_atomic

from .paired import sign_flip
from .result_tsv import read_bench

KEY = ["probe", "length", "sample"]


def systems(paths: list[str], compression: float | None = None) -> dict[str, pd.Series]:
    """Name → correct (0/1) indexed by KEY, for every (file, method) in the decode-bench TSVs at `compression`."""
    out = {}
    for path in paths:
        rows = read_bench(path)
        compressed = rows[rows.method != FULL]
        if compression is not None:
            compressed = compressed[compressed.compression == compression]
        elif compressed.compression.nunique() > 1:
            raise ValueError(f"{path} holds compressions {sorted(compressed.compression.unique())}: pass --compression")
        rows = pd.concat([rows[rows.method == FULL], compressed])
        stem = Path(path).name.removesuffix(".tsv")
        if any(name.split(":")[0] == stem for name in out):  # the same file name in two folders: name both by folder
            stem = f"{Path(path).parent.name}/{stem}"
        for method, group in rows.groupby("method", sort=False):
            name = stem if method == LEARNED else f"{stem}:{method}"
            if name in out:
                raise ValueError(f"{path}: system {name!r} twice (name the files apart)")
            out[name] = group.set_index(KEY)["correct"].astype(int).sort_index()
    return out


SEEDED = re.compile(r"^(?P<recipe>[^:]+)-s(?P<seed>\d+)$")  # a learned system of one training seed


def pool_seeds(found: dict[str, pd.Series]) -> dict[str, pd.Series]:
    """`<name>-s<seed>` systems → `<name>-s*`, indexed by (seed, *KEY); any other system cannot pair with them."""
    pooled: dict[str, dict[int, pd.Series]] = {}
    for name, correct in found.items():
        seeded = SEEDED.match(name)
        if seeded is None:
            raise ValueError(f"--pool pairs training seeds: {name!r} is not named <name>-s<seed>")
        pooled.setdefault(f"{seeded['recipe']}-s*", {})[int(seeded["seed"])] = correct
    return {name: pd.concat(seeds, names=["seed"]).sort_index() for name, seeds in pooled.items()}


def table(found: dict[str, pd.Series], reference: str) -> pd.DataFrame:
    """One row per system: correct, n, Δ correct against the reference and its exact p over the same samples (a pooled
    system's seeds averaged per sample)."""
    if reference not in found:
        raise ValueError(f"reference {reference!r} is not one of the systems {sorted(found)}")
    ref = found[reference]
    out = []
    for name, correct in found.items():
        if not correct.index.equals(ref.index):
            raise ValueError(f"{name!r} and the reference {reference!r} hold different samples; pair only like with like")
        other = name != reference
        out.append(dict(system=name, correct=int(correct.sum()), n=len(correct),
                        delta=int(correct.sum() - ref.sum()) if other else 0,
                        p_value=sign_flip(_seeds_by_sample(correct), _seeds_by_sample(ref)) if other else float("nan")))
    return pd.DataFrame(out)


def _seeds_by_sample(correct: pd.Series):
    """(seeds, samples) outcomes of a pooled system (index (seed, *KEY)); a one-seed system's as they are."""
    return correct.unstack("seed").T.to_numpy() if "seed" in correct.index.names else correct.to_numpy()


def markdown(summary: pd.DataFrame, reference: str) -> str:
    lines = [f"| system | correct | Δ vs {reference} | p (exact, samples paired) |", "|---|---:|---:|---:|"]
    lines += [f"| {r.system} | {r.correct} / {r.n} | {r.delta:+d} | {r.p_value:.2g} |" if r.system != reference
              else f"| {r.system} | {r.correct} / {r.n} | reference | |" for r in summary.itertuples()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("tables", nargs="+", help="decode-bench TSVs scored on the same samples")
    p.add_argument("--compression", type=float, help="the compression to compare at (needed when a file holds several)")
    p.add_argument("--pool", action="store_true", help="pool each <name>-s<seed> system's seeds into <name>-s*")
    p.add_argument("--reference", help="the system the others are paired against (default: the first file's learned rows)")
    p.add_argument("--markdown")
    args = p.parse_args(argv)
    found = systems(args.tables, args.compression)
    if args.pool:
        found = pool_seeds(found)
    reference = args.reference or next(iter(found))
    text = markdown(table(found, reference), reference)
    if args.markdown:
        write_atomic(args.markdown, text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
