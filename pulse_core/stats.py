"""The records of an evaluation and the success rates computed from them (``metrics.json``).

Records: ``OUT/records.jsonl``, a header line (settings, weights, manifest, shard) and then one line
per image, appended, flushed and fsync'd as each image finishes, so an interruption loses at most the
image in flight. Metrics are computed from the records alone: a resumed run, or shards merged, give
what one uninterrupted run gives (timings aside).

The paper (Menon et al. 2020, section 6, table 3) gives success rates per FairFace race and
gender from 100 images x 5 runs per group, without intervals. With samples that small the
interval matters more than the point estimate, so every rate here carries the Wilson score
95% interval (Wilson 1927), which stays inside [0, 1] and behaves at rates of 0 and 1, where
the normal approximation collapses to a zero-width interval.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .cards import METRICS_SCHEMA, parse_metrics

try:
    import fcntl  # POSIX: one writer per output folder
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["METRICS_FILE", "RECORDS_FILE", "Z95", "RecordLog", "RecordsError", "Shard", "compute_metrics",
           "group_rates", "merge", "metrics_from_records", "rate_entry", "read_records", "wilson_interval",
           "write_metrics"]

logger = logging.getLogger(__name__)

Z95 = 1.959964  # two-sided 95% quantile of the standard normal
DIGITS = 6  # rates and bounds are written rounded to this many decimals
RECORDS_FILE, METRICS_FILE = "records.jsonl", "metrics.json"
RECORDS_SCHEMA = "pulse-evaluation-records/1"
# Header fields that make two record files measurements of the same thing (resume also needs the shard).
SAME_MEASUREMENT = ("settings", "backbone", "revision", "weights.sha256", "weights.gaussian_fit", "manifest.sha256",
                    "manifest.image_column")


class RecordsError(ValueError):
    """Records that cannot be continued, merged or summarised; the message says why and what to do."""


def wilson_interval(successes: int, runs: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval (low, high) of the success probability, fractions in [0, 1]."""
    if runs < 1 or not 0 <= successes <= runs:
        raise ValueError(f"need 0 <= successes <= runs and runs >= 1, got {successes}/{runs}")
    p = successes / runs
    z2 = z * z
    denominator = 1.0 + z2 / runs
    centre = (p + z2 / (2 * runs)) / denominator
    half = z / denominator * math.sqrt(p * (1.0 - p) / runs + z2 / (4 * runs * runs))
    return max(0.0, centre - half), min(1.0, centre + half)


def rate_entry(successes: int, runs: int) -> dict:
    """``{"successes", "runs", "rate", "ci95": [low, high]}`` as ``pulse-metrics/1`` writes a rate."""
    low, high = wilson_interval(successes, runs)
    return {"successes": successes, "runs": runs, "rate": round(successes / runs, DIGITS),
            "ci95": [round(low, DIGITS), round(high, DIGITS)]}


def group_rates(outcomes: Iterable[tuple[Mapping[str, str], int, int]],
                attributes: Iterable[str]) -> dict[str, dict[str, dict]]:
    """Rates per attribute value: ``{attribute: {value: rate_entry}}``, values sorted.

    ``outcomes`` holds one ``(labels, successes, runs)`` per image; an image whose label for an
    attribute is missing or empty counts in no subgroup of that attribute."""
    outcomes = list(outcomes)
    groups: dict[str, dict[str, dict]] = {}
    for attribute in attributes:
        counts: dict[str, list[int]] = {}
        for labels, successes, runs in outcomes:
            value = (labels.get(attribute) or "").strip()
            if value and runs:
                tally = counts.setdefault(value, [0, 0])
                tally[0] += successes
                tally[1] += runs
        if counts:  # an attribute nobody is labelled with has no subgroup to report
            groups[attribute] = {value: rate_entry(*counts[value]) for value in sorted(counts)}
    return groups


