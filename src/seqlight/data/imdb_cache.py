"""The tokenized IMDB corpus, cached on disk: a second start reads arrays instead of 50,000 reviews.

Tokenizing aclImdb (reading 50,000 files, fitting the Keras ``Tokenizer``, indexing both splits) takes
15-20 s and, as Python lists, a lot of memory. What it produces depends only on the review files, the
tokenizer's settings and ``encoding_errors``; everything the DataModules do after it (``num_words``,
``maxlen``, padding, truncating, ``reverse``, ``load_data``'s shuffle and indexing, the seeded split) is
cheap NumPy work on :class:`~seqlight.data.imdb_keras.Ragged` arrays and is redone at every start. So one
cache entry serves every IMDB config on the same data, and a setting that does change the tokenization
misses.

An entry is one uncompressed ``.npz`` file, ``<cache root>/imdb/<key digest>.npz`` (the cache root is
``$SEQLIGHT_CACHE``, else ``~/.cache/seqlight``), holding the token arrays of both splits, the labels, the
word ranks and the fitted tokenizer's JSON, and its own key:

- **key**: the cache format, the seqlight version, the data's identity (for aclImdb the name, size and
  mtime of every review file, see :func:`~seqlight.data.imdb_files.acl_imdb_signature`; for ``imdb.npz``
  its verified sha256) and the tokenizer settings. The file name is the sha256 of the key, and the key
  stored inside must equal the expected one.
- **written atomically** (:func:`seqlight.files.atomic_path`) under :func:`seqlight.files.file_lock`, so
  concurrent starts (DDP ranks, two runs) build it once and never read half a file.
- **never trusted blindly**: a truncated or damaged file (zip CRC-32 of every array, shapes, offsets,
  dtypes, key) is logged, removed and rebuilt.
- **bounded**: the :data:`MAX_ENTRIES` most recently used entries are kept (a hit refreshes the file's
  mtime), older ones removed. Delete the folder to clear it; ``cache=False`` on a DataModule bypasses it.
- A cache folder that cannot be written (read-only, full) only costs the speed: a warning, and the corpus
  is built in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqlight.data.imdb_keras import Ragged
from seqlight.files import LocalFileError, atomic_path, cache_root, file_lock
from seqlight.text import Tokenizer
from seqlight.text.tokenizer import tokenizer_from_json

__all__ = ["CACHE_VERSION", "MAX_ENTRIES", "TokenizedCorpus", "cache_dir", "cached_corpus", "corpus_key"]

log = logging.getLogger(__name__)

CACHE_VERSION = 1  # bump when what an entry holds, or how the tokenization is done, changes
MAX_ENTRIES = 8
_SPLITS = ("x_train", "x_test")


@dataclass
class TokenizedCorpus:
    """Word-index sequences of both splits, their labels, and what indexed them.

    ``word_index_json``: word -> rank (1 = most frequent) as JSON, ``""`` when unknown (``imdb.npz``
    without ``imdb_word_index.json``). ``tokenizer_json``: the fitted :class:`~seqlight.text.Tokenizer`
    (``num_words=None``) in Keras's JSON, ``""`` when the corpus did not come from a Tokenizer.
    """

    x_train: Ragged
    y_train: np.ndarray
    x_test: Ragged
    y_test: np.ndarray
    word_index_json: str = ""
    tokenizer_json: str = ""

    @classmethod
    def from_tokenizer(cls, tok: Tokenizer, arrays: dict) -> TokenizedCorpus:
        word_index = json.dumps(dict(tok.word_index), ensure_ascii=False, separators=(",", ":"))
        return cls(**arrays, word_index_json=word_index, tokenizer_json=tok.to_json(ensure_ascii=False))

    def word_index(self) -> dict[str, int] | None:
        return json.loads(self.word_index_json) if self.word_index_json else None

    def tokenizer_json_for(self, num_words: int | None) -> str:
        """The fitted tokenizer's JSON with ``num_words`` set, without building the Tokenizer (its JSON holds
        the count dictionaries as strings: only the small outer object is parsed and written again)."""
        if not self.tokenizer_json:
            raise ValueError("this corpus was not made by a Tokenizer")
        outer = json.loads(self.tokenizer_json)
        outer["config"]["num_words"] = num_words
        return json.dumps(outer, ensure_ascii=False)

    def tokenizer(self, num_words: int | None) -> Tokenizer:
        """The fitted tokenizer, with ``num_words`` set (the entry keeps it with all words)."""
        if not self.tokenizer_json:
            raise ValueError("this corpus was not made by a Tokenizer")
        tok = tokenizer_from_json(self.tokenizer_json)
        tok.num_words = num_words
        return tok

    def to_arrays(self, key_json: str) -> dict[str, np.ndarray]:
        out = {"key": _utf8(key_json)}
        for name in _SPLITS:
            r: Ragged = getattr(self, name)
            out[f"{name}_values"] = np.ascontiguousarray(r.values, dtype=np.int32)
            out[f"{name}_offsets"] = np.ascontiguousarray(r.offsets, dtype=np.int64)
        out["y_train"] = np.asarray(self.y_train, dtype=np.int64)
        out["y_test"] = np.asarray(self.y_test, dtype=np.int64)
        out["word_index"] = _utf8(self.word_index_json)
        out["tokenizer"] = _utf8(self.tokenizer_json)
        return out

    @classmethod
    def from_arrays(cls, f, key_json: str, where: Path) -> TokenizedCorpus:
        """Read and check an entry (``f``: an open ``NpzFile``); ``ValueError`` says what is wrong."""
        if _text(f["key"]) != key_json:
            raise ValueError(f"{where}: it holds another key")
        parts = {}
        for name in _SPLITS:
            values, offsets = f[f"{name}_values"], f[f"{name}_offsets"]
            if values.dtype != np.int32 or offsets.dtype != np.int64:
                raise ValueError(f"{where}: {name} has dtypes {values.dtype}/{offsets.dtype}")
            parts[name] = Ragged(values, offsets)  # checks the offsets
            if values.size and values.min() < 0:
                raise ValueError(f"{where}: {name} has negative word indices")
        y_train, y_test = f["y_train"], f["y_test"]
        if y_train.shape != (len(parts["x_train"]),) or y_test.shape != (len(parts["x_test"]),):
            raise ValueError(f"{where}: labels and sequences differ in number")
        return cls(parts["x_train"], y_train, parts["x_test"], y_test, _text(f["word_index"]), _text(f["tokenizer"]))


def _utf8(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def _text(a: np.ndarray) -> str:
    if a.dtype != np.uint8 or a.ndim != 1:
        raise ValueError("a text member that is not bytes")
    return a.tobytes().decode("utf-8")


def corpus_key(identity: dict, settings: dict) -> dict:
    """The key of an entry: format, seqlight version, the data's ``identity`` and the tokenizing ``settings``."""
    from seqlight import __version__

    return {"format": CACHE_VERSION, "seqlight": __version__, "data": identity, "settings": settings}


