"""Where runs and datasets go: the current folder, or $SEQLIGHT_HOME; every run says where it wrote."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from jsonargparse import Namespace

from seqlight.cli import main
from seqlight.data import JenaDataModule, KerasImdbDataModule
from seqlight.home import resolve_home_path, resolve_run_paths


@pytest.fixture
def no_home(monkeypatch):
    monkeypatch.delenv("SEQLIGHT_HOME", raising=False)


def test_without_home_paths_stay_relative_to_the_current_folder(no_home):
    assert resolve_home_path("datasets") == Path("datasets")
    assert resolve_home_path("/abs/runs") == Path("/abs/runs")


def test_home_takes_relative_paths_only(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQLIGHT_HOME", str(tmp_path))
    assert resolve_home_path("datasets") == tmp_path / "datasets"
    assert resolve_home_path("runs/x") == tmp_path / "runs" / "x"
    assert resolve_home_path("/abs/runs") == Path("/abs/runs")
    assert resolve_home_path("~/d") == Path.home() / "d"
    monkeypatch.setenv("SEQLIGHT_HOME", "")  # empty = unset
    assert resolve_home_path("datasets") == Path("datasets")


def test_datamodules_default_data_dir_follows_home(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQLIGHT_HOME", str(tmp_path))
    assert JenaDataModule().data_dir == tmp_path / "datasets"
    assert KerasImdbDataModule().data_dir == tmp_path / "datasets"
    assert JenaDataModule(data_dir="/elsewhere").data_dir == Path("/elsewhere")
    monkeypatch.delenv("SEQLIGHT_HOME")
    assert JenaDataModule().data_dir == Path("datasets")


def _parsed(save_dir):
    logger = Namespace(class_path="lightning.pytorch.loggers.TensorBoardLogger", init_args=Namespace(save_dir=save_dir))
    return Namespace(subcommand="fit", fit=Namespace(trainer=Namespace(logger=logger)))


def test_resolve_run_paths(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQLIGHT_HOME", str(tmp_path))
    cfg = _parsed("runs")
    resolve_run_paths(cfg)
    assert cfg.fit.trainer.logger.init_args.save_dir == str(tmp_path / "runs")
    cfg = _parsed("/abs")
    resolve_run_paths(cfg)
    assert cfg.fit.trainer.logger.init_args.save_dir == "/abs"
    many = _parsed("runs")
    many.fit.trainer.logger = [many.fit.trainer.logger, Namespace(class_path="x.CSVLogger", init_args=Namespace())]
    resolve_run_paths(many)  # a list of loggers, one without save_dir
    assert many.fit.trainer.logger[0].init_args.save_dir == str(tmp_path / "runs")
    for no_logger in (False, None):
        cfg = _parsed("runs")
        cfg.fit.trainer.logger = no_logger
        resolve_run_paths(cfg)
    monkeypatch.delenv("SEQLIGHT_HOME")
    cfg = _parsed("runs")
    resolve_run_paths(cfg)
    assert cfg.fit.trainer.logger.init_args.save_dir == "runs"


def test_cli_runs_and_data_go_to_home_and_each_run_says_where(jena_dir, tmp_path, monkeypatch, capsys):
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    (home / "datasets").mkdir(parents=True)
    (home / "datasets" / "jena_climate_synthetic.csv").symlink_to(jena_dir / "jena_climate_synthetic.csv")
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("SEQLIGHT_HOME", str(home))
    common = ["--data.init_args.source", "synthetic", "--trainer.limit_val_batches", "2"]
    common += ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    with contextlib.redirect_stdout(io.StringIO()):
        main(
            [
                "fit",
                "--config",
                "jena_dense",
                *common,
                "--trainer.max_epochs",
                "1",
                "--trainer.limit_train_batches",
                "2",
            ]
        )
    run = home / "runs" / "jena_dense" / "version_0"
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "config.yaml").is_file()
    err = capsys.readouterr().err
    assert f"seqlight: fit: run folder {run}; data folder {home / 'datasets'}\n" in err
    # --ckpt_path last looks for the newest run under $SEQLIGHT_HOME/runs too
    with contextlib.redirect_stdout(io.StringIO()):
        main(["validate", "--config", "jena_dense", *common, "--ckpt_path", "last"])
    err = capsys.readouterr().err
    assert f"resuming from {run / 'checkpoints' / 'last.ckpt'}" in err
    assert "seqlight: validate: run folder" in err
    assert list(elsewhere.iterdir()) == [], "nothing is written to the current folder"
