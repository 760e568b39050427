"""What every theory check shares: the verdict file, the figure, the command line."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

VERDICTS = ("holds", "holds approximately", "does not hold")


def write_verdict(path: str | Path, claim: str, measured: str, numbers: dict, verdict: str, deviation: str, seeds, **extra) -> dict:
    """One JSON per claim, written atomically: claim, what was measured, numbers, verdict and its deviation."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    record = {"claim": claim, "measured": measured, "numbers": numbers, "verdict": verdict, "deviation": deviation,
              "seeds": list(seeds), **extra}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(record, f, indent=2, default=float)
    os.replace(tmp, path)
    return record


def save_figure(fig, path: str | Path) -> None:
    """PNG (and PDF beside it), written to temp names and renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for p in (path, path.with_suffix(".pdf")):
        tmp = p.with_name(f".{p.stem}.tmp{p.suffix}")
        fig.savefig(tmp, dpi=150, bbox_inches="tight")
        os.replace(tmp, p)


def parser(doc: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--out", required=True, help="verdict JSON (the figure goes beside it, same stem, .png/.pdf)")
    ap.add_argument("--seed", type=int, default=0)
    return ap
