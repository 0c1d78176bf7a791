"""Submit work to dask and get results back in order, with bounded memory.

Datasets must come out in a fixed row order (plan order for a simulated screen,
chunk order for measured features) whatever the workers' timing. Submitting all
tasks at once (`client.map`) would ship every input to the cluster up front —
for 480k crops, the whole image array. So at most `max_in_flight` tasks are
submitted; when the oldest finishes its result is yielded and one more task is
submitted. Scheduling (which worker runs what, retries, work stealing) is dask's.
"""
from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


def ordered_results(
    client: "distributed.Client",  # noqa: F821
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    max_in_flight: int | None = None,
    progress: Callable[[T, R], None] | None = None,
) -> Iterator[tuple[T, R]]:
    """Yield `(item, fn(item))` for every item, in the order of `items`.

    `fn` and each item are pickled to the workers, so `fn` must be importable
    there (a module-level function, not a lambda defined in `__main__`).
    `max_in_flight` defaults to twice the cluster's worker threads. A task that
    raises re-raises here; tasks still queued are cancelled.
    `progress(item, result)` is called as each result is yielded.
    """
    if max_in_flight is None:
        threads = sum(client.nthreads().values()) or 1
        max_in_flight = 2 * threads
    if max_in_flight < 1:
        raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
    todo = iter(items)
    pending: deque[tuple[T, Any]] = deque()

    def submit_next() -> None:
        for item in todo:
            # pure=False: a fresh key per call; hashing large numpy inputs for a key would cost time
            pending.append((item, client.submit(fn, item, pure=False)))
            return

    try:
        for _ in range(max_in_flight):
            submit_next()
        while pending:
            item, future = pending.popleft()
            result = future.result()
            future.release()
            submit_next()
            if progress is not None:
                progress(item, result)
            yield item, result
    finally:
        if pending:
            client.cancel([f for _, f in pending])


def map_in_order(
    client: "distributed.Client | None",  # noqa: F821
    fn: Callable[[T], R],
    items: Iterable[T],
) -> Iterator[tuple[T, R]]:
    """`ordered_results` on a dask client; without one, `fn(item)` here, one after another.

    For library functions that take an optional client: the command line always
    passes one (a LocalCluster or --scheduler); a plain call runs in process.
    """
    if client is not None:
        yield from ordered_results(client, fn, items)
        return
    for item in items:
        yield item, fn(item)
