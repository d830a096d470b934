"""``evaluate`` and ``merge``: PULSE's success rate per subgroup over a manifest of faces
(Menon et al. 2020, section 6 and table 3: FairFace, x64 from 1024 px, 5 runs per image)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..degradations import parse_degradation
from ..evaluate import (
    METRICS_FILE,
    PREPARE_MODES,
    Evaluation,
    EvaluationSettings,
    ManifestError,
    RecordsError,
    Shard,
    merge,
    read_manifest,
)
from .common import (
    EXIT_OK,
    CliError,
    add_search_arguments,
    add_weights_arguments,
    load_from_args,
    runtime_from_args,
    search_config_from_args,
)

PAPER_INPUT_SIZE, PAPER_RUNS_PER_IMAGE = 16, 5


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="success rates per subgroup over a CSV manifest of faces (the paper's bias analysis)",
        description="Searches every image of MANIFEST --runs-per-image times and writes OUT/records.jsonl (one line "
                    "per image, as it finishes) and OUT/metrics.json (success rates overall and per value of every "
                    "attribute column, or of those --attributes names, with Wilson 95% intervals), which the model "
                    "card renders. Rerunning the same "
                    "command continues an interrupted evaluation. Exit status 0 when every image is done (runs that "
                    "miss eps are the measurement, not an error), 2 for bad arguments or manifest, 4 when the "
                    "weights cannot be loaded.")
    parser.add_argument("manifest", type=Path, metavar="MANIFEST",
                        help="CSV with a header: a column of image paths (relative to the CSV's folder) and "
                             "attribute columns such as race, gender, age; empty labels count in no subgroup")
    parser.add_argument("--out", required=True, type=Path, help="output folder (records.jsonl, metrics.json)")
    parser.add_argument("--image-column", default=None, metavar="COLUMN",
                        help="column of image paths (default: 'file', else 'path')")
    parser.add_argument("--attributes", nargs="+", default=None, metavar="COLUMN",
                        help="the attribute columns that form groups, e.g. --attributes race gender to leave out "
                             "FairFace's service_test column (default: every column but the image column)")
    parser.add_argument("--input-size", type=int, default=PAPER_INPUT_SIZE, metavar="PX",
                        help="side of the low-resolution inputs (%(default)s: x64 from 1024 px, the paper's)")
    parser.add_argument("--runs-per-image", type=int, dest="samples", metavar="N",
                        help=f"independent searches per image, seeds SEED..SEED+N-1 ({PAPER_RUNS_PER_IMAGE}, the "
                             "paper's; --samples is the same option)")
    parser.add_argument("--prepare", choices=PREPARE_MODES, default="align",
                        help="align: find the face in each photo, align it like FFHQ, downscale; resize: images "
                             "already are aligned square faces, centre-cropped and downscaled by a power of two; "
                             "as-is: images already are PX x PX inputs (%(default)s)")
    parser.add_argument("--degrade", default=None, metavar="SPEC",
                        help="degrade each input too (paper section 5): gaussian:25, motion_blur:100, salt_pepper:0.05")
    parser.add_argument("--shard", default="1/1", metavar="I/N",
                        help="evaluate only the rows whose 0-based index %% N is I-1; combine the N output "
                             "folders with `merge` (%(default)s)")
    add_weights_arguments(parser)
    add_search_arguments(parser)
    parser.set_defaults(func=run, samples=PAPER_RUNS_PER_IMAGE)

    merger = subparsers.add_parser(
        "merge", help="combine the output folders of `evaluate --shard` into one metrics.json",
        description="Checks that the folders used the same settings, weights and manifest, and that together they "
                    "record every image exactly once; writes OUT/records.jsonl and OUT/metrics.json, the same "
                    "metrics as one run over the whole manifest (timings aside).")
    merger.add_argument("folders", nargs="+", type=Path, metavar="DIR", help="output folders of evaluate --shard")
    merger.add_argument("--out", required=True, type=Path, help="new output folder")
    merger.set_defaults(func=run_merge)


def _percent(rate: dict) -> str:
    low, high = rate["ci95"]
    return (f"{100 * rate['successes'] / rate['runs']:.1f}% ({rate['successes']}/{rate['runs']} runs; "
            f"95% CI {100 * low:.1f}%-{100 * high:.1f}%)")


def print_summary(metrics: dict, path: Path) -> None:
    eps = metrics["settings"]["search"]["eps"]
    print(f"wrote {path}: {metrics['images']} images, within eps = {eps:g}: {_percent(metrics['overall'])}",
          file=sys.stderr)
    for attribute, groups in metrics["groups"].items():
        print(f"  {attribute}: " + "; ".join(f"{name} {_percent(rate)}" for name, rate in groups.items()),
              file=sys.stderr)
    if metrics["errors"]:
        print(f"{len(metrics['errors'])} image(s) could not be evaluated and count in no rate (listed under "
              f"'errors' in {path.name}); first: {metrics['errors'][0]['error']}", file=sys.stderr)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def _progress():
    start, first_done = time.perf_counter(), None

    def on_image(record: dict, done: int, total: int) -> None:
        nonlocal first_done
        first_done = done - 1 if first_done is None else first_done
        width = len(str(total))
        head = f"[{done:>{width}}/{total}] {record['path']}"
        if record["error"] is not None:
            print(f"{head}: not evaluated: {record['error'].removeprefix(record['path'] + ': ')}", file=sys.stderr)
            return
        found = sum(run["success"] for run in record["runs"])
        losses = [run["loss"] for run in record["runs"] if run["loss"] is not None]
        best = f", best loss {min(losses):.2e}" if losses else ""
        left = (time.perf_counter() - start) / (done - first_done) * (total - done)
        eta = f"; about {_duration(left)} left" if total > done else ""
        print(f"{head}: {found} of {len(record['runs'])} runs within eps{best} ({record['seconds']:.1f} s{eta})",
              file=sys.stderr)

    return on_image


def run(args: argparse.Namespace) -> int:
    try:
        shard = Shard.parse(args.shard)
    except ValueError as error:
        raise CliError(f"--shard: {error}") from None
    if args.degrade is not None:
        try:
            parse_degradation(args.degrade)
        except ValueError as error:
            raise CliError(f"--degrade: {error}") from None
    config = search_config_from_args(args)
    try:
        settings = EvaluationSettings(search=config, input_size=args.input_size, prepare=args.prepare,
                                      degradation=args.degrade, attributes=args.attributes)
    except ValueError as error:
        raise CliError(f"invalid evaluation setting: {error}") from None
    try:
        manifest = read_manifest(args.manifest, image_column=args.image_column)
        manifest.select_attributes(settings.attributes)  # before the weights load: Evaluation selects them
    except ManifestError as error:
        raise CliError(str(error)) from None
    generator = load_from_args(args)
    try:
        evaluation = Evaluation(generator, manifest, settings, args.out, shard=shard,
                                runtime=runtime_from_args(args, generator))
    except ValueError as error:  # RecordsError: other settings recorded in OUT; an unreachable input size
        raise CliError(str(error)) from None
    with evaluation:
        part = f" (shard {shard})" if shard.count > 1 else ""
        print(f"evaluate: {len(evaluation.rows)} images of {manifest.file.name}{part}, {settings.runs_per_image} runs "
              f"each; {len(evaluation.rows) - len(evaluation.pending)} already recorded in {args.out}, "
              f"{len(evaluation.pending)} to go", file=sys.stderr)
        try:
            metrics = evaluation.run(on_image=_progress())
        except RecordsError as error:  # no image could be evaluated at all
            raise CliError(f"{error}; the records are in {evaluation.log.path}") from None
    print_summary(metrics, args.out / METRICS_FILE)
    if shard.count > 1:
        print(f"this is shard {shard} only; when every shard is done, combine them with: python -m pulse_core "
              "merge DIR1 DIR2 ... --out DIR", file=sys.stderr)
    return EXIT_OK


def run_merge(args: argparse.Namespace) -> int:
    try:
        metrics = merge(args.folders, args.out)
    except (RecordsError, OSError) as error:
        raise CliError(str(error)) from None
    print_summary(metrics, args.out / METRICS_FILE)
    return EXIT_OK
