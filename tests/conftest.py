"""Shared test settings: where the real BBBC021 data lives and the slow/real-data gates."""
from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# One BLAS / OpenMP thread per test process, set before any test module imports numpy or torch
# (they read these once, at import). pytest-xdist already runs one worker per core, so a second
# thread per worker only oversubscribes the cores, and OpenBLAS's threads spin while they wait
# (scipy's sqrtm of a 481-d covariance product, as every evaluation computes: 1.3 CPU-s with two
# threads, 0.17 with one). Whole suite, two fresh clones side by side at load 7-14: 652 -> 558
# CPU-s summed over the tests; tests/evaluation 140 -> 62. Child processes (commands, servers, the
# benchmark runner) inherit it. Set a variable yourself to override it.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("CP2IMAGE_SHARED", REPO_ROOT.parent / "shared"))
REAL_CELLS_NPZ = SHARED_DIR / "data" / "bbbc021-cells" / "bbbc021_cells_68x68.npz"
BBBC021_METADATA_DIR = SHARED_DIR / "data" / "bbbc021-metadata"
REAL_MOA_CELLS_NPZ = SHARED_DIR / "data" / "bbbc021-moa-cells" / "bbbc021_moa_cells_68x68.npz"
REAL_FIELDS_DIR = SHARED_DIR / "data" / "bbbc021-fields"
_RUNNER_MAIN = sys.modules.get("__main__")  # before any test runs a Streamlit script


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files holding `slow` tests first, for the two pytest-xdist workers (pyproject's addopts).

    `--dist loadfile` runs each test file whole on one worker, so a module-scoped fixture (a
    served app, a browser, a dask cluster, a benchmark run) is built once, not once per
    worker; `--no-loadscope-reorder` hands the files out in this order. Slow files first, so
    a long one does not start last and leave the other worker idle at the end. The sort is
    stable: files stay contiguous and keep their collection order within each part.
    (`--dist loadgroup` with `xdist_group` marks would do the same per group, but xdist 3.8
    loses the marks on pytest ≥ 9.2: pytest-dev/pytest-xdist#1386.)
    """
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


@pytest.fixture(scope="session")
def real_cells_npz() -> Path:
    """Path to the real BBBC021 crops; skips the test when ../shared is absent."""
    if not REAL_CELLS_NPZ.exists():
        pytest.skip(f"real BBBC021 crops not available at {REAL_CELLS_NPZ}")
    return REAL_CELLS_NPZ


@pytest.fixture(scope="session")
def real_moa_cells_npz() -> Path:
    """Path to the real BBBC021 crops of all 12 MoAs; skips the test when ../shared is absent."""
    if not REAL_MOA_CELLS_NPZ.exists():
        pytest.skip(f"real BBBC021 MoA crops not available at {REAL_MOA_CELLS_NPZ}")
    return REAL_MOA_CELLS_NPZ


@pytest.fixture(scope="session")
def real_fields_dir() -> Path:
    """The 8 raw BBBC021 TIFF fields (official layout); skips the test when ../shared is absent."""
    if not (REAL_FIELDS_DIR / "Week2" / "Week2_24381").is_dir():
        pytest.skip(f"real BBBC021 fields not available at {REAL_FIELDS_DIR}")
    return REAL_FIELDS_DIR


@pytest.fixture(scope="session")
def bbbc021_metadata_dir() -> Path:
    if not (BBBC021_METADATA_DIR / "BBBC021_v1_moa.csv").exists():
        pytest.skip(f"BBBC021 metadata not available at {BBBC021_METADATA_DIR}")
    return BBBC021_METADATA_DIR


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep unpacked datasets and Hub downloads out of the user's home during tests."""
    cache = tmp_path_factory.getbasetemp() / "cp2image-cache"
    monkeypatch.setenv("CP2IMAGE_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _runner_main_restored() -> Iterator[None]:
    """Put back the test runner's `__main__` after each test.

    Streamlit's AppTest leaves sys.modules["__main__"] pointing at app/Home.py. A dask
    LocalCluster started later in the same process spawns workers that re-import `__main__`
    by path and die on Home's `import warmup` ("Nanny failed to start"), unless some earlier
    test happened to put app/ on sys.path. Which tests ran earlier in a process depends on
    how xdist shares the files out, so the leak is closed here for every test.
    """
    yield
    if _RUNNER_MAIN is not None:
        sys.modules["__main__"] = _RUNNER_MAIN


@pytest.fixture(scope="session")
def shared_dask_client():
    """One dask LocalCluster of two worker processes for the whole run, started on first use.

    Starting a cluster costs 5-25 s on a loaded 2-core machine, so tests that only need
    *a* cluster (tasks equal in-process results, `--scheduler ADDRESS` reaches it) share
    this one: pass the client, or `--scheduler shared_dask_client.scheduler.address` to a
    command. Tests of starting a cluster (worker count, `--n-jobs`) start their own.
    """
    from cp2image.distributed import ClusterConfig, dask_client

    # Streamlit's AppTest leaves sys.modules["__main__"] pointing at app/Home.py; spawned dask
    # workers re-import __main__ by path and die on Home's `import page_kit`. Start them from
    # the test runner's own __main__.
    app_main, sys.modules["__main__"] = sys.modules.get("__main__"), _RUNNER_MAIN
    try:
        with dask_client(ClusterConfig(n_workers=2)) as client:
            sys.modules["__main__"] = app_main
            yield client
    finally:
        sys.modules["__main__"] = app_main
