"""A trained model answers from its checkpoint alone: forecasts from a CSV, in a fresh process without the
training data, equal to what the training DataModule's pipeline gives on the same windows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from seqlight.cli import main
from seqlight.data.jena import TIME_FORMAT

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture(scope="module")
def gru_checkpoint(jena_dir, tmp_path_factory) -> Path:
    """A Keras 2.0.8 GRU trained for one short epoch through the CLI; its last.ckpt."""
    import contextlib
    import io
    import os

    root = tmp_path_factory.mktemp("gru_run")
    before = os.getcwd()
    os.chdir(root)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            main(["fit", "--config", str(CONFIGS / "jena_gru.yaml"), "--data.init_args.source", "synthetic",
                  "--data.init_args.data_dir", str(jena_dir), "--data.init_args.steps_per_epoch", "3",
                  "--data.init_args.val_steps", "2", "--trainer.max_epochs", "1",
                  "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"])  # fmt: skip
    finally:
        os.chdir(before)
    return root / "runs" / "jena_gru" / "version_0" / "checkpoints" / "last.ckpt"


def _fresh_process_forecast(ckpt: Path, csv: Path, at: list[str] | None, cwd: Path) -> list[dict]:
    code = (
        "import json, sys\n"
        "from seqlight.models import RecurrentForecaster\n"
        "m = RecurrentForecaster.load_from_checkpoint(sys.argv[1])\n"
        "at = json.loads(sys.argv[3])\n"
        "out = m.forecast(sys.argv[2], at=at)\n"
        "out = out if isinstance(out, list) else [out]\n"
        "print(json.dumps([f.__dict__ for f in out]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(ckpt), str(csv), json.dumps(at)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_forecast_in_a_fresh_process_equals_the_training_pipeline(gru_checkpoint, jena_dm, tmp_path):
    from seqlight.models import RecurrentForecaster

    csv = jena_dm.data_dir / "jena_climate_synthetic.csv"
    present_rows = np.array([1440, 250_000, 300_123, jena_dm.dataset.end_row - 1])  # the book's rows i
    newest = present_rows - 6  # a window's newest row is i - step
    stamps = [jena_dm.series.timestamps[r].strftime(TIME_FORMAT) for r in newest]
    answers = _fresh_process_forecast(gru_checkpoint, csv, stamps, cwd=tmp_path)  # no datasets/ there

    # the training pipeline: the DataModule's own windows, through the same weights
    model = RecurrentForecaster.load_from_checkpoint(gru_checkpoint).eval()
    x, _ = jena_dm.dataset.batch(jena_dm.dataset.items(present_rows))
    with torch.no_grad():
        want = model(x).double().numpy() * jena_dm.target_std + jena_dm.target_mean
    got = np.array([a["value"] for a in answers])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert [a["window_end"] for a in answers] == stamps
    # the forecast is for step + delay rows (150 x 10 min) after the window's newest row
    targets = [jena_dm.series.timestamps[r + 150].strftime(TIME_FORMAT) for r in newest]
    assert [a["target_time"] for a in answers] == targets


def test_forecast_newest_window_and_dataframe(gru_checkpoint, jena_dm):
    from seqlight.models import RecurrentForecaster

    model = RecurrentForecaster.load_from_checkpoint(gru_checkpoint)
    csv = jena_dm.data_dir / "jena_climate_synthetic.csv"
    newest = model.forecast(csv)
    assert newest.window_end == jena_dm.series.timestamps[-1].strftime(TIME_FORMAT)
    frame = pd.read_csv(csv).tail(2000)  # a DataFrame with the official columns answers the same
    assert model.forecast(frame).value == pytest.approx(newest.value, abs=1e-9)
    assert model.training  # the mode the model was in is restored


def test_forecast_the_2024_station_export(gru_checkpoint, shared_dataset):
    from seqlight.models import RecurrentForecaster

    csv = shared_dataset("jena_mpi_roof_2024", "mpi_roof.csv")
    model = RecurrentForecaster.load_from_checkpoint(gru_checkpoint)
    f = model.forecast(csv)
    last = csv.read_bytes().splitlines()[-1].split(b",")[0].decode().strip()
    assert f.window_end == last == "20.10.2024 08:10:00"
    assert f.target_time == "21.10.2024 09:10:00"  # 150 rows of 10 minutes later
    assert -30 < f.value < 45


def test_forecast_errors_name_the_problem(gru_checkpoint, jena_dm, tmp_path):
    from seqlight.errors import SeqlightError
    from seqlight.models import RecurrentForecaster

    model = RecurrentForecaster.load_from_checkpoint(gru_checkpoint)
    csv = jena_dm.data_dir / "jena_climate_synthetic.csv"
    with pytest.raises(SeqlightError, match=r"no row at 01\.01\.2030 00:00:00.*runs from 01\.01\.2009"):
        model.forecast(csv, at="01.01.2030 00:00:00")
    with pytest.raises(SeqlightError, match="needs 1434 rows before it"):
        model.forecast(csv, at=jena_dm.series.timestamps[100].strftime(TIME_FORMAT))
    short = tmp_path / "short.csv"
    short.write_text("".join(csv.open().readlines()[:500]))
    with pytest.raises(SeqlightError, match=r"short\.csv.*needs 1434 rows"):
        model.forecast(short)
    missing = tmp_path / "missing.csv"
    pd.read_csv(csv, nrows=2000).drop(columns=["rho (g/m**3)"]).to_csv(missing, index=False)
    with pytest.raises(SeqlightError, match=r"missing\.csv, line 1 \(header\): missing column\(s\) \['rho"):
        model.forecast(missing)
    untrained = RecurrentForecaster(num_features=14)
    with pytest.raises(SeqlightError, match="has no JenaPreprocessing"):
        untrained.forecast(csv)


# ---------------------------------------------------------------------------------------------- IMDB
def _fit_imdb(config: str, root: Path, data_dir: Path, *extra: str) -> Path:
    import contextlib
    import io
    import os

    before = os.getcwd()
    os.chdir(root)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            main(["fit", "--config", str(CONFIGS / f"{config}.yaml"), "--data.init_args.source", "synthetic",
                  "--data.init_args.data_dir", str(data_dir), "--trainer.max_epochs", "1",
                  "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
                  "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", *extra])  # fmt: skip
    finally:
        os.chdir(before)
    return root / "runs" / config / "version_0" / "checkpoints" / "last.ckpt"


def _fresh_process_classify(ckpt: Path, texts: list[str], cwd: Path) -> np.ndarray:
    code = (
        "import json, sys\n"
        "from seqlight.models import RecurrentClassifier, EmbeddingClassifier\n"
        "import torch\n"
        "cls = {c.__name__: c for c in (RecurrentClassifier, EmbeddingClassifier)}\n"
        "name = torch.load(sys.argv[1], weights_only=True)['hyper_parameters']['_class_path'].rsplit('.', 1)[1]\n"
        "m = cls[name].load_from_checkpoint(sys.argv[1])\n"
        "print(json.dumps(m.classify(json.loads(sys.argv[2])).tolist()))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(ckpt), json.dumps(texts)], cwd=cwd, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.array(json.loads(proc.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="module")
def imdb_data(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("imdb_data")


def test_classify_raw_imdb_in_a_fresh_process_equals_the_training_pipeline(imdb_data, tmp_path):
    """ImdbDataModule (6.1.3): the saved Tokenizer indexes new text exactly as the training data was."""
    from seqlight.data import ImdbDataModule
    from seqlight.data.imdb import read_acl_imdb
    from seqlight.models import EmbeddingClassifier
    from seqlight.text import pad_sequences

    ckpt = _fit_imdb("imdb_glove_scratch", tmp_path, imdb_data)
    dm = ImdbDataModule(data_dir=str(imdb_data), source="synthetic")
    dm.setup("test")
    texts, _ = read_acl_imdb(dm._root, "test")
    texts = texts[:5] + texts[-5:] + ["This movie was wonderful, I loved it", "Dull. I want my money back."]
    got = _fresh_process_classify(ckpt, texts, cwd=tmp_path)
    model = EmbeddingClassifier.load_from_checkpoint(ckpt).eval()
    x = pad_sequences(dm.tokenizer.texts_to_sequences(texts), maxlen=dm.maxlen)
    with torch.no_grad():
        want = model.predict_proba(torch.as_tensor(x)).double().numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert model.preprocessing.tokenizer.word_index == dm.tokenizer.word_index


def test_classify_pre_indexed_imdb_equals_the_training_pipeline(imdb_data, tmp_path):
    """KerasImdbDataModule (6.2): new text gets load_data's start/oov/index_from indexing, padded the same."""
    from seqlight.data import KerasImdbDataModule
    from seqlight.data.imdb import read_acl_imdb
    from seqlight.models import RecurrentClassifier

    ckpt = _fit_imdb("imdb_lstm", tmp_path, imdb_data, "--data.init_args.maxlen", "60")
    dm = KerasImdbDataModule(data_dir=str(imdb_data), source="synthetic", maxlen=60)
    dm.setup("test")
    texts, _ = read_acl_imdb(imdb_data / "imdb_synthetic" / "aclImdb", "test")
    order = np.arange(len(texts))
    np.random.RandomState(2 * 113).shuffle(order)  # load_data's (Keras 2.0.8) test permutation
    rows = [0, 1, 7, len(texts) - 1]
    chosen = [texts[order[j]] for j in rows]
    model = RecurrentClassifier.load_from_checkpoint(ckpt).eval()
    np.testing.assert_array_equal(model.preprocessing.encode(chosen), dm.test_set.tensors[0][rows].numpy())
    got = _fresh_process_classify(ckpt, chosen, cwd=tmp_path)
    with torch.no_grad():
        want = model.predict_proba(dm.test_set.tensors[0][rows]).double().numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_classify_errors(imdb_data, tmp_path):
    from seqlight.errors import SeqlightError
    from seqlight.models import RecurrentClassifier

    ckpt = _fit_imdb("imdb_simple_rnn", tmp_path, imdb_data, "--data.init_args.maxlen", "40")
    model = RecurrentClassifier.load_from_checkpoint(ckpt)
    assert isinstance(model.classify("a fine film"), float)
    with pytest.raises(SeqlightError, match="text 1 is empty"):
        model.classify(["good", "   "])
    with pytest.raises(TypeError, match="use classify"):
        model.predict_proba(["raw text"])


