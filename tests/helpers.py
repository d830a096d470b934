"""Test helpers: tiny random generators and writers of upstream checkpoint layouts."""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch

from pulse_core.downsample import downscale
from pulse_core.gaussian_fit import compute_gaussian_fit
from pulse_core.generators import StyleGAN, StyleGAN2, StyleGAN2Config, StyleGANConfig, StyleGenerator, randomize_
from pulse_core.weights import formats

GOLDEN = Path(os.environ.get("PULSE_GOLDEN", Path(__file__).resolve().parents[2] / "shared" / "golden"))


def tiny_generator(architecture: str = "stylegan2", *, resolution: int = 32, w_dim: int = 32, seed: int = 0,
                   fit_samples: int = 20_000) -> StyleGenerator:
    """A small random generator with its Gaussian fit, ready for the search."""
    levels = resolution.bit_length() - 2
    channels = tuple([32] * max(levels - 2, 0) + [16, 16])[-levels:]
    if architecture == "stylegan":
        model: StyleGenerator = StyleGAN(StyleGANConfig(resolution, w_dim, 4, channels))
    else:
        model = StyleGAN2(StyleGAN2Config(resolution, w_dim, 4, channels))
    randomize_(model, generator=torch.Generator().manual_seed(seed))
    model.set_gaussian_fit(compute_gaussian_fit(model, num_samples=fit_samples, seed=0))
    model.backbone = "stylegan-ffhq" if architecture == "stylegan" else "stylegan2-ffhq"
    model.source = f"tiny-random-{architecture}-{resolution}"
    return model


def generated_target(model: StyleGenerator, size: int = 8, *, seed: int = 123,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """A target the generator can reach: DS(G(z)) for a random latent and noise, (3, size, size) in [0, 1].
    Draws from ``generator`` when given (several targets from one stream), else from ``seed``."""
    rng = generator if generator is not None else torch.Generator().manual_seed(seed)
    latent = torch.randn(1, model.num_ws, model.w_dim, generator=rng)
    with torch.no_grad():
        image = (model.synthesis(model.latent_to_w_plus(latent), model.make_noise(1, generator=rng)) + 1) / 2
    return downscale(image, model.resolution // size)[0].clamp(0, 1)


def checkerboard(size: int = 8) -> torch.Tensor:
    """An input no face generator can reach: alternating black and white pixels, (3, size, size)."""
    board = torch.zeros(3, size, size)
    board[:, ::2, ::2] = 1.0
    board[:, 1::2, 1::2] = 1.0
    return board


_INVERSE = {
    formats._identity: lambda t, shape: t,
    formats._squeeze0: lambda t, shape: t.unsqueeze(0),
    formats._flatten: lambda t, shape: t.reshape(1, -1, 1, 1),
    formats._scalar: lambda t, shape: t.reshape(1),
}


def _upstream_state(model: StyleGenerator) -> dict[str, torch.Tensor]:
    own = model.state_dict()
    if isinstance(model, StyleGAN):
        table, constants = formats.pulse_key_table(model.config)
    else:
        table, constants = formats.rosinality_key_table(model.config)
    out = {key: _INVERSE[transform](own[dst], None).clone() for key, (dst, transform) in table.items()}
    out.update({k: v.clone() for k, v in constants.items()})
    return out


def write_upstream(model: StyleGenerator, fmt: str, folder: Path) -> Path:
    """Write ``model`` in an upstream layout; returns the file (or folder) to load."""
    folder.mkdir(parents=True, exist_ok=True)
    state = _upstream_state(model)
    if fmt == "rosinality":
        g = dict(state)
        for i, (h, w) in enumerate(model.noise_shapes):
            g[f"noises.noise_{i}"] = torch.randn(1, 1, h, w)
        path = folder / "stylegan2-ffhq-config-f.pt"
        torch.save({"g_ema": g, "latent_avg": torch.zeros(model.w_dim)}, path)
        return path
    if fmt == "pulse":
        torch.save({k.removeprefix("synthesis."): v for k, v in state.items() if k.startswith("synthesis.")},
                   folder / "synthesis.pt")
        torch.save({k.removeprefix("mapping."): v for k, v in state.items() if k.startswith("mapping.")},
                   folder / "mapping.pt")
        return folder / "synthesis.pt"
    if fmt == "lernapparat":
        out: dict[str, torch.Tensor] = {}
        for k, v in state.items():
            if k.startswith("mapping."):
                out["g_mapping." + k.removeprefix("mapping.")] = v
            else:
                out["g_" + k.replace(".noise.weight", ".top_epi.noise.weight")] = v
        out["truncation.avg_latent"] = torch.zeros(model.w_dim)
        path = folder / "karras2019stylegan-ffhq-1024x1024.for_g_all.pt"
        torch.save(out, path)
        return path
    raise ValueError(fmt)


def file_bytes(path: Path) -> bytes:
    return path.read_bytes()


def pt_bytes(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()
