"""Exact resume: a fit killed with SIGKILL mid-epoch and resumed with ``--ckpt_path last`` ends where an
uninterrupted run ends, bit for bit, in the same run folder, with the same best checkpoint and curves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
HELPERS = Path(__file__).resolve().parent / "helpers"


def _fit(cwd: Path, jena_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    args = [
        sys.executable, "-m", "seqlight", "fit", "--config", str(ROOT / "configs" / "jena_gru_dropout.yaml"),
        "--data.init_args.source", "synthetic", "--data.init_args.data_dir", str(jena_dir),
        "--data.init_args.steps_per_epoch", "4", "--data.init_args.val_steps", "2", "--trainer.max_epochs", "3",
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HELPERS), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _scalars(run: Path, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def _checkpoint_state(ckpt: dict) -> dict:
    return next(v for k, v in ckpt["callbacks"].items() if k.startswith("ModelCheckpoint"))


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_is_exact(jena_dir, tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    whole.mkdir(), killed.mkdir()
    p = _fit(whole, jena_dir)
    assert p.returncode == 0, p.stderr[-3000:]

    # killed during the third step of the second epoch: last.ckpt then holds the first epoch
    p = _fit(
        killed,
        jena_dir,
        "--trainer.callbacks+=sigkill_callback.SigkillAt",
        "--trainer.callbacks.epoch=1",
        "--trainer.callbacks.batch=2",
    )
    assert p.returncode == -9, (p.returncode, p.stderr[-3000:])
    run = killed / "runs" / "jena_gru_dropout" / "version_0"
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == 0
    p = _fit(killed, jena_dir, "--ckpt_path", "last")
    assert p.returncode == 0, p.stderr[-3000:]
    assert "best validation MAE" in p.stdout

    # the same run folder, no second one
    assert sorted(d.name for d in run.parent.iterdir()) == ["version_0"]
    a = torch.load(whole / "runs" / "jena_gru_dropout" / "version_0" / "checkpoints" / "last.ckpt", weights_only=False)
    b = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert a["epoch"] == b["epoch"] == 2 and a["global_step"] == b["global_step"]
    for name, tensor in a["state_dict"].items():
        assert torch.equal(tensor, b["state_dict"][name]), name
    # the best checkpoint and score survive the resume
    sa, sb = _checkpoint_state(a), _checkpoint_state(b)
    assert float(sa["best_model_score"]) == float(sb["best_model_score"])
    assert Path(sa["best_model_path"]).name == Path(sb["best_model_path"]).name
    # the TensorBoard curve continues: one validation point per epoch, identical to the uninterrupted run's
    assert _scalars(run, "val/mae") == _scalars(whole / "runs" / "jena_gru_dropout" / "version_0", "val/mae")
    # ... and so does metrics.json: every epoch's values, the training ones of the checkpoint's epoch included
    ma = json.loads((whole / "runs" / "jena_gru_dropout" / "version_0" / "metrics.json").read_text())["metrics"]
    mb = json.loads((run / "metrics.json").read_text())["metrics"]
    assert {k: v["history"] for k, v in ma.items()} == {k: v["history"] for k, v in mb.items()}
