"""Upstream checkpoint layouts and their conversion to this project's own layout.

Each upstream format is converted through an explicit key table built from the
configuration inferred from the checkpoint's own keys and shapes, so a 64 px test
model and the 1024 px FFHQ model go through the same code. Every key is accounted
for: mapped, checked against a known constant (blur kernels), or dropped for a stated
reason (stored noise, truncation average). Anything else is named in the error.

Formats:
- ``pulse``: PULSE's ``synthesis.pt`` + ``mapping.pt`` state dicts (StyleGAN v1).
- ``lernapparat``: ``karras2019stylegan-ffhq-1024x1024.for_g_all.pt``, one state dict with
  ``g_mapping.`` / ``g_synthesis.`` prefixes and noise under ``epiN.top_epi.noise``.
- ``rosinality``: ``{"g_ema": state_dict, "latent_avg": ...}`` (StyleGAN2 config-f).
- ``pulse-space``: this project's ``model.safetensors`` (config in its metadata) + ``config.json``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

import torch

from ..generators.base import StyleGenerator
from ..generators.layers import separable_kernel
from ..generators.stylegan1 import StyleGAN, StyleGANConfig
from ..generators.stylegan2 import StyleGAN2, StyleGAN2Config

__all__ = [
    "ConvertedWeights",
    "WeightsFormatError",
    "build_generator",
    "convert_lernapparat",
    "convert_pulse",
    "convert_rosinality",
    "detect_format",
    "own_config_json",
    "parse_own_config",
    "pulse_key_table",
    "rosinality_key_table",
]

OWN_FORMAT = "pulse-space/1"
ARCHITECTURE_NAMES = {"stylegan": "StyleGAN (v1)", "stylegan2": "StyleGAN2"}


class WeightsFormatError(ValueError):
    """A checkpoint that is not in a supported layout, or whose keys or shapes do not fit."""


@dataclass(frozen=True)
class ConvertedWeights:
    """A state dict in this project's layout, with the configuration it implies."""

    architecture: str  # "stylegan" or "stylegan2"
    config: StyleGANConfig | StyleGAN2Config
    state_dict: dict[str, torch.Tensor]
    upstream_format: str  # "pulse", "lernapparat", "rosinality" or "pulse-space"


Transform = Callable[[torch.Tensor], torch.Tensor]


def _identity(t: torch.Tensor) -> torch.Tensor:
    return t


def _squeeze0(t: torch.Tensor) -> torch.Tensor:
    return t.squeeze(0)


def _flatten(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1)


