"""The command line: every config parses and runs, and fit -> checkpoint -> reload works end to end."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
import torch
import yaml

from seqlight.cli import main

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def data_overrides(config: Path, jena_dir: Path, tmp_path: Path) -> list[str]:
    data = yaml.safe_load(config.read_text())["data"]["class_path"]
    if data.endswith("JenaDataModule"):
        return ["--data.init_args.source", "synthetic", "--data.init_args.data_dir", str(jena_dir)]
    return ["--data.init_args.source", "synthetic", "--data.init_args.data_dir", str(tmp_path / "datasets")]


def run(args: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(args)
    return out.getvalue()


def test_configs_exist():
    names = {c.stem for c in CONFIGS}
    assert {"jena_naive", "jena_dense", "jena_gru"} <= names


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_config_prints(config, jena_dir, tmp_path):
    text = config.read_text()
    assert text.startswith("# Deep Learning with Python"), "each config names its book section first"
    with pytest.raises(SystemExit) as e:
        run(["fit", "--config", str(config), *data_overrides(config, jena_dir, tmp_path), "--print_config"])
    assert e.value.code == 0


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_config_runs_one_batch(config, jena_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sub = "validate" if config.stem == "jena_naive" else "fit"
    out = run(
        [
            sub,
            "--config",
            str(config),
            *data_overrides(config, jena_dir, tmp_path),
            "--trainer.fast_dev_run=true",
            "--trainer.enable_progress_bar=false",
        ]
    )
    # the run reached its end-of-run report, with a validation score
    assert f"({sub})" in out and "validation" in out, out
    # fast_dev_run writes no checkpoint and no run folder anywhere
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "runs").exists()


def test_fit_checkpoint_reload_validate_test_predict(jena_dir, tmp_path, monkeypatch):
    from seqlight.models import DenseForecaster

    monkeypatch.chdir(tmp_path)
    small = [
        "--config",
        str(Path(__file__).resolve().parents[1] / "configs" / "jena_dense.yaml"),
        "--data.init_args.source",
        "synthetic",
        "--data.init_args.data_dir",
        str(jena_dir),
        "--data.init_args.steps_per_epoch",
        "4",
        "--data.init_args.val_steps",
        "3",
        "--data.init_args.test_steps",
        "2",
        "--trainer.enable_progress_bar=false",
    ]
    out = run(["fit", *small, "--trainer.max_epochs", "2"])
    assert "best validation MAE" in out and "naive baseline, validation" in out and "SYNTHETIC" in out
    ckpt_dir = tmp_path / "runs" / "jena_dense" / "version_0" / "checkpoints"
    assert (ckpt_dir / "last.ckpt").is_file() and any(p.name.startswith("best-") for p in ckpt_dir.iterdir())
    assert (tmp_path / "runs" / "jena_dense" / "version_0" / "config.yaml").is_file()
    assert any(
        p.name.startswith("events.out.tfevents") for p in (tmp_path / "runs" / "jena_dense" / "version_0").iterdir()
    )

    # outside the CLI: the data-derived sizes are in the checkpoint's hparams
    model = DenseForecaster.load_from_checkpoint(ckpt_dir / "last.ckpt")
    assert model.hparams.num_features == 14 and model.hparams.timesteps == 240
    # ... and the scaling learned from the data is in the checkpoint too
    assert model.preprocessing.features[1] == "T (degC)" and model.target_std > 1
    ckpt = torch.load(ckpt_dir / "last.ckpt", weights_only=False)
    assert ckpt["epoch"] == 1

    # resume for one more epoch (in the same run folder), then validate, test and predict from the checkpoint
    out = run(["fit", *small, "--trainer.max_epochs", "3", "--ckpt_path", str(ckpt_dir / "last.ckpt")])
    assert torch.load(ckpt_dir / "last.ckpt", weights_only=False)["epoch"] == 2
    assert sorted(p.name for p in (tmp_path / "runs" / "jena_dense").iterdir()) == ["version_0"]
    # the resumed run's summary continues the history of the first attempt, one entry per epoch
    summary = json.loads((ckpt_dir.parent / "metrics.json").read_text())
    assert summary["finished"] and summary["epochs_run"] == 3
    for name in ("train/loss", "val/mae"):
        assert [e for e, _ in summary["metrics"][name]["history"]] == [0, 1, 2], name
    out = run(["validate", *small, "--ckpt_path", str(ckpt_dir / "last.ckpt")])
    assert "validation MAE" in out
    out = run(["test", *small, "--ckpt_path", str(ckpt_dir / "last.ckpt")])
    assert "test MAE" in out and "naive baseline, test" in out
    run(["predict", *small, "--ckpt_path", str(ckpt_dir / "last.ckpt")])


def test_naive_validate_reports_baseline(jena_dir, tmp_path, monkeypatch, jena_dm):
    monkeypatch.chdir(tmp_path)
    config = Path(__file__).resolve().parents[1] / "configs" / "jena_naive.yaml"
    out = run(
        [
            "validate",
            "--config",
            str(config),
            "--data.init_args.source",
            "synthetic",
            "--data.init_args.data_dir",
            str(jena_dir),
            "--trainer.enable_progress_bar=false",
        ]
    )
    assert f"{jena_dm.naive_mae('val'):.4f}" in out


def test_help_explains():
    for args, expected in (
        (["--help"], ["fit", "validate", "test", "predict", "--config configs/<name>.yaml"]),
        (["fit", "--help"], ["--num_threads", "--ckpt_path", "--use_ckpt_settings"]),
    ):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as e:
            main(args)
        assert e.value.code == 0
        for word in expected:
            assert word in out.getvalue(), (args, word)


def test_ddp_two_cpu_processes(jena_dir, tmp_path):
    """`python -m seqlight` re-launches itself for DDP; both ranks train on their shard of the same rows."""
    import subprocess
    import sys

    config = Path(__file__).resolve().parents[1] / "configs" / "jena_dense.yaml"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "seqlight",
            "fit",
            "--config",
            str(config),
            "--data.init_args.source",
            "synthetic",
            "--data.init_args.data_dir",
            str(jena_dir),
            "--data.init_args.steps_per_epoch",
            "4",
            "--data.init_args.val_steps",
            "2",
            "--trainer.max_epochs",
            "1",
            "--trainer.enable_progress_bar=false",
            "--trainer.accelerator",
            "cpu",
            "--trainer.devices",
            "2",
            "--trainer.strategy",
            "ddp",
            "--num_threads",
            "1",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "MEMBER: 2/2" in proc.stderr + proc.stdout
    assert "best validation MAE" in proc.stdout
    assert (tmp_path / "runs" / "jena_dense" / "version_0" / "checkpoints" / "last.ckpt").is_file()
    # one summary (rank 0's); the baseline covers the batches of both ranks: 1 each, the split's 2 together
    summary = json.loads((tmp_path / "runs" / "jena_dense" / "version_0" / "metrics.json").read_text())
    assert summary["hardware"]["devices"] == 2 and summary["baseline"]["batches"] == {"val": 2}


@pytest.mark.parametrize("config", ["jena_gru", "imdb_lstm"])
@pytest.mark.parametrize("semantics", ["keras2", "keras3"])
def test_mixed_precision_bf16(config, semantics, jena_dir, tmp_path, monkeypatch):
    """bf16-mixed trains on every x86 CPU: where oneDNN has no bf16 kernel (AVX2-only CPUs have no bf16 LSTM),
    seqlight's layers run that recurrence in float32 with autocast off (tests/nn/test_nn_autocast.py checks the
    fallback itself, on either kind of CPU)."""
    monkeypatch.chdir(tmp_path)
    path = Path(__file__).resolve().parents[1] / "configs" / f"{config}.yaml"
    out = run(
        [
            "fit",
            "--config",
            str(path),
            *data_overrides(path, jena_dir, tmp_path),
            "--model.init_args.semantics",
            semantics,
            "--trainer.fast_dev_run",
            "2",
            "--trainer.precision",
            "bf16-mixed",
            "--trainer.enable_progress_bar=false",
        ]
    )
    assert "(fit)" in out and "validation" in out, out


@pytest.mark.parametrize("given,batches", [("1", 1), ("2", 2), ("1.0", 4), ("0.5", 2)])
def test_limit_batches_an_int_is_a_count_a_float_a_fraction(given, batches, jena_dir, tmp_path, monkeypatch):
    """Lightning annotates limit_*_batches float-first, so its parser made ``--trainer.limit_train_batches 1`` (one
    batch) ``1.0`` (every batch); seqlight's Trainer types them int first. 4 training batches an epoch here."""
    monkeypatch.chdir(tmp_path)
    data = ["--data.init_args.source", "synthetic", "--data.init_args.data_dir", str(jena_dir),
            "--data.init_args.batch_size", "8", "--data.init_args.steps_per_epoch", "4"]  # fmt: skip
    run(
        ["fit", "--config", "jena_dense", *data, "--trainer.max_epochs", "1", "--trainer.limit_val_batches", "1",
         "--trainer.limit_train_batches", given, "--trainer.enable_progress_bar=false"]
    )  # fmt: skip
    ckpt = torch.load(next((tmp_path / "runs").rglob("last.ckpt")), map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == batches


@pytest.mark.parametrize(
    "extra,bar",
    [
        ([], "ProgressBar"),  # seqlight's: redrawn a few times a second
        (["--trainer.enable_progress_bar=false"], None),
        (["--trainer.callbacks+=lightning.pytorch.callbacks.TQDMProgressBar"], "TQDMProgressBar"),  # the user's
    ],
)
def test_the_progress_bar_is_seqlights_unless_the_run_names_one(extra, bar, jena_dir, tmp_path, monkeypatch):
    import seqlight.cli

    made = []
    original = seqlight.cli.SeqlightCLI.instantiate_trainer

    def instantiate_trainer(self, **kwargs):  # Lightning's, keeping the Trainer for the test to inspect
        made.append(original(self, **kwargs))
        return made[-1]

    monkeypatch.setattr(seqlight.cli.SeqlightCLI, "instantiate_trainer", instantiate_trainer)
    monkeypatch.chdir(tmp_path)
    data = ["--data.init_args.source", "synthetic", "--data.init_args.data_dir", str(jena_dir)]
    run(["fit", "--config", "jena_dense", *data, "--trainer.fast_dev_run=true", *extra])
    progress = made[0].progress_bar_callback
    assert (None if progress is None else type(progress).__name__) == bar


def test_progress_bar_redraws_at_most_every_interval(monkeypatch):
    from seqlight.callbacks import ProgressBar

    clock = [100.0]
    monkeypatch.setattr("seqlight.callbacks.time.monotonic", lambda: clock[0])
    bar = ProgressBar(interval=0.5)
    redraws = []
    for n in range(1, 11):  # a batch every 0.125 s, 10 batches
        clock[0] += 0.125
        if bar._should_update(n, 10):
            redraws.append(n)
    assert redraws == [1, 5, 9, 10]  # the first, then every 0.5 s, and the bar's last batch
