"""What every theory check shares: the verdict file and the command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from adaptive_retention.io import write_atomic

VERDICTS = ("holds", "holds approximately", "does not hold")


def write_verdict(path: str | Path, claim: str, measured: str, numbers: dict, verdict: str, deviation: str, seeds, **extra) -> dict:
    """One JSON per claim, written atomically: claim, what was measured, numbers, verdict and its deviation."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    record = {"claim": claim, "measured": measured, "numbers": numbers, "verdict": verdict, "deviation": deviation,
              "seeds": list(seeds), **extra}
    write_atomic(path, json.dumps(record, indent=2, default=float))
    return record


def problem_seeds(seed: int, n: int) -> list[int]:
    """The toy problems of a check run with --seed `seed`: disjoint blocks of n, so the runs of three seeds share none."""
    return list(range(seed * n, (seed + 1) * n))


def parser(doc: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--out", required=True, help="verdict JSON (the figure goes beside it, same stem, .png/.pdf)")
    ap.add_argument("--seed", type=int, default=0, help="the check's seed (toy problems, draws, data samples)")
    return ap
