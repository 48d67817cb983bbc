"""Jena temperature forecasters (book section 6.3): the shared base, the naive baseline and the dense net.

Every forecaster maps a batch of windows ``x`` of shape ``(batch, timesteps, num_features)`` (standardized,
as :class:`seqlight.data.JenaDataModule` yields them) to the standardized temperature ``delay`` steps after
the window, shape ``(batch,)``. The base class supplies what the book's ``model.compile(optimizer=RMSprop(),
loss='mae')`` does, plus metrics in degrees Celsius:

- loss: mean absolute error in standardized units (the book's figure);
- metrics ``{train,val,test}/mae`` (standardized) and ``{train,val,test}/mae_degC`` (times the target's
  standard deviation, from the model's :attr:`preprocessing`, which the DataModule provides);
- optimizer: RMSprop with Keras's defaults (lr 1e-3, rho 0.9, eps 1e-7).

The recurrent and convolutional forecasters live in :mod:`seqlight.models.recurrent_forecasters`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError

from seqlight.data.jena import TIME_FORMAT, JenaDataError, read_jena_csv
from seqlight.data.preprocessing import JenaPreprocessing
from seqlight.models.common import KerasStyleModule
from seqlight.nn.init import keras_init_

__all__ = ["Forecast", "Forecaster", "NaiveForecaster", "DenseForecaster"]


@dataclass(frozen=True)
class Forecast:
    """One answer of :meth:`Forecaster.forecast`.

    Attributes:
        window_end: timestamp of the window's newest row (the file's format, ``dd.mm.yyyy HH:MM:SS``).
        target_time: the time the forecast is for (``step + delay`` rows of the training data's cadence later).
        value: the forecast target, in its own unit (degrees C for ``T (degC)``).
    """

    window_end: str
    target_time: str
    value: float


def _rows_of(series, ats: list) -> np.ndarray:
    """Row numbers of the timestamps ``ats`` in ``series`` (``None``: the last row); a clear error otherwise."""
    stamps, rows = series.timestamps, []
    for at in ats:
        if at is None:
            rows.append(len(stamps) - 1)
            continue
        try:
            t = pd.to_datetime(at, format=TIME_FORMAT) if isinstance(at, str) and "." in at[:3] else pd.Timestamp(at)
        except (ValueError, TypeError) as e:
            raise JenaDataError(f"at={at!r} is not a timestamp like '20.10.2024 08:10:00' ({e})") from None
        i = stamps.get_indexer([t])[0]
        if i < 0:
            raise JenaDataError(
                f"{series.path}: no row at {t.strftime(TIME_FORMAT)} (at={at!r}); the file runs from "
                f"{stamps[0].strftime(TIME_FORMAT)} to {stamps[-1].strftime(TIME_FORMAT)}"
            )
        rows.append(int(i))
    return np.asarray(rows, dtype=np.int64)


class Forecaster(KerasStyleModule):
    """Base class: MAE loss, Keras RMSprop, MAE metrics in standardized units and degrees Celsius, forecasts.

    Args:
        num_features: input features per timestep (linked from the DataModule by the CLI; 14 for Jena).
        lr: RMSprop learning rate (Keras default 1e-3).

    The scaling of the data (each feature's mean and standard deviation, the window) is the model's
    :attr:`preprocessing` (a :class:`~seqlight.data.preprocessing.JenaPreprocessing`), taken from the
    DataModule when training starts and kept in the checkpoint; with it the model reports MAE in degrees C
    and :meth:`forecast` answers a CSV in the Jena format.

    Subclasses call ``super().__init__(num_features=..., lr=...)`` then ``self.save_hyperparameters()`` (so
    every constructor argument, the linked ones included, lands in the checkpoint and ``load_from_checkpoint``
    works outside the CLI), build their layers, and implement ``forward(x) -> (batch,)``.
    """

    def __init__(self, num_features: int | None = None, lr: float = 1e-3) -> None:
        super().__init__()
        if num_features is not None and num_features < 1:
            raise ValueError(f"num_features must be >= 1, got {num_features}")
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        self.num_features = num_features
        self.lr = lr
        self.maes = nn.ModuleDict({f"{s}_mae": MeanAbsoluteError() for s in ("train", "val", "test")})

    @property
    def target_std(self) -> float | None:
        """The target's standard deviation (degrees C per standardized unit), ``None`` before preprocessing."""
        return self.preprocessing.target_std if isinstance(self.preprocessing, JenaPreprocessing) else None

    def _require_num_features(self) -> int:
        if self.num_features is None:
            raise ValueError(
                f"{type(self).__name__} needs num_features (the number of input columns). The CLI links it from "
                "the DataModule; in Python pass num_features=datamodule.num_features."
            )
        return self.num_features

    # -- answers ---------------------------------------------------------------------------------------
    def forecast(self, data: str | os.PathLike | pd.DataFrame, at=None) -> Forecast | list[Forecast]:
        """The target (degrees C for ``T (degC)``) ``step + delay`` rows after the window ending at ``at``.

        Args:
            data: a CSV in the Jena format (any file with the official header and the model's feature
                columns, e.g. a newer station export) or a DataFrame with those columns.
            at: the timestamp of the window's newest row (``"20.10.2024 08:10:00"``, ISO, or a
                ``pandas.Timestamp``); ``None``: the newest complete window, ending at the file's last row; a
                list: one forecast each, computed in one batch.

        Returns a :class:`Forecast` (a list of them for a list ``at``). The windows are standardized with the
        training data's mean and standard deviation (the model's :attr:`preprocessing`), exactly as the
        DataModule did, and the model runs in eval mode without gradients.

        Raises:
            SeqlightError: no preprocessing, a malformed file, ``at`` not a timestamp of the file, or too
                few rows before ``at`` for one window.
        """
        prep = self._require_preprocessing(JenaPreprocessing)
        series = read_jena_csv(data, list(prep.features), timestamp_check="warn")
        where = series.path
        many = at is not None and not isinstance(at, (str, pd.Timestamp, datetime))
        newest = _rows_of(series, [None] if at is None else (list(at) if many else [at]))
        need = prep.lookback - prep.step  # rows of history before the newest one
        short = [int(r) for r in newest if r < need]
        if short:
            stamp = series.timestamps[short[0]].strftime(TIME_FORMAT)
            raise JenaDataError(
                f"{where}: the window ending at {stamp} (row {short[0] + 1} of {len(series.values)}) needs {need} rows "
                f"before it (lookback {prep.lookback}, step {prep.step}); the file has {short[0]}"
            )
        pred = self._infer(torch.from_numpy(prep.windows(series.values, newest))).double().cpu().numpy()
        values = pred * prep.target_std + prep.target_mean
        horizon = pd.Timedelta(minutes=prep.cadence_minutes * prep.horizon)
        out = [
            Forecast(
                series.timestamps[r].strftime(TIME_FORMAT),
                (series.timestamps[r] + horizon).strftime(TIME_FORMAT),
                float(v),
            )
            for r, v in zip(newest, values)
        ]
        return out if many else out[0]

    # -- steps -----------------------------------------------------------------------------------------
    def _step(self, batch: tuple[Tensor, Tensor], split: str) -> Tensor:
        x, y = batch
        pred = self(x)
        loss = torch.nn.functional.l1_loss(pred.float(), y.float())
        # the split's MAE accumulates in a torchmetrics state (update: the per-batch value the metric's forward
        # would also compute is never read)
        self.maes[f"{split}_mae"].update(pred.detach().float(), y.float())
        if split == "val":
            self._keep_for_figure(x, pred, y)
        return loss

    def training_step(self, batch, batch_idx):
        loss = self._step(batch, "train")
        trainer = self.trainer
        every = trainer.log_every_n_steps
        if every and (trainer.global_step + 1) % every == 0:
            # the per-step curve, on the steps whose metrics Lightning writes to the loggers (every
            # log_every_n_steps): a self.log call costs about 1 ms, 5% of a step of the book's GRU on the native
            # loop, and at the other steps its value was never written anywhere (the progress bar shows it too)
            self.log("train/loss_step", loss, on_step=True, on_epoch=False, prog_bar=True, sync_dist=True)
        if batch_idx + 1 == trainer.num_training_batches:
            # the epoch's last step: its MAE now, so that the callbacks that record the epoch (which run before
            # the module's on_train_epoch_end) see it
            self._log_epoch_mae("train")
        return loss

    def _log_epoch_mae(self, split: str) -> None:
        """Log the split's MAE once an epoch, from the MAE metric (whose states torchmetrics sums across processes):
        ``loss`` (the loss is the MAE; for training as ``train/loss_epoch``, beside the per-step
        ``train/loss_step``, the names Lightning gives a loss logged both ways), ``mae`` and ``mae_degC``. One
        ``self.log`` call costs Lightning about 1 ms, and three of them at every step cost a validation pass of the
        book's GRU a fifth of its time (``benchmarks/pipeline.py``); what they averaged is this one number."""
        metric = self.maes[f"{split}_mae"]
        if not metric.update_count:
            return
        mae = metric.compute()
        metric.reset()
        once = dict(on_step=False, on_epoch=True)  # also from training_step, whose default is per step
        loss_name = "train/loss_epoch" if split == "train" else f"{split}/loss"
        self.log(loss_name, mae, prog_bar=split != "test", **once)
        self.log(f"{split}/mae", mae, **once)
        if self.target_std is not None:
            self.log(f"{split}/mae_degC", mae * self.target_std, **once)

    def on_train_epoch_end(self) -> None:
        self._log_epoch_mae("train")  # an epoch cut short (max_steps, or a loader of unknown length)

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_mae("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch_mae("test")

    def predict_step(self, batch, batch_idx, dataloader_idx=0) -> Tensor:
        """The standardized prediction, as the book's ``model.predict`` returns it (:meth:`forecast` gives
        degrees C)."""
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self(x)

    # -- what a run reports (read by seqlight.callbacks.RunSummary) ---------------------------------------
    summary_metrics = ("mae",)  # the printed table: MAE per split, next to the naive baseline on the same rows
    chart_metrics = ("loss", "mae", "mae_degC")  # TensorBoard: train and validation on one chart each
    is_baseline = False  # the naive forecaster is the baseline: no verdict against itself
    figure_windows = 1440  # the validation windows drawn each epoch: 10 days of 10-minute rows

    def on_validation_epoch_start(self) -> None:
        self._figure_parts: list[tuple[Tensor, Tensor, Tensor]] = []
        self.maes["val_mae"].reset()  # nothing left from a pass that was interrupted

    def on_test_epoch_start(self) -> None:
        self.maes["test_mae"].reset()

    def _keep_for_figure(self, x: Tensor, pred: Tensor, y: Tensor) -> None:
        parts = getattr(self, "_figure_parts", None)
        if parts is None or sum(len(p[0]) for p in parts) >= self.figure_windows:
            return
        prep = self.preprocessing if isinstance(self.preprocessing, JenaPreprocessing) else None
        if prep is None:
            return
        last = x[:, 0 if prep.reverse else -1, prep.target_index]  # the naive forecast: the last value seen
        parts.append(tuple(t.detach().float().cpu() for t in (pred, y, last)))

    def validation_figure(self):
        """Predicted, true and naive target over the first validation windows (degrees C), as a figure.

        Drawn from the first :attr:`figure_windows` windows of the last validation epoch; ``None`` without
        preprocessing (the scaling) or outputs.
        """
        parts = getattr(self, "_figure_parts", None)
        prep = self.preprocessing if isinstance(self.preprocessing, JenaPreprocessing) else None
        if not parts or prep is None:
            return None
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure

        pred, true, naive = (torch.cat([p[i] for p in parts])[: self.figure_windows].numpy() for i in range(3))
        days = np.arange(len(true)) * prep.cadence_minutes / (24 * 60)
        fig = Figure(figsize=(9, 3.5))
        ax = fig.add_subplot()
        for values, label, style in ((true, "true", "k-"), (pred, "predicted", "C0-"), (naive, "naive", "C1:")):
            ax.plot(days, values * prep.target_std + prep.target_mean, style, lw=1, label=label)
        ax.set_xlabel("days into the validation data (consecutive windows)")
        ax.set_ylabel(prep.target)
        ax.set_title(f"{type(self).__name__}: epoch {self.current_epoch + 1}")
        ax.legend(loc="upper right")
        fig.tight_layout()
        return fig


class NaiveForecaster(Forecaster):
    """The book's common-sense baseline (6.3.3): tomorrow's temperature is the last one seen.

    ``pred = x[:, -1, target_index]``: the temperature at the last input timestep (row - step), already
    standardized. It has no parameters; run it with ``validate``/``test``
    (``python -m seqlight validate --config configs/jena_naive.yaml``). With ``reverse=True`` data the
    last observed step is ``x[:, 0]``: pass ``reversed_input=True``.
    """

    def __init__(
        self,
        num_features: int | None = None,
        target_index: int = 1,
        reversed_input: bool = False,
        lr: float = 1e-3,
    ) -> None:
        super().__init__(num_features=num_features, lr=lr)
        if target_index < 0 or (num_features is not None and target_index >= num_features):
            raise ValueError(f"target_index {target_index} is outside 0..{num_features}")
        self.save_hyperparameters()
        self.target_index = target_index
        self.reversed_input = reversed_input

    is_baseline = True

    def forward(self, x: Tensor) -> Tensor:
        return x[:, 0 if self.reversed_input else -1, self.target_index]

    def training_step(self, batch, batch_idx):
        raise RuntimeError(
            "NaiveForecaster has nothing to train: use `python -m seqlight validate --config configs/jena_naive.yaml`"
        )


class DenseForecaster(Forecaster):
    """Book 6.3.5: ``Flatten -> Dense(units, relu) -> Dense(1)`` over the whole window.

    Args:
        num_features: input features (linked from the data).
        timesteps: window length ``lookback // step`` (linked from the data as ``timesteps``; 240 in the book).
        units: hidden units (book: 32).
    """

    def __init__(
        self,
        num_features: int | None = None,
        timesteps: int | None = None,
        units: int = 32,
        lr: float = 1e-3,
    ) -> None:
        super().__init__(num_features=num_features, lr=lr)
        self.save_hyperparameters()
        if timesteps is None or timesteps < 1:
            raise ValueError(f"DenseForecaster needs timesteps >= 1 (lookback // step), got {timesteps}")
        if units < 1:
            raise ValueError(f"units must be >= 1, got {units}")
        nf = self._require_num_features()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(timesteps * nf, units), nn.ReLU(), nn.Linear(units, 1))
        keras_init_(self.net)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(-1)
