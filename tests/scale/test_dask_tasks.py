"""Per-batch / per-well work runs as tasks on a real dask LocalCluster of two worker processes.

Why processes (the default `processes=True`) and not `processes=False`: with worker
threads in this process, functions and arrays would be handed over by reference, so a
task that cannot be pickled — or a function the workers cannot import — would pass
here and fail on a real cluster. With worker processes every task and result crosses
a process boundary as it does between machines. The cluster is started once per module
(a start costs seconds on a loaded machine); `--scheduler ADDRESS` is exercised by
pointing the commands at this cluster's scheduler.
"""
from __future__ import annotations

import os
import socket
import sys
import time

import cloudpickle
import numpy as np
import pandas as pd
import pytest

from cp2image.cli import main
from cp2image.data import open_dataset, write_dataset
from cp2image.data.simulate.pipeline import SimulationConfig, simulate_screen, simulate_well
from cp2image.data.simulate.screen import ScreenConfig, plan_screen
from cp2image.distributed import ClusterConfig, dask_client, ordered_results
from cp2image.features import FAILED_COLUMN, MeasureConfig, measure

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module

SMALL = ScreenConfig(n_cells=24, seed=3, replicates=1, dmso_wells_per_plate=1, compounds=("taxol",))


def _slow_identity(i: int) -> tuple[int, int]:
    """Later items finish first, so results come back out of order unless put in order."""
    time.sleep(0.05 * (8 - i))
    return i, os.getpid()


def _environment_variable(name: str) -> str | None:
    """The variable as the process running this sees it. (`client.run(os.environ.get, name)` would
    pickle this process's `os.environ` along with its bound method and read that copy.)"""
    return os.environ.get(name)


def _fail_on_two(i: int) -> int:
    if i == 2:
        raise ValueError(f"task {i} failed on purpose")
    return i


@pytest.fixture(scope="module")
def client():
    # tests/conftest.py gives this process one BLAS thread through the environment, which workers
    # would inherit; they start without it, so the one-thread check below sees what the cluster sets.
    inherited = pytest.MonkeyPatch()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        inherited.delenv(var, raising=False)
    try:
        with dask_client(ClusterConfig(n_workers=2)) as c:
            inherited.undo()
            yield c
    finally:
        inherited.undo()


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    """40 rendered crops (no measurement) from the simulator: realistic cells, seeded."""
    config = SimulationConfig(screen=ScreenConfig(n_cells=40, seed=1, replicates=1, dmso_wells_per_plate=1,
                                                  compounds=("taxol",)), measure=False)
    images = [simulate_well(plan, config=config)[0] for plan in plan_screen(config.screen)[:4]]
    return np.concatenate(images)


def test_local_cluster_has_two_worker_processes_besides_this_one(client):
    workers = client.scheduler_info()["workers"]
    assert len(workers) == 2
    assert all(w["nthreads"] == 1 for w in workers.values())
    pids = set(client.run(os.getpid).values())
    assert len(pids) == 2 and os.getpid() not in pids


def test_workers_keep_glibc_adaptive_malloc_and_one_blas_thread(client):
    """dask's default MALLOC_TRIM_THRESHOLD_ made measuring 1.7× dearer in CPU (see cluster.py)."""
    assert set(client.run(_environment_variable, "MALLOC_TRIM_THRESHOLD_").values()) == {None}
    assert set(client.run(_environment_variable, "OMP_NUM_THREADS").values()) == {"1"}


def test_workers_run_without_the_dashboard_profiler_and_with_a_slow_tick(client):
    """dask's background threads cost ~100 CPU-ms per second on an idle 2-worker cluster (cluster.py)."""
    import dask

    settings = client.run(lambda: (dask.config.get("distributed.worker.profile.enabled"),
                                   dask.config.get("distributed.admin.tick.interval")))
    assert set(settings.values()) == {(False, "500ms")}


def test_results_come_back_in_item_order_from_both_workers(client):
    out = list(ordered_results(client, _slow_identity, range(8)))
    assert [item for item, _ in out] == list(range(8))
    assert [result[0] for _, result in out] == list(range(8))
    assert len({pid for _, (_, pid) in out}) == 2


def test_only_max_in_flight_items_are_taken_before_the_first_result(client):
    pulled = []

    def items():
        for i in range(20):
            pulled.append(i)
            yield i

    results = ordered_results(client, _fail_on_two, items(), max_in_flight=3)
    assert next(results) == (0, 0)
    assert len(pulled) == 4  # three submitted, plus one more once the first came back
    assert next(results) == (1, 1)


def test_a_failing_task_raises_here_and_cancels_the_rest(client):
    with pytest.raises(ValueError, match="task 2 failed on purpose"):
        list(ordered_results(client, _fail_on_two, range(10)))


def test_measure_on_the_cluster_equals_measure_in_process(client, crops):
    config = MeasureConfig(chunk_size=8)  # five chunks → five tasks
    here = measure(crops, config=config)
    there = measure(crops, client=client, config=config)
    assert len(there) == len(crops) and not there[FAILED_COLUMN].all()
    pd.testing.assert_frame_equal(there, here)


def test_simulate_on_an_existing_scheduler_equals_the_in_process_run(client, tmp_path):
    config = SimulationConfig(screen=SMALL)
    here = open_dataset(simulate_screen(tmp_path / "here", config))
    there = open_dataset(simulate_screen(tmp_path / "there", config,
                                         cluster=ClusterConfig(scheduler=client.scheduler.address)))
    np.testing.assert_array_equal(np.asarray(there.images), np.asarray(here.images))
    pd.testing.assert_frame_equal(there.cells, here.cells)
    assert "normalisation" not in there.meta and "normalisation" not in here.meta  # nothing reads it (issue 18)


def test_features_command_runs_on_an_existing_scheduler(client, crops, tmp_path, capsys):
    cells = pd.DataFrame({"Metadata_Plate": "P1", "Metadata_Well": "B02", "Metadata_Compound": "DMSO",
                          "Metadata_Concentration": 0.0}, index=range(len(crops)))
    path = write_dataset(tmp_path / "ds", crops, cells)
    assert main(["features", str(path), "--scheduler", client.scheduler.address, "--no-progress"]) == 0
    assert f"measured 492 features on {len(crops)} crops" in capsys.readouterr().out
    stored = open_dataset(path).cells
    expected = measure(crops)
    pd.testing.assert_frame_equal(stored[expected.columns], expected)


def test_an_unreachable_scheduler_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    with pytest.raises(ConnectionError, match="cannot reach the dask scheduler"):
        with dask_client(ClusterConfig(scheduler=f"tcp://127.0.0.1:{port}", connect_timeout=2)):
            pass


def test_cluster_config_rejects_nonsense():
    with pytest.raises(ValueError, match="n_workers must be a positive"):
        ClusterConfig(n_workers=0)
    with pytest.raises(ValueError, match="scheduler address is empty"):
        ClusterConfig(scheduler=" ")
