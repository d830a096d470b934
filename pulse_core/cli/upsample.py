"""``upsample``: run PULSE on low-resolution faces (or photos with ``--align``)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

from ..imaging import ImageDecodeError, decode_image
from ..results import SearchResult
from ..search import InputError, search
from ..outputs import ResultsLog, input_entry, write_result_images
from .common import (EXIT_BAD_INPUT, EXIT_FAILED_EPS, EXIT_OK, CliError, add_search_arguments,
                     add_weights_arguments, load_from_args, runtime_from_args, search_config_from_args)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "upsample", help="find high-resolution faces that downscale to each input",
        description="Writes OUT/<stem>_<k>.png and OUT/<stem>_<k>_downscaled.png for each sample k that found an "
                    "image within eps, and OUT/results.json. Exit status 0 when every sample succeeded, 3 when some "
                    "missed eps, 2 for bad arguments or unreadable input, 4 when the weights cannot be loaded.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="low-resolution image files or folders of them")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--keep-failed", action="store_true",
                        help="also write the best attempt of samples that missed eps (named *_FAILED_best-attempt)")
    parser.add_argument("--align", type=int, choices=(16, 32, 64), default=None, metavar="SIZE",
                        help="treat inputs as photos: find the face, align it like FFHQ, downscale to SIZE px")
    parser.add_argument("--face", type=int, default=1, help="with --align: which face, largest first (1)")
    parser.add_argument("--degrade", default=None, metavar="SPEC",
                        help="degrade the input first (paper section 5): gaussian:25, gaussian:50, "
                             "motion_blur:LENGTH[:ANGLE], salt_pepper:0.05")
    add_weights_arguments(parser)
    add_search_arguments(parser)
    parser.set_defaults(func=run)


def collect_inputs(paths: list[str]) -> tuple[list[Path], list[str]]:
    """Files to process (folders expanded, sorted) and messages for paths that do not exist."""
    files, missing = [], []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                missing.append(f"{path}: folder holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            missing.append(f"{path}: no such file or folder")
    return files, missing


def _prepare(path: Path, args: argparse.Namespace, degradation, rng: torch.Generator) -> tuple[torch.Tensor, dict]:
    """Decode (and align, degrade) one input; raises ImageDecodeError / ValueError with a sentence."""
    image = decode_image(path, name=str(path))
    info: dict = {"source_size": list(image.shape[1:])}
    aligned = None
    if args.align:
        from ..alignment import prepare_input  # imported lazily: the detector loads models

        prepared = prepare_input(image, size=args.align, face_index=args.face - 1, name=str(path))
        image, aligned = prepared.lr_image, prepared.aligned
        info["method"] = prepared.method
    if degradation is not None:
        from ..degradations import degrade

        if aligned is not None:
            image = degrade(aligned, degradation, generator=rng, factor=aligned.shape[-1] // args.align)
        else:
            image = degrade(image, degradation, generator=rng)
        info["degradation"] = dataclasses.asdict(degradation)
    return image, info


def _progress(total: int, desc: str):
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, file=sys.stderr, unit="step", leave=True, dynamic_ncols=True)

    def callback(info) -> None:
        bar.set_postfix_str(f"best {min(info.best):.2e} / eps {info.eps:.0e}")
        bar.update(1)
        if info.step + 1 == info.steps:
            bar.close()

    return bar, callback


def run(args: argparse.Namespace) -> int:
    config = search_config_from_args(args)
    degradation = None
    if args.degrade:
        from ..degradations import parse_degradation

        try:
            degradation = parse_degradation(args.degrade)
        except ValueError as error:
            raise CliError(f"--degrade: {error}") from None
    files, missing = collect_inputs(args.inputs)
    for message in missing:
        print(f"error: {message}", file=sys.stderr)
    if not files:
        raise CliError("no input images to process")
    generator = load_from_args(args)
    runtime = runtime_from_args(args, generator)
    log = ResultsLog(args.out / "results.json", meta={
        "config": dataclasses.asdict(config), "backbone": generator.backbone, "revision": generator.revision,
        "weights": generator.source, "device": str(generator.fit_mean.device), "align": args.align,
        "degrade": args.degrade, "errors": missing})
    unreadable = bool(missing)
    failed_eps = False
    for path in files:
        rng = torch.Generator().manual_seed(config.seed)
        try:
            lr_image, info = _prepare(path, args, degradation, rng)
            bar, callback = _progress(config.steps, path.name)
            try:
                result: SearchResult = search(generator, lr_image, config, callback=callback, runtime=runtime)
            finally:
                bar.close()
        except (ImageDecodeError, InputError, ValueError) as error:
            # One bad file does not stop the others; it is named and recorded.
            print(f"error: {path}: {error}" if str(path) not in str(error) else f"error: {error}", file=sys.stderr)
            log.add(input_entry(str(path), None, error=str(error)))
            unreadable = True
            continue
        samples = write_result_images(result, args.out, path.stem, keep_failed=args.keep_failed)
        log.add(input_entry(str(path), result, samples, preparation=info))
        for sample in result.samples:
            if not sample.success:
                failed_eps = True
                print(f"{path.name}: {sample.message}", file=sys.stderr)
        print(f"{path.name}: {result.summary.splitlines()[0]}", file=sys.stderr)
    if unreadable:
        return EXIT_BAD_INPUT
    return EXIT_FAILED_EPS if failed_eps else EXIT_OK
