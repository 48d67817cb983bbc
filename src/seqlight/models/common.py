"""Pieces every seqlight LightningModule shares: Keras's RMSprop and the Keras-style training module."""

from __future__ import annotations

import torch
from lightning.pytorch import LightningModule

__all__ = ["keras_rmsprop", "KerasStyleModule"]


def keras_rmsprop(params, lr: float = 1e-3, rho: float = 0.9, eps: float = 1e-7) -> torch.optim.RMSprop:
    """``keras.optimizers.RMSprop()`` defaults (Keras 2.2+/3: lr 1e-3, rho 0.9, epsilon 1e-7).

    The update is the same in both libraries: ``p -= lr * g / (sqrt(v) + eps)`` with
    ``v = rho * v + (1 - rho) * g**2``. PyTorch's own defaults (lr 1e-2, alpha 0.99) are much more
    aggressive and are never used here.
    """
    return torch.optim.RMSprop(params, lr=lr, alpha=rho, eps=eps)


class KerasStyleModule(LightningModule):
    """What ``model.compile(optimizer=RMSprop(lr), loss=..., metrics=...)`` gives every model of the book.

    Subclasses set ``self.lr`` and implement ``_step(batch, split) -> loss`` (``split`` is ``"train"``,
    ``"val"`` or ``"test"``), which computes the loss and logs ``{split}/...`` metrics. Optimizer: RMSprop
    with Keras's defaults over the trainable parameters (none, e.g. the naive baseline: no optimizer).
    """

    lr: float = 1e-3

    def _step(self, batch, split: str) -> torch.Tensor:
        raise NotImplementedError

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        if not params:
            return None
        return keras_rmsprop(params, lr=self.lr)
