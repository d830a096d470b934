"""Learning-rate schedules of the original implementation, as multipliers of the peak rate."""

from __future__ import annotations

__all__ = ["lr_factor"]


def lr_factor(schedule: str, step: int, steps: int) -> float:
    """Multiplier of the learning rate at ``step`` (0-based) of ``steps``.

    - ``fixed``: 1.
    - ``linear1cycle``: 0.1 -> 1 at mid-run -> 0.1, linearly.
    - ``linear1cycledrop``: the same cycle over the first 90% of the steps, then a linear
      drop from 0.1 to 0.001 over the last 10%.
    """
    if schedule == "fixed":
        return 1.0
    if schedule == "linear1cycle":
        return (9.0 * (1.0 - abs(step / steps - 0.5) * 2.0) + 1.0) / 10.0
    if schedule == "linear1cycledrop":
        cycle = 0.9 * steps
        if step < cycle:
            return (9.0 * (1.0 - abs(step / cycle - 0.5) * 2.0) + 1.0) / 10.0
        return 0.1 + (step - cycle) / (0.1 * steps) * (0.001 - 0.1)
    raise ValueError(f"unknown schedule {schedule!r}")
