"""Pieces every seqlight LightningModule shares: Keras's RMSprop, the Keras-style training module, and the
final state of a recurrent layer (Keras's ``return_sequences=False`` output)."""

from __future__ import annotations

import warnings

import torch
from lightning.pytorch import LightningModule
from torch import Tensor, nn

from seqlight.data.preprocessing import Preprocessing, preprocessing_from_dict
from seqlight.errors import SeqlightError
from seqlight.nn import Bidirectional
from seqlight.threads import default_threads

__all__ = ["keras_rmsprop", "KerasStyleModule", "last_state"]


def last_state(layer: nn.Module, state) -> Tensor:
    """What Keras's ``return_sequences=False`` returns, from the ``(output, state)`` of ``layer``.

    ``(B, H)``: the top layer's final hidden state, or ``(B, 2H)`` for a bidirectional layer: the forward
    direction's state after the last step, then the backward one's after the first (its whole, reversed
    pass). ``state`` is ``h_n``, or ``(h_n, c_n)`` for an LSTM.

    Which rows of ``h_n`` those are depends on the layer, never on the shape (a 2-layer GRU's ``h_n`` is
    ``(2, B, H)`` too): :class:`seqlight.nn.Bidirectional` stacks the forward layer's ``L`` states, then the
    backward layer's; ``torch.nn`` RNNs with ``bidirectional=True`` interleave the directions per layer;
    every other layer's last row is its top layer.
    """
    h = state[0] if isinstance(state, tuple) else state
    if isinstance(layer, Bidirectional):
        if layer.merge_mode != "concat":
            raise ValueError(f"last_state supports merge_mode='concat' only, got {layer.merge_mode!r}")
        top = layer.forward_layer.num_layers - 1
        return torch.cat([h[top], h[-1]], -1)  # the forward stack's top layer, then the backward stack's
    if isinstance(layer, nn.RNNBase) and layer.bidirectional:
        return torch.cat([h[-2], h[-1]], -1)  # the top layer's forward, then backward direction
    return h[-1]


def keras_rmsprop(params, lr: float = 1e-3, rho: float = 0.9, eps: float = 1e-7) -> torch.optim.RMSprop:
    """``keras.optimizers.RMSprop()`` defaults (Keras 2.2+/3: lr 1e-3, rho 0.9, epsilon 1e-7).

    The update is the same in both libraries: ``p -= lr * g / (sqrt(v) + eps)`` with
    ``v = rho * v + (1 - rho) * g**2``. PyTorch's own defaults (lr 1e-2, alpha 0.99) are much more
    aggressive and are never used here.
    """
    return torch.optim.RMSprop(params, lr=lr, alpha=rho, eps=eps)


class KerasStyleModule(LightningModule):
    """What ``model.compile(optimizer=RMSprop(lr), loss=..., metrics=...)`` gives every model of the book, and
    the preprocessing that makes a trained model answer raw input.

    Subclasses set ``self.lr`` and implement ``_step(batch, split) -> loss`` (``split`` is ``"train"``,
    ``"val"`` or ``"test"``), which computes the loss and logs ``{split}/...`` metrics. Optimizer: RMSprop
    with Keras's defaults over the trainable parameters (none, e.g. the naive baseline: no optimizer).

    ``preprocessing`` (a :mod:`seqlight.data.preprocessing` object: scaling and windows, or a fitted
    tokenizer) is what the data taught the pipeline in front of the model. The model takes it from the
    Trainer's DataModule at ``setup`` (or it is given in Python), and keeps it in every checkpoint under
    ``"preprocessing"``, so ``load_from_checkpoint`` alone restores it: no training data is needed to answer.
    """

    lr: float = 1e-3
    preprocessing: Preprocessing | None = None

    def setup(self, stage: str) -> None:
        default_threads()  # one torch thread unless the user chose: as fast as the CLI (see seqlight.threads)
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        given = getattr(datamodule, "preprocessing", None)
        if given is not None and self.preprocessing is None:
            self.preprocessing = given

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.preprocessing is not None:
            checkpoint["preprocessing"] = self.preprocessing.to_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        saved = checkpoint.get("preprocessing")
        if saved is None:
            return
        saved = preprocessing_from_dict(saved)
        if self.preprocessing is not None and self.preprocessing != saved:
            # e.g. testing on other data: the model keeps what it was trained with, the data is scaled its own way
            warnings.warn(
                f"the checkpoint's preprocessing differs from the DataModule's; {type(self).__name__} keeps the "
                "checkpoint's (what it was trained with) for forecast/classify",
                stacklevel=2,
            )
        self.preprocessing = saved

    def _require_preprocessing(self, *kinds: type[Preprocessing]):
        if not isinstance(self.preprocessing, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise SeqlightError(
                f"{type(self).__name__} has no {names}: it gets one from a seqlight DataModule when it is trained "
                "(it is then in every checkpoint), or set model.preprocessing in Python"
            )
        return self.preprocessing

    @torch.no_grad()
    def _infer(self, x: Tensor) -> Tensor:
        """``predict_step``'s answer for a batch, in eval mode without gradients (the mode is restored)."""
        was_training = self.training
        self.eval()
        try:
            return self.predict_step(x.to(self.device), 0)
        finally:
            self.train(was_training)

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
