"""seqlight.export: ONNX Runtime and TorchScript agree with PyTorch, the files run without seqlight, the JSON says
what a server needs, and ``seqlight export`` turns a checkpoint into both (or one clear sentence).

onnxruntime and onnx are test dependencies: without them this module fails to import, it does not skip.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import lightning
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import seqlight
from seqlight.export import export_model, main
from seqlight.models.classifiers import EmbeddingClassifier, RecurrentClassifier
from seqlight.models.recurrent_forecasters import RecurrentForecaster

pytestmark = pytest.mark.filterwarnings(
    "ignore:You defined a `validation_step` but have no `val_dataloader`",
    "ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated",
    "ignore:`torch.jit.load` is deprecated:DeprecationWarning",
    "ignore::DeprecationWarning:lightning.pytorch.cli",  # Lightning loading a LightningCLI checkpoint
)

TOL = 1e-5  # max abs difference, ONNX Runtime / TorchScript vs PyTorch
JENA_FEATURES, JENA_STEPS = 14, 240  # the book's 6.3 windows: 14 columns, lookback 1440 / step 6
IMDB_WORDS, IMDB_MAXLEN = 10000, 500

# The chapter's models a server would run, built as the book's configs build them.
MODELS = {
    "jena_gru_keras2": lambda: RecurrentForecaster(num_features=JENA_FEATURES, cell="gru", semantics="keras2"),
    "jena_gru_keras3": lambda: RecurrentForecaster(num_features=JENA_FEATURES, cell="gru", semantics="keras3"),
    "jena_gru_bidirectional": lambda: RecurrentForecaster(
        num_features=JENA_FEATURES, cell="gru", semantics="keras2", bidirectional=True
    ),
    "imdb_lstm_keras2": lambda: RecurrentClassifier(
        num_words=IMDB_WORDS, maxlen=IMDB_MAXLEN, embedding_dim=32, cell="lstm", semantics="keras2"
    ),
    "imdb_lstm_keras3": lambda: RecurrentClassifier(
        num_words=IMDB_WORDS, maxlen=IMDB_MAXLEN, embedding_dim=32, cell="lstm", semantics="keras3"
    ),
}


def _inputs(model, batch: int, length: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    if isinstance(model, RecurrentClassifier):
        return torch.randint(0, IMDB_WORDS, (batch, length), generator=gen)
    return torch.randn(batch, length, JENA_FEATURES, generator=gen)


def _length(model) -> int:
    return IMDB_MAXLEN if isinstance(model, RecurrentClassifier) else JENA_STEPS


def _fit_and_save(model, path: Path, class_path: str | None = None) -> Path:
    """A few training steps (weights away from their initial values), then a checkpoint; ``class_path`` is
    recorded as the seqlight command records it (LightningCLI's ``_class_path`` and ``_instantiator``)."""
    torch.manual_seed(0)
    x = _inputs(model, 8, 30, seed=1)
    y = torch.randint(0, 2, (8,)).float() if isinstance(model, RecurrentClassifier) else torch.randn(8)
    trainer = lightning.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, DataLoader(TensorDataset(x, y), batch_size=4))
    trainer.save_checkpoint(path)
    if class_path is not None:
        ckpt = torch.load(path, weights_only=False)
        ckpt["hyper_parameters"]["_class_path"] = class_path
        ckpt["hyper_parameters"]["_instantiator"] = "lightning.pytorch.cli.instantiate_module"
        torch.save(ckpt, path)
    return path


def _class_path(model) -> str:
    return f"{type(model).__module__}.{type(model).__name__}"


