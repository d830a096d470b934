"""Runtime choices for speed, in one place, chosen from the device (issue: performance).

The search is dominated by the generator's forward and backward passes at full
resolution. What pays, measured in ``benchmarks/bench_search.py``:

- glibc's allocator hands the 64 MB activations of the 1024 px layers back to the system
  and maps them again every step; telling it to keep freed memory halves a CPU step.
  This is a process setting, made here by the program (``configure_process``) rather than
  left to environment variables.
- bfloat16 autocast for the search iterations where the hardware computes it natively
  (AVX512-BF16 or AMX on the CPU, any recent GPU). The final render and the eps verdict
  stay in float32 (``pulse_core.search``), so no result depends on the reduced precision.
- NHWC (channels-last) activations where the convolutions are fast in it: GPUs, and CPUs
  with AMX, whose bf16 tiles oneDNN uses for 16-64 channels only in NHWC (StyleGAN v1 step
  at 1024 px on 2 cores: 0.50 s NCHW, 0.31 s NHWC). The generators keep every full-size
  element-wise pass in the activation's own layout (``generators.layers``).
- Threads set to the cores this process may use.
- On CPUs, one sample at a time (``micro_batch=1``): the same per-sample cost as a batch, at
  the memory of one sample (4 StyleGAN2 samples at once took 8.7 GB).
- Optionally (``--compile``), torch.compile of the synthesis: about 50 s of compilation on 2
  cores; then a fifth to a third less time per step without AMX (NCHW), but 5-10% more with
  AMX (NHWC); the CLI offers it, the app does not (a demo cannot make its first visitor wait).

``RuntimeConfig.plain()`` forces the plain float32 eager path (``--plain`` in the CLI,
``PULSE_PLAIN=1`` for the app).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import weakref
from dataclasses import dataclass

import torch

__all__ = ["RuntimeConfig", "choose_runtime", "configure_process", "cpu_has_amx", "cpu_has_native_bf16",
           "prepare_generator", "synthesis_for"]

logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc mallopt parameters (malloc.h)
_configured: dict | None = None


@dataclass(frozen=True)
class RuntimeConfig:
    """How the search iterations run. The final render is always plain float32."""

    autocast_dtype: torch.dtype | None = None  # reduced precision for forward/backward, None = float32
    channels_last: bool = False  # NHWC activations (helps convolutions on GPUs)
    compile: bool = False  # torch.compile the synthesis for the iterations (opt-in: compiling takes a minute)
    micro_batch: int | None = None  # samples evaluated together per step; None = all of them

    def __post_init__(self) -> None:
        if self.micro_batch is not None and self.micro_batch < 1:
            raise ValueError(f"micro_batch must be None or >= 1, got {self.micro_batch}")

    @classmethod
    def plain(cls) -> "RuntimeConfig":
        return cls()

    def describe(self) -> dict:
        return {"autocast": str(self.autocast_dtype).removeprefix("torch.") if self.autocast_dtype else "float32",
                "channels_last": self.channels_last, "compile": self.compile,
                "micro_batch": self.micro_batch or "all"}


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bfloat16 natively (AVX512-BF16 or AMX); elsewhere bfloat16
    is emulated and slower than float32."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def cpu_has_amx() -> bool:
    """True when the CPU has AMX bfloat16 tiles (Intel Sapphire Rapids and later) and oneDNN
    may use them (``ONEDNN_MAX_CPU_ISA`` can cap it below AMX)."""
    cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "").strip().upper()
    if cap and cap not in {"ALL", "DEFAULT"} and "AMX" not in cap:
        return False
    try:
        with open("/proc/cpuinfo") as f:
            return " amx_bf16" in f.read()
    except OSError:
        return False


def choose_runtime(device: torch.device | str, *, plain: bool | None = None, compile: bool = False) -> RuntimeConfig:
    """The fastest configuration known to keep the search's results for ``device``.
    ``plain=None`` reads ``PULSE_PLAIN`` from the environment. ``compile`` adds torch.compile
    (see the module docstring: it pays only on CPUs without AMX, and only over long runs)."""
    if plain is None:
        plain = os.environ.get("PULSE_PLAIN", "").strip().lower() in {"1", "true", "yes", "on"}
    device = torch.device(device)
    if plain:
        return RuntimeConfig.plain()
    if device.type == "cuda":
        bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return RuntimeConfig(torch.bfloat16 if bf16 else None, channels_last=True, compile=compile)
    # CPUs: one sample at a time. Measured at 4 samples on 2 cores: StyleGAN v1 0.287 s per
    # sample-step at 1.4 GB against 0.266 s at 3.8 GB batched; StyleGAN2 0.725 s at 2.1 GB
    # against 0.779 s at 8.7 GB. Memory stays that of one sample whatever the count.
    if device.type == "cpu" and cpu_has_native_bf16():
        # oneDNN's bf16 convolutions with 16-64 channels use AMX tiles only in NHWC: on a 2-core
        # AMX CPU a 3x3 conv at 1024 px took 8.7 ms forward + backward NHWC against 44 ms NCHW.
        # Without AMX (AVX512-BF16 only) NHWC was slower (0.82 s vs 0.65 s for synthesis forward
        # + backward at 1024 px), so activations stay NCHW there.
        return RuntimeConfig(torch.bfloat16, channels_last=cpu_has_amx(), compile=compile, micro_batch=1)
    return RuntimeConfig(compile=compile, micro_batch=1 if device.type == "cpu" else None)


_compiled: "weakref.WeakKeyDictionary[torch.nn.Module, object]" = weakref.WeakKeyDictionary()


def synthesis_for(generator: torch.nn.Module, runtime: RuntimeConfig):
    """The synthesis callable for the iterations: the module's own, or a compiled one made
    once per generator (the compiled code is reused by every later search)."""
    if not runtime.compile:
        return generator.synthesis
    if generator not in _compiled:
        # dynamic=False: shapes never change within a search, and inductor failed on the dynamic
        # graph dynamo made for StyleGAN2 when a second call took another branch ("1 < s23").
        _compiled[generator] = torch.compile(generator.synthesis, dynamic=False)
    return _compiled[generator]


def prepare_generator(generator: torch.nn.Module, runtime: RuntimeConfig) -> torch.nn.Module:
    """Lay the generator's 4-D parameters out for ``runtime`` once, after loading (values are
    unchanged, so results do not depend on it). Activations follow the layout of the learned
    constant and the convolution weights. Returns the same module."""
    if runtime.channels_last:
        generator.to(memory_format=torch.channels_last)
    return generator


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def configure_process(*, threads: int | None = None, tune_allocator: bool = True) -> dict:
    """Process-wide settings, applied once: intra-op threads = available cores, and glibc's
    allocator told to keep freed memory (no mmap for large blocks, no trimming) so that the
    same large buffers are reused every step. Returns what was set."""
    global _configured
    if _configured is not None:
        return _configured
    settings: dict = {}
    n = threads or _available_cores()
    torch.set_num_threads(n)
    settings["threads"] = n
    if tune_allocator:
        settings["allocator"] = _tune_glibc_malloc()
    _configured = settings
    logger.info("runtime: %s", settings)
    return settings


def _tune_glibc_malloc() -> str:
    name = ctypes.util.find_library("c")
    if not name:
        return "unchanged (no C library found)"
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return "unchanged (not glibc)"
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    # Large blocks from the heap instead of mmap, and never trimmed back: freed activation
    # buffers stay in the process and are reused by the next step (higher, flat peak memory).
    ok = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    return "glibc: keep freed memory" if ok else "unchanged (mallopt refused)"