def test_predict_writes_the_test_windows_with_timestamps_and_temperatures(gru_checkpoint, jena_dir, jena_dm, tmp_path,
                                                                          monkeypatch):  # fmt: skip
    import contextlib
    import io

    from seqlight.models import RecurrentForecaster

    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["predict", "--config", str(CONFIGS / "jena_gru.yaml"), "--data.init_args.source", "synthetic",
              "--data.init_args.data_dir", str(jena_dir), "--data.init_args.test_steps", "3",
              "--trainer.enable_progress_bar=false", "--ckpt_path", str(gru_checkpoint)])  # fmt: skip
    written = tmp_path / "runs" / "jena_gru" / "version_0" / "predictions.csv"
    assert f"384 predictions written to {written}" in out.getvalue()
    table = pd.read_csv(written)
    rows = jena_dm.eval_row_indices("test")[:384]  # the book's test generator: 3 batches of 128
    stamps, raw = jena_dm.series.timestamps, jena_dm.series.values[:, 1]
    assert list(table["window_end"]) == list(stamps[rows - 6].strftime(TIME_FORMAT))
    assert list(table["target_time"]) == list(stamps[rows + 144].strftime(TIME_FORMAT))
    np.testing.assert_allclose(table["true T (degC)"], raw[rows + 144], atol=1e-9)
    np.testing.assert_allclose(table["naive T (degC)"], raw[rows - 6], atol=1e-9)
    model = RecurrentForecaster.load_from_checkpoint(gru_checkpoint).eval()
    x, _ = jena_dm.dataset.batch(jena_dm.dataset.items(rows))
    with torch.no_grad():
        want = model(x).double().numpy() * jena_dm.target_std + jena_dm.target_mean
    np.testing.assert_allclose(table["predicted T (degC)"], want, rtol=1e-6, atol=1e-5)


