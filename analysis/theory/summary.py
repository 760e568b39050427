"""The seven claims and their verdicts in one table (CSV + Markdown), from the theory JSON files.

A seeded check runs once per theory seed (results/theory/seed<s>/<check>.json); the table gives each run's verdict and
whether they agree. A verdict that flips between seeds is reported as "unstable", never as one of its values.

  python -m analysis.theory.summary results/theory/seed*/*.json results/theory/complexity.json --csv S.csv --markdown S.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ORDER = ["slackness", "gradient_bias", "variance", "timescales", "duality_gap", "generalisation", "complexity"]
UNSTABLE = "unstable"


def _run(d: dict) -> str:
    """'holds (seeds 0–4)'; a check without random draws (complexity reads the length sweeps) has no seeds."""
    seeds = d["seeds"]
    if not seeds:
        return f"{d['verdict']} (no random draws)"
    span = f"{seeds[0]}–{seeds[-1]}" if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)) else ", ".join(map(str, seeds))
    return f"{d['verdict']} (seeds {span})"


def table(paths: list[str]):
    """One row per claim: the common verdict (or "unstable"), each run's verdict with its seeds, the first run's deviation."""
    import pandas as pd

    runs: dict[str, list[dict]] = {}
    for p in paths:
        if Path(p).stem in ORDER:
            runs.setdefault(Path(p).stem, []).append(json.loads(Path(p).read_text()))
    missing = [name for name in ORDER if name not in runs]
    if missing:
        raise SystemExit(f"theory summary: missing verdicts for {missing}")
    rows = []
    for name in ORDER:
        rs = sorted(runs[name], key=lambda d: d["seeds"])
        distinct = {d["verdict"] for d in rs}
        rows.append({"check": name, "claim": rs[0]["claim"], "verdict": next(iter(distinct)) if len(distinct) == 1 else UNSTABLE,
                     "runs": len(rs), "stable": len(distinct) == 1,
                     "verdicts": "; ".join(map(_run, rs)),
                     "deviation": rs[0]["deviation"]})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("verdicts", nargs="+")
    ap.add_argument("--csv", required=True)
    ap.add_argument("--markdown", required=True)
    args = ap.parse_args(argv)
    from adaptive_retention.io import write_atomic

    t = table(args.verdicts)
    write_atomic(args.csv, t.to_csv(index=False))
    write_atomic(args.markdown, t.to_markdown(index=False) + "\n")
    print(t[["check", "verdict", "runs"]].to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
