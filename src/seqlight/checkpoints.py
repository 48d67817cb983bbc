"""Checkpoints and run folders: check a checkpoint before any work, find the latest run, claim a new one.

- :func:`read_checkpoint` opens a ``.ckpt`` file and checks that it is a whole Lightning checkpoint, so that a
  truncated, empty or foreign file is one clear :class:`CheckpointError` naming the file, raised before any
  data is read (Lightning would fail later, with ``OSError: [Errno 22]`` or ``KeyError``, and no file name).
- :func:`saved_settings` returns the model and DataModule classes and arguments a checkpoint was trained
  with (what LightningCLI records in its hyperparameters), and :func:`settings_differences` lists where a
  configuration disagrees with them.
- :func:`run_folder_of` and :func:`latest_checkpoint` map between checkpoints and the run folders a
  TensorBoard/CSV logger writes (``<save_dir>/<name>/version_<N>/checkpoints/*.ckpt``).
- :func:`claim_run_version` reserves the next ``version_<N>`` folder with an atomic ``mkdir``, so two runs
  started at the same moment never share a folder (Lightning's loggers pick "highest + 1" by listing the
  folder, which races).
"""

from __future__ import annotations

import importlib
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from seqlight.errors import SeqlightError

__all__ = [
    "CheckpointError",
    "read_checkpoint",
    "saved_settings",
    "settings_differences",
    "run_folder_of",
    "latest_checkpoint",
    "claim_run_version",
    "load_model",
]

_VERSION = re.compile(r"^version_(\d+)$")


class CheckpointError(SeqlightError, ValueError):
    """A checkpoint file is missing, damaged, not a Lightning checkpoint, or does not fit the configuration."""


def _looks_like_text(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(512)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in head


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load ``path`` on the CPU and check that it is a complete Lightning checkpoint; return its dict.

    Only tensors and plain Python values are unpickled (``weights_only=True``, as Lightning's own CLI does),
    so checking an untrusted file runs no code from it. Raises :class:`CheckpointError` with one sentence
    naming the file for: a missing file, a folder, an empty file, a file cut short while it was written
    (its zip directory is missing), a text file, a ``torch.save`` file that is not a Lightning checkpoint,
    and a file ``torch.load`` cannot read for another reason.
    """
    p = Path(path)
    if p.is_dir():
        hint = ""
        found = sorted(p.glob("**/last.ckpt"))
        if found:
            hint = f" (it contains {found[-1]})"
        raise CheckpointError(f"checkpoint {p} is a folder, not a checkpoint file: pass a .ckpt file{hint}")
    if not p.exists():
        raise CheckpointError(f"checkpoint {p} does not exist")
    size = p.stat().st_size
    if size == 0:
        raise CheckpointError(f"checkpoint {p} is empty (0 bytes): the process writing it probably died; use another")
    if not zipfile.is_zipfile(p):
        # torch.save has written zip archives since PyTorch 1.6; a zip whose end record is missing was cut short.
        if _looks_like_text(p):
            raise CheckpointError(f"checkpoint {p} is a text file, not a checkpoint written by Lightning")
        raise CheckpointError(
            f"checkpoint {p} is damaged or not a checkpoint: it is not a complete torch.save archive "
            f"({size:,} bytes; a file cut short while it was written looks like this)"
        )
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"checkpoint {p} cannot be read by torch.load: {first}") from e
    if not isinstance(ckpt, dict):
        raise CheckpointError(
            f"checkpoint {p} holds a {type(ckpt).__name__}, not a Lightning checkpoint (a dict with 'state_dict')"
        )
    missing = [k for k in ("state_dict", "pytorch-lightning_version") if k not in ckpt]
    if missing:
        keys = ", ".join(map(str, list(ckpt)[:6])) or "none"
        raise CheckpointError(
            f"checkpoint {p} is a torch.save file but not a Lightning checkpoint: it has no "
            f"{' or '.join(repr(m) for m in missing)} (its keys: {keys})"
        )
    return ckpt


def saved_settings(ckpt: dict[str, Any], key: str) -> tuple[str | None, dict[str, Any]]:
    """``(class_path, init_args)`` recorded in a checkpoint for ``key`` = ``"model"`` or ``"data"``.

    LightningCLI stores the class path as ``_class_path`` beside the arguments that
    ``save_hyperparameters`` records (``hyper_parameters`` for the model, ``datamodule_hyper_parameters``
    for the DataModule). ``class_path`` is ``None`` for a checkpoint written outside the CLI.
    """
    field = "hyper_parameters" if key == "model" else "datamodule_hyper_parameters"
    hparams = dict(ckpt.get(field) or {})
    hparams.pop("_instantiator", None)
    return hparams.pop("_class_path", None), hparams


def _plain(value: Any) -> Any:
    """A value in the form a YAML config and a checkpoint both reduce to (tuples as lists, paths as str)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "as_dict"):  # a jsonargparse Namespace
        return _plain(value.as_dict())
    return value


def settings_differences(
    configured: dict[str, Any], saved: dict[str, Any], ignore: set[str] | frozenset[str] = frozenset()
) -> list[tuple[str, Any, Any]]:
    """``(name, configured value, saved value)`` for each argument both sides set to different values.

    Arguments only one side has are not differences (an argument added since the checkpoint was written
    takes its default). ``ignore`` names arguments filled in from the data rather than by the user.
    """
    out = []
    for name in sorted(set(configured) & set(saved) - set(ignore)):
        a, b = _plain(configured[name]), _plain(saved[name])
        if a != b and not (isinstance(a, (int, float)) and isinstance(b, (int, float)) and float(a) == float(b)):
            out.append((name, a, b))
    return out


def run_folder_of(ckpt_path: str | os.PathLike) -> Path | None:
    """The run folder (``.../version_<N>``) a checkpoint was written into, or ``None`` if it is elsewhere."""
    p = Path(ckpt_path).resolve()
    if p.parent.name == "checkpoints" and _VERSION.match(p.parent.parent.name):
        return p.parent.parent
    return None


def _versions(experiment_dir: Path) -> list[int]:
    if not experiment_dir.is_dir():
        return []
    return sorted(int(m.group(1)) for d in experiment_dir.iterdir() if (m := _VERSION.match(d.name)) and d.is_dir())


def latest_checkpoint(experiment_dir: str | os.PathLike) -> Path | None:
    """``last.ckpt`` of the newest run (highest ``version_<N>``) under ``experiment_dir`` that has one."""
    experiment_dir = Path(experiment_dir)
    for v in reversed(_versions(experiment_dir)):
        candidate = experiment_dir / f"version_{v}" / "checkpoints" / "last.ckpt"
        if candidate.is_file():
            return candidate
    return None


def claim_run_version(experiment_dir: str | os.PathLike) -> int:
    """Create ``experiment_dir/version_<N>`` for the smallest free N above the existing ones; return N.

    ``os.mkdir`` either creates the folder or fails because it exists, atomically, so concurrent runs
    each get a folder of their own.
    """
    experiment_dir = Path(experiment_dir)
    experiment_dir.mkdir(parents=True, exist_ok=True)
    existing = _versions(experiment_dir)
    n = existing[-1] + 1 if existing else 0
    while True:
        try:
            os.mkdir(experiment_dir / f"version_{n}")
            return n
        except FileExistsError:
            n += 1


def _model_class(class_path: str, ckpt_path: Path):
    """Import ``class_path`` (``package.module.Class``, or a bare name of :mod:`seqlight.models`)."""
    from lightning.pytorch import LightningModule

    module_name, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name or "seqlight.models"), name)
    except (ImportError, AttributeError) as e:
        raise CheckpointError(
            f"checkpoint {ckpt_path} names the model class {class_path!r}, which cannot be imported: {e}"
        ) from e
    if not (isinstance(cls, type) and issubclass(cls, LightningModule)):
        raise CheckpointError(
            f"checkpoint {ckpt_path} names {class_path!r} as its model, which is not a LightningModule"
        )
    return cls