def compute_metrics(header: Mapping[str, Any], records: Iterable[Mapping[str, Any]]) -> dict:
    """The ``pulse-metrics/1`` object (what ``cards.parse_metrics`` reads) of an evaluation's records.

    ``header`` and ``records`` are those of ``records.jsonl``. Images that could not be prepared
    count neither as successes nor as failures: they are listed under ``errors``. The date is the
    day the last image finished, so metrics recomputed later from the same records are the same."""
    records = sorted(records, key=lambda r: r["index"])
    settings = header["settings"]
    evaluated = [r for r in records if r["error"] is None]
    errors = [{"index": r["index"], "path": r["path"], "error": r["error"]} for r in records if r["error"] is not None]
    if not evaluated:
        first = f" (first: {errors[0]['error']})" if errors else ""
        raise RecordsError(f"no image could be evaluated: {len(errors)} of {len(errors)} failed to prepare{first}")
    for record in evaluated:
        if len(record["runs"]) != settings["runs_per_image"]:
            raise RecordsError(f"image {record['index']} ({record['path']}) has {len(record['runs'])} runs, "
                               f"not runs_per_image = {settings['runs_per_image']}")
    outcomes = [(r["attributes"], sum(bool(run["success"]) for run in r["runs"]), len(r["runs"])) for r in evaluated]
    successes, runs = sum(o[1] for o in outcomes), sum(o[2] for o in outcomes)
    seconds = round(sum(r["seconds"] for r in records), 3)
    metrics = {
        "schema": METRICS_SCHEMA,
        "date": max(r["finished"] for r in records)[:10],
        "backbone": header["backbone"],
        "revision": header["revision"],
        "weights": dict(header["weights"]),
        "settings": dict(settings),
        "manifest": header["manifest"]["name"],
        "images": len(evaluated),
        "runs": runs,
        "overall": rate_entry(successes, runs),
        "groups": group_rates(outcomes, header["manifest"]["attributes"]),
        "images_not_evaluated": len(errors),
        "errors": errors,
        "timings": {"seconds_total": seconds, "seconds_per_run": round(seconds / runs, 4),
                    "device": ", ".join(sorted({r["device"] for r in records}))},
    }
    if header["shard"] != "1/1":
        metrics["shard"] = header["shard"]  # a part of the manifest only: merge the shards for the whole
    parse_metrics(metrics)  # what is written always loads in the model card
    return metrics


