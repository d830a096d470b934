"""Typed results of a PULSE search, and the words that report them.

A sample that misses eps is never presented as a success: ``SampleResult.message``
says so in a sentence, and ``to_dict`` carries ``success: false`` beside the best loss.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

from .config import SearchConfig

__all__ = ["SampleResult", "SearchResult", "StepInfo"]


def _fmt(x: float) -> str:
    return f"{x:.2e}".replace("e-0", "e-").replace("e+0", "e+")


@dataclass(frozen=True)
class StepInfo:
    """What the per-step callback receives. Losses are downscaling MSEs, one per sample."""

    step: int  # 0-based index of the step just evaluated
    steps: int  # steps planned
    losses: tuple[float, ...]  # downscaling loss of each sample at this step
    best: tuple[float, ...]  # lowest downscaling loss of each sample so far
    eps: float
    elapsed: float  # seconds since the search started
    preview: torch.Tensor | None = None  # (B, 3, H, W) in [0, 1] every preview_every steps


@dataclass(frozen=True)
class SampleResult:
    """One start of the search: its best iterate and verdict."""

    index: int  # position among the samples
    seed: int  # seed of this sample's latent and noise
    image: torch.Tensor = field(repr=False)  # (3, H, W) in [0, 1], full resolution, float32
    downscaled: torch.Tensor = field(repr=False)  # (3, h, w) in [0, 1], DS(image) at the input size
    loss: float  # downscaling MSE of ``image`` against the input (float32, full resolution)
    eps: float
    success: bool  # loss <= eps
    best_step: int  # step at which the best iterate was found (0-based)
    steps_run: int
    history: tuple[float, ...] = field(repr=False)  # downscaling loss per step
    latent: torch.Tensor = field(repr=False)  # (K, w_dim) in the Gaussian space, K = num_ws or 1
    noise: tuple[torch.Tensor, ...] = field(repr=False)  # (1, H, W) per noise map, as used

    @property
    def message(self) -> str:
        if self.success:
            return (f"sample {self.index + 1} (seed {self.seed}): found, downscaling loss {_fmt(self.loss)} "
                    f"<= eps {_fmt(self.eps)} at step {self.best_step + 1}")
        return (f"sample {self.index + 1} (seed {self.seed}): no image found that downscales to the input within "
                f"eps = {_fmt(self.eps)}; best {_fmt(self.loss)} after {self.steps_run} steps")

    def to_dict(self) -> dict:
        return {"sample": self.index + 1, "seed": self.seed, "downscaling_loss": self.loss, "eps": self.eps,
                "success": self.success, "step_found": self.best_step + 1, "steps_run": self.steps_run,
                "message": self.message}


@dataclass(frozen=True)
class SearchResult:
    """All samples of one search plus what produced them."""

    samples: tuple[SampleResult, ...]
    config: SearchConfig
    input_size: int  # side of the low-resolution input
    factor: int  # resolution / input_size
    generator: dict  # StyleGenerator.describe(): backbone, architecture, source, revision, ...
    stopped: bool  # True when the callback stopped the search early
    steps_run: int
    seconds: float
    device: str
    runtime: dict = field(default_factory=dict)  # RuntimeConfig.describe() of the iterations

    @property
    def successes(self) -> tuple[SampleResult, ...]:
        return tuple(s for s in self.samples if s.success)

    @property
    def summary(self) -> str:
        found, total = len(self.successes), len(self.samples)
        head = f"{found} of {total} sample{'s' if total != 1 else ''} found within eps = {_fmt(self.config.eps)}"
        if self.stopped:
            head += f" (stopped after {self.steps_run} of {self.config.steps} steps)"
        failures = [s.message for s in self.samples if not s.success]
        return head + "." + ("\n" + "\n".join(failures) if failures else "")

    def to_dict(self) -> dict:
        return {
            "samples": [s.to_dict() for s in self.samples],
            "summary": self.summary,
            "input_size": self.input_size,
            "factor": self.factor,
            "stopped": self.stopped,
            "steps_run": self.steps_run,
            "config": dataclasses.asdict(self.config),
            "backbone": self.generator.get("backbone"),
            "revision": self.generator.get("revision"),
            "weights": self.generator.get("source"),
            "generator": self.generator,
            "timings": {"seconds": round(self.seconds, 3),
                        "seconds_per_step": round(self.seconds / max(self.steps_run, 1), 4),
                        "device": self.device, **self.runtime},
        }
