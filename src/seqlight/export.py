"""Export a trained seqlight model for serving: a TorchScript or ONNX file that runs without seqlight, and a JSON.

``seqlight export --ckpt_path runs/jena_gru/version_0/checkpoints/last.ckpt --format onnx`` writes
``last.onnx`` and ``last.json`` beside the checkpoint; in Python, :func:`export_model` does the same for a
model object. What is exported is what ``predict_step`` returns, i.e. what a server answers:

- forecasters: float32 windows ``(batch, time, features)``, standardized as in training -> the standardized
  temperature ``(batch,)`` (times the target's std plus its mean, both in the JSON's ``preprocessing``, for
  degrees Celsius);
- classifiers: int64 padded word indices ``(batch, maxlen)`` -> the probability of a positive review ``(batch,)``.

The batch dimension is always dynamic. The time dimension is dynamic wherever the model allows it (recurrent
and convolutional models) and fixed where it does not (a ``Flatten`` over the whole sequence: the dense Jena
forecaster, the 6.1 embedding classifiers). Which one it is, is not guessed from the class: the traced model
is run on a longer input and compared with the model itself; the JSON records the outcome as a symbolic
(``"time"``) or fixed size.

Mechanism: one ``torch.jit.trace`` of the model in eval mode, saved as is (TorchScript) or converted by
PyTorch's TorchScript-based ONNX exporter. The recurrent layers take a TorchScript-compiled loop while they are
traced (:mod:`seqlight.nn._loop`): the Keras 2.0.8 semantics (``hard_sigmoid``, the reset-before GRU) export as
they run, and the sequence length stays a loop bound rather than ``T`` unrolled steps. The fused kernels
(Keras 3 semantics) export as ONNX ``GRU``/``LSTM``/``RNN`` nodes. PyTorch's newer ``torch.export``-based
ONNX exporter (the default of ``torch.onnx.export`` since 2.9) would unroll the loop and fix the length; the
TorchScript-based one is deprecated but present in the PyTorch versions seqlight supports.

The JSON beside the model file (``<stem>.json``)::

    {"format": "onnx", "file": "last.onnx",
     "input": {"name": "input", "dtype": "float32", "shape": ["batch", "time", 14]},
     "output": {"name": "output", "dtype": "float32", "shape": ["batch"], "description": "..."},
     "model_class": "seqlight.models.recurrent_forecasters.RecurrentForecaster",
     "hyper_parameters": {...}, "preprocessing": {...} or null,
     "seqlight_version": "...", "torch_version": "..."}
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningModule
from torch import Tensor, nn

import seqlight
from seqlight.checkpoints import load_model
from seqlight.errors import SeqlightError
from seqlight.files import atomic_path

__all__ = ["ExportError", "FORMATS", "ONNX_OPSET", "default_example_input", "export_model", "load_model", "main"]

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}  # format -> file suffix of the default output
ONNX_OPSET = 17  # has every op the models use (Loop, GRU, LSTM, ...); ONNX Runtime runs it since 2022
_INPUT, _OUTPUT = "input", "output"


class ExportError(SeqlightError, RuntimeError):
    """The export cannot run here (a package it needs is missing)."""


def _require_onnx() -> None:
    # PyTorch's ONNX exporter serializes through the onnx package, and says so only deep in the export.
    try:
        import onnx  # noqa: F401
    except ImportError as e:
        raise ExportError(
            "ONNX export needs the onnx package (pip install onnx; onnxruntime to run the file), "
            "or export with --format torchscript"
        ) from e


class _Served(nn.Module):
    """What a server calls: the model's ``predict_step`` on one batch (probabilities, standardized forecasts)."""

    def __init__(self, model: LightningModule) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model.predict_step(x, 0)


def _model_kind(model: LightningModule) -> str | None:
    # Imported here: seqlight.models imports lazily, and export must not pull in every model to export one.
    from seqlight.models.classifiers import Classifier
    from seqlight.models.forecasting import Forecaster

    if isinstance(model, Classifier):
        return "classifier"
    if isinstance(model, Forecaster):
        return "forecaster"
    return None


