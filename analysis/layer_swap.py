"""The layer-swap diagnostic's table (`scripts/layer_swap.py`): per gate set, probe and variant, the samples answered
correctly, and against the cache it was swapped into (`learned+tova@a-b` against `learned`, `tova+learned@a-b` against
`tova`) the paired difference with an exact McNemar p over the same samples (`paired.sign_flip`, one seed).

    python -m analysis.layer_swap SWAP.tsv [SWAP.tsv ...] [--markdown OUT.md]
"""

from __future__ import annotations

import argparse

import pandas as pd

from adaptive_retention.io import write_atomic

from .paired import sign_flip
from .result_tsv import read_layer_swap


def table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, variant): correct, n, its base variant, Δ correct vs the base, McNemar p. A run: one
    `source` file when the rows carry it (two runs may share gates and probe, swapping in different scores), else one
    (gates, probe)."""
    out = []
    keys = ["source", "gates", "probe"] if "source" in rows else ["gates", "probe"]
    for key, group in rows.groupby(keys, sort=False):
        gates, probe = key[-2:]
        wide = group.pivot(index="sample", columns="variant", values="correct")
        for variant in group.variant.unique():
            base = variant.split("+")[0]
            a, b = wide[variant].to_numpy(), wide[base].to_numpy()
            swapped = variant != base
            out.append(dict(run=key[0], gates=gates, probe=probe, variant=variant, correct=int(a.sum()), n=len(a),
                            base=base if swapped else "", delta=int(a.sum() - b.sum()) if swapped else 0,
                            p_value=sign_flip(a, b) if swapped else float("nan")))
    return pd.DataFrame(out)


def markdown(summary: pd.DataFrame) -> str:
    lines = []
    for run, group in summary.groupby("run", sort=False):
        gates, probe = group.gates.iloc[0], group.probe.iloc[0]
        lines += [f"**{probe}**, `{gates}`", "", "| variant | correct | vs | Δ | McNemar p |", "|---|---:|---|---:|---:|"]
        lines += [f"| {r.variant} | {r.correct} / {r.n} | {r.base} | {r.delta:+d} | {r.p_value:.2g} |" if r.base
                  else f"| {r.variant} | {r.correct} / {r.n} | | | |" for r in group.itertuples()]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("tables", nargs="+")
    p.add_argument("--markdown")
    args = p.parse_args(argv)
    summary = table(pd.concat([read_layer_swap(t).assign(source=t) for t in args.tables], ignore_index=True))
    text = markdown(summary)
    if args.markdown:
        write_atomic(args.markdown, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
