"""GloVe word vectors: fast reading, a cache for instant reloads, and the book's embedding matrix (6.1.3).

Reads ``glove.6B.<d>d.txt``, the same compressed as ``.txt.gz``, or the member ``glove.6B.<d>d.txt`` of the
official ``glove.6B.zip``. The text is parsed by pandas' C parser (numbers) plus one pass over the lines
(words and field counts), several times faster than the book's ``line.split()`` loop, and gives the same
float32 values. The first read writes a cache next to the file (``<file>.seqlight-cache.npy`` with the
vectors and ``<file>.seqlight-cache.json`` with the words and the source's size, mtime and a digest of its
first and last MiB); later reads of an unchanged file load the cache in a fraction of a second (the
vectors then come as a read-only memory map of the ``.npy``; ``np.array(v.vectors)`` copies them). If the
folder is not writable (a read-only dataset share), the cache goes to ``$SEQLIGHT_CACHE`` or
``~/.cache/seqlight/glove`` instead.

Bad input raises :class:`GloveFormatError` naming the file and line: a wrong number of values, a value that
is not a number, bytes that are not UTF-8, a blank line, an empty file. A word that occurs twice keeps its
*last* vector, as the book's ``embeddings_index[word] = coefs`` does, and a warning names the lines.

Example (the book's listings 6.10 and 6.11)::

    vectors = load_glove("datasets/glove.6B.100d.txt")        # "Found 400000 word vectors."
    matrix = embedding_matrix(tokenizer.word_index, vectors, num_words=10000)
    print(embedding_coverage(tokenizer.word_index, vectors, 10000))   # found 9801 of 9999 words ...
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import re
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seqlight.errors import SeqlightError
from seqlight.files import atomic_path, cache_root

__all__ = [
    "GLOVE_6B_URL",
    "GLOVE_6B_MD5",
    "GloveFormatError",
    "GloveVectors",
    "Coverage",
    "load_glove",
    "read_glove",
    "embedding_matrix",
    "embedding_coverage",
    "write_glove",
]

# The one home of the official GloVe 6B address and digest (seqlight.data.imdb downloads it with them).
GLOVE_6B_URL = "https://nlp.stanford.edu/data/glove.6B.zip"
# md5 of the official glove.6B.zip (822 MB), as pinned by torchtext's GloVe('6B') and other loaders (no sha256 found)
GLOVE_6B_MD5 = "056ea991adb4740ac6bf1b6d9b50408b"
CACHE_VERSION = 1
_EDGE = 1 << 20  # bytes of the source hashed at each end for the cache key


class GloveFormatError(SeqlightError, ValueError):
    """A GloVe file is malformed; the message names the file and the (1-based) line."""


@dataclass
class GloveVectors:
    """Words and their vectors: ``vectors[index[word]]``; behaves like the book's ``embeddings_index`` dict.

    >>> v = GloveVectors(["the", "cat"], np.eye(2, dtype=np.float32))
    >>> v["cat"], "dog" in v, len(v), v.dim
    (array([0., 1.], dtype=float32), False, 2, 2)
    """

    words: list[str]
    vectors: np.ndarray
    path: Path | None = None
    index: dict[str, int] = field(default=None, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.index is None:
            self.index = dict(zip(self.words, range(len(self.words))))  # a duplicated word keeps its last row

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, word) -> bool:
        return word in self.index

    def __getitem__(self, word: str) -> np.ndarray:
        return self.vectors[self.index[word]]

    def get(self, word: str, default=None):
        i = self.index.get(word)
        return default if i is None else self.vectors[i]

    def __repr__(self) -> str:
        return f"GloveVectors({len(self)} words, dim={self.vectors.shape[1]}, path={self.path})"


# ---------------------------------------------------------------------------------------------------------
# reading


def _member_name(path: Path, dim: int | None) -> str:
    if dim is None:
        raise ValueError(f"{path}: reading from a zip archive needs dim (e.g. dim=100 for glove.6B.100d.txt)")
    return f"glove.6B.{dim}d.txt"


def _read_bytes(path: Path, dim: int | None) -> bytes:
    if path.suffix == ".zip":
        member = _member_name(path, dim)
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if Path(n).name == member]
            if not names:
                raise GloveFormatError(f"{path}: the archive has no member {member!r}")
            return zf.read(names[0])
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as f:
            return f.read()
    return path.read_bytes()


def _slow_parse(raw: bytes, where: str, dim: int | None) -> tuple[list[str], np.ndarray]:
    """Line-by-line parser used when the fast path meets anything unusual: finds and names the bad line."""
    words: list[str] = []
    rows: list[np.ndarray] = []
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for lineno, line in enumerate(lines, 1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise GloveFormatError(
                f"{where}, line {lineno}: bytes that are not UTF-8 ({e.reason} at byte {e.start})"
            ) from None
        text = text.rstrip("\r")
        if not text.strip():
            raise GloveFormatError(f"{where}, line {lineno}: blank line (expected 'word v1 ... v{dim or 'd'}')")
        parts = text.split(" ")
        if dim is None:
            dim = len(parts) - 1
            if dim < 1:
                raise GloveFormatError(f"{where}, line {lineno}: a word without values")
        if len(parts) != dim + 1:
            raise GloveFormatError(
                f"{where}, line {lineno}: {len(parts) - 1} values for {parts[0]!r}, expected {dim} "
                "(fields are separated by single spaces)"
            )
        try:
            row = np.array([float(v) for v in parts[1:]], dtype=np.float64)
        except ValueError:
            bad = next(v for v in parts[1:] if not _is_float(v))
            raise GloveFormatError(f"{where}, line {lineno}: {bad!r} is not a number (word {parts[0]!r})") from None
        if not np.isfinite(row).all():
            raise GloveFormatError(f"{where}, line {lineno}: non-finite value for {parts[0]!r}")
        words.append(parts[0])
        rows.append(row.astype(np.float32))
    if not rows:
        raise GloveFormatError(f"{where}: the file is empty (no word vectors)")
    return words, np.stack(rows)


def _is_float(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def _open_text(path: Path, dim: int | None):
    """A binary stream of the GloVe text inside ``path`` (plain, gzip or zip member)."""
    if path.suffix == ".zip":
        member = _member_name(path, dim)
        zf = zipfile.ZipFile(path)
        names = [n for n in zf.namelist() if Path(n).name == member]
        if not names:
            zf.close()
            raise GloveFormatError(f"{path}: the archive has no member {member!r}")
        return zf.open(names[0])
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return open(path, "rb")


def _fast_parse(path: Path, dim: int | None) -> tuple[list[str], np.ndarray] | None:
    """pandas' C parser with strict settings; ``None`` when anything is unusual (the slow path then names it).

    With ``header=None`` and no ``usecols``, the C parser rejects a line with more fields than the first
    (``Expected 101 fields in line 7``); a missing field, a blank line or a non-number fails the float32
    conversion; bytes that are not UTF-8 fail the decoding. Any of these falls back to :func:`_slow_parse`.
    """
    import pandas as pd

    try:
        with _open_text(path, dim) as stream:
            head = stream.peek(1 << 16) if hasattr(stream, "peek") else b""
            first = head.split(b"\n", 1)[0]
            ncols = first.count(b" ") + 1
            if ncols < 2 or (dim is not None and ncols != dim + 1):
                return None
            frame = pd.read_csv(
                stream,
                sep=" ",
                header=None,
                dtype={i: (object if i == 0 else np.float32) for i in range(ncols)},
                engine="c",
                quoting=csv.QUOTE_NONE,
                na_filter=False,
                skip_blank_lines=False,
                encoding="utf-8",
            )
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, IndexError):
        return None
    if len(frame) == 0 or frame.shape[1] != ncols:
        return None
    vectors = np.empty((ncols - 1, len(frame)), dtype=np.float32)
    for j in range(1, ncols):
        vectors[j - 1] = frame[j].to_numpy()
    words = frame[0].tolist()
    if not all(isinstance(w, str) and w for w in words) or not np.isfinite(vectors).all():
        return None
    return words, vectors.T  # a Fortran-ordered (n, d) view; np.save/np.load keep it as is


def read_glove(path: str | os.PathLike, dim: int | None = None) -> GloveVectors:
    """Parse a GloVe text file (``.txt``, ``.txt.gz`` or the ``glove.6B.<dim>d.txt`` member of a ``.zip``).

    ``dim`` is checked against the file when given (inferred from the first line otherwise). No cache.
    """
    path = Path(path)
    where = f"{path}" + (f" [{_member_name(path, dim)}]" if path.suffix == ".zip" else "")
    parsed = _fast_parse(path, dim)
    if parsed is None:
        parsed = _slow_parse(_read_bytes(path, dim), where, dim)
    words, vectors = parsed
    if dim is not None and vectors.shape[1] != dim:
        raise GloveFormatError(f"{where}, line 1: {vectors.shape[1]} values per word, expected dim={dim}")
    _warn_duplicates(words, where)
    return GloveVectors(words, vectors, path)


def _warn_duplicates(words: list[str], where: str) -> None:
    if len(set(words)) == len(words):
        return
    first: dict[str, int] = {}
    dups = []
    for lineno, w in enumerate(words, 1):
        if w in first:
            dups.append(f"{w!r} (lines {first[w]} and {lineno})")
        else:
            first[w] = lineno
    warnings.warn(
        f"{where}: {len(dups)} duplicated word(s), the last vector is kept (as the book's dict does): "
        + ", ".join(dups[:5])
        + (" ..." if len(dups) > 5 else ""),
        stacklevel=3,
    )


# ---------------------------------------------------------------------------------------------------------
# cache


def _source_key(path: Path) -> dict:
    st = path.stat()
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(_EDGE))
        if st.st_size > 2 * _EDGE:
            f.seek(-_EDGE, os.SEEK_END)
            h.update(f.read(_EDGE))
    return {"version": CACHE_VERSION, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "edges_sha256": h.hexdigest()}


def _cache_paths(path: Path, dim: int | None, cache_dir: str | os.PathLike | None) -> list[tuple[Path, Path]]:
    stem = path.name + (f".{dim}d" if path.suffix == ".zip" else "") + ".seqlight-cache"
    candidates = []
    if cache_dir is not None:
        candidates.append(Path(cache_dir))
    else:
        candidates.append(path.parent)
        tag = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
        fallback = cache_root() / "glove" / tag
        candidates.append(fallback)
    return [(d / f"{stem}.npy", d / f"{stem}.json") for d in candidates]


def _load_cache(npy: Path, meta_path: Path, key: dict, path: Path) -> GloveVectors | None:
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("source") != key:
            return None
        vectors = np.load(npy, mmap_mode="r")  # read-only, paged in on use: the reload costs ~the word list
        words = meta["words"]
        if vectors.shape != (len(words), meta["dim"]):
            return None
    except (OSError, ValueError, KeyError):
        return None
    return GloveVectors(words, vectors, path)


def _save_cache(vec: GloveVectors, npy: Path, meta_path: Path, key: dict) -> bool:
    """Write the cache pair atomically (see :mod:`seqlight.files`); ``False`` when this folder refuses it."""
    try:
        with atomic_path(npy) as tmp, open(tmp, "wb") as f:
            np.save(f, vec.vectors)
        meta = {"source": key, "dim": vec.dim, "words": vec.words}
        with atomic_path(meta_path) as tmp:
            tmp.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        return True
    except OSError:  # e.g. a read-only dataset share: the caller tries the next place
        return False


def load_glove(
    path: str | os.PathLike, dim: int | None = None, *, cache: bool = True, cache_dir: str | os.PathLike | None = None
) -> GloveVectors:
    """Read GloVe vectors like :func:`read_glove`, through a cache that makes the second load near instant.

    The cache is keyed on the source's size, mtime and the sha256 of its first and last MiB; a changed file is
    parsed again. ``cache=False`` always parses; ``cache_dir`` puts the cache files there.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"GloVe file not found: {path}")
    if not cache:
        return read_glove(path, dim)
    key = _source_key(path)
    places = _cache_paths(path, dim, cache_dir)
    for npy, meta in places:
        if npy.exists() and meta.exists():
            hit = _load_cache(npy, meta, key, path)
            if hit is not None and (dim is None or hit.dim == dim):
                return hit
    vec = read_glove(path, dim)
    for npy, meta in places:
        if _save_cache(vec, npy, meta, key):
            break
    return vec


