"""Callbacks that make a run safe to interrupt: a true ``last.ckpt`` every epoch, and exact resume.

- :class:`ModelCheckpoint` is Lightning's, except that ``save_last=True`` writes ``last.ckpt`` at the end
  of *every* epoch. Since Lightning 2.6.0, ``save_last`` writes it only when the same call also saved a
  new top-k checkpoint, so after an epoch that did not improve the monitored metric ``last.ckpt`` still
  holds an older epoch: a crash then costs every epoch since the last improvement, and
  ``--ckpt_path last.ckpt`` silently means "the best" rather than "the last".
- :class:`PredictionWriter` writes what ``predict`` computed as a CSV in the run folder (the DataModule says
  what a row is: a window with its timestamps and temperatures, a review with its labels) and prints its path.
- :class:`EpochSeeds` reseeds the global random number generators (torch, NumPy, ``random``) before the
  first step of every training epoch from ``(base seed, epoch, rank)``. Whatever drew random numbers before (a
  sanity check, a validation loop, an earlier epoch of this process or not), epoch ``e`` then draws the
  same dropout masks and shuffles, so a run resumed from an epoch-end checkpoint continues bit for bit as
  if it had never stopped. The base seed is kept in the checkpoint.

The CLI adds :class:`EpochSeeds` and :class:`PredictionWriter` to every run; the configs use
:class:`ModelCheckpoint`.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any
from weakref import proxy

import numpy as np
import pandas as pd
import torch
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.fabric.utilities.seed import seed_everything
from lightning.pytorch.callbacks import BasePredictionWriter, Callback
from lightning.pytorch.callbacks import ModelCheckpoint as _LightningModelCheckpoint

from seqlight.files import atomic_path

__all__ = ["ModelCheckpoint", "EpochSeeds", "epoch_seed", "PredictionWriter"]


class ModelCheckpoint(_LightningModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` whose ``save_last=True`` means "the state after every epoch".

    Everything else (``monitor``, ``save_top_k``, ``filename``, ``every_n_train_steps``...) is Lightning's.
    ``last.ckpt`` is written after the top-k checkpoints of the same epoch, so it also records the best
    score and path so far, and a run resumed from it keeps its best checkpoint.
    """

    _last_written_step: int = -1

    def _save_checkpoint(self, trainer, filepath: str) -> None:
        """Write to ``.<name>.part`` beside ``filepath``, then rename: a crash while saving (a kill, a full disk)
        leaves the previous checkpoint whole. Lightning writes through a temporary file in the system's temp
        folder and *moves* it, which is a copy, not an atomic rename, when that folder is on another disk."""
        if not _is_local_file_protocol(filepath):
            return super()._save_checkpoint(trainer, filepath)
        tmp = os.path.join(os.path.dirname(filepath), f".{os.path.basename(filepath)}.part")
        trainer.save_checkpoint(tmp, self.save_weights_only)
        if trainer.is_global_zero:
            os.replace(tmp, filepath)
        trainer.strategy.barrier("seqlight_checkpoint_rename")
        # what Lightning's _save_checkpoint does after writing
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))

    def _save_last_checkpoint(self, trainer, monitor_candidates) -> None:
        super()._save_last_checkpoint(trainer, monitor_candidates)
        if self.save_last:
            self._last_written_step = trainer.global_step

    def _save_last_if_missing(self, trainer) -> None:
        from lightning.pytorch.trainer.states import TrainerFn

        if (
            not self.save_last
            or trainer.fast_dev_run
            or trainer.state.fn != TrainerFn.FITTING
            or trainer.sanity_checking
            or self._last_written_step == trainer.global_step
        ):
            return
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_end(self, trainer, pl_module) -> None:
        # Lightning's on_train_end writes last.ckpt even under fast_dev_run, which disables the logger, so it
        # lands in ./checkpoints/ of whatever folder the command ran in.
        if not trainer.fast_dev_run:
            super().on_train_end(trainer, pl_module)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_missing(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_missing(trainer)


def epoch_seed(base_seed: int, epoch: int, rank: int = 0) -> int:
    """A 32-bit seed for ``epoch`` on ``rank``, well mixed (NumPy's ``SeedSequence``) from the base seed."""
    return int(np.random.SeedSequence([int(base_seed) % 2**63, int(epoch), int(rank)]).generate_state(1)[0])


class EpochSeeds(Callback):
    """Reseed torch, NumPy and ``random`` before each training epoch's first step from ``(base_seed, epoch, rank)``.

    Args:
        base_seed: the run's seed. ``None`` takes the one ``seed_everything`` set (``$PL_GLOBAL_SEED``), else
            ``torch.initial_seed()``. A resumed run uses the base seed stored in its checkpoint, so it
            continues the same random streams even if its configuration drew a new seed.

    Each DDP rank gets its own seeds (its own dropout masks).

    What the DataLoaders draw is the DataModule's business: seqlight's draw their training order from
    ``(seed, epoch)`` through ``set_epoch`` (:class:`seqlight.data.windows.RandomRowSampler`), never from the
    global generator, so the order does not depend on when Lightning creates the iterators either.
    """

    def __init__(self, base_seed: int | None = None) -> None:
        self.base_seed = base_seed
        self._seeded_epoch: int | None = None

    @property
    def state_key(self) -> str:
        return "EpochSeeds"

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self.base_seed is None:
            env = os.environ.get("PL_GLOBAL_SEED")
            self.base_seed = int(env) if env is not None else torch.initial_seed()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        # Reseed just before the epoch's first step rather than in on_train_epoch_start: Lightning creates the
        # first epoch's DataLoader iterator (which draws from the global generator) before any epoch hook,
        # and skips on_train_epoch_start for the first epoch of a run resumed from an epoch-end checkpoint.
        # The epoch's first step is the one point that a fresh, a continuing and a resumed run share.
        epoch = trainer.current_epoch
        if epoch == self._seeded_epoch:
            return
        self._seeded_epoch = epoch
        seed = epoch_seed(self.base_seed, epoch, trainer.global_rank)
        torch.manual_seed(seed)  # also seeds every CUDA device
        np.random.seed(seed)
        random.seed(seed)

    def state_dict(self) -> dict[str, Any]:
        return {"base_seed": self.base_seed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict.get("base_seed")
        if saved is None:
            return
        if str(saved) != os.environ.get("PL_GLOBAL_SEED"):
            # The run was started with another seed (e.g. a random one): take it back everywhere, so that what
            # is seeded from it before the first epoch (the training sampler) matches the interrupted run.
            seed_everything(saved, verbose=False)
        self.base_seed = saved


class PredictionWriter(BasePredictionWriter):
    """Write ``predict``'s answers to ``predictions.csv`` in the run folder, one line per input, and print the path.

    The DataModule turns its predict items (``predict_items()``, in the predict loader's order) and the
    model's outputs into rows (``prediction_table(items, predictions)``): for Jena the window's last
    timestamp, the target's timestamp, and the predicted, true and naive temperatures in degrees C; for IMDB
    the review (its file for raw aclImdb), the probability, the predicted and the true label. A DataModule
    without ``prediction_table`` gets the raw outputs.

    Args:
        filename: the CSV's name in the run folder (the logger's ``log_dir``; the current folder without one).
    """

    def __init__(self, filename: str = "predictions.csv") -> None:
        super().__init__(write_interval="epoch")
        self.filename = filename
        self.path: Path | None = None

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:
        if not predictions:
            return
        outputs = torch.cat([torch.as_tensor(p).reshape(-1) for p in predictions]).double().cpu().numpy()
        datamodule = getattr(trainer, "datamodule", None)
        flat = [i for batches in batch_indices or [] for i in (batches if batches and isinstance(batches[0], list)
                                                                 else [batches])]  # fmt: skip
        if flat:  # Lightning knows them where it wrapped the sampler (distributed runs)
            items = np.concatenate([np.asarray(i, dtype=np.int64) for i in flat])
        elif hasattr(datamodule, "predict_items"):  # else the predict set's order, as the DataModule defines it
            items = np.asarray(datamodule.predict_items(), dtype=np.int64)
        else:
            items = None
        if items is not None and len(items) == len(outputs) and hasattr(datamodule, "prediction_table"):
            table = datamodule.prediction_table(items, outputs)
        else:
            table = pd.DataFrame({"prediction": outputs})
        if trainer.world_size > 1:  # each rank predicted its shard: one file per rank
            stem, dot, ext = self.filename.rpartition(".")
            name = f"{stem}.rank{trainer.global_rank}{dot}{ext}"
        else:
            name = self.filename
        folder = Path(trainer.log_dir) if trainer.log_dir else Path.cwd()
        self.path = folder / name
        with atomic_path(self.path) as tmp:
            table.to_csv(tmp, index=False, float_format="%.8g")
        print(f"seqlight: {len(table)} predictions written to {self.path.resolve()}", flush=True)
