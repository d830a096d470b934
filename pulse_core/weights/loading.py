"""``load_generator``: from a local path, a Hub repo or a backbone's default to a ready
generator with its Gaussian fit, recording exactly which weights ran."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

from ..gaussian_fit import DEFAULT_FIT_SAMPLES, DEFAULT_FIT_SEED, compute_gaussian_fit
from ..generators.base import GaussianFit, StyleGenerator
from . import hub
from .formats import ARCHITECTURE_NAMES, ConvertedWeights, WeightsFormatError, build_generator, own_config_json
from .reading import convert_files, read_safetensors
from .registry import Backbone, backbone_for_architecture, get_backbone

__all__ = ["ResolvedSource", "load_generator", "load_converted", "resolve_source", "save_converted", "fit_cache_dir"]

logger = logging.getLogger(__name__)

# Names tried, in order, in a Hub repo given without a filename.
HUB_CANDIDATES = ("model.safetensors", "stylegan2-ffhq-config-f.pt", "synthesis.pt",
                  "karras2019stylegan-ffhq-1024x1024.for_g_all.pt")
FIT_FILE = "gaussian_fit.safetensors"


@dataclass(frozen=True)
class ResolvedSource:
    """Local files holding a checkpoint, and where they came from."""

    main: Path
    companion: Path | None  # the other half of PULSE's synthesis.pt/mapping.pt pair
    description: str  # "owner/repo:file" or a local path, for results and the card
    revision: str | None  # resolved commit for Hub files, None for local files
    cache_key: str  # identifies the exact weights, for caching the Gaussian fit


def fit_cache_dir() -> Path:
    """Folder for cached Gaussian fits: $PULSE_CACHE, else $HF_HOME/pulse."""
    if os.environ.get("PULSE_CACHE"):
        return Path(os.environ["PULSE_CACHE"])
    return hub.hub_cache_dir().parent / "pulse"


def _sha256(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _resolve_local(path: Path) -> ResolvedSource:
    main: Path | None = None
    companion: Path | None = None
    if path.is_dir():
        if (path / "model.safetensors").is_file():
            main = path / "model.safetensors"
        elif (path / "synthesis.pt").is_file():
            main, companion = path / "synthesis.pt", path / "mapping.pt"
        else:
            checkpoints = sorted(p for p in path.iterdir() if p.suffix in {".pt", ".pth", ".ckpt"})
            if len(checkpoints) != 1:
                raise WeightsFormatError(
                    f"{path} holds no model.safetensors, no synthesis.pt + mapping.pt and "
                    f"{'several' if checkpoints else 'no'} .pt files; name the checkpoint file itself"
                )
            main = checkpoints[0]
    else:
        main = path
        if path.name in {"synthesis.pt", "mapping.pt"}:
            companion = path.with_name("mapping.pt" if path.name == "synthesis.pt" else "synthesis.pt")
    if companion is not None and not companion.is_file():
        raise FileNotFoundError(f"{main} needs {companion.name} beside it (PULSE's StyleGAN pair); {companion} not found")
    files = [main] + ([companion] if companion else [])
    return ResolvedSource(main, companion, str(path), None, "sha256-" + _sha256(files))


def _resolve_hub(text: str, revision: str | None) -> ResolvedSource:
    repo_id, _, filename = text.partition(":")
    names = [filename] if filename else list(HUB_CANDIDATES)
    unreachable: hub.HubUnreachableError | None = None
    reachable = hub.hub_reachable(os.environ.get("HF_ENDPOINT") or None)  # once for all candidate files
    for name in names:
        try:
            fetched = hub.download(repo_id, name, revision, reachable=reachable)
        except (FileNotFoundError, hub.HubUnreachableError) as error:
            if filename:
                raise
            # Offline, the cache may hold another candidate name: keep looking.
            if isinstance(error, hub.HubUnreachableError) and unreachable is None:
                unreachable = error
            continue
        companion = None
        if name.endswith("synthesis.pt"):
            companion = hub.download(repo_id, name[: -len("synthesis.pt")] + "mapping.pt", fetched.commit or revision,
                                     reachable=reachable).path
        key = f"{repo_id}@{fetched.commit or revision or 'main'}:{name}"
        return ResolvedSource(fetched.path, companion, f"{repo_id}:{name}", fetched.commit,
                              "hub-" + hashlib.sha256(key.encode()).hexdigest())
    if unreachable is not None:
        raise unreachable
    raise FileNotFoundError(f"Hub repo {repo_id!r} has none of {', '.join(HUB_CANDIDATES)}; "
                            f"name the file as {repo_id}:FILENAME")


def resolve_source(source: str | os.PathLike, revision: str | None = None) -> ResolvedSource:
    """A local file or folder, or a Hub ``owner/name[:filename]``, to local files."""
    path = Path(source).expanduser()
    if path.exists():
        return _resolve_local(path)
    text = str(source)
    if hub.looks_like_repo_id(text) and not text.startswith((".", "/", "~")):
        return _resolve_hub(text, revision)
    raise FileNotFoundError(f"no such file or folder: {text} (and it is not a Hub repo id like owner/name)")


def load_converted(resolved: ResolvedSource) -> ConvertedWeights:
    return convert_files(resolved.main, resolved.companion)


def _read_fit(path: Path) -> GaussianFit | None:
    if not path.is_file():
        return None
    try:
        tensors, metadata = read_safetensors(path)
        return GaussianFit(tensors["mean"], tensors["std"], int(metadata.get("num_samples", -1)),
                           int(metadata.get("seed", -1)))
    except (WeightsFormatError, KeyError, ValueError):
        logger.warning("ignoring unreadable Gaussian fit cache %s", path)
        return None


def _write_fit(path: Path, fit: GaussianFit) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        save_file({"mean": fit.mean.contiguous(), "std": fit.std.contiguous()}, str(tmp),
                  metadata={"num_samples": str(fit.num_samples), "seed": str(fit.seed)})
        tmp.replace(path)  # atomic: a concurrent reader never sees half a file
    except OSError as error:
        logger.warning("could not cache the Gaussian fit at %s: %s", path, error)


def _ensure_fit(model: StyleGenerator, resolved: ResolvedSource, fit_samples: int) -> None:
    beside = resolved.main.parent / FIT_FILE if resolved.main.suffix == ".safetensors" else None
    cached = fit_cache_dir() / f"{resolved.cache_key}-{fit_samples}-{DEFAULT_FIT_SEED}.safetensors"
    for candidate in (beside, cached):
        fit = _read_fit(candidate) if candidate else None
        if fit is not None and fit.mean.shape == (model.w_dim,):
            model.set_gaussian_fit(fit)
            return
    logger.info("computing the Gaussian fit over %d samples (once per checkpoint)", fit_samples)
    fit = compute_gaussian_fit(model, num_samples=fit_samples, seed=DEFAULT_FIT_SEED)
    model.set_gaussian_fit(fit)
    _write_fit(cached, fit)


def _backbone_for(architecture: str, requested: Backbone | None, description: str) -> Backbone:
    if requested is not None:
        if requested.architecture != architecture:
            raise WeightsFormatError(
                f"{description} holds a {ARCHITECTURE_NAMES[architecture]} checkpoint, but backbone "
                f"{requested.name!r} is {ARCHITECTURE_NAMES[requested.architecture]}; pick the matching backbone"
            )
        return requested
    return backbone_for_architecture(architecture)


def load_generator(
    source: str | os.PathLike | None = None,
    *,
    backbone: str | None = None,
    revision: str | None = None,
    device: str | torch.device = "cpu",
    fit_samples: int = DEFAULT_FIT_SAMPLES,
) -> StyleGenerator:
    """Load a generator, frozen and in eval mode, with its Gaussian fit.

    ``source``: a local file or folder, a Hub repo id (``owner/name`` or
    ``owner/name:filename``), or None for the backbone's default. The returned module's
    ``source``, ``revision`` (resolved commit for Hub files) and ``backbone`` say what ran.
    """
    requested = get_backbone(backbone) if backbone is not None else None
    if source is None:
        entry = requested or get_backbone(None)
        if entry.repo_id is None:
            raise hub.WeightsUnavailableError(f"backbone {entry.name!r} has no public default weights. {entry.notes}")
        source = f"{entry.repo_id}:{entry.filename}"
    resolved = resolve_source(source, revision)
    converted = load_converted(resolved)
    entry = _backbone_for(converted.architecture, requested, resolved.description)
    model = build_generator(converted)
    model.source, model.revision, model.backbone = resolved.description, resolved.revision, entry.name
    _ensure_fit(model, resolved, fit_samples)
    return model.to(device)


def save_converted(converted: ConvertedWeights, out_dir: Path, fit: GaussianFit | None = None,
                   **provenance: object) -> Path:
    """Write ``model.safetensors`` (config in its metadata), ``config.json`` and the fit."""
    out_dir.mkdir(parents=True, exist_ok=True)
    config_text = own_config_json(converted, **provenance)
    save_file({k: v.contiguous() for k, v in converted.state_dict.items()}, str(out_dir / "model.safetensors"),
              metadata={"pulse_config": config_text})
    (out_dir / "config.json").write_text(config_text + "\n")
    if fit is not None:
        _write_fit(out_dir / FIT_FILE, fit)
    return out_dir
