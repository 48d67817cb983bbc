"""The book's window sampling (6.3.2), gathered a whole batch at a time.

The book's ``generator(data, lookback, delay, min_index, max_index, shuffle, batch_size, step)`` yields

- ``samples[j] = data[rows[j] - lookback : rows[j] : step]`` (all features), and
- ``targets[j] = data[rows[j] + delay][target]``,

with ``rows`` drawn uniformly with replacement from ``[min_index + lookback, max_index)`` when shuffling,
and otherwise taken consecutively from ``min_index + lookback``, wrapping back to the start when
``i + batch_size >= max_index``. ``max_index=None`` means ``len(data) - delay - 1``.

Here the series is kept once, as a tensor; a dataset item *is* a row number, and
:meth:`WindowDataset.__getitems__` gathers the windows of a whole batch of rows with one indexing
copy from a strided view (nothing is materialized per window). Samplers produce row numbers:
:class:`RandomRowSampler` (with replacement, the book's training generator, or an epoch permutation) and
plain lists of rows from :func:`book_sequential_rows` for validation and test.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

__all__ = [
    "window_timesteps",
    "resolve_max_index",
    "book_sequential_rows",
    "WindowDataset",
    "RandomRowSampler",
    "collate_batch",
    "RowSampler",
]


def window_timesteps(lookback: int, step: int) -> int:
    """Timesteps in one window: ``len(range(row - lookback, row, step))`` (240 for 1440 / 6)."""
    return len(range(0, lookback, step))


def resolve_max_index(max_index: int | None, n_rows: int, delay: int) -> int:
    """The book's ``max_index``: ``None`` means ``n_rows - delay - 1`` (the last row with a target)."""
    return n_rows - delay - 1 if max_index is None else max_index


def book_sequential_rows(min_index: int, max_index: int, lookback: int, batch_size: int, steps: int) -> np.ndarray:
    """Rows of ``steps`` consecutive batches, exactly as the book's generator with ``shuffle=False``.

    Includes the generator's wrap-around: when ``i + batch_size >= max_index`` the next batch starts again
    at ``min_index + lookback`` (this happens in the book's test generator, whose ``test_steps`` formula
    ignores ``delay``).
    """
    start = min_index + lookback
    if max_index <= start:
        raise ValueError(f"no rows: max_index {max_index} <= min_index + lookback = {start}")
    out = []
    i = start
    for _ in range(steps):
        if i + batch_size >= max_index:
            i = start
        rows = np.arange(i, min(i + batch_size, max_index))
        i += len(rows)
        out.append(rows)
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


