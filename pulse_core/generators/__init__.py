"""StyleGAN generators: plain modules with ``mapping(z)`` and ``synthesis(w_plus, noise)``."""

from .base import GaussianFit, StyleGenerator
from .random_init import randomize_
from .stylegan1 import StyleGAN, StyleGANConfig
from .stylegan2 import StyleGAN2, StyleGAN2Config

__all__ = ["GaussianFit", "StyleGAN", "StyleGAN2", "StyleGAN2Config", "StyleGANConfig", "StyleGenerator", "randomize_"]