def tokenizer_settings(tok: Tokenizer) -> dict:
    """The settings of ``tok`` that change how texts become indices (``num_words`` aside: applied later)."""
    return {"filters": tok.filters, "lower": tok.lower, "split": tok.split, "char_level": tok.char_level,
            "oov_token": tok.oov_token}  # fmt: skip


def cache_dir() -> Path:
    """Where the entries live: ``<cache root>/imdb``."""
    return cache_root() / "imdb"


def _entry_path(key_json: str, folder: Path) -> Path:
    return folder / f"{hashlib.sha256(key_json.encode('utf-8')).hexdigest()[:40]}.npz"


# what a damaged or foreign file raises in np.load / zipfile / the checks above
_BAD_ENTRY = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, RuntimeError)


def _load(path: Path, key_json: str) -> TokenizedCorpus | None:
    """The entry at ``path``, or ``None`` when there is none; a bad one is removed (and ``None``)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            corpus = TokenizedCorpus.from_arrays(f, key_json, path)
    except FileNotFoundError:
        return None
    except _BAD_ENTRY as e:
        log.warning("IMDB cache entry %s is damaged (%s: %s); rebuilding it", path, type(e).__name__, e)
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # most recently used
    return corpus


def _save(corpus: TokenizedCorpus, path: Path, key_json: str) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **corpus.to_arrays(key_json))
    _prune(path.parent, keep=path)


def _prune(folder: Path, keep: Path) -> None:
    entries = []
    for p in folder.glob("*.npz"):
        with contextlib.suppress(OSError):
            entries.append((p.stat().st_mtime, p))
    entries.sort(reverse=True)
    for _, p in entries[MAX_ENTRIES:]:
        if p != keep:
            with contextlib.suppress(OSError):
                p.unlink()
                log.info("removed the least recently used IMDB cache entry %s", p)


def cached_corpus(
    key: dict, build: Callable[[], TokenizedCorpus], *, cache: bool = True, folder: Path | None = None
) -> tuple[TokenizedCorpus, bool]:
    """``(corpus, hit)``: the entry for ``key`` if there is a sound one, else ``build()`` (saved for next time).

    ``cache=False`` always builds and writes nothing. ``hit`` says whether the corpus came from the cache.
    """
    if not cache:
        return build(), False
    key_json = json.dumps(key, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    folder = cache_dir() if folder is None else Path(folder)
    path = _entry_path(key_json, folder)
    corpus = _load(path, key_json)  # a complete file or none: entries appear by rename
    if corpus is not None:
        log.info("IMDB corpus from the cache %s", path)
        return corpus, True
    try:
        with file_lock(path):
            corpus = _load(path, key_json)  # another process may have built it while we waited
            if corpus is not None:
                return corpus, True
            corpus = build()
            _save(corpus, path, key_json)
            log.info("IMDB corpus cached in %s", path)
            return corpus, False
    except LocalFileError as e:
        warnings.warn(
            f"the IMDB corpus cache could not be written ({e}); continuing without it (set SEQLIGHT_CACHE "
            "to a writable folder to start faster next time)",
            stacklevel=3,
        )
        return (corpus if corpus is not None else build()), False