# ---------------------------------------------------------------------------------------------- commands
def test_forecast_command_prints_one_line_per_window_and_writes_csv(gru_checkpoint, jena_dm, tmp_path, capsys):
    from seqlight.answers import forecast_main

    csv = jena_dm.data_dir / "jena_climate_synthetic.csv"
    ats = [jena_dm.series.timestamps[r].strftime(TIME_FORMAT) for r in (5000, 6000)]
    out_csv = tmp_path / "f.csv"
    assert forecast_main(["--ckpt_path", str(gru_checkpoint), "--csv", str(csv), "--at", ats[0], "--at", ats[1],
                          "--output", str(out_csv)]) == 0  # fmt: skip
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{ats[0]} -> ") and "T (degC)" in lines[0]
    table = pd.read_csv(out_csv)
    assert list(table["window_end"]) == ats and len(table.columns) == 3


def test_classify_command_texts_file_and_folder(imdb_data, tmp_path, capsys):
    from seqlight.answers import classify_main
    from seqlight.errors import SeqlightError

    ckpt = _fit_imdb("imdb_simple_rnn", tmp_path, imdb_data, "--data.init_args.maxlen", "40")
    reviews = tmp_path / "reviews.txt"
    reviews.write_text("A wonderful film.\n\nTerrible acting, boring plot.\n", encoding="utf-8")
    folder = imdb_data / "imdb_synthetic" / "aclImdb" / "test" / "pos"
    n_folder = len(list(folder.glob("*.txt")))
    out_csv = tmp_path / "scores.csv"
    assert classify_main(["--ckpt_path", str(ckpt), "I loved it", str(folder), "--file", str(reviews),
                          "--output", str(out_csv)]) == 0  # fmt: skip
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 + n_folder + 2
    assert lines[0].endswith("I loved it") and lines[-1].endswith(f"{reviews}:3")
    assert len(pd.read_csv(out_csv)) == len(lines)
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 cr\xe8me\n".encode("latin-1"))
    with pytest.raises(SeqlightError, match=r"latin1\.txt: byte 3 is not UTF-8"):
        classify_main(["--ckpt_path", str(ckpt), "--file", str(bad)])
    with pytest.raises(SeqlightError, match="text 2 is empty"):
        classify_main(["--ckpt_path", str(ckpt), "fine", " "])


def test_commands_refuse_a_checkpoint_of_the_other_family(gru_checkpoint, tmp_path):
    from seqlight.answers import classify_main
    from seqlight.checkpoints import CheckpointError

    with pytest.raises(CheckpointError, match="holds a RecurrentForecaster, not a Classifier.*seqlight forecast"):
        classify_main(["--ckpt_path", str(gru_checkpoint), "some review"])
    truncated = tmp_path / "cut.ckpt"
    truncated.write_bytes(gru_checkpoint.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="damaged or not a checkpoint"):
        classify_main(["--ckpt_path", str(truncated), "some review"])
