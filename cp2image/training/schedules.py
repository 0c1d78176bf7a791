"""Per-layer weights γ_i(t) of the hidden-layer loss: zero until a delay, then a linear ramp."""
from __future__ import annotations


def ramp_weight(step: int, *, target: float, delay: int, ramp: int) -> float:
    """γ(t) = target · clip((t − delay) / ramp, 0, 1); ramp = 0 switches on at `delay`."""
    if step < delay:
        return 0.0
    if ramp <= 0:
        return float(target)
    return float(target) * min(1.0, (step - delay) / ramp)


def layer_weights(step: int, gamma: list[float], delay: list[int], ramp: list[int]) -> list[float]:
    """γ_i(t) for every discriminator layer i."""
    return [ramp_weight(step, target=g, delay=d, ramp=r) for g, d, r in zip(gamma, delay, ramp)]
