"""``card``: render the ethics-focused model card for a backbone, with measured metrics."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cards import CardContext, load_metrics, render_model_card, write_model_card
from ..weights import BACKBONES, get_backbone
from .common import EXIT_OK, CliError, load_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("card", help="render the model card (Markdown, or HTML for .html)")
    parser.add_argument("--backbone", choices=sorted(BACKBONES), default=None, help="default: stylegan2-ffhq")
    parser.add_argument("--metrics", type=Path, default=None, help="metrics.json written by `evaluate`")
    parser.add_argument("--weights", default=None,
                        help="load these weights to cite their exact source and revision (optional)")
    parser.add_argument("--revision", default=None, help="Hub revision of --weights")
    parser.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help="output file (default: standard output)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    metrics = None
    if args.metrics is not None:
        try:
            metrics = load_metrics(args.metrics)
        except (OSError, ValueError) as error:
            raise CliError(f"--metrics: {error}") from None
    source = revision = None
    backbone_name = args.backbone
    if args.weights:
        model = load_from_args(args)
        source, revision, backbone_name = model.source, model.revision, model.backbone
    backbone_name = backbone_name or (metrics.backbone if metrics else None)
    try:
        context = CardContext(get_backbone(backbone_name), revision=revision or (metrics.revision if metrics else None),
                              source=source, metrics=metrics)
    except (KeyError, ValueError) as error:
        raise CliError(str(error).strip("'\"")) from None
    if args.out is None:
        sys.stdout.write(render_model_card(context))
    else:
        write_model_card(args.out, context)
        print(f"wrote {args.out}", file=sys.stderr)
    return EXIT_OK
