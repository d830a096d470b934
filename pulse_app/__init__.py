"""The glue between the PULSE library and its web page.

``app.py`` holds the Gradio layout and thin adapters; this package does the work behind them
without importing any UI library: settings from the environment (``settings``), the lazily
loaded, shared generators (``models``), turning uploads into search inputs (``inputs``),
running a search that can be stopped and watched (``runner``), per-session temporary files
(``sessions``) and the pictures, plot data, words and files that show a result (``views``).
"""

from .inputs import UserInputError
from .models import GeneratorStore, WeightsError
from .settings import AppSettings

__all__ = ["AppSettings", "GeneratorStore", "UserInputError", "WeightsError"]
