"""Two gloo DDP processes on the CPU keep identical weights and finite losses at every
checkpoint. The trainer writes checkpoints on rank 0 only, so each child process wraps
`Trainer._checkpoint` to also save its own rank's parameters and optimiser state; that
wrapper is test instrumentation, the training is the real `Trainer`.
(`tests/training/test_trainer.py` checks the DDP run against a one-process run.)"""
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

REPO = Path(__file__).resolve().parents[2]
CONFIG = dict(steps=6, batch_size=8, base_filters=4, kernel_size=3, latent_dim=8, gamma=[0.1] * 5,
              gamma_delay=[0, 1, 2, 3, 4], gamma_ramp=[2] * 5, log_every=2, grid_every=3, checkpoint_every=3,
              grid_cells=4, progress=False, seed=0)

CHILD = """
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


@pytest.mark.slow
def test_two_gloo_ranks_hold_the_same_weights_and_finite_losses(tmp_path):
    data = _blobs(tmp_path / "data")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank in range(2):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen([sys.executable, "-c", CHILD, str(data), str(tmp_path / "run"), json.dumps(CONFIG)],
                                      env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    for step in (3, 6):
        ranks = [load_file(str(tmp_path / f"rank{r}-step{step}.safetensors")) for r in range(2)]
        params = [k for k in ranks[0] if "running_" not in k and "num_batches_tracked" not in k]
        assert params and ranks[0].keys() == ranks[1].keys()
        for key in params:  # DDP all-reduces gradients: every rank applies the same update
            torch.testing.assert_close(ranks[1][key], ranks[0][key], rtol=0, atol=0, msg=key)
        losses = [json.loads((tmp_path / f"rank{r}-step{step}.json").read_text()) for r in range(2)]
        assert losses[0] and losses[0] == losses[1]  # logged losses are averaged over the ranks
        assert all(math.isfinite(v) for v in losses[0].values())
