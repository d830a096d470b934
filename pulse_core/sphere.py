"""Spherical projected gradient descent (paper section 3.2).

Most of the mass of a d-dimensional standard Gaussian lies near the sphere of radius
sqrt(d), so PULSE replaces the Gaussian prior by the uniform prior on sqrt(d) S^(d-1)
and, after every optimiser step, puts each latent row (and each trainable noise map)
back on that sphere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

__all__ = ["project_to_sphere", "SphericalOptimizer"]


@torch.no_grad()
def project_to_sphere(tensor: torch.Tensor, *, start_dim: int) -> torch.Tensor:
    """Scale ``tensor`` in place so that every slice over dims ``start_dim:`` has norm
    sqrt(number of its elements). Latents (B, K, d): start_dim=2; noise (B, 1, H, W): 2."""
    dims = tuple(range(start_dim, tensor.ndim))
    size = 1
    for d in dims:
        size *= tensor.shape[d]
    norm = tensor.pow(2).sum(dim=dims, keepdim=True).add_(1e-9).sqrt_()
    return tensor.mul_(size**0.5 / norm)


class SphericalOptimizer:
    """Wrap a torch optimiser; after each step project every parameter back on its sphere.

    Parameters must be leaf tensors of shape (B, K, ...) whose dims from 2 on form one
    point on a sphere (latent rows (B, K, d), noise maps (B, 1, H, W)).
    """

    def __init__(self, factory: Callable[..., torch.optim.Optimizer], params: Iterable[torch.Tensor], **kwargs: float):
        self.params = list(params)
        for p in self.params:
            project_to_sphere(p.data, start_dim=2)
        self.optimizer = factory(self.params, **kwargs)

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    @torch.no_grad()
    def step(self) -> None:
        self.optimizer.step()
        for p in self.params:
            project_to_sphere(p.data, start_dim=2)