def _max_diff(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``name -> (model loaded from the checkpoint, .onnx path, .pt path)``: each model trained a few steps,
    checkpointed, and exported in both formats by the command line."""
    out = {}
    for name, build in MODELS.items():
        folder = tmp_path_factory.mktemp(name)
        model = build()
        ckpt = _fit_and_save(model, folder / "last.ckpt", _class_path(model))
        assert main(["--ckpt_path", str(ckpt), "--format", "onnx"]) == 0
        assert main(["--ckpt_path", str(ckpt), "--format", "torchscript", "--output", str(folder / "ts" / "m.pt")]) == 0
        loaded = type(model).load_from_checkpoint(ckpt, map_location="cpu").eval()
        out[name] = (loaded, folder / "last.onnx", folder / "ts" / "m.pt")
    return out


@pytest.mark.parametrize("name", sorted(MODELS))
def test_onnx_runtime_matches_pytorch(name, exported):
    """Two batch sizes (dynamic batch) at the training length, and a shorter sequence (dynamic time)."""
    model, onnx_path, _ = exported[name]
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    full = _length(model)
    for batch, length in [(1, full), (5, full), (3, full // 4)]:
        x = _inputs(model, batch, length, seed=batch)
        with torch.no_grad():
            want = model.predict_step(x, 0)
        (got,) = session.run(None, {"input": x.numpy()})
        assert got.shape == (batch,)
        assert _max_diff(got, want) <= TOL, f"{name} batch {batch} length {length}: {_max_diff(got, want):.2e}"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_onnx_graph_declares_dynamic_batch_and_time(name, exported):
    _, onnx_path, _ = exported[name]
    graph = onnx.load(str(onnx_path)).graph
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims[:2] == ["batch", "time"]
    assert [d.dim_param for d in graph.output[0].type.tensor_type.shape.dim] == ["batch"]


def test_command_json_names_the_checkpoints_class(exported):
    model, onnx_path, _ = exported["jena_gru_bidirectional"]
    info = json.loads(onnx_path.with_suffix(".json").read_text())
    assert info["model_class"] == _class_path(model)
    assert info["hyper_parameters"] == {k: v for k, v in model.hparams.items() if not k.startswith("_")}
    assert info["input"]["shape"] == ["batch", "time", JENA_FEATURES]


def test_keras2_models_export_their_own_equations(exported):
    """The keras2 GRU is not silently exported as ONNX's GRU (reset after, sigmoid): it is the compiled loop,
    with the hard sigmoid's clip."""
    _, onnx_path, _ = exported["jena_gru_keras2"]
    ops = {n.op_type for n in onnx.load(str(onnx_path)).graph.node}
    assert "Loop" in ops and "GRU" not in ops
    _, onnx_path, _ = exported["jena_gru_keras3"]
    assert "GRU" in {n.op_type for n in onnx.load(str(onnx_path)).graph.node}


def test_files_run_without_seqlight(exported, tmp_path):
    """A fresh Python that cannot import seqlight, Lightning or torchmetrics runs the TorchScript and ONNX files
    and gets the numbers PyTorch gets, at two batch sizes."""
    cases = []
    for name in ("jena_gru_keras2", "jena_gru_bidirectional", "imdb_lstm_keras2"):
        model, onnx_path, ts_path = exported[name]
        for batch in (2, 6):
            x = _inputs(model, batch, _length(model) // 2, seed=10 + batch)
            with torch.no_grad():
                want = model.predict_step(x, 0)
            stem = tmp_path / f"{name}_{batch}"
            torch.save({"x": x, "want": want}, f"{stem}.pt")
            cases.append((str(ts_path), str(onnx_path), f"{stem}.pt"))
    code = f"""
import sys
for blocked in ("seqlight", "lightning", "pytorch_lightning", "torchmetrics"):
    sys.modules[blocked] = None  # any import of them raises ImportError
import numpy as np, onnxruntime, torch
worst = 0.0
for ts_path, onnx_path, data in {cases!r}:
    d = torch.load(data)
    with torch.no_grad():
        ts = torch.jit.load(ts_path)(d["x"])
    (ox,) = onnxruntime.InferenceSession(onnx_path).run(None, {{"input": d["x"].numpy()}})
    worst = max(worst, float((ts - d["want"]).abs().max()), float(np.abs(ox - d["want"].numpy()).max()))
assert "seqlight" not in {{k for k, v in sys.modules.items() if v is not None}}
print(worst)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert float(result.stdout.strip().splitlines()[-1]) <= TOL


def test_torchscript_matches_pytorch_in_process(exported):
    for name in sorted(MODELS):
        model, _, ts_path = exported[name]
        module = torch.jit.load(str(ts_path))
        x = _inputs(model, 3, _length(model) // 3, seed=3)
        with torch.no_grad():
            got, want = module(x), model.predict_step(x, 0)
        assert not got.requires_grad  # the served file asks autograd for nothing
        assert _max_diff(got, want) <= TOL, name


class _StubPreprocessing:
    """What the models' ``preprocessing`` provides to export: ``to_dict()`` with plain JSON values."""

    def to_dict(self):
        return {"kind": "stub", "mean": [1.5, -2.0], "std": [0.5, 3.0], "window": {"lookback": 1440, "step": 6}}


def test_json_describes_the_exported_model(tmp_path):
    model = RecurrentForecaster(num_features=JENA_FEATURES, units=[8], semantics="keras2")
    model.preprocessing = _StubPreprocessing()
    path = export_model(model, tmp_path / "serve" / "gru.onnx")
    assert path == tmp_path / "serve" / "gru.onnx" and path.is_file()
    info = json.loads((tmp_path / "serve" / "gru.json").read_text())
    assert info["format"] == "onnx" and info["file"] == "gru.onnx"
    assert {k: info["input"][k] for k in ("name", "dtype", "shape")} == {
        "name": "input",
        "dtype": "float32",
        "shape": ["batch", "time", JENA_FEATURES],
    }
    assert "preprocessing.mean" in info["input"]["description"]
    assert info["output"]["name"] == "output" and info["output"]["shape"] == ["batch"]
    assert info["output"]["dtype"] == "float32" and "standardized" in info["output"]["description"]
    assert info["model_class"] == "seqlight.models.recurrent_forecasters.RecurrentForecaster"
    assert info["hyper_parameters"]["semantics"] == "keras2" and info["hyper_parameters"]["units"] == [8]
    assert info["preprocessing"] == _StubPreprocessing().to_dict()
    assert info["seqlight_version"] == seqlight.__version__ and info["torch_version"] == torch.__version__
    assert sorted(p.name for p in (tmp_path / "serve").iterdir()) == ["gru.json", "gru.onnx"]  # no temporaries


def test_flatten_model_has_a_fixed_length(tmp_path):
    """The 6.1 Embedding -> Flatten classifier cannot take another length: the JSON and the graph say maxlen."""
    model = EmbeddingClassifier(num_words=1000, maxlen=20, embedding_dim=8)
    path = export_model(model, tmp_path / "emb.onnx")
    info = json.loads(path.with_suffix(".json").read_text())
    assert info["input"]["shape"] == ["batch", 20] and info["input"]["dtype"] == "int64"
    assert info["preprocessing"] is None
    assert "probability" in info["output"]["description"]
    dims = [d.dim_param or d.dim_value for d in onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 20]
    x = torch.randint(0, 1000, (4, 20))
    (got,) = ort.InferenceSession(str(path)).run(None, {"input": x.numpy()})
    with torch.no_grad():
        assert _max_diff(got, model.predict_proba(x)) <= TOL


def test_export_leaves_the_model_as_it_was(tmp_path):
    model = RecurrentClassifier(num_words=100, maxlen=12, embedding_dim=8, units=4)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    export_model(model, tmp_path / "m.pt", format="torchscript")
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_export_checks_its_arguments(tmp_path):
    model = RecurrentForecaster(num_features=3, units=[4])
    with pytest.raises(ValueError, match="format"):
        export_model(model, tmp_path / "m.onnx", format="tflite")
    with pytest.raises(ValueError, match="JSON"):
        export_model(model, tmp_path / "m.json")


class _Linear(lightning.LightningModule):
    """Not a seqlight model: its input is known only from an example."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 1)

    def predict_step(self, batch, batch_idx, dataloader_idx=0):
        return self.lin(batch).squeeze(-1)


def test_any_lightning_module_exports_with_an_example_input(tmp_path):
    with pytest.raises(ValueError, match="example_input"):
        export_model(_Linear(), tmp_path / "lin.onnx")
    path = export_model(_Linear(), tmp_path / "lin.onnx", example_input=torch.randn(2, 3))
    info = json.loads(path.with_suffix(".json").read_text())
    assert info["input"]["shape"] == ["batch", 3] and info["preprocessing"] is None  # 3 features: not a time axis
    x = torch.randn(7, 3)
    (got,) = ort.InferenceSession(str(path)).run(None, {"input": x.numpy()})
    assert got.shape == (7,)


# ------------------------------------------------------------------------------------------------- command line
def test_command_uses_model_class_for_checkpoints_that_do_not_record_it(tmp_path, capsys):
    model = RecurrentForecaster(num_features=JENA_FEATURES, units=[4], semantics="keras2")
    ckpt = _fit_and_save(model, tmp_path / "plain.ckpt")  # written in Python: no _class_path
    assert main(["--ckpt_path", str(ckpt)]) == 2
    assert "--model_class" in capsys.readouterr().err
    assert not (tmp_path / "plain.onnx").exists()
    code = main(["--ckpt_path", str(ckpt), "--model_class", "RecurrentForecaster", "--format", "torchscript"])
    assert code == 0
    printed = capsys.readouterr().out.split()
    assert str(tmp_path / "plain.pt") in printed and str(tmp_path / "plain.json") in printed
    assert json.loads((tmp_path / "plain.json").read_text())["format"] == "torchscript"


def test_command_reports_a_foreign_checkpoint_in_one_sentence(tmp_path, capsys):
    bad = tmp_path / "notes.ckpt"
    bad.write_text("not a checkpoint\n")
    assert main(["--ckpt_path", str(bad), "--format", "onnx"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("seqlight export: error:") and str(bad) in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.ckpt"]
    assert main(["--ckpt_path", str(tmp_path / "missing.ckpt")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_onnx_export_without_the_onnx_package_says_what_to_install(tmp_path, monkeypatch, capsys):
    model = RecurrentForecaster(num_features=JENA_FEATURES, units=[4])
    ckpt = _fit_and_save(model, tmp_path / "m.ckpt", _class_path(model))
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    assert main(["--ckpt_path", str(ckpt)]) == 2
    assert "pip install onnx" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.ckpt"]


def test_command_help_and_bad_options(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "seqlight export" in text and "onnx" in text and "torchscript" in text and "preprocessing" in text
    assert main(["--ckpt_path", "x.ckpt", "--format", "tflite"]) == 2
    assert "invalid choice" in capsys.readouterr().err
