"""Reading checkpoint files safely: safetensors, or ``torch.load(weights_only=True)``.

Nothing here unpickles code. A ``.pt`` that needs code to load (a pickled module, an
NVIDIA ``.pkl``) is refused with a message naming the file.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from .formats import (
    ConvertedWeights,
    WeightsFormatError,
    convert_lernapparat,
    convert_pulse,
    convert_rosinality,
    detect_format,
    parse_own_config,
)

__all__ = ["read_pt", "read_safetensors", "convert_files"]


def read_pt(path: Path) -> object:
    """``torch.load`` with ``weights_only=True`` and errors that name ``path``."""
    if path.suffix == ".pkl":
        raise WeightsFormatError(
            f"{path.name} is a Python pickle (.pkl), which needs code to load; this project never unpickles "
            "untrusted code. Use a state-dict checkpoint (.pt, e.g. rosinality's stylegan2-ffhq-config-f.pt) "
            "or a converted model.safetensors."
        )
    if path.stat().st_size == 0:
        raise WeightsFormatError(f"{path} is empty (0 bytes): the download was interrupted; delete it and retry.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise WeightsFormatError(
            f"{path.name} needs code to unpickle (it stores objects, not only tensors: {str(error).splitlines()[0][:160]}). "
            "This project loads weights with weights_only=True and refuses to run code from a file. "
            "Export a plain state dict, or convert it with a trusted copy of its own code."
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as error:
        raise WeightsFormatError(
            f"{path} is truncated or corrupted ({type(error).__name__}: {str(error).splitlines()[0][:160]}). "
            "Delete it (for a Hub download, from the cache) and download it again."
        ) from None


def read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file, with errors that name ``path``."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise WeightsFormatError(
            f"{path} is truncated or corrupted, or not a safetensors file ({error}). Delete it and download it again."
        ) from None
    return tensors, metadata


def _convert_own(path: Path) -> ConvertedWeights:
    tensors, metadata = read_safetensors(path)
    config_text = metadata.get("pulse_config")
    if config_text is None and (path.parent / "config.json").is_file():
        config_text = (path.parent / "config.json").read_text()
    if config_text is None:
        raise WeightsFormatError(f"{path} carries no pulse-space config (metadata 'pulse_config' or config.json beside it)")
    architecture, config = parse_own_config(config_text)
    return ConvertedWeights(architecture, config, tensors, "pulse-space")


def convert_files(main: Path, companion: Path | None = None) -> ConvertedWeights:
    """Convert a checkpoint file (and, for PULSE's pair, its companion) to the own layout.

    ``main`` is a ``.safetensors`` (own format) or a ``.pt`` in a supported layout; for
    PULSE's ``synthesis.pt``/``mapping.pt`` pair, ``companion`` is the other half.
    """
    if main.suffix == ".safetensors":
        return _convert_own(main)
    obj = read_pt(main)
    kind = detect_format(obj)
    if kind == "rosinality":
        return convert_rosinality(obj)  # type: ignore[arg-type]
    if kind == "rosinality-state-dict":
        return convert_rosinality({"g_ema": obj})
    if kind == "lernapparat":
        return convert_lernapparat(obj)  # type: ignore[arg-type]
    if companion is None:
        other = "mapping.pt" if kind == "pulse-synthesis" else "synthesis.pt"
        raise WeightsFormatError(f"{main.name} is half of PULSE's StyleGAN pair; {other} is needed beside it")
    other_obj = read_pt(companion)
    other_kind = detect_format(other_obj)
    pair = {kind: obj, other_kind: other_obj}
    if set(pair) != {"pulse-synthesis", "pulse-mapping"}:
        raise WeightsFormatError(f"{main.name} and {companion.name} are not PULSE's synthesis.pt + mapping.pt pair")
    return convert_pulse(pair["pulse-synthesis"], pair["pulse-mapping"])  # type: ignore[arg-type]