def _scalar(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(())


def _apply_table(
    source: Mapping[str, torch.Tensor],
    table: dict[str, tuple[str, Transform]],
    constants: dict[str, torch.Tensor],
    dropped: Callable[[str], bool],
    model: StyleGenerator,
    what: str,
) -> dict[str, torch.Tensor]:
    """Convert ``source`` through ``table`` and check it fits ``model`` exactly."""
    expected = {k: v.shape for k, v in model.state_dict().items()}
    problems: list[str] = []
    missing = [k for k in table if k not in source]
    missing += [k for k in constants if k not in source]
    unexpected = [k for k in source if k not in table and k not in constants and not dropped(k)]
    if missing:
        problems.append("missing keys: " + ", ".join(sorted(missing)))
    if unexpected:
        problems.append("unexpected keys: " + ", ".join(sorted(unexpected)))
    for key, value in constants.items():
        if key in source and (source[key].shape != value.shape or not torch.allclose(source[key].float(), value)):
            problems.append(f"{key} is not the standard filter {value.flatten().tolist()}")
    out: dict[str, torch.Tensor] = {}
    for key, (own, transform) in table.items():
        if key not in source:
            continue
        tensor = transform(source[key].detach().to(torch.float32))
        if own not in expected:
            problems.append(f"{key} maps to {own}, which the model does not have")
        elif tensor.shape != expected[own]:
            problems.append(f"{key} has shape {tuple(source[key].shape)}, expected {tuple(expected[own])} after conversion")
        out[own] = tensor.contiguous()
    left = set(expected) - set(out)
    if left and not problems:
        problems.append("model keys not filled: " + ", ".join(sorted(left)))
    if problems:
        raise WeightsFormatError(f"{what} does not fit the inferred architecture:\n  - " + "\n  - ".join(problems))
    return out


def _count(keys: set[str], pattern: str) -> int:
    regex = re.compile(pattern)
    return len({m.group(1) for k in keys if (m := regex.fullmatch(k))})


# ---------------------------------------------------------------- StyleGAN v1 (PULSE) --
def _pulse_config(synthesis: Mapping[str, torch.Tensor], mapping: Mapping[str, torch.Tensor]) -> StyleGANConfig:
    sides = sorted({int(m.group(1)) for k in synthesis if (m := re.match(r"blocks\.(\d+)x(\d+)\.", k))})
    if not sides or sides[0] != 4 or "blocks.4x4.const" not in synthesis:
        raise WeightsFormatError("no StyleGAN v1 synthesis blocks (blocks.4x4.const ...) found")
    channels = [synthesis["blocks.4x4.const"].shape[1]]
    for side in sides[1:]:
        key = f"blocks.{side}x{side}.conv1.weight"
        if key not in synthesis:
            raise WeightsFormatError(f"missing key {key}")
        channels.append(synthesis[key].shape[0])
    style_key = "blocks.4x4.epi1.style_mod.lin.weight"
    if style_key not in synthesis:
        raise WeightsFormatError(f"missing key {style_key}")
    w_dim = synthesis[style_key].shape[1]
    layers = _count(set(mapping), r"dense(\d+)\.weight")
    if layers == 0:
        raise WeightsFormatError("no mapping network (dense0.weight ...) found")
    return StyleGANConfig(resolution=sides[-1], w_dim=w_dim, mapping_layers=layers, channels=tuple(channels))


def pulse_key_table(config: StyleGANConfig) -> tuple[dict[str, tuple[str, Transform]], dict[str, torch.Tensor]]:
    """Upstream key -> (own key, transform), and the fixed buffers, for PULSE's layout.
    Mapping keys carry a ``mapping.`` prefix and synthesis keys a ``synthesis.`` prefix."""
    table: dict[str, tuple[str, Transform]] = {}
    constants: dict[str, torch.Tensor] = {}
    for i in range(config.mapping_layers):
        for p in ("weight", "bias"):
            table[f"mapping.dense{i}.{p}"] = (f"mapping_layers.{i}.{p}", _identity)
    table["synthesis.blocks.4x4.const"] = ("const", _identity)
    table["synthesis.blocks.4x4.bias"] = ("const_bias", _identity)
    for level in range(len(config.channels)):
        side = 2 ** (level + 2)
        block = f"synthesis.blocks.{side}x{side}"
        convs = [("conv", 1)] if level == 0 else [("conv0_up", 2 * level), ("conv1", 2 * level + 1)]
        for name, layer in convs:
            table[f"{block}.{name}.weight"] = (f"layers.{layer}.conv_weight", _identity)
            table[f"{block}.{name}.bias"] = (f"layers.{layer}.conv_bias", _identity)
            if name == "conv0_up":
                constants[f"{block}.{name}.intermediate.kernel"] = separable_kernel([1, 2, 1])[None, None]
        for epi, layer in (("epi1", 2 * level), ("epi2", 2 * level + 1)):
            table[f"{block}.{epi}.noise.weight"] = (f"layers.{layer}.noise_strength", _identity)
            for p in ("weight", "bias"):
                table[f"{block}.{epi}.style_mod.lin.{p}"] = (f"layers.{layer}.style.{p}", _identity)
    table["synthesis.torgb.weight"] = ("to_rgb_weight", _identity)
    table["synthesis.torgb.bias"] = ("to_rgb_bias", _identity)
    return table, constants


def convert_pulse(synthesis: Mapping[str, torch.Tensor], mapping: Mapping[str, torch.Tensor], *,
                  upstream_format: str = "pulse") -> ConvertedWeights:
    """Convert PULSE's ``synthesis.pt`` and ``mapping.pt`` state dicts."""
    config = _pulse_config(synthesis, mapping)
    table, constants = pulse_key_table(config)
    merged = {f"synthesis.{k}": v for k, v in synthesis.items()} | {f"mapping.{k}": v for k, v in mapping.items()}
    model = StyleGAN(config)
    state = _apply_table(merged, table, constants, lambda k: False, model, f"this {upstream_format} checkpoint")
    return ConvertedWeights("stylegan", config, state, upstream_format)


def convert_lernapparat(state: Mapping[str, torch.Tensor]) -> ConvertedWeights:
    """Convert lernapparat's single ``for_g_all.pt`` state dict (StyleGAN v1)."""
    synthesis: dict[str, torch.Tensor] = {}
    mapping: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    for key, value in state.items():
        if key.startswith("g_mapping."):
            mapping[key.removeprefix("g_mapping.")] = value
        elif key.startswith("g_synthesis."):
            # lernapparat keeps the noise layer inside the epilogue's Sequential.
            synthesis[key.removeprefix("g_synthesis.").replace(".top_epi.noise.", ".noise.")] = value
        elif key == "truncation.avg_latent":
            continue  # PULSE never truncates: the search space already constrains W+
        else:
            unexpected.append(key)
    if unexpected:
        raise WeightsFormatError("unexpected keys in lernapparat checkpoint: " + ", ".join(sorted(unexpected)))
    return convert_pulse(synthesis, mapping, upstream_format="lernapparat")


# ---------------------------------------------------------- StyleGAN2 (rosinality) --
def _rosinality_config(g: Mapping[str, torch.Tensor]) -> StyleGAN2Config:
    if "input.input" not in g or "conv1.conv.modulation.weight" not in g:
        raise WeightsFormatError("no StyleGAN2 synthesis (input.input, conv1.conv ...) found")
    levels = 1 + _count(set(g), r"to_rgbs\.(\d+)\.conv\.weight")
    channels = [g["input.input"].shape[1]]
    for level in range(1, levels):
        key = f"convs.{2 * level - 1}.conv.weight"
        if key not in g:
            raise WeightsFormatError(f"missing key {key}")
        channels.append(g[key].shape[1])
    layers = _count(set(g), r"style\.(\d+)\.weight")
    return StyleGAN2Config(resolution=2 ** (levels + 1), w_dim=g["conv1.conv.modulation.weight"].shape[1],
                           mapping_layers=layers, channels=tuple(channels))


def _modconv_entries(table: dict, src: str, dst: str) -> None:
    table[f"{src}.conv.weight"] = (f"{dst}.conv.weight", _squeeze0)
    table[f"{src}.conv.modulation.weight"] = (f"{dst}.conv.style.weight", _identity)
    table[f"{src}.conv.modulation.bias"] = (f"{dst}.conv.style.bias", _identity)


def rosinality_key_table(config: StyleGAN2Config) -> tuple[dict[str, tuple[str, Transform]], dict[str, torch.Tensor]]:
    """Upstream key -> (own key, transform), and the fixed buffers, for rosinality's ``g_ema``."""
    table: dict[str, tuple[str, Transform]] = {}
    constants: dict[str, torch.Tensor] = {}
    blur = separable_kernel([1, 3, 3, 1], scale=4.0)
    for i in range(config.mapping_layers):
        for p in ("weight", "bias"):
            table[f"style.{i + 1}.{p}"] = (f"mapping_layers.{i}.{p}", _identity)
    table["input.input"] = ("const", _identity)
    for j in range(2 * len(config.channels) - 1):
        src = "conv1" if j == 0 else f"convs.{j - 1}"
        _modconv_entries(table, src, f"convs.{j}")
        table[f"{src}.noise.weight"] = (f"convs.{j}.noise_strength", _scalar)
        table[f"{src}.activate.bias"] = (f"convs.{j}.bias", _identity)
        if j % 2 == 1:
            constants[f"{src}.conv.blur.kernel"] = blur
    for level in range(len(config.channels)):
        src = "to_rgb1" if level == 0 else f"to_rgbs.{level - 1}"
        _modconv_entries(table, src, f"to_rgbs.{level}")
        table[f"{src}.bias"] = (f"to_rgbs.{level}.bias", _flatten)
        if level > 0:
            constants[f"{src}.upsample.kernel"] = blur
    return table, constants


def convert_rosinality(checkpoint: Mapping[str, object]) -> ConvertedWeights:
    """Convert ``{"g_ema": state_dict, ...}`` from rosinality's stylegan2-pytorch."""
    g = checkpoint.get("g_ema") if isinstance(checkpoint, Mapping) else None
    if not isinstance(g, Mapping):
        raise WeightsFormatError("no 'g_ema' state dict in this checkpoint")
    config = _rosinality_config(g)
    table, constants = rosinality_key_table(config)
    model = StyleGAN2(config)
    # Stored noise buffers are one fixed draw; PULSE passes its own noise explicitly.
    state = _apply_table(g, table, constants, lambda k: k.startswith("noises.noise_"), model,
                         "this rosinality StyleGAN2 checkpoint")
    return ConvertedWeights("stylegan2", config, state, "rosinality")


# ------------------------------------------------------------------ own format --
def own_config_json(converted: ConvertedWeights, **extra: object) -> str:
    """The ``config.json`` (and safetensors metadata) describing a converted model."""
    return json.dumps({"format": OWN_FORMAT, "architecture": converted.architecture,
                       "config": asdict(converted.config), "converted_from": converted.upstream_format, **extra},
                      indent=2)


def parse_own_config(text: str) -> tuple[str, StyleGANConfig | StyleGAN2Config]:
    """Architecture and config from this project's ``config.json``."""
    try:
        data = json.loads(text)
        if data.get("format") != OWN_FORMAT:
            raise WeightsFormatError(f"config format is {data.get('format')!r}, expected {OWN_FORMAT!r}")
        fields = dict(data["config"])
        fields["channels"] = tuple(fields["channels"])
        arch = data["architecture"]
        if arch == "stylegan":
            return arch, StyleGANConfig(**fields)
        if arch == "stylegan2":
            return arch, StyleGAN2Config(**fields)
        raise WeightsFormatError(f"unknown architecture {arch!r} in config")
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        if isinstance(error, WeightsFormatError):
            raise
        raise WeightsFormatError(f"invalid pulse-space config: {error}") from None


def build_generator(converted: ConvertedWeights) -> StyleGenerator:
    """Instantiate the generator and load the converted weights with strict key checking."""
    model: StyleGenerator = StyleGAN(converted.config) if converted.architecture == "stylegan" else StyleGAN2(converted.config)
    model.load_state_dict(converted.state_dict, strict=True)
    model.requires_grad_(False)
    return model.eval()


def detect_format(obj: object) -> str:
    """Name the upstream layout of a loaded ``.pt`` object: "rosinality", "lernapparat",
    "pulse-synthesis", "pulse-mapping", or raise ``WeightsFormatError``."""
    if isinstance(obj, Mapping):
        keys = set(obj)
        if "g_ema" in keys:
            return "rosinality"
        if any(isinstance(k, str) and k.startswith("g_synthesis.") for k in keys):
            return "lernapparat"
        if "blocks.4x4.const" in keys:
            return "pulse-synthesis"
        if "dense0.weight" in keys:
            return "pulse-mapping"
        if "style.1.weight" in keys and "input.input" in keys:
            return "rosinality-state-dict"
    sample = ", ".join(sorted(map(str, obj))[:5]) if isinstance(obj, Mapping) else type(obj).__name__
    raise WeightsFormatError(
        "not a supported generator checkpoint (expected rosinality {'g_ema': ...}, PULSE synthesis.pt/mapping.pt, "
        f"lernapparat for_g_all.pt, or a pulse-space model.safetensors); found: {sample}"
    )
