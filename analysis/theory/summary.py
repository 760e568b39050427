"""The seven claims and their verdicts in one table (CSV + Markdown), from the theory JSON files.

  python -m analysis.theory.summary results/theory/*.json --csv results/theory/summary.csv --markdown results/theory/summary.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ORDER = ["slackness", "gradient_bias", "variance", "timescales", "duality_gap", "generalisation", "complexity"]


def table(paths: list[str]):
    import pandas as pd

    rows = []
    for p in sorted(paths, key=lambda p: ORDER.index(Path(p).stem) if Path(p).stem in ORDER else len(ORDER)):
        if Path(p).stem not in ORDER:
            continue
        d = json.loads(Path(p).read_text())
        rows.append({"check": Path(p).stem, "claim": d["claim"], "verdict": d["verdict"], "deviation": d["deviation"],
                     "seeds": ", ".join(str(s) for s in d["seeds"])})
    missing = [name for name in ORDER if name not in {r["check"] for r in rows}]
    if missing:
        raise SystemExit(f"theory summary: missing verdicts for {missing}")
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
    print(t[["check", "verdict"]].to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
