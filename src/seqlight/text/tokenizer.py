"""A Keras-compatible ``Tokenizer`` (``keras.preprocessing.text``), several times faster.

Semantics are those of Keras 2 / ``keras-preprocessing`` 1.1.2, which the book uses (section 6.1.1), and the
test suite checks them against that package on the real IMDB reviews:

- a text is lower-cased, every character of ``filters`` becomes ``split``, and the text is split on
  ``split`` (empty pieces dropped); with ``char_level=True`` the (lower-cased) characters are the tokens and
  ``filters`` is not applied; a *list* of strings is taken as already tokenized (lower-cased only);
- ``word_index`` numbers the words from 1 by decreasing count, ties in order of first appearance;
  an ``oov_token`` gets index 1 and shifts the rest;
- ``num_words=N`` keeps only indices ``< N`` (so ``N - 1`` words) in ``texts_to_sequences`` and the
  matrices; the vocabulary itself is kept whole;
- ``texts_to_matrix`` / ``sequences_to_matrix`` modes ``binary``, ``count``, ``freq`` (count / length of the
  sequence) and ``tfidf`` (``(1 + ln c) * ln(1 + document_count / (1 + df))``).

Speed: a list of ``str`` texts is processed a chunk of 100 texts at a time: the chunk is joined, encoded to
UTF-8 and filtered by one ``bytes.translate`` (which also lower-cases the ASCII texts; only non-ASCII ones go
through ``str.lower``), split once into ``bytes`` tokens (on runs of the split character when that is ASCII
whitespace and the chunk has no other, so no empty pieces), and the tokens numbered by first appearance in one
C-level dict pass (only the distinct words are decoded back to ``str``); counts come from ``np.bincount``.
Document frequencies are counted only when first needed, and the cyclic garbage collector is paused meanwhile.
``texts_to_sequences`` on the very list just fitted (the same
``str`` objects, checked one by one; the book's listing 6.9) maps the token ids kept from the fit instead
of tokenizing again; the Tokenizer holds those ids (int32) and a reference to the texts until that call or
its next fit, and the ids alone until ``word_docs``/``index_docs`` are first read. Other
inputs (generators, token lists, ``char_level``, texts containing NUL) take a per-text path with the
same results.

Deliberate differences from Keras, all raising where Keras would silently misbehave:

- ``num_words`` < 1 raises ``ValueError`` (Keras treats 0 like ``None``);
- a text that is neither a ``str`` nor a list of ``str`` raises ``TypeError`` with its position
  (Keras fails with an ``AttributeError`` on ``.lower()`` or counts the items of whatever it got);
- JSON is read and written with :meth:`Tokenizer.to_json` / :func:`tokenizer_from_json` in Keras's own
  format, and :meth:`Tokenizer.save` / :meth:`Tokenizer.load` for files.

Example (the book's listing 6.3):
    >>> t = Tokenizer(num_words=1000)
    >>> t.fit_on_texts(["The cat sat on the mat.", "The dog ate my homework."])
    >>> t.word_index
    {'the': 1, 'cat': 2, 'sat': 3, 'on': 4, 'mat': 5, 'dog': 6, 'ate': 7, 'my': 8, 'homework': 9}
    >>> t.texts_to_sequences(["The cat ate the homework"])
    [[1, 2, 7, 1, 9]]
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from itertools import count, repeat
from operator import is_, itemgetter
from pathlib import Path

import numpy as np

__all__ = ["DEFAULT_FILTERS", "Tokenizer", "text_to_word_sequence", "tokenizer_from_json"]

DEFAULT_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'
MATRIX_MODES = ("binary", "count", "freq", "tfidf")
_SEP = "\x00"  # joins the texts of a chunk for the corpus path
_CHUNK = 100  # texts per chunk on the corpus path (keeps the token objects cache-resident: ~5% faster than 2000)


def _translation(filters: str, split: str) -> dict:
    return str.maketrans({c: split for c in filters})


def text_to_word_sequence(text: str, filters: str = DEFAULT_FILTERS, lower: bool = True, split: str = " ") -> list[str]:
    """Split a text into words the Keras way: lower-case, filters -> ``split``, split, drop empty pieces.

    >>> text_to_word_sequence("The cat sat on the mat.")
    ['the', 'cat', 'sat', 'on', 'the', 'mat']
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if lower:
        text = text.lower()
    return [w for w in text.translate(_translation(filters, split)).split(split) if w]


