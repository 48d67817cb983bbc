"""``python -m seqlight`` / ``seqlight``: LightningCLI over every seqlight model and DataModule.

Usage::

    python -m seqlight fit --config configs/jena_gru.yaml
    python -m seqlight fit --config configs/jena_gru.yaml --ckpt_path last      # resume the latest run
    python -m seqlight validate --config configs/jena_naive.yaml
    python -m seqlight fit --config configs/jena_gru.yaml --print_config
    python -m seqlight test --config configs/jena_gru.yaml --ckpt_path runs/jena_gru/version_0/checkpoints/last.ckpt

Models and DataModules are chosen by ``class_path`` in the config (subclass mode), so any
LightningModule/LightningDataModule importable by name works, seqlight's or your own.

Sizes the data states (number of input features, window length, target column, vocabulary size,
sequence length, embedding dimension) are linked from the DataModule into the model's constructor: the CLI
builds the DataModule once (which reads no data), reads each property in ``DATA_TO_MODEL_LINKS`` that the
chosen model's constructor accepts, sets it in the model's config, and hands that DataModule to Lightning.
Because the values arrive as constructor arguments, they are in the run's ``config.yaml``, in
``--print_config`` and in the checkpoint's hparams. What can only be learned from the data (the scaling,
the fitted tokenizer) reaches the model at ``setup`` as its ``preprocessing`` and is kept in the checkpoint
(see :mod:`seqlight.data.preprocessing`).

Checkpoints (see README, "Checkpoints, crashes and resume"):

- ``--ckpt_path`` is checked before any data is read: a damaged or foreign file is one sentence naming it.
- The checkpoint's model class and settings must match the configuration (the data-derived sizes above
  aside); a difference is an error naming both sides, unless ``--use_ckpt_settings true`` asks to continue
  with the checkpoint's own model settings.
- ``--ckpt_path last`` is the ``last.ckpt`` of the newest run of the experiment (the logger's
  ``save_dir/name``). Resuming a ``fit`` continues in the checkpoint's own run folder (same TensorBoard
  curves, same best checkpoint and score), and :class:`seqlight.callbacks.EpochSeeds` makes it exact.
- A new run claims its ``version_<N>`` folder atomically, so concurrent runs never share one, and removes it
  again if it fails before writing any result or leaves it empty.

Every run gets :class:`seqlight.callbacks.RunSummary`: ``metrics.json`` in the run folder, the table printed
at the end of fit/validate/test, TensorBoard charts, figures and hparams.

A user's mistake (a bad option, a value out of range, a malformed data file, a bad checkpoint) ends with
one paragraph on stderr and exit code 2; ``SEQLIGHT_DEBUG=1`` shows the traceback too.
"""

from __future__ import annotations

import inspect
import os
import re
import sys
import warnings
from importlib import import_module
from pathlib import Path

from jsonargparse import ArgumentError, Namespace
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import ProgressBar as ProgressBarBase
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback
from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters_context

from seqlight.callbacks import EpochSeeds, PredictionWriter, ProgressBar, RunSummary
from seqlight.checkpoints import (
    CheckpointError,
    claim_run_version,
    latest_checkpoint,
    read_checkpoint,
    run_folder_of,
    saved_settings,
    settings_differences,
)
from seqlight.commands import HomeAwareParser, resolve_config_args, run_command
from seqlight.errors import SeqlightError
from seqlight.home import AnnounceFolders
from seqlight.threads import configure_threads  # noqa: F401 (also importable from here, as before)

# (DataModule property, model constructor argument)
DATA_TO_MODEL_LINKS = [
    ("num_features", "num_features"),
    ("timesteps", "timesteps"),
    ("target_index", "target_index"),
    ("num_words", "num_words"),
    ("maxlen", "maxlen"),
    ("embedding_dim", "embedding_dim"),
]
LINKED_ARGUMENTS = frozenset(target for _, target in DATA_TO_MODEL_LINKS)
INSTANTIATOR = "lightning.pytorch.cli.instantiate_module"  # what LightningCLI records beside a class path

# The run folder that rank 0 claimed, handed to the processes Lightning launches for DDP (they re-run the
# same command line and must log into the same folder, not claim another).
_RUN_VERSION_ENV = "SEQLIGHT_RUN_VERSION"
# The run folder this process claimed (not a resumed or inherited one): main() removes it if the run leaves
# nothing in it worth keeping (see _drop_unused_run_folder).
_claimed_run: Path | None = None
# Whether this process set _RUN_VERSION_ENV (for the processes it launches): the next main() in this process
# (library use, tests) is another run and must choose its own folder.
_run_version_set_here = False
# What makes a failed run's folder worth keeping: something to resume from, report or read.
_RUN_RESULTS = ("metrics.json", "checkpoints/*.ckpt", "predictions*.csv")


