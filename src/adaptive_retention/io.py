"""Files written atomically — a reader (or a rerun after a kill) sees the old file or the new one, never half
of one — and the run trace read back. Every writer of the library and of `analysis/` goes through here."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

TRACE_FILE = "trace.tsv"


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary name in `path`'s folder; on success it is renamed to `path`, on failure removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=float) + "\n")


def torch_save_atomic(obj, path: str | os.PathLike) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def save_figure(fig, path: str | os.PathLike) -> None:
    """PNG (and PDF beside it)."""
    path = Path(path)
    for p in (path, path.with_suffix(".pdf")):
        with atomic_path(p) as tmp:
            fig.savefig(tmp, dpi=150, bbox_inches="tight", format=p.suffix[1:])


@contextmanager
def atomic_folder(folder: str | os.PathLike):
    """Yield a temporary sibling folder to fill; on success it replaces `folder` whole, on failure it is removed."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))
    try:
        yield tmp
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_trace(rows: list[dict], path: str | os.PathLike) -> None:
    """One row per training step, tab-separated; columns in order of first appearance."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["\t".join(columns)] + ["\t".join(_fmt(row.get(c, "")) for c in columns) for row in rows]
    write_atomic(path, "\n".join(lines) + "\n")


def _fmt(v) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def read_trace(path: str | os.PathLike):
    """A run's trace.tsv as a DataFrame (step, loss, task_loss, kept_<b>, target_<b>, lambda_<b>, lr_<group>)."""
    import pandas as pd

    return pd.read_csv(path, sep="\t")
