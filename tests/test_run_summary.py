"""What a run leaves behind (seqlight.callbacks.RunSummary): metrics.json, the printed table read from it, the
baseline on exactly the rows the model was scored on, TensorBoard charts, figures and hparams, plain
hparams.yaml, and no empty run folders."""

from __future__ import annotations

import contextlib
import io
import json
import re
import warnings
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch import Callback, Trainer, seed_everything
from lightning.pytorch.loggers import TensorBoardLogger

from seqlight.callbacks import ModelCheckpoint, RunSummary
from seqlight.cli import main

ROOT = Path(__file__).resolve().parents[1]
KEYS = {
    "experiment", "version", "subcommand", "model", "data", "data_source", "real_data", "seed", "monitor", "mode",
    "metrics", "baseline", "epochs_run", "wall_time_s", "epoch_time_s", "hardware", "finished",
}  # fmt: skip


def run(args: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main(args)
    return out.getvalue()


def jena(jena_dir: Path, *extra: str) -> list[str]:
    return [
        "--config", str(ROOT / "configs" / "jena_dense.yaml"), "--data.init_args.source", "synthetic",
        "--data.init_args.data_dir", str(jena_dir), "--data.init_args.steps_per_epoch", "3",
        "--data.init_args.val_steps", "8", "--data.init_args.test_steps", "6", "--trainer.enable_progress_bar=false",
        *extra,
    ]  # fmt: skip


def events(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


@pytest.fixture(autouse=True)
def _fresh_run_folder(monkeypatch, tmp_path):
    # each main() call claims its own version_N (the variable hands rank 0's choice to DDP processes)
    monkeypatch.delenv("SEQLIGHT_RUN_VERSION", raising=False)
    monkeypatch.chdir(tmp_path)


def test_fit_writes_metrics_json_with_the_baseline_on_the_scored_rows(jena_dir, jena_dm, tmp_path):
    out = run(["fit", *jena(jena_dir, "--trainer.max_epochs", "3", "--trainer.limit_val_batches", "3")])
    folder = tmp_path / "runs" / "jena_dense" / "version_0"
    summary = json.loads((folder / "metrics.json").read_text())
    assert KEYS <= set(summary) and summary["finished"] is True and summary["subcommand"] == "fit"
    assert summary["experiment"] == "jena_dense" and summary["version"] == 0 and summary["seed"] == 0
    assert summary["model"] == "seqlight.models.forecasting.DenseForecaster" and summary["real_data"] is False
    assert summary["monitor"] == "val/mae" and summary["mode"] == "min" and summary["epochs_run"] == 3
    assert "SYNTHETIC" in summary["data_source"] and summary["hardware"]["cores"] >= 1
    val = summary["metrics"]["val/mae"]
    assert [e for e, _ in val["history"]] == [0, 1, 2] and val["last_epoch"] == 2
    # the MAE in degrees C of every epoch and split is the standardized MAE times the target's std
    std = float(jena_dm.std[jena_dm.target_index])
    for split in ("train", "val"):
        mae, degc = (dict(summary["metrics"][f"{split}/{m}"]["history"]) for m in ("mae", "mae_degC"))
        assert list(degc) == [0, 1, 2] and all(degc[e] == pytest.approx(mae[e] * std, rel=1e-5) for e in degc)
    assert val["best"] == min(v for _, v in val["history"]) and val["best"] == val["history"][val["best_epoch"]][1]
    ckpt = torch.load(folder / "checkpoints" / "last.ckpt", weights_only=False)
    state = next(v for k, v in ckpt["callbacks"].items() if k.startswith("ModelCheckpoint"))
    assert val["best"] == pytest.approx(float(state["best_model_score"]), abs=0)
    assert [e for e, _ in summary["metrics"]["train/loss"]["history"]] == [0, 1, 2]
    # the baseline covers the 3 batches the Trainer ran (limit_val_batches), not the 8 of the split
    assert summary["baseline"]["batches"] == {"val": 3}
    assert summary["baseline"]["val/mae"] == pytest.approx(jena_dm_naive(jena_dir, "val", 3), abs=1e-12)
    assert summary["baseline"]["val/mae"] != pytest.approx(jena_dm_naive(jena_dir, "val", 8), abs=1e-6)
    # the printed table is read from the same summary
    assert f"best validation MAE (epoch {val['best_epoch'] + 1})" in out
    assert "naive baseline, validation (3 batches)" in out and f"{summary['baseline']['val/mae']:.4f}" in out


def jena_dm_naive(jena_dir: Path, split: str, batches: int) -> float:
    from seqlight.data import JenaDataModule

    dm = JenaDataModule(data_dir=str(jena_dir), source="synthetic", val_steps=8, test_steps=6)
    return dm.naive_mae(split, batches=batches)


def test_naive_mae_of_the_first_batches_is_that_of_the_rows_the_loader_yields(jena_dir):
    from seqlight.data import JenaDataModule

    dm = JenaDataModule(data_dir=str(jena_dir), source="synthetic", val_steps=8, batch_size=64)
    dm.setup()
    errors = []
    for i, (x, y) in enumerate(dm.val_dataloader()):
        if i == 3:
            break
        errors.append((x[:, -1, dm.target_index].double() - y.double()).abs())
    assert dm.naive_mae("val", batches=3) == pytest.approx(float(torch.cat(errors).mean()), rel=1e-6)
    assert dm.naive_mae("val", batches=8) == pytest.approx(dm.naive_mae("val"), abs=0)
    with pytest.raises(ValueError, match="batches"):
        dm.naive_mae("val", batches=0)


def test_the_naive_forecaster_scores_its_own_baseline_under_limit_val_batches(jena_dir, tmp_path):
    config = ROOT / "configs" / "jena_naive.yaml"
    data = ["--data.init_args.source", "synthetic", "--data.init_args.data_dir", str(jena_dir)]
    out = run(["validate", "--config", str(config), *data, "--trainer.limit_val_batches", "7"])
    (folder,) = (tmp_path / "runs").glob("*/version_0")
    summary = json.loads((folder / "metrics.json").read_text())
    assert summary["subcommand"] == "validate" and summary["baseline"]["batches"] == {"val": 7}
    # the same rows: the model that is the naive forecast scores exactly the baseline (float32 against float64)
    assert summary["metrics"]["val/mae"]["last"] == pytest.approx(summary["baseline"]["val/mae"], rel=1e-5)
    assert "naive baseline, validation (7 batches)" in out and "->" not in out  # no verdict against itself
    assert out.rstrip().splitlines()[-1].startswith("data: SYNTHETIC")  # the table comes last


def test_test_verdict_uses_the_test_baseline(jena_dir, tmp_path):
    run(["fit", *jena(jena_dir, "--trainer.max_epochs", "1")])
    ckpt = tmp_path / "runs" / "jena_dense" / "version_0" / "checkpoints" / "last.ckpt"
    out = run(["test", *jena(jena_dir, "--trainer.limit_test_batches", "4"), "--ckpt_path", str(ckpt)])
    summary = json.loads((tmp_path / "runs" / "jena_dense" / "version_1" / "metrics.json").read_text())
    assert summary["subcommand"] == "test" and set(summary["metrics"]) >= {"test/mae"}
    assert not any(name.startswith("train/") for name in summary["metrics"])  # its own scores, not the training's
    baseline = summary["baseline"]
    assert baseline["batches"] == {"test": 4} and "val/mae" not in baseline
    verdict = re.search(r"-> test MAE .* the naive baseline on the same rows \((\S+) vs (\S+)\)", out)
    assert verdict, out
    assert float(verdict.group(1)) == pytest.approx(summary["metrics"]["test/mae"]["last"], abs=1e-4)
    assert float(verdict.group(2)) == pytest.approx(baseline["test/mae"], abs=1e-4)
    assert "naive baseline, test (4 batches)" in out and "naive baseline, validation" not in out
    hparams = yaml.safe_load((tmp_path / "runs" / "jena_dense" / "version_1" / "hparams.yaml").read_text())
    assert hparams["test_range"] == [300001, None]


def test_default_checkpoint_names_and_the_epoch_of_the_best_accuracy(tmp_path):
    """Lightning's default checkpoint name (``epoch=3-step=12.ckpt``) ended the classifier's report with a
    ValueError; the epoch comes from the logged history now."""
    config = yaml.safe_load((ROOT / "configs" / "imdb_embedding.yaml").read_text())
    config["trainer"]["callbacks"] = [
        {"class_path": "seqlight.callbacks.ModelCheckpoint", "init_args": {"monitor": "val/acc", "mode": "max"}}
    ]
    config["trainer"]["max_epochs"] = 4
    path = tmp_path / "default_names.yaml"
    path.write_text(yaml.safe_dump(config))
    data = ["--data.init_args.source", "synthetic", "--data.init_args.data_dir", str(tmp_path / "datasets")]
    out = run(["fit", "--config", str(path), *data, "--trainer.enable_progress_bar=false"])
    folder = tmp_path / "runs" / config["trainer"]["logger"]["init_args"]["name"] / "version_0"
    summary = json.loads((folder / "metrics.json").read_text())
    acc = summary["metrics"]["val/acc"]
    (best,) = [p.name for p in (folder / "checkpoints").glob("epoch=*.ckpt")]
    assert best.startswith(f"epoch={acc['best_epoch']}-")
    assert acc["best"] == max(v for _, v in acc["history"])
    assert f"best validation accuracy (epoch {acc['best_epoch'] + 1})" in out


class _ReadMidRun(Callback):
    """Reads metrics.json at the start of the second epoch: the file of an interrupted run."""

    def __init__(self, path: Path) -> None:
        self.path, self.seen = path, None

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == 1:
            self.seen = json.loads(self.path.read_text())


def test_python_fit_tensorboard_figures_hparams_and_a_valid_file_mid_run(jena_dir, tmp_path):
    from seqlight.data import JenaDataModule
    from seqlight.models import DenseForecaster

    seed_everything(0)
    dm = JenaDataModule(data_dir=str(jena_dir), source="synthetic", steps_per_epoch=3, val_steps=13, seed=0)
    model = DenseForecaster(num_features=dm.num_features, timesteps=dm.timesteps)
    logger = TensorBoardLogger(tmp_path, name="py", default_hp_metric=False)
    probe = _ReadMidRun(Path(logger.log_dir) / "metrics.json")
    ckpt = ModelCheckpoint(monitor="val/mae", dirpath=tmp_path / "ck")
    trainer = Trainer(
        max_epochs=2, logger=logger, callbacks=[RunSummary(verbose=False), probe, ckpt], log_every_n_steps=1,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, datamodule=dm)
    assert probe.seen["finished"] is False and probe.seen["metrics"]["val/mae"]["history"][0][0] == 0
    assert [e for e, _ in probe.seen["metrics"]["train/loss"]["history"]] == [0]

    folder = Path(logger.log_dir)
    hparams = yaml.safe_load((folder / "hparams.yaml").read_text())  # plain YAML: no !!python/tuple
    assert hparams["val_range"] == [200001, 300000] and hparams["timesteps"] == 240
    acc = events(folder)
    tags = acc.Tags()
    # one figure per validation epoch (not per step), at the step of that epoch's validation scores
    assert len(acc.Scalars("val/mae")) == 2
    assert [e.step for e in acc.Images("val/figure")] == [e.step for e in acc.Scalars("val/mae")]
    # per-step training values stay, epoch values of train and val share a step (one point per epoch)
    assert len(acc.Scalars("train/loss_step")) == 6
    assert [e.step for e in acc.Scalars("train/loss_epoch")] == [e.step for e in acc.Scalars("val/loss")]
    # ... and one chart: the custom-scalars layout pairs train/<m> with val/<m>
    from tensorboard.plugins.custom_scalar import layout_pb2

    layout = layout_pb2.Layout()
    layout.ParseFromString(acc.Tensors("custom_scalars__config__")[0].tensor_proto.string_val[0])
    charts = {c.title: list(c.multiline.tag) for cat in layout.category for c in cat.chart}
    assert charts["loss"] == ["^train/loss(_epoch)?$", "^val/loss$"] and "mae" in charts
    assert set(charts) <= {m.split("/", 1)[1].removesuffix("_epoch") for m in tags["scalars"] if "/" in m}
    # the hparams with the final metrics
    assert "_hparams_/experiment" in acc.PluginTagToContent("hparams")
    summary = json.loads((folder / "metrics.json").read_text())
    final = acc.Scalars("final/val/mae/best")[0].value
    assert final == pytest.approx(summary["metrics"]["val/mae"]["best"], rel=1e-6)


def test_jena_figure_shows_ten_days_with_the_naive_prediction(jena_dir):
    from seqlight.data import JenaDataModule
    from seqlight.models import DenseForecaster

    dm = JenaDataModule(data_dir=str(jena_dir), source="synthetic", val_steps=13, seed=0)
    model = DenseForecaster(num_features=dm.num_features, timesteps=dm.timesteps)
    trainer = Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.validate(model, datamodule=dm, verbose=False)
    fig = model.validation_figure()
    (ax,) = fig.axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"true", "predicted", "naive"}
    days = lines["true"].get_xdata()
    assert len(days) == 1440 and days[-1] == pytest.approx(10, abs=0.01)
    # the curves are in degrees C: the naive one is the true one shifted by the horizon (25 h)
    raw = dm.series.values[:, dm.target_index]
    rows = dm.eval_row_indices("val")[:1440]
    assert lines["true"].get_ydata() == pytest.approx(raw[rows + dm.delay], abs=1e-3)
    assert lines["naive"].get_ydata() == pytest.approx(raw[rows - dm.step], abs=1e-3)


def test_imdb_confusion_matrix_counts_the_validation_reviews(tmp_path):
    from seqlight.data.imdb import KerasImdbDataModule
    from seqlight.models.classifiers import EmbeddingClassifier

    dm = KerasImdbDataModule(data_dir=str(tmp_path), source="synthetic", synthetic_size=300, maxlen=20, num_words=500)
    model = EmbeddingClassifier(500, 20, 8)
    trainer = Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (scores,) = trainer.validate(model, datamodule=dm, verbose=False)
    counts = model._confusion
    assert int(counts.sum()) == len(dm.val_dataloader().dataset)
    assert float(counts.trace()) / float(counts.sum()) == pytest.approx(scores["val/acc"], abs=1e-6)
    assert model.validation_figure() is not None


def test_failed_runs_leave_no_run_folder_and_predict_keeps_its_own(jena_dir, tmp_path):
    with pytest.raises(SystemExit) as e:
        run(["fit", *jena(jena_dir, "--data.init_args.path", str(tmp_path / "missing.csv"))])
    assert e.value.code == 2
    experiment = tmp_path / "runs" / "jena_dense"
    assert not list(experiment.glob("version_*"))
    run(["fit", *jena(jena_dir, "--trainer.max_epochs", "1")])
    ckpt = experiment / "version_0" / "checkpoints" / "last.ckpt"
    run(["predict", *jena(jena_dir), "--ckpt_path", str(ckpt)])
    assert (experiment / "version_1" / "predictions.csv").is_file()
    assert sorted(p.name for p in experiment.iterdir()) == ["version_0", "version_1"]


class _CtrlC(Callback):
    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == 1:
            raise KeyboardInterrupt


def test_ctrl_c_leaves_an_unfinished_summary_and_prints_the_table(jena_dir, tmp_path, capsys):
    from seqlight.data import JenaDataModule
    from seqlight.models import DenseForecaster

    dm = JenaDataModule(data_dir=str(jena_dir), source="synthetic", steps_per_epoch=2, val_steps=2, seed=0)
    logger = TensorBoardLogger(tmp_path, name="ctrl_c")
    trainer = Trainer(
        max_epochs=3, logger=logger, callbacks=[_CtrlC(), RunSummary()], enable_progress_bar=False,
        enable_model_summary=False,
    )  # fmt: skip
    with warnings.catch_warnings(), pytest.raises(SystemExit):  # Lightning's graceful shutdown exits 1
        warnings.simplefilter("ignore")
        trainer.fit(DenseForecaster(num_features=dm.num_features, timesteps=dm.timesteps), datamodule=dm)
    summary = json.loads((Path(logger.log_dir) / "metrics.json").read_text())
    assert summary["finished"] is False and summary["metrics"]["val/mae"]["last_epoch"] == 0
    out = capsys.readouterr().out
    assert "last validation MAE" in out and out.rstrip().endswith("(interrupted)")
