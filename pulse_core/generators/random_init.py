"""Random weights for tests and benchmarks: every parameter drawn from an explicit generator."""

from __future__ import annotations

import torch

from .base import StyleGenerator

__all__ = ["randomize_"]


@torch.no_grad()
def randomize_(model: StyleGenerator, *, generator: torch.Generator, bias_std: float = 0.1,
               noise_std: float = 0.1, rgb_scale: float = 0.25) -> StyleGenerator:
    """Fill every parameter of ``model`` in place: weights ~ N(0, 1) (the layers rescale
    them, as in training), biases and noise strengths ~ N(0, std), style biases around
    their trained operating point, RGB output weights scaled by ``rgb_scale`` so that images
    mostly lie in [-1, 1] as a trained generator's do. Returns ``model`` frozen, in eval mode."""
    for name, param in model.named_parameters():
        values = torch.randn(param.shape, generator=generator)
        if name.endswith("noise_strength"):
            values = values * noise_std
        elif name.endswith("bias") or name.endswith("const_bias"):
            values = values * bias_std
            if ".style." in name and model.architecture == "stylegan2":
                values = values + 1.0  # StyleGAN2 initialises modulation biases to 1
        if "to_rgb" in name and "weight" in name and ".style." not in name:
            values = values * rgb_scale
        if name.startswith("mapping_layers."):
            # Mapping layers run with a learning-rate multiplier of 0.01, so their stored
            # values are 100x the effective ones (upstream initialises them as N(0, 1/lr_mul)).
            values = values * 100.0
        param.copy_(values)
    model.requires_grad_(False)
    return model.eval()
