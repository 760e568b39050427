"""Per-layer retention schedules and the Lagrangian dual controller (SPEC §1–2).

The constraint at retention layer l is `kept_l ≤ ρ_l(step)`, where kept_l is the expected kept
fraction (SPEC default units) and ρ_l(step) warms up linearly from 1.0 to the schedule's ρ_l.
The controller does projected dual ascent λ_l ← max(0, λ_l + η (kept_l − ρ_l(step))).
An optional quadratic term (ρ_q/2)(kept_l − ρ_l)² (augmented Lagrangian; CoFi's λ₂ term) gives the
primal step a restoring force proportional to the miss on either side: the linear term alone is a pure
integral controller, whose λ lags the scorers and lets the kept fraction overshoot below target.
`filter` β > 0 gives that restoring force the exponential moving average of the misses (β of the previous average,
1 − β of this batch's miss) instead of this batch's miss alone: on small batches the batch's kept fraction is noisy
(SST-2: ± 0.05 at ρ 0.3), and ρ_q times that noise outweighs λ, so the quadratic term alone kicks the scorers about.
"""

from __future__ import annotations

import math

import torch

from .config import DUAL_MODES, PLACEMENTS, PROJECTIONS, SCHEDULES


def layer_ratios(schedule: str, ratio: float, start_layer: int, num_layers: int, placement: str = "layerwise") -> dict[int, float]:
    """Map block boundary → kept ratio ρ_l of the original content tokens.

    Boundary l sits before block l (l = num_layers means after the last block). `constant` drops
    once, to ρ, before block `start_layer`; `linear` and `geometric` drop at every boundary from
    `start_layer` to the last block, decaying from 1 towards ρ and reaching ρ at the last block.
    `placement: final` puts a single retention point after the last block.
    """
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"ratio must lie in (0, 1], got {ratio}")
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; allowed: {list(SCHEDULES)}")
    if placement not in PLACEMENTS:
        raise ValueError(f"unknown placement {placement!r}; allowed: {list(PLACEMENTS)}")
    if not 0 <= start_layer < num_layers:
        raise ValueError(f"start_layer must lie in [0, {num_layers - 1}] for a {num_layers}-layer model, got {start_layer}")
    if placement == "final":
        return {num_layers: ratio}
    if schedule == "constant":
        return {start_layer: ratio}
    boundaries = list(range(start_layer, num_layers))
    K = len(boundaries)
    if schedule == "linear":
        return {b: 1.0 - (1.0 - ratio) * (k + 1) / K for k, b in enumerate(boundaries)}
    return {b: ratio ** ((k + 1) / K) for k, b in enumerate(boundaries)}


