"""The chapter's recurrent and convolutional Jena forecasters (book sections 6.3.5-6.3.8, 6.4.4).

All take standardized windows ``(batch, timesteps, num_features)`` and predict the standardized
temperature ``(batch,)``; loss, optimizer and metrics come from :class:`~seqlight.models.forecasting.Forecaster`.

``semantics`` picks the GRU/LSTM equations: ``'keras2'`` is what the book ran (Keras 2.0.8:
``hard_sigmoid`` gates, the GRU's reset gate applied before the recurrent matmul, one bias; seqlight's
custom loop), ``'keras3'`` is tf.keras / Keras 3 (``sigmoid``, ``reset_after=True``: exactly
``torch.nn.GRU``, PyTorch's fused kernel).
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from seqlight.models.common import last_state
from seqlight.models.forecasting import Forecaster
from seqlight.nn import GRU, LSTM, Bidirectional, SimpleRNN, keras_init_
from seqlight.nn.conv import Conv1D, GlobalMaxPooling1D, MaxPooling1D

__all__ = ["RecurrentForecaster", "ConvForecaster", "ConvGRUForecaster", "recurrent_layer"]

Semantics = Literal["keras2", "keras3"]
_CELLS = {"gru": GRU, "lstm": LSTM, "simple_rnn": SimpleRNN}


def recurrent_layer(
    cell: str,
    input_size: int,
    units: int,
    semantics: str = "keras3",
    **kwargs,
) -> nn.Module:
    """One Keras recurrent layer with the chosen semantics (``'keras2'``: the book's Keras 2.0.8)."""
    if cell not in _CELLS:
        raise ValueError(f"cell must be one of {sorted(_CELLS)}, got {cell!r}")
    if semantics not in ("keras2", "keras3"):
        raise ValueError(f"semantics must be 'keras2' or 'keras3', got {semantics!r}")
    if semantics == "keras2" and cell != "simple_rnn":
        kwargs.setdefault("recurrent_activation", "hard_sigmoid")
        if cell == "gru":
            kwargs.setdefault("reset_after", False)
    return _CELLS[cell](input_size, units, **kwargs)


def _per_layer(name: str, value, n: int) -> list:
    values = list(value) if isinstance(value, (list, tuple)) else [value] * n
    if len(values) != n:
        raise ValueError(f"{name} must be one value or one per layer ({n}), got {len(values)}")
    return values


class RecurrentForecaster(Forecaster):
    """Book 6.3.5-6.3.8: stacked recurrent layers -> ``Dense(1)`` on the last state.

    Args:
        num_features: input features (linked from the data).
        lr: see :class:`~seqlight.models.forecasting.Forecaster`.
        cell: ``'gru'`` (book), ``'lstm'`` or ``'simple_rnn'``.
        units: units of each stacked layer, e.g. ``[32]`` (6.3.6) or ``[32, 64]`` (6.3.7). Every layer but
            the last returns sequences.
        activation: one activation, or one per layer (6.3.7 uses ``[tanh, relu]``).
        dropout, recurrent_dropout: Keras's rates, one value or one per layer.
        recurrent_dropout_mode: ``'per_sample'`` (Keras exactly) or ``'batch'`` (mask shared by the batch,
            folded into the weights; keeps the fused kernel). See :class:`seqlight.nn.GRU`.
        semantics: ``'keras2'`` (the book's Keras 2.0.8 GRU/LSTM) or ``'keras3'`` (modern Keras = torch).
        bidirectional: wrap each layer in :class:`seqlight.nn.Bidirectional` (concat), 6.3.8.
    """

    def __init__(
        self,
        num_features: int | None = None,
        cell: Literal["gru", "lstm", "simple_rnn"] = "gru",
        units: list[int] = [32],  # noqa: B006 - jsonargparse needs a plain default
        activation: str | list[str] = "tanh",
        dropout: float | list[float] = 0.0,
        recurrent_dropout: float | list[float] = 0.0,
        recurrent_dropout_mode: Literal["per_sample", "batch"] = "per_sample",
        semantics: Semantics = "keras3",
        bidirectional: bool = False,
        lr: float = 1e-3,
    ) -> None:
        super().__init__(num_features=num_features, lr=lr)
        self.save_hyperparameters()
        nf = self._require_num_features()
        units = list(units)
        if not units:
            raise ValueError("units must name at least one layer, e.g. [32]")
        n = len(units)
        acts = _per_layer("activation", activation, n)
        drops = _per_layer("dropout", dropout, n)
        rdrops = _per_layer("recurrent_dropout", recurrent_dropout, n)
        layers, size = [], nf
        for u, a, d, rd in zip(units, acts, drops, rdrops):
            layer = recurrent_layer(
                cell,
                size,
                u,
                semantics,
                activation=a,
                dropout=d,
                recurrent_dropout=rd,
                recurrent_dropout_mode=recurrent_dropout_mode,
            )
            if bidirectional:
                layer = Bidirectional(layer)
            layers.append(layer)
            size = 2 * u if bidirectional else u
        self.rnns = nn.ModuleList(layers)
        self.head = keras_init_(nn.Linear(size, 1))

    def forward(self, x: Tensor) -> Tensor:
        for rnn in self.rnns:
            x, state = rnn(x)
        return self.head(last_state(rnn, state)).squeeze(-1)


class ConvForecaster(Forecaster):
    """Book 6.4.4 (Jena): ``[Conv1D(32, 5, relu) -> MaxPooling1D(3)] x 2 -> Conv1D(32, 5, relu) ->
    GlobalMaxPooling1D -> Dense(1)``.

    Args:
        num_features: input features (linked from the data).
        filters, kernel_size, pool_size: the book's 32, 5, 3.
        num_conv: convolutions (the book: 3, with a pooling after all but the last).
        lr: see :class:`~seqlight.models.forecasting.Forecaster`.
    """

    def __init__(
        self,
        num_features: int | None = None,
        filters: int = 32,
        kernel_size: int = 5,
        pool_size: int = 3,
        num_conv: int = 3,
        lr: float = 1e-3,
    ) -> None:
        super().__init__(num_features=num_features, lr=lr)
        self.save_hyperparameters()
        if num_conv < 1:
            raise ValueError(f"num_conv must be >= 1, got {num_conv}")
        size, layers = self._require_num_features(), []
        for i in range(num_conv):
            layers.append(Conv1D(size, filters, kernel_size, activation="relu"))
            if i < num_conv - 1:
                layers.append(MaxPooling1D(pool_size))
            size = filters
        layers.append(GlobalMaxPooling1D())
        self.net = nn.Sequential(*layers)
        self.head = keras_init_(nn.Linear(filters, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.net(x)).squeeze(-1)


class ConvGRUForecaster(Forecaster):
    """Book 6.4.4: ``Conv1D(32, 5, relu) -> MaxPooling1D(3) -> Conv1D(32, 5, relu) -> GRU(32, dropout=0.1,
    recurrent_dropout=0.5) -> Dense(1)``, run on ``step=3, lookback=720`` windows (240 steps).

    Args:
        num_features: input features (linked from the data).
        filters, kernel_size, pool_size: the book's 32, 5, 3.
        units, dropout, recurrent_dropout, recurrent_dropout_mode, semantics: of the GRU (see
            :class:`RecurrentForecaster`).
        lr: see :class:`~seqlight.models.forecasting.Forecaster`.
    """

    def __init__(
        self,
        num_features: int | None = None,
        filters: int = 32,
        kernel_size: int = 5,
        pool_size: int = 3,
        units: int = 32,
        dropout: float = 0.1,
        recurrent_dropout: float = 0.5,
        recurrent_dropout_mode: Literal["per_sample", "batch"] = "per_sample",
        semantics: Semantics = "keras3",
        lr: float = 1e-3,
    ) -> None:
        super().__init__(num_features=num_features, lr=lr)
        self.save_hyperparameters()
        nf = self._require_num_features()
        self.conv = nn.Sequential(
            Conv1D(nf, filters, kernel_size, activation="relu"),
            MaxPooling1D(pool_size),
            Conv1D(filters, filters, kernel_size, activation="relu"),
        )
        self.gru = recurrent_layer(
            "gru",
            filters,
            units,
            semantics,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            recurrent_dropout_mode=recurrent_dropout_mode,
        )
        self.head = keras_init_(nn.Linear(units, 1))

    def forward(self, x: Tensor) -> Tensor:
        _, h = self.gru(self.conv(x))
        return self.head(last_state(self.gru, h)).squeeze(-1)
