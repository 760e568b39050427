"""Gate sets compared on decode-train's held-out windows (decode-heldout's TSV) — where a recipe for the learned cache
is chosen, on held-out text and never on the probes.

Per gate set: the mean KL, recall KL and kept fraction over the windows with 95 % t-intervals; against a reference
gate set (default: the first in the file), the mean paired difference per window with its t-interval and a Wilcoxon
signed-rank p-value (the windows are the unit, the same windows and copied spans for every gate set).

    python -m analysis.heldout HELDOUT.tsv [--reference GATES] [--markdown T.md]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

from adaptive_retention.io import write_atomic

from .aggregate import ci95
from .decoding import _wilcoxon
from .result_tsv import read_heldout

METRICS = ("kl", "recall_kl", "kept")


def compare(rows: pd.DataFrame, reference: str | None = None) -> pd.DataFrame:
    """One row per gate set: n windows; per metric its mean ± 95 % half-width, and vs the reference the mean
    difference ± half-width and the Wilcoxon p."""
    order = list(dict.fromkeys(rows.gates))
    reference = reference or order[0]
    if reference not in order:
        raise ValueError(f"reference {reference!r} is not among the gate sets {order}")
    wide = {m: rows.pivot(index="window", columns="gates", values=m) for m in METRICS}  # (windows, gate sets)
    if wide["kl"].isna().any().any():
        raise ValueError("the gate sets were not scored on the same windows (run decode-heldout on them together)")
    out = []
    for gates in order:
        row = dict(gates=gates, windows=len(wide["kl"]))
        for m in METRICS:
            values, diff = wide[m][gates].to_numpy(), (wide[m][gates] - wide[m][reference]).to_numpy()
            row.update({m: values.mean(), f"{m}_ci95": ci95(values), f"{m}_vs_ref": diff.mean(),
                        f"{m}_vs_ref_ci95": ci95(diff), f"{m}_p": np.nan if gates == reference else _wilcoxon(pd.Series(diff))})
        out.append(row)
    return pd.DataFrame(out)


def markdown(table: pd.DataFrame) -> str:
    head = "| gates | windows | KL | Δ KL vs ref, p | recall KL | Δ recall KL, p | kept |\n|---|---:|---:|---:|---:|---:|---:|\n"
    cell = lambda r, m: f"{r[m]:.4f} ± {r[f'{m}_ci95']:.4f}"
    delta = lambda r, m: "reference" if np.isnan(r[f"{m}_p"]) and r[f"{m}_vs_ref"] == 0 else \
        f"{r[f'{m}_vs_ref']:+.4f} ± {r[f'{m}_vs_ref_ci95']:.4f}, p = {r[f'{m}_p']:.2g}"
    return head + "".join(f"| `{r.gates}` | {r.windows} | {cell(r, 'kl')} | {delta(r, 'kl')} | {cell(r, 'recall_kl')} | "
                          f"{delta(r, 'recall_kl')} | {r.kept:.4f} |\n" for _, r in table.iterrows())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("heldout", help="decode-heldout's TSV")
    p.add_argument("--reference", help="the gate set the others are compared with (default: the first)")
    p.add_argument("--markdown", help="also write the table here")
    args = p.parse_args(argv)
    text = markdown(compare(read_heldout(args.heldout), args.reference))
    print(text, end="")
    if args.markdown:
        write_atomic(args.markdown, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
