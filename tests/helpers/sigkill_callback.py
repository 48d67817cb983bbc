"""A callback that kills its own process with SIGKILL at a given training step, as a crash or ``kill -9``
would: no exception, no ``finally``, no checkpoint on the way out. Used by the kill-and-resume tests."""

from __future__ import annotations

import os
import signal

from lightning.pytorch.callbacks import Callback


class SigkillAt(Callback):
    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            os.kill(os.getpid(), signal.SIGKILL)
