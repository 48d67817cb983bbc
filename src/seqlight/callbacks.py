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

- :class:`RunSummary` writes what a run produced as data (``metrics.json``: best and last metrics, the
  baseline on the same rows, data source, seed, time, hardware), prints the table, logs the hparams with the
  final metrics, and lays out TensorBoard as the book's figures (train and validation on one chart, a
  figure of the validation outputs every validation epoch).

- :class:`ProgressBar` is Lightning's TQDM bar, redrawn a few times a second rather than after every batch.

The CLI adds :class:`EpochSeeds`, :class:`PredictionWriter` and :class:`RunSummary` to every run, and
:class:`ProgressBar` where the run shows a bar and names none of its own; the configs use
:class:`ModelCheckpoint`.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any
from weakref import proxy

import numpy as np
import torch
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.fabric.utilities.seed import seed_everything
from lightning.pytorch.callbacks import BasePredictionWriter, Callback, TQDMProgressBar
from lightning.pytorch.callbacks import ModelCheckpoint as _LightningModelCheckpoint

from seqlight.files import atomic_path

# pandas and seqlight.data are imported where they are used: the CLI builds these callbacks for every command,
# `seqlight --help` included, and those imports would add about 0.4 s to each start.

__all__ = [
    "ModelCheckpoint",
    "EpochSeeds",
    "epoch_seed",
    "PredictionWriter",
    "ProgressBar",
    "RunSummary",
    "format_summary",
]


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


class ProgressBar(TQDMProgressBar):
    """Lightning's TQDM progress bar, redrawn at most every ``interval`` seconds (and at the end of each bar)
    instead of after every batch. With the book's GRU on seqlight's native loop a batch takes 5-20 ms, and
    redrawing the bar and its metrics after each one is a cost of the same order as Lightning's own per-batch
    work (``benchmarks/pipeline.py`` compares a CLI epoch with a bare loop).

    Args:
        interval: seconds between redraws (Lightning's bar: after every batch).
        **kwargs: Lightning's ``TQDMProgressBar`` arguments (``refresh_rate`` still counts batches between
            redraws, on top of the interval).
    """

    def __init__(self, interval: float = 0.2, **kwargs) -> None:
        super().__init__(**kwargs)
        self.interval = float(interval)
        self._last_redraw = float("-inf")

    def _should_update(self, current: int, total: int) -> bool:
        if not super()._should_update(current, total):
            return False
        now = time.monotonic()
        if current != total and now - self._last_redraw < self.interval:
            return False
        self._last_redraw = now
        return True


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
            from seqlight.data.windows import run_seed

            self.base_seed = run_seed()

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
            import pandas as pd

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


