"""Checkpoints and run folders: a true last.ckpt, checked checkpoints, matching settings, collision-free runs."""

from __future__ import annotations

import contextlib
import io
import multiprocessing as mp
import os
from pathlib import Path

import pytest
import torch
from lightning.pytorch import LightningModule, Trainer
from torch.utils.data import DataLoader, TensorDataset

from seqlight.callbacks import ModelCheckpoint
from seqlight.checkpoints import CheckpointError, claim_run_version, read_checkpoint
from seqlight.cli import main

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


class _Worsening(LightningModule):
    """A model whose validation metric gets worse every epoch, so no epoch after the first is a new best."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch, batch_idx):
        return (self.w - batch[0].mean()).pow(2).sum()

    def validation_step(self, batch, batch_idx):
        self.log("val/mae", float(self.current_epoch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _loader():
    return DataLoader(TensorDataset(torch.randn(8, 1)), batch_size=4)


def test_last_ckpt_is_the_last_epoch_when_the_metric_worsens(tmp_path):
    ckpt = ModelCheckpoint(dirpath=tmp_path, monitor="val/mae", mode="min", save_last=True, filename="best")
    trainer = Trainer(
        max_epochs=3, callbacks=[ckpt], logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    trainer.fit(_Worsening(), _loader(), _loader())
    last = torch.load(tmp_path / "last.ckpt", weights_only=False)
    assert last["epoch"] == 2, "last.ckpt must hold the last epoch, not the best"
    assert torch.load(tmp_path / "best.ckpt", weights_only=False)["epoch"] == 0
    # the last checkpoint still knows the best one, so a resumed run keeps it
    state = next(v for k, v in last["callbacks"].items() if k.startswith("ModelCheckpoint"))
    assert float(state["best_model_score"]) == 0.0 and state["best_model_path"].endswith("best.ckpt")


def test_a_crash_while_saving_leaves_the_previous_last_checkpoint(tmp_path):
    """A save that dies half-way (a kill, a full disk) must not destroy the last good checkpoint."""
    ckpt = ModelCheckpoint(dirpath=tmp_path, save_last=True, save_top_k=0)
    trainer = Trainer(
        max_epochs=2, callbacks=[ckpt], logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    real_save, calls = trainer.save_checkpoint, []

    def dying_save(filepath, weights_only=False):
        calls.append(filepath)
        if trainer.current_epoch == 1:  # the second epoch's save dies after writing half of the file
            real_save(filepath, weights_only)
            data = Path(filepath).read_bytes()
            Path(filepath).write_bytes(data[: len(data) // 2])
            raise OSError("No space left on device")
        real_save(filepath, weights_only)

    trainer.save_checkpoint = dying_save
    with pytest.raises(OSError, match="No space left"):
        trainer.fit(_Worsening(), _loader(), _loader())
    assert read_checkpoint(tmp_path / "last.ckpt")["epoch"] == 0


def test_every_trained_config_saves_a_true_last_checkpoint():
    import yaml

    for config in sorted(CONFIGS.glob("*.yaml")):
        callbacks = (yaml.safe_load(config.read_text())["trainer"].get("callbacks")) or []
        saving_last = [c for c in callbacks if (c.get("init_args") or {}).get("save_last")]
        if config.stem == "jena_naive":
            continue
        assert saving_last, f"{config.name} keeps no last.ckpt"
        assert all(c["class_path"] == "seqlight.callbacks.ModelCheckpoint" for c in saving_last), config.name


# ---------------------------------------------------------------------------------------------- bad files
def _bad_files(tmp_path: Path) -> dict[str, Path]:
    good = tmp_path / "good.ckpt"
    trainer = Trainer(
        max_epochs=1, logger=False, enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False
    )
    trainer.fit(_Worsening(), _loader(), _loader())
    trainer.save_checkpoint(good)
    data = good.read_bytes()
    files = {
        "truncated": data[: len(data) * 2 // 3],
        "text": b"epoch: 3\nthis is not a checkpoint\n",
        "empty": b"",
    }
    out = {}
    for name, content in files.items():
        out[name] = tmp_path / f"{name}.ckpt"
        out[name].write_bytes(content)
    out["foreign_dict"] = tmp_path / "foreign_dict.ckpt"
    torch.save({"hello": 1}, out["foreign_dict"])
    out["tensor"] = tmp_path / "tensor.ckpt"
    torch.save(torch.zeros(3), out["tensor"])
    out["directory"] = tmp_path / "a_folder.ckpt"
    out["directory"].mkdir()
    out["missing"] = tmp_path / "missing.ckpt"
    return out


EXPECTED = {
    "truncated": "damaged or not a checkpoint",
    "text": "is a text file",
    "empty": "is empty",
    "foreign_dict": "not a Lightning checkpoint",
    "tensor": "holds a Tensor",
    "directory": "is a folder",
    "missing": "does not exist",
}


def test_read_checkpoint_names_the_file_and_the_problem(tmp_path):
    for kind, path in _bad_files(tmp_path).items():
        with pytest.raises(CheckpointError) as e:
            read_checkpoint(path)
        assert str(path) in str(e.value) and EXPECTED[kind] in str(e.value), (kind, str(e.value))
        assert "\n" not in str(e.value)


@contextlib.contextmanager
def _chdir(path: Path):
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def _cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(args)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def _jena(config: str, jena_dir: Path, *extra: str) -> list[str]:
    return [
        "--config",
        str(CONFIGS / f"{config}.yaml"),
        "--data.init_args.source",
        "synthetic",
        "--data.init_args.data_dir",
        str(jena_dir),
        "--data.init_args.steps_per_epoch",
        "2",
        "--data.init_args.val_steps",
        "2",
        "--data.init_args.test_steps",
        "2",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        *extra,
    ]


def test_cli_rejects_bad_checkpoints_before_reading_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # a data folder that does not exist: any data work would fail with another message
    args = _jena("jena_gru", tmp_path / "no_data_here")
    for kind, path in _bad_files(tmp_path).items():
        code, out, err = _cli(["fit", *args, "--ckpt_path", str(path)])
        assert code == 2, (kind, err[-2000:])
        assert err.startswith("seqlight: error:") and str(path) in err and EXPECTED[kind] in err, (kind, err)
        assert "Traceback" not in err and err.count("\n") == 1, err
    assert not (tmp_path / "runs").exists(), "a rejected run leaves no run folder"


@pytest.fixture(scope="module")
def dense_run(jena_dir, tmp_path_factory):
    """One short jena_dense fit: its folder and checkpoint."""
    root = tmp_path_factory.mktemp("dense_run")
    with _chdir(root):
        code, out, err = _cli(["fit", *_jena("jena_dense", jena_dir, "--trainer.max_epochs", "1")])
    assert code == 0, err[-3000:]
    return root, root / "runs" / "jena_dense" / "version_0" / "checkpoints" / "last.ckpt"


def test_checkpoint_of_another_model_class_is_an_error(dense_run, jena_dir, monkeypatch):
    root, ckpt = dense_run
    monkeypatch.chdir(root)
    code, out, err = _cli(["fit", *_jena("jena_gru", jena_dir), "--ckpt_path", str(ckpt)])
    assert code == 2 and "DenseForecaster" in err and "RecurrentForecaster" in err, err
    assert not (root / "runs" / "jena_gru").exists()


def test_settings_that_differ_from_the_checkpoint_are_named(dense_run, jena_dir, monkeypatch):
    root, ckpt = dense_run
    monkeypatch.chdir(root)
    code, out, err = _cli(
        [
            "fit",
            *_jena("jena_dense", jena_dir, "--model.init_args.lr", "0.01", "--model.init_args.units", "16"),
            "--ckpt_path",
            str(ckpt),
        ]
    )
    assert code == 2, err
    assert "lr: 0.01 here, 0.001 in the checkpoint" in err and "units: 16 here, 32 in the checkpoint" in err, err
    assert "--use_ckpt_settings" in err


def test_use_ckpt_settings_continues_the_checkpoints_model(dense_run, jena_dir, monkeypatch):
    root, ckpt = dense_run
    monkeypatch.chdir(root)
    code, out, err = _cli(
        [
            "validate",
            *_jena("jena_dense", jena_dir, "--model.init_args.units", "16"),
            "--ckpt_path",
            str(ckpt),
            "--use_ckpt_settings",
            "true",
        ]
    )
    assert code == 0, err[-3000:]
    assert "validation MAE" in out


def test_checkpoint_trained_on_other_data_is_an_error(dense_run, tmp_path, monkeypatch):
    root, ckpt = dense_run
    monkeypatch.chdir(tmp_path)
    code, out, err = _cli(
        ["fit", "--config", str(CONFIGS / "imdb_lstm.yaml"), "--ckpt_path", str(ckpt), "--use_ckpt_settings", "true"]
    )
    assert code == 2 and "JenaDataModule" in err and "ImdbDataModule" in err, err


def test_ckpt_path_last_without_runs_is_one_sentence(jena_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = _cli(["fit", *_jena("jena_gru", jena_dir), "--ckpt_path", "last"])
    assert code == 2 and "no run of this experiment" in err and "runs/jena_gru" in err, err


def test_validate_without_checkpoint_warns_about_random_weights(jena_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.warns(UserWarning, match="untrained weights"):
        code, out, err = _cli(["validate", *_jena("jena_dense", jena_dir)])
    assert code == 0, err[-2000:]


def test_naive_validate_does_not_warn(jena_dir, tmp_path, monkeypatch, recwarn):
    monkeypatch.chdir(tmp_path)
    code, out, err = _cli(["validate", *_jena("jena_naive", jena_dir)])
    assert code == 0, err[-2000:]
    assert not [w for w in recwarn if "untrained weights" in str(w.message)]


# ---------------------------------------------------------------------------------------------- user mistakes
@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--model.class_path", "seqlight.models.DenseForecastr"], "has no attribute 'DenseForecastr'"),
        (["--model.init_args.lrr", "3"], "'lrr' is not accepted"),
        (["--trainer.max_epochs", "-3"], "max_epochs"),
        (["--data.init_args.batch_size", "0"], "batch_size"),
    ],
)
def test_user_mistakes_get_one_paragraph(extra, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # no data folder: each mistake must be reported before any data is read
    code, out, err = _cli(["fit", *_jena("jena_dense", tmp_path / "absent"), *extra])
    assert code == 2, err[-3000:]
    assert err.startswith("seqlight: error:") and expected in err, err
    assert "Traceback" not in err and "usage:" not in err and err.count("\n") <= 2, err
    assert "NoneType" not in err


# ---------------------------------------------------------------------------------------------- run folders
def _claim(root: str, barrier, out) -> None:
    barrier.wait()
    out.put(claim_run_version(root))


def test_concurrent_runs_claim_distinct_folders(tmp_path):
    ctx = mp.get_context("fork")
    for _ in range(5):
        barrier, out = ctx.Barrier(4), ctx.Queue()
        procs = [ctx.Process(target=_claim, args=(str(tmp_path / "exp"), barrier, out)) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
        got = [out.get(timeout=5) for _ in procs]
        assert len(set(got)) == len(got), got
    assert sorted(int(p.name.split("_")[1]) for p in (tmp_path / "exp").iterdir()) == list(range(20))


def test_no_logger_writes_no_config_in_the_current_folder(jena_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = _cli(
        [
            "fit",
            *_jena(
                "jena_dense",
                jena_dir,
                "--trainer.max_epochs",
                "1",
                "--trainer.logger",
                "false",
                "--trainer.callbacks",
                "[]",
            ),
        ]
    )
    assert code == 0, err[-3000:]
    assert not (tmp_path / "config.yaml").exists()


def test_a_leftover_run_version_in_the_environment_is_ignored_by_rank_zero(jena_dir, tmp_path, monkeypatch):
    """$SEQLIGHT_RUN_VERSION hands rank 0's folder to the DDP processes it launches; a value left over from an
    earlier run in a parent process (a test session, a script) must not make a new run reuse that folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEQLIGHT_RUN_VERSION", "5")
    code, out, err = _cli(["fit", *_jena("jena_dense", jena_dir, "--trainer.max_epochs", "1")])
    assert code == 0, err[-3000:]
    assert sorted(p.name for p in (tmp_path / "runs" / "jena_dense").iterdir()) == ["version_0"]
