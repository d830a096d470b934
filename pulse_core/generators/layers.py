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

__all__ = ["EqualLinear", "add_channel_scaled", "depthwise_kernel", "is_channels_last", "memory_format_of",
           "pixel_norm", "pointwise_conv", "separable_kernel", "styled_instance_norm", "upfirdn2d"]


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
    added by the same convolution. x: (B, C, H, W). With ``up > 1`` the padding must be one
    a transposed convolution expresses: ``after == before - up + 1``, ``before < K``
    (StyleGAN2's (2, 1) for K = 4, up = 2)."""
    channels = x.shape[1]
    taps = kernel.shape[-1]
    if up > 1:
        if pad[1] != pad[0] - up + 1 or not 0 <= pad[0] <= taps - 1:
            raise ValueError(f"upsampling by {up} with padding {pad} and {taps} taps is not supported")
        # Zero insertion, padding and the filter as one transposed convolution of stride ``up``:
        # out[o] = sum_i x[i] * kernel[o - up * i + taps - 1 - pad[0]], the zeros never stored
        # (StyleGAN2's RGB upsampling at 1024 px: 33 ms forward + backward as a 4x-size conv).
        weight = depthwise_kernel(kernel.to(x.device), channels, x.dtype)
        return F.conv_transpose2d(x, weight, None if bias is None else bias.to(x.dtype), stride=up,
                                  padding=taps - 1 - pad[0], groups=channels)
    # Symmetric zero padding is the convolution's own (no padded copy of the largest tensors).
    same = pad[0] == pad[1]
    if not same:
        x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    # conv2d is a correlation; the FIR filter is a convolution, hence the flip.
    weight = depthwise_kernel(torch.flip(kernel, (0, 1)).to(x.device), channels, x.dtype)
    return F.conv2d(x, weight, None if bias is None else bias.to(x.dtype), padding=pad[0] if same else 0,
                    groups=channels)


def is_channels_last(x: torch.Tensor) -> bool:
    """True when the activation (B, C, H, W) is stored NHWC (and not also NCHW, as a
    one-channel or one-pixel tensor would be)."""
    return x.ndim == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


def memory_format_of(x: torch.Tensor) -> torch.memory_format:
    """``torch.channels_last`` for an NHWC tensor (an activation, or a weight laid out by
    ``prepare_generator``), else ``torch.contiguous_format``."""
    return torch.channels_last if is_channels_last(x) else torch.contiguous_format


def _as_rows(x: torch.Tensor) -> torch.Tensor:
    """An NHWC activation (B, C, H, W) viewed as (B, H * W, C) without copying."""
    batch, channels, height, width = x.shape
    return x.permute(0, 2, 3, 1).reshape(batch, height * width, channels)


def _from_rows(rows: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The inverse of ``_as_rows``: (B, H * W, C) back to a (B, C, H, W) NHWC view."""
    return rows.view(rows.shape[0], height, width, rows.shape[2]).permute(0, 3, 1, 2)


def depthwise_kernel(kernel: torch.Tensor, channels: int, dtype: torch.dtype) -> torch.Tensor:
    """A (K, K) FIR kernel repeated for a depthwise convolution, (channels, 1, K, K), dense.
    With an expanded (stride 0) weight an NHWC input came back NCHW, so the next layer
    copied the largest tensors back to NHWC."""
    return kernel.to(dtype).expand(channels, 1, *kernel.shape[-2:]).contiguous()


def add_channel_scaled(x: torch.Tensor, noise: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    """``x + strength[c] * noise``: x (B, C, H, W), noise (B or 1, 1, H, W), strength (C,).
    In NHWC the broadcast over the inner channel dimension ran 6x slower than in NCHW; there
    it is an outer product added by one batched matrix product (noise as a (HW, 1) column)."""
    strength = strength.to(x.dtype)
    noise = noise.to(x.dtype)
    if not is_channels_last(x):
        return torch.addcmul(x, strength.view(1, -1, 1, 1), noise)
    batch, channels, height, width = x.shape
    column = noise.expand(batch, 1, height, width).reshape(batch, height * width, 1)
    out = torch.baddbmm(_as_rows(x), column, strength.view(1, 1, channels).expand(batch, 1, channels))
    return _from_rows(out, height, width)


def styled_instance_norm(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Instance norm of x (B, C, H, W) followed by ``* scale + shift`` (each (B, C), float32)
    in one fused kernel: per-sample, per-channel statistics over H and W are batch-norm
    statistics of a reshaped tensor, whose per-channel affine is the style.
    NCHW: x as (1, B * C, H, W). NHWC: each sample as an (H * W, C) matrix (the 4-D
    channels-last instance norm was 1.7x slower)."""
    batch, channels, height, width = x.shape
    if not is_channels_last(x):
        out = F.instance_norm(x.reshape(1, batch * channels, height, width), weight=scale.reshape(-1),
                              bias=shift.reshape(-1), eps=eps)
        return out.view(batch, channels, height, width)
    rows = _as_rows(x)
    if batch == 1:  # a view, not rows[0] or unbind: their backward fills and copies a full-size gradient
        out = F.batch_norm(rows.view(height * width, channels), None, None, scale[0], shift[0], training=True, eps=eps)
        return _from_rows(out.view(1, height * width, channels), height, width)
    out = [F.batch_norm(r, None, None, scale[b], shift[b], training=True, eps=eps) for b, r in enumerate(rows.unbind(0))]
    return _from_rows(torch.stack(out), height, width)


def pointwise_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """A 1x1 convolution as one matrix product, in either layout (the output keeps it).
    x (B, C, H, W); weight (O, C, 1, 1), or (B, O, C) for a weight per sample; bias (O,).
    oneDNN's 1x1 convolution to 3 output channels (to_rgb at 1024 px) took 33 ms forward and
    18 ms backward on the project's CPU; as a matrix product the whole bf16 StyleGAN v1 step
    went from 0.69 s to 0.63 s."""
    batch, channels, height, width = x.shape
    per_sample = weight.ndim == 3
    w = (weight if per_sample else weight.reshape(1, weight.shape[0], channels)).to(x.dtype)  # (1 or B, O, C)
    b = None if bias is None else bias.to(x.dtype)
    if is_channels_last(x):
        rows = _as_rows(x)  # (B, HW, C)
        if w.shape[0] == 1:
            # F.linear, not matmul: its backward (a K=3 product) took 5 ms instead of 12 at 1024 px.
            return _from_rows(F.linear(rows, w[0], b), height, width)
        out = torch.bmm(rows, w.transpose(1, 2))
        return _from_rows(out if b is None else out + b, height, width)
    out = torch.matmul(w, x.reshape(batch, channels, -1)).reshape(batch, -1, height, width)
    return out if b is None else out + b.view(1, -1, 1, 1)
