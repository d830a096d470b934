"""Seconds per PULSE search step and peak memory at a backbone's real shapes (random weights).

Not a test: it prints numbers. Each configuration runs in its own process so that peak
memory and process-level settings (allocator, threads) do not leak between them.

    python benchmarks/bench_search.py --backbone stylegan --batch 1 --input-size 32 --compare-plain
    python benchmarks/bench_search.py --backbone stylegan stylegan2 --batch 1 4 --compare-plain

``fast`` is what the CLI and the app run (``configure_process`` + ``choose_runtime``);
``plain`` is the same code as float32 eager with default process settings.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(spec: dict) -> dict:
    sys.path.insert(0, str(ROOT))
    import torch

    from pulse_core.config import SearchConfig
    from pulse_core.gaussian_fit import compute_gaussian_fit
    from pulse_core.generators import StyleGAN, StyleGAN2, StyleGAN2Config, StyleGANConfig, randomize_
    from pulse_core.runtime import RuntimeConfig, choose_runtime, configure_process, prepare_generator
    from pulse_core.search import search

    device = torch.device(spec["device"])
    if spec["mode"] in ("fast", "compiled"):
        settings = configure_process()
        runtime = choose_runtime(device, plain=False, compile=spec["mode"] == "compiled")
    else:
        settings = {"threads": torch.get_num_threads(), "allocator": "default"}
        runtime = RuntimeConfig.plain()
    resolution = spec["resolution"]
    if spec["backbone"] == "stylegan":
        model = StyleGAN(StyleGANConfig.from_fmaps(resolution))
    else:
        model = StyleGAN2(StyleGAN2Config.from_channel_base(resolution))
    randomize_(model, generator=torch.Generator().manual_seed(0))
    model.set_gaussian_fit(compute_gaussian_fit(model, num_samples=20_000))
    model.to(device)
    prepare_generator(model, runtime)
    target = torch.rand((3, spec["input_size"], spec["input_size"]), generator=torch.Generator().manual_seed(1))
    stamps: list[float] = []

    def callback(info) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    steps = spec["warmup"] + spec["steps"] + 1
    start = time.perf_counter()
    search(model, target, SearchConfig(steps=steps, samples=spec["batch"]), callback=callback, runtime=runtime)
    total = time.perf_counter() - start
    per_step = [b - a for a, b in zip(stamps, stamps[1:])][spec["warmup"]:]
    first_step = stamps[0] - start  # includes compilation for the compiled mode
    peak_mb = None
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                peak_mb = int(line.split()[1]) / 1024
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    gmac = step_gmac(model, spec["batch"]) if spec["mode"] == "plain" else None  # after the peak was read
    return {**spec, "seconds_per_step": statistics.median(per_step), "steps_timed": len(per_step), "gmac": gmac,
            "peak_mb": peak_mb, "total_seconds": total, "first_step_seconds": first_step, "runtime": runtime.describe(), "settings": settings}


def step_gmac(model, batch: int) -> float:
    """Multiply-accumulates (GMAC) of one search step: synthesis forward + backward to the
    latent (the weights are frozen), counted by torch's FLOP counter at the real shapes."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    latent = torch.zeros(batch, model.num_ws, model.w_dim, requires_grad=True)
    noise = model.make_noise(batch, generator=torch.Generator().manual_seed(0))
    with FlopCounterMode(display=False) as counter:
        model.synthesis(model.latent_to_w_plus(latent), noise).sum().backward()
    return counter.get_total_flops() / 2e9


# The performance issue's CPU target: 0.4 s per StyleGAN v1 step (64.5 GMAC at batch 1);
# other backbones scale it by their GMAC per step.
TARGET_SECONDS, TARGET_GMAC = 0.4, 64.5


def run_child(spec: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", nargs="+", default=["stylegan"], choices=["stylegan", "stylegan2"])
    parser.add_argument("--batch", nargs="+", type=int, default=[1])
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--resolution", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=5, help="timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compare-plain", action="store_true", help="also run the plain float32 path")
    parser.add_argument("--compile", action="store_true", help="also run with torch.compile (prints compile time)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    print(f"{'backbone':<10} {'batch':>5} {'mode':<8} {'s/step':>8} {'s/step/sample':>13} {'peak MB':>8} "
          f"{'plain/fast':>10}  runtime")
    for backbone in args.backbone:
        for batch in args.batch:
            spec = {"backbone": backbone, "batch": batch, "input_size": args.input_size, "device": args.device,
                    "resolution": args.resolution, "steps": args.steps, "warmup": args.warmup}
            results = {"fast": run_child({**spec, "mode": "fast"})}
            if args.compile:
                results["compiled"] = run_child({**spec, "mode": "compiled"})
            if args.compare_plain:
                results["plain"] = run_child({**spec, "mode": "plain"})
            if "plain" in results:
                gmac = results["plain"]["gmac"] / batch
                print(f"{backbone:<10} {batch:>5} target   {TARGET_SECONDS * gmac / TARGET_GMAC:>8.3f} s/step/sample "
                      f"({gmac:.1f} GMAC per sample-step; 0.4 s x GMAC / {TARGET_GMAC})", flush=True)
            for mode, r in results.items():
                ratio = ""
                if mode != "plain" and "plain" in results:
                    ratio = f"{results['plain']['seconds_per_step'] / r['seconds_per_step']:.2f}x"
                print(f"{backbone:<10} {batch:>5} {mode:<8} {r['seconds_per_step']:>8.3f} "
                      f"{r['seconds_per_step'] / batch:>13.3f} {r['peak_mb']:>8.0f} {ratio:>10}  "
                      f"{r['runtime']} {r['settings']} first step {r['first_step_seconds']:.1f} s", flush=True)


if __name__ == "__main__":
    main()