@dataclass(frozen=True)
class Shard:
    """Part ``index`` of ``count`` (1-based) of a manifest: the rows whose index % count == index - 1."""

    index: int = 1
    count: int = 1

    def __post_init__(self) -> None:
        if not (isinstance(self.index, int) and isinstance(self.count, int) and 1 <= self.index <= self.count):
            raise ValueError(f"a shard is i/n with 1 <= i <= n, got {self.index}/{self.count}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        index, slash, count = text.partition("/")
        try:
            return cls(int(index), int(count)) if slash else cls(0, 0)
        except ValueError:
            raise ValueError(f"a shard is i/n with 1 <= i <= n, e.g. 2/4; got {text!r}") from None

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def selects(self, row_index: int) -> bool:
        return row_index % self.count == self.index - 1


def _flat(obj: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; JSON values, so that tuples and lists compare equal."""
    if isinstance(obj, dict) and obj:
        return {k: v for key, value in obj.items()
                for k, v in _flat(value, f"{prefix}.{key}" if prefix else key).items()}
    return {prefix: json.loads(json.dumps(obj))}


def _differences(recorded: Mapping, current: Mapping, fields: Sequence[str]) -> list[str]:
    """Phrases naming each field in ``fields`` (or inside it) whose value differs."""
    old, new = _flat(recorded), _flat(current)
    keys = sorted(k for k in set(old) | set(new) if any(k == f or k.startswith(f + ".") for f in fields))
    return [f"{k} is {old.get(k)!r} there, {new.get(k)!r} here" for k in keys if old.get(k) != new.get(k)]


def _check_record(item: Any, where: str) -> dict:
    kinds = {"index": int, "path": str, "attributes": dict, "runs": list, "seconds": (int, float),
             "device": str, "finished": str, "error": (str, type(None))}
    if not isinstance(item, dict) or any(not isinstance(item.get(k), t) for k, t in kinds.items()) or any(
            not isinstance(run, dict) or not isinstance(run.get("success"), bool) for run in item["runs"]):
        raise RecordsError(f"{where}: not an image record of the evaluate command; the file is damaged")
    return item


def read_records(path: str | Path) -> tuple[dict | None, dict[int, dict], int]:
    """The header and the image records (by manifest index) of a ``records.jsonl``, and the byte
    length of its complete lines: a last line cut off by an interruption is left out."""
    path = Path(path)
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    header, records = None, {}
    for number, line in enumerate(data[:end].split(b"\n")[:-1], start=1):
        where = f"{path}, line {number}"
        try:
            item = json.loads(line)
        except ValueError:
            raise RecordsError(f"{where}: not JSON; the file is damaged (an interruption only cuts off "
                               "the last line)") from None
        if number == 1:
            if not isinstance(item, dict) or item.get("schema") != RECORDS_SCHEMA:
                raise RecordsError(f"{path}: not a records file of the evaluate command ({RECORDS_SCHEMA})")
            header = item
            continue
        record = _check_record(item, where)
        if record["index"] in records:
            raise RecordsError(f"{where}: image {record['index']} is recorded twice; the file is damaged")
        records[record["index"]] = record
    return header, records, end


def _write_line(handle: IO[bytes], item: Mapping) -> None:
    handle.write((json.dumps(item, separators=(",", ":"), allow_nan=False) + "\n").encode())
    handle.flush()
    os.fsync(handle.fileno())


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_metrics(out_dir: str | Path, metrics: Mapping) -> Path:
    path = Path(out_dir) / METRICS_FILE
    _write_atomic(path, json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    return path


class RecordLog:
    """``OUT/records.jsonl`` open for appending, locked against a second writer."""

    def __init__(self, path: Path, header: dict, records: dict[int, dict], handle: IO[bytes]) -> None:
        self.path, self.header, self.records, self._handle = path, header, records, handle

    @classmethod
    def open(cls, out_dir: Path, header: Mapping) -> RecordLog:
        """Start the file with ``header``, or continue it when its header records the same measurement."""
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / RECORDS_FILE
        handle = path.open("a+b")
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise RecordsError(f"another evaluate is writing to {out_dir}; wait for it or "
                                       "choose another --out") from None
            recorded, records, end = read_records(path)
            if end < handle.seek(0, os.SEEK_END):
                logger.warning("%s: dropping its cut-off last line (the image in flight when it stopped)", path)
                handle.truncate(end)
            header = {**header, "schema": RECORDS_SCHEMA}
            if recorded is None:
                _write_line(handle, header)
                return cls(path, header, {}, handle)
            changed = _differences(recorded, header, SAME_MEASUREMENT + ("shard",))
            if changed:
                raise RecordsError(f"{out_dir} holds an evaluation with other settings, so it cannot be continued: "
                                   + "; ".join(changed) + ". Rerun with the recorded settings to continue it, or "
                                   "choose another --out to start a new evaluation")
            return cls(path, recorded, records, handle)
        except BaseException:
            handle.close()
            raise

    def append(self, record: dict) -> None:
        """Write one image's record to disk (flushed and fsync'd) before the next image starts."""
        _write_line(self._handle, record)
        self.records[record["index"]] = record

    def close(self) -> None:
        self._handle.close()  # closing releases the lock

    def __enter__(self) -> RecordLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _covered(header: Mapping, records: Mapping[int, dict]) -> list[int]:
    """Indices of the header's shard of the manifest that have no record yet."""
    shard = Shard.parse(header["shard"])
    return [i for i in range(header["manifest"]["rows"]) if shard.selects(i) and i not in records]


def metrics_from_records(out_dir: str | Path) -> dict:
    """Recompute the metrics of a finished evaluation (or merge) from ``OUT/records.jsonl``."""
    path = Path(out_dir) / RECORDS_FILE
    header, records, _ = read_records(path)
    if header is None:
        raise RecordsError(f"{path}: empty; the evaluation has not started")
    missing = _covered(header, records)
    if missing:
        raise RecordsError(f"{path}: {len(missing)} image(s) have no record yet; rerun evaluate with the same "
                           "arguments to finish")
    return compute_metrics(header, records.values())


def merge(sources: Sequence[str | Path], out_dir: str | Path) -> dict:
    """Combine the records of the shard folders ``sources`` into ``OUT/records.jsonl`` and return the
    metrics written to ``OUT/metrics.json``: those of one run over the whole manifest, except timings.

    Refuses (``RecordsError``) folders that measured different things (settings, weights, manifest),
    an image recorded twice, and images that no folder records."""
    out_dir = Path(out_dir)
    if (out_dir / RECORDS_FILE).exists():
        raise RecordsError(f"{out_dir} already holds {RECORDS_FILE}; merge into a new folder")
    loaded = []
    for source in map(Path, sources):
        path = source / RECORDS_FILE
        if not path.is_file():
            raise RecordsError(f"{source}: no {RECORDS_FILE}; give output folders of the evaluate command")
        header, records, _ = read_records(path)
        if header is None:
            raise RecordsError(f"{path}: empty; that evaluation has not started")
        loaded.append((source, header, records))
    first_dir, first, _ = loaded[0]
    for source, header, _ in loaded[1:]:
        changed = _differences(first, header, SAME_MEASUREMENT)
        if changed:
            raise RecordsError(f"{first_dir} and {source} measured different things: " + "; ".join(changed))
    merged: dict[int, dict] = {}
    owner: dict[int, Path] = {}
    for source, _, records in loaded:
        for index, record in records.items():
            if index in merged:
                raise RecordsError(f"image {index} ({record['path']}) is recorded in both {owner[index]} and "
                                   f"{source}; give each shard once")
            merged[index], owner[index] = record, source
    header = {**first, "shard": "1/1", "merged_from": [{"folder": str(s), "shard": h["shard"]} for s, h, _ in loaded]}
    missing = _covered(header, merged)
    if missing:
        unfinished = [f"{s} (shard {h['shard']})" for s, h, r in loaded if _covered(h, r)]
        raise RecordsError(
            f"{len(missing)} of the {header['manifest']['rows']} images of {header['manifest']['name']} have no "
            f"record (rows {', '.join(map(str, missing[:5]))}{', ...' if len(missing) > 5 else ''}); "
            + (f"unfinished: {', '.join(unfinished)}; rerun evaluate with the same arguments to finish, and "
               if unfinished else "") + "give the folders of every shard")
    metrics = compute_metrics(header, merged.values())
    lines = [json.dumps(item, separators=(",", ":"), allow_nan=False) for item in
             [header, *(merged[i] for i in sorted(merged))]]
    _write_atomic(out_dir / RECORDS_FILE, "\n".join(lines) + "\n")
    write_metrics(out_dir, metrics)
    return metrics
