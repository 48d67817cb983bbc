"""What turns raw input into a model's input, learned from the training data and kept with the model.

A DataModule computes one of these in ``setup()`` (its ``preprocessing`` attribute); a seqlight model takes
it from the DataModule when training starts and keeps it in every checkpoint (``checkpoint["preprocessing"]``),
so a model loaded with ``load_from_checkpoint`` in a fresh process, without the training data, can answer
new raw input: :meth:`seqlight.models.Forecaster.forecast` on a CSV, :meth:`seqlight.models.Classifier.classify`
on review texts. Each kind is a frozen dataclass of plain values, written as a small dict (:meth:`to_dict`)
that ``torch.load(weights_only=True)`` reads and that an exported model's JSON repeats.

- :class:`JenaPreprocessing`: the feature columns, their mean and standard deviation over the
  standardization rows, the target column, and the window (``lookback``, ``step``, ``delay``, ``reverse``).
- :class:`TextPreprocessing`: the fitted :class:`~seqlight.text.Tokenizer` (its Keras JSON) and
  ``pad_sequences``'s ``maxlen``, ``padding`` and ``truncating`` (raw IMDB, 6.1.3).
- :class:`IndexedTextPreprocessing`: the word ranks and the ``start_char``/``oov_char``/``index_from``/
  ``skip_top``/``num_words`` settings that ``keras.datasets.imdb`` applies (6.1.2, 6.2-6.4).

Sizes a model is built with (features, window length, vocabulary) are set in the configuration and known
before any data is read; these objects carry what can only be learned from the data.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np

from seqlight.text import Tokenizer, pad_sequences, text_to_word_sequence
from seqlight.text.tokenizer import tokenizer_from_json

__all__ = [
    "Preprocessing",
    "JenaPreprocessing",
    "TextPreprocessing",
    "IndexedTextPreprocessing",
    "preprocessing_from_dict",
]


class Preprocessing:
    """Base of the preprocessing kinds: a ``kind`` name and a round trip through a plain dict."""

    kind: ClassVar[str] = ""
    _kinds: ClassVar[dict[str, type[Preprocessing]]] = {}

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            Preprocessing._kinds[cls.kind] = cls

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (str, int, float, bool, lists), with ``kind`` first."""
        return {"kind": self.kind, **_plain(asdict(self))}


def _plain(value):
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def preprocessing_from_dict(data: dict[str, Any]) -> Preprocessing:
    """The inverse of :meth:`Preprocessing.to_dict`."""
    data = dict(data)
    kind = data.pop("kind", None)
    if kind not in Preprocessing._kinds:
        raise ValueError(f"unknown preprocessing kind {kind!r} (known: {sorted(Preprocessing._kinds)})")
    cls = Preprocessing._kinds[kind]
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


@dataclass(frozen=True)
class JenaPreprocessing(Preprocessing):
    """Standardization and windows of :class:`~seqlight.data.JenaDataModule` (book 6.3.2).

    The window of "present" row ``i`` is ``rows i - lookback, i - lookback + step, ..., i - step`` and its
    target is row ``i + delay``, as in the book's generator; so the forecast made from a window whose newest
    row is ``e`` is for row ``e + step + delay``.
    """

    kind: ClassVar[str] = "jena"
    features: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    target: str
    lookback: int
    step: int
    delay: int
    reverse: bool = False
    cadence_minutes: float = 10.0

    def __post_init__(self) -> None:
        if not (len(self.features) == len(self.mean) == len(self.std)):
            raise ValueError("features, mean and std must have one entry per feature")
        if self.target not in self.features:
            raise ValueError(f"target {self.target!r} is not one of the features {list(self.features)}")

    @property
    def num_features(self) -> int:
        return len(self.features)

    @property
    def target_index(self) -> int:
        return self.features.index(self.target)

    @property
    def target_mean(self) -> float:
        return float(self.mean[self.target_index])

    @property
    def target_std(self) -> float:
        return float(self.std[self.target_index])

    @property
    def timesteps(self) -> int:
        return len(range(0, self.lookback, self.step))

    @property
    def horizon(self) -> int:
        """Rows from a window's newest row to its target (``step + delay``)."""
        return self.step + self.delay

    def windows(self, values: np.ndarray, newest_rows) -> np.ndarray:
        """Standardized windows ``(B, timesteps, features)`` (float32) whose newest rows are ``newest_rows``.

        ``values`` is the raw series ``(n_rows, features)`` in :attr:`features` order. Raises ``IndexError``
        for a row whose window would start before the series.
        """
        newest = np.atleast_1d(np.asarray(newest_rows, dtype=np.int64))
        present = newest + self.step  # the book's row i
        rows = present[:, None] - self.lookback + np.arange(0, self.lookback, self.step)[None, :]
        if newest.size and (rows.min() < 0 or newest.max() >= len(values)):
            raise IndexError(f"a window of lookback {self.lookback} needs rows {int(rows.min())}..{int(newest.max())}")
        mean = np.asarray(self.mean, dtype=np.float64)
        std = np.asarray(self.std, dtype=np.float64)
        x = ((np.asarray(values, dtype=np.float64)[rows] - mean) / std).astype(np.float32)
        return x[:, ::-1].copy() if self.reverse else x


