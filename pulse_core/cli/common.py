"""Arguments shared by the CLI commands: the weights to load and the search settings."""

from __future__ import annotations

import argparse
import logging
import sys

import torch

from ..config import NOISE_MODES, OPTIMIZERS, SCHEDULES, LossWeights, SearchConfig
from ..generators.base import StyleGenerator
from ..weights import BACKBONES, WeightsFormatError, WeightsUnavailableError, load_generator

__all__ = ["CliError", "add_search_arguments", "add_weights_arguments", "load_from_args", "pick_device",
           "runtime_from_args", "search_config_from_args"]

EXIT_OK, EXIT_FAILED_EPS, EXIT_BAD_INPUT, EXIT_WEIGHTS = 0, 3, 2, 4


class CliError(Exception):
    """A user-facing error: printed as one message, exits with ``code``."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code


def add_weights_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("weights")
    group.add_argument("--backbone", choices=sorted(BACKBONES), default=None,
                       help="generator family (default: stylegan2-ffhq, or the one the weights hold)")
    group.add_argument("--weights", default=None, metavar="SOURCE",
                       help="local file or folder, or Hub repo id (owner/name[:filename]); default: the backbone's")
    group.add_argument("--revision", default=None, help="Hub branch, tag or commit of --weights")
    group.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1 ...")
    group.add_argument("--plain", action="store_true",
                       help="force the plain float32 path (default: the fastest the device supports; "
                            "verdicts are float32 either way)")
    group.add_argument("--compile", action="store_true",
                       help="torch.compile the generator for the search: about a minute to compile; then a "
                            "fifth to a third less time per step on CPUs without AMX, but slower than the default "
                            "on CPUs with AMX (measured: see benchmarks/README.md)")


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    d = SearchConfig()
    group = parser.add_argument_group("search (defaults are the paper's)")
    group.add_argument("--steps", type=int, default=d.steps, help="optimiser steps (%(default)s)")
    group.add_argument("--lr", type=float, default=d.learning_rate, help="peak learning rate (%(default)s)")
    group.add_argument("--eps", type=float, default=d.eps,
                       help="success threshold on the downscaling MSE, images in [0, 1] (%(default)s)")
    group.add_argument("--seed", type=int, default=d.seed, help="sample k uses seed + k (%(default)s)")
    group.add_argument("--samples", type=int, default=d.samples, help="independent starts per input (%(default)s)")
    group.add_argument("--noise", choices=NOISE_MODES, default=d.noise_mode, help="noise inputs (%(default)s)")
    group.add_argument("--trainable-noise-layers", type=int, default=d.trainable_noise_layers,
                       help="first k noise maps optimised in trainable mode (%(default)s)")
    group.add_argument("--zero-noise-layers", type=int, nargs="*", default=None, metavar="I",
                       help="noise maps held at zero (default: the last one; give none for no map)")
    group.add_argument("--tile-latent", action="store_true", help="one latent row for all layers")
    group.add_argument("--l2", type=float, default=d.loss.l2, help="weight of the L2 downscaling loss (%(default)s)")
    group.add_argument("--l1", type=float, default=d.loss.l1, help="weight of the L1 downscaling loss (%(default)s)")
    group.add_argument("--geocross", type=float, default=d.loss.geocross, help="weight of GEOCROSS (%(default)s)")
    group.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer, help="(%(default)s)")
    group.add_argument("--schedule", choices=SCHEDULES, default=d.schedule, help="(%(default)s)")


def search_config_from_args(args: argparse.Namespace) -> SearchConfig:
    try:
        zero = None if args.zero_noise_layers is None else tuple(args.zero_noise_layers)
        return SearchConfig(
            steps=args.steps, learning_rate=args.lr, eps=args.eps, samples=args.samples, seed=args.seed,
            tile_latent=args.tile_latent, noise_mode=args.noise, trainable_noise_layers=args.trainable_noise_layers,
            zero_noise_layers=zero, loss=LossWeights(l2=args.l2, l1=args.l1, geocross=args.geocross),
            optimizer=args.optimizer, schedule=args.schedule)
    except ValueError as error:
        raise CliError(f"invalid search setting: {error}") from None


def pick_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else the CPU; an unavailable CUDA falls back with a warning."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise CliError(f"unknown device {name!r}; use auto, cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        logging.getLogger(__name__).warning("CUDA is not available here; running on the CPU")
        return torch.device("cpu")
    return device


def load_from_args(args: argparse.Namespace) -> StyleGenerator:
    """Load the generator named by the weights arguments, turning errors into ``CliError``.
    Also applies the process-wide runtime settings (threads, allocator) once."""
    from ..runtime import configure_process, prepare_generator

    configure_process(tune_allocator=not getattr(args, "plain", False))
    device = pick_device(args.device)
    try:
        generator = load_generator(args.weights, backbone=args.backbone, revision=args.revision, device=device)
    except (WeightsUnavailableError, WeightsFormatError, FileNotFoundError) as error:
        raise CliError(f"cannot load the generator: {error}", EXIT_WEIGHTS) from None
    return prepare_generator(generator, runtime_from_args(args, generator))


def print_error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def runtime_from_args(args: argparse.Namespace, generator: StyleGenerator):
    """The runtime for the search iterations: the device's fastest, or plain with --plain."""
    from ..runtime import choose_runtime

    return choose_runtime(generator.fit_mean.device, plain=bool(getattr(args, "plain", False)),
                          compile=bool(getattr(args, "compile", False)))
