"""The Gaussian fit of appendix B.4: per-dimension mean and std of the inverted last
activation of the mapping network over many z, computed in chunks.

The fit depends only on the mapping weights and the draw of z, so it is computed once
per checkpoint with a fixed ``torch.Generator`` and cached (see ``pulse_core.weights``).
"""

from __future__ import annotations

import torch

from .generators.base import GaussianFit, StyleGenerator

__all__ = ["DEFAULT_FIT_SAMPLES", "DEFAULT_FIT_SEED", "compute_gaussian_fit", "gaussian_fit_from_z"]

DEFAULT_FIT_SAMPLES = 1_000_000  # as in the original implementation
DEFAULT_FIT_SEED = 0
_CHUNK = 65_536


class _Moments:
    """Running sums in float64, so that a million samples in float32 chunks lose nothing."""

    def __init__(self, dim: int) -> None:
        self.n = 0
        self.total = torch.zeros(dim, dtype=torch.float64)
        self.squares = torch.zeros(dim, dtype=torch.float64)

    def add(self, x: torch.Tensor) -> None:
        x = x.detach().to("cpu", torch.float64)
        self.n += x.shape[0]
        self.total += x.sum(0)
        self.squares += x.pow(2).sum(0)

    def result(self, seed: int) -> GaussianFit:
        if self.n < 2:
            raise ValueError("a Gaussian fit needs at least 2 samples")
        mean = self.total / self.n
        var = (self.squares - self.n * mean.pow(2)) / (self.n - 1)  # unbiased, like torch.std
        return GaussianFit(mean.float(), var.clamp_min(0).sqrt().float(), self.n, seed)


@torch.no_grad()
def gaussian_fit_from_z(generator: StyleGenerator, z: torch.Tensor, *, chunk_size: int = _CHUNK) -> GaussianFit:
    """Fit over the given z (N, w_dim); used by tests against reference vectors."""
    moments = _Moments(generator.w_dim)
    for start in range(0, z.shape[0], chunk_size):
        chunk = z[start:start + chunk_size].to(generator.fit_mean.device)
        moments.add(generator.invert_last_activation(generator.mapping(chunk)))
    return moments.result(seed=-1)


@torch.no_grad()
def compute_gaussian_fit(
    generator: StyleGenerator,
    *,
    num_samples: int = DEFAULT_FIT_SAMPLES,
    seed: int = DEFAULT_FIT_SEED,
) -> GaussianFit:
    """Draw ``num_samples`` z ~ N(0, I) on the CPU from ``torch.Generator().manual_seed(seed)``
    (so the fit is the same on every device), map them, and fit mean and std.

    z is drawn in chunks of a fixed size, because the stream of a seeded generator
    depends on the sizes of the draws: a fixed size keeps the fit reproducible."""
    rng = torch.Generator().manual_seed(seed)
    moments = _Moments(generator.w_dim)
    device = generator.fit_mean.device
    done = 0
    while done < num_samples:
        n = min(_CHUNK, num_samples - done)
        z = torch.randn((n, generator.w_dim), generator=rng)
        moments.add(generator.invert_last_activation(generator.mapping(z.to(device))))
        done += n
    return moments.result(seed=seed)
