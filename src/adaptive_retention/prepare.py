"""Fetch once, where the network is: pre-flight checks of hub sources and model ids, and snapshots of
each task's splits and each hub model that training and evaluation jobs then read offline.

- `check_dataset(task)` / `check_model(name)`: resolve metadata only (a dataset's builder: card,
  configs, data-file patterns; a model's config.json), and turn the Hub's failures into one line that
  names the task, the repo and the fix. The workflow runs them at start-up, before any job.
- `prepare_data(task, source, data_dir, out)`: the task's train and eval records (after the document
  split where a mirror has one split) as Arrow folders (`save_to_disk`, memory-mapped on reading),
  with `manifest.json` (origin, rows, label names, repo, config, requested and resolved revision).
- `prepare_model(name, out)`: a hub model's files (config, weights, tokenizer) with its manifest.
Both write into a temporary folder and rename it: a snapshot is complete or absent.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from .backbones import MINILM_NAMES
from .config import SOURCE_SPLITS
from .data import (MANIFEST, ArchiveSource, HubSource, archive_url, fetch_archive, get_task, hub_offline, source_records,
                   spec_labels)
from .io import atomic_folder


class PreflightError(ValueError):
    """A hub source or model id that would fail inside a job: the message names the task, the repo and the fix."""


# --- pre-flight ----------------------------------------------------------------------------------


def model_slug(name: str) -> str:
    """The folder name of a prepared hub model: `namespace--name`."""
    return name.replace("/", "--")


def is_hub_model(name: str) -> bool:
    """A model name that only the hub can resolve (not a folder, not the offline MiniLM)."""
    return not os.path.isdir(name) and name not in MINILM_NAMES


def _offline_error(what: str) -> PreflightError:
    return PreflightError(f"{what}: hub sources cannot be checked offline (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE is set) and "
                          f"no snapshot is prepared; unset them where the network is, or use `source: local` with a mirror folder")


def check_dataset(task: str) -> str:
    """Resolve a task's hub source without downloading its data; returns what was found."""
    spec = get_task(task)
    source = spec.hub
    where = f"task {task!r}: {source.describe()}"
    if hub_offline():
        raise _offline_error(where)
    if isinstance(source, ArchiveSource):
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(urllib.request.Request(archive_url(source), method="HEAD"), timeout=60) as r:
                return f"{where}: release archive reachable ({r.headers.get('Content-Length', '?')} bytes)"
        except (urllib.error.URLError, OSError) as e:
            raise PreflightError(f"{where}: release archive not reachable ({e}); fix: check the URL in data.HUB") from None
    return _check_hub_dataset(where, spec, source)


def _script_only(where: str, detail: str) -> PreflightError:
    return PreflightError(f"{where}: the revision holds only a loading script ({detail}), which datasets >= 4 refuses; fix: point the "
                          f"task at a parquet revision (the Hub's export: revision 'refs/convert/parquet' with data_dir '<config>') "
                          f"or at the dataset's release archive")


def _unresolved(where: str, repo: str, e: Exception) -> PreflightError:
    fix = " (ids need a namespace: 'namespace/name')" if "/" not in repo else ""
    return PreflightError(f"{where}: cannot resolve ({type(e).__name__}: {' '.join(str(e).split())[:300]}){fix}")


def _check_hub_dataset(where: str, spec, source: HubSource) -> str:
    import datasets
    from huggingface_hub import HfApi

    try:  # the file list first: datasets falls back to its cache on failure, which can hide why the hub refused
        files = HfApi().list_repo_files(source.repo, repo_type="dataset", revision=source.revision)
    except Exception as e:  # RepositoryNotFound, RevisionNotFound, HfUriError, connection errors
        raise _unresolved(where, source.repo, e) from None
    script = f"{source.repo.rsplit('/', 1)[-1]}.py"
    if script in files:
        raise _script_only(where, script)
    try:
        builder = datasets.load_dataset_builder(source.repo, source.config, revision=source.revision, data_dir=source.data_dir)
    except RuntimeError as e:
        if "scripts are no longer supported" in str(e):
            raise _script_only(where, str(e)) from None
        raise PreflightError(f"{where}: {type(e).__name__}: {e}") from None
    except ValueError as e:  # a missing or unknown config: datasets lists the ones there are
        raise PreflightError(f"{where}: config problem — {' '.join(str(e).split())}; fix: name one of the repo's configs") from None
    except Exception as e:  # DatasetNotFoundError, HfUriError, revision not found, connection errors
        raise _unresolved(where, source.repo, e) from None
    files = builder.config.data_files or {}
    missing = [s for s in spec.splits.values() if files and s not in files]
    if missing:
        raise PreflightError(f"{where}: no split(s) {missing} (has {sorted(files)}); fix: the task's split names in data.TASKS")
    return f"{where}: config {builder.config.name!r}, splits {sorted(files) or '?'}"


