"""Where seqlight's runs and datasets go: the current folder, or ``$SEQLIGHT_HOME``.

The configs log to ``runs/<experiment>/version_N`` and the DataModules read and download into ``datasets``:
relative paths, so by default both land in the folder the command runs from (as with ``lightning_logs``).
Set ``SEQLIGHT_HOME`` to keep them in one place whatever the current folder: every *relative* ``data_dir``
and logger ``save_dir`` is then taken relative to it (``$SEQLIGHT_HOME/runs``, ``$SEQLIGHT_HOME/datasets``,
``$SEQLIGHT_HOME/mydata`` for ``data_dir: mydata``); absolute paths are used as given.

:func:`resolve_home_path` is that one rule. The DataModules apply it to ``data_dir``; the command line applies
it to the logger's ``save_dir`` when the configuration is parsed (:func:`resolve_run_paths`), and prints
where each run writes (:class:`AnnounceFolders`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from lightning.pytorch import Callback

__all__ = ["HOME_ENV", "AnnounceFolders", "resolve_home_path", "resolve_run_paths"]

HOME_ENV = "SEQLIGHT_HOME"


def resolve_home_path(path: str | os.PathLike) -> Path:
    """``path`` as seqlight uses it: relative paths are taken relative to ``$SEQLIGHT_HOME`` when that is set
    (and not empty), else left relative to the current folder; ``~`` is expanded; absolute paths are unchanged.

    >>> os.environ["SEQLIGHT_HOME"] = "/srv/seqlight"      # doctest: +SKIP
    >>> resolve_home_path("datasets")                       # doctest: +SKIP
    PosixPath('/srv/seqlight/datasets')
    """
    path = Path(path).expanduser()
    home = os.environ.get(HOME_ENV)
    if path.is_absolute() or not home:
        return path
    return Path(home).expanduser() / path


def resolve_run_paths(config) -> None:
    """Apply :func:`resolve_home_path` to every logger's ``save_dir`` in a parsed LightningCLI configuration
    (in place; the whole parse result with its ``subcommand``, or one subcommand's part). Without
    ``$SEQLIGHT_HOME`` nothing changes."""
    if not os.environ.get(HOME_ENV) or config is None:
        return
    subcommand = config.get("subcommand")
    cfg = config.get(subcommand) if subcommand else config
    trainer = cfg.get("trainer") if cfg is not None else None
    if trainer is None:
        return
    loggers = trainer.get("logger")
    for logger in loggers if isinstance(loggers, list) else [loggers]:
        init_args = getattr(logger, "init_args", None)
        save_dir = init_args.get("save_dir") if init_args is not None else None
        if isinstance(save_dir, (str, os.PathLike)) and str(save_dir):
            init_args.save_dir = str(resolve_home_path(save_dir))


class AnnounceFolders(Callback):
    """Print, once at the start of fit/validate/test/predict, the run folder (logs, ``config.yaml``,
    checkpoints) and the DataModule's data folder, on stderr, from the first process only."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        if not trainer.is_global_zero:
            return
        stage = getattr(stage, "value", stage)  # Lightning passes a TrainerFn ("fit", "validate", ...)
        print(f"seqlight: {stage}: {describe_folders(trainer)}", file=sys.stderr, flush=True)


def describe_folders(trainer) -> str:
    """``run folder X; data folder Y`` for a Trainer about to run (see :class:`AnnounceFolders`)."""
    if trainer.logger is None or trainer.fast_dev_run:
        run = "run folder: none (no logger, or fast_dev_run: nothing is written)"
    else:
        log_dir = getattr(trainer.logger, "log_dir", None) or trainer.logger.save_dir
        run = f"run folder {Path(log_dir).absolute()}" if log_dir else "run folder: none"
    data_dir = getattr(trainer.datamodule, "data_dir", None)
    data = f"; data folder {Path(data_dir).absolute()}" if data_dir is not None else ""
    return run + data
