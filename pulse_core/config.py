"""Typed, frozen configuration of the PULSE search (paper section 3, appendix B).

Every option of the original command line is a field here, validated once in
``__post_init__``; ``dataclasses.asdict(config)`` feeds results, logs and the model card.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "LossWeights",
    "NoiseMode",
    "OptimizerName",
    "ScheduleName",
    "SearchConfig",
]

NoiseMode = Literal["fixed", "trainable", "zero"]
OptimizerName = Literal["adam", "sgd", "sgdm", "adamax"]
ScheduleName = Literal["fixed", "linear1cycle", "linear1cycledrop"]

NOISE_MODES: tuple[str, ...] = ("fixed", "trainable", "zero")
OPTIMIZERS: tuple[str, ...] = ("adam", "sgd", "sgdm", "adamax")
SCHEDULES: tuple[str, ...] = ("fixed", "linear1cycle", "linear1cycledrop")
DOWNSCALE_LOSSES: tuple[str, ...] = ("l2", "l1")


@dataclass(frozen=True)
class LossWeights:
    """Weights of the terms of the search objective (the paper's ``100*L2+0.05*GEOCROSS``)."""

    l2: float = 100.0  # mean squared error of DS(G(z)) against the input, images in [0, 1]
    l1: float = 0.0  # mean absolute error (x10, as the original scales it)
    geocross: float = 0.05  # geodesic cross loss of appendix B.3 on the W+ rows

    def __post_init__(self) -> None:
        for name in ("l2", "l1", "geocross"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0 or value != value:
                raise ValueError(f"loss weight {name} must be a number >= 0, got {value!r}")
        if self.l2 == 0 and self.l1 == 0:
            raise ValueError("at least one downscaling loss weight (l2 or l1) must be > 0")


@dataclass(frozen=True)
class SearchConfig:
    """Settings of one PULSE search. Defaults are the paper's (section 4, appendix B)."""

    steps: int = 100  # optimiser steps
    learning_rate: float = 0.4  # peak learning rate, scaled by the schedule
    eps: float = 2e-3  # success threshold on the mean squared downscaling error
    samples: int = 1  # independent starts optimised together (one-to-many)
    seed: int = 0  # sample k is seeded with seed + k (0 is a seed like any other)
    tile_latent: bool = False  # one latent row repeated num_ws times (geocross is then 0)
    noise_mode: NoiseMode = "trainable"  # appendix B.5
    trainable_noise_layers: int = 5  # the first k noise maps are optimised (trainable mode)
    zero_noise_layers: tuple[int, ...] | None = None  # maps forced to zero; None = the last one
    loss: LossWeights = field(default_factory=LossWeights)
    optimizer: OptimizerName = "adam"
    schedule: ScheduleName = "linear1cycledrop"
    preview_every: int = 0  # render a preview image every n steps for the callback (0 = never)

    def __post_init__(self) -> None:
        def positive_int(name: str, value: object, minimum: int) -> None:
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")

        positive_int("steps", self.steps, 1)
        positive_int("samples", self.samples, 1)
        positive_int("seed", self.seed, 0)
        positive_int("trainable_noise_layers", self.trainable_noise_layers, 0)
        positive_int("preview_every", self.preview_every, 0)
        if not (isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if not (isinstance(self.eps, (int, float)) and self.eps > 0):
            raise ValueError(f"eps must be > 0, got {self.eps!r}")
        if self.noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {', '.join(NOISE_MODES)}, got {self.noise_mode!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if not isinstance(self.loss, LossWeights):
            raise ValueError("loss must be a LossWeights")
        if self.zero_noise_layers is not None:
            layers = tuple(self.zero_noise_layers)
            if any(not isinstance(i, int) or i < 0 for i in layers):
                raise ValueError(f"zero_noise_layers must be indices >= 0, got {layers!r}")
            # Normalise lists to a sorted tuple so that configs compare and hash by value.
            object.__setattr__(self, "zero_noise_layers", tuple(sorted(set(layers))))

    def replace(self, **changes: object) -> "SearchConfig":
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def zeroed_layers(self, num_noise: int) -> tuple[int, ...]:
        """Indices of the noise maps held at zero for a generator with ``num_noise`` maps."""
        if self.noise_mode == "zero":
            return tuple(range(num_noise))
        if self.zero_noise_layers is None:
            return (num_noise - 1,)
        bad = [i for i in self.zero_noise_layers if i >= num_noise]
        if bad:
            raise ValueError(f"zero_noise_layers {bad} out of range: the generator has {num_noise} noise maps")
        return self.zero_noise_layers

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
