"""Loss terms of the PULSE objective (paper eq. 8 and appendix B.3)."""

from __future__ import annotations

import torch

__all__ = ["downscale_l1", "downscale_mse", "geocross"]


def downscale_mse(lr_generated: torch.Tensor, lr_target: torch.Tensor) -> torch.Tensor:
    """Mean squared error per sample, (B,), between images (B, 3, h, w) in [0, 1].
    This is the downscaling loss that eps is compared with."""
    return (lr_generated - lr_target).pow(2).mean(dim=(1, 2, 3))


def downscale_l1(lr_generated: torch.Tensor, lr_target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per sample, (B,)."""
    return (lr_generated - lr_target).abs().mean(dim=(1, 2, 3))


def geocross(w_plus: torch.Tensor) -> torch.Tensor:
    """Geodesic cross loss per sample, (B,), of the W+ rows (B, K, d), as the original computes it.

    For every ordered pair of rows (i, j), including i == j, the angle is
    ``2 * atan2(|x - y|, |x + y|)`` (1e-9 inside each root keeps the gradient finite);
    the loss is the mean over the K x K pairs of ``angle**2 * d``, divided by 8.
    A single (tiled) row has no pairs: the loss is 0.
    """
    batch, rows, dim = w_plus.shape
    if rows == 1:
        return w_plus.new_zeros(batch)
    x = w_plus.unsqueeze(1)  # (B, 1, K, d)
    y = w_plus.unsqueeze(2)  # (B, K, 1, d)
    a = ((x - y).pow(2).sum(-1) + 1e-9).sqrt()
    b = ((x + y).pow(2).sum(-1) + 1e-9).sqrt()
    angle = 2.0 * torch.atan2(a, b)
    return (angle.pow(2) * dim).mean(dim=(1, 2)) / 8.0
