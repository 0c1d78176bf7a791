"""A `cp2image simulate` killed with SIGKILL part-way resumes when the same command runs
again, and ends with exactly the dataset of an uninterrupted run: the same images, the
same cells.parquet bytes and the same dataset.json.

The command runs as a subprocess with its dask LocalCluster (one worker); the kill goes
to the whole process group once the journal records at least two of the nine wells, so
the resumed run has work to skip and work to do (`reliability_helpers.killed_run_resumes_identically`).
"""
from __future__ import annotations

import pytest
from reliability_helpers import killed_run_resumes_identically

ARGS = ["--cells", "36", "--seed", "4", "--replicates", "1", "--compounds", "taxol", "--jobs", "1", "--no-progress"]


@pytest.mark.slow
def test_a_killed_simulation_resumes_and_ends_identical_to_an_uninterrupted_one(tmp_path):
    killed_run_resumes_identically(lambda out: ["simulate", str(out), *ARGS], tmp_path, units=9, unit_name="wells")
