"""Writing search results to disk: PNG images and ``results.json``, shared by the CLI,
the app's download bundle and the evaluation tools.

File names: ``<stem>_<k>.png`` and ``<stem>_<k>_downscaled.png`` for sample k (1-based)
that found an image within eps. A failed sample's best attempt is written only when
asked, as ``<stem>_<k>_FAILED_best-attempt.png`` so that it cannot pass for a success.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from .imaging import save_png
from .results import SearchResult

__all__ = ["ResultsLog", "input_entry", "sample_file_names", "write_result_images"]


def sample_file_names(stem: str, number: int, success: bool) -> tuple[str, str]:
    """Names of the full-resolution and downscaled PNGs of sample ``number`` (1-based)."""
    base = f"{stem}_{number}" if success else f"{stem}_{number}_FAILED_best-attempt"
    return f"{base}.png", f"{base}_downscaled.png"


def write_result_images(result: SearchResult, out_dir: Path, stem: str, *, keep_failed: bool = False) -> list[dict]:
    """Write each sample's PNGs; return its results.json entries with the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for sample in result.samples:
        entry = sample.to_dict()
        if sample.success or keep_failed:
            image_name, low_name = sample_file_names(stem, sample.index + 1, sample.success)
            save_png(sample.image, out_dir / image_name)
            save_png(sample.downscaled, out_dir / low_name)
            entry["outputs"] = {"image": image_name, "downscaled": low_name}
        else:
            entry["outputs"] = None
        entries.append(entry)
    return entries


@dataclass
class ResultsLog:
    """``results.json``, rewritten atomically after every input so an interruption keeps
    everything finished before it."""

    path: Path
    meta: dict = field(default_factory=dict)  # config, backbone, revision, device...
    inputs: list[dict] = field(default_factory=list)

    def add(self, entry: dict) -> None:
        self.inputs.append(entry)
        self.write()

    def write(self) -> None:
        data = {"pulse_version": __version__, **self.meta, "inputs": self.inputs}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".results-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
        os.replace(tmp, self.path)


def input_entry(name: str, result: SearchResult | None, samples: list[dict] | None = None,
                error: str | None = None, preparation: dict | None = None) -> dict:
    """One input's record in results.json."""
    entry: dict = {"input": name}
    if error is not None:
        entry.update(status="error", error=error)
        return entry
    assert result is not None
    entry.update(status="ok", found=len(result.successes), samples_total=len(result.samples),
                 summary=result.summary, stopped=result.stopped, input_size=result.input_size,
                 factor=result.factor, timings=result.to_dict()["timings"], samples=samples or [])
    if preparation:
        entry["preparation"] = preparation
    return entry
