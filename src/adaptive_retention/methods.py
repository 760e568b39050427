"""The selection methods (SPEC §4): how an evaluation chooses the tokens a checkpoint keeps. One entry per
method — its label in tables and figures, how its choice is costed (`flops.selection_flops`), and which
checkpoints it applies to. Torch-free; the selectors themselves live in `baselines.py`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Method:
    name: str
    label: str  # in tables and figures
    selection: str | None  # FLOPs of the choice (flops.SELECTIONS): learned scorers, free, heavy hitter; None: no choice
    baseline: bool = False  # a selector applied to any checkpoint (the full model over the Pareto grid)
    needs_scorers: bool = False  # only a checkpoint trained with retention has learned scores


METHODS: dict[str, Method] = {m.name: m for m in [
    Method("full", "Full", None),
    Method("random", "Random", "free", baseline=True),
    Method("truncation", "Truncation", "free", baseline=True),
    Method("heavy_hitter", "Heavy hitter (H2O)", "heavy_hitter", baseline=True),
    Method("learned", "Adaptive Retention", "learned", needs_scorers=True),
    Method("threshold", "Threshold inference (p > τ)", "learned", needs_scorers=True),
]}
BASELINES = tuple(m.name for m in METHODS.values() if m.baseline)
TABLE_METHODS = ("full", *BASELINES, "learned")  # rows of the quality tables, in this order


def label(name: str) -> str:
    return METHODS[name].label if name in METHODS else name
