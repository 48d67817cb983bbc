"""The book's window sampling (6.3.2), gathered a whole batch at a time.

The book's ``generator(data, lookback, delay, min_index, max_index, shuffle, batch_size, step)`` yields

- ``samples[j] = data[rows[j] - lookback : rows[j] : step]`` (all features), and
- ``targets[j] = data[rows[j] + delay][target]``,

with ``rows`` drawn uniformly with replacement from ``[min_index + lookback, max_index)`` when shuffling,
and otherwise taken consecutively from ``min_index + lookback``, wrapping back to the start when
``i + batch_size >= max_index``. ``max_index=None`` means ``len(data) - delay - 1``.

Here the series is kept once, as an array; item ``i`` of :class:`WindowDataset` is the window of row
``first_row + i`` (``first_row = lookback``, the first row with a whole history), so that ``len``, indexing
and iteration agree as for any map-style dataset. :meth:`WindowDataset.__getitems__` gathers the windows of
a whole batch with one indexing copy from a strided view (nothing is materialized per window). Samplers
produce item numbers: :class:`RandomRowSampler` (with replacement, the book's training generator, or an
epoch permutation) over a split's rows shifted by ``first_row``, and for validation and test the rows of
:func:`book_sequential_rows` converted by :meth:`WindowDataset.items`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler
from torch.utils.data.distributed import DistributedSampler

__all__ = [
    "window_timesteps",
    "resolve_max_index",
    "book_sequential_rows",
    "WindowDataset",
    "WindowBatch",
    "RandomRowSampler",
    "collate_batch",
    "RowSampler",
    "run_seed",
    "shard_for_evaluation",
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
    """Map-style dataset of every window of the series: item ``i`` is the book's row ``first_row + i``.

    Args:
        data: the (standardized) series, shape ``(n_rows, n_features)``, float32.
        lookback, step, delay: as the book (1440, 6, 144: ten days of history sampled hourly, target 24 h on).
        target_index: column of the target in ``data`` (1 = ``T (degC)`` in the book).
        reverse: feed each window in reverse chronological order (book 6.3.8).

    The book's rows with a window are ``first_row = lookback <= row < n_rows - delay`` (a whole history
    before, a target after). ``len(dataset)`` counts them; ``dataset[i]`` (``-len <= i < len``) returns one
    ``(window, target)``, :meth:`batch` the stacked ``(x[B, T, F], y[B])`` of many from a single gather, and
    iterating yields every window in order. The DataLoader calls ``__getitems__``, which wraps that gather
    in a :class:`WindowBatch`: with ``collate_fn=collate_batch`` (what :class:`~seqlight.data.JenaDataModule`
    uses) the batch is passed on as gathered; a plain ``DataLoader(dataset, batch_size=128, shuffle=True)``
    works too (its default collate stacks the samples once more). The book's splits and generators are
    samplers of items (:meth:`items` converts the book's rows).

    How the gather is fast: a window takes every ``step``-th row, so the series is stored once more in
    *phase-major* order, ``phases[k] = data[k::step]``. Then every window is one contiguous block,
    ``phases[s % step][s // step : s // step + T]`` with ``s = row - lookback``, and a batch is a single
    NumPy fancy-indexing copy of whole blocks from a strided view. NumPy does it on one thread, so the
    gather neither competes with the model for cores nor falls into the OpenMP oversubscription trap.
    """

    def __init__(self, data, lookback: int, step: int, delay: int, target_index: int, reverse: bool = False) -> None:
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
        self.first_row = lookback
        self.end_row = self.n_rows - delay  # one past the last row with a target

    def __len__(self) -> int:
        return max(0, self.end_row - self.first_row)

    def items(self, rows) -> np.ndarray:
        """The item numbers of the book's ``rows`` (``row - first_row``); IndexError for a row without a window."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows.min() < self.first_row or rows.max() >= self.end_row):
            raise IndexError(
                f"rows must lie in [{self.first_row}, {self.end_row}) (lookback {self.lookback}, delay {self.delay})"
            )
        return rows - self.first_row

    def batch(self, indices: Sequence[int]) -> tuple[Tensor, Tensor]:
        """``(x[B, T, F], y[B])`` of the items ``indices``, gathered at once."""
        start = np.asarray(indices, dtype=np.int64)  # item i's window starts at row i (= row - lookback)
        n = len(self)
        if start.size and (start.min() < -n or start.max() >= n):
            raise IndexError(
                f"dataset indices must lie in [{-n}, {n}), the {n} windows (rows {self.first_row} to "
                f"{self.end_row - 1})"
            )
        start = start % n if n else start  # negative indices count from the end, as for a list
        x = self._windows[start % self.step, start // self.step]
        if self.reverse:
            x = np.ascontiguousarray(x[:, ::-1])
        return torch.from_numpy(x), torch.from_numpy(self._target[start + self.first_row + self.delay])

    def __getitems__(self, indices: Sequence[int]) -> WindowBatch:
        return WindowBatch(*self.batch(indices))

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        x, y = self.batch([index])
        return x[0], y[0]

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        """Every window in row order, gathered a few hundred at a time (``list(dataset)`` has ``len`` items)."""
        for lo in range(0, len(self), 256):
            x, y = self.batch(range(lo, min(lo + 256, len(self))))
            yield from zip(x, y)


class WindowBatch(Sequence):
    """Windows gathered at once, ``x[B, T, F]`` and ``y[B]``, seen as the sequence of their ``B`` samples.

    Torch's DataLoader expects ``__getitems__`` to return the samples, which its default collate stacks;
    :func:`collate_batch` instead takes ``(x, y)`` as gathered, without that second copy.
    """

    __slots__ = ("x", "y")

    def __init__(self, x: Tensor, y: Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return list(zip(self.x[i], self.y[i]))
        return self.x[i], self.y[i]


def collate_batch(batch: WindowBatch) -> tuple[Tensor, Tensor]:
    """The DataLoader's ``collate_fn`` for a :class:`WindowDataset`: the gathered batch ``(x, y)`` as it is."""
    return batch.x, batch.y


def run_seed() -> int:
    """The seed ``seed_everything`` set for this run (``$PL_GLOBAL_SEED``), else ``torch.initial_seed()``.

    The environment variable holds it for the whole run, while ``torch.initial_seed()`` also follows every
    later ``torch.manual_seed`` (:class:`seqlight.callbacks.EpochSeeds` reseeds at each epoch), so samplers
    built at different moments of a run, or of a resumed run, agree.
    """
    return int(os.environ.get("PL_GLOBAL_SEED", torch.initial_seed()))


class RandomRowSampler(Sampler[int]):
    """Training draws for one epoch: ``num_samples`` integers from ``[low, high)``.

    ``replacement=True`` is the book's ``np.random.randint(min_index + lookback, max_index, batch_size)``
    (500 batches of 128 an epoch); ``replacement=False`` draws a fresh permutation every epoch (each
    window at most once; ``num_samples=None`` takes all of them). For a :class:`WindowDataset` pass the
    split's rows shifted to items: ``[min_index + lookback - first_row, max_index - first_row)``.

    The draws are seeded by ``(seed, epoch)``: the same seed gives the same epochs in every process,
    which DDP needs (Lightning shards this sampler's output across ranks). The epoch comes from
    ``set_epoch`` (Lightning calls it) or, without it, counts the iterations.
    """

    def __init__(self, low: int, high: int, num_samples: int | None, replacement: bool = True, seed: int = 0) -> None:
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
    """The given items, in order (the book's consecutive validation and test generators, through
    :meth:`WindowDataset.items`)."""

    def __init__(self, rows: Sequence[int]) -> None:
        self.rows = np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[int]:
        return iter(self.rows.tolist())


def shard_for_evaluation(sampler: Sampler, trainer) -> Sampler:
    """A validation/test/predict sampler's share for this rank under DDP, every item scored exactly once.

    Lightning (``use_distributed_sampler=True``) would wrap ``sampler`` in a ``DistributedSamplerWrapper``,
    which pads the shards to equal length by repeating the first items: the validation metrics would count
    some windows or reviews twice. Here rank ``r`` of ``W`` takes the items at positions ``r, r + W, ...``
    of ``sampler``'s order (Lightning's interleaving, so the first ``k`` batches of every rank together are
    the first ``W * k`` batches of one process), without padding: shards differ by at most one item, and
    the last batches by at most one. Safe for evaluation, where nothing synchronizes per step: the metrics
    are reduced once at the epoch's end (torchmetrics states, ``sync_dist``). Lightning leaves a
    ``DistributedSampler`` as it is. Without a trainer, on one process or with
    ``use_distributed_sampler=False``, ``sampler`` is returned unchanged.
    """
    kwargs = getattr(trainer, "distributed_sampler_kwargs", None) if trainer is not None else None
    connector = getattr(trainer, "_accelerator_connector", None)
    if not kwargs or kwargs.get("num_replicas", 1) <= 1 or not getattr(connector, "use_distributed_sampler", True):
        return sampler
    if isinstance(sampler, DistributedSampler):
        return sampler
    from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSamplerWrapper

    return UnrepeatedDistributedSamplerWrapper(
        sampler, num_replicas=kwargs["num_replicas"], rank=kwargs["rank"], shuffle=False
    )
