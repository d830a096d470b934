"""Weights: the backbone registry, upstream formats, safe reading, Hub fetching, loading."""

from .formats import ConvertedWeights, WeightsFormatError
from .hub import WeightsUnavailableError
from .loading import load_generator, resolve_source, save_converted
from .registry import BACKBONES, DEFAULT_BACKBONE, Backbone, get_backbone

__all__ = [
    "BACKBONES",
    "Backbone",
    "ConvertedWeights",
    "DEFAULT_BACKBONE",
    "WeightsFormatError",
    "WeightsUnavailableError",
    "get_backbone",
    "load_generator",
    "resolve_source",
    "save_converted",
]