class DualController:
    """λ per retention layer (or one shared λ), projected ascent with step η, target warm-up.

    `targets` are the final ρ_l; `warmup_steps` is the number of steps over which the target
    moves linearly from 1.0 to ρ_l (0 = no warm-up).
    """

    def __init__(self, targets: list[float], eta: float = 1e-2, warmup_steps: int = 0, lambda_init: float = 0.0, mode: str = "per_layer",
                 projection: str = "nonnegative", quadratic: float = 0.0, filter: float = 0.0):
        if projection not in PROJECTIONS:
            raise ValueError(f"unknown dual projection {projection!r}; allowed: {list(PROJECTIONS)}")
        if mode not in DUAL_MODES:
            raise ValueError(f"unknown dual mode {mode!r}; allowed: {list(DUAL_MODES)}")
        if not eta >= 0 or not math.isfinite(eta):
            raise ValueError(f"eta must be a finite number ≥ 0, got {eta}")
        if not quadratic >= 0 or not math.isfinite(quadratic):
            raise ValueError(f"quadratic must be a finite number ≥ 0, got {quadratic}")
        if not 0.0 <= filter < 1.0:
            raise ValueError(f"filter must lie in [0, 1), got {filter}")
        if lambda_init < 0:
            raise ValueError(f"lambda_init must be ≥ 0, got {lambda_init}")
        self.targets = torch.tensor(targets, dtype=torch.float64)
        self.eta, self.warmup_steps, self.mode, self.projection = eta, int(warmup_steps), mode, projection
        self.quadratic, self.filter = float(quadratic), float(filter)
        self.mean_miss: torch.Tensor | None = None  # the misses' moving average after the last update (K,); None before
        n = 1 if mode == "global" else len(targets)
        self.lambdas = torch.full((n,), float(lambda_init), dtype=torch.float64)
        self.step_count = 0

    def current_targets(self, step: int | None = None) -> torch.Tensor:
        """ρ_l(step): linear from 1.0 to ρ_l over the warm-up, then ρ_l. (K,)"""
        step = self.step_count if step is None else step
        frac = 1.0 if self.warmup_steps <= 0 else min(1.0, step / self.warmup_steps)
        return 1.0 - (1.0 - self.targets) * frac

    def violation(self, kept: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """scale · (kept_l − ρ_l(step)), one entry per λ (the mean over layers in global mode).

        `kept` are fractions; `scale` = mean tokens per example turns them into counts (dual_units: tokens)."""
        v = self._miss(kept) * float(scale)
        return v.mean().reshape(1) if self.mode == "global" else v

    def _miss(self, kept: torch.Tensor) -> torch.Tensor:
        """kept_l − ρ_l(step), detached, float64 on the CPU (K,)."""
        return kept.detach().to(torch.float64).cpu() - self.current_targets()

    def filtered_miss(self, kept: torch.Tensor) -> torch.Tensor:
        """β · (the misses' average so far) + (1 − β) · this batch's miss, per layer (K,); the batch's miss at β = 0."""
        miss = self._miss(kept)
        return miss if self.mean_miss is None else self.filter * self.mean_miss + (1.0 - self.filter) * miss

    def penalty(self, kept: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """Σ_l λ_l · scale · (kept_l − ρ_l(step)) + (ρ_q/2) Σ_l (kept_l − ρ_l(step))²: the term added to the task loss.

        The quadratic term is in fractions whatever the dual units, so ρ_q means the same for every task. With a filter
        its gradient is ρ_q times the filtered miss, not the batch's (the value keeps the batch's (ρ_q/2) miss²)."""
        target = self.current_targets().to(kept)
        lam = self.lambdas.to(kept)
        miss = kept - target
        linear = lam[0] * (miss * scale).mean() if self.mode == "global" else (lam * miss * scale).sum()
        quadratic = 0.5 * self.quadratic * (miss ** 2).sum()
        if self.filter > 0:  # d/d kept: ρ_q · filtered miss
            correction = self.filtered_miss(kept).to(kept) - miss.detach()
            quadratic = quadratic + self.quadratic * (correction * (miss - miss.detach())).sum()  # value 0
        return linear + quadratic

    def update(self, kept: torch.Tensor, scale: float = 1.0, ascend: bool = True) -> torch.Tensor:
        """After the primal step: one projected ascent step (unless `ascend` is False: λ fixed), the misses' average
        moved on, the step counted; returns λ."""
        self.mean_miss = self.filtered_miss(kept)
        if ascend:
            self.lambdas = self.lambdas + self.eta * self.violation(kept, scale)
            if self.projection == "nonnegative":  # inequality kept ≤ ρ (SPEC); "none": equality kept = ρ (CoFi-style)
                self.lambdas = self.lambdas.clamp(min=0.0)
        self.step_count += 1
        return self.lambdas.clone()

    def state_dict(self) -> dict:
        return {"lambdas": self.lambdas.tolist(), "step_count": self.step_count, "targets": self.targets.tolist(),
                "eta": self.eta, "warmup_steps": self.warmup_steps, "mode": self.mode, "projection": self.projection,
                "quadratic": self.quadratic, "filter": self.filter,
                "mean_miss": None if self.mean_miss is None else self.mean_miss.tolist()}

    def load_state_dict(self, state: dict) -> None:
        if len(state["lambdas"]) != len(self.lambdas) or state["mode"] != self.mode:
            raise ValueError(f"controller state has {len(state['lambdas'])} λ in mode {state['mode']!r}; "
                             f"this controller has {len(self.lambdas)} in mode {self.mode!r}")
        self.lambdas = torch.tensor(state["lambdas"], dtype=torch.float64)
        self.step_count = int(state["step_count"])
        self.targets = torch.tensor(state["targets"], dtype=torch.float64)
        self.eta, self.warmup_steps = float(state["eta"]), int(state["warmup_steps"])
        self.quadratic, self.filter = float(state.get("quadratic", 0.0)), float(state.get("filter", 0.0))
        mean_miss = state.get("mean_miss")
        self.mean_miss = None if mean_miss is None else torch.tensor(mean_miss, dtype=torch.float64)
