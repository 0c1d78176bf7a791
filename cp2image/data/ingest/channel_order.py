"""The order of an input's channels, and the permutation into cp2image's DNA, Tubulin, Actin.

A silently swapped channel poisons every feature and model trained on the data, so
names are checked strictly (each channel once, known names or stain names only).
"""
from __future__ import annotations

from collections.abc import Sequence

from cp2image.channels import CHANNELS

# Accepted spellings (case-insensitive) of each channel: cp2image's names plus the stains
# BBBC021 and CellProfiler pipelines name them after.
CHANNEL_ALIASES: dict[str, str] = {
    "dna": "DNA", "dapi": "DNA", "hoechst": "DNA",
    "tubulin": "Tubulin", "β-tubulin": "Tubulin", "beta-tubulin": "Tubulin",
    "actin": "Actin", "f-actin": "Actin", "phalloidin": "Actin",
}


def parse_channel_order(value: str | Sequence[str]) -> tuple[str, ...]:
    """The input's channels in order, as cp2image channel names.

    `value` is a comma-separated string (``"DNA,Actin,Tubulin"``) or a sequence
    of names. Every channel of `CHANNELS` must be named exactly once; stain
    names (DAPI, F-actin, β-tubulin) are accepted. A wrong count, an unknown or
    a repeated name raises `ValueError` naming it, because a silently swapped
    channel poisons every feature and model trained on the data.
    """
    names = [n.strip() for n in value.split(",")] if isinstance(value, str) else [str(n).strip() for n in value]
    expected = ", ".join(CHANNELS)
    if len(names) != len(CHANNELS) or any(not n for n in names):
        raise ValueError(
            f"channel order {value!r} must name {len(CHANNELS)} channels separated by commas, "
            f"each of {expected} once in the order the input stores them (e.g. DNA,Actin,Tubulin)"
        )
    order = []
    for name in names:
        channel = CHANNEL_ALIASES.get(name.lower())
        if channel is None:
            raise ValueError(f"channel order {value!r}: unknown channel {name!r}; use {expected} "
                             "(or the stains DAPI, β-tubulin, F-actin)")
        if channel in order:
            raise ValueError(f"channel order {value!r}: {channel} is named twice; each of {expected} must appear once")
        order.append(channel)
    return tuple(order)


def channel_permutation(order: Sequence[str]) -> list[int]:
    """Indices that take input channels in `order` to `CHANNELS` order: `raw[:, perm]`."""
    order = parse_channel_order(order)
    return [order.index(c) for c in CHANNELS]


