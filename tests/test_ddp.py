"""Several processes: validation under DDP scores every window / review exactly once.

Lightning's own DistributedSamplerWrapper pads the shards to equal length by repeating items; the
DataModules' evaluation loaders hand Lightning an unpadded interleaved share instead
(:func:`seqlight.data.windows.shard_for_evaluation`). The DDP runs here use 2 CPU processes (gloo); each
rank records the items of its validation batches (tests/helpers/eval_coverage.py, checked against the
tensors it received), and the union must be the split, once each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from seqlight.data.windows import RowSampler, shard_for_evaluation

ROOT = Path(__file__).resolve().parents[1]
HELPERS = Path(__file__).resolve().parent / "helpers"


def _trainer(world: int, rank: int, use_distributed_sampler: bool = True):
    return SimpleNamespace(
        distributed_sampler_kwargs={"num_replicas": world, "rank": rank} if world > 1 else None,
        _accelerator_connector=SimpleNamespace(use_distributed_sampler=use_distributed_sampler),
    )


@pytest.mark.parametrize("world", [2, 3, 4])
def test_shards_partition_the_order_without_padding(world):
    rows = RowSampler([7, 3, 3, 9, 1, 0, 5, 8, 2, 6, 4])  # 11 items, a repeated row (the book's wrap-around)
    shards = [list(shard_for_evaluation(rows, _trainer(world, r))) for r in range(world)]
    assert [len(s) for s in shards] == [len(range(r, 11, world)) for r in range(world)]
    assert shards == [rows.rows.tolist()[r::world] for r in range(world)]  # Lightning's interleaving, unpadded


def test_one_process_or_opt_out_keeps_the_sampler():
    rows = RowSampler([1, 2, 3])
    assert shard_for_evaluation(rows, None) is rows
    assert shard_for_evaluation(rows, _trainer(1, 0)) is rows
    assert shard_for_evaluation(rows, _trainer(2, 0, use_distributed_sampler=False)) is rows


def _seqlight(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HELPERS), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "seqlight", *args, "--trainer.enable_progress_bar=false", "--num_threads", "1"]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _records(out: Path, fn: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.glob(f"{fn}-rank*.json"))]


def _check_once(records: list[dict], world: int) -> None:
    assert [r["rank"] for r in records] == list(range(world)) and {r["world_size"] for r in records} == {world}
    split = records[0]["split_items"]
    seen = Counter(i for r in records for i in r["items"])
    assert seen == Counter(split), "validation scored some items twice or missed some"
    assert sum(len(r["items"]) for r in records) == len(split)
    assert len(records[0]["items"]) != len(records[1]["items"]), "the test wants uneven shards (no padding)"


def _ddp_then_single(tmp_path: Path, config: str, data_args: list[str], name: str):
    callback = ["--trainer.callbacks+=eval_coverage.RecordValidation", f"--trainer.callbacks.out={tmp_path / 'rec'}"]
    common = ["--config", str(ROOT / "configs" / f"{config}.yaml"), *data_args, *callback]
    p = _seqlight(
        tmp_path, "fit", *common, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
        "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    run = tmp_path / "runs" / name / "version_0"
    ddp = _records(tmp_path / "rec", "fit")
    _check_once(ddp, 2)
    # one process validates the same weights (the checkpoint of the single epoch)
    p = _seqlight(tmp_path, "validate", *common, "--ckpt_path", str(run / "checkpoints" / "last.ckpt"))
    assert p.returncode == 0, p.stderr[-3000:]
    (single,) = _records(tmp_path / "rec", "validate")
    assert Counter(single["items"]) == Counter(ddp[0]["split_items"])
    summary = json.loads((run / "metrics.json").read_text())
    return ddp, single, summary


@pytest.mark.slow
def test_jena_ddp_validation_scores_every_window_once(jena_dir, tmp_path):
    # 3 batches of 5 rows: 15 windows, 8 on rank 0 and 7 on rank 1 (Lightning's wrapper would pad to 16)
    data = ["--data.init_args.source", "synthetic", "--data.init_args.data_dir", str(jena_dir),
            "--data.init_args.batch_size", "5", "--data.init_args.steps_per_epoch", "4",
            "--data.init_args.val_steps", "3"]  # fmt: skip
    ddp, single, summary = _ddp_then_single(tmp_path, "jena_dense", data, "jena_dense")
    # val/mae is a torchmetrics MeanAbsoluteError: its sums are synchronised, so DDP's value is the whole split's
    assert ddp[0]["metrics"]["val/mae"] == pytest.approx(single["metrics"]["val/mae"], abs=1e-6)
    assert ddp[1]["metrics"]["val/mae"] == pytest.approx(single["metrics"]["val/mae"], abs=1e-6)
    assert summary["metrics"]["val/mae"]["last"] == pytest.approx(single["metrics"]["val/mae"], abs=1e-6)
    assert summary["baseline"]["batches"] == {"val": 4}  # rank 0's 2 batches x 2 ranks: all 15 rows


IMDB_DATA = ["--data.init_args.source", "synthetic", "--data.init_args.synthetic_size", "26",
             "--data.init_args.batch_size", "4", "--data.init_args.maxlen", "20"]  # fmt: skip


@pytest.fixture(scope="module")
def imdb_ddp(tmp_path_factory):
    """One DDP fit of imdb_embedding (2 CPU processes) and one single-process validate of its checkpoint."""
    tmp_path = tmp_path_factory.mktemp("imdb_ddp")
    data = [*IMDB_DATA, "--data.init_args.data_dir", str(tmp_path / "datasets")]
    return _ddp_then_single(tmp_path, "imdb_embedding", data, "imdb_embedding")


@pytest.mark.slow
def test_imdb_ddp_validation_scores_every_review_once(imdb_ddp):
    # 52 synthetic reviews, validation_split 0.2: the last 11 validate, 6 on rank 0 and 5 on rank 1
    ddp, single, summary = imdb_ddp
    assert len(single["items"]) == 11 and [len(r["items"]) for r in ddp] == [6, 5]
    assert summary["hardware"]["devices"] == 2
    # the metric states are summed across processes: every rank logs the whole split's value, every review once
    for name in ("val/acc", "val/loss"):
        for r in ddp:
            assert r["metrics"][name] == pytest.approx(single["metrics"][name], abs=1e-6), name


@pytest.mark.slow
def test_imdb_ddp_logged_val_acc_is_the_whole_splits(imdb_ddp):
    ddp, single, summary = imdb_ddp
    assert summary["metrics"]["val/acc"]["last"] == pytest.approx(single["metrics"]["val/acc"], abs=1e-6)