def default_example_input(model: LightningModule, batch: int = 2) -> Tensor:
    """A batch the model accepts, for tracing: seeded, so that two exports of one model write the same file.

    Classifiers: word indices in ``[1, num_words)``, ``maxlen`` long (100 when the model has no ``maxlen``).
    Forecasters: standard normal windows of ``num_features``, as long as the training windows (the
    ``timesteps`` hyperparameter, else the preprocessing's window, else the book's 240 steps).
    """
    gen = torch.Generator().manual_seed(0)
    kind = _model_kind(model)
    if kind == "classifier":
        length = int(model.maxlen or 100)
        return torch.randint(1, max(model.num_words, 2), (batch, length), generator=gen)
    if kind == "forecaster":
        features = model.num_features
        length = model.hparams.get("timesteps") or getattr(getattr(model, "preprocessing", None), "timesteps", 240)
        return torch.randn(batch, int(length), int(features), generator=gen)
    raise ValueError(
        f"export_model does not know the input of {type(model).__name__}: pass example_input, a batch the model's "
        "predict_step accepts"
    )


def _grow(x: Tensor, dim: int, extra: int) -> Tensor:
    """``x`` with ``extra`` more entries along ``dim``, copied from its own (so word indices stay in range)."""
    return torch.cat([x, x.narrow(dim, 0, min(extra, x.shape[dim]))], dim)


def _same_as_model(traced, served: nn.Module, x: Tensor) -> bool:
    """Whether the traced module runs on ``x`` and agrees with the model (a trace that baked a size in does not)."""
    try:
        got = traced(x)
    except RuntimeError:
        return False
    want = served(x)
    return got.shape == want.shape and torch.allclose(got, want, rtol=1e-4, atol=1e-5)


