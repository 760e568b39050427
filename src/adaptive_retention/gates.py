"""Hard-Concrete gates and token scorers (SPEC §1). Pure torch: no transformers import.

The Hard-Concrete distribution (Louizos et al., 2018) stretches a binary Concrete sample to
(γ, ζ) and clamps it to [0, 1], so a gate has real probability mass at exactly 0 and exactly 1
while staying reparameterisable. The scorers turn hidden states into the gate's log α.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import BETA, GAMMA, ZETA, SCORERS, check_choice, check_stretch  # β temperature, (γ, ζ) stretch

_EPS = 1e-6
LOG_GATE_FLOOR = 1e-6  # floor of a gate before its log goes on the attention logits (encoder and KV cache)


class HardConcrete:
    """Hard-Concrete gate with parameters (β, γ, ζ); every method takes log α of any shape."""

    def __init__(self, beta: float = BETA, gamma: float = GAMMA, zeta: float = ZETA):
        check_stretch(beta, gamma, zeta)
        self.beta, self.gamma, self.zeta = beta, gamma, zeta

    def sample(self, log_alpha: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        """Reparameterised sample z̃ ∈ [0, 1]; `u` ~ U(0, 1) may be given for reproducibility."""
        if u is None:
            u = torch.rand_like(log_alpha)
        u = u.clamp(_EPS, 1 - _EPS)
        s = torch.sigmoid((log_alpha + torch.log(u) - torch.log1p(-u)) / self.beta)
        return (s * (self.zeta - self.gamma) + self.gamma).clamp(0.0, 1.0)

    def prob_nonzero(self, log_alpha: torch.Tensor) -> torch.Tensor:
        """P(z̃ > 0) = σ(log α − β log(−γ/ζ)): the expected L0 norm of the gate."""
        return torch.sigmoid(log_alpha - self.beta * math.log(-self.gamma / self.zeta))

    def log_alpha_for(self, p: float) -> float:
        """The log α at which P(z̃ > 0) = p (the inverse of `prob_nonzero`): gates in a trained state, for benchmarks."""
        if not 0.0 < p < 1.0:
            raise ValueError(f"a probability in (0, 1) is needed, got {p}")
        return math.log(p / (1 - p)) + self.beta * math.log(-self.gamma / self.zeta)

    def prob_one(self, log_alpha: torch.Tensor) -> torch.Tensor:
        """P(z̃ = 1) = σ(log α − β log((1−γ)/(ζ−1)))."""
        return torch.sigmoid(log_alpha - self.beta * math.log((1 - self.gamma) / (self.zeta - 1)))

    def deterministic(self, log_alpha: torch.Tensor) -> torch.Tensor:
        """Test-time gate clamp(σ(log α)(ζ−γ)+γ, 0, 1) (Louizos et al. use this at inference)."""
        return (torch.sigmoid(log_alpha) * (self.zeta - self.gamma) + self.gamma).clamp(0.0, 1.0)

    def mean(self, log_alpha: torch.Tensor, n_grid: int = 2049) -> torch.Tensor:
        """E[z̃] by quadrature over u (no closed form); used to check the sampler."""
        u = (torch.arange(n_grid, dtype=log_alpha.dtype, device=log_alpha.device) + 0.5) / n_grid
        z = self.sample(log_alpha.unsqueeze(-1), u.expand(*log_alpha.shape, n_grid))
        return z.mean(-1)


def _init_output(layer: nn.Linear, bias: float) -> None:
    """Small output weights and a set bias: every gate starts at log α ≈ `bias`, whatever the token."""
    nn.init.normal_(layer.weight, std=1e-2)
    nn.init.constant_(layer.bias, bias)


class MLPScorer(nn.Module):
    """s_t = w2ᵀ ReLU(W1 h_t + b1) + b2 with W1: d → d/2 (the paper's Figure 1). `outputs` > 1: one score per
    output (the decoder cache's per-KV-head gates), W2: d/2 → outputs."""

    def __init__(self, d: int, init_bias: float = 0.0, outputs: int = 1):
        super().__init__()
        self.outputs = outputs
        self.net = nn.Sequential(nn.Linear(d, d // 2), nn.ReLU(), nn.Linear(d // 2, outputs))
        _init_output(self.net[2], init_bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (B, T, d) -> (B, T), or (B, outputs, T)
        s = self.net(h)
        return s.squeeze(-1) if self.outputs == 1 else s.transpose(-1, -2)


class RecurrentScorer(nn.Module):
    """s_t = vᵀ tanh(W h_t + U m_{t−1}) + b with m_t = γ_m m_{t−1} + (1−γ_m) h_t (Eq. 3).

    The running summary is an exponential moving average, computed in closed form as a
    causal matrix product with weights (1−γ_m) γ_m^(t−1−k), so there is no loop over tokens.
    Padding positions must be zeroed by the caller (`mask`) so they do not enter the summary.
    """

    def __init__(self, d: int, decay: float = 0.9, init_bias: float = 0.0):
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"recurrent scorer decay must lie in [0, 1), got {decay}")
        self.decay = decay
        self.W = nn.Linear(d, d // 2)
        self.U = nn.Linear(d, d // 2, bias=False)
        self.v = nn.Linear(d // 2, 1)
        _init_output(self.v, init_bias)

    def summaries(self, h: torch.Tensor) -> torch.Tensor:
        """m_{t−1} for every t: (B, T, d) -> (B, T, d), with m_{-1} = m_0 = 0 before the first token."""
        T = h.shape[1]
        t = torch.arange(T, device=h.device)
        lag = t[:, None] - 1 - t[None, :]  # (T, T): exponent t−1−k for k ≤ t−1
        # weights in log space so long sequences do not underflow to NaN; decay 0 keeps only k = t−1
        weights = torch.where(
            lag >= 0,
            (1 - self.decay) * torch.pow(torch.tensor(self.decay, dtype=h.dtype, device=h.device), lag.clamp(min=0).to(h.dtype)),
            torch.zeros((), dtype=h.dtype, device=h.device),
        )
        return torch.einsum("tk,bkd->btd", weights, h)

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (B, T, d) -> (B, T)
        m_prev = self.summaries(h)
        return self.v(torch.tanh(self.W(h) + self.U(m_prev))).squeeze(-1)


def make_scorer(kind: str, d: int, decay: float = 0.9, init_bias: float = 0.0) -> nn.Module:
    """A scorer of one of the kinds in config.SCORERS."""
    check_choice("scorer", kind, SCORERS)
    return MLPScorer(d, init_bias=init_bias) if kind == "mlp" else RecurrentScorer(d, decay=decay, init_bias=init_bias)
