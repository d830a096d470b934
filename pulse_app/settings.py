"""The app's settings, read once from the environment (a Space's variables, or the shell's).

| variable | meaning |
| --- | --- |
| ``PULSE_WEIGHTS`` | weights of ``PULSE_BACKBONE``: a local file or folder, or a Hub ``owner/name[:file]`` |
| ``PULSE_REVISION`` | Hub revision (commit, branch or tag) of those weights |
| ``PULSE_BACKBONE`` | the backbone ``PULSE_WEIGHTS`` holds (default ``stylegan2-ffhq``) |
| ``PULSE_DEVICE`` | torch device; default ``cuda`` when available, else ``cpu`` |
| ``PULSE_FIT_SAMPLES`` | samples of the Gaussian fit of the mapping output (computed once, cached) |
| ``PULSE_MAX_UPLOAD_MB`` | larger uploads are refused with a sentence; the server drops twice that |
| ``PULSE_MAX_PIXELS`` | larger images are refused from their header (decompression bombs) |
| ``PULSE_MAX_STEPS`` | the most search steps one request may ask for |
| ``PULSE_CONCURRENCY`` | searches that run at once; the others wait in the queue |
| ``PULSE_QUEUE_SIZE`` | requests the queue holds before it turns new ones away |
| ``PULSE_SESSION_TTL`` | seconds after which a session's files are deleted even if it never closed |
| ``PULSE_METRICS`` | a ``metrics.json`` from the evaluation, shown in the model card |
| ``PULSE_PLAIN`` | ``1``: plain float32 search iterations instead of the device's fastest (bfloat16) |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from pulse_core.gaussian_fit import DEFAULT_FIT_SAMPLES
from pulse_core.weights.registry import BACKBONES, DEFAULT_BACKBONE, get_backbone

__all__ = ["AppSettings", "default_device"]


def default_device() -> str:
    """``cuda`` where a GPU is visible (ZeroGPU included), else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _number(environ: Mapping[str, str], name: str, default: float, kind: type = int, minimum: float = 1) -> float:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{name} must be {'an integer' if kind is int else 'a number'}, got {text!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {text!r}")
    return value


@dataclass(frozen=True)
class AppSettings:
    """What the app serves and how much it accepts. ``from_env`` reads the variables above."""

    weights: str | None = None  # PULSE_WEIGHTS; None = the backbone's Hub default
    revision: str | None = None  # PULSE_REVISION, for the weights of weights_backbone
    weights_backbone: str = DEFAULT_BACKBONE  # PULSE_BACKBONE: the backbone those weights are
    device: str = "cpu"
    fit_samples: int = DEFAULT_FIT_SAMPLES
    max_upload_mb: float = 10.0  # uploads over this get a sentence; twice this is cut at the server
    max_pixels: int = 40_000_000
    max_steps: int = 1000
    concurrency: int = 1  # searches at once: on a CPU two searches only share the cores
    queue_size: int = 16
    session_ttl: int = 3600
    metrics: str | None = None  # PULSE_METRICS
    plain: bool = False  # PULSE_PLAIN: float32 iterations everywhere (pulse_core.runtime)

    def __post_init__(self) -> None:
        get_backbone(self.weights_backbone)  # KeyError naming the known backbones

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AppSettings:
        env = os.environ if environ is None else environ
        backbone = env.get("PULSE_BACKBONE", "").strip() or DEFAULT_BACKBONE
        if backbone not in BACKBONES:
            raise ValueError(f"PULSE_BACKBONE must be one of {', '.join(sorted(BACKBONES))}, got {backbone!r}")
        return cls(
            weights=env.get("PULSE_WEIGHTS", "").strip() or None,
            revision=env.get("PULSE_REVISION", "").strip() or None,
            weights_backbone=backbone,
            device=env.get("PULSE_DEVICE", "").strip() or default_device(),
            fit_samples=int(_number(env, "PULSE_FIT_SAMPLES", DEFAULT_FIT_SAMPLES, minimum=1000)),
            max_upload_mb=float(_number(env, "PULSE_MAX_UPLOAD_MB", 10.0, float, minimum=0.01)),
            max_pixels=int(_number(env, "PULSE_MAX_PIXELS", 40_000_000, minimum=4096)),
            max_steps=int(_number(env, "PULSE_MAX_STEPS", 1000)),
            concurrency=int(_number(env, "PULSE_CONCURRENCY", 1)),
            queue_size=int(_number(env, "PULSE_QUEUE_SIZE", 16)),
            session_ttl=int(_number(env, "PULSE_SESSION_TTL", 3600, minimum=60)),
            metrics=env.get("PULSE_METRICS", "").strip() or None,
            plain=env.get("PULSE_PLAIN", "").strip().lower() in {"1", "true", "yes", "on"},
        )

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)

    @property
    def server_max_file_size(self) -> int:
        """The server's hard cap on an upload, in bytes; between the two the user gets a sentence."""
        return 2 * self.max_upload_bytes

    def backbones(self) -> tuple[str, ...]:
        """Backbones that have weights to load: the one PULSE_WEIGHTS holds, and every one
        with a public Hub default (the default backbone first)."""
        names = [self.weights_backbone] if self.weights else []
        names += [name for name, b in BACKBONES.items() if b.repo_id is not None and name not in names]
        return tuple(sorted(names, key=lambda name: name != DEFAULT_BACKBONE))

    def source_for(self, backbone: str) -> tuple[str | None, str | None]:
        """(source, revision) to load ``backbone`` from; a None source is the backbone's Hub default."""
        if backbone == self.weights_backbone:
            return self.weights, self.revision
        return None, None
