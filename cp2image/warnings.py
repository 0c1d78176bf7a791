"""The warnings cp2image raises, one class per kind of soft problem.

Callers (the app, the CLI, notebooks) tell them apart by class, never by wording:
`warnings.simplefilter("ignore", InputClipped)`, or `issubclass(w.category, ...)` on a
recorded warning. All are `UserWarning`s, so default filters show them once.
"""
from __future__ import annotations


class Cp2ImageWarning(UserWarning):
    """Base of every warning cp2image raises; `summary` is a short title for a folded notice."""

    summary = "Note from cp2image"


class InputClipped(Cp2ImageWarning):
    """A profile fed to the generator had values beyond ±clip_sigma training SDs; they were clipped.

    The model never saw a cell that far out, so it draws the capped value: the image
    understates those features.
    """

    summary = "Some input values were beyond the model's training range and were capped"


class OutsideReference(Cp2ImageWarning):
    """Requested feature values lie outside the range seen in the reference cells; the model extrapolates."""

    summary = "Some requested values lie outside the range of the reference cells"


__all__ = ["Cp2ImageWarning", "InputClipped", "OutsideReference"]
