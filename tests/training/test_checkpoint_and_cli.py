"""Checkpoint files are atomic and complete; `cp2image train` wires flags and config files."""
from __future__ import annotations

import json

import pytest
import torch

from cp2image.cli import main
from cp2image.training import checkpoint as ckpt


def test_checkpoint_round_trips_tensors_and_state(tmp_path):
    tensors = {"net.w": torch.arange(6.0).view(2, 3), "rng": torch.get_rng_state()}
    ckpt.save_checkpoint(tmp_path / "c.safetensors", tensors, {"step": 7, "config": {"lr": 0.1}})
    loaded, state = ckpt.load_checkpoint(tmp_path / "c.safetensors")
    assert state == {"step": 7, "config": {"lr": 0.1}}
    assert all(torch.equal(loaded[k], v) for k, v in tensors.items())


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c.safetensors"
    ckpt.save_checkpoint(path, {"w": torch.zeros(2)}, {"step": 1})

    def explode(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(ckpt, "save_file", explode)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_checkpoint(path, {"w": torch.ones(2)}, {"step": 2})
    _, state = ckpt.load_checkpoint(path)
    assert state["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]  # no temp file left behind


def test_truncated_checkpoint_is_reported(tmp_path):
    path = tmp_path / "c.safetensors"
    ckpt.save_checkpoint(path, {"w": torch.zeros(100)}, {"step": 1})
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(ValueError, match="unreadable checkpoint"):
        ckpt.load_checkpoint(path)


def test_optimizer_state_round_trips(tmp_path):
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    net(torch.ones(4, 3)).sum().backward()
    opt.step()
    tensors, meta = ckpt.flatten_optimizer("optim.g", opt)
    fresh = torch.optim.Adam(net.parameters(), lr=0.5)
    ckpt.restore_optimizer("optim.g", fresh, tensors, json.loads(json.dumps(meta)))
    assert fresh.param_groups[0]["lr"] == 0.01
    for a, b in zip(opt.state.values(), fresh.state.values()):
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_train_command_reads_config_file_and_flags(blob_data, tmp_path, capsys):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text("steps = 50\nbatch_size = 8\nbase_filters = 4\nkernel_size = 3\nlog_every = 1\n"
                   "gamma_delay = [0, 0, 0, 0, 0]\n")
    code = main(["train", "--data", str(blob_data), "--out", str(tmp_path / "run"), "--config", str(cfg),
                 "--steps", "2", "--no-progress", "--grid-every", "2", "--threads", "1"])
    assert code == 0
    out = capsys.readouterr().out
    assert "trained cp2image to step 2" in out and "model:" in out
    saved = json.loads((tmp_path / "run" / "train_config.json").read_text())
    assert saved["steps"] == 2 and saved["batch_size"] == 8 and saved["progress"] is False
    provenance = json.loads((tmp_path / "run" / "model" / "config.json").read_text())["provenance"]
    assert provenance["command"].startswith("cp2image train --data")


def test_train_command_rejects_bad_option_in_config(blob_data, tmp_path, capsys):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"stepz": 3}))
    assert main(["train", "--data", str(blob_data), "--out", str(tmp_path / "r"), "--config", str(cfg)]) == 2
    assert "unknown training option" in capsys.readouterr().err


def test_train_command_balance_flags_set_class_balanced_sampling():
    from cp2image.cli import build_parser
    from cp2image.commands.train import _command_line, build_config

    args = build_parser().parse_args(["train", "--data", "d", "--out", "r", "--balance-by", "moa",
                                      "--balance-power", "0.5"])
    config = build_config(args)
    assert config.balance_by == "moa" and config.balance_power == 0.5
    assert "--balance-by moa --balance-power 0.5" in _command_line(args)
    default = build_config(build_parser().parse_args(["train", "--data", "d", "--out", "r"]))
    assert default.balance_by is None and default.balance_power == 1.0


def test_a_checkpoint_is_an_ordinary_file_under_the_umask(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = ckpt.save_checkpoint(tmp_path / "c.safetensors", {"w": torch.zeros(2)}, {"step": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
