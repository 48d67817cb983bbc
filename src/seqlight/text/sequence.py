"""``pad_sequences`` with the defaults and options of ``keras.preprocessing.sequence.pad_sequences``.

Keras pads **and truncates at the front** by default (``padding="pre"``, ``truncating="pre"``): a review
longer than ``maxlen`` keeps its *last* ``maxlen`` words. The result is identical to Keras's (the test
suite compares against ``keras-preprocessing``) for every input Keras accepts, with three documented
differences where Keras fails:

- an empty list of sequences gives an array of shape ``(0, maxlen or 0)`` (Keras: ``np.max`` of nothing);
- ``maxlen=0`` gives ``(n, 0)`` for every ``truncating`` (Keras raises a broadcast error for ``"pre"``);
- a bad ``padding``/``truncating`` value or a negative ``maxlen`` is reported even when every sequence is
  empty (Keras only notices them while copying a non-empty sequence).

Example:
    >>> pad_sequences([[1, 2, 3], [4]], maxlen=2)
    array([[2, 3],
           [0, 4]], dtype=int32)
    >>> pad_sequences([[1, 2, 3], [4]], maxlen=2, padding="post", truncating="post")
    array([[1, 2],
           [4, 0]], dtype=int32)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["pad_sequences"]


def pad_sequences(
    sequences: Sequence,
    maxlen: int | None = None,
    dtype="int32",
    padding: str = "pre",
    truncating: str = "pre",
    value=0.0,
) -> np.ndarray:
    """Pad (and truncate) a list of sequences to a 2-D array ``(len(sequences), maxlen)``.

    Args:
        sequences: a list of sequences (lists or arrays of numbers; items may themselves be arrays of
            a common shape, which then becomes the trailing shape of the result).
        maxlen: length of every output row; ``None`` = the longest sequence.
        dtype: dtype of the result (``"int32"`` as in Keras; ``object`` or a string dtype for strings).
        padding: ``"pre"`` (Keras default) or ``"post"``: where ``value`` goes in short sequences.
        truncating: ``"pre"`` (Keras default; keep the last ``maxlen`` items) or ``"post"`` (keep the first).
        value: the padding value.

    Returns:
        ``np.ndarray`` of shape ``(len(sequences), maxlen) + item_shape``.
    """
    if padding not in ("pre", "post"):
        raise ValueError(f'Padding type "{padding}" not understood (use "pre" or "post")')
    if truncating not in ("pre", "post"):
        raise ValueError(f'Truncating type "{truncating}" not understood (use "pre" or "post")')
    if not hasattr(sequences, "__len__"):
        raise ValueError("`sequences` must be a list of sequences (it has no len()).")
    if maxlen is not None:
        maxlen = int(maxlen)
        if maxlen < 0:
            raise ValueError(f"maxlen must be >= 0 or None, got {maxlen}")

    lengths = np.empty(len(sequences), dtype=np.int64)
    item_shape: tuple = ()
    found_shape = False
    for i, s in enumerate(sequences):
        try:
            lengths[i] = len(s)
        except TypeError:
            raise ValueError(
                f"`sequences` must be a list of iterables. Found non-iterable at position {i}: {s!r}"
            ) from None
        if not found_shape and lengths[i]:
            item_shape = np.asarray(s).shape[1:]
            found_shape = True

    if maxlen is None:
        maxlen = int(lengths.max()) if len(lengths) else 0

    dt = np.dtype(dtype) if dtype is not object else np.dtype(object)
    if isinstance(value, str) and dt.kind not in "OUS":
        raise ValueError(
            f"`dtype` {dtype} is not compatible with `value`'s type: {type(value)}\n"
            "You should set `dtype=object` for variable length strings."
        )
    out = np.full((len(sequences), maxlen) + tuple(item_shape), value, dtype=dt)
    if maxlen == 0 or not len(sequences):
        return out

    if not item_shape and dt.kind not in "OUS":
        return _pad_flat(sequences, lengths, maxlen, out, padding, truncating)

    for i, s in enumerate(sequences):
        n = lengths[i]
        if not n:
            continue
        trunc = s[-maxlen:] if truncating == "pre" else s[:maxlen]
        trunc = np.asarray(trunc, dtype=dt)
        if trunc.shape[1:] != tuple(item_shape):
            raise ValueError(
                f"Shape of sample {trunc.shape[1:]} of sequence at position {i} is different from expected shape "
                f"{tuple(item_shape)}"
            )
        if padding == "post":
            out[i, : len(trunc)] = trunc
        else:
            out[i, maxlen - len(trunc) :] = trunc
    return out


def _pad_flat(
    sequences, lengths: np.ndarray, maxlen: int, out: np.ndarray, padding: str, truncating: str
) -> np.ndarray:
    """Vectorised path for sequences of scalars: one concatenation, one scatter."""
    nonempty = [np.asarray(s) for s in sequences if len(s)]
    for a in nonempty:
        if a.ndim != 1:
            raise ValueError(f"Shape of sample {a.shape[1:]} is different from expected shape ()")
    flat = np.concatenate(nonempty).astype(out.dtype, copy=False) if nonempty else np.empty(0, out.dtype)
    keep = np.minimum(lengths, maxlen)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    # source start of the kept part of each sequence
    src0 = starts + (lengths - keep if truncating == "pre" else 0)
    # destination column of the first kept item
    dst0 = (maxlen - keep) if padding == "pre" else np.zeros_like(keep)
    rows = np.repeat(np.arange(len(lengths)), keep)
    offs = np.arange(keep.sum()) - np.repeat(np.cumsum(keep) - keep, keep)
    out[rows, np.repeat(dst0, keep) + offs] = flat[np.repeat(src0, keep) + offs]
    return out
