"""`benchmarks/run.py --quick` is the CI smoke test of the benchmark runner.

It asserts only that every row was produced (a figure, not "not available"), never a
timing: speeds on a shared machine are reported by the runner, not tested.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = REPO_ROOT / "benchmarks"


def _expected_rows(cuda: bool) -> list[tuple[str, str]]:
    sys.path.insert(0, str(BENCH_DIR))
    try:
        import run
        return run.expected_row_names(quick=True, cuda=cuda)
    finally:
        sys.path.remove(str(BENCH_DIR))


@pytest.fixture(scope="module")
def quick_result(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    # One repeat per figure: this test checks that every row is produced, not the figures, and a
    # second repeat only measures the same code again (the sections that repeat took 124 s with one
    # repeat vs 178 s with two, back-to-back runs at load ≈ 12, so roughly; the simulator section does not repeat).
    proc = subprocess.run(
        [sys.executable, str(BENCH_DIR / "run.py"), "--quick", "--repeats", "1", "--json", str(out)],
        # ~1–2 min on two free cores; the limit allows a machine shared by several jobs (load 25: ~10 min)
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    result["stdout"] = proc.stdout
    return result


@pytest.mark.slow
def test_quick_run_produces_every_row_with_a_figure(quick_result):
    import torch

    expected = _expected_rows(torch.cuda.is_available())
    rows = {(r["section"], r["name"]): r for r in quick_result["rows"]}
    missing = [key for key in expected if key not in rows]
    assert not missing, f"rows not produced: {missing}"
    unavailable = {f"{s}: {n}": rows[(s, n)]["status"] for s, n in expected if rows[(s, n)]["status"] != "ok"}
    assert not unavailable, f"rows without a figure: {unavailable}"
    for key in expected:
        row = rows[key]
        assert row["median"] is not None and row["min"] is not None, key


@pytest.mark.slow
def test_quick_run_records_machine_versions_and_prints_a_markdown_table(quick_result):
    machine = quick_result["machine"]
    for field in ("date_utc", "cpu", "torch", "numpy", "python", "torch_threads"):
        assert machine[field], field
    assert quick_result["peak_gflops_fp32"] > 0
    lines = [ln for ln in quick_result["stdout"].splitlines() if ln.startswith("|")]
    assert lines[0].startswith("| Stage | Measure | Median")
    assert len(lines) == 2 + len(quick_result["rows"])