class ConfigError(SeqlightError, ValueError):
    """An option or configuration value is wrong; the message names it."""


class _SaveConfigToRunFolder(SaveConfigCallback):
    """Lightning's config saver, except that a run without a logger (``--trainer.logger false``) has no run
    folder, so nothing is written (Lightning would write ``config.yaml`` into the current folder)."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        if trainer.logger is None:
            return
        super().setup(trainer, pl_module, stage)


class _Trainer(Trainer):
    """Lightning's ``Trainer`` with its ``limit_*_batches`` typed as their meaning is: Lightning annotates them
    ``Union[float, int, None]``, so the command line's parser tried float first and ``--trainer.limit_train_batches
    1`` (one batch) became ``1.0`` (every batch). Everything else is Lightning's.

    Args:
        limit_train_batches: how much of the training set an epoch sees: an int is a number of batches, a float in
            [0, 1] a fraction (``1``: one batch; ``1.0``: all of them). Default: all.
        limit_val_batches: the same for validation.
        limit_test_batches: the same for testing.
        limit_predict_batches: the same for prediction.
    """

    def __init__(
        self,
        *args,
        limit_train_batches: int | float | None = None,
        limit_val_batches: int | float | None = None,
        limit_test_batches: int | float | None = None,
        limit_predict_batches: int | float | None = None,
        **kwargs,
    ) -> None:
        super().__init__(
            *args,
            limit_train_batches=limit_train_batches,
            limit_val_batches=limit_val_batches,
            limit_test_batches=limit_test_batches,
            limit_predict_batches=limit_predict_batches,
            **kwargs,
        )


class SeqlightCLI(LightningCLI):
    def init_parser(self, **kwargs):
        # Raise parse errors instead of printing 60 lines of usage: main() prints one paragraph.
        kwargs["exit_on_error"] = False
        return super().init_parser(**kwargs)

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument(
            "--num_threads",
            type=int | None,
            default=None,
            help="torch intra-op threads (default: $SEQLIGHT_NUM_THREADS, else 1; see README, Threads).",
        )
        parser.add_argument(
            "--use_ckpt_settings",
            type=bool,
            default=False,
            help="With --ckpt_path: build the model with the settings saved in the checkpoint instead of the "
            "config's (by default a difference between the two is an error that names both sides).",
        )

    def instantiate_trainer(self, **kwargs):
        """Lightning's, with seqlight's :class:`~seqlight.callbacks.ProgressBar` (redrawn a few times a second)
        where the run shows a progress bar and configures none of its own."""
        trainer = self._get(self.config_init, "trainer", default={})
        configured = trainer.get("callbacks") or []
        configured = list(configured) if isinstance(configured, (list, tuple)) else [configured]
        if (
            "callbacks" not in kwargs
            and trainer.get("enable_progress_bar") is not False
            and not any(isinstance(c, ProgressBarBase) for c in configured)
        ):
            kwargs["callbacks"] = [*configured, ProgressBar()]
        return super().instantiate_trainer(**kwargs)

    # ------------------------------------------------------------------ checkpoints
    def _parse_ckpt_path(self) -> None:
        """Check ``--ckpt_path`` against the configuration, before any data is read (see the module doc)."""
        subcommand = self.config.get("subcommand")
        if not subcommand:
            return
        cfg = self.config[subcommand]
        ckpt_path = cfg.get("ckpt_path")
        if not ckpt_path:
            return
        if ckpt_path == "last":
            ckpt_path = cfg.ckpt_path = str(self._latest_checkpoint(cfg))
            print(f"seqlight: resuming from {ckpt_path}", file=sys.stderr)
        elif ckpt_path in ("best", "hpc", "registry"):
            return  # Lightning's own meanings, resolved by the Trainer
        ckpt = read_checkpoint(ckpt_path)
        self._ckpt_global_step = int(ckpt.get("global_step", 0))
        self._check_against_checkpoint(subcommand, cfg, ckpt_path, ckpt)
        if cfg.get("use_ckpt_settings"):
            super()._parse_ckpt_path()  # Lightning's behaviour: the checkpoint's model settings win

    @staticmethod
    def _logger_args(cfg):
        """The init_args of a single configured logger that writes ``save_dir/name/version_N``, else None."""
        logger = cfg.get("trainer", {}).get("logger")
        init_args = getattr(logger, "init_args", None) if logger is not None else None
        if init_args is None or not init_args.get("save_dir") or "name" not in init_args:
            return None
        return init_args

    def _latest_checkpoint(self, cfg) -> Path:
        args = self._logger_args(cfg)
        if args is None:
            raise ConfigError(
                "--ckpt_path last needs a logger with save_dir and name (as in the seqlight configs), to know where "
                "the runs of this experiment are; pass the checkpoint's path instead"
            )
        experiment = Path(args.save_dir) / str(args.name)
        found = latest_checkpoint(experiment)
        if found is None:
            raise CheckpointError(
                f"--ckpt_path last: no run of this experiment has a last.ckpt under {experiment}; "
                "run fit without --ckpt_path to start one"
            )
        return found

    @staticmethod
    def _check_against_checkpoint(subcommand: str, cfg, ckpt_path: str, ckpt: dict) -> None:
        saved_model, saved_model_args = saved_settings(ckpt, "model")
        saved_data, saved_data_args = saved_settings(ckpt, "data")
        model_cfg, data_cfg = cfg.get("model"), cfg.get("data")
        override = "--use_ckpt_settings true"
        if saved_data and data_cfg is not None and data_cfg.get("class_path") not in (None, saved_data):
            raise CheckpointError(
                f"{ckpt_path} was trained on {saved_data}, but the configuration reads {data_cfg.class_path}: "
                "the model cannot take this data. Use the config the checkpoint was trained with."
            )
        if cfg.get("use_ckpt_settings") or model_cfg is None:
            return
        if saved_model and model_cfg.get("class_path") != saved_model:
            raise CheckpointError(
                f"{ckpt_path} holds a {saved_model}, but the configuration builds a {model_cfg.class_path}. "
                f"Use the config the checkpoint was trained with, or pass {override} to continue the "
                "checkpoint's own model."
            )
        configured = model_cfg.get("init_args")
        diffs = settings_differences(configured.as_dict() if configured else {}, saved_model_args, LINKED_ARGUMENTS)
        if diffs:
            listed = "; ".join(f"{name}: {a!r} here, {b!r} in the checkpoint" for name, a, b in diffs)
            raise CheckpointError(
                f"the model settings differ from those {ckpt_path} was trained with ({listed}). Change them back, "
                f"or pass {override} to continue with the checkpoint's settings."
            )
        if subcommand == "fit" and data_cfg is not None and data_cfg.get("init_args") is not None:
            diffs = settings_differences(data_cfg.init_args.as_dict(), saved_data_args)
            if diffs:
                listed = "; ".join(f"{name}: {a!r} here, {b!r} in the checkpoint" for name, a, b in diffs)
                warnings.warn(
                    f"the data settings differ from those {ckpt_path} was trained with ({listed}): training "
                    "continues on other data, so it will not match an uninterrupted run",
                    stacklevel=1,
                )

    # ------------------------------------------------------------------ instantiation
    def before_instantiate_classes(self) -> None:
        cfg = self.config.get(self.subcommand, self.config) if self.subcommand else self.config
        configure_threads(cfg.get("num_threads"))

    def instantiate_classes(self) -> None:
        """Build the DataModule once (no data is read), link its sizes into the model's arguments, build the
        model and the Trainer, and hand Lightning that same DataModule instance."""
        cfg = self.config[self.subcommand] if self.subcommand else self.config
        data_cfg = cfg.get("data")
        try:
            datamodule = self._link_data_to_model(cfg)
            if self.subcommand:
                self._choose_run_folder(cfg)
            if datamodule is not None:
                self._dump_config()  # (LightningCLI's instantiator reads this dump of the whole config)
                cfg.data = None  # built above: LightningCLI must not build a second one
            try:
                super().instantiate_classes()
            finally:
                cfg.data = data_cfg  # the saved config.yaml keeps the data section
        except (ValueError, MisconfigurationException) as e:
            if isinstance(e, SeqlightError):
                raise
            raise ConfigError(f"invalid setting{_raised_by(e)}: {e}") from e
        if datamodule is not None:
            self.datamodule = datamodule
            self.config_init[self.subcommand]["data"] = datamodule
        self._warn_if_untrained(cfg)

    def parse_arguments(self, parser, args) -> None:
        """As LightningCLI's, except that ``--print_config`` shows the sizes linked from the DataModule (the
        model's ``num_features``, ``timesteps``...) rather than ``null``: it is applied after the links."""
        argv = list(sys.argv[1:] if args is None else args) if not isinstance(args, (dict, Namespace)) else None
        flags = [a for a in argv or [] if a == "--print_config" or a.startswith("--print_config=")]
        if not flags:
            return super().parse_arguments(parser, args)
        super().parse_arguments(parser, [a for a in argv if a not in flags])
        subcommand = self.config.get("subcommand")
        cfg = self.config[subcommand] if subcommand else self.config
        self._link_data_to_model(cfg)
        sub_parser = self._parser(subcommand)
        skip_null = flags[-1].partition("=")[2] == "skip_null"
        print(sub_parser.dump(cfg, skip_none=skip_null), end="")
        raise SystemExit(0)

    @staticmethod
    def _link_data_to_model(cfg):
        """Build the configured DataModule and copy the sizes it states (``DATA_TO_MODEL_LINKS``, known from its
        arguments alone: building it reads no data) into the arguments of the model, where accepted."""
        data, model = cfg.get("data"), cfg.get("model")
        if data is None or model is None or not data.get("class_path") or not model.get("class_path"):
            return None
        data_cls, model_cls = _import(data.class_path), _import(model.class_path)
        init_args = data.init_args.as_dict() if data.get("init_args") is not None else {}
        # As LightningCLI's own instantiator does: the hparams the DataModule saves then carry its class path,
        # which is how a checkpoint says what data it was trained on.
        with _given_hyperparameters_context({"_class_path": data.class_path, **init_args}, INSTANTIATOR):
            datamodule = data_cls(**init_args)
        accepted = inspect.signature(model_cls.__init__).parameters
        for source, target in DATA_TO_MODEL_LINKS:
            value = getattr(datamodule, source, None)
            if target in accepted and value is not None:
                setattr(model.init_args, target, value)
        return datamodule

    def _choose_run_folder(self, cfg) -> None:
        """Pin the logger's ``version``: the checkpoint's own run when resuming a fit, else a fresh folder.

        A fit resumed from ``<save_dir>/<name>/version_N/checkpoints/x.ckpt`` goes on in ``version_N``: the
        TensorBoard curves continue (the steps the interrupted run logged after its checkpoint are purged),
        and ModelCheckpoint keeps its best checkpoint and score (it forgets them when its folder changes).
        Any other run claims a new folder atomically (:func:`claim_run_version`); the processes Lightning
        launches for DDP inherit rank 0's choice through the environment.
        """
        global _claimed_run, _run_version_set_here
        args = self._logger_args(cfg)
        if args is None or args.get("version") is not None or cfg.trainer.get("fast_dev_run"):
            return  # (fast_dev_run replaces the logger: no run folder)
        experiment = (Path(args.save_dir) / str(args.name)).resolve()
        # Only a launched DDP process (not rank 0) takes rank 0's folder: in any other process the variable is a
        # leftover of an earlier run in the parent (a test session, a script calling main() twice).
        inherited = os.environ.get(_RUN_VERSION_ENV) if not _is_rank_zero() else None
        ckpt_path = cfg.get("ckpt_path")
        resumed = run_folder_of(ckpt_path) if ckpt_path and self.subcommand == "fit" else None
        if inherited is not None:
            args.version = int(inherited)
        elif resumed is not None and resumed.parent == experiment:
            args.version = int(resumed.name.split("_")[1])
            # ModelCheckpoint warns about a non-empty folder: here it is expected, the run's own.
            warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
            if "TensorBoardLogger" in str(cfg.trainer.logger.get("class_path", "")):
                # Steps after the checkpoint belong to the interrupted attempt; SummaryWriter drops them.
                cfg.trainer.logger.init_args["purge_step"] = self._ckpt_global_step + 1
        elif _is_rank_zero():
            args.version = claim_run_version(experiment)
            _claimed_run = experiment / f"version_{args.version}"
        else:
            return
        os.environ[_RUN_VERSION_ENV] = str(args.version)
        _run_version_set_here = True

    def _warn_if_untrained(self, cfg) -> None:
        if self.subcommand not in ("validate", "test", "predict") or cfg.get("ckpt_path"):
            return
        if any(p.requires_grad for p in self.model.parameters()):
            warnings.warn(
                f"{self.subcommand} without --ckpt_path scores {type(self.model).__name__} with freshly initialised, "
                "untrained weights. Pass --ckpt_path PATH (or --ckpt_path last for the newest run of this config).",
                stacklevel=1,
            )