def load_model(ckpt_path: str | os.PathLike, family: type | None = None, command: str | None = None,
               model_class: str | None = None):  # fmt: skip
    """The model saved in ``ckpt_path``, on the CPU in eval mode: its class as the checkpoint records it (what
    ``seqlight fit`` writes), else ``model_class``; weights and preprocessing from the checkpoint alone.

    ``family`` is the base class the caller needs (e.g. :class:`~seqlight.models.Forecaster` for ``seqlight
    forecast``, named by ``command``); a model of another family is refused. Raises :class:`CheckpointError`
    (one sentence naming the file) for a damaged or foreign file, an unknown class, another family, or
    weights that do not fit the class.
    """
    ckpt_path = Path(ckpt_path)
    class_path, _ = saved_settings(read_checkpoint(ckpt_path), "model")
    class_path = class_path or model_class
    if class_path is None:
        raise CheckpointError(
            f"checkpoint {ckpt_path} does not record its model class (it was not written by `seqlight fit`): pass "
            "the class (e.g. --model_class seqlight.models.RecurrentForecaster), or in Python use "
            "YourModelClass.load_from_checkpoint(path)"
        )
    cls = _model_class(class_path, ckpt_path)
    if family is not None and not issubclass(cls, family):
        hint = {"forecast": " (try `seqlight classify`)", "classify": " (try `seqlight forecast`)"}.get(command, "")
        raise CheckpointError(
            f"checkpoint {ckpt_path} holds a {cls.__name__}, not a {family.__name__}: "
            f"`seqlight {command}` cannot use it{hint}"
        )
    try:
        return cls.load_from_checkpoint(ckpt_path, map_location="cpu").eval()
    except (RuntimeError, TypeError, ValueError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"checkpoint {ckpt_path} cannot be loaded as {cls.__name__}: {first}") from e