def write_glove(path: str | os.PathLike, words, vectors: np.ndarray) -> Path:
    """Write vectors in the GloVe text format (``word v1 ... vd``, ``%.6g`` values), gzip if ``path`` ends in .gz."""
    path = Path(path)
    vectors = np.asarray(vectors, dtype=np.float32)
    lines = []
    for w, row in zip(words, vectors):
        if not w or re.search(r"\s", w):
            raise ValueError(f"GloVe words cannot be empty or contain whitespace: {w!r}")
        lines.append(w + " " + " ".join(f"{v:.6g}" for v in row.tolist()) + "\n")
    data = "".join(lines).encode("utf-8")
    with atomic_path(path) as tmp:
        if path.suffix == ".gz":
            with gzip.GzipFile(tmp, "wb", mtime=0) as f:
                f.write(data)
        else:
            tmp.write_bytes(data)
    return path


# ---------------------------------------------------------------------------------------------------------
# embedding matrix


def embedding_matrix(
    word_index: Mapping[str, int], vectors: GloveVectors | Mapping, num_words: int | None = None
) -> np.ndarray:
    """The book's listing 6.11: row ``i`` = the vector of the word with index ``i``, for ``i < num_words``.

    Row 0 (padding) and the rows of words GloVe lacks stay zero. ``num_words=None`` = ``len(word_index) + 1``.
    ``vectors`` is a :class:`GloveVectors` or any ``word -> vector`` mapping (e.g. the book's dict).
    """
    if num_words is None:
        num_words = max(word_index.values(), default=0) + 1
    if num_words < 1:
        raise ValueError(f"num_words must be >= 1, got {num_words}")
    if isinstance(vectors, GloveVectors):
        dim = vectors.dim
        matrix = np.zeros((num_words, dim), dtype=np.float32)
        rows, src = [], []
        for word, i in word_index.items():
            if i < num_words:
                j = vectors.index.get(word)
                if j is not None:
                    rows.append(i)
                    src.append(j)
        matrix[rows] = vectors.vectors[src]
        return matrix
    first = next(iter(vectors.values()), None)
    if first is None:
        raise ValueError("vectors is empty")
    matrix = np.zeros((num_words, len(first)), dtype=np.float32)
    for word, i in word_index.items():
        if i < num_words:
            v = vectors.get(word)
            if v is not None:
                matrix[i] = v
    return matrix


@dataclass(frozen=True)
class Coverage:
    """How many of the words with index ``1..num_words-1`` have a GloVe vector."""

    found: int
    total: int
    missing: tuple[str, ...]

    def __str__(self) -> str:
        pct = 100.0 * self.found / self.total if self.total else 0.0
        head = ", ".join(self.missing[:8])
        return f"found {self.found} of {self.total} words ({pct:.1f}%) in GloVe" + (
            f"; missing e.g. {head}" if head else ""
        )


def embedding_coverage(
    word_index: Mapping[str, int], vectors: GloveVectors | Mapping, num_words: int | None = None
) -> Coverage:
    """The coverage report of :func:`embedding_matrix`: found / total words, the missing ones by index."""
    if num_words is None:
        num_words = max(word_index.values(), default=0) + 1
    kept = sorted((i, w) for w, i in word_index.items() if 0 < i < num_words)
    missing = tuple(w for _, w in kept if w not in vectors)
    return Coverage(len(kept) - len(missing), len(kept), missing)
