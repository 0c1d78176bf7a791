"""Submit work to dask and get results back in order, with bounded memory.

Datasets must come out in a fixed row order (plan order for a simulated screen,
chunk order for measured features) whatever the workers' timing. Submitting all
tasks at once (`client.map`) would ship every input to the cluster up front —
for 480k crops, the whole image array. So at most `max_in_flight` tasks are
submitted; when the oldest finishes its result is yielded and one more task is
submitted. Scheduling (which worker runs what, retries, work stealing) is dask's.

Results travel as pickled bytes (`_packed_call`). A worker estimates the size of
every result it holds with `dask.sizeof`, which walks a pandas DataFrame column by
column: 8–14 ms per call for a 128-row × 493-column feature chunk, several calls per
task, about 50 ms of the worker's event-loop CPU per task (measured with py-spy on a
2-worker LocalCluster). For bytes the size is their length. Pickling the result costs
the worker about 0.2 ms, and dask would have pickled it for the trip anyway.
"""
from __future__ import annotations

import logging
import pickle
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
            pending.append((item, client.submit(_packed_call, fn, item, pure=False)))
            return

    try:
        for _ in range(max_in_flight):
            submit_next()
        while pending:
            item, future = pending.popleft()
            result = pickle.loads(future.result())
            future.release()
            submit_next()
            if progress is not None:
                progress(item, result)
            yield item, result
    finally:
        if pending:
            client.cancel([f for _, f in pending])


def _packed_call(fn: Callable[[T], R], item: T) -> bytes:
    """Run on a worker: `fn(item)`, pickled (see the module docstring for why)."""
    return pickle.dumps(fn(item), protocol=pickle.HIGHEST_PROTOCOL)


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
