"""``convert``: any supported checkpoint to this project's format (safetensors + config),
optionally pushed to the Hub with the model card as its README."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cards import CardContext, write_model_card
from ..gaussian_fit import DEFAULT_FIT_SAMPLES, compute_gaussian_fit
from ..weights import WeightsFormatError, WeightsUnavailableError, get_backbone
from ..weights.registry import backbone_for_architecture
from ..weights.formats import build_generator
from ..weights.loading import load_converted, resolve_source, save_converted
from .common import EXIT_OK, EXIT_WEIGHTS, CliError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert", help="write model.safetensors + config.json (+ Gaussian fit, model card) from any supported source",
        description="SRC: PULSE's synthesis.pt/mapping.pt (or their folder), lernapparat's for_g_all.pt, "
                    "rosinality's stylegan2 .pt, a converted folder, or a Hub repo id (owner/name[:file]).")
    parser.add_argument("source", metavar="SRC")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--revision", default=None, help="Hub revision of SRC")
    parser.add_argument("--backbone", default=None, help="registry entry the weights belong to (inferred)")
    parser.add_argument("--fit-samples", type=int, default=DEFAULT_FIT_SAMPLES,
                        help="z samples for the Gaussian fit (%(default)s)")
    parser.add_argument("--push-to-hub", default=None, metavar="REPO", help="upload the folder to this Hub repo")
    parser.add_argument("--private", action="store_true", help="create the Hub repo as private")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        resolved = resolve_source(args.source, args.revision)
        converted = load_converted(resolved)
    except (WeightsUnavailableError, WeightsFormatError, FileNotFoundError) as error:
        raise CliError(f"cannot convert {args.source}: {error}", EXIT_WEIGHTS) from None
    entry = get_backbone(args.backbone) if args.backbone else backbone_for_architecture(converted.architecture)
    if entry.architecture != converted.architecture:
        raise CliError(f"{args.source} holds a {converted.architecture} checkpoint, not {entry.name}", EXIT_WEIGHTS)
    model = build_generator(converted)
    fit = compute_gaussian_fit(model, num_samples=args.fit_samples)
    out = save_converted(converted, args.out, fit, backbone=entry.name, converted_source=resolved.description,
                         source_revision=resolved.revision)
    write_model_card(out / "README.md", CardContext(entry, revision=resolved.revision, source=resolved.description))
    print(f"wrote {out}: model.safetensors, config.json, gaussian_fit.safetensors, README.md", file=sys.stderr)
    if args.push_to_hub:
        from huggingface_hub import HfApi

        try:
            api = HfApi()
            api.create_repo(args.push_to_hub, exist_ok=True, private=args.private)
            info = api.upload_folder(repo_id=args.push_to_hub, folder_path=str(out),
                                     commit_message=f"PULSE conversion of {resolved.description}")
        except Exception as error:  # network, auth and permission errors of the Hub client
            raise CliError(f"converted files are in {out}, but the upload to {args.push_to_hub} failed: {error}",
                           EXIT_WEIGHTS) from None
        print(f"pushed to {args.push_to_hub}: {getattr(info, 'commit_url', info)}", file=sys.stderr)
    return EXIT_OK