def check_model(name: str, revision: str = "main") -> str:
    """Resolve a hub model's config.json (not its weights); folders and the offline MiniLM pass as they are."""
    if not is_hub_model(name):
        return f"model {name!r}: local"
    where = f"model {name!r}"
    if "/" not in name:
        raise PreflightError(f"{where}: a hub id without a namespace works only through the Hub's legacy redirect; fix: use the "
                             f"namespaced id (e.g. distilbert/{name} for the DistilBERT checkpoints)")
    if hub_offline():
        raise _offline_error(where)
    from huggingface_hub import hf_hub_download  # not transformers' AutoConfig: importing transformers imports torch

    try:
        config = json.loads(Path(hf_hub_download(name, "config.json", revision=revision)).read_text())
    except Exception as e:
        raise PreflightError(f"{where}: cannot resolve its config ({type(e).__name__}: {' '.join(str(e).split())[:400]})") from None
    if "model_type" not in config:
        raise PreflightError(f"{where}: its config.json names no model_type; fix: point at a transformers model repo")
    return f"{where}: {config['model_type']}"


# --- snapshots -----------------------------------------------------------------------------------


def _resolved_revision(source) -> str | None:
    if isinstance(source, HubSource):
        from huggingface_hub import HfApi

        return HfApi().dataset_info(source.repo, revision=source.revision).sha
    return None


def prepare_data(task: str, source: str, data_dir: str | os.PathLike | None, out: str | os.PathLike, split_seed: int = 0) -> dict:
    """Snapshot a task's train and eval records into `out` (Arrow folders + manifest.json); returns the manifest."""
    import datasets

    spec = get_task(task)
    if source not in ("auto", "local", "hub"):  # not 'prepared': a snapshot is made from a real source
        raise ValueError(f"unknown source {source!r}; allowed: ['auto', 'local', 'hub']")
    manifest = {"task": task, "source": source, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "datasets": datasets.__version__,
                "split_seed": split_seed, "splits": {}}

    with atomic_folder(out) as tmp:  # a snapshot is whole or absent
        for split in SOURCE_SPLITS:
            records, everything, origin, hub_labels = source_records(spec, split, source, data_dir, split_seed)
            ds = records if isinstance(records, datasets.Dataset) else datasets.Dataset.from_list(list(records))
            ds.save_to_disk(str(tmp / split))
            manifest["splits"][split] = {"rows": len(ds), "origin": origin}
            manifest["labels"] = list(hub_labels or spec_labels(spec, everything))  # the same for both splits
        if manifest["splits"]["train"]["origin"].startswith("hub:"):  # once per snapshot: a network call, a hash of the archive
            manifest["hub"] = {"source": spec.hub.describe(), "requested_revision": getattr(spec.hub, "revision", None),
                               "resolved_revision": _resolved_revision(spec.hub)}
            if isinstance(spec.hub, ArchiveSource):
                manifest["hub"]["archive_sha1"] = _sha1(fetch_archive(spec.hub))
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def _sha1(path: Path) -> str:
    import hashlib

    h = hashlib.sha1()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


MODEL_PATTERNS = ["*.json", "*.txt", "*.model", "*.safetensors"]


def prepare_model(name: str, out: str | os.PathLike, revision: str = "main") -> dict:
    """Snapshot a hub model (config, tokenizer, weights: safetensors, else pytorch_model.bin) into `out`."""
    from huggingface_hub import HfApi, snapshot_download

    check_model(name, revision)
    info = HfApi().model_info(name, revision=revision)
    files = [s.rfilename for s in info.siblings or []]
    patterns = MODEL_PATTERNS + ([] if any(f.endswith(".safetensors") for f in files) else ["pytorch_model.bin"])
    manifest = {"id": name, "requested_revision": revision, "resolved_revision": info.sha,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}

    with atomic_folder(out) as tmp:
        snapshot_download(name, revision=info.sha, local_dir=str(tmp), allow_patterns=patterns)
        shutil.rmtree(tmp / ".cache", ignore_errors=True)
        (tmp / "prepared.json").write_text(json.dumps(manifest, indent=2))
    return manifest
