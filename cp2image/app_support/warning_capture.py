"""Run a computation and hand its warnings back as notes for the page to show.

Library code warns about soft problems with the classes in `cp2image.warnings`
(extrapolated feature values, clipped extreme inputs). A page shows them next to the
result, choosing by class (`Note.category`), never by wording; returning them with the
result also keeps them when the result comes from Streamlit's cache. Note:
`warnings.catch_warnings` swaps process-wide state, so with concurrent sessions a
message may, rarely, be shown in the session that ran at the same moment instead;
results are never affected.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Note:
    """One distinct warning: its class and its full text."""

    category: type[Warning]
    text: str

    def is_a(self, *categories: type[Warning]) -> bool:
        """Whether this warning is of (a subclass of) one of `categories`."""
        return issubclass(self.category, categories)

    @property
    def title(self) -> str:
        """A short heading from the class (`summary` of cp2image's warnings), never cut from the text."""
        return getattr(self.category, "summary", None) or f"{self.category.__name__} from a library"


def call_collecting_warnings(func: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, list[Note]]:
    """`func(*args, **kwargs)` and the distinct warnings it raised, in order."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = func(*args, **kwargs)
    notes: list[Note] = []
    for item in caught:
        note = Note(item.category, str(item.message))
        if note not in notes:
            notes.append(note)
    return result, notes
