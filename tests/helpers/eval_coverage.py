"""A callback that records, per rank, which validation items it scored and the validation metrics it logged.

Used by tests/test_ddp.py: under DDP every rank writes ``<out>/<fn>-rank<r>.json`` with the dataset items of
each of its validation batches (from the loader's batch sampler, checked against the batch's tensors, so the
items recorded are the ones the model saw), the whole split's items in one process's order, and the
``val/*`` values of ``trainer.callback_metrics`` at the end of validation. The sanity check is not recorded.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback


def _split_items(dm) -> list[int]:
    """Every item of the validation split, as one process scores them (Jena: windows, IMDB: reviews)."""
    if hasattr(dm, "eval_row_indices"):
        return dm.dataset.items(dm.eval_row_indices("val")).tolist()
    return list(range(len(dm.val_set)))


class RecordValidation(Callback):
    def __init__(self, out: str) -> None:
        self.out = Path(out)
        self.items: list[int] = []
        self._batches: list[list[int]] | None = None

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self.items, self._batches = [], None

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if trainer.sanity_checking:
            return
        loader = trainer.val_dataloaders
        if self._batches is None:
            self._batches = [list(map(int, b)) for b in loader.batch_sampler]
        idx = self._batches[batch_idx]
        ds = loader.dataset
        expected = loader.collate_fn(ds.__getitems__(idx) if hasattr(ds, "__getitems__") else [ds[i] for i in idx])
        for got, want in zip(batch, expected):
            assert torch.equal(got.cpu(), want), f"batch {batch_idx} is not items {idx}"
        self.items.extend(idx)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        record = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "items": self.items,
            "split_items": _split_items(trainer.datamodule),
            "metrics": metrics,
            "batches": int(np.sum(trainer.num_val_batches)),
        }
        (self.out / f"{trainer.state.fn.value}-rank{trainer.global_rank}.json").write_text(json.dumps(record))
