"""Timing, FLOP counting, peak-memory and machine helpers shared by the benchmarks.

Absolute times on a shared machine are noisy, so every figure is repeated and
reported as min and median, and speeds are compared with references measured in
the same process (the machine's fp32 matmul peak, training's consumption rate).
"""
from __future__ import annotations

import datetime as _dt
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Context:
    """Settings and shared references for one run."""

    quick: bool
    repeats: int
    peak_gflops: float | None = None  # this run's fp32 matmul peak on CPU
    gpu_peak_gflops: dict[str, float] = field(default_factory=dict)  # dtype → GFLOP/s
    train_samples_per_s: float | None = None  # training's consumption, for the loader ratio
    cache: dict[str, Any] = field(default_factory=dict)

    def fraction_of_peak(self, gflops: float | None) -> float | None:
        if gflops is None or not self.peak_gflops:
            return None
        return gflops / self.peak_gflops


@dataclass
class Section:
    """A group of rows produced by one function; `names` are the rows it must yield."""

    key: str
    title: str
    names: Callable[[Context], list[str]]
    run: Callable[[Context], list[Row]]
    gpu_only: bool = False
    full_only: bool = False  # skipped by --quick (too slow for the CI smoke run)


@dataclass
class Timing:
    """Seconds per call over repeats (each repeat may average several calls)."""

    seconds: list[float]
    cpu_seconds: list[float] = field(default_factory=list)  # this process's CPU time per call, same repeats

    @property
    def cpu_median(self) -> float | None:
        return statistics.median(self.cpu_seconds) if self.cpu_seconds else None

    @property
    def min(self) -> float:
        return min(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def time_call(fn: Callable[[], Any], *, repeats: int = 5, warmup: int = 1,
              number: int = 1, sync: Callable[[], None] | None = None) -> Timing:
    """Time `fn` `repeats` times (each the mean of `number` calls) after `warmup` calls.

    `sync` (e.g. torch.cuda.synchronize) is called before reading the clock so that
    asynchronous devices are timed honestly.
    """
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    seconds, cpu = [], []
    for _ in range(repeats):
        gc.collect()
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(number):
            fn()
        if sync:
            sync()
        seconds.append((time.perf_counter() - start) / number)
        cpu.append((time.process_time() - start_cpu) / number)
    return Timing(seconds, cpu)


@dataclass
class Row:
    """One line of the results table.

    `median`/`min` are the figure itself (a rate or a time); for rates `min` is the
    *worst* repeat, i.e. computed from the slowest time, so min ≤ median always.
    `ratio` is the figure relative to its named `reference` measured in the same run.
    `status` is "ok" or "not available: <reason>".
    """

    section: str
    name: str
    unit: str = ""
    median: float | None = None
    min: float | None = None
    ratio: float | None = None
    reference: str = ""
    target: str = ""
    met: bool | None = None
    note: str = ""
    status: str = "ok"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rate_row(section: str, name: str, timing: Timing, *, items: float, unit: str,
             **kwargs: Any) -> Row:
    """A throughput row: `items` processed per timed call → items/s (median, worst)."""
    return Row(section, name, unit=unit, median=items / timing.median,
               min=items / max(timing.seconds), **kwargs)


def time_row(section: str, name: str, timing: Timing, *, scale: float = 1e3,
             unit: str = "ms", **kwargs: Any) -> Row:
    """A latency row (milliseconds by default): median and best."""
    return Row(section, name, unit=unit, median=timing.median * scale,
               min=timing.min * scale, **kwargs)


def unavailable(section: str, name: str, reason: str, **kwargs: Any) -> Row:
    """A row for a stage that cannot be measured here, with the reason."""
    reason = " ".join(str(reason).split())[:200]
    return Row(section, name, status=f"not available: {reason}", **kwargs)


# ----------------------------------------------------------------------------- torch


def matmul_peak(*, n: int = 2048, repeats: int = 5, device: str = "cpu",
                dtype_name: str = "float32") -> tuple[Timing, float]:
    """Time torch.matmul of two n×n matrices; return (timing, FLOPs per call = 2n³)."""
    import torch

    dtype = getattr(torch, dtype_name)
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device.startswith("cuda") else None
    with torch.no_grad():
        timing = time_call(lambda: torch.matmul(a, b), repeats=repeats, warmup=2, sync=sync)
    return timing, 2.0 * n ** 3


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of one call of `fn`, counted by torch.utils.flop_counter.FlopCounterMode.

    The counter sees every matmul/convolution dispatched inside `fn` (forward and,
    if `fn` calls backward, the backward too); element-wise ops are not counted,
    so the achieved-FLOP/s figures derived from it are slight underestimates.
    """
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


# ----------------------------------------------------------------------------- memory


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB (Linux reports KiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024.0 if sys.platform != "darwin" else kib / 1024.0 / 1024.0


def run_python_json(code: str, *, timeout: float = 600.0, env: dict[str, str] | None = None) -> dict:
    """Run `code` in a fresh interpreter; its last stdout line must be a JSON object.

    Used where a figure needs a clean process (peak RSS of one workload).
    """
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env.setdefault("PYTHONPATH", str(REPO_ROOT))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, cwd=str(REPO_ROOT), env=full_env)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"child exited {proc.returncode}: {' | '.join(tail)}")
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.strip()]
    return json.loads(lines[-1])


# ----------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_info() -> dict[str, Any]:
    """Machine, library versions and date, stored with every result file."""
    import numpy
    import torch

    info: dict[str, Any] = {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1)
        if hasattr(os, "sysconf") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "git_commit": _git_commit(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        # other processes competing for the CPUs while this ran (1, 5, 15-minute load averages)
        "load_average": [round(x, 1) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }
    for name in ("pandas", "streamlit", "cp_measure", "skimage"):
        try:
            module = __import__(name)
            info[name] = getattr(module, "__version__", "?")
        except ImportError:
            info[name] = None
    return info
