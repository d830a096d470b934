"""The PULSE search (paper section 3, appendix B): find images G(z) whose bicubic
downscaling matches a low-resolution input within eps.

Each of ``config.samples`` starts has its own seed (``seed + k``) for its latent and
noise, and all are optimised together in one batch. The objective is a sum over
samples, so every sample follows exactly the path it would follow alone. Each sample
keeps its own best iterate (lowest downscaling loss) and its own success flag; the
best iterate is rendered once more at the end in float32 at full resolution, and that
render's loss decides success.

The function has no side effects of its own: no prints, no files, no global seeding.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial

import torch

from .config import SearchConfig
from .downsample import downscale, downscale_factor
from .generators.base import StyleGenerator
from .losses import downscale_l1, downscale_mse, geocross
from .results import SampleResult, SearchResult, StepInfo
from .runtime import RuntimeConfig, choose_runtime, synthesis_for
from .schedules import lr_factor
from .sphere import SphericalOptimizer, project_to_sphere

__all__ = ["InputError", "check_target", "search", "resample_noise"]

Callback = Callable[[StepInfo], bool | None]

_OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "sgd": torch.optim.SGD,
    "sgdm": partial(torch.optim.SGD, momentum=0.9),
    "adamax": torch.optim.Adamax,
}


class InputError(ValueError):
    """A low-resolution target the search cannot use, with a sentence saying why."""


def check_target(lr_image: torch.Tensor, resolution: int) -> tuple[torch.Tensor, int]:
    """Validate a target (3, h, w) or (1, 3, h, w), RGB in [0, 1]; return it as (1, 3, h, h)
    float32 and the downscaling factor ``resolution / h``."""
    if not isinstance(lr_image, torch.Tensor):
        raise InputError("the input must be an image tensor")
    image = lr_image.unsqueeze(0) if lr_image.ndim == 3 else lr_image
    if image.ndim != 4 or image.shape[0] != 1 or image.shape[1] != 3:
        raise InputError(f"the input must be one RGB image (3, h, w); got shape {tuple(lr_image.shape)}")
    height, width = image.shape[2:]
    if height != width:
        raise InputError(f"the input must be square; it is {width}x{height} px (crop it, or use face alignment)")
    image = image.to(torch.float32)
    if not torch.isfinite(image).all():
        raise InputError("the input contains NaN or infinite values")
    low, high = image.min().item(), image.max().item()
    if low < -1e-6 or high > 1 + 1e-6:
        raise InputError(f"input values must lie in [0, 1]; found [{low:.3g}, {high:.3g}]")
    try:
        factor = downscale_factor(resolution, height)
    except ValueError:
        sizes = ", ".join(str(resolution >> k) for k in range(1, 8) if resolution >> k >= 4)
        raise InputError(f"a {height}x{height} px input cannot be reached from the generator's {resolution} px "
                         f"by halving; use one of {sizes} px (crop or align the image)") from None
    return image.clamp(0, 1), factor


def _draw(config: SearchConfig, generator: StyleGenerator, device: torch.device,
          init_latent: torch.Tensor | None, noise_seed: int | None) -> tuple[torch.Tensor, list[torch.Tensor], list[int]]:
    """Latents (B, K, d) and noise maps for every sample, each from its own CPU generator so
    that a sample's draw does not depend on the device or on the other samples."""
    rows = 1 if config.tile_latent else generator.num_ws
    latents, noise_per_sample = [], []
    base = config.seed if noise_seed is None else noise_seed
    for k in range(config.samples):
        rng = torch.Generator().manual_seed(base + k)
        latent = torch.randn((1, rows, generator.w_dim), generator=rng)
        noise = [torch.randn((1, 1, h, w), generator=rng) for h, w in generator.noise_shapes]
        latents.append(latent)
        noise_per_sample.append(noise)
    latent = torch.cat(latents).to(device) if init_latent is None else init_latent.to(device, torch.float32).clone()
    project_to_sphere(latent, start_dim=2)
    zeroed = set(config.zeroed_layers(generator.num_noise))
    maps = []
    for i in range(generator.num_noise):
        n = torch.cat([sample[i] for sample in noise_per_sample]).to(device)
        if i in zeroed:
            n.zero_()
        else:
            project_to_sphere(n, start_dim=2)
        maps.append(n)
    trainable = [i for i in range(generator.num_noise)
                 if config.noise_mode == "trainable" and i < config.trainable_noise_layers and i not in zeroed]
    return latent, maps, trainable