@contextlib.contextmanager
def _quiet_export():
    """Silence the warnings that tracing and the ONNX conversion print for every seqlight model.

    - ``DeprecationWarning``: PyTorch >= 2.9 marks TorchScript (``torch.jit.trace``/``script``) and the ONNX
      exporter built on it as deprecated; the module docstring says why they are used all the same.
      (torchmetrics adds one when the tracer reads every attribute of a forecaster's metrics.)
    - ``TracerWarning``: Python values read from tensors (the layers' input checks) become constants of the
      trace; the sizes that must stay free are checked by running the trace at other sizes (:func:`_trace`).
    - the ONNX exporter's advice to export GRUs with batch size 1: our zero initial state is built from the
      input's batch size inside the graph, which is exactly what that advice is about (the tests run two
      batch sizes); and its note that a traced ``forward`` has no Python signature (there is one input).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size other than 1")
        warnings.filterwarnings("ignore", message="no signature found for <torch.ScriptMethod")
        yield


def _serving_copy(model: LightningModule) -> LightningModule:
    """A copy of ``model`` to trace: on the CPU, in eval mode, without gradients (so that neither the traced
    module's parameters nor its outputs ask autograd for anything); the caller's model is left as it is.
    (Copying a LightningModule leaves its Trainer behind: ``LightningModule.__getstate__``.)"""
    return copy.deepcopy(model).cpu().eval().requires_grad_(False)


@contextlib.contextmanager
def _lightning_trace_flag():
    """``torch.jit.trace`` reads every attribute of a module, and a LightningModule's ``trainer`` raises outside a
    Trainer unless Lightning's flag for scripting is set, as ``LightningModule.to_torchscript`` sets it."""
    flag = LightningModule._jit_is_scripting
    LightningModule._jit_is_scripting = True
    try:
        yield
    finally:
        LightningModule._jit_is_scripting = flag


def _trace(served: nn.Module, x: Tensor) -> tuple[torch.jit.ScriptModule, bool]:
    """Trace ``served`` on ``x``; return the trace and whether its time dimension (dim 1) is free.

    The batch dimension must be free: the trace is run on one more row and compared with the model.
    """
    with torch.no_grad(), _lightning_trace_flag():
        traced = torch.jit.trace(served, (x,), check_trace=False)
        if not _same_as_model(traced, served, _grow(x, 0, 1)):
            raise RuntimeError(
                f"the traced {type(served.model).__name__} does not answer a batch of another size as the model does; "
                "it cannot be exported with a dynamic batch dimension"
            )
        dynamic_time = x.dim() >= 2 and _same_as_model(traced, served, _grow(x, 1, 3))
    return traced, dynamic_time


def _json_value(value: Any) -> Any:
    """``value`` as plain JSON (lists, str-keyed dicts, numbers, strings; anything else as its ``str``)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def _describe(kind: str | None) -> tuple[str, str]:
    """What the input and the output mean, for the JSON (``preprocessing`` is the JSON's own key)."""
    if kind == "classifier":
        return (
            "word indices, padded or truncated to the model's length as in training (preprocessing: the tokenizer "
            "or word index and pad_sequences' settings)",
            "probability that each review is positive",
        )
    if kind == "forecaster":
        return (
            "windows of the columns preprocessing.features, each minus its preprocessing.mean and divided by its "
            "preprocessing.std; rows preprocessing.step apart, oldest first (newest first if preprocessing.reverse)",
            "standardized prediction of preprocessing.target: times its std plus its mean (at its position in "
            "preprocessing.features) gives it in its own unit (degrees Celsius for Jena)",
        )
    return "what the model's predict_step takes", "what the model's predict_step returns"


def export_model(
    model: LightningModule,
    path: str | os.PathLike,
    format: str = "onnx",
    example_input: Tensor | None = None,
) -> Path:
    """Write ``model`` for serving to ``path`` (TorchScript or ONNX) and ``<path stem>.json`` beside it.

    The exported program is the model's ``predict_step`` in eval mode on the CPU (see the module docstring for
    inputs and outputs). Nothing of seqlight is needed to run it: ``onnxruntime.InferenceSession(path)``, or
    ``torch.jit.load(path)``. Both files are written to a temporary name and renamed when complete.

    Args:
        model: a seqlight LightningModule (a forecaster or a classifier), or any LightningModule whose
            ``predict_step(batch, 0)`` takes one tensor, with ``example_input``. A copy is exported (on the
            CPU, in eval mode); ``model`` itself is not changed.
        path: the model file to write (by convention ``.onnx`` or ``.pt``); its folder is created.
        format: ``"onnx"`` or ``"torchscript"``.
        example_input: a batch to trace with; by default :func:`default_example_input`.

    Returns:
        ``path`` as a :class:`~pathlib.Path` (the JSON is ``path.with_suffix(".json")``).

    Raises:
        ExportError: ``format="onnx"`` without the ``onnx`` package installed.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {sorted(FORMATS)}, got {format!r}")
    path = Path(path)
    if path.suffix == ".json":
        raise ValueError(f"{path} would be overwritten by the JSON written beside the model: choose another suffix")
    if format == "onnx":
        _require_onnx()
    kind = _model_kind(model)
    x = (default_example_input(model) if example_input is None else example_input).cpu()
    with _quiet_export():
        served = _Served(_serving_copy(model))
        traced, dynamic_time = _trace(served, x)
        with torch.no_grad():
            y = served(x)
        axes = {0: "batch", 1: "time"} if dynamic_time else {0: "batch"}
        with atomic_path(path) as tmp:
            if format == "torchscript":
                traced.save(str(tmp))
            else:
                torch.onnx.export(
                    traced,
                    (x,),
                    str(tmp),
                    dynamo=False,  # the TorchScript-based exporter (module docstring)
                    opset_version=ONNX_OPSET,
                    input_names=[_INPUT],
                    output_names=[_OUTPUT],
                    dynamic_axes={_INPUT: axes, _OUTPUT: {0: "batch"}},
                )
    preprocessing = getattr(model, "preprocessing", None)
    about_input, about_output = _describe(kind)
    info = {
        "format": format,
        "file": path.name,
        "input": {
            "name": _INPUT,
            "dtype": str(x.dtype).removeprefix("torch."),
            "shape": [axes.get(d, size) for d, size in enumerate(x.shape)],
            "description": about_input,
        },
        "output": {
            "name": _OUTPUT,
            "dtype": str(y.dtype).removeprefix("torch."),
            "shape": [axes.get(d, size) if d == 0 else size for d, size in enumerate(y.shape)],
            "description": about_output,
        },
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "hyper_parameters": _json_value({k: v for k, v in model.hparams.items() if not str(k).startswith("_")}),
        "preprocessing": None if preprocessing is None else _json_value(preprocessing.to_dict()),
        "seqlight_version": seqlight.__version__,
        "torch_version": torch.__version__,
    }
    with atomic_path(path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(info, indent=2) + "\n")
    return path


# ------------------------------------------------------------------------------------------------- command line
_DESCRIPTION = """\
Export a trained model for serving: a file that runs without seqlight (ONNX Runtime, or torch.jit.load), and
<name>.json beside it with the input and output (names, dtypes, shapes with "batch"/"time" for the sizes that
may vary), the model class and hyperparameters, and the preprocessing learned from the training data (Jena:
the columns' mean and std and the window; IMDB: the tokenizer or word index). The model computes what
`seqlight predict` returns: forecasters take standardized windows (batch, time, features) and give the
standardized temperature; classifiers take padded word indices (batch, maxlen) and give the probability of a
positive review.
"""

_EPILOG = """\
examples:
  seqlight export --ckpt_path runs/jena_gru/version_0/checkpoints/last.ckpt --format onnx
  seqlight export --ckpt_path best.ckpt --format torchscript --output serving/model.pt

serving without seqlight:
  onnxruntime.InferenceSession("last.onnx").run(None, {"input": windows})[0]
  torch.jit.load("last.pt")(torch.from_numpy(windows))
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="seqlight export",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--ckpt_path", required=True, help="the checkpoint to export (a .ckpt written by seqlight fit)")
    p.add_argument(
        "--format", choices=sorted(FORMATS), default="onnx", help="onnx (default) or torchscript (a .pt file)"
    )
    p.add_argument(
        "--output",
        default=None,
        help="the model file to write (default: beside the checkpoint, <checkpoint name>.onnx or .pt); "
        "the JSON is written beside it with the suffix .json",
    )
    p.add_argument(
        "--model_class",
        default=None,
        help="the model's class (e.g. seqlight.models.RecurrentForecaster), for checkpoints that do not record it "
        "(written by a Trainer in Python rather than by the seqlight command)",
    )
    return p


def main(argv: list[str]) -> int:
    """``seqlight export``: parse ``argv`` (the arguments after ``export``), export, print the written paths.

    Returns the exit code: 0 on success, 2 for a user's mistake (printed as one paragraph on stderr; the
    traceback too with ``SEQLIGHT_DEBUG=1``) or a bad option (argparse's message).
    """
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:  # --help, or a bad option (argparse printed why)
        return int(e.code or 0)
    try:
        ckpt_path = Path(args.ckpt_path)
        output = Path(args.output) if args.output else ckpt_path.with_suffix(FORMATS[args.format])
        model = load_model(ckpt_path, model_class=args.model_class)
        written = export_model(model, output, format=args.format)
    except SeqlightError as e:
        if os.environ.get("SEQLIGHT_DEBUG"):
            raise
        print(f"seqlight export: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {written}")
    print(f"wrote {written.with_suffix('.json')}")
    return 0


if __name__ == "__main__":  # python -m seqlight.export ...
    raise SystemExit(main(sys.argv[1:]))
