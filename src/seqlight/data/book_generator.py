"""The book's Jena generator and naive-baseline evaluation (6.3.2-6.3.3), transcribed to plain NumPy.

This is the reference that :class:`seqlight.data.JenaDataModule` is tested against, and the baseline of
``benchmarks/jena_windows.py``. It is kept as close to the book's listing as Python 3 and NumPy 2 allow,
so a reader can put the two side by side. It builds every window with a Python loop; seqlight's
DataModule gathers a whole batch with one copy instead.
"""

from __future__ import annotations

import numpy as np

__all__ = ["generator", "evaluate_naive_method"]


def generator(data, lookback, delay, min_index, max_index, shuffle=False, batch_size=128, step=6, rng=None):
    """Listing 6.33. ``rng`` (a ``numpy.random.Generator``) replaces the global ``np.random`` state."""
    if max_index is None:
        max_index = len(data) - delay - 1
    i = min_index + lookback
    randint = rng.integers if rng is not None else np.random.randint
    while 1:
        if shuffle:
            rows = randint(min_index + lookback, max_index, size=batch_size)
        else:
            if i + batch_size >= max_index:
                i = min_index + lookback
            rows = np.arange(i, min(i + batch_size, max_index))
            i += len(rows)

        samples = np.zeros((len(rows), lookback // step, data.shape[-1]))
        targets = np.zeros((len(rows),))
        for j, row in enumerate(rows):  # noqa: B007 - the book's listing, as printed
            indices = range(rows[j] - lookback, rows[j], step)
            samples[j] = data[indices]
            targets[j] = data[rows[j] + delay][1]
        yield samples, targets


def evaluate_naive_method(val_gen, val_steps):
    """Listing 6.35: the mean over ``val_steps`` batches of ``mean(|samples[:, -1, 1] - targets|)``."""
    batch_maes = []
    for _ in range(val_steps):
        samples, targets = next(val_gen)
        preds = samples[:, -1, 1]
        mae = np.mean(np.abs(preds - targets))
        batch_maes.append(mae)
    return float(np.mean(batch_maes))
