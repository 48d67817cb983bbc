"""Keras-style 1D convolution and pooling on channels-last ``(batch, time, channels)`` tensors.

Keras's ``Conv1D``/``MaxPooling1D``/``GlobalMaxPooling1D`` take ``(batch, steps, channels)``; PyTorch's
``nn.Conv1d``/``nn.MaxPool1d`` take ``(batch, channels, steps)``. These thin wrappers transpose, use
Keras's defaults (``padding='valid'``, ``strides=1``, pool ``strides=pool_size``, glorot_uniform kernel,
zero bias) and so let the book's listings read as written.

Example:
    >>> import torch
    >>> from seqlight.nn.conv import Conv1D, MaxPooling1D, GlobalMaxPooling1D
    >>> x = torch.randn(2, 240, 14)
    >>> y = MaxPooling1D(3)(Conv1D(14, 32, 5, activation="relu")(x))
    >>> y.shape, GlobalMaxPooling1D()(y).shape
    (torch.Size([2, 78, 32]), torch.Size([2, 32]))
"""

from __future__ import annotations

from torch import Tensor, nn

from seqlight.nn.activations import ACTIVATIONS
from seqlight.nn.init import keras_init_

__all__ = ["Conv1D", "MaxPooling1D", "GlobalMaxPooling1D"]


class Conv1D(nn.Module):
    """Keras ``Conv1D(filters, kernel_size, activation=...)`` (valid padding, stride 1) on ``(B, T, C)``.

    Args:
        in_channels: input features per step (Keras infers it).
        filters: output channels.
        kernel_size: window length.
        activation: ``None`` (linear) or a name in :data:`seqlight.nn.activations.ACTIVATIONS` (``'relu'``,
            ``'tanh'``, ``'sigmoid'``, ``'linear'``, ...).
    """

    def __init__(self, in_channels: int, filters: int, kernel_size: int, activation: str | None = None) -> None:
        super().__init__()
        for name, v in (("in_channels", in_channels), ("filters", filters), ("kernel_size", kernel_size)):
            if v < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        if activation is not None and activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)} or None, got {activation!r}")
        self.conv = keras_init_(nn.Conv1d(in_channels, filters, kernel_size))
        self.activation = activation
        self._act = ACTIVATIONS["linear" if activation is None else activation].fn

    def forward(self, x: Tensor) -> Tensor:
        return self._act(self.conv(x.transpose(1, 2))).transpose(1, 2)


class MaxPooling1D(nn.Module):
    """Keras ``MaxPooling1D(pool_size)`` (strides = pool_size, valid) on ``(B, T, C)``."""

    def __init__(self, pool_size: int = 2) -> None:
        super().__init__()
        if pool_size < 1:
            raise ValueError(f"pool_size must be >= 1, got {pool_size}")
        self.pool_size = pool_size

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.max_pool1d(x.transpose(1, 2), self.pool_size).transpose(1, 2)


class GlobalMaxPooling1D(nn.Module):
    """Keras ``GlobalMaxPooling1D``: the maximum over time, ``(B, T, C) -> (B, C)``."""

    def forward(self, x: Tensor) -> Tensor:
        return x.amax(1)
