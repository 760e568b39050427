"""Adaptive Retention: learned, budgeted token retention inside Transformer encoders."""

from .budget import DualController, layer_ratios
from .gates import HardConcrete
from .modeling import RetentionConfig, RetentionInfo, apply_retention, retention_of

__all__ = ["DualController", "HardConcrete", "RetentionConfig", "RetentionInfo", "apply_retention", "layer_ratios", "retention_of"]
__version__ = "0.1.0"
