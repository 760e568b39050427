"""A retention problem small enough to solve exactly: T ≤ 12 tokens, every one of the 2^T masks enumerated.

One example with token features x_t ∈ R^k, a fixed linear read-out w and label y ∈ {−1, +1};
the loss of a (possibly soft) mask z is the logistic loss log(1 + exp(−y (wᵀ Σ_t z_t x_t + b))),
smooth and non-linear in z, so a relaxation's bias shows. E_{z~Bernoulli(p)}[L] is multilinear in p,
so on the polytope {p ∈ [0,1]^T, Σp ≤ M} (M integer) and for the Lagrangian E[L] + λ(Σp − M) the
minima sit at 0/1 vertices: F* and the Lagrangian minimiser are exact minima over masks.
"""

from __future__ import annotations

import itertools

import torch


class Toy:
    def __init__(self, T: int = 10, k: int = 4, seed: int = 0):
        if not 1 <= T <= 12:
            raise ValueError(f"T must lie in [1, 12] for enumeration, got {T}")
        g = torch.Generator().manual_seed(seed)
        self.T = T
        self.x = torch.randn(T, k, generator=g, dtype=torch.float64)  # (T, k)
        self.w = torch.randn(k, generator=g, dtype=torch.float64) / T ** 0.5
        self.b = 0.0
        self.y = 1.0 if float(torch.rand(1, generator=g)) < 0.5 else -1.0
        self.masks = torch.tensor(list(itertools.product([0.0, 1.0], repeat=T)), dtype=torch.float64)  # (2^T, T)
        self.mask_loss = self.loss(self.masks)  # (2^T,)

    def loss(self, z: torch.Tensor) -> torch.Tensor:
        """(..., T) gates → (...) logistic loss."""
        margin = self.y * (z @ self.x @ self.w + self.b)
        return torch.nn.functional.softplus(-margin)

    def mask_probs(self, p: torch.Tensor) -> torch.Tensor:
        """(2^T,) probability of each mask under independent Bernoulli(p)."""
        return torch.prod(torch.where(self.masks > 0, p, 1 - p), dim=1)

    def expected_loss(self, p: torch.Tensor) -> torch.Tensor:
        """E_{z~Bernoulli(p)}[L(z)], exactly."""
        return self.mask_probs(p) @ self.mask_loss

    def bernoulli_grad(self, s: torch.Tensor) -> torch.Tensor:
        """∇_s E_{z~Bernoulli(σ(s))}[L(z)], exactly (autograd through the enumeration)."""
        s = s.detach().clone().requires_grad_(True)
        self.expected_loss(torch.sigmoid(s)).backward()
        return s.grad

    def f_star(self, M: int) -> float:
        """min E[L] over Σp ≤ M: the best mask with at most M tokens."""
        return float(self.mask_loss[self.masks.sum(1) <= M].min())

    def lagrangian_min(self, lam: float, M: int) -> tuple[float, float]:
        """(E[L], Δ = Σp − M) at the minimiser of E[L] + λ(Σp − M) over p ∈ [0,1]^T (a vertex)."""
        values = self.mask_loss + lam * (self.masks.sum(1) - M)
        i = int(torch.argmin(values))
        return float(self.mask_loss[i]), float(self.masks[i].sum() - M)