@contextlib.contextmanager
def _no_gc():
    """Pause the cyclic garbage collector around millions of short-lived allocations (none form cycles)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _WordIndex(dict):
    """``Tokenizer.word_index``: a plain ``dict`` to every reader, holding its own ``num_words`` view.

    Converting texts looks words up in the part of ``word_index`` below ``num_words``: a filtered copy, worth
    keeping between calls (it costs a pass over the vocabulary; converting one short text costs far less). The
    copy lives here, with the words it was made from, and every method that changes the dict drops it, so it
    can never go stale: ``tok.word_index["c"] = 1`` is honoured by the next call, as in Keras (which reads
    ``word_index`` afresh for every token). Reads (``get``, ``[]``, iteration) are the inherited C methods.
    """

    __slots__ = ("_view",)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._view: tuple[int, dict[str, int]] | None = None  # (num_words, the words with index < num_words)

    def below(self, n: int | None) -> dict[str, int]:
        """The words with index ``< n`` (all of them, this very dict, for ``None``)."""
        if n is None:
            return self
        if self._view is None or self._view[0] != n:
            self._view = (n, {w: i for w, i in self.items() if i < n})
        return self._view[1]

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        self._view = None

    def __delitem__(self, key) -> None:
        super().__delitem__(key)
        self._view = None

    def __ior__(self, other):
        self._view = None
        return super().__ior__(other)

    def clear(self) -> None:
        self._view = None
        super().clear()

    def pop(self, *args):
        self._view = None
        return super().pop(*args)

    def popitem(self):
        self._view = None
        return super().popitem()

    def setdefault(self, key, default=None):
        self._view = None
        return super().setdefault(key, default)

    def update(self, *args, **kwargs) -> None:
        self._view = None
        super().update(*args, **kwargs)

    def __reduce__(self):  # pickle and copy without the view
        return (_WordIndex, (dict(self),))


def _split_docs(ids: np.ndarray) -> list[list[int]]:
    """Per-document index lists from one id array where -1 closes a document and 0 marks dropped tokens.

    A last document without its closing -1 is closed by the end of the array. Only the few thousand
    document ends are located among the kept tokens (a binary search each), no pass accumulates over all.
    """
    closes = np.flatnonzero(ids < 0)
    kept_at = np.flatnonzero(ids > 0)
    flat = ids[kept_at].tolist()
    ends = np.searchsorted(kept_at, closes).tolist()
    if ids.size and ids[-1] >= 0:
        ends.append(len(flat))
    starts = [0] + ends[:-1]
    return list(map(flat.__getitem__, map(slice, starts, ends)))


class Tokenizer:
    """Vectorize texts into integer sequences or matrices (Keras ``Tokenizer`` semantics, see module doc).

    Args:
        num_words: keep only the words with index ``< num_words`` when converting (``None`` = all).
        filters: characters replaced by ``split`` before splitting (Keras default: punctuation except
            the apostrophe, plus tab and newline).
        lower: lower-case the texts first.
        split: the word separator (a non-empty string).
        char_level: every character is a token.
        oov_token: if given, added to ``word_index`` with index 1 and used for out-of-vocabulary words
            (and words with index ``>= num_words``) instead of dropping them.
        document_count: initial document count (as in Keras; used by ``tfidf``).
    """

    def __init__(
        self,
        num_words: int | None = None,
        filters: str = DEFAULT_FILTERS,
        lower: bool = True,
        split: str = " ",
        char_level: bool = False,
        oov_token: str | None = None,
        document_count: int = 0,
    ):
        if num_words is not None and (isinstance(num_words, bool) or int(num_words) != num_words or num_words < 1):
            raise ValueError(f"num_words must be an integer >= 1 or None, got {num_words!r}")
        if not isinstance(split, str) or not split:
            raise ValueError(f"split must be a non-empty string, got {split!r}")
        self.num_words = None if num_words is None else int(num_words)
        self.filters = filters
        self.lower = lower
        self.split = split
        self.char_level = char_level
        self.oov_token = oov_token
        self.document_count = document_count
        self.word_counts: OrderedDict[str, int] = OrderedDict()
        self._pending: list = []  # token ids of fitted corpora whose document frequencies are not counted yet
        self._fitted_corpus: tuple | None = (
            None  # (texts, token ids, id -> word, special ids, settings) of the last fit
        )
        self._word_docs: defaultdict[str, int] = defaultdict(int)
        self._index_docs: defaultdict[int, int] = defaultdict(int)
        self.word_index = _WordIndex()
        self.index_word: dict[int, str] = {}
        self._table = _translation(filters, split)
        self._byte_table = None
        if filters.isascii() and split.isascii() and len(split) == 1:
            self._byte_table = bytes.maketrans(filters.encode(), split.encode() * len(filters))

    # -- tokenization -------------------------------------------------------------------------------
    def _tokens(self, text, position: int) -> list[str]:
        if isinstance(text, str):
            if self.lower:
                text = text.lower()
            if self.char_level:
                return list(text)
            pieces = text.translate(self._table).split(self.split)
            if "" in pieces:
                pieces = [w for w in pieces if w]
            return pieces
        if isinstance(text, list):
            for j, w in enumerate(text):
                if not isinstance(w, str):
                    raise TypeError(f"text {position}: token {j} is a {type(w).__name__}, not a str")
            return [w.lower() for w in text] if self.lower else text
        raise TypeError(
            f"text {position} is a {type(text).__name__}; texts must be str (or lists of str tokens). "
            "Decode bytes first, e.g. b.decode('utf-8')."
        )

    def _check_texts(self, texts) -> Iterable:
        if isinstance(texts, (str, bytes)):
            raise TypeError("texts must be a list of strings, not a single string (wrap it in a list)")
        return texts

    def _token_settings(self) -> tuple:
        return (self.lower, self.split, self.filters, self.char_level, self._table, self._byte_table)

    def _fast_path_ok(self, texts: list) -> bool:
        """The corpus path needs word-level str texts with no NUL (the NUL marks document boundaries)."""
        if self.char_level or _SEP in self.filters or _SEP in self.split:
            return False
        return all(type(t) is str for t in texts) and not any(_SEP in t for t in texts)

    def _chunk_text(self, texts: list, joiner: str = _SEP) -> str:
        """``texts`` lower-cased and filtered, joined by ``joiner`` (which contains the NUL separator).

        Lower-casing is per text (as Keras); the filter runs once over the joined chunk, on its UTF-8 bytes
        when ``filters`` and ``split`` are ASCII (a multi-byte UTF-8 sequence never contains an ASCII byte),
        which is much faster than ``str.translate`` on non-ASCII text.
        """
        if self.lower:
            texts = [t.lower() for t in texts]
        big = joiner.join(texts)
        if self._byte_table is not None:
            try:
                return big.encode("utf-8").translate(self._byte_table).decode("utf-8")
            except UnicodeError:  # lone surrogates: str.translate handles them
                pass
        return big.translate(self._table)

    def _chunk_tokens(self, texts: list) -> list[str]:
        """Tokens of ``texts`` in one list, documents separated by a ``"\\x00"`` token; empty pieces stay."""
        return self._chunk_text(texts, self.split + _SEP + self.split).split(self.split)

    def _chunks(self, texts: list):
        for i in range(0, len(texts), _CHUNK):
            yield self._chunk_tokens(texts[i : i + _CHUNK])

    def _byte_chunks(self, texts: list):
        """Like :meth:`_chunks`, but the tokens are UTF-8 ``bytes`` (needs ``self._byte_table``).

        Splitting bytes is cheaper than splitting str, and when the split character is ASCII whitespace and
        the chunk holds no other ASCII whitespace byte, ``bytes.split()`` (runs of whitespace, no empty
        pieces) gives exactly Keras's ``split(split)`` minus the empty pieces, so those are never counted or
        looked up. Non-ASCII characters never split (``bytes.split`` knows only ASCII whitespace, and no
        byte of a multi-byte UTF-8 sequence is ASCII). Raises ``UnicodeError`` for lone surrogates.
        """
        sp = self.split.encode()
        joiner = self.split + _SEP + self.split
        others = [w for w in (b" ", b"\t", b"\n", b"\r", b"\x0b", b"\x0c") if w != sp]
        runs_ok = len(others) == 5  # the split character is itself ASCII whitespace
        table, ascii_lowered = self._byte_table, False
        if self.lower:  # lower-case ASCII texts in the byte table's pass: A-Z -> (a-z, then the filters)
            lowering = bytearray(table)
            lowering[65:91] = table[97:123]
            if lowering[sp[0]] == sp[0]:  # (not when split is an upper-case letter: the joiner must survive)
                table, ascii_lowered = bytes(lowering), True
        for i in range(0, len(texts), _CHUNK):
            chunk = texts[i : i + _CHUNK]
            if ascii_lowered:  # only non-ASCII texts need str.lower (an ASCII text's lower() just maps A-Z)
                chunk = [t if t.isascii() else t.lower() for t in chunk]
            elif self.lower:
                chunk = [t.lower() for t in chunk]
            data = joiner.join(chunk).encode("utf-8").translate(table)
            if runs_ok and not any(w in data for w in others):
                yield data.split()
            else:
                yield data.split(sp)

    # -- fitting ------------------------------------------------------------------------------------
    def fit_on_texts(self, texts: Iterable[str]) -> None:
        """Update the vocabulary from ``texts`` (may be called several times, as in Keras)."""
        texts = list(self._check_texts(texts))
        self._flush_docs()
        self._fitted_corpus = None
        if self._fast_path_ok(texts):
            with _no_gc():
                words, totals = self._fit_corpus(texts)
        else:
            counts = Counter(self.word_counts)  # insertion order = first appearance
            docs = Counter()
            for pos, text in enumerate(texts):
                toks = self._tokens(text, pos)
                counts.update(toks)
                docs.update(set(toks))
            for w, c in docs.items():
                self._word_docs[w] += c
            words, totals = list(counts), np.fromiter(counts.values(), np.int64, len(counts))
        self.document_count += len(texts)
        self.word_counts = OrderedDict(zip(words, totals.tolist()))  # (from a dict it is 2-3x slower)
        # by decreasing count, ties in first-appearance order (a stable sort, as Keras's sorted(reverse=True))
        vocab = list(map(words.__getitem__, np.argsort(-totals, kind="stable").tolist()))
        if self.oov_token is not None:
            vocab.insert(0, self.oov_token)
        self.word_index = _WordIndex(zip(vocab, range(1, len(vocab) + 1)))
        self.index_word = dict(zip(self.word_index.values(), self.word_index))
        if self.num_words is not None and len(self.word_index) == len(vocab):  # indices ascend: a prefix
            from itertools import islice

            # the num_words view, made here by slicing (cheaper than filtering); any later change drops it
            self.word_index._view = (self.num_words, dict(islice(self.word_index.items(), self.num_words - 1)))
        if not self._pending:
            self._update_index_docs()

    def _fit_corpus(self, texts: list) -> tuple[list[str], np.ndarray]:
        """Count words by integer id: the words in first-appearance order (after those already known) and
        their total counts. Document frequencies are computed lazily."""
        as_bytes = self._byte_table is not None
        if as_bytes:
            try:
                known = [w.encode("utf-8") for w in self.word_counts]
                ids, words = self._corpus_ids(self._byte_chunks(texts), known, _SEP.encode())
                # the new tokens hold no split byte (they were split on it): decode them all in one go
                sp, k = self.split.encode(), len(known)
                new = sp.join(words[k:]).decode("utf-8").split(self.split) if len(words) > k else []
                words = [w.decode("utf-8") for w in words[:k]] + new
            except UnicodeError:  # lone surrogates somewhere: the str path below
                as_bytes = False
        if not as_bytes:
            ids, words = self._corpus_ids(self._chunks(texts), list(self.word_counts), _SEP)
        # Kept for texts_to_sequences on these same texts (the book's listing 6.9) until the next fit.
        self._fitted_corpus = (list(texts), ids, words, None)
        totals = np.bincount(ids, minlength=len(words))
        totals[: len(self.word_counts)] += np.fromiter(self.word_counts.values(), np.int64, len(self.word_counts))
        special = {words.index(w) if w in words else -1 for w in ("", _SEP)}  # not words: never counted
        self._pending.append((ids, words, special))
        self._fitted_corpus = self._fitted_corpus[:3] + (special, self._token_settings())
        drop = sorted((i for i in special if i >= 0), reverse=True)
        if drop:
            words = list(words)
            for i in drop:
                del words[i]
            totals = np.delete(totals, drop)
        return words, totals

    @staticmethod
    def _corpus_ids(chunks, known: list, sep_token) -> tuple[np.ndarray, list]:
        """Token ids (int32, first-appearance numbering after ``known``) of all chunks, a ``sep_token`` id
        closing each chunk; and the tokens by id."""
        vocab: defaultdict = defaultdict(count().__next__)
        for w in known:
            vocab[w]
        sep = np.array([vocab[sep_token]], dtype=np.int32)  # marks document boundaries, also between chunks
        get_id = vocab.__getitem__
        batches = []
        for tokens in chunks:
            if len(tokens) > 1:  # itemgetter subscripts the dict directly: ~8% faster than map(get_id, ...)
                batches.append(np.fromiter(itemgetter(*tokens)(vocab), dtype=np.int32, count=len(tokens)))
            else:  # (itemgetter of one key returns the value itself, of none raises)
                batches.append(np.fromiter(map(get_id, tokens), dtype=np.int32, count=len(tokens)))
            batches.append(sep)
        ids = np.concatenate(batches) if batches else np.empty(0, np.int32)
        return ids, list(vocab)

    # -- document frequencies (computed on first use) -------------------------------------------------
    def _flush_docs(self) -> None:
        """Turn the token ids kept by :meth:`_fit_corpus` into ``word_docs`` and ``index_docs``."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        for ids, words, special in pending:
            n = len(words)
            sep = next((i for i in special if i >= 0 and words[i] == _SEP), -1)
            doc = np.cumsum(ids == sep) if sep >= 0 else np.zeros(len(ids), np.int64)
            keys = np.sort(doc * n + ids.astype(np.int64))
            first = np.ones(len(keys), dtype=bool)
            np.not_equal(keys[1:], keys[:-1], out=first[1:])
            df = np.bincount(keys[first] % n, minlength=n).tolist()
            for i, w in enumerate(words):
                if df[i] and i not in special:
                    self._word_docs[w] += df[i]
        self._update_index_docs()

    def _update_index_docs(self) -> None:
        # Keras updates index_docs in place (entries from fit_on_sequences or an earlier fit stay)
        for w, c in self._word_docs.items():
            self._index_docs[self.word_index[w]] = c

    @property
    def word_docs(self) -> defaultdict[str, int]:
        """word -> number of documents it occurs in."""
        self._flush_docs()
        return self._word_docs

    @word_docs.setter
    def word_docs(self, value) -> None:
        self._pending = []
        self._word_docs = defaultdict(int, value)

    @property
    def index_docs(self) -> defaultdict[int, int]:
        """word index -> number of documents (what ``tfidf`` uses)."""
        self._flush_docs()
        return self._index_docs

    @index_docs.setter
    def index_docs(self, value) -> None:
        self._flush_docs()
        self._index_docs = defaultdict(int, value)

    def fit_on_sequences(self, sequences: Iterable[Sequence[int]]) -> None:
        """Update document frequencies from integer sequences (needed for ``tfidf`` without texts)."""
        sequences = list(sequences)
        self.document_count += len(sequences)
        index_docs = self.index_docs
        for seq in sequences:
            for i in set(seq):
                index_docs[i] += 1

    # -- conversion ---------------------------------------------------------------------------------
    @property
    def word_index(self) -> dict[str, int]:
        """word -> index (from 1). Edit it freely: conversions always see its current content. Assigning a
        ``dict`` stores a copy that knows when it changes (so later edits to the original are not seen). With
        an ``oov_token`` edited out of it, unknown words are dropped (Keras would append ``None``)."""
        return self._word_index

    @word_index.setter
    def word_index(self, value) -> None:
        self._word_index = value if type(value) is _WordIndex else _WordIndex(value)

    def _index_lookup(self) -> dict[str, int]:
        """word -> index for the words that survive ``num_words`` (kept by ``word_index`` until it changes)."""
        return self.word_index.below(self.num_words)

    def texts_to_sequences(self, texts: Iterable[str]) -> list[list[int]]:
        """Each text as a list of word indices (unknown words and indices ``>= num_words`` dropped, or OOV)."""
        if not isinstance(texts, list):
            texts = list(self._check_texts(texts))
        with _no_gc():
            reused = self._fitted_sequences(texts)
            return reused if reused is not None else list(self.texts_to_sequences_generator(texts))

    def _fitted_sequences(self, texts) -> list[list[int]] | None:
        """The sequences of the very texts of the last fit, from its kept token ids; ``None`` for other texts.

        Valid only for the same ``str`` objects, in the same order, as the last ``fit_on_texts`` took (a
        ``str`` is immutable, so same object = same tokens); equal copies are tokenized again. The words are
        looked up in the *current* ``word_index`` / ``num_words`` / ``oov_token``, so later edits to those
        are honoured. The ids are used once (the book's listing 6.9 pattern) and then released here; they
        stay only where ``word_docs`` still needs them.
        """
        fitted = self._fitted_corpus
        if (
            fitted is None
            or not isinstance(texts, list)
            or len(fitted[0]) != len(texts)
            or fitted[4] != self._token_settings()  # tokenization settings changed since the fit
            or not all(map(is_, fitted[0], texts))  # (these texts passed _fast_path_ok at the fit)
        ):
            return None
        self._fitted_corpus = None
        _, ids, words, special, _ = fitted
        lookup = self._index_lookup()
        oov = self.word_index.get(self.oov_token) if self.oov_token is not None else None
        default = 0 if oov is None else oov  # 0 = dropped (indices start at 1)
        rank = np.fromiter(map(lookup.get, words, repeat(default)), dtype=np.int64, count=len(words))
        for i in special:
            if i >= 0:
                rank[i] = -1 if words[i] == _SEP else 0  # -1 closes a document, "" is dropped
        if rank.size and rank.max() < 2**31:  # (always, short of a hand-edited word_index)
            rank = rank.astype(np.int32)  # halves the memory traffic of the per-token passes below
        return _split_docs(rank[ids])

    def texts_to_sequences_generator(self, texts: Iterable[str]):
        lookup = self._index_lookup()
        get = lookup.get
        oov = self.word_index.get(self.oov_token) if self.oov_token is not None else None
        texts = self._check_texts(texts)
        if isinstance(texts, list) and self._fast_path_ok(texts):
            reused = self._fitted_sequences(texts)  # the very texts of the last fit: no re-tokenizing
            if reused is not None:
                yield from reused
                return
            get, sp = lookup.get, self.split
            for start in range(0, len(texts), _CHUNK):
                for doc in self._chunk_text(texts[start : start + _CHUNK]).split(_SEP):
                    if oov is None:  # indices start at 1, so filter(None) drops exactly the unknown words
                        yield list(filter(None, map(get, doc.split(sp))))
                    else:
                        yield list(map(get, filter(None, doc.split(sp)), repeat(oov)))
            return
        for pos, text in enumerate(texts):
            toks = self._tokens(text, pos)
            if oov is None:
                yield [i for i in map(get, toks) if i is not None]
            else:
                yield list(map(get, toks, repeat(oov)))

    def sequences_to_texts(self, sequences: Iterable[Sequence[int]]) -> list[str]:
        """Inverse of :meth:`texts_to_sequences` (words joined by a space; unknown indices dropped or OOV)."""
        return list(self.sequences_to_texts_generator(sequences))

    def sequences_to_texts_generator(self, sequences: Iterable[Sequence[int]]):
        n = self.num_words
        oov_index = self.word_index.get(self.oov_token) if self.oov_token is not None else None
        oov_word = self.index_word.get(oov_index) if oov_index is not None else None
        for seq in sequences:
            words = []
            for i in seq:
                w = self.index_word.get(int(i))
                if w is not None and not (n and i >= n):
                    words.append(w)
                elif oov_word is not None:
                    words.append(oov_word)
            yield " ".join(words)

    def texts_to_matrix(self, texts: Iterable[str], mode: str = "binary") -> np.ndarray:
        """``(len(texts), num_words)`` float64 matrix (``binary``, ``count``, ``freq`` or ``tfidf``)."""
        return self.sequences_to_matrix(self.texts_to_sequences(texts), mode=mode)

    def sequences_to_matrix(self, sequences: Sequence[Sequence[int]], mode: str = "binary") -> np.ndarray:
        if mode not in MATRIX_MODES:
            raise ValueError(f"Unknown vectorization mode: {mode!r} (use one of {MATRIX_MODES})")
        if self.num_words:
            width = self.num_words
        elif self.word_index:
            width = len(self.word_index) + 1
        else:
            raise ValueError("Specify a dimension (`num_words` argument), or fit on some text data first.")
        if mode == "tfidf" and not self.document_count:
            raise ValueError("Fit the Tokenizer on some data before using tfidf mode.")
        sequences = list(sequences)
        x = np.zeros((len(sequences), width))
        if mode == "tfidf":
            df = np.zeros(width)
            for j, c in self.index_docs.items():
                if 0 <= j < width:
                    df[j] = c
            idf = np.log1p(self.document_count / (1.0 + df))
        for row, seq in enumerate(sequences):
            if not len(seq):
                continue
            a = np.asarray(seq, dtype=np.int64)
            a = a[a < width]
            if not a.size:
                continue
            cols, c = np.unique(a, return_counts=True)
            if mode == "binary":
                x[row, cols] = 1.0
            elif mode == "count":
                x[row, cols] = c
            elif mode == "freq":
                x[row, cols] = c / len(seq)
            else:
                x[row, cols] = (1.0 + np.log(c)) * idf[cols]
        return x

    # -- persistence --------------------------------------------------------------------------------
    def get_config(self) -> dict:
        """Keras's ``get_config`` layout (the count dictionaries as JSON strings)."""
        return {
            "num_words": self.num_words,
            "filters": self.filters,
            "lower": self.lower,
            "split": self.split,
            "char_level": self.char_level,
            "oov_token": self.oov_token,
            "document_count": self.document_count,
            "word_counts": json.dumps(self.word_counts),
            "word_docs": json.dumps(self.word_docs),
            "index_docs": json.dumps(self.index_docs),
            "index_word": json.dumps(self.index_word),
            "word_index": json.dumps(self.word_index),
        }

    def to_json(self, **kwargs) -> str:
        """JSON in Keras's format (readable by ``keras_preprocessing.text.tokenizer_from_json``)."""
        return json.dumps({"class_name": "Tokenizer", "config": self.get_config()}, **kwargs)

    def save(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_json` to ``path`` atomically (see :func:`seqlight.files.atomic_path`)."""
        from seqlight.files import atomic_path

        path = Path(path)
        with atomic_path(path) as tmp:
            tmp.write_text(self.to_json(ensure_ascii=False), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Tokenizer:
        """Read a tokenizer written by :meth:`save` (or Keras's ``to_json``)."""
        try:
            return tokenizer_from_json(Path(path).read_text(encoding="utf-8"))
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from e

    def __repr__(self) -> str:
        return (
            f"Tokenizer(num_words={self.num_words}, words={len(self.word_index)}, documents={self.document_count}, "
            f"char_level={self.char_level}, oov_token={self.oov_token!r})"
        )


def tokenizer_from_json(json_string: str) -> Tokenizer:
    """Rebuild a :class:`Tokenizer` from :meth:`Tokenizer.to_json` (or from Keras's ``to_json``)."""
    try:
        cfg = dict(json.loads(json_string)["config"])
        word_counts = json.loads(cfg.pop("word_counts"))
        word_docs = json.loads(cfg.pop("word_docs"))
        index_docs = {int(k): v for k, v in json.loads(cfg.pop("index_docs")).items()}
        index_word = {int(k): v for k, v in json.loads(cfg.pop("index_word")).items()}
        word_index = json.loads(cfg.pop("word_index"))
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"not a Tokenizer JSON document: {e}") from e
    t = Tokenizer(**cfg)
    t.word_counts = OrderedDict(word_counts)
    t.word_docs = defaultdict(int, word_docs)
    t.index_docs = defaultdict(int, index_docs)
    t.word_index = word_index
    t.index_word = index_word
    return t