def _w_plus(generator: StyleGenerator, latent: torch.Tensor, tiled: bool) -> torch.Tensor:
    """W+ (B, num_ws, d) of latents (B, K, d) of the Gaussian space; one tiled row is repeated."""
    return generator.latent_to_w_plus(latent.expand(-1, generator.num_ws, -1) if tiled else latent)


def _objective(config: SearchConfig, lr_generated: torch.Tensor, target: torch.Tensor,
               w_plus: torch.Tensor, tiled: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Total loss summed over samples (so samples do not interact) and per-sample MSE."""
    mse = downscale_mse(lr_generated, target)
    weights = config.loss
    # As in the original, each downscaling term is clamped at eps: a sample within eps
    # stops being pushed towards the input and only the realism term acts on it.
    total = weights.l2 * mse.clamp(min=config.eps)
    if weights.l1:
        total = total + weights.l1 * 10.0 * downscale_l1(lr_generated, target).clamp(min=config.eps)
    if weights.geocross and not tiled:
        total = total + weights.geocross * geocross(w_plus)
    return total.sum(), mse.detach()


def search(
    generator: StyleGenerator,
    lr_image: torch.Tensor,
    config: SearchConfig = SearchConfig(),
    *,
    callback: Callback | None = None,
    init_latent: torch.Tensor | None = None,
    noise_seed: int | None = None,
    runtime: RuntimeConfig | None = None,
) -> SearchResult:
    """Run PULSE on ``lr_image`` ((3, h, w) in [0, 1], h = resolution / 2**k).

    ``callback(StepInfo)`` is called after every evaluated step; returning True stops the
    search, which returns what it has with ``stopped=True``. ``init_latent`` (B, K, d)
    starts from given latents (used by ``resample_noise``); ``noise_seed`` overrides the
    seed of the noise draw. Randomness comes only from ``config.seed`` (sample k uses
    seed + k), so the same inputs give the same outputs on the same machine.
    ``runtime`` (default: ``choose_runtime(device)``) sets the precision of the iterations;
    the returned images, losses and verdicts are always computed in float32.
    """
    if not generator.has_gaussian_fit:
        raise RuntimeError("the generator has no Gaussian fit; load it with pulse_core.load_generator")
    device = generator.fit_mean.device
    runtime = runtime if runtime is not None else choose_runtime(device)
    autocast = torch.autocast(device.type, dtype=runtime.autocast_dtype or torch.float32,
                              enabled=runtime.autocast_dtype is not None)
    synthesize = synthesis_for(generator, runtime)
    target, factor = check_target(lr_image, generator.resolution)
    target = target.to(device)
    tiled = config.tile_latent
    latent, noise, trainable = _draw(config, generator, device, init_latent, noise_seed)
    latent.requires_grad_(True)
    for i in trainable:
        noise[i].requires_grad_(True)
    optimizer = SphericalOptimizer(_OPTIMIZERS[config.optimizer], [latent] + [noise[i] for i in trainable],
                                   lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer.optimizer, lambda step: lr_factor(config.schedule, step, config.steps))

    batch = config.samples
    best = torch.full((batch,), float("inf"), device=device)
    best_step = torch.zeros(batch, dtype=torch.long)
    best_latent = latent.detach().clone()
    best_noise = [noise[i].detach().clone() for i in trainable]
    history: list[torch.Tensor] = []
    stopped = False
    start = time.perf_counter()
    # Samples are independent (the objective is a sum over them), so they can be evaluated in
    # parts of ``runtime.micro_batch``, each part's graph freed by its backward pass: on CPUs
    # batching saves nothing worth its memory (4 StyleGAN2 samples at once took 8.7 GB).
    chunk = runtime.micro_batch or batch
    parts = [slice(k, min(k + chunk, batch)) for k in range(0, batch, chunk)]
    for step in range(config.steps):
        optimizer.zero_grad()
        want_preview = callback is not None and bool(config.preview_every) and step % config.preview_every == 0
        losses, previews = [], []
        for part in parts:
            w_plus = _w_plus(generator, latent[part], tiled)
            with autocast:
                raw = synthesize(w_plus, [n[part] for n in noise])
            image = (raw.float() + 1.0) / 2.0
            total, part_mse = _objective(config, downscale(image, factor), target, w_plus, tiled)
            losses.append(part_mse)
            if want_preview:
                previews.append(image.detach().clamp(0, 1).cpu())
            # Backward before the callback sees the step: a stop then wastes one backward pass
            # and no optimiser step is taken.
            total.backward()
        mse = torch.cat(losses)
        history.append(mse.cpu())
        with torch.no_grad():
            improved = mse < best
            best = torch.where(improved, mse, best)
            best_step[improved.cpu()] = step
            mask = improved.view(-1, 1, 1)
            best_latent = torch.where(mask, latent.detach(), best_latent)
            best_noise = [torch.where(improved.view(-1, 1, 1, 1), noise[i].detach(), b)
                          for i, b in zip(trainable, best_noise)]
        if callback is not None:
            preview = torch.cat(previews) if want_preview else None
            info = StepInfo(step, config.steps, tuple(mse.tolist()), tuple(best.tolist()), config.eps,
                            time.perf_counter() - start, preview)
            if callback(info):
                stopped = step + 1 < config.steps
                break
        optimizer.step()
        scheduler.step()
    steps_run = len(history)
    seconds = time.perf_counter() - start

    final_noise = [n.detach().clone() for n in noise]
    for i, b in zip(trainable, best_noise):
        final_noise[i] = b
    samples = _render_best(generator, config, target, factor, best_latent, final_noise, best_step,
                           torch.stack(history, dim=1), steps_run, tiled, noise_seed, parts)
    return SearchResult(samples, config, target.shape[-1], factor, generator.describe(), stopped,
                        steps_run, seconds, str(device), runtime.describe())


@torch.no_grad()
def _render_best(generator: StyleGenerator, config: SearchConfig, target: torch.Tensor, factor: int,
                 latent: torch.Tensor, noise: Sequence[torch.Tensor], best_step: torch.Tensor,
                 history: torch.Tensor, steps_run: int, tiled: bool, noise_seed: int | None,
                 parts: Sequence[slice]) -> tuple[SampleResult, ...]:
    """Render each sample's best iterate in float32 and judge it against eps (in the same
    parts as the iterations, for memory).

    The verdict is on the image the user receives: clamped to [0, 1], full resolution."""
    images = []
    for part in parts:
        raw = generator.synthesis(_w_plus(generator, latent[part], tiled), [n[part] for n in noise])
        images.append(((raw + 1.0) / 2.0).float().clamp(0, 1))
    image = torch.cat(images)
    low = downscale(image, factor)
    loss = downscale_mse(low, target)
    out = []
    seed_base = config.seed if noise_seed is None else noise_seed
    for k in range(config.samples):
        value = float(loss[k])
        out.append(SampleResult(
            index=k, seed=seed_base + k, image=image[k].cpu(), downscaled=low[k].clamp(0, 1).cpu(),
            loss=value, eps=config.eps, success=value <= config.eps, best_step=int(best_step[k]),
            steps_run=steps_run, history=tuple(history[k].tolist()), latent=latent[k].cpu(),
            noise=tuple(n[k].cpu() for n in noise)))
    return tuple(out)


def resample_noise(
    generator: StyleGenerator,
    lr_image: torch.Tensor,
    found: SearchResult,
    *,
    noise_seed: int,
    steps: int = 20,
    callback: Callback | None = None,
    runtime: RuntimeConfig | None = None,
) -> SearchResult:
    """Paper section 4.4: keep each found latent, draw new noise (from ``noise_seed + k``),
    refine for ``steps`` steps, and report the new loss and success. Gives fine-level
    variations (hair, skin texture) of the faces in ``found``."""
    latent = torch.stack([s.latent for s in found.samples])
    config = found.config.replace(steps=steps, samples=len(found.samples))
    return search(generator, lr_image, config, callback=callback, init_latent=latent, noise_seed=noise_seed,
                  runtime=runtime)
