"""StyleGAN (v1) as PULSE used it (Karras et al. 2019; PULSE appendix B).

Synthesis: a learned 4x4 constant, then two layers per resolution. Each layer is a
convolution (the first of a block upsamples) followed by the "epilogue":
noise (per-channel strength) -> leaky ReLU 0.2 -> instance norm -> style modulation
``x * (1 + s0) + s1`` with ``(s0, s1)`` an affine function of that layer's row of W+.
Upsampling is nearest + 3x3 conv + [1, 2, 1] blur below 128 px, and a fused
transposed convolution + blur from an output of 128 px up (as the TF original did).
One 1x1 ``to_rgb`` at the end.
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
from .layers import (EqualLinear, add_channel_scaled, depthwise_kernel, memory_format_of, pixel_norm,
                     pointwise_conv, separable_kernel, styled_instance_norm)

__all__ = ["StyleGANConfig", "StyleGAN"]

_SQRT2 = math.sqrt(2.0)
_FUSED_UPSAMPLE_FROM = 128  # output side from which the original fuses upsample and conv


@dataclass(frozen=True)
class StyleGANConfig(GeneratorShape):
    """Shape of a StyleGAN v1 generator (FFHQ-1024: 1024, 512, 8, (512,)*5 + (256, 128, 64, 32, 16))."""

    @classmethod
    def from_fmaps(cls, resolution: int, w_dim: int = 512, mapping_layers: int = 8, fmap_base: int = 8192,
                   fmap_max: int = 512) -> "StyleGANConfig":
        """The upstream channel rule: ``min(2 * fmap_base // res, fmap_max)`` at side ``res``."""
        levels = cls.levels(resolution)
        channels = tuple(min(2 * fmap_base // 2 ** (b + 2), fmap_max) for b in range(levels))
        return cls(resolution, w_dim, mapping_layers, channels)


class _Layer(nn.Module):
    """One synthesis layer: optional conv, then noise, activation, instance norm and style."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, *, conv: bool) -> None:
        super().__init__()
        if conv:
            self.conv_weight = nn.Parameter(torch.empty(out_channels, in_channels, 3, 3))
            self.conv_bias = nn.Parameter(torch.zeros(out_channels))
            self.conv_gain = _SQRT2 / math.sqrt(in_channels * 9)
        self.noise_strength = nn.Parameter(torch.zeros(out_channels))
        self.style = EqualLinear(w_dim, 2 * out_channels, gain=1.0)

    def epilogue(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """noise -> leaky ReLU -> instance norm -> style ``x * (1 + s0) + s1``, in few full-size passes."""
        # Not in place: in NHWC x is a view, and autograd turns an in-place op on a view into
        # a zero-filled copy of the whole base tensor in the backward pass.
        x = F.leaky_relu(add_channel_scaled(x, noise, self.noise_strength), 0.2)
        style = self.style(w).view(w.shape[0], 2, -1).float()  # float32 affine even for bf16 activations
        return styled_instance_norm(x, style[:, 0] + 1.0, style[:, 1])


class StyleGAN(StyleGenerator):
    """StyleGAN v1 generator: ``mapping(z) -> w`` and ``synthesis(w_plus, noise) -> image``."""

    architecture = "stylegan"

    def __init__(self, config: StyleGANConfig) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        self.mapping_layers = nn.ModuleList(
            EqualLinear(config.w_dim, config.w_dim, gain=_SQRT2, lr_mul=0.01) for _ in range(config.mapping_layers)
        )
        self.const = nn.Parameter(torch.ones(1, c[0], 4, 4))
        self.const_bias = nn.Parameter(torch.ones(c[0]))
        layers = [_Layer(c[0], c[0], config.w_dim, conv=False), _Layer(c[0], c[0], config.w_dim, conv=True)]
        for level in range(1, len(c)):
            layers.append(_Layer(c[level - 1], c[level], config.w_dim, conv=True))
            layers.append(_Layer(c[level], c[level], config.w_dim, conv=True))
        self.layers = nn.ModuleList(layers)
        self.to_rgb_weight = nn.Parameter(torch.empty(3, c[-1], 1, 1))
        self.to_rgb_bias = nn.Parameter(torch.zeros(3))
        self.to_rgb_gain = 1.0 / math.sqrt(c[-1])
        self.register_buffer("blur_kernel", separable_kernel([1, 2, 1])[None, None], persistent=False)

    @property
    def num_ws(self) -> int:
        return len(self.layers)

    @property
    def noise_shapes(self) -> list[tuple[int, int]]:
        return [(2 ** (i // 2 + 2),) * 2 for i in range(self.num_ws)]

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        x = pixel_norm(z)
        for layer in self.mapping_layers:
            x = F.leaky_relu(layer(x), 0.2)
        return x

    # The mapping ends in leaky ReLU 0.2, whose inverse is leaky ReLU 5 (appendix B.4).
    def invert_last_activation(self, w: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(w, 5.0)

    def apply_last_activation(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, 0.2)

    def _blur(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """[1, 2, 1] blur, depthwise, with the layer's bias added by the same convolution."""
        kernel = depthwise_kernel(self.blur_kernel, x.shape[1], x.dtype)
        return F.conv2d(x, kernel, bias.to(x.dtype), padding=1, groups=x.shape[1])

    def _conv_weight(self, layer: _Layer, dtype: torch.dtype, fused: bool = False) -> torch.Tensor:
        """The layer's 3x3 weight times its gain in ``dtype``; ``fused``: the 4x4 weight of the
        fused upsampling (a stride-2 transposed conv with the 3x3 kernel summed over its four
        1-pixel shifts, equal to nearest upsampling followed by the 3x3 conv up to border
        handling; kept as the original computes it). Made once (``derived``)."""
        def make(param: torch.Tensor) -> torch.Tensor:
            weight = param * layer.conv_gain
            if fused:
                w = F.pad(weight.transpose(0, 1), (1, 1, 1, 1))
                weight = w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]
            return weight.to(dtype).contiguous(memory_format=memory_format_of(param))
        return derived(layer.conv_weight, ("stylegan1-conv", fused, dtype), make)

    def _upsample_conv(self, layer: _Layer, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] * 2 >= _FUSED_UPSAMPLE_FROM:
            x = F.conv_transpose2d(x, self._conv_weight(layer, x.dtype, fused=True), stride=2, padding=1)
        else:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = F.conv2d(x, self._conv_weight(layer, x.dtype), padding=1)
        return self._blur(x, layer.conv_bias)

    def synthesis(self, w_plus: torch.Tensor, noise: Sequence[torch.Tensor]) -> torch.Tensor:
        self._check_synthesis_inputs(w_plus, noise)
        x = self.const.expand(w_plus.shape[0], -1, -1, -1) + self.const_bias.view(1, -1, 1, 1)
        for i, layer in enumerate(self.layers):
            if i == 0:
                pass
            elif i % 2 == 1:
                x = F.conv2d(x, self._conv_weight(layer, x.dtype), layer.conv_bias.to(x.dtype), padding=1)
            else:
                x = self._upsample_conv(layer, x)
            x = layer.epilogue(x, w_plus[:, i], noise[i])
        return pointwise_conv(x, self.to_rgb_weight * self.to_rgb_gain, self.to_rgb_bias)
