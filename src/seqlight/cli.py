"""``python -m seqlight`` / ``seqlight``: LightningCLI over every seqlight model and DataModule.

Usage::

    python -m seqlight fit --config configs/jena_gru.yaml
    python -m seqlight validate --config configs/jena_naive.yaml
    python -m seqlight fit --config configs/jena_gru.yaml --print_config
    python -m seqlight test --config configs/jena_gru.yaml --ckpt_path runs/jena_gru/version_0/checkpoints/last.ckpt

Models and DataModules are chosen by ``class_path`` in the config (subclass mode), so any
LightningModule/LightningDataModule importable by name works, seqlight's or your own.

Sizes that only the data knows (number of input features, window length, the standardization scale of
the target, vocabulary size, sequence length, embedding dimension) are linked from the DataModule into the
model's constructor: the CLI builds the DataModule first, reads each property in ``DATA_TO_MODEL_LINKS``
that the chosen model's constructor accepts, and sets it in the model's config before the model is built.
A property the DataModule lacks, or an argument the model lacks, is skipped, so one CLI serves the
forecasters and the classifiers. Because the values arrive as constructor arguments, they are written to
the run's ``config.yaml`` and kept in the checkpoint's hparams, and ``load_from_checkpoint`` works outside
the CLI.
"""

from __future__ import annotations

import inspect
import os
from importlib import import_module

import torch
from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.cli import LightningCLI

# (DataModule property, model constructor argument)
DATA_TO_MODEL_LINKS = [
    ("num_features", "num_features"),
    ("timesteps", "timesteps"),
    ("target_index", "target_index"),
    ("target_std", "target_std"),
    ("num_words", "num_words"),
    ("maxlen", "maxlen"),
    ("embedding_dim", "embedding_dim"),
]


def configure_threads(num_threads: int | None) -> int:
    """Set torch's intra-op threads on purpose (see README, "Threads").

    ``None`` means ``$SEQLIGHT_NUM_THREADS`` if set, else 1. The chapter's models are small: their
    per-timestep operations are too short for a second thread to pay for its synchronisation, and when the
    cores are shared, spinning OpenMP threads make them many times slower (measured on the 2-core box:
    150 training + 150 validation batches of jena_gru.yaml in 24 s with 1 thread, 236 s with 2). The data
    pipeline runs in the main process (a batch is one single-threaded NumPy gather), so no DataLoader worker
    competes for the cores either. Raise it for large models on an otherwise idle machine.
    """
    if num_threads is None:
        num_threads = int(os.environ.get("SEQLIGHT_NUM_THREADS", "1"))
    if num_threads < 1:
        raise ValueError(f"--num_threads must be >= 1, got {num_threads}")
    torch.set_num_threads(num_threads)
    return num_threads


class SeqlightCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument(
            "--num_threads",
            type=int | None,
            default=None,
            help="torch intra-op threads (default: $SEQLIGHT_NUM_THREADS, else 1; see README, Threads).",
        )

    def before_instantiate_classes(self) -> None:
        cfg = self.config.get(self.subcommand, self.config) if self.subcommand else self.config
        configure_threads(cfg.get("num_threads"))

    def instantiate_classes(self) -> None:
        cfg = self.config[self.subcommand] if self.subcommand else self.config
        datamodule = self._link_data_to_model(cfg)
        super().instantiate_classes()
        if datamodule is not None:  # use the instance whose properties were read (it may have loaded data)
            self.datamodule = datamodule
            self.config_init[self.subcommand]["data"] = datamodule

    @staticmethod
    def _link_data_to_model(cfg):
        data, model = cfg.get("data"), cfg.get("model")
        if data is None or model is None or not data.get("class_path") or not model.get("class_path"):
            return None
        data_cls, model_cls = _import(data.class_path), _import(model.class_path)
        init_args = data.get("init_args")
        datamodule = data_cls(**(init_args.as_dict() if init_args is not None else {}))
        accepted = inspect.signature(model_cls.__init__).parameters
        for source, target in DATA_TO_MODEL_LINKS:
            if target in accepted and hasattr(type(datamodule), source):
                setattr(model.init_args, target, getattr(datamodule, source))
        return datamodule

    def after_fit(self) -> None:
        self._report()

    def after_validate(self) -> None:
        self._report()

    def after_test(self) -> None:
        self._report()

    def _report(self) -> None:
        report = getattr(self.model, "fit_report", None)
        if report is None or not self.trainer.is_global_zero:
            return
        text = report(self.trainer, self.subcommand)
        if text:
            print(text, flush=True)


def _import(class_path: str):
    module, _, name = class_path.rpartition(".")
    return getattr(import_module(module), name)


def main(args: list[str] | None = None) -> SeqlightCLI:
    """Entry point of ``python -m seqlight`` and the ``seqlight`` command."""
    return SeqlightCLI(
        LightningModule,
        LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={
            "prog": "seqlight",
            "description": "seqlight: the chapter-6 experiments of Deep Learning with Python on Lightning. "
            "Pick an experiment with --config configs/<name>.yaml; see README.md for the list.",
        },
        args=args,
    )
