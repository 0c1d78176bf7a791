"""How a generator convolution fills the margin beyond the crop edge (torch-free: configs and the NumPy
generator read it without importing torch).

"zeros" is the paper's (and the bundled models' before their 32-filter retrainings of 2026-11-28);
"replicate" (both bundled models' since) repeats the edge pixel,
so the network cannot tell where the border is and draws no frame there: zero padding leaves a
square a few px inside every generated crop (docs/generator-ablation.md, "Edge-replicating padding").
"""
from __future__ import annotations

PADDING_MODES: tuple[str, ...] = ("zeros", "replicate")


def check_padding_mode(mode: str) -> str:
    """`mode` when it is one of PADDING_MODES; a ValueError naming the choices otherwise."""
    if mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {mode!r}")
    return mode
