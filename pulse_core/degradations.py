"""The degradations of the paper's robustness experiments (Menon et al. 2020, section 5, figure 6).

PULSE is given a degraded low-resolution image and, because it only returns faces the generator
can make, finds one that downscales to (roughly) the clean image: it denoises implicitly. Figure 6
(x32) uses: downscaling followed by Gaussian noise (std 25 and 50 on the 0-255 scale); motion blur
of length 100 in a random direction followed by downscaling; downscaling followed by
salt-and-pepper noise of density 0.05. ``degrade`` applies each at that place in the chain, with
PULSE's bicubic operator for the downscaling and all randomness drawn from an explicit generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from pulse_core.downsample import downscale

__all__ = ["KINDS", "Degradation", "DegradationKind", "degrade", "motion_blur_kernel", "parse_degradation"]

DegradationKind = Literal["gaussian", "motion_blur", "salt_pepper"]
KINDS: tuple[str, ...] = ("gaussian", "motion_blur", "salt_pepper")
# Which field parametrises which kind, with the paper's value as the default.
_PARAMETERS: dict[str, dict[str, float | None]] = {
    "gaussian": {"std": 25.0},
    "motion_blur": {"length": 100.0, "angle": None},
    "salt_pepper": {"density": 0.05},
}


@dataclass(frozen=True)
class Degradation:
    """One degradation; fields that do not belong to ``kind`` stay None, missing ones get the paper's value."""

    kind: DegradationKind
    std: float | None = None  # gaussian: noise standard deviation on the 0-255 scale (paper: 25, 50)
    length: float | None = None  # motion_blur: path length in pixels of the image blurred (paper: 100 at 1024 px)
    angle: float | None = None  # motion_blur: degrees counter-clockwise from +x; None = random per call
    density: float | None = None  # salt_pepper: fraction of pixels set to black or white (paper: 0.05)

    def __post_init__(self) -> None:
        if self.kind not in _PARAMETERS:
            raise ValueError(f"unknown degradation kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        own = _PARAMETERS[self.kind]
        for name in ("std", "length", "angle", "density"):
            value = getattr(self, name)
            if name not in own:
                if value is not None:
                    raise ValueError(f"{name} does not apply to {self.kind} degradations")
                continue
            if value is None:
                # Filling defaults here keeps asdict() and the spec string complete.
                object.__setattr__(self, name, own[name])
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.kind == "gaussian" and not self.std > 0:
            raise ValueError(f"gaussian std must be > 0 (0-255 scale), got {self.std}")
        if self.kind == "motion_blur" and not self.length >= 1:
            raise ValueError(f"motion_blur length must be >= 1 pixel, got {self.length}")
        if self.kind == "salt_pepper" and not 0 < self.density <= 1:
            raise ValueError(f"salt_pepper density must be in (0, 1], got {self.density}")

    @classmethod
    def gaussian(cls, std: float = 25.0) -> Degradation:
        return cls("gaussian", std=std)

    @classmethod
    def motion_blur(cls, length: float = 100.0, angle: float | None = None) -> Degradation:
        return cls("motion_blur", length=length, angle=angle)

    @classmethod
    def salt_pepper(cls, density: float = 0.05) -> Degradation:
        return cls("salt_pepper", density=density)

    @property
    def spec(self) -> str:
        """The string ``parse_degradation`` reads back into this degradation, e.g. ``"gaussian:25"``."""
        values = [getattr(self, name) for name in _PARAMETERS[self.kind]]
        return ":".join([self.kind, *(f"{v:g}" for v in values if v is not None)])


def parse_degradation(spec: str) -> Degradation:
    """Read a command-line spec: ``gaussian[:STD]``, ``motion_blur[:LENGTH[:ANGLE]]``, ``salt_pepper[:DENSITY]``.

    Missing numbers take the paper's values (std 25, length 100 in a random direction, density
    0.05); hyphens may replace underscores. Raises ``ValueError`` saying what is wrong.
    """
    usage = "gaussian[:STD], motion_blur[:LENGTH[:ANGLE]] or salt_pepper[:DENSITY], e.g. 'gaussian:25'"
    kind, *numbers = spec.strip().lower().split(":")
    kind = kind.replace("-", "_")
    if kind not in _PARAMETERS:
        raise ValueError(f"unknown degradation {kind!r} in {spec!r}; expected {usage}")
    names = list(_PARAMETERS[kind])
    if len(numbers) > len(names):
        raise ValueError(
            f"{kind} takes at most {len(names)} number(s) ({', '.join(names)}), got {len(numbers)} in {spec!r}"
        )
    values = {}
    for name, text in zip(names, numbers, strict=False):  # missing numbers keep defaults
        try:
            values[name] = float(text)
        except ValueError:
            raise ValueError(f"{name} must be a number, got {text!r} in {spec!r}; expected {usage}") from None
    return Degradation(kind, **values)  # type: ignore[arg-type]


def motion_blur_kernel(length: float, angle: float) -> torch.Tensor:
    """(K, K) float32 kernel, summing to 1, of a uniform straight path ``length`` pixels long.

    ``angle`` is in degrees counter-clockwise from +x as seen on screen (rows grow downwards). The
    path, centred on the kernel's middle pixel, is sampled densely and each sample splatted
    bilinearly, so any length and angle is represented without gaps (variance along the path:
    length**2 / 12 + 1/6).
    """
    if not length >= 1:
        raise ValueError(f"motion blur length must be >= 1, got {length}")
    radius = math.ceil(length / 2) + 1
    size = 2 * radius + 1
    samples = max(2, math.ceil(16 * length))
    t = torch.linspace(-length / 2, length / 2, samples, dtype=torch.float64)
    x = radius + t * math.cos(math.radians(angle))
    y = radius - t * math.sin(math.radians(angle))
    x0, y0 = x.floor(), y.floor()
    kernel = torch.zeros(size * size, dtype=torch.float64)
    for dx in (0, 1):
        for dy in (0, 1):
            weight = (1 - (x - x0 - dx).abs()) * (1 - (y - y0 - dy).abs())
            kernel.index_add_(0, ((y0 + dy) * size + x0 + dx).long(), weight)
    return (kernel / kernel.sum()).view(size, size).to(torch.float32)


def _convolve(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Convolve (B, C, H, W) with a centred odd (K, K) kernel, edges reflected, through the FFT.

    A 101-tap kernel on a 1024 px image would cost 10^4 multiplies per pixel as a direct conv.
    """
    radius = kernel.shape[-1] // 2
    height, width = image.shape[-2:]
    mode = "reflect" if radius < min(height, width) else "replicate"
    padded = F.pad(image, (radius, radius, radius, radius), mode=mode)
    shape = padded.shape[-2:]
    # The kernel's centre goes to (0, 0); the circular wrap-around then only touches the padding.
    placed = torch.zeros(shape, dtype=image.dtype, device=image.device)
    placed[: kernel.shape[0], : kernel.shape[1]] = kernel.to(image)
    placed = torch.roll(placed, shifts=(-radius, -radius), dims=(0, 1))
    out = torch.fft.irfft2(torch.fft.rfft2(padded) * torch.fft.rfft2(placed), s=shape)
    return out[..., radius : radius + height, radius : radius + width]


def degrade(
    image: torch.Tensor,
    degradation: Degradation,
    *,
    generator: torch.Generator,
    factor: int = 1,
) -> torch.Tensor:
    """Apply ``degradation`` to ``image`` (3, H, W) or (B, 3, H, W) in [0, 1]; returns [0, 1].

    ``factor`` is the downscaling (PULSE's bicubic operator) placed as in the paper: noise is
    added after it, motion blur applied before it. Pass the 1024 px image with ``factor=32`` to
    reproduce figure 6; ``factor=1`` degrades the image at its own resolution. Every random draw
    (noise, salt/pepper positions, a missing blur angle) comes from ``generator``.
    """
    batched = image if image.ndim == 4 else image[None]
    if batched.ndim != 4 or batched.shape[1] != 3:
        raise ValueError(f"expected an image of shape (3, H, W) or (B, 3, H, W), got {tuple(image.shape)}")
    batched = batched.float()

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=generator, device=generator.device).to(batched.device)

    if degradation.kind == "motion_blur":
        angle = degradation.angle if degradation.angle is not None else 180.0 * float(uniform(1))
        kernel = motion_blur_kernel(degradation.length, angle)
        out = downscale(_convolve(batched, kernel), factor)
    elif degradation.kind == "gaussian":
        low = downscale(batched, factor)
        noise = torch.randn(low.shape, generator=generator, device=generator.device).to(low.device)
        out = low + noise * (degradation.std / 255.0)
    else:
        low = downscale(batched, factor)
        batch, _, height, width = low.shape
        # Whole pixels (all channels) turn black or white, half each on average.
        hit = uniform(batch, 1, height, width) < degradation.density
        salt = (uniform(batch, 1, height, width) < 0.5).to(low.dtype)
        out = torch.where(hit, salt.expand_as(low), low)
    out = out.clamp(0.0, 1.0)
    return out if image.ndim == 4 else out[0]
