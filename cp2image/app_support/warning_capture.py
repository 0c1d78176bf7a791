"""Run a computation and hand its warnings back as messages for the page to show.

Library code warns about soft problems (extrapolated feature values, clipped extreme
inputs). A page shows them next to the result; returning them with the result also
keeps them when the result comes from Streamlit's cache. Note: `warnings.catch_warnings`
swaps process-wide state, so with concurrent sessions a message may, rarely, be shown
in the session that ran at the same moment instead; results are never affected.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def call_collecting_warnings(func: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, list[str]]:
    """`func(*args, **kwargs)` and the distinct warning messages it raised, in order."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = func(*args, **kwargs)
    messages: list[str] = []
    for item in caught:
        text = str(item.message)
        if text not in messages:
            messages.append(text)
    return result, messages
