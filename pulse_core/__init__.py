"""PULSE: Photo Upsampling via Latent Space Exploration (Menon et al., CVPR 2020).

A library for the PULSE search over pretrained StyleGAN generators. PULSE invents
realistic faces that downscale to a low-resolution input; it never recovers the
identity of the person in the input. This package never imports a UI library.
"""

from .config import LossWeights, SearchConfig
from .weights import BACKBONES, WeightsFormatError, WeightsUnavailableError, get_backbone, load_generator

__version__ = "0.1.0"

__all__ = [
    "BACKBONES",
    "LossWeights",
    "SearchConfig",
    "WeightsFormatError",
    "WeightsUnavailableError",
    "__version__",
    "get_backbone",
    "load_generator",
]