def _plain(value: Any) -> Any:
    """``value`` as plain YAML/JSON data: tuples become lists, paths strings, NumPy scalars Python numbers."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    return value


_LABELS = {"val": "validation", "test": "test", "train": "training"}
_METRIC_LABELS = {"mae": "MAE", "acc": "accuracy", "loss": "loss"}


class RunSummary(Callback):
    """What a run produced, written once as data: ``metrics.json`` in the run folder, a printed table, the
    hparams with the final metrics, and TensorBoard charts and figures as the book shows them.

    ``metrics.json`` (epochs are 0-based, as Lightning's ``current_epoch``; the printed table says
    "epoch k" 1-based, as the book's Keras logs)::

        {"experiment": logger name, "version": N, "subcommand": "fit" | "validate" | "test",
         "model": class path, "data": class path, "data_source": DataModule.source_description,
         "real_data": bool, "seed": int | null, "monitor": "val/mae", "mode": "min",
         "metrics": {"val/mae": {"best": f, "best_epoch": i, "last": f, "last_epoch": i,
                                 "history": [[epoch, value], ...]}, "train/loss": {...}, ...},
         "baseline": {"name": "naive", "val/mae": f, "test/mae": f, "batches": {"val": n, "test": n}} | null,
         "epochs_run": n, "wall_time_s": f, "epoch_time_s": f,
         "hardware": {"cpu", "cores", "accelerator", "devices", "precision", "torch", "lightning"},
         "finished": bool}

    It is written atomically after every training and validation epoch (``finished: false``) and at the end
    of the run (``finished: true``), so an interrupted run leaves a valid file. The best value of the
    monitored metric is the checkpoint callback's ``best_model_score``; the others are the best of their
    history (``max`` for accuracies, ``min`` otherwise). The history is kept in the checkpoint (this
    callback's state), so a resumed run continues it exactly; the training values of the checkpoint's own
    epoch (logged after the checkpoint was written) are taken from the run folder's ``metrics.json``.

    The baseline (a DataModule with ``naive_mae(split, batches)``, i.e. Jena) is computed on exactly the
    batches the Trainer scored (``trainer.num_val_batches`` / ``num_test_batches``, which follow
    ``limit_val_batches`` / ``limit_test_batches``; times the number of processes under DDP, where the
    distributed sampler's padding repeats up to ``world_size - 1`` rows), and the verdict compares each split
    with its own baseline.

    What the model states (all optional): ``summary_metrics`` (the table's metrics per split, e.g.
    ``("mae",)``), ``chart_metrics`` (metrics whose train and validation curves share a TensorBoard chart),
    ``is_baseline`` (no verdict for the baseline itself), ``target_std`` (a second column in the target's
    unit), and ``validation_figure()`` (a matplotlib figure drawn at the end of each validation epoch).

    Args:
        filename: the summary's name in the run folder.
        figures: log the model's ``validation_figure()`` to TensorBoard.
        verbose: print the table at the end of fit, validate and test.
    """

    def __init__(self, filename: str = "metrics.json", figures: bool = True, verbose: bool = True) -> None:
        self.filename = filename
        self.figures = figures
        self.verbose = verbose
        self.history: dict[str, dict[int, float]] = {}
        self.epoch_times: dict[int, float] = {}
        self.path: Path | None = None
        self.summary: dict[str, Any] | None = None
        self._earlier_wall = 0.0  # wall time of the earlier attempts of a resumed run
        self._started = time.perf_counter()
        self._epoch_started: float | None = None
        self._baselines: dict[tuple[str, int], float] = {}
        self._fn = "fit"
        self._resumed_epoch: int | None = None  # the last epoch the restored checkpoint's history holds
        self._to_print = False

    @property
    def state_key(self) -> str:
        return "RunSummary"

    def state_dict(self) -> dict[str, Any]:
        return {
            "history": {k: sorted([e, v] for e, v in h.items()) for k, h in self.history.items()},
            "epoch_times": sorted([e, t] for e, t in self.epoch_times.items()),
            "wall_time_s": self._wall_time(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self._fn != "fit":
            return  # validate/test from a checkpoint summarize their own scores, not the training's
        self.history = {k: {int(e): float(v) for e, v in h} for k, h in state_dict.get("history", {}).items()}
        self.epoch_times = {int(e): float(t) for e, t in state_dict.get("epoch_times", [])}
        self._earlier_wall = float(state_dict.get("wall_time_s", 0.0))
        epochs = [e for h in self.history.values() for e in h]
        self._resumed_epoch = max(epochs) if epochs else None

    def _wall_time(self) -> float:
        return self._earlier_wall + time.perf_counter() - self._started

    # -- where ------------------------------------------------------------------------------------------
    @staticmethod
    def _writes(trainer) -> bool:
        from lightning.pytorch.loggers.logger import DummyLogger

        return trainer.logger is not None and not isinstance(trainer.logger, DummyLogger) and bool(trainer.log_dir)

    def setup(self, trainer, pl_module, stage: str) -> None:
        self.history, self.epoch_times, self._earlier_wall, self._resumed_epoch = {}, {}, 0.0, None
        self._started = time.perf_counter()
        self._fn = trainer.state.fn.value if trainer.state.fn is not None else stage
        self._baselines = {}
        self.path = Path(trainer.log_dir) / self.filename if self._writes(trainer) else None

    def _start(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero or self.path is None:
            return
        self._write_plain_hparams(trainer)
        if self._fn == "fit":
            self._merge_earlier_file(trainer)
            self._chart_layout(trainer, pl_module)

    def on_train_start(self, trainer, pl_module) -> None:
        # (not on_fit_start: Lightning writes hparams.yaml and restores the checkpoint after that hook)
        self._start(trainer, pl_module)

    def on_validation_start(self, trainer, pl_module) -> None:
        if self._fn == "validate":
            self._start(trainer, pl_module)

    def on_test_start(self, trainer, pl_module) -> None:
        self._start(trainer, pl_module)

    def _merge_earlier_file(self, trainer) -> None:
        """A resumed run: what the checkpoint's state lacks up to its own epoch (the training values of that
        epoch, logged after the checkpoint was written) comes from the interrupted run's file; what that file
        holds after the checkpoint's epoch belongs to the abandoned attempt and is dropped."""
        if self._resumed_epoch is None or self.path is None or not self.path.is_file():
            return
        try:
            earlier = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return
        for name, entry in (earlier.get("metrics") or {}).items():
            for epoch, value in entry.get("history", []):
                if int(epoch) <= self._resumed_epoch:
                    self.history.setdefault(name, {}).setdefault(int(epoch), float(value))

    # -- TensorBoard ------------------------------------------------------------------------------------
    @staticmethod
    def _tensorboard(trainer):
        from lightning.pytorch.loggers import TensorBoardLogger

        return next((lg.experiment for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)

    def _chart_layout(self, trainer, pl_module) -> None:
        """Train and validation curves of each metric on one chart, as in every figure of the chapter.

        The scalars stay as Lightning logs them (``train/loss_step`` per step, ``train/loss_epoch`` and
        ``val/loss`` once an epoch, at the same global step); a custom-scalars layout ("CUSTOM SCALARS" tab,
        section "epoch") draws ``train/<m>`` (its epoch value) and ``val/<m>`` as two lines of one chart.
        This keeps the tags that other tools read, and adds no second copy of any value.
        """
        writer = self._tensorboard(trainer)
        names = getattr(pl_module, "chart_metrics", ("loss",))
        if writer is None or not names:
            return
        charts = {m: ["Multiline", [rf"^train/{m}(_epoch)?$", rf"^val/{m}$"]] for m in names}
        writer.add_custom_scalars({"epoch": charts})

    def _figure(self, trainer, pl_module) -> None:
        draw = getattr(pl_module, "validation_figure", None)
        writer = self._tensorboard(trainer)
        if not self.figures or draw is None or writer is None or not trainer.is_global_zero:
            return
        fig = draw()
        if fig is not None:
            # the step Lightning logs this epoch's val/* scalars at, so the figure sits beside their points
            step = getattr(trainer.fit_loop.epoch_loop, "_batches_that_stepped", trainer.global_step)
            writer.add_figure("val/figure", fig, global_step=step, close=True)

    def _write_plain_hparams(self, trainer) -> None:
        """Lightning writes ``hparams.yaml`` with ``!!python/tuple`` tags; rewrite it as plain YAML."""
        from lightning.pytorch.core.saving import save_hparams_to_yaml
        from lightning.pytorch.loggers import TensorBoardLogger

        for lg in trainer.loggers:
            if isinstance(lg, TensorBoardLogger) and lg.hparams and os.path.isdir(lg.log_dir):
                target = Path(lg.log_dir) / lg.NAME_HPARAMS_FILE
                with atomic_path(target) as tmp:
                    save_hparams_to_yaml(tmp, _plain(dict(lg.hparams)))

    # -- recording --------------------------------------------------------------------------------------
    def _record(self, trainer, prefix: str) -> None:
        epoch = trainer.current_epoch
        found = {}
        for key, value in trainer.callback_metrics.items():
            if not key.startswith(prefix) or key.endswith("_step"):
                continue
            name = key.removesuffix("_epoch")
            if key.endswith("_epoch") or name not in found:
                found[name] = float(value)
        for name, value in found.items():
            self.history.setdefault(name, {})[epoch] = value

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._epoch_started = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._record(trainer, "train/")
        if self._epoch_started is not None:
            self.epoch_times[trainer.current_epoch] = time.perf_counter() - self._epoch_started
        self._write(trainer, pl_module, finished=False)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        self._record(trainer, "val/")
        self._figure(trainer, pl_module)
        if self._fn == "validate":
            self._finish(trainer, pl_module)
        else:
            self._write(trainer, pl_module, finished=False)

    def on_test_end(self, trainer, pl_module) -> None:
        self._record(trainer, "test/")
        self._finish(trainer, pl_module)

    def on_fit_end(self, trainer, pl_module) -> None:
        self._finish(trainer, pl_module)

    # -- the summary ------------------------------------------------------------------------------------
    def _baseline(self, trainer, pl_module) -> dict[str, Any] | None:
        dm = getattr(trainer, "datamodule", None)
        if dm is None or not hasattr(dm, "naive_mae"):
            return None
        out: dict[str, Any] = {"name": "naive", "batches": {}}
        for split, counts in (("val", trainer.num_val_batches), ("test", trainer.num_test_batches)):
            if f"{split}/mae" not in self.history or not counts:
                continue
            # Under DDP each rank scores its share of the rows (a strided slice of the loader's order), and
            # num_*_batches counts one rank's batches: together they cover world_size times as many.
            batches = int(sum(counts)) * trainer.world_size
            key = (split, batches)
            if key not in self._baselines:
                try:
                    self._baselines[key] = float(dm.naive_mae(split, batches=batches))
                except Exception:  # noqa: BLE001 - a summary must never break a finished run
                    continue
            out[f"{split}/mae"] = self._baselines[key]
            out["batches"][split] = batches
        return out if out["batches"] else None

    def _metric(self, name: str, hist: dict[int, float], ckpt, fn: str) -> dict[str, Any]:
        items = sorted(hist.items())
        monitored = ckpt is not None and name == getattr(ckpt, "monitor", None)
        mode = ckpt.mode if monitored else ("max" if name.rsplit("/", 1)[-1].startswith("acc") else "min")
        pick = max if mode == "max" else min
        best_epoch, best = pick(items, key=lambda item: item[1])
        score = getattr(ckpt, "best_model_score", None) if monitored and fn == "fit" else None
        if score is not None:
            best = float(score)
            best_epoch = min(items, key=lambda item: abs(item[1] - best))[0]
        return {
            "best": best,
            "best_epoch": best_epoch,
            "last": items[-1][1],
            "last_epoch": items[-1][0],
            "history": [[e, v] for e, v in items],
        }

    def build(self, trainer, pl_module, finished: bool) -> dict[str, Any]:
        """The summary as a dict (what ``metrics.json`` holds)."""
        import lightning

        ckpt = getattr(trainer, "checkpoint_callback", None)
        logger, dm = trainer.logger, getattr(trainer, "datamodule", None)
        source = getattr(dm, "source_description", None)
        seed = os.environ.get("PL_GLOBAL_SEED")
        epochs = sorted({e for h in self.history.values() for e in h})
        accelerator = type(trainer.accelerator).__name__.removesuffix("Accelerator").lower()
        return {
            "experiment": getattr(logger, "name", None),
            "version": _plain(getattr(logger, "version", None)),
            "subcommand": self._fn,
            "model": f"{type(pl_module).__module__}.{type(pl_module).__qualname__}",
            "data": f"{type(dm).__module__}.{type(dm).__qualname__}" if dm is not None else None,
            "data_source": source,
            "real_data": bool(source) and "SYNTHETIC" not in source,
            "seed": int(seed) if seed is not None else None,
            "monitor": getattr(ckpt, "monitor", None),
            "mode": getattr(ckpt, "mode", None) if getattr(ckpt, "monitor", None) else None,
            "metrics": {n: self._metric(n, h, ckpt, self._fn) for n, h in sorted(self.history.items()) if h},
            "baseline": self._baseline(trainer, pl_module),
            "epochs_run": len(epochs) if self._fn == "fit" else 0,
            "wall_time_s": self._wall_time(),
            "epoch_time_s": float(np.mean(list(self.epoch_times.values()))) if self.epoch_times else None,
            "hardware": {
                "cpu": _cpu_name(),
                "cores": os.cpu_count(),
                "accelerator": accelerator,
                "devices": trainer.num_devices,
                "precision": str(trainer.precision),
                "torch": torch.__version__,
                "lightning": lightning.__version__,
            },
            "finished": finished,
        }

    def _write(self, trainer, pl_module, finished: bool) -> None:
        if not trainer.is_global_zero or self._fn not in ("fit", "validate", "test"):
            return
        self.summary = self.build(trainer, pl_module, finished)
        if self.path is not None and self.path.parent.is_dir():
            with atomic_path(self.path) as tmp:
                Path(tmp).write_text(json.dumps(self.summary, indent=1) + "\n")

    def _finish(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero or not self.history:
            return
        self._write(trainer, pl_module, finished=True)
        if self.path is not None:
            self._log_hparams(trainer)
            self._write_plain_hparams(trainer)
        self._to_print = True

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        # Ctrl-C: Lightning shuts down (SystemExit(1), no teardown hook); the finished epochs still get the table.
        if isinstance(exception, KeyboardInterrupt) and trainer.is_global_zero and self.history:
            self._write(trainer, pl_module, finished=False)
            if self.verbose:
                print(format_summary(self.summary, pl_module) + "\n(interrupted)", flush=True)

    def teardown(self, trainer, pl_module, stage: str) -> None:
        # Printed last, after Lightning's own table of validate/test.
        if self._to_print and self.verbose and self.summary is not None:
            print(format_summary(self.summary, pl_module), flush=True)
        self._to_print = False

    def _log_hparams(self, trainer) -> None:
        """The run's hparams with its final metrics (TensorBoard's HPARAMS tab)."""
        from lightning.pytorch.loggers import TensorBoardLogger

        final = {}
        for name, entry in self.summary["metrics"].items():
            final[f"final/{name}/last"] = entry["last"]
            if name == self.summary["monitor"]:
                final[f"final/{name}/best"] = entry["best"]
        for lg in trainer.loggers:
            if isinstance(lg, TensorBoardLogger):
                lg.log_hyperparams(_plain(dict(lg.hparams)), final)
                lg.experiment.flush()


def _cpu_name() -> str:
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def format_summary(summary: dict[str, Any], model=None) -> str:
    """The table printed at the end of a run, from a :class:`RunSummary` dict (``metrics.json``)."""
    fn, metrics, baseline = summary["subcommand"], summary["metrics"], summary.get("baseline") or {}
    names = getattr(model, "summary_metrics", None) or tuple(
        dict.fromkeys(n.split("/", 1)[1] for n in metrics if not n.startswith("train/"))
    )
    scale = getattr(model, "target_std", None)
    rows: list[tuple[str, float]] = []
    headline: dict[str, tuple[str, float]] = {}  # split -> the row its verdict compares
    for split in ("val", "test"):
        for m in names:
            entry = metrics.get(f"{split}/{m}")
            if entry is None:
                continue
            label = f"{_LABELS[split]} {_METRIC_LABELS.get(m, m)}"
            if fn == "fit" and summary.get("monitor") == f"{split}/{m}":
                rows.append((f"best {label} (epoch {entry['best_epoch'] + 1})", entry["best"]))
                if m == "mae":
                    headline.setdefault(split, rows[-1])
            rows.append((f"last {label}" if fn == "fit" else label, entry["last"]))
            if m == "mae":
                headline.setdefault(split, rows[-1])
    batches = baseline.get("batches", {})
    for split in ("val", "test"):
        if f"{split}/mae" in baseline:
            rows.append((f"naive baseline, {_LABELS[split]} ({batches[split]} batches)", baseline[f"{split}/mae"]))
    name = summary["model"].rsplit(".", 1)[-1]
    unit = scale is not None and any(m == "mae" for m in names)
    lines = [f"\n{name} ({fn})"]
    if unit:
        lines.append(f"{'':48s} {'std units':>10s} {'deg C':>8s}")
    for label, value in rows:
        lines.append(f"  {label:46s} {value:10.4f}" + (f" {value * scale:8.3f}" if unit else ""))
    if not getattr(model, "is_baseline", False):
        for split, (label, value) in headline.items():
            naive = baseline.get(f"{split}/mae")
            if naive is not None:
                verdict = "beats" if value < naive else "does not beat"
                lines.append(f"-> {label} {verdict} the naive baseline on the same rows ({value:.4f} vs {naive:.4f})")
    if summary.get("data_source"):
        lines.append(f"data: {summary['data_source']}")
    return "\n".join(lines)
