"""``keras.datasets.imdb`` emulation: ``load_data``'s shuffle, indexing and filtering, on compact arrays.

The book's Keras 2.0.8 ``imdb.load_data`` works on Python lists of ints; 50,000 reviews of ~230 words are
then some 12 million int objects (hundreds of MB, more with each intermediate list). Here a corpus of
sequences is a :class:`Ragged`: one flat ``int32`` array of all the tokens and the row offsets, and every step
of ``load_data`` (permutation, ``index_from`` shift, ``start_char``, ``maxlen`` filter, ``num_words`` /
``skip_top`` / ``oov_char``) is a NumPy operation on it. :func:`keras_imdb_load_data` keeps the list API
(lists in, lists out) on top of :func:`load_data_ragged`; both give exactly Keras's result.

:func:`keras_imdb_from_acl` builds rank-indexed sequences like those of ``imdb.npz`` from the raw aclImdb
folders (see its docstring for how they differ from Keras's file).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain, islice
from typing import Literal

import numpy as np

from seqlight.data.imdb_files import read_acl_imdb
from seqlight.text import Tokenizer

__all__ = ["Ragged", "keras_imdb_from_acl", "keras_imdb_load_data", "load_data_ragged"]


@dataclass(frozen=True)
class Ragged:
    """Variable-length integer sequences: row ``i`` is ``values[offsets[i]:offsets[i + 1]]``.

    >>> r = Ragged.from_lists([[1, 2, 3], [], [4]])
    >>> len(r), r.lengths.tolist(), r.to_lists()
    (3, [3, 0, 1], [[1, 2, 3], [], [4]])
    >>> r.take(np.array([2, 0])).to_lists(), r.reversed_rows().to_lists()
    ([[4], [1, 2, 3]], [[3, 2, 1], [], [4]])
    """

    values: np.ndarray  # 1-D int32
    offsets: np.ndarray  # 1-D int64, len(rows) + 1, offsets[0] == 0, non-decreasing, offsets[-1] == len(values)

    def __post_init__(self) -> None:
        v, o = self.values, self.offsets
        if v.ndim != 1 or o.ndim != 1 or not len(o) or o[0] != 0 or o[-1] != len(v) or (np.diff(o) < 0).any():
            raise ValueError(f"not a ragged array: {len(v)} values, offsets {o[:3]}...{o[-3:]}")

    @classmethod
    def from_lengths(cls, values: np.ndarray, lengths: np.ndarray) -> Ragged:
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return cls(np.asarray(values, dtype=np.int32), offsets)

    @classmethod
    def from_lists(cls, seqs: Iterable[Sequence[int]], chunk: int = 1000) -> Ragged:
        """From any iterable of int sequences (lists, arrays, a generator), ``chunk`` rows at a time, so a
        generator's lists never all exist at once."""
        it = iter(seqs)
        parts, lengths = [], []
        while batch := list(islice(it, chunk)):
            lens = [len(s) for s in batch]
            parts.append(np.fromiter(chain.from_iterable(batch), dtype=np.int64, count=sum(lens)))
            lengths.extend(lens)
        values = np.concatenate(parts) if parts else np.empty(0, np.int64)
        if values.size and (values.min() < np.iinfo(np.int32).min or values.max() > np.iinfo(np.int32).max):
            raise ValueError("sequence values do not fit in int32")
        return cls.from_lengths(values.astype(np.int32), np.asarray(lengths, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def take(self, rows: np.ndarray) -> Ragged:
        """The rows ``rows`` (indices), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.lengths[rows]
        if not len(rows):
            return Ragged.from_lengths(np.empty(0, np.int32), lengths)
        v, starts, ends = self.values, self.offsets[:-1][rows].tolist(), self.offsets[1:][rows].tolist()
        # one view per row and one copy: leaner than index arithmetic over every value (int64 temporaries)
        return Ragged.from_lengths(np.concatenate(list(map(v.__getitem__, map(slice, starts, ends)))), lengths)

    def rows_between(self, start: int, stop: int) -> Ragged:
        """Rows ``start`` to ``stop - 1``, as views of this one's arrays."""
        o = self.offsets[start : stop + 1]
        return Ragged(self.values[o[0] : o[-1]], o - o[0])

    def reversed_rows(self) -> Ragged:
        """Every row reversed (the book's ``x[::-1]``)."""
        if not len(self):
            return self
        return Ragged(np.concatenate([r[::-1] for r in self.rows()]), self.offsets)

    def keep_values(self, mask: np.ndarray) -> Ragged:
        """Each row without the values where ``mask`` is false."""
        kept = np.zeros(len(mask) + 1, dtype=np.int64 if len(mask) >= 2**31 else np.int32)
        np.cumsum(mask, out=kept[1:])
        lengths = (kept[self.offsets[1:]] - kept[self.offsets[:-1]]).astype(np.int64)
        return Ragged.from_lengths(self.values[mask], lengths)

    def rows(self) -> list[np.ndarray]:
        """The rows as array views (no copy)."""
        return np.split(self.values, self.offsets[1:-1]) if len(self) else []

    def to_lists(self) -> list[list[int]]:
        return [r.tolist() for r in self.rows()]

    def pad(self, maxlen: int, padding: str = "pre", truncating: str = "pre", value: int = 0) -> np.ndarray:
        """:func:`seqlight.text.pad_sequences` of the rows: ``(len(self), maxlen)`` int32, built row by row
        with slices (no per-value index arrays, no copy of the rows first)."""
        if padding not in ("pre", "post") or truncating not in ("pre", "post"):
            raise ValueError(f"padding and truncating must be 'pre' or 'post', got {padding!r}, {truncating!r}")
        out = np.full((len(self), maxlen), value, dtype=np.int32)
        lengths = self.lengths
        kept = np.minimum(lengths, maxlen)
        src = self.offsets[:-1] + (lengths - kept if truncating == "pre" else 0)
        dst = maxlen - kept if padding == "pre" else np.zeros_like(kept)
        v = self.values
        for row, (s, d, k) in enumerate(zip(src.tolist(), dst.tolist(), kept.tolist())):
            if k:
                out[row, d : d + k] = v[s : s + k]
        return out


def _as_ragged(x) -> Ragged:
    return x if isinstance(x, Ragged) else Ragged.from_lists(x)


def load_data_ragged(
    x_train: Ragged,
    y_train,
    x_test: Ragged,
    y_test,
    num_words: int | None = None,
    skip_top: int = 0,
    maxlen: int | None = None,
    seed: int = 113,
    start_char: int | None = 1,
    oov_char: int | None = 2,
    index_from: int = 3,
    shuffle: Literal["keras2.0", "keras2.2"] = "keras2.0",
) -> tuple[tuple[Ragged, np.ndarray], tuple[Ragged, np.ndarray]]:
    """:func:`keras_imdb_load_data` on :class:`Ragged` sequences (same arguments, same result, as arrays)."""
    if num_words is not None and num_words < 1:
        raise ValueError(f"num_words must be >= 1 or None, got {num_words}")
    x_train, x_test = _as_ragged(x_train), _as_ragged(x_test)
    y_train, y_test = np.asarray(y_train, dtype=np.int64), np.asarray(y_test, dtype=np.int64)
    if shuffle == "keras2.0":
        p_train = np.arange(len(x_train))
        np.random.RandomState(seed).shuffle(p_train)
        p_test = np.arange(len(x_test))
        np.random.RandomState(seed * 2).shuffle(p_test)
    elif shuffle == "keras2.2":
        rng = np.random.RandomState(seed)
        p_train = np.arange(len(x_train))
        rng.shuffle(p_train)
        p_test = np.arange(len(x_test))
        rng.shuffle(p_test)
    else:
        raise ValueError(f"shuffle must be 'keras2.0' or 'keras2.2', got {shuffle!r}")
    labels = np.concatenate([y_train[p_train], y_test[p_test]])
    is_train = np.arange(len(p_train) + len(p_test)) < len(x_train)
    top = max((int(x.values.max()) for x in (x_train, x_test) if x.values.size), default=0)
    if top + index_from >= 2**31 or (start_char or 0) >= 2**31 or (oov_char or 0) >= 2**31:
        raise ValueError("word indices beyond int32")
    # the shuffled rows of both sets, shifted by index_from, each after its start_char: one copy, from views
    pieces = []
    for x, perm in ((x_train, p_train), (x_test, p_test)):
        shifted = x.values + np.int32(index_from) if index_from else x.values
        starts, ends = x.offsets[:-1][perm].tolist(), x.offsets[1:][perm].tolist()
        pieces.extend(map(shifted.__getitem__, map(slice, starts, ends)))
    lengths = np.concatenate([x_train.lengths[p_train], x_test.lengths[p_test]])
    if start_char is not None:  # one more value in front of every row
        start = np.array([start_char], dtype=np.int32)
        pieces = [p for row in pieces for p in (start, row)]
        lengths += 1
    values = np.concatenate(pieces) if pieces else np.empty(0, np.int32)
    values = values.astype(np.int32, copy=False)
    del pieces
    if maxlen:
        keep_rows = lengths < maxlen
        if not keep_rows.any():
            raise ValueError(f"After filtering for sequences shorter than maxlen={maxlen}, no sequence was kept.")
        if not keep_rows.all():
            values, lengths = values[np.repeat(keep_rows, lengths)], lengths[keep_rows]
            labels, is_train = labels[keep_rows], is_train[keep_rows]
    if not num_words:
        num_words = int(values.max()) if values.size else 1
    in_range = values < num_words
    if skip_top:
        in_range &= values >= skip_top
    if oov_char is not None:
        np.putmask(values, ~in_range, oov_char)
        out = Ragged.from_lengths(values, lengths)
    else:
        out = Ragged.from_lengths(values, lengths).keep_values(in_range)
    del in_range
    n = int(is_train.sum())
    return (out.rows_between(0, n), labels[:n]), (out.rows_between(n, len(out)), labels[n:])


def keras_imdb_load_data(
    x_train,
    y_train,
    x_test,
    y_test,
    num_words: int | None = None,
    skip_top: int = 0,
    maxlen: int | None = None,
    seed: int = 113,
    start_char: int | None = 1,
    oov_char: int | None = 2,
    index_from: int = 3,
    shuffle: Literal["keras2.0", "keras2.2"] = "keras2.0",
):
    """``keras.datasets.imdb.load_data`` applied to raw rank-indexed sequences (``imdb.npz`` or ours).

    ``shuffle="keras2.0"`` (the book's Keras 2.0.8): the training set is permuted by ``RandomState(seed)``,
    the test set by ``RandomState(2 * seed)``; ``"keras2.2"`` (Keras 2.2 to 3): one ``RandomState(seed)``
    permutes the training set and then the test set. ``maxlen`` drops sequences with ``len >= maxlen``
    (after ``start_char`` is added) as Keras does; unlike Keras 2.2+, the train/test boundary is kept right
    when that happens (Keras cuts the joined list at the original training size).
    Returns ``(x_train, y_train), (x_test, y_test)`` with lists of int lists and int64 label arrays
    (:func:`load_data_ragged` returns the same as :class:`Ragged` arrays, without the lists' memory).
    """
    (a, ya), (b, yb) = load_data_ragged(
        x_train, y_train, x_test, y_test, num_words=num_words, skip_top=skip_top, maxlen=maxlen, seed=seed,
        start_char=start_char, oov_char=oov_char, index_from=index_from, shuffle=shuffle,
    )  # fmt: skip
    return (a.to_lists(), ya), (b.to_lists(), yb)


def tokenize_acl(root: str | os.PathLike, encoding_errors: str = "strict") -> tuple[Tokenizer, dict]:
    """Fit a Keras ``Tokenizer()`` (all words) on ``root/train`` and index both splits with it.

    Returns the tokenizer and ``{"x_train", "y_train", "x_test", "y_test"}`` (:class:`Ragged` sequences
    of word indices, int64 labels). The texts of one split at a time are in memory, and the sequences become
    arrays as they come.
    """
    texts, y_train = read_acl_imdb(root, "train", encoding_errors)
    tok = Tokenizer()
    tok.fit_on_texts(texts)
    x_train = Ragged.from_lists(tok.texts_to_sequences(texts))  # the fitted list: no second tokenization
    del texts
    texts, y_test = read_acl_imdb(root, "test", encoding_errors)
    x_test = Ragged.from_lists(tok.texts_to_sequences_generator(texts))  # one review's list at a time
    del texts
    return tok, {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def keras_imdb_from_acl(root: str | os.PathLike, encoding_errors: str = "strict"):
    """Rank-indexed sequences like those in ``imdb.npz``, built from the raw aclImdb folders.

    Words are ranked by frequency in the 25,000 *training* reviews with the Keras ``Tokenizer`` defaults
    (rank 1 = most frequent), and every review becomes the list of its words' ranks. Keras's ``imdb.npz``
    was made by its own, unpublished preprocessing with ranks over the whole corpus, so the sequences are
    not the same: punctuation, ``<br />`` tags and apostrophes are handled differently, test-only words
    are dropped here, and the review order before the seeded shuffle is ``neg`` then ``pos`` by file name.
    Returns ``x_train, y_train, x_test, y_test, word_index`` (lists of int lists; the DataModules use the
    array form of :func:`tokenize_acl` through the cache of :mod:`seqlight.data.imdb_cache`).
    """
    tok, c = tokenize_acl(root, encoding_errors)
    return c["x_train"].to_lists(), c["y_train"], c["x_test"].to_lists(), c["y_test"], tok.word_index
