"""The generators the app serves: each loaded once, on first use, then shared read-only.

Loading happens under one lock, so concurrent first requests wait for a single load instead of
downloading twice. A failed load is remembered (for the page's banner) and retried on the next
request, since the usual causes - no network, a Hub outage - are temporary.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from pulse_core import (
    WeightsFormatError,
    WeightsUnavailableError,
    get_backbone,
    load_generator,
)
from pulse_core.generators.base import StyleGenerator
from pulse_core.runtime import RuntimeConfig, choose_runtime, prepare_generator
from pulse_core.weights import hub

from .settings import AppSettings

__all__ = ["WHAT_TO_SET", "GeneratorStore", "Loaded", "WeightsError"]

logger = logging.getLogger(__name__)

WHAT_TO_SET = ("To use other weights, set PULSE_WEIGHTS to a local checkpoint (file or folder) or a Hub repo id "
               "(owner/name or owner/name:file), optionally PULSE_REVISION to a commit and PULSE_BACKBONE to the "
               "backbone it holds, then restart the app.")


class WeightsError(RuntimeError):
    """A generator that cannot be had, with a sentence saying why and what to set."""


@dataclass(frozen=True, eq=False)
class Loaded:
    """A generator ready for searches, and how its search iterations run on this machine."""

    generator: StyleGenerator  # frozen, eval mode, laid out for ``runtime``; never changed by a search
    runtime: RuntimeConfig  # the device's fastest precision (``PULSE_PLAIN=1``: plain float32)


class GeneratorStore:
    """Lazily loaded generators keyed by backbone name. Only ``get`` writes, under the lock."""

    def __init__(self, settings: AppSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._generators: dict[str, Loaded] = {}
        self._errors: dict[str, str] = {}

    def get(self, backbone: str) -> Loaded:
        """The generator of ``backbone``, loading it the first time; ``WeightsError`` if it cannot be had."""
        if backbone not in self.settings.backbones():
            raise WeightsError(f"Backbone {backbone!r} has no weights here; choose one of "
                               f"{', '.join(self.settings.backbones())}. {WHAT_TO_SET}")
        with self._lock:
            if backbone not in self._generators:
                self._generators[backbone] = self._load(backbone)
            return self._generators[backbone]

    def loaded(self, backbone: str) -> StyleGenerator | None:
        """The generator if it is already loaded; never loads."""
        entry = self._generators.get(backbone)
        return entry.generator if entry is not None else None

    def _load(self, backbone: str) -> Loaded:
        source, revision = self.settings.source_for(backbone)
        logger.info("loading the %s generator from %s", backbone, source or "its Hub default")
        try:
            generator = load_generator(source, backbone=backbone, revision=revision, device=self.settings.device,
                                       fit_samples=self.settings.fit_samples)
        except (WeightsUnavailableError, WeightsFormatError, FileNotFoundError, OSError, ValueError) as error:
            where = f"PULSE_WEIGHTS={source}" if source else "its Hub default"
            message = f"The {backbone} weights ({where}) could not be loaded: {error} {WHAT_TO_SET}"
            self._errors[backbone] = message
            logger.warning("%s", message)
            raise WeightsError(message) from None
        self._errors.pop(backbone, None)
        runtime = choose_runtime(generator.fit_mean.device, plain=self.settings.plain)
        return Loaded(prepare_generator(generator.eval(), runtime), runtime)

    def describe(self, backbone: str) -> str:
        """One sentence on the weights of ``backbone`` for the page, without loading anything."""
        title = get_backbone(backbone).title
        generator = self.loaded(backbone)
        if generator is not None:
            revision = f" at revision {generator.revision}" if generator.revision else ""
            return (f"Weights ready: {title} ({generator.resolution} px) from {generator.source}{revision}, "
                    f"on {self.settings.device}.")
        if backbone in self._errors:
            return self._errors[backbone]
        source, revision = self.settings.source_for(backbone)
        if source is None:
            entry = get_backbone(backbone)
            return (f"Weights: {title} from the Hub repo {entry.repo_id}; they load on the first run "
                    "(a download of a few hundred MB the first time).")
        if not Path(source).expanduser().exists() and not hub.looks_like_repo_id(source):
            return f"The {backbone} weights cannot be loaded: PULSE_WEIGHTS={source} does not exist. {WHAT_TO_SET}"
        pinned = f" at revision {revision}" if revision else ""
        return f"Weights: {title} from PULSE_WEIGHTS={source}{pinned}; they load on the first run."

    def card_source(self, backbone: str) -> tuple[str | None, str | None]:
        """(source, revision) for the model card: what ran if loaded, else what is configured."""
        generator = self.loaded(backbone)
        if generator is not None:
            return generator.source, generator.revision
        source, revision = self.settings.source_for(backbone)
        if source is None:
            entry = get_backbone(backbone)
            source = f"{entry.repo_id}:{entry.filename}"
        return source, revision
