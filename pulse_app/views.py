"""What a result looks like on the page and in the download: captioned PNGs, the verification
pairs of the paper's figure 1, the loss curves, the status in words and the zip with results.json.

Losses are downscaling MSEs (per pixel and channel, images in [0, 1]) as everywhere in PULSE; a
sample is a success only when its loss is within eps, and every caption and sentence says which.
"""

from __future__ import annotations

import json
import math
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from pulse_core.imaging import save_png, to_uint8_array
from pulse_core.outputs import ResultsLog, input_entry, write_result_images
from pulse_core.results import SampleResult, SearchResult, StepInfo

from .inputs import SearchInput

__all__ = ["LOSS_COLUMNS", "Outputs", "caption", "loss_frame", "nearest_enlarge", "preview_items",
           "progress_text", "status_text", "write_outputs"]

LOSS_COLUMNS = ("step", "log10 loss", "curve")
VERIFY_SIDE = 256  # the verification pair's images are enlarged to about this many pixels


def _e(x: float) -> str:
    return f"{x:.2e}".replace("e-0", "e-").replace("e+0", "e+")


def caption(sample: SampleResult) -> str:
    """Gallery caption: the sample, a plain success or failure mark and its loss against eps."""
    if sample.success:
        return f"Sample {sample.index + 1} ✓ found: loss {_e(sample.loss)} ≤ eps {_e(sample.eps)}"
    return f"Sample {sample.index + 1} ✗ not found: best loss {_e(sample.loss)} > eps {_e(sample.eps)}"


def nearest_enlarge(image: torch.Tensor, side: int = VERIFY_SIDE) -> torch.Tensor:
    """(3, s, s) enlarged by the integer factor closest to ``side / s`` with no smoothing."""
    factor = max(1, round(side / image.shape[-1]))
    return image.repeat_interleave(factor, dim=-1).repeat_interleave(factor, dim=-2)


def verification_pair(lr_image: torch.Tensor, downscaled: torch.Tensor) -> torch.Tensor:
    """[input | white gap | DS(sample)], both at the input's scale, enlarged without smoothing."""
    left, right = nearest_enlarge(lr_image), nearest_enlarge(downscaled)
    gap = torch.ones(3, left.shape[1], max(8, left.shape[2] // 16))
    return torch.cat([left, gap, right], dim=2)


def loss_frame(histories: Sequence[Sequence[float]], eps: float) -> pd.DataFrame:
    """Long-format curves for a line plot: log10 of each sample's loss per step, and eps as a line."""
    rows = [(step + 1, math.log10(max(loss, 1e-12)), f"sample {k + 1}")
            for k, history in enumerate(histories) for step, loss in enumerate(history)]
    steps = max((len(h) for h in histories), default=1)
    rows += [(1, math.log10(eps), "eps"), (max(steps, 2), math.log10(eps), "eps")]
    return pd.DataFrame(rows, columns=list(LOSS_COLUMNS))


def progress_text(info: StepInfo, *, what: str = "Searching") -> str:
    best = ", ".join(_e(b) for b in info.best)
    found = sum(b <= info.eps for b in info.best)
    return (f"{what}: step {info.step + 1} of {info.steps}. Best downscaling loss so far per sample: {best} "
            f"(eps {_e(info.eps)}; {found} of {len(info.best)} within eps).")


def status_text(result: SearchResult, *, what: str = "Search") -> str:
    """The library's summary in words (found count, a sentence per failure) plus what ran."""
    ran = (f"{what} ran {result.steps_run} step{'s' if result.steps_run != 1 else ''} in {result.seconds:.1f} s "
           f"on {result.device} ({result.input_size} px input, x{result.factor}).")
    return f"{result.summary}\n{ran}"


def preview_items(info: StepInfo, side: int = VERIFY_SIDE) -> list[tuple[np.ndarray, str]]:
    """The search's current images, reduced to at most ``side`` px, captioned with their loss now."""
    assert info.preview is not None
    images = info.preview
    if images.shape[-1] > side:
        images = F.interpolate(images, size=(side, side), mode="area")
    return [(to_uint8_array(image), f"Sample {k + 1} at step {info.step + 1}: loss {_e(info.losses[k])}")
            for k, image in enumerate(images)]


def _stem(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(name).stem).strip("_")[:40]
    return stem or "input"


@dataclass(frozen=True)
class Outputs:
    """Files and values that show one finished search."""

    gallery: list[tuple[str, str]]  # (PNG path, caption) per sample
    verification: list[tuple[str, str]]  # (PNG path, caption) per sample
    losses: pd.DataFrame
    status: str
    report: dict  # results.json as written
    bundle: Path  # zip of every file and results.json


def write_outputs(result: SearchResult, target: SearchInput, folder: Path, *, extra: dict | None = None,
                  what: str = "Search") -> Outputs:
    """Write the PNGs, results.json (the CLI's format) and the zip into ``folder``."""
    stem = _stem(target.name)
    entries = write_result_images(result, folder, stem, keep_failed=True)
    save_png(target.lr_image, folder / f"{stem}_input.png")
    files = [f"{stem}_input.png"]
    gallery, verification = [], []
    for sample, entry in zip(result.samples, entries):
        files += [entry["outputs"]["image"], entry["outputs"]["downscaled"]]
        pair = f"{stem}_{sample.index + 1}_verification.png"
        save_png(verification_pair(target.lr_image, sample.downscaled), folder / pair)
        files.append(pair)
        entry["outputs"]["verification"] = pair
        gallery.append((str(folder / entry["outputs"]["image"]), caption(sample)))
        mark = "✓" if sample.success else "✗"
        label = f"Sample {sample.index + 1}: input | downscaled, {mark} loss {_e(sample.loss)}"
        verification.append((str(folder / pair), label))
    # The same top-level fields as the CLI's results.json (pulse_core.cli.upsample).
    summary = result.to_dict()
    preparation = {**target.preparation, **(extra or {})}
    meta = {key: summary[key] for key in ("config", "backbone", "revision", "weights")}
    meta.update(device=result.device, align=preparation["size"] if preparation["mode"] == "align" else None,
                degrade=target.degradation, errors=[])
    log = ResultsLog(folder / "results.json", meta)
    log.add(input_entry(target.name, result, entries, preparation=preparation))
    bundle = folder / f"{stem}_pulse.zip"
    with zipfile.ZipFile(bundle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in files + ["results.json"]:
            archive.write(folder / name, arcname=name)
    report = json.loads((folder / "results.json").read_text())
    histories = [sample.history for sample in result.samples]
    return Outputs(gallery, verification, loss_frame(histories, result.config.eps), status_text(result, what=what),
                   report, bundle)
