"""Reading the decoding commands' result TSVs, each checked against the columns its writer declares
(`bench.COLUMNS`, `perplexity.PPL_COLUMNS`, `cost.COST_COLUMNS`, `commands.HELDOUT_COLUMNS`, and the layer-swap
script's header, `SWAP_COLUMNS`): a file that is not one is refused naming it and the missing columns, before any table
is computed."""

from __future__ import annotations

import pandas as pd

from adaptive_retention.decoding.bench import COLUMNS
from adaptive_retention.decoding.commands import HELDOUT_COLUMNS
from adaptive_retention.decoding.cost import COST_COLUMNS
from adaptive_retention.decoding.perplexity import PPL_COLUMNS

SWAP_COLUMNS = ("gates", "probe", "variant", "sample", "depth", "correct")  # scripts/layer_swap.py's header (a test holds them equal)


def _read(path: str, columns: tuple[str, ...], what: str, **options) -> pd.DataFrame:
    try:
        rows = pd.read_csv(path, sep="\t", **options)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise ValueError(f"{path}: cannot read a {what} table: {e}") from e
    missing = set(columns) - set(rows.columns)
    if missing:
        raise ValueError(f"{path}: not a {what} table (no column {', '.join(sorted(missing))})")
    return rows


def read_bench(path: str) -> pd.DataFrame:
    """A decode-bench TSV; answers stay text ("NA", "" and "007" as written)."""
    return _read(path, COLUMNS, "decode-bench", dtype={"answer": str}, keep_default_na=False)


def read_perplexity(path: str) -> pd.DataFrame:
    """A decode-perplexity TSV."""
    return _read(path, PPL_COLUMNS, "decode-perplexity")


def read_cost(path: str) -> pd.DataFrame:
    """A decode-cost TSV."""
    return _read(path, COST_COLUMNS, "decode-cost")


def read_heldout(path: str) -> pd.DataFrame:
    """A decode-heldout TSV."""
    return _read(path, HELDOUT_COLUMNS, "decode-heldout")


def read_layer_swap(path: str) -> pd.DataFrame:
    """scripts/layer_swap.py's TSV."""
    return _read(path, SWAP_COLUMNS, "layer-swap")
