"""Training with two gloo DDP processes on the CPU (the torchrun path), in one place.

- Every rank holds the same weights and logs the same finite losses at every checkpoint.
  The trainer writes checkpoints on rank 0 only, so each child wraps `Trainer._checkpoint`
  to also save its own rank's parameters; that wrapper is test instrumentation, the
  training is the real `Trainer`.
- Two ranks with batch 4 each equal one process with batch 8 (DDP averages gradients).

Both launches must exit 0 on every rank: a rank that aborts in the process group's
teardown fails the test (no relaunch; `cp2image.training.runtime.stop` owns the teardown).
"""
from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from cp2image.data import write_dataset
from cp2image.training.checkpoint import load_checkpoint
from cp2image.training.config import TrainConfig
from cp2image.training.trainer import Trainer

REPO = Path(__file__).resolve().parents[2]
CONFIG = dict(steps=6, batch_size=8, base_filters=4, kernel_size=3, latent_dim=8, gamma=[0.1] * 5,
              gamma_delay=[0, 1, 2, 3, 4], gamma_ramp=[2] * 5, log_every=2, grid_every=3, checkpoint_every=3,
              grid_cells=4, progress=False, seed=0)

SPY_CHILD = """
import json, sys
from pathlib import Path
from safetensors.torch import save_file
from cp2image.training.config import TrainConfig
from cp2image.training.trainer import Trainer

data, out, config = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
original = Trainer._checkpoint

def spy(self, objective, ema, runtime, step, table, last, total_wall):
    tensors, _ = self._state_tensors(objective, ema)
    keep = {k: v.detach().cpu().contiguous() for k, v in tensors.items() if k.startswith(("net.", "optim."))}
    save_file(keep, str(out.parent / f"rank{runtime.rank}-step{step}.safetensors"))
    (out.parent / f"rank{runtime.rank}-step{step}.json").write_text(json.dumps(last))
    original(self, objective, ema, runtime, step, table, last, total_wall)

Trainer._checkpoint = spy
Trainer(TrainConfig(**config), data, out).run()
"""


def _blobs(path: Path, n: int = 40, size: int = 32) -> Path:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    r = np.hypot(yy, xx)
    radius = rng.uniform(4, 9, n)
    images = np.stack([np.stack([255 * (r <= k), 120 * (r <= 1.6 * k), 90 * ((r > k) & (r <= 1.6 * k))])
                       for k in radius]).astype(np.uint8)
    cells = pd.DataFrame({"Metadata_Plate": "P1", "Metadata_Well": "B02", "Metadata_Compound": "DMSO",
                          "Metadata_Concentration": 0.0, "Metadata_Split": "train",
                          "Nuclei_AreaShape_Area": np.pi * radius**2, "Cells_AreaShape_Area": np.pi * (1.6 * radius)**2})
    return write_dataset(path, images, cells)


def run_two_ranks(argv: list[str]) -> list[str]:
    """Start `python argv...` as ranks 0 and 1 of a gloo group (torchrun's environment); outputs of both.

    Fails unless both ranks exit 0, so an abort during teardown is a failure, not a retry.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank in range(2):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen([sys.executable, *argv], env=env, cwd=REPO, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    return outputs


@pytest.mark.slow
def test_two_gloo_ranks_hold_the_same_weights_and_finite_losses(tmp_path):
    data = _blobs(tmp_path / "data")
    run_two_ranks(["-c", SPY_CHILD, str(data), str(tmp_path / "run"), json.dumps(CONFIG)])
    for step in (3, 6):
        ranks = [load_file(str(tmp_path / f"rank{r}-step{step}.safetensors")) for r in range(2)]
        params = [k for k in ranks[0] if "running_" not in k and "num_batches_tracked" not in k]
        assert params and ranks[0].keys() == ranks[1].keys()
        for key in params:  # DDP all-reduces gradients: every rank applies the same update
            torch.testing.assert_close(ranks[1][key], ranks[0][key], rtol=0, atol=0, msg=key)
        losses = [json.loads((tmp_path / f"rank{r}-step{step}.json").read_text()) for r in range(2)]
        assert losses[0] and losses[0] == losses[1]  # logged losses are averaged over the ranks
        assert all(math.isfinite(v) for v in losses[0].values())


def _net_tensors(run: Path) -> dict[str, torch.Tensor]:
    tensors, _ = load_checkpoint(run / "checkpoint.safetensors")
    return {k: v for k, v in tensors.items() if k.startswith("net.")}


def test_two_process_gloo_run_matches_one_process_with_same_global_batch(tmp_path):
    """DDP averages gradients over ranks, so 2 × batch 4 must equal 1 × batch 8.

    Batch norm is switched off here: its statistics are per process on CPU (PyTorch's
    SyncBatchNorm needs CUDA; on GPUs `sync_batchnorm` makes them global). Tolerance:
    |Δw| ≤ 1e-5 + 1e-4·|w| after 4 Adam steps, from a different float summation order.
    The two ranks run the `cp2image train` command, as torchrun would start it.
    """
    data = _blobs(tmp_path / "data")
    cfg = TrainConfig(**{**CONFIG, "steps": 4, "batch_norm": False, "checkpoint_every": 4, "grid_every": 4})
    (tmp_path / "cfg.json").write_text(json.dumps(cfg.to_dict()))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Trainer(cfg, data, tmp_path / "single").run()
    finally:
        torch.set_num_threads(threads)
    run_two_ranks(["-m", "cp2image", "train", "--data", str(data), "--out", str(tmp_path / "ddp"),
                   "--config", str(tmp_path / "cfg.json"), "--device", "cpu"])
    single, ddp = _net_tensors(tmp_path / "single"), _net_tensors(tmp_path / "ddp")
    assert single and single.keys() == ddp.keys()
    for key in single:
        torch.testing.assert_close(ddp[key], single[key], atol=1e-5, rtol=1e-4, msg=key)
