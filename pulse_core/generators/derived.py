"""Tensors derived from frozen parameters, computed once instead of every search step.

The search never changes the generator's weights, yet every step would rescale them by
their equalized-learning-rate gain, cast them to bfloat16, lay them out NHWC and (StyleGAN
v1's fused upsampling, StyleGAN2's demodulation) reshape or reduce them: about 80 ms of a
StyleGAN2 step on 2 cores, for the same numbers each time. ``derived`` keeps one result per
parameter and recipe, and recomputes it when the parameter is changed in place, moved,
re-laid out or given new data (``load_state_dict``, ``.to()``). A parameter that requires
grad is never cached, so training-style use stays correct.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable

import torch

__all__ = ["derived"]

# Keyed by id(): a WeakKeyDictionary compares tensor keys with ==, which is element-wise.
# The entry goes when the parameter does (weakref.finalize), so an id is never reused stale.
_cache: dict[int, dict] = {}
_lock = threading.Lock()  # the app's worker threads share one generator


def _stamp(param: torch.Tensor) -> tuple:
    return param._version, param.data_ptr(), param.device, param.dtype, param.stride()


def derived(param: torch.Tensor, recipe: Hashable, make: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """``make(param)``, computed without autograd and cached per (param, recipe) while the
    parameter is frozen and unchanged. ``recipe`` names what ``make`` computes (with the dtype
    and layout it produces): two calls with the same recipe must mean the same function."""
    if param.requires_grad:
        return make(param)
    stamp = _stamp(param)
    with _lock:
        entries = _cache.get(id(param))
        if entries is None:
            entries = _cache[id(param)] = {}
            weakref.finalize(param, _cache.pop, id(param), None)
        hit = entries.get(recipe)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    # A normal tensor even when the first call comes from inside torch.inference_mode(): an
    # inference tensor could never be used by a later search's autograd.
    with torch.inference_mode(False), torch.no_grad(), torch.autocast(param.device.type, enabled=False):
        value = make(param)
    with _lock:
        entries[recipe] = (stamp, value)
    return value
