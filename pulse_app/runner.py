"""Running one search so that a page can watch it and stop it.

``pulse_core.search`` reports each step through a callback and stops when the callback says so.
``stream_search`` runs it in a worker thread and turns those reports into an iterator of
``StepInfo`` (throttled, previews always kept) that ends with the ``SearchResult``. The search
stops early, returning what it found so far, when its ``StopFlag`` is set (the Stop button) and
when the iterator is closed (a cancelled request), so no search keeps running unobserved.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from pulse_core import LossWeights, SearchConfig
from pulse_core.generators.base import StyleGenerator
from pulse_core.results import SearchResult, StepInfo
from pulse_core.runtime import RuntimeConfig
from pulse_core.search import resample_noise, search

from .inputs import UserInputError

__all__ = ["MAX_SAMPLES", "StopFlag", "StreamItem", "gpu_seconds", "real_number", "search_config", "stream_search",
           "whole_number"]

MAX_SAMPLES = 8
PREVIEWS_PER_RUN = 10  # preview images streamed during a search


class StopFlag:
    """A file whose existence asks a running search to stop.

    A file rather than a ``threading.Event``: on ZeroGPU the search runs in a forked worker
    process, which sees the file system but not the page's Python objects. One flag per run.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def set(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch()

    def is_set(self) -> bool:
        return self.path.exists()


def whole_number(name: str, value: object, low: int, high: int | None = None) -> int:
    """``value`` as an int within [low, high]; ``UserInputError`` naming the setting otherwise."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not number.is_integer():
        raise UserInputError(f"{name} must be a whole number, got {value!r}.")
    whole = int(number)
    if whole < low or (high is not None and whole > high):
        bound = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise UserInputError(f"{name} must be {bound}, got {whole}.")
    return whole


def real_number(name: str, value: object) -> float:
    """``value`` as a finite float; ``UserInputError`` naming the setting otherwise."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise UserInputError(f"{name} must be a number, got {value!r}.")
    return number


def search_config(*, seed: object, samples: object, steps: object, eps: object, noise_mode: str,
                  trainable_noise_layers: object, learning_rate: object, schedule: str, optimizer: str,
                  l2_weight: object, l1_weight: object, geocross_weight: object, tile_latent: bool,
                  zero_noise_layers: Sequence[object] | None, max_steps: int) -> SearchConfig:
    """The ``SearchConfig`` of the page's controls (raw values, as an API client may send them);
    ``UserInputError`` names a bad setting."""
    steps_int = whole_number("Steps", steps, 1, max_steps)
    if zero_noise_layers is not None and not isinstance(zero_noise_layers, (list, tuple)):
        raise UserInputError(f"Zeroed noise layers must be a list of layer numbers, got {zero_noise_layers!r}.")
    zeroed = tuple(whole_number("A zeroed noise layer", i, 0) for i in zero_noise_layers or ()) or None
    values = {
        "steps": steps_int, "learning_rate": real_number("The learning rate", learning_rate),
        "eps": real_number("eps", eps), "samples": whole_number("Samples", samples, 1, MAX_SAMPLES),
        "seed": whole_number("Seed", seed, 0),
        "trainable_noise_layers": whole_number("Trainable noise layers", trainable_noise_layers, 0),
        "zero_noise_layers": zeroed, "tile_latent": bool(tile_latent), "noise_mode": noise_mode,
        "optimizer": optimizer, "schedule": schedule, "preview_every": max(1, math.ceil(steps_int / PREVIEWS_PER_RUN)),
    }
    weights = {"l2": real_number("The L2 weight", l2_weight), "l1": real_number("The L1 weight", l1_weight),
               "geocross": real_number("The geocross weight", geocross_weight)}
    try:  # the library's own checks (eps > 0, known schedule, a downscaling loss weight > 0, ...)
        return SearchConfig(loss=LossWeights(**weights), **values)
    except (TypeError, ValueError) as error:
        raise UserInputError(f"Invalid setting: {error}.") from None


def gpu_seconds(steps: int, samples: int) -> int:
    """ZeroGPU time to reserve for a search: about 60 ms per step and sample of a 1024 px
    StyleGAN2 on a shared GPU, plus the start-up, within ZeroGPU's limits."""
    return int(min(300, 30 + math.ceil(0.06 * steps * max(samples, 1))))


@dataclass(frozen=True)
class StreamItem:
    """A step of a running search and every sample's downscaling loss at each step so far."""

    info: StepInfo
    histories: tuple[tuple[float, ...], ...]  # (samples, steps so far)


@dataclass(frozen=True)
class _Failed:
    error: BaseException


def stream_search(generator: StyleGenerator, lr_image: torch.Tensor, config: SearchConfig, *,
                  stop: StopFlag | None = None, found: SearchResult | None = None, noise_seed: int = 0,
                  resample_steps: int = 20, runtime: RuntimeConfig | None = None,
                  interval: float = 0.25) -> Iterator[StreamItem | SearchResult]:
    """Run a search (or, with ``found``, ``resample_noise`` of it) and yield its progress.

    Yields a ``StreamItem`` at most every ``interval`` seconds (and for every step that carries
    a preview, and the last), then the ``SearchResult``. Errors of the search are raised here.
    """
    reports: queue.Queue[StepInfo | SearchResult | _Failed] = queue.Queue()
    closed = threading.Event()

    def callback(info: StepInfo) -> bool:
        reports.put(info)
        return closed.is_set() or (stop is not None and stop.is_set())

    def work() -> None:
        try:
            if found is None:
                result = search(generator, lr_image, config, callback=callback, runtime=runtime)
            else:
                result = resample_noise(generator, lr_image, found, noise_seed=noise_seed, steps=resample_steps,
                                        callback=callback, runtime=runtime)
            reports.put(result)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, which raises it
            reports.put(_Failed(error))

    worker = threading.Thread(target=work, name="pulse-search", daemon=True)
    worker.start()
    last = 0.0
    losses: list[tuple[float, ...]] = []  # per step, per sample
    try:
        while True:
            item = reports.get()
            if isinstance(item, _Failed):
                raise item.error
            if isinstance(item, SearchResult):
                yield item
                return
            losses.append(item.losses)
            now = time.monotonic()
            if item.preview is not None or item.step + 1 == item.steps or now - last >= interval:
                last = now
                yield StreamItem(item, tuple(zip(*losses)))
    finally:
        closed.set()
        worker.join()
