"""What every generator offers the PULSE search: ``mapping``, ``synthesis`` and the
Gaussian space of appendix B.4.

PULSE never searches Z directly. It searches a space in which the (inverted) output of
the mapping network is approximately a standard Gaussian: for a latent row ``x`` of
that space, ``w = phi(x * std + mean)`` where ``phi`` undoes the inversion of the
mapping's last activation. ``phi`` differs between architectures (see the subclasses),
``mean`` and ``std`` are the per-dimension Gaussian fit stored in the module's buffers.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["GaussianFit", "GeneratorShape", "StyleGenerator"]


@dataclass(frozen=True)
class GeneratorShape:
    """What a StyleGAN checkpoint's keys and shapes determine; the subclasses name the rule
    that upstream code uses for the channels."""

    resolution: int  # output side in pixels, a power of two >= 4
    w_dim: int  # size of z, w and of every W+ row
    mapping_layers: int  # dense layers of the mapping network
    channels: tuple[int, ...]  # feature maps per resolution level, 4x4 first

    def __post_init__(self) -> None:
        log2 = int(math.log2(self.resolution)) if self.resolution > 0 else 0
        if self.resolution < 4 or 2**log2 != self.resolution:
            raise ValueError(f"resolution must be a power of two >= 4, got {self.resolution}")
        if len(self.channels) != log2 - 1:
            raise ValueError(f"expected {log2 - 1} channel counts for {self.resolution} px, got {len(self.channels)}")
        if self.w_dim < 1 or self.mapping_layers < 1 or min(self.channels) < 1:
            raise ValueError("w_dim, mapping_layers and channels must be positive")

    @staticmethod
    def levels(resolution: int) -> int:
        """Resolution levels from 4x4 up to ``resolution``."""
        return int(math.log2(resolution)) - 1


@dataclass(frozen=True)
class GaussianFit:
    """Per-dimension mean and std, each (w_dim,), of the inverted last mapping activation."""

    mean: torch.Tensor
    std: torch.Tensor
    num_samples: int  # how many z it was estimated from
    seed: int  # seed of the torch.Generator that drew them (-1 when z was given)


class StyleGenerator(nn.Module, abc.ABC):
    """Base of the StyleGAN generators. Subclasses build ``mapping_net`` and the synthesis layers.

    Public attributes: ``architecture`` (str), ``w_dim``, ``num_ws``, ``resolution``,
    ``noise_shapes`` (list of (H, W), one per noise map, in synthesis order), and
    ``source`` / ``revision`` describing where the weights came from (set by the loader).
    """

    architecture: str = ""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("fit_mean", torch.zeros(0), persistent=False)
        self.register_buffer("fit_std", torch.zeros(0), persistent=False)
        self.fit_info: GaussianFit | None = None
        self.source: str | None = None
        self.revision: str | None = None
        self.backbone: str | None = None

    # -- properties the search relies on -------------------------------------------------
    config: GeneratorShape  # set by the subclass before anything reads the properties below

    @property
    def w_dim(self) -> int:
        return self.config.w_dim

    @property
    @abc.abstractmethod
    def num_ws(self) -> int: ...

    @property
    def resolution(self) -> int:
        return self.config.resolution

    @property
    @abc.abstractmethod
    def noise_shapes(self) -> list[tuple[int, int]]: ...

    @property
    def num_noise(self) -> int:
        return len(self.noise_shapes)

    # -- the two halves ------------------------------------------------------------------
    @abc.abstractmethod
    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """Map z (B, w_dim), any scale (pixel norm comes first), to w (B, w_dim)."""

    @abc.abstractmethod
    def synthesis(self, w_plus: torch.Tensor, noise: Sequence[torch.Tensor]) -> torch.Tensor:
        """Render w_plus (B, num_ws, w_dim) with noise maps (each (B or 1, 1, H, W)) to an
        image (B, 3, resolution, resolution), raw output of about [-1, 1] (not clamped)."""

    # -- Gaussian space of appendix B.4 --------------------------------------------------
    @abc.abstractmethod
    def invert_last_activation(self, w: torch.Tensor) -> torch.Tensor:
        """The inverse of the mapping's last activation, applied to w (any shape, last dim w_dim)."""

    @abc.abstractmethod
    def apply_last_activation(self, x: torch.Tensor) -> torch.Tensor:
        """The mapping's last activation: the exact inverse of ``invert_last_activation``."""

    def set_gaussian_fit(self, fit: GaussianFit) -> None:
        if fit.mean.shape != (self.w_dim,) or fit.std.shape != (self.w_dim,):
            raise ValueError(
                f"Gaussian fit has shapes {tuple(fit.mean.shape)}/{tuple(fit.std.shape)}, expected ({self.w_dim},)"
            )
        device = self.fit_mean.device
        self.fit_mean = fit.mean.detach().to(device=device, dtype=torch.float32)
        self.fit_std = fit.std.detach().to(device=device, dtype=torch.float32)
        self.fit_info = fit

    @property
    def has_gaussian_fit(self) -> bool:
        return self.fit_mean.numel() == self.w_dim

    def latent_to_w_plus(self, latent: torch.Tensor) -> torch.Tensor:
        """Map latents of the Gaussian space (B, K, w_dim), K = num_ws or 1, to W+ (same shape)."""
        if not self.has_gaussian_fit:
            raise RuntimeError("this generator has no Gaussian fit yet: call pulse_core.gaussian_fit.ensure_gaussian_fit")
        return self.apply_last_activation(latent * self.fit_std + self.fit_mean)

    def make_noise(
        self,
        batch: int,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> list[torch.Tensor]:
        """Standard normal noise maps, one (batch, 1, H, W) tensor per entry of ``noise_shapes``."""
        device = device if device is not None else self.fit_mean.device
        return [
            torch.randn((batch, 1, h, w), generator=generator, device=device, dtype=dtype)
            for h, w in self.noise_shapes
        ]

    def describe(self) -> dict:
        """Facts about the loaded model for results and the model card."""
        return {
            "architecture": self.architecture,
            "backbone": self.backbone,
            "resolution": self.resolution,
            "w_dim": self.w_dim,
            "num_ws": self.num_ws,
            "num_noise": self.num_noise,
            "source": self.source,
            "revision": self.revision,
        }

    def _check_synthesis_inputs(self, w_plus: torch.Tensor, noise: Sequence[torch.Tensor]) -> None:
        if w_plus.ndim != 3 or w_plus.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"w_plus must be (B, {self.num_ws}, {self.w_dim}), got {tuple(w_plus.shape)}")
        if len(noise) != self.num_noise:
            raise ValueError(f"expected {self.num_noise} noise maps, got {len(noise)}")
        for i, (n, (h, w)) in enumerate(zip(noise, self.noise_shapes)):
            if n.ndim != 4 or n.shape[1:] != (1, h, w):
                raise ValueError(f"noise map {i} must be (B, 1, {h}, {w}), got {tuple(n.shape)}")
