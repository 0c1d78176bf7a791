"""Where tasks run: a LocalCluster on this machine, or an existing dask scheduler.

Workers are processes with one thread each. The measurement and rendering code is
numpy/numba that holds the GIL for much of its time, so threads in one process
would not run it in parallel; and with processes every task and result is pickled,
exactly as it is when the workers live on other machines.

dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536`` so that freed
memory goes back to the OS. Setting that variable at all switches off glibc's
adaptive mmap threshold: every temporary array over 128 KiB is then mmap-ed and
unmapped again, and feature measurement spent 1.7× the CPU time per crop (19.6 vs
11.7 ms, mostly system time, measured here). The LocalCluster started here leaves
it unset; workers of an existing cluster should be started the same way (see
docs/performance.md).

dask's background work is tuned for an interactive dashboard, and it costs CPU per
second of wall time whatever the tasks do. Measured on an idle 2-worker LocalCluster
here: about 100 CPU-ms per second in all (41 in the process hosting the scheduler,
nannies and client; 28 in each worker), i.e. 5 % of two cores, more under load.
`LEAN_LOCAL_CLUSTER` switches off the workers' statistical profiler (a thread that
samples the task thread 100 times a second, for the dashboard's profile page) and
slows the event-loop health tick (20 ms → 500 ms), the system monitor
(500 ms → 2 s) and the memory-limit check (100 ms → 500 ms); idle cost ≈ 12 CPU-ms/s.
With `dashboard=True` the profiler stays on.
"""
from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

log = logging.getLogger(__name__)


def available_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


# dask settings for a LocalCluster started here (see the module docstring)
LEAN_LOCAL_CLUSTER: dict[str, object] = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "500ms",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "500ms",
}


@dataclass(frozen=True)
class ClusterConfig:
    """How to get a dask `Client`. The default is a LocalCluster with one worker per core."""

    scheduler: str | None = None  # address of a running scheduler (tcp://host:8786); None = start a LocalCluster
    n_workers: int | None = None  # LocalCluster worker processes; None = one per available core
    threads_per_worker: int = 1  # numpy/numba work holds the GIL: parallelism comes from processes
    memory_limit: str = "auto"  # per LocalCluster worker ("auto" = machine memory / workers); "4GiB" etc.
    dashboard: bool = False  # serve the dask dashboard (LocalCluster only; port 8787)
    connect_timeout: float = 30.0  # seconds to wait for `scheduler` before giving up

    def __post_init__(self) -> None:
        if self.n_workers is not None and self.n_workers < 1:
            raise ValueError(f"n_workers must be a positive number of worker processes, got {self.n_workers}")
        if self.threads_per_worker < 1:
            raise ValueError(f"threads_per_worker must be >= 1, got {self.threads_per_worker}")
        if self.scheduler is not None and not self.scheduler.strip():
            raise ValueError("scheduler address is empty; give tcp://HOST:PORT or leave it out for a LocalCluster")

    @property
    def workers(self) -> int:
        """LocalCluster size this config asks for."""
        return self.n_workers or available_cores()


@contextmanager
def dask_client(config: ClusterConfig | None = None) -> Iterator["distributed.Client"]:  # noqa: F821
    """A `distributed.Client`, closed (and its LocalCluster stopped) on exit.

    With `config.scheduler` set, connects to that scheduler and leaves its cluster
    running; otherwise starts a LocalCluster of `config.workers` processes here.
    """
    import dask
    from distributed import Client

    config = config or ClusterConfig()
    if config.scheduler is not None:
        try:
            client = Client(config.scheduler, timeout=config.connect_timeout)
        except (OSError, TimeoutError) as err:
            raise ConnectionError(
                f"cannot reach the dask scheduler at {config.scheduler!r} ({err}); start one with "
                "`dask scheduler` and workers with `dask worker ADDRESS`, or leave out --scheduler for a local cluster"
            ) from err
        log.info("connected to dask scheduler %s (%d worker threads)", config.scheduler, sum(client.nthreads().values()))
        try:
            yield client
        finally:
            client.close()
        return
    lean = dict(LEAN_LOCAL_CLUSTER)
    if config.dashboard:  # the dashboard's profile page needs the workers' profiler
        del lean["distributed.worker.profile.enabled"]
    with dask.config.set(lean):  # read by the scheduler and nannies here and passed on to the workers
        cluster = _local_cluster(config)
    client = Client(cluster)
    log.info("started a LocalCluster of %d worker process(es)", config.workers)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _local_cluster(config: ClusterConfig) -> "distributed.LocalCluster":  # noqa: F821
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=config.workers,
        threads_per_worker=config.threads_per_worker,
        processes=True,
        memory_limit=config.memory_limit,
        dashboard_address=":8787" if config.dashboard else None,
        # the scheduler serves /health and /metrics even without a dashboard, on 8787 unless told
        # otherwise: a free port avoids clashing with (and warning about) another cluster on this machine
        scheduler_kwargs=None if config.dashboard else {"dashboard_address": ":0"},
        silence_logs=logging.WARNING,
    )


def add_cluster_arguments(parser: argparse.ArgumentParser, *, jobs_help: str = "worker processes") -> None:
    """`--jobs/-j N` (LocalCluster size) and `--scheduler ADDRESS` (an existing dask cluster)."""
    parser.add_argument("--jobs", "-j", type=int, default=-1,
                        help=f"{jobs_help} of the local dask cluster (-1 = one per core; default)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="run the tasks on an existing dask cluster (e.g. tcp://10.0.0.5:8786) instead of a "
                        "local one; its workers need cp2image installed (and, for `features`, nothing else)")


def cluster_config_from_args(args: argparse.Namespace) -> ClusterConfig:
    """ClusterConfig from `--jobs` / `--scheduler`; --jobs 0 is an error, negative counts from all cores."""
    if args.jobs == 0:
        raise ValueError("--jobs must be a positive number of workers or negative (-1 = all cores), not 0")
    workers = args.jobs if args.jobs > 0 else max(1, available_cores() + 1 + args.jobs)
    return ClusterConfig(scheduler=args.scheduler, n_workers=workers)
