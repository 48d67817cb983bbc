"""Pieces every seqlight LightningModule shares: Keras's RMSprop and the end-of-fit report hook."""

from __future__ import annotations

import torch

__all__ = ["keras_rmsprop"]


def keras_rmsprop(params, lr: float = 1e-3, rho: float = 0.9, eps: float = 1e-7) -> torch.optim.RMSprop:
    """``keras.optimizers.RMSprop()`` defaults (Keras 2.2+/3: lr 1e-3, rho 0.9, epsilon 1e-7).

    The update is the same in both libraries: ``p -= lr * g / (sqrt(v) + eps)`` with
    ``v = rho * v + (1 - rho) * g**2``. PyTorch's own defaults (lr 1e-2, alpha 0.99) are much more
    aggressive and are never used here.
    """
    return torch.optim.RMSprop(params, lr=lr, alpha=rho, eps=eps)
