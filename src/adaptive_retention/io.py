"""Files written atomically — a reader (or a rerun after a kill) sees the old file or the new one, never half
of one — output folders claimed by one writer at a time, and the run trace read back. Every writer of the
library and of `analysis/` goes through here."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

TRACE_FILE = "trace.tsv"
STEP_TIMES_FILE = "step_times.tsv"  # wall seconds of each training step (not in the trace: a rerun's trace is identical)
LOCK_FILE = ".lock"  # in a claimed output folder: the PID of the process writing there


class OutputError(ValueError):
    """An output that cannot be written (unwritable, or another process's): found before any compute."""


def _why(e: OSError) -> str:
    if isinstance(e, (FileExistsError, NotADirectoryError)):
        return "a file is in the way of a folder on that path" + (f" ({e.filename})" if e.filename else "")
    return e.strerror or str(e)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temporary_name(path: Path, folder: bool = False) -> tuple[str, str]:
    """(prefix, suffix) of the temporaries of `path`: hidden, marked `.tmp`, so a later run knows them as leftovers."""
    return f".{path.name if folder else path.stem}.", ".tmp" if folder else f".tmp{path.suffix}"


def is_leftover(name: str) -> bool:
    """A temporary of `atomic_path` / `atomic_folder` (what a killed write leaves behind)."""
    return name.startswith(".") and (name.endswith(".tmp") or ".tmp." in name)


def remove_leftovers(folder: str | os.PathLike) -> None:
    """Remove the temporaries killed writes left in `folder` (call only while no one else writes there)."""
    for p in Path(folder).iterdir() if Path(folder).is_dir() else []:
        if is_leftover(p.name):
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary name in `path`'s folder; on success it is renamed to `path`, on failure removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix, suffix = _temporary_name(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=suffix)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # as open() would have made it (mkstemp makes 0600)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def json_text(obj) -> str:
    """How every JSON file here is written (sorted keys, so equal content is equal text)."""
    return json.dumps(obj, indent=2, sort_keys=True, default=float) + "\n"


def write_json(path: str | os.PathLike, obj) -> None:
    write_atomic(path, json_text(obj))


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
    prefix, suffix = _temporary_name(folder, folder=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=prefix, suffix=suffix))
    os.chmod(tmp, 0o777 & ~_umask())  # as mkdir() would have made it (mkdtemp makes 0700)
    try:
        yield tmp
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_writable(path: str | os.PathLike | None) -> None:
    """Fail now, not after the compute, when the file `path` cannot be written there; remove leftovers of killed writes of it."""
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder")
    prefix, suffix = _temporary_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=suffix)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {_why(e)}") from None
    for p in path.parent.glob(f"{prefix}*{suffix}"):
        p.unlink(missing_ok=True)


@contextmanager
def claimed_folder(folder: str | os.PathLike):
    """Exclusive use of an output folder by this process for the `with` block: created (or a clear error, before any
    compute, when it cannot be), refused while another live process holds it (an flock, released by the kernel even on
    kill -9; the lock file holds the holder's PID for the message), cleared of the temporaries killed writes left.
    A folder this call created and the block left empty is removed again."""
    folder = Path(folder)
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = _lock(folder / LOCK_FILE)
    except OSError as e:
        raise OutputError(f"cannot write to output folder {folder}: {_why(e)}") from None
    try:
        remove_leftovers(folder)
        yield folder
    finally:
        (folder / LOCK_FILE).unlink(missing_ok=True)  # before the unlock: a waiting process then re-checks the inode
        os.close(fd)
        if created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def _lock(path: Path) -> int:
    """An exclusive, non-blocking flock on `path` (created), with this PID written in it; the descriptor."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
            holder = path.read_text().strip() if path.exists() else "?"
            raise OutputError(f"output folder {path.parent} is in use by process {holder or '?'} (lock {path}); wait for it to end, "
                              f"or write to another folder") from None
        if path.exists() and os.stat(path).st_ino == os.fstat(fd).st_ino:  # still the lock file (not one a finishing holder removed)
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)


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