def _is_rank_zero() -> bool:
    """Whether this process is the first of its job (before the Trainer exists to say so)."""
    return all(os.environ.get(k, "0") == "0" for k in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"))


def _raised_by(exc: BaseException) -> str:
    """`` (in ClassName)`` for the outermost constructor in the traceback of ``exc``, to say which part of the
    configuration (model, data, trainer, a callback) holds the bad value."""
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        owner = frame.f_locals.get("self")
        if frame.f_code.co_name == "__init__" and owner is not None and not isinstance(owner, LightningCLI):
            return f" (in {type(owner).__name__})"
        tb = tb.tb_next
    return ""


def _import(class_path: str):
    module, _, name = class_path.rpartition(".")
    return getattr(import_module(module), name)


def _summarize_parse_error(message: str) -> str:
    """jsonargparse's message, without the union alternatives and the 'Given value' lines that bury it."""
    keep = []
    for line in message.splitlines():
        text = line.strip()
        if not text or text.startswith(("Given value", "Subtypes:", "Errors:", "- Expected a <class 'NoneType'>")):
            continue
        if text.startswith("Does not validate against any of the Union subtypes"):
            continue
        keep.append(text.lstrip("- "))
    return re.sub(r"\s+", " ", " ".join(keep)).strip()


def main(args: list[str] | None = None) -> None:
    """Entry point of ``python -m seqlight`` and the ``seqlight`` command.

    Returns ``None`` on success (exit code 0 for the console script); a user's mistake exits with code 2 and
    one paragraph on stderr. ``seqlight configs`` (and the other commands of :mod:`seqlight.commands`) run
    there; ``--config NAME`` names a packaged config (see :func:`seqlight.commands.resolve_config_args`).
    """
    global _claimed_run, _run_version_set_here
    _claimed_run = None
    if _run_version_set_here:
        os.environ.pop(_RUN_VERSION_ENV, None)
        _run_version_set_here = False
    try:
        _main(args)
    except BaseException:
        _drop_unused_run_folder(failed=True)
        raise
    _drop_unused_run_folder(failed=False)


def _drop_unused_run_folder(failed: bool) -> None:
    """Remove the ``version_N`` folder this process claimed if the run left it empty, or failed before it held
    any result (``metrics.json``, a checkpoint, predictions: nothing to resume, report or read; what is left
    then is the config, the hparams and the event file of a run that never finished an epoch)."""
    folder = _claimed_run
    if folder is None or not folder.is_dir():
        return
    files = [p for p in folder.rglob("*") if p.is_file()]
    if files and (not failed or any(any(folder.glob(pattern)) for pattern in _RUN_RESULTS)):
        return
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def _main(args: list[str] | None) -> None:
    try:
        argv = sys.argv[1:] if args is None else args
        if isinstance(argv, (list, tuple)):
            if run_command(list(argv)):
                return None
            resolved = resolve_config_args(list(argv))
            if resolved != list(argv):
                if args is None:
                    sys.argv[1:] = resolved  # DDP re-launches sys.argv: its processes get the same file
                else:
                    args = resolved
        SeqlightCLI(
            LightningModule,
            LightningDataModule,
            trainer_class=_Trainer,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_callback=_SaveConfigToRunFolder,
            save_config_kwargs={"overwrite": True},
            trainer_defaults={"callbacks": [EpochSeeds(), AnnounceFolders(), PredictionWriter(), RunSummary()]},
            parser_class=HomeAwareParser,
            parser_kwargs={
                "prog": "seqlight",
                "description": "seqlight: the chapter-6 experiments of Deep Learning with Python on Lightning. "
                "Pick an experiment with --config <name> or --config configs/<name>.yaml (a packaged config, listed "
                "by `seqlight configs`), or the path of your own YAML file. With a trained checkpoint: "
                "`seqlight forecast`, `seqlight classify`, `seqlight export` (each has --help).",
            },
            args=args,
        )
    except (SeqlightError, ArgumentError) as e:
        if os.environ.get("SEQLIGHT_DEBUG"):
            raise
        text = _summarize_parse_error(str(e)) if isinstance(e, ArgumentError) else str(e)
        hint = (
            " Run `seqlight <fit|validate|test|predict> --help` for the options."
            if isinstance(e, ArgumentError)
            else ""
        )
        print(f"seqlight: error: {text}{hint}", file=sys.stderr)
        raise SystemExit(2) from None
