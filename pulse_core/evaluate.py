"""Success rates of PULSE over a manifest of face images, per subgroup (Menon et al. 2020, section 6).

The paper's bias analysis (table 3, the model card of figure 8) sampled 100 FairFace images per race
and gender subgroup, downscaled each x64 (1024 -> 16 px), ran PULSE 5 times per image and counted the
runs whose image downscales to the input within eps. ``Evaluation`` repeats that protocol for any
backbone and any CSV manifest of images with attribute columns.

Each image gets one search with ``runs_per_image`` samples: sample k starts from seed ``seed + k`` and
follows the path it would follow alone, so a batched search is the same as separate runs.

Every attribute column of the manifest becomes a grouping (race, gender...), unless the settings name
some (``EvaluationSettings.attributes``): FairFace's label CSVs also hold a ``service_test`` column,
which is no group of people.

``OUT/records.jsonl`` holds a header (settings, weights, manifest, shard) and then one JSON line per
image, appended, flushed and fsync'd as each image finishes: an interruption loses at most the image in
flight, and opening the folder again continues there. ``OUT/metrics.json`` is computed from the records
alone (``stats.compute_metrics``), so a resumed run, or shards merged, give what one run gives.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import torch

from . import __version__
from .config import SearchConfig
from .degradations import degrade, parse_degradation
from .downsample import downscale, downscale_factor
from .generators.base import StyleGenerator
from .imaging import center_crop_square, decode_image
from .runtime import RuntimeConfig
from .search import check_target, search
from .stats import (
    METRICS_FILE,
    RECORDS_FILE,
    RecordLog,
    RecordsError,
    Shard,
    compute_metrics,
    merge,
    metrics_from_records,
    read_records,
    write_metrics,
)

__all__ = ["METRICS_FILE", "PREPARE_MODES", "RECORDS_FILE", "Evaluation", "EvaluationSettings", "Manifest",
           "ManifestError", "ManifestRow", "PrepareError", "RecordsError", "Shard", "merge", "metrics_from_records",
           "prepare_image", "read_manifest", "read_records", "weights_fingerprint"]

logger = logging.getLogger(__name__)

PrepareMode = Literal["align", "resize", "as-is"]
PREPARE_MODES: tuple[str, ...] = ("align", "resize", "as-is")
DEFAULT_IMAGE_COLUMNS = ("file", "path")  # FairFace's label CSVs name the image column "file"
ALIGNED_SIZE = 1024  # FFHQ's frame, from which the paper's x64 inputs are downscaled
WHOLE = Shard(1, 1)  # the whole manifest


class ManifestError(ValueError):
    """The manifest cannot be used; the message names the file, the line and the fix."""


class PrepareError(ValueError):
    """One image cannot become an input under the chosen preparation (recorded, not fatal)."""


@dataclass(frozen=True)
class ManifestRow:
    index: int  # 0-based position among the manifest's data rows; with ``path`` it keys the image
    path: str  # as written in the CSV (relative paths are relative to the CSV's folder)
    attributes: Mapping[str, str]  # column -> label, stripped; "" = not labelled


@dataclass(frozen=True)
class Manifest:
    file: Path  # the CSV
    image_column: str
    attributes: tuple[str, ...]  # every other column, in CSV order
    rows: tuple[ManifestRow, ...]
    sha256: str  # of the CSV's bytes: records can only be combined for the same manifest

    def resolve(self, row: ManifestRow) -> Path:
        path = Path(row.path).expanduser()
        return path if path.is_absolute() else self.file.parent / path

    def describe(self) -> dict:
        return {"name": self.file.name, "sha256": self.sha256, "rows": len(self.rows),
                "image_column": self.image_column, "attributes": list(self.attributes)}

    def select_attributes(self, names: Sequence[str] | None) -> tuple[str, ...] | None:
        """The attribute columns ``names`` as ``EvaluationSettings.attributes`` records them: in the
        CSV's order, and None when they are every attribute column (as when ``names`` is None), so that
        both spellings of one measurement compare equal. ``ManifestError`` names the available columns."""
        if names is None:
            return None
        unknown = [name for name in names if name not in self.attributes]
        if unknown:
            raise ManifestError(f"{self.file}: no attribute column {', '.join(map(repr, unknown))}; the attribute "
                                f"columns are {', '.join(self.attributes) or '(none)'} (and the image column "
                                f"{self.image_column!r})")
        chosen = tuple(column for column in self.attributes if column in names)
        return None if chosen == self.attributes else chosen


def read_manifest(path: str | Path, *, image_column: str | None = None) -> Manifest:
    """Read a CSV with a header row: one image column (``image_column``, else "file" or "path")
    and any attribute columns (race, gender, age...). Blank lines are skipped."""
    path = Path(path).expanduser()
    try:
        data = path.read_bytes()
        text = data.decode("utf-8-sig")
        lines = list(csv.reader(io.StringIO(text, newline="")))
    except OSError as error:
        raise ManifestError(f"{path}: cannot read the manifest ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise ManifestError(f"{path}: the manifest is not UTF-8 text; save the CSV as UTF-8") from None
    except csv.Error as error:
        raise ManifestError(f"{path}: not a readable CSV ({error})") from None
    numbered = [(number, line) for number, line in enumerate(lines, start=1) if any(c.strip() for c in line)]
    if not numbered:
        raise ManifestError(f"{path}: the manifest is empty; it needs a header row and one row per image")
    columns = [c.strip() for c in numbered[0][1]]
    if "" in columns or len(set(columns)) != len(columns):
        raise ManifestError(f"{path}: the header row needs distinct, non-empty column names; it is {columns}")
    column = image_column or next((c for c in DEFAULT_IMAGE_COLUMNS if c in columns), None)
    if column not in columns:
        wanted = repr(image_column) if image_column else " or ".join(map(repr, DEFAULT_IMAGE_COLUMNS))
        raise ManifestError(f"{path}: no image column {wanted}; the columns are {', '.join(columns)}. "
                            "Name the column of image paths with --image-column")
    attributes = tuple(c for c in columns if c != column)
    rows = []
    for number, line in numbered[1:]:
        if len(line) != len(columns):
            raise ManifestError(f"{path}, line {number}: {len(line)} fields, but the header has {len(columns)}")
        values = dict(zip(columns, (cell.strip() for cell in line)))
        if not values[column]:
            raise ManifestError(f"{path}, line {number}: the image column {column!r} is empty")
        rows.append(ManifestRow(len(rows), values[column], {a: values[a] for a in attributes}))
    if not rows:
        raise ManifestError(f"{path}: the manifest lists no images, only its header row")
    return Manifest(path.resolve(), column, attributes, tuple(rows), hashlib.sha256(data).hexdigest())


@dataclass(frozen=True)
class EvaluationSettings:
    """What defines a measurement: records are resumed or merged only when these agree."""

    search: SearchConfig = field(default_factory=lambda: SearchConfig(samples=5))  # samples = runs per image
    input_size: int = 16  # side of the low-resolution inputs: x64 from 1024 px, as the paper
    prepare: PrepareMode = "align"  # align photos like FFHQ / downscale aligned crops / inputs as they are
    degradation: str | None = None  # parse_degradation spec applied while downscaling; None = bicubic only
    attributes: tuple[str, ...] | None = None  # manifest columns that form groups; None = every attribute column

    def __post_init__(self) -> None:
        if not isinstance(self.search, SearchConfig):
            raise ValueError("search must be a SearchConfig")
        size = self.input_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size & (size - 1):
            raise ValueError(f"input size must be a power of two (16, 32, 64...), got {size!r}")
        if self.prepare not in PREPARE_MODES:
            raise ValueError(f"prepare must be one of {', '.join(PREPARE_MODES)}, got {self.prepare!r}")
        if self.degradation is not None:  # one spelling per degradation, so that settings compare equal
            object.__setattr__(self, "degradation", parse_degradation(self.degradation).spec)
        if self.attributes is not None:
            names = self.attributes
            if isinstance(names, str) or not isinstance(names, (tuple, list)) or not names or any(
                    not isinstance(n, str) or not n.strip() for n in names):
                raise ValueError(f"attributes must be a non-empty list of column names (or None), got {names!r}")
            if len(set(names)) != len(names):
                raise ValueError(f"attributes name a column twice: {list(names)}")
            object.__setattr__(self, "attributes", tuple(names))

    @property
    def runs_per_image(self) -> int:
        return self.search.samples

    def to_dict(self) -> dict:
        """The ``settings`` of records.jsonl and metrics.json."""
        return {"input_size": self.input_size, "runs_per_image": self.runs_per_image, "prepare": self.prepare,
                "search": self.search.to_dict(), "degradation": self.degradation,
                "attributes": None if self.attributes is None else list(self.attributes)}


def prepare_image(path: Path, settings: EvaluationSettings, *, name: str, seed: int) -> tuple[torch.Tensor, dict]:
    """Decode one image and make it a (3, s, s) input in [0, 1], s = ``settings.input_size``.

    Raises ``ValueError`` (``ImageDecodeError``, ``NoFaceFoundError``, ``PrepareError``) with a sentence
    naming ``name``. A degradation draws its randomness from ``seed``."""
    image = decode_image(path, name=name)
    size = settings.input_size
    info: dict = {"source_size": list(image.shape[1:])}
    if settings.prepare == "align":
        from .alignment import (
            prepare_input,  # imported lazily: the face detector loads models
        )

        prepared = prepare_input(image, size=size, align=True, name=name)
        high, lr_image, info["method"] = prepared.aligned, prepared.lr_image, prepared.method
    elif settings.prepare == "resize":
        high = center_crop_square(image)
        try:
            factor = downscale_factor(high.shape[-1], size)
        except ValueError:
            raise PrepareError(f"{name}: its central square is {high.shape[-1]} px, not {size} px times a power of "
                               f"two, so PULSE's bicubic operator cannot reduce it to {size} px; use --prepare "
                               "align (which resamples the aligned face to 1024 px) or resize the images") from None
        lr_image = downscale(high[None], factor)[0].clamp(0.0, 1.0)
    else:
        if tuple(image.shape[1:]) != (size, size):
            raise PrepareError(f"{name}: --prepare as-is needs {size}x{size} px inputs; it is "
                               f"{image.shape[2]}x{image.shape[1]} px (use --prepare resize or align)")
        high = lr_image = image
    if settings.degradation is not None:
        rng = torch.Generator().manual_seed(seed)
        lr_image = degrade(high, parse_degradation(settings.degradation), generator=rng,
                           factor=high.shape[-1] // size)
    return lr_image, info


def weights_fingerprint(generator: StyleGenerator) -> str:
    """SHA-256 of the generator's state dict (float32 values): the same weights give the same
    fingerprint whatever file, format or folder they were loaded from."""
    digest = hashlib.sha256()
    for name, tensor in sorted(generator.state_dict().items()):
        values = tensor.detach().to("cpu", torch.float32).contiguous()
        digest.update(f"{name}{tuple(values.shape)}".encode())
        digest.update(values.numpy().tobytes())
    return digest.hexdigest()


def _fit_identity(generator: StyleGenerator) -> dict | None:
    """How the Gaussian fit of appendix B.4 was drawn; it shapes the search as much as the weights."""
    fit = generator.fit_info
    return None if fit is None else {"samples": fit.num_samples, "seed": fit.seed}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Evaluation:
    """One evaluation in OUT: opening it resumes what OUT already records (or refuses, when the
    settings, weights or manifest differ); ``run`` searches the images still pending and returns
    the metrics it writes to OUT/metrics.json.

    ``settings.attributes`` must name attribute columns of ``manifest`` (``ManifestError`` otherwise);
    ``self.settings`` holds them as ``Manifest.select_attributes`` spells them.

    ``on_image(record, done, total)`` is called after each image with its record."""

    def __init__(self, generator: StyleGenerator, manifest: Manifest, settings: EvaluationSettings,
                 out_dir: str | Path, *, shard: Shard = WHOLE, runtime: RuntimeConfig | None = None) -> None:
        if not generator.backbone:
            raise ValueError("the generator names no backbone (load it with pulse_core.load_generator)")
        try:
            downscale_factor(generator.resolution, settings.input_size)
            if settings.prepare == "align":
                downscale_factor(ALIGNED_SIZE, settings.input_size)
        except ValueError:
            raise ValueError(f"input size {settings.input_size} px cannot be reached from the generator's "
                             f"{generator.resolution} px (and the aligned {ALIGNED_SIZE} px) by halving") from None
        # The selection is part of the settings, so that a resume or a merge with other groups is refused.
        settings = replace(settings, attributes=manifest.select_attributes(settings.attributes))
        self.generator, self.manifest, self.settings, self.shard = generator, manifest, settings, shard
        self.runtime = runtime  # precision of the iterations (None: the device's fastest); verdicts are float32
        self.attributes = settings.attributes or manifest.attributes  # the columns that form groups
        self.out_dir = Path(out_dir)
        self.rows = tuple(row for row in manifest.rows if shard.selects(row.index))
        header = {"pulse_version": __version__, "settings": settings.to_dict(),
                  "backbone": generator.backbone, "revision": generator.revision,
                  "weights": {"source": generator.source, "sha256": weights_fingerprint(generator),
                              "gaussian_fit": _fit_identity(generator)},
                  # stats.compute_metrics groups by the header's manifest attributes
                  "manifest": {**manifest.describe(), "attributes": list(self.attributes)}, "shard": str(shard)}
        self.log = RecordLog.open(self.out_dir, header)
        self.pending = tuple(row for row in self.rows if row.index not in self.log.records)

    def __enter__(self) -> Evaluation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.log.close()

    def run(self, on_image: Callable[[dict, int, int], None] | None = None) -> dict:
        done = len(self.rows) - len(self.pending)
        for row in self.pending:
            record = self._evaluate(row)
            self.log.append(record)
            done += 1
            if on_image is not None:
                on_image(record, done, len(self.rows))
        self.pending = ()
        metrics = compute_metrics(self.log.header, self.log.records.values())
        write_metrics(self.out_dir, metrics)
        return metrics

    def _evaluate(self, row: ManifestRow) -> dict:
        start = time.perf_counter()
        record: dict = {"index": row.index, "path": row.path,
                        "attributes": {a: row.attributes[a] for a in self.attributes}}
        config = self.settings.search
        try:
            lr_image, info = prepare_image(self.manifest.resolve(row), self.settings, name=row.path,
                                           seed=config.seed + row.index)
            check_target(lr_image, self.generator.resolution)
        except ValueError as error:  # decoding, face detection, size (InputError too): this image only
            record.update(runs=[], error=str(error))
        else:
            result = search(self.generator, lr_image, config, callback=self._step_logger(row), runtime=self.runtime)
            record.update(runs=[{"seed": s.seed, "loss": s.loss if math.isfinite(s.loss) else None,
                                 "success": s.success, "step_found": s.best_step + 1} for s in result.samples],
                          error=None, preparation=info)
        record.update(seconds=round(time.perf_counter() - start, 3), device=str(self.generator.fit_mean.device),
                      finished=_now())
        return record

    @staticmethod
    def _step_logger(row: ManifestRow) -> Callable:
        def callback(info) -> None:
            if logger.isEnabledFor(logging.INFO) and (info.step + 1) % max(1, info.steps // 10) == 0:
                logger.info("%s: step %d/%d, best loss %.2e (eps %.0e)", row.path, info.step + 1, info.steps,
                            min(info.best), info.eps)
        return callback
