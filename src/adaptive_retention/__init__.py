"""Adaptive Retention: learned, budgeted token retention inside Transformer encoders.

The public names load lazily, so the torch-free modules (config, methods, plan, io, data) import without torch:
the workflow parses a whole grid from them.
"""

from importlib import import_module

_EXPORTS = {"DualController": "budget", "layer_ratios": "budget", "HardConcrete": "gates", "RetentionConfig": "config",
            "TrainConfig": "config", "RetentionInfo": "modeling", "apply_retention": "modeling", "retention_of": "modeling"}
__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'adaptive_retention' has no attribute {name!r}")
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
