"""StyleGAN2 config-f (Karras et al. 2020) in the parameterisation of rosinality's
``stylegan2-pytorch`` checkpoints, the format of the widely used FFHQ file.

Synthesis: a learned 4x4 constant; per layer a modulated 3x3 convolution with weight
demodulation (the first layer of each level upsamples by a stride-2 transposed conv
and a [1, 3, 3, 1] blur), then noise (one scalar strength), bias and leaky ReLU 0.2
times sqrt(2). Skip architecture: one modulated 1x1 ``to_rgb`` per level, summed with
the upsampled RGB of the level below.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .base import GeneratorShape, StyleGenerator
from .derived import derived
from .layers import (EqualLinear, add_channel_scaled, is_channels_last, memory_format_of, pixel_norm,
                     pointwise_conv, separable_kernel, upfirdn2d)

__all__ = ["StyleGAN2Config", "StyleGAN2"]

_SQRT2 = math.sqrt(2.0)
_BLUR_TAPS = [1.0, 3.0, 3.0, 1.0]


@dataclass(frozen=True)
class StyleGAN2Config(GeneratorShape):
    """Shape of a StyleGAN2 generator (FFHQ config-f: 1024, 512, 8, (512,)*5 + (256, 128, 64, 32))."""

    @classmethod
    def from_channel_base(cls, resolution: int, w_dim: int = 512, mapping_layers: int = 8,
                          channel_base: int = 32768, channel_max: int = 512) -> "StyleGAN2Config":
        """The channel rule ``min(channel_base // res, channel_max)`` at side ``res``."""
        levels = cls.levels(resolution)
        channels = tuple(min(channel_base // 2 ** (b + 2), channel_max) for b in range(levels))
        return cls(resolution, w_dim, mapping_layers, channels)


class _ModulatedConv(nn.Module):
    """Modulated convolution with optional demodulation (StyleGAN2, eq. 1-3).

    Two equal forms: scaling the input channels by the style and the output channels by the
    demodulation (the weight then needs no gradient), or modulating the weight per sample
    (the paper's form; the backward pass then computes a weight gradient). Each tensor is
    modulated where it is the smaller one: the activations of the 4-64 px levels; the
    weights of one NHWC sample from 32-128 px up (with AMX the weight gradient is cheaper
    than the full-size passes of modulating activations) and of every 1x1 ``to_rgb``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int, *,
                 demodulate: bool, upsample: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.style = EqualLinear(w_dim, in_channels, gain=1.0)
        self.gain = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.demodulate = demodulate
        self.upsample = upsample
        self.padding = kernel_size // 2

    def _scaled(self, recipe: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Frozen-weight derivatives, made once (``derived``): the weight times its gain
        ("weight"), as the transposed convolution takes it ("transposed"), or the sum of its
        squares over the kernel taps, (in, out) ("squares")."""
        def make(param: torch.Tensor) -> torch.Tensor:
            weight = param * self.gain
            if recipe == "squares":
                return weight.pow(2).sum(dim=(2, 3)).t().contiguous()
            weight = weight.transpose(0, 1) if recipe == "transposed" else weight
            # Dense in the parameter's layout: a strided view made every convolution copy it.
            return weight.to(dtype).contiguous(memory_format=memory_format_of(param))
        return derived(self.weight, ("stylegan2", recipe, dtype), make)

    def forward(self, x: torch.Tensor, w: torch.Tensor, blur_kernel: torch.Tensor, *, gain: float = 1.0,
                bias: torch.Tensor | None = None) -> torch.Tensor:
        """``gain * demodulate(conv(x, weight * style)) + bias``: x (B, in, H, W) to (B, out, H', W')."""
        style = self.style(w)  # (B, in)
        out_channels, _, kernel, _ = self.weight.shape
        if self.demodulate:
            # sum over (in, kh, kw) of (weight * style)^2 = style^2 @ sum_k weight^2
            scale = torch.rsqrt(style.pow(2) @ self._scaled("squares") + 1e-8) * gain  # (B, out)
        else:
            scale = style.new_full((style.shape[0], out_channels), gain)
        bias = None if bias is None else bias.to(x.dtype)
        if kernel == 1:
            weight = self._scaled("weight").view(1, out_channels, -1) * style[:, None, :] * scale[:, :, None]
            return pointwise_conv(x, weight, bias)  # (B, out, in) per sample
        if x.shape[0] == 1 and is_channels_last(x) and x[0].numel() >= self.weight.numel():
            weight = self._scaled("weight") * style.view(1, -1, 1, 1) * scale.view(-1, 1, 1, 1)
            return self._modulated_weight(x, weight, blur_kernel, bias)
        x = x * style.view(*style.shape, 1, 1).to(x.dtype)
        if self.upsample:
            x = F.conv_transpose2d(x, self._scaled("transposed", x.dtype), stride=2)
            x = upfirdn2d(x, blur_kernel, pad=(1, 1))
        else:
            x = F.conv2d(x, self._scaled("weight", x.dtype), padding=self.padding)
        scale = scale.view(*scale.shape, 1, 1).to(x.dtype)
        return x * scale if bias is None else torch.addcmul(bias.view(1, -1, 1, 1), x, scale)

    def _modulated_weight(self, x: torch.Tensor, weight: torch.Tensor, blur_kernel: torch.Tensor,
                          bias: torch.Tensor | None) -> torch.Tensor:
        """One NHWC sample: the style and demodulation are in ``weight`` (out, in, k, k)."""
        weight = weight.to(x.dtype).contiguous(memory_format=torch.channels_last)
        if self.upsample:
            x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
            return upfirdn2d(x, blur_kernel, pad=(1, 1), bias=bias)
        return F.conv2d(x, weight, bias, padding=self.padding)


class _StyledConv(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, w_dim: int, *, upsample: bool) -> None:
        super().__init__()
        self.conv = _ModulatedConv(in_channels, out_channels, 3, w_dim, demodulate=True, upsample=upsample)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor, blur_kernel: torch.Tensor) -> torch.Tensor:
        # leaky_relu(conv * demod + s * noise + b) * sqrt(2) == leaky_relu(sqrt(2) * (...)) since leaky
        # ReLU is positively homogeneous: the gain and bias go with the convolution, then noise and
        # the activation (not in place: in NHWC the noise sum is a view, see add_channel_scaled).
        x = self.conv(x, w, blur_kernel, gain=_SQRT2, bias=self.bias * _SQRT2)
        strength = (self.noise_strength * _SQRT2).expand(x.shape[1])
        return F.leaky_relu(add_channel_scaled(x, noise, strength), 0.2)


class _ToRGB(nn.Module):
    def __init__(self, in_channels: int, w_dim: int) -> None:
        super().__init__()
        self.conv = _ModulatedConv(in_channels, 3, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(3))

    def forward(self, x: torch.Tensor, w: torch.Tensor, blur_kernel: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w, blur_kernel, bias=self.bias)


class StyleGAN2(StyleGenerator):
    """StyleGAN2 generator: ``mapping(z) -> w`` and ``synthesis(w_plus, noise) -> image``."""

    architecture = "stylegan2"

    def __init__(self, config: StyleGAN2Config) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        self.mapping_layers = nn.ModuleList(
            EqualLinear(config.w_dim, config.w_dim, gain=1.0, lr_mul=0.01) for _ in range(config.mapping_layers)
        )
        self.const = nn.Parameter(torch.ones(1, c[0], 4, 4))
        convs = [_StyledConv(c[0], c[0], config.w_dim, upsample=False)]
        for level in range(1, len(c)):
            convs.append(_StyledConv(c[level - 1], c[level], config.w_dim, upsample=True))
            convs.append(_StyledConv(c[level], c[level], config.w_dim, upsample=False))
        self.convs = nn.ModuleList(convs)
        self.to_rgbs = nn.ModuleList(_ToRGB(ch, config.w_dim) for ch in c)
        # Upsampling kernels: the FIR filter is scaled by up**2 to keep the mean.
        self.register_buffer("blur_kernel", separable_kernel(_BLUR_TAPS, scale=4.0), persistent=False)

    @property
    def num_ws(self) -> int:
        return 2 * len(self.config.channels)

    @property
    def noise_shapes(self) -> list[tuple[int, int]]:
        return [(2 ** ((i + 5) // 2),) * 2 for i in range(len(self.convs))]

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        x = pixel_norm(z)
        for layer in self.mapping_layers:
            x = F.leaky_relu(layer(x), 0.2) * _SQRT2
        return x

    # The mapping ends in leaky ReLU 0.2 followed by a gain of sqrt(2): undo the gain,
    # then the activation (leaky ReLU 5), and redo both in that order's reverse.
    def invert_last_activation(self, w: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(w / _SQRT2, 5.0)

    def apply_last_activation(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, 0.2) * _SQRT2

    def synthesis(self, w_plus: torch.Tensor, noise: Sequence[torch.Tensor]) -> torch.Tensor:
        self._check_synthesis_inputs(w_plus, noise)
        kernel = self.blur_kernel
        x = self.const.expand(w_plus.shape[0], -1, -1, -1)
        x = self.convs[0](x, w_plus[:, 0], noise[0], kernel)
        rgb = self.to_rgbs[0](x, w_plus[:, 1], kernel)
        for level in range(1, len(self.to_rgbs)):
            j = 2 * level - 1
            x = self.convs[j](x, w_plus[:, j], noise[j], kernel)
            x = self.convs[j + 1](x, w_plus[:, j + 1], noise[j + 1], kernel)
            rgb = upfirdn2d(rgb, kernel, up=2, pad=(2, 1)) + self.to_rgbs[level](x, w_plus[:, j + 2], kernel)
        return rgb