@dataclass(frozen=True)
class TextPreprocessing(Preprocessing):
    """The raw-text pipeline of :class:`~seqlight.data.ImdbDataModule`: Tokenizer, then ``pad_sequences``."""

    kind: ClassVar[str] = "text"
    tokenizer_json: str
    maxlen: int
    padding: str = "pre"
    truncating: str = "pre"
    _tokenizer: Tokenizer | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "tokenizer_json": self.tokenizer_json, "maxlen": self.maxlen,
                "padding": self.padding, "truncating": self.truncating}  # fmt: skip

    @property
    def tokenizer(self) -> Tokenizer:
        if self._tokenizer is None:
            object.__setattr__(self, "_tokenizer", tokenizer_from_json(self.tokenizer_json))
        return self._tokenizer

    @property
    def num_words(self) -> int | None:
        return self.tokenizer.num_words

    def encode(self, texts: list[str]) -> np.ndarray:
        """``(len(texts), maxlen)`` int64 word indices, exactly as the DataModule built its training data."""
        seqs = self.tokenizer.texts_to_sequences(list(texts))
        return pad_sequences(seqs, maxlen=self.maxlen, padding=self.padding, truncating=self.truncating).astype(
            np.int64
        )


@dataclass(frozen=True)
class IndexedTextPreprocessing(Preprocessing):
    """``keras.datasets.imdb``'s indexing of a review, then ``pad_sequences`` (book 6.1.2, 6.2-6.4).

    ``word_ranks`` maps a word to its frequency rank (1 = most frequent), as ``imdb.get_word_index()``;
    words without a rank are dropped (as the Tokenizer that ranked them does). Then, as ``load_data``: the
    ranks are shifted by ``index_from``, ``start_char`` is put in front, and every index outside
    ``[skip_top, num_words)`` becomes ``oov_char`` (or is dropped when ``oov_char`` is ``None``).
    """

    kind: ClassVar[str] = "indexed_text"
    word_ranks_json: str
    maxlen: int
    num_words: int | None = None
    skip_top: int = 0
    start_char: int | None = 1
    oov_char: int | None = 2
    index_from: int = 3
    padding: str = "pre"
    truncating: str = "pre"
    reverse: bool = False
    _ranks: dict | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        return {"kind": self.kind, **d}

    @classmethod
    def from_ranks(cls, word_ranks: dict[str, int], **settings) -> IndexedTextPreprocessing:
        return cls(word_ranks_json=json.dumps(word_ranks, ensure_ascii=False, separators=(",", ":")), **settings)

    @property
    def word_ranks(self) -> dict[str, int]:
        if self._ranks is None:
            object.__setattr__(self, "_ranks", json.loads(self.word_ranks_json))
        return self._ranks

    def index(self, text: str) -> list[int]:
        """One review as ``load_data`` indexes it (before padding)."""
        ranks = self.word_ranks
        x = [ranks[w] + self.index_from for w in text_to_word_sequence(text) if w in ranks]
        if self.start_char is not None:
            x = [self.start_char, *x]
        top = self.num_words if self.num_words is not None else float("inf")
        if self.oov_char is not None:
            return [w if self.skip_top <= w < top else self.oov_char for w in x]
        return [w for w in x if self.skip_top <= w < top]

    def encode(self, texts: list[str]) -> np.ndarray:
        """``(len(texts), maxlen)`` int64 indices, as the DataModule built its data (reversed before padding
        for the book's reversed-sequence experiment)."""
        seqs = [self.index(t)[::-1] if self.reverse else self.index(t) for t in texts]
        return pad_sequences(seqs, maxlen=self.maxlen, padding=self.padding, truncating=self.truncating).astype(
            np.int64
        )
