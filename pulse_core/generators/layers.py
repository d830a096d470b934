"""Building blocks shared by the StyleGAN generators.

Weights are stored unscaled and multiplied by a constant at run time ("equalized
learning rate", Karras et al. 2018): this is how the upstream checkpoints store them,
so the stored tensors load unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["EqualLinear", "pixel_norm", "pointwise_conv", "separable_kernel", "upfirdn2d"]


class EqualLinear(nn.Module):
    """Linear layer with equalized learning rate: y = x @ (W * gain / sqrt(in) * lr_mul).T + b * lr_mul."""

    def __init__(self, in_features: int, out_features: int, *, gain: float = 1.0, lr_mul: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.weight_gain = gain / math.sqrt(in_features) * lr_mul
        self.bias_gain = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Normalise each row of x (B, D) to unit root mean square."""
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


def separable_kernel(taps: list[float], *, scale: float = 1.0) -> torch.Tensor:
    """Outer product of ``taps`` with itself, normalised to sum ``scale``: (K, K) float32."""
    k = torch.tensor(taps, dtype=torch.float32)
    k = k[:, None] * k[None, :]
    return k / k.sum() * scale


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, *, up: int = 1, pad: tuple[int, int] = (0, 0),
              bias: torch.Tensor | None = None) -> torch.Tensor:
    """Zero-insertion upsampling by ``up``, padding by ``pad`` (before, after) on both axes,
    then a depthwise FIR filter with ``kernel`` (K, K), plus an optional per-channel ``bias``
    added by the same convolution. x: (B, C, H, W)."""
    batch, channels, height, width = x.shape
    if up > 1:
        x = x.reshape(batch, channels, height, 1, width, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(batch, channels, height * up, width * up)
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    # conv2d is a correlation; the FIR filter is a convolution, hence the flip.
    weight = torch.flip(kernel, (0, 1)).to(dtype=x.dtype, device=x.device)
    weight = weight.view(1, 1, *kernel.shape).expand(channels, 1, *kernel.shape)
    return F.conv2d(x, weight, None if bias is None else bias.to(x.dtype), groups=channels)


def pointwise_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """A 1x1 convolution, x (B, C, H, W) with weight (O, C, 1, 1), as one matrix product.
    oneDNN's 1x1 convolution to 3 output channels (to_rgb at 1024 px) took 33 ms forward and
    18 ms backward on the project's CPU; as a matrix product the whole bf16 StyleGAN v1 step
    went from 0.69 s to 0.63 s."""
    batch, channels, height, width = x.shape
    w = weight.reshape(weight.shape[0], channels)
    out = torch.matmul(w.to(x.dtype), x.reshape(batch, channels, -1))
    out = out.reshape(batch, -1, height, width)
    return out if bias is None else out + bias.view(1, -1, 1, 1).to(out.dtype)