class WindowDataset(Dataset):
    """Map-style dataset whose index is the book's ``row``.

    Args:
        data: the (standardized) series, shape ``(n_rows, n_features)``, float32.
        lookback, step, delay: as the book (1440, 6, 144: ten days of history sampled hourly, target 24 h on).
        target_index: column of the target in ``data`` (1 = ``T (degC)`` in the book).
        reverse: feed each window in reverse chronological order (book 6.3.8).

    ``dataset[row]`` returns one ``(window, target)``; ``dataset.__getitems__(rows)`` (used by the
    DataLoader) returns the stacked batch ``(x[B, T, F], y[B])`` from a single gather.

    How the gather is fast: a window takes every ``step``-th row, so the series is stored once more in
    *phase-major* order, ``phases[k] = data[k::step]``. Then every window is one contiguous block,
    ``phases[s % step][s // step : s // step + T]`` with ``s = row - lookback``, and a batch is a single
    NumPy fancy-indexing copy of whole blocks from a strided view. NumPy does it on one thread, so the
    gather neither competes with the model for cores nor falls into the OpenMP oversubscription trap.
    """

    def __init__(
        self, data, lookback: int, step: int, delay: int, target_index: int, reverse: bool = False
    ) -> None:
        data = np.ascontiguousarray(np.asarray(data, dtype=np.float32))
        if data.ndim != 2:
            raise ValueError(f"data must be 2-D (rows, features), got shape {tuple(data.shape)}")
        for name, v in (("lookback", lookback), ("step", step), ("delay", delay)):
            if v < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        if not 0 <= target_index < data.shape[1]:
            raise ValueError(f"target_index {target_index} is outside the {data.shape[1]} columns")
        self.lookback, self.step, self.delay = lookback, step, delay
        self.target_index = target_index
        self.reverse = reverse
        self.timesteps = window_timesteps(lookback, step)
        self.n_rows, f = data.shape
        per_phase = -(-self.n_rows // step)
        if per_phase < self.timesteps:
            raise ValueError(f"series of {self.n_rows} rows is shorter than one window (lookback {lookback})")
        padded = np.zeros((per_phase * step, f), dtype=np.float32)
        padded[: self.n_rows] = data
        self._phases = np.ascontiguousarray(padded.reshape(per_phase, step, f).transpose(1, 0, 2))
        del padded
        item = self._phases.itemsize
        self._windows = np.lib.stride_tricks.as_strided(
            self._phases,
            (step, per_phase - self.timesteps + 1, self.timesteps, f),
            (per_phase * f * item, f * item, f * item, item),
            writeable=False,
        )
        self._target = data[:, target_index].copy()

    def __len__(self) -> int:
        return self.n_rows

    def _rows(self, rows) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        lo, hi = self.lookback, self.n_rows - self.delay
        if rows.size and (rows.min() < lo or rows.max() >= hi):
            raise IndexError(f"rows must lie in [{lo}, {hi}) (lookback {self.lookback}, delay {self.delay})")
        return rows

    def __getitems__(self, rows: Sequence[int]) -> tuple[Tensor, Tensor]:
        rows = self._rows(rows)
        start = rows - self.lookback
        x = self._windows[start % self.step, start // self.step]
        if self.reverse:
            x = np.ascontiguousarray(x[:, ::-1])
        return torch.from_numpy(x), torch.from_numpy(self._target[rows + self.delay])

    def __getitem__(self, row: int) -> tuple[Tensor, Tensor]:
        x, y = self.__getitems__([row])
        return x[0], y[0]


def collate_batch(batch):
    """Identity collate: :meth:`WindowDataset.__getitems__` already returns a stacked batch."""
    return batch


class RandomRowSampler(Sampler[int]):
    """Training rows for one epoch: ``num_samples`` rows from ``[low, high)``.

    ``replacement=True`` is the book's ``np.random.randint(min_index + lookback, max_index, batch_size)``
    (500 batches of 128 an epoch); ``replacement=False`` draws a fresh permutation every epoch (each
    window at most once; ``num_samples=None`` takes all of them).

    The draws are seeded by ``(seed, epoch)``: the same seed gives the same epochs in every process,
    which DDP needs (Lightning shards this sampler's output across ranks). The epoch comes from
    ``set_epoch`` (Lightning calls it) or, without it, counts the iterations.
    """

    def __init__(
        self, low: int, high: int, num_samples: int | None, replacement: bool = True, seed: int = 0
    ) -> None:
        if high <= low:
            raise ValueError(f"empty row range [{low}, {high})")
        if num_samples is None and replacement:
            raise ValueError("num_samples is required with replacement=True")
        if num_samples is not None and num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if not replacement and num_samples is not None and num_samples > high - low:
            raise ValueError(f"cannot draw {num_samples} distinct rows from [{low}, {high})")
        self.low, self.high = low, high
        self.num_samples = num_samples if num_samples is not None else high - low
        self.replacement = replacement
        self.seed = seed
        self.epoch = 0
        self._epoch_set = False

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self._epoch_set = True

    def __len__(self) -> int:
        return self.num_samples

    def rows(self, epoch: int) -> Tensor:
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % (2**63))
        if self.replacement:
            return torch.randint(self.low, self.high, (self.num_samples,), generator=g)
        return self.low + torch.randperm(self.high - self.low, generator=g)[: self.num_samples]

    def __iter__(self) -> Iterator[int]:
        epoch = self.epoch
        if not self._epoch_set:
            self.epoch += 1
        self._epoch_set = False
        return iter(self.rows(epoch).tolist())


class RowSampler(Sampler[int]):
    """The given rows, in order (the book's consecutive validation and test generators)."""

    def __init__(self, rows: Sequence[int]) -> None:
        self.rows = np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[int]:
        return iter(self.rows.tolist())
