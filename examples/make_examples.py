"""Regenerate the example inputs in this folder from NASA's public-domain astronaut portrait.

Run from the repository root: ``python -m examples.make_examples``. Needs scikit-image, which
ships the photo (``skimage.data.astronaut()``, Eileen Collins, NASA, public domain). The face is
aligned with ``pulse_core.alignment`` (FFHQ's crop at 1024 px), downscaled with PULSE's bicubic
operator and, for the robustness examples, degraded as in the paper's figure 6 with a fixed seed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from pulse_core.alignment import prepare_input
from pulse_core.degradations import Degradation, degrade
from pulse_core.downsample import downscale
from pulse_core.imaging import decode_image, save_png

logger = logging.getLogger(__name__)

SEED = 0  # the degraded examples are reproducible bit for bit
SIZES = (16, 32, 64)
DEGRADED_SIZE = 32
DEGRADATIONS = {
    "gaussian25": Degradation.gaussian(25),
    "gaussian50": Degradation.gaussian(50),
    "salt_pepper": Degradation.salt_pepper(0.05),
    "motion_blur": Degradation.motion_blur(100, 30),  # the paper draws the angle at random
}


def make_examples(folder: Path) -> list[Path]:
    """Write the example PNGs into ``folder``; returns their paths."""
    from skimage import data  # only this script needs scikit-image

    photo = decode_image(data.astronaut(), name="skimage astronaut")
    prepared = prepare_input(photo, size=SIZES[0])
    aligned = prepared.aligned
    assert aligned is not None
    written = []

    def save(image: torch.Tensor, filename: str) -> None:
        save_png(image, folder / filename)
        written.append(folder / filename)

    save(downscale(aligned[None], 4)[0].clamp(0, 1), "astronaut_aligned_256.png")
    for size in SIZES:
        save(downscale(aligned[None], 1024 // size)[0].clamp(0, 1), f"astronaut_{size}.png")
    generator = torch.Generator().manual_seed(SEED)
    for label, degradation in DEGRADATIONS.items():
        low = degrade(aligned, degradation, generator=generator, factor=1024 // DEGRADED_SIZE)
        save(low, f"astronaut_{DEGRADED_SIZE}_{label}.png")
    return written


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    for path in make_examples(Path(__file__).resolve().parent):
        logger.info("wrote %s (%d bytes)", path.name, path.stat().st_size)
