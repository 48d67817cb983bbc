"""IMDB for chapter 6: raw aclImdb text + GloVe (6.1.3) and the pre-indexed ``keras.datasets.imdb`` (6.1-6.4).

Two LightningDataModules:

- :class:`ImdbDataModule` — the book's listings 6.8-6.12 and 6.17: read ``aclImdb/train`` (``neg`` then
  ``pos``, files sorted by name), fit a Keras :class:`~seqlight.text.Tokenizer` with ``max_words`` on all
  training texts, pad to ``maxlen``, shuffle with a *seeded* RandomState (the book's shuffle is unseeded),
  take ``training_samples`` for training and the next ``validation_samples`` for validation; the test set
  is ``aclImdb/test`` with the same tokenizer. With ``glove`` set, the GloVe embedding matrix is built as in
  the book and handed to the model through :attr:`ImdbDataModule.embedding_matrix`.
- :class:`KerasImdbDataModule` — ``keras.datasets.imdb.load_data(num_words, skip_top, maxlen, seed=113,
  start_char=1, oov_char=2, index_from=3)`` followed by ``pad_sequences(maxlen)`` and Keras's
  ``validation_split=0.2`` (the *last* 20 % of the shuffled training set). It reads the official
  ``imdb.npz`` (verified sha256) when present or downloadable; otherwise it builds the same kind of
  arrays from the raw aclImdb folders (see :func:`keras_imdb_from_acl`, which says how they differ).

``source``: ``"real"`` (files in ``data_dir`` or downloaded, else a clear error), ``"synthetic"`` (the
offline stand-in of :mod:`seqlight.data.imdb_synthetic`, in the same layout) or ``"auto"`` (real if present or
downloadable, else synthetic with a warning that says where to put the real files).

Bad input: a missing ``train``/``test`` ``pos``/``neg`` folder or one without ``.txt`` files raises
:class:`ImdbDataError` naming it; a review that is not UTF-8 raises naming the file and the byte offset
(``encoding_errors="replace"`` reads it with U+FFFD instead); empty reviews are kept (an all-padding row)
and counted in the log.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from lightning.pytorch import LightningDataModule
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, SequentialSampler, TensorDataset

from seqlight.data.arguments import check_choice, check_int, check_number
from seqlight.data.download import (
    DownloadError,
    extract_tar,
    extract_zip_member,
    fetch,
    file_digest,
    tar_with_top,
    zip_with_member,
)
from seqlight.data.imdb_synthetic import make_synthetic_acl_imdb, make_synthetic_glove
from seqlight.data.preprocessing import IndexedTextPreprocessing, TextPreprocessing
from seqlight.data.windows import RandomRowSampler, run_seed, shard_for_evaluation
from seqlight.errors import SeqlightError
from seqlight.files import cache_root, create_once, writable, writable_or_cache
from seqlight.home import resolve_home_path
from seqlight.text import (
    Tokenizer,
    embedding_coverage,
    embedding_matrix,
    load_glove,
    pad_sequences,
)
from seqlight.text.glove import GLOVE_6B_MD5, GLOVE_6B_URL

__all__ = [
    "ACL_IMDB_URL",
    "ACL_IMDB_MD5",
    "ACL_IMDB_SHA256",
    "KERAS_IMDB_URL",
    "KERAS_IMDB_SHA256",
    "ImdbDataError",
    "ImdbDataModule",
    "KerasImdbDataModule",
    "read_acl_imdb",
    "locate_acl_imdb",
    "keras_imdb_load_data",
    "keras_imdb_from_acl",
    "locate_glove",
]

log = logging.getLogger(__name__)

ACL_IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
# Digests of the official files, each pinned by several independent public loaders (found with a code
# search): aclImdb md5 by torchtext/paddle/pooch users, sha256 by TFDS-style loaders and Julia's MLDatasets;
# imdb.npz sha256 by keras.datasets.imdb itself. GloVe's URL and md5 live in seqlight.text.glove.
ACL_IMDB_MD5 = "7c2ac02c03563afcf9b574c7e56c153a"
ACL_IMDB_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
KERAS_IMDB_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb.npz"
KERAS_IMDB_SHA256 = "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"
# imdb.get_word_index()'s file: the word -> rank map behind imdb.npz, md5 as pinned by Keras's own get_file call
KERAS_IMDB_WORD_INDEX_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb_word_index.json"
KERAS_IMDB_WORD_INDEX_MD5 = "bfafd718b763782e994055a2d397834f"
ACL_TARBALLS = ("aclImdb_v1.tar.gz", "aclImdb_v1_labelled.tar.gz")
SYNTHETIC_DIR = "imdb_synthetic"


class ImdbDataError(SeqlightError, ValueError):
    """The IMDB files are missing, incomplete or unreadable; the message names the folder or file."""


# ---------------------------------------------------------------------------------------------------------
# files


def _is_acl_root(folder: Path) -> bool:
    return all((folder / s / c).is_dir() for s in ("train", "test") for c in ("pos", "neg"))


def _unpack(tarball: Path, extract_dir: Path) -> Path:
    """``extract_dir/aclImdb`` unpacked from ``tarball`` once, even when several processes ask at once."""

    def unpack() -> None:
        log.info("unpacking %s into %s", tarball, extract_dir)
        extract_tar(tarball, "aclImdb", extract_dir)

    return create_once(Path(extract_dir) / "aclImdb", unpack, done=_is_acl_root)


def locate_acl_imdb(data_dir: str | os.PathLike, extract_dir: str | os.PathLike | None = None) -> Path | None:
    """``aclImdb/`` in the official layout under ``data_dir``, unpacking a tarball found there if needed.

    Looks for ``data_dir/aclImdb/{train,test}/{pos,neg}``; then for ``aclImdb_v1.tar.gz`` (or the
    ``aclImdb_v1_labelled.tar.gz`` of the shared datasets) in ``data_dir`` or ``data_dir/aclImdb``, unpacked
    atomically into ``extract_dir`` (default: ``data_dir`` when writable, else ``$SEQLIGHT_CACHE/datasets``).
    Returns ``None`` when there is nothing to find. A tarball that is not a complete archive raises
    :class:`DownloadError` naming it.
    """
    data_dir = Path(data_dir)
    for root in (data_dir / "aclImdb", data_dir):
        if _is_acl_root(root):
            return root
    for folder in (data_dir, data_dir / "aclImdb"):
        for name in ACL_TARBALLS:
            tarball = folder / name
            if tarball.is_file():
                if extract_dir is None:
                    usable = writable(data_dir) and not (data_dir / "aclImdb").exists()
                    extract_dir = data_dir if usable else cache_root() / "datasets"
                return _unpack(tarball, Path(extract_dir))
    return None


def download_acl_imdb(data_dir: str | os.PathLike, timeout: float = 30.0) -> Path:
    """Download ``aclImdb_v1.tar.gz`` (sha256-verified, atomic) into ``data_dir`` and unpack it there."""
    data_dir = Path(data_dir)
    tarball = fetch(
        ACL_IMDB_URL, data_dir / "aclImdb_v1.tar.gz", f"sha256:{ACL_IMDB_SHA256}",
        timeout=timeout, validate=tar_with_top("aclImdb"),
    )  # fmt: skip
    return _unpack(tarball, data_dir)


def acl_imdb_files(root: str | os.PathLike, split: str) -> tuple[list[Path], list[Path]]:
    """The review files of ``root/<split>/neg`` and ``.../pos``, each sorted by name: the order of
    :func:`read_acl_imdb` and of the DataModules' test rows."""
    out = []
    for name in ("neg", "pos"):
        folder = Path(root) / split / name
        if not folder.is_dir():
            raise ImdbDataError(
                f"{folder} is missing: an aclImdb folder needs train/pos, train/neg, test/pos and test/neg "
                "(unpack the official aclImdb_v1.tar.gz there, or use source='synthetic')"
            )
        files = sorted(p for p in folder.iterdir() if p.suffix == ".txt")
        if not files:
            raise ImdbDataError(f"{folder} has no .txt reviews: the aclImdb folder is incomplete")
        out.append(files)
    return out[0], out[1]


def read_acl_imdb(
    root: str | os.PathLike, split: str = "train", encoding_errors: Literal["strict", "replace"] = "strict"
) -> tuple[list[str], np.ndarray]:
    """Texts and labels of ``root/<split>/{neg,pos}`` (label 0 then 1), each folder's ``.txt`` files sorted by name."""
    root = Path(root)
    texts: list[str] = []
    labels: list[int] = []
    empty = 0
    for label, files in enumerate(acl_imdb_files(root, split)):
        for path in files:
            raw = path.read_bytes()
            try:
                text = raw.decode("utf-8", errors=encoding_errors)
            except UnicodeDecodeError as e:
                raise ImdbDataError(
                    f"{path}: bytes that are not UTF-8 at byte {e.start} ({e.reason}); pass "
                    "encoding_errors='replace' to read them as U+FFFD"
                ) from None
            empty += not text.strip()
            texts.append(text)
        labels.extend([label] * len(files))
    if empty:
        log.warning("%s/%s: %d empty review(s) kept (they become all-padding rows)", root, split, empty)
    return texts, np.asarray(labels, dtype=np.int64)


def locate_glove(data_dir: str | os.PathLike, dim: int) -> Path | None:
    """``glove.6B.<dim>d.txt``, ``.txt.gz`` or ``glove.6B.zip`` in ``data_dir`` (or ``data_dir/glove``)."""
    for folder in (Path(data_dir), Path(data_dir) / "glove", Path(data_dir) / f"glove_6B_{dim}d"):
        for name in (f"glove.6B.{dim}d.txt", f"glove.6B.{dim}d.txt.gz", "glove.6B.zip"):
            if (folder / name).is_file():
                return folder / name
    return None


def download_glove(data_dir: str | os.PathLike, dim: int, timeout: float = 30.0) -> Path:
    """Download the official ``glove.6B.zip`` (822 MB, md5-verified, atomic) and extract ``glove.6B.<dim>d.txt``."""
    data_dir = Path(data_dir)
    member = f"glove.6B.{dim}d.txt"
    archive = fetch(
        GLOVE_6B_URL, data_dir / "glove.6B.zip", f"md5:{GLOVE_6B_MD5}",
        timeout=timeout, deadline=6 * 3600, validate=zip_with_member(member),  # 822 MB
    )  # fmt: skip
    return extract_zip_member(archive, member, data_dir / member)


def _offline(what: str, where: Path, err: Exception | None, hint: str) -> str:
    reason = f" and could not be downloaded ({err})" if err is not None else ""
    return (
        f"{what} is not in {where}{reason}.\n  - {hint}\n"
        "  - or use the offline stand-in in the same layout: --data.init_args.source synthetic "
        "(results then show that the code works, not the book's numbers)."
    )


# ---------------------------------------------------------------------------------------------------------
# keras.datasets.imdb


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
    Returns ``(x_train, y_train), (x_test, y_test)`` with lists of int lists and int64 label arrays.
    """
    if num_words is not None and num_words < 1:
        raise ValueError(f"num_words must be >= 1 or None, got {num_words}")
    x_train, x_test = list(x_train), list(x_test)
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
    xs = [list(map(int, x_train[i])) for i in p_train] + [list(map(int, x_test[i])) for i in p_test]
    labels = np.concatenate([y_train[p_train], y_test[p_test]])
    is_train = np.arange(len(xs)) < len(x_train)
    if start_char is not None:
        xs = [[start_char] + [w + index_from for w in x] for x in xs]
    elif index_from:
        xs = [[w + index_from for w in x] for x in xs]
    if maxlen:
        keep = np.array([len(x) < maxlen for x in xs], dtype=bool)
        xs = [x for x, k in zip(xs, keep) if k]
        labels, is_train = labels[keep], is_train[keep]
        if not xs:
            raise ValueError(f"After filtering for sequences shorter than maxlen={maxlen}, no sequence was kept.")
    if not num_words:
        num_words = max(max(x) for x in xs if x) if any(xs) else 1
    if oov_char is not None:
        xs = [[w if skip_top <= w < num_words else oov_char for w in x] for x in xs]
    else:
        xs = [[w for w in x if skip_top <= w < num_words] for x in xs]
    n = int(is_train.sum())
    return (xs[:n], labels[:n]), (xs[n:], labels[n:])


def keras_imdb_from_acl(root: str | os.PathLike, encoding_errors: str = "strict"):
    """Rank-indexed sequences like those in ``imdb.npz``, built from the raw aclImdb folders.

    Words are ranked by frequency in the 25,000 *training* reviews with the Keras ``Tokenizer`` defaults
    (rank 1 = most frequent), and every review becomes the list of its words' ranks. Keras's ``imdb.npz``
    was made by its own, unpublished preprocessing with ranks over the whole corpus, so the sequences are
    not the same: punctuation, ``<br />`` tags and apostrophes are handled differently, test-only words
    are dropped here, and the review order before the seeded shuffle is ``neg`` then ``pos`` by file name.
    Returns ``x_train, y_train, x_test, y_test, word_index``.
    """
    train_texts, y_train = read_acl_imdb(root, "train", encoding_errors)
    test_texts, y_test = read_acl_imdb(root, "test", encoding_errors)
    tok = Tokenizer()
    tok.fit_on_texts(train_texts)
    return tok.texts_to_sequences(train_texts), y_train, tok.texts_to_sequences(test_texts), y_test, tok.word_index


def _tensors(x: np.ndarray, y: np.ndarray) -> TensorDataset:
    return TensorDataset(
        torch.from_numpy(np.ascontiguousarray(x, dtype=np.int64)), torch.from_numpy(y.astype(np.float32))
    )


# ---------------------------------------------------------------------------------------------------------
# DataModules


class _ImdbBase(LightningDataModule):
    def __init__(self, data_dir, source, batch_size, synthetic_size, download, download_timeout, encoding_errors):
        super().__init__()
        check_choice("source", source, ("auto", "real", "synthetic"), ImdbDataError)
        check_int("batch_size", batch_size, 1, ImdbDataError)
        check_int("synthetic_size", synthetic_size, 1, ImdbDataError)
        check_number("download_timeout", download_timeout, ImdbDataError, 0.0)
        check_choice("encoding_errors", encoding_errors, ("strict", "replace"), ImdbDataError)
        self.data_dir = resolve_home_path(data_dir)  # relative: under $SEQLIGHT_HOME when set
        self.source = source
        self.batch_size = batch_size
        self.synthetic_size = synthetic_size
        self.download = download
        self.download_timeout = download_timeout
        self.encoding_errors = encoding_errors
        self.source_description: str | None = None
        self.is_synthetic = False
        self.train_set = self.val_set = self.test_set = None
        # what the model keeps to index raw text as the training data was (learned in setup())
        self.preprocessing: TextPreprocessing | IndexedTextPreprocessing | None = None

    def _synthetic_root(self) -> Path:
        base = writable_or_cache(self.data_dir / SYNTHETIC_DIR, SYNTHETIC_DIR)
        self.is_synthetic = True
        root = make_synthetic_acl_imdb(base, n_per_class=self.synthetic_size)
        self.source_description = f"SYNTHETIC offline stand-in {root} (not the real IMDB reviews)"
        return root

    def _acl_root(self) -> Path:
        """The aclImdb folder to read: found, unpacked, downloaded, or the synthetic one."""
        if self.source != "synthetic":
            err: Exception | None = None
            for folder in dict.fromkeys((self.data_dir, self.home)):
                try:
                    found = locate_acl_imdb(folder)
                except DownloadError as e:  # a tarball that is not a complete archive: download a good one below
                    found, err = None, e
                if found is not None:
                    self.source_description = f"real aclImdb {found}"
                    return found
            if self.download:
                try:
                    found = download_acl_imdb(self.home, self.download_timeout)
                    self.source_description = f"real aclImdb {found} (downloaded)"
                    return found
                except DownloadError as e:
                    err = e
            msg = _offline(
                "The Large Movie Review Dataset (aclImdb/ or aclImdb_v1.tar.gz)",
                self.data_dir,
                err,
                f"Download {ACL_IMDB_URL} and unpack it (or just put the tarball) in {self.data_dir}, or pass "
                "--data.init_args.data_dir",
            )
            if self.source == "real":
                raise ImdbDataError(msg)
            warnings.warn(msg + "\nsource='auto': using the synthetic stand-in now.", stacklevel=3)
        return self._synthetic_root()

    @property
    def home(self) -> Path:
        """Where downloads go: ``data_dir``, or the cache when ``data_dir`` is read-only (nothing is written
        before it is needed: files already in ``data_dir`` are read where they are)."""
        return writable_or_cache(self.data_dir, "datasets")

    def _loader(self, ds, shuffle: bool) -> DataLoader:
        if ds is None:
            raise RuntimeError("call setup() first")
        # The training order is a permutation drawn from (run seed, epoch) through set_epoch, not from the
        # global generator at the moment Lightning creates the iterator: a resumed run draws the same orders.
        # Evaluation in order; under DDP each rank takes every W-th review, none twice (no padding).
        if shuffle:
            sampler = RandomRowSampler(0, len(ds), None, replacement=False, seed=run_seed())
        else:
            sampler = shard_for_evaluation(SequentialSampler(ds), self.trainer)
        return DataLoader(ds, batch_size=self.batch_size, sampler=sampler)

    def train_dataloader(self) -> DataLoader:
        self.setup("fit")
        return self._loader(self.train_set, True)

    def val_dataloader(self) -> DataLoader:
        self.setup("fit")
        return self._loader(self.val_set, False)

    def test_dataloader(self) -> DataLoader:
        self.setup("test")
        return self._loader(self.test_set, False)

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()

    def predict_items(self) -> np.ndarray:
        """The test-set rows :meth:`predict_dataloader` yields, in order."""
        return np.arange(len(self.test_set))

    def review_ids(self, rows: np.ndarray) -> list[str]:
        """How the prediction CSV names test review ``rows``: their position in the test set."""
        return [f"test[{int(r)}]" for r in rows]

    def prediction_table(self, rows: np.ndarray, predictions: np.ndarray) -> pd.DataFrame:
        """One line per predicted test review (``rows`` of the predict set): id, probability, labels."""
        assert self.test_set is not None
        labels = self.test_set.tensors[1].numpy()[rows].astype(np.int64)
        probs = np.asarray(predictions, dtype=np.float64)
        return pd.DataFrame(
            {
                "review": self.review_ids(rows),
                "probability": probs,
                "predicted": (probs > 0.5).astype(np.int64),
                "true": labels,
            }  # fmt: skip
        )


class ImdbDataModule(_ImdbBase):
    """Raw aclImdb reviews, a Keras Tokenizer and optional GloVe vectors (book 6.1.3, listings 6.8-6.12, 6.17).

    Args:
        data_dir: where ``aclImdb/`` (or its tarball), GloVe and downloads are (default ``datasets``).
        source: ``"auto"``, ``"real"`` or ``"synthetic"`` (see the module doc).
        maxlen: words kept per review (the *last* ``maxlen``: Keras pre-truncation), book 100.
        max_words: the Tokenizer's ``num_words`` (indices ``< max_words``), book 10,000.
        training_samples: reviews used for training, book 200.
        validation_samples: the reviews after them used for validation, book 10,000 (clipped, with a
            warning, to what is left, e.g. on the small synthetic set).
        seed: the seed of the shuffle before the split (the book's ``np.random.shuffle`` is unseeded).
        glove: ``None`` (no pretrained vectors), a path to ``glove.6B.<d>d.txt``/``.txt.gz``/``glove.6B.zip``,
            or ``"auto"`` (look in ``data_dir``, download ``glove.6B.zip`` if allowed; the synthetic source
            uses its own small GloVe-format file).
        embedding_dim: the GloVe dimension (book 100); linked into the model.
        batch_size: book 32.
        synthetic_size: synthetic reviews per class and split.
        download: try the official downloads when files are missing.
        encoding_errors: ``"strict"`` (error naming the file) or ``"replace"`` for reviews that are not UTF-8.
    """

    def __init__(
        self,
        data_dir: str = "datasets",
        source: Literal["auto", "real", "synthetic"] = "auto",
        maxlen: int = 100,
        max_words: int = 10000,
        training_samples: int = 200,
        validation_samples: int = 10000,
        seed: int = 1337,
        glove: str | None = None,
        embedding_dim: int = 100,
        batch_size: int = 32,
        synthetic_size: int = 500,
        download: bool = True,
        download_timeout: float = 30.0,
        encoding_errors: Literal["strict", "replace"] = "strict",
    ):
        super().__init__(data_dir, source, batch_size, synthetic_size, download, download_timeout, encoding_errors)
        check_int("max_words (the Tokenizer's num_words)", max_words, 1, ImdbDataError)
        for name, value in (("maxlen", maxlen), ("training_samples", training_samples),
                            ("validation_samples", validation_samples), ("embedding_dim", embedding_dim)):  # fmt: skip
            check_int(name, value, 1, ImdbDataError)
        self.save_hyperparameters()
        self._maxlen = maxlen
        self.max_words = max_words
        self.training_samples = training_samples
        self.validation_samples = validation_samples
        self.seed = seed
        self.glove = glove
        self._embedding_dim = embedding_dim
        self.tokenizer: Tokenizer | None = None
        self.embedding_matrix: np.ndarray | None = None
        self.coverage = None
        self._root: Path | None = None

    # linked into the model by the CLI
    @property
    def num_words(self) -> int:
        return self.max_words

    @property
    def maxlen(self) -> int:
        return self._maxlen

    @property
    def embedding_dim(self) -> int:
        return self._embedding_dim

    def prepare_data(self) -> None:
        if self._root is None:
            self._root = self._acl_root()

    def review_ids(self, rows: np.ndarray) -> list[str]:
        """The test reviews' file paths (the test set is in :func:`acl_imdb_files` order)."""
        neg, pos = acl_imdb_files(self._root, "test")
        files = neg + pos
        return [str(files[int(r)]) for r in rows]

    def _glove_path(self) -> Path | None:
        if self.glove is None:
            return None
        if self.glove != "auto":
            path = Path(self.glove)
            if not path.is_file():
                raise ImdbDataError(f"GloVe file not found: {path}")
            return path
        if self.is_synthetic:
            folder = self._root.parent
            return make_synthetic_glove(folder, dim=self.embedding_dim)
        for folder in dict.fromkeys((self.data_dir, self.home)):
            found = locate_glove(folder, self.embedding_dim)
            if found is not None:
                return found
        err = None
        if self.download:
            try:
                return download_glove(self.home, self.embedding_dim, self.download_timeout)
            except DownloadError as e:
                err = e
        raise ImdbDataError(
            _offline(
                f"glove.6B.{self.embedding_dim}d.txt (or .txt.gz, or glove.6B.zip)",
                self.data_dir,
                err,
                f"Download {GLOVE_6B_URL} into {self.data_dir}, or pass --data.init_args.glove PATH "
                "(with --data.init_args.embedding_dim set to its dimension)",
            )
        )

    def setup(self, stage: str | None = None) -> None:
        self.prepare_data()
        if self.tokenizer is None:
            texts, labels = read_acl_imdb(self._root, "train", self.encoding_errors)
            self.tokenizer = Tokenizer(num_words=self.max_words)
            self.tokenizer.fit_on_texts(texts)
            rank_zero_info(f"Found {len(self.tokenizer.word_index)} unique tokens ({self.source_description}).")
            data = pad_sequences(self.tokenizer.texts_to_sequences(texts), maxlen=self.maxlen)
            indices = np.arange(len(data))
            np.random.RandomState(self.seed).shuffle(indices)
            n_train = self.training_samples
            if n_train >= len(data):
                raise ImdbDataError(
                    f"training_samples={n_train} leaves nothing to validate on: {self._root} has {len(data)} reviews"
                )
            n_val = min(self.validation_samples, len(data) - n_train)
            if n_val < self.validation_samples:
                warnings.warn(
                    f"validation_samples={self.validation_samples} but only {len(data) - n_train} reviews are left "
                    f"after {n_train} training samples ({self.source_description}); validating on {n_val}",
                    stacklevel=2,
                )
            tr, va = indices[:n_train], indices[n_train : n_train + n_val]
            self.train_set = _tensors(data[tr], labels[tr])
            self.val_set = _tensors(data[va], labels[va])
            self.preprocessing = TextPreprocessing(self.tokenizer.to_json(), maxlen=self.maxlen)
            path = self._glove_path()
            if path is not None:
                vectors = load_glove(path, dim=self.embedding_dim)
                self.embedding_matrix = embedding_matrix(self.tokenizer.word_index, vectors, self.max_words)
                self.coverage = embedding_coverage(self.tokenizer.word_index, vectors, self.max_words)
                rank_zero_info(f"GloVe {path}: {len(vectors)} word vectors, {self.coverage}")
        if stage in (None, "test", "predict") and self.test_set is None:
            texts, labels = read_acl_imdb(self._root, "test", self.encoding_errors)
            data = pad_sequences(self.tokenizer.texts_to_sequences(texts), maxlen=self.maxlen)
            self.test_set = _tensors(data, labels)


class KerasImdbDataModule(_ImdbBase):
    """``keras.datasets.imdb.load_data`` + ``pad_sequences`` + ``validation_split`` (book 6.1.2, 6.2, 6.3, 6.4).

    Args:
        data_dir: where ``imdb.npz`` / ``aclImdb`` are or get downloaded (default ``datasets``).
        source: ``"auto"``, ``"real"`` or ``"synthetic"``.
        format: ``"auto"`` (``imdb.npz`` if present or downloadable, else built from raw aclImdb),
            ``"npz"`` or ``"aclImdb"`` (see :func:`keras_imdb_from_acl` for how the two differ).
        num_words, skip_top, seed, start_char, oov_char, index_from: as ``load_data`` (book: num_words 10,000).
        load_maxlen: ``load_data``'s ``maxlen`` (drop longer reviews); the book leaves it ``None``.
        maxlen: ``pad_sequences`` length (book: 20 in 6.1, 500 in 6.2-6.4); linked into the model.
        reverse: reverse every review *before* padding, as the book's 6.3 listing does (``x[::-1]``).
        validation_split: the last fraction of the (shuffled) training set validates, as Keras's ``fit``.
        shuffle: ``"keras2.0"`` (the book's Keras 2.0.8 load_data shuffle) or ``"keras2.2"``.
        batch_size: book 32 (6.1) or 128 (6.2-6.4).
    """

    def __init__(
        self,
        data_dir: str = "datasets",
        source: Literal["auto", "real", "synthetic"] = "auto",
        format: Literal["auto", "npz", "aclImdb"] = "auto",
        num_words: int | None = 10000,
        skip_top: int = 0,
        load_maxlen: int | None = None,
        seed: int = 113,
        start_char: int | None = 1,
        oov_char: int | None = 2,
        index_from: int = 3,
        maxlen: int = 500,
        reverse: bool = False,
        validation_split: float = 0.2,
        padding: Literal["pre", "post"] = "pre",
        truncating: Literal["pre", "post"] = "pre",
        shuffle: Literal["keras2.0", "keras2.2"] = "keras2.0",
        batch_size: int = 32,
        synthetic_size: int = 500,
        download: bool = True,
        download_timeout: float = 30.0,
        encoding_errors: Literal["strict", "replace"] = "strict",
    ):
        super().__init__(data_dir, source, batch_size, synthetic_size, download, download_timeout, encoding_errors)
        check_int("num_words", num_words, 1, ImdbDataError, none_ok=True)
        check_int("maxlen", maxlen, 1, ImdbDataError)
        check_int("load_maxlen", load_maxlen, 1, ImdbDataError, none_ok=True)
        check_int("skip_top", skip_top, 0, ImdbDataError)
        check_int("index_from", index_from, 0, ImdbDataError)
        check_int("start_char", start_char, 0, ImdbDataError, none_ok=True)
        check_int("oov_char", oov_char, 0, ImdbDataError, none_ok=True)
        check_number("validation_split", validation_split, ImdbDataError, 0.0, 1.0)
        check_choice("format", format, ("auto", "npz", "aclImdb"), ImdbDataError)
        check_choice("padding", padding, ("pre", "post"), ImdbDataError)
        check_choice("truncating", truncating, ("pre", "post"), ImdbDataError)
        check_choice("shuffle", shuffle, ("keras2.0", "keras2.2"), ImdbDataError)
        self.save_hyperparameters()
        self.format = format
        self._num_words = num_words
        self._maxlen = maxlen
        self.load_kwargs = dict(
            num_words=num_words, skip_top=skip_top, maxlen=load_maxlen, seed=seed, start_char=start_char,
            oov_char=oov_char, index_from=index_from, shuffle=shuffle,
        )  # fmt: skip
        self.reverse = reverse
        self.validation_split = validation_split
        self.padding = padding
        self.truncating = truncating
        self.raw_word_index: dict[str, int] | None = None
        self._arrays = None

    @property
    def num_words(self) -> int | None:
        return self._num_words

    @property
    def maxlen(self) -> int:
        return self._maxlen

    def _npz(self) -> Path | None:
        """The official ``imdb.npz``: in ``data_dir`` (or :attr:`home`), else downloaded when allowed."""
        candidates = [self.data_dir / "imdb.npz", self.home / "imdb.npz"]
        dest = next((p for p in candidates if p.is_file()), candidates[1])
        if not self.download:
            if not dest.is_file():
                return None
            if file_digest(dest) != KERAS_IMDB_SHA256:
                raise ImdbDataError(
                    f"{dest} is not the official imdb.npz (its sha256 is not {KERAS_IMDB_SHA256}): delete it, or "
                    "pass --data.init_args.download true to replace it with a fresh download"
                )
            return dest
        try:  # a corrupt copy at dest is downloaded again
            return fetch(KERAS_IMDB_URL, dest, f"sha256:{KERAS_IMDB_SHA256}", timeout=self.download_timeout)
        except DownloadError as e:
            log.info("imdb.npz not available: %s", e)
            return None

    def _npz_word_index(self) -> dict[str, int] | None:
        """``imdb.get_word_index()``: the ranks behind ``imdb.npz``, needed to index new reviews the same way.
        In ``data_dir`` (or :attr:`home`), else downloaded (md5-verified) when allowed; ``None`` otherwise."""
        candidates = [self.data_dir / "imdb_word_index.json", self.home / "imdb_word_index.json"]
        dest = next((p for p in candidates if p.is_file()), candidates[1])
        try:
            if self.download:
                dest = fetch(
                    KERAS_IMDB_WORD_INDEX_URL, dest, f"md5:{KERAS_IMDB_WORD_INDEX_MD5}", timeout=self.download_timeout
                )
            if dest.is_file():
                return json.loads(dest.read_text(encoding="utf-8"))
        except DownloadError as e:
            log.info("imdb_word_index.json not available: %s", e)
        warnings.warn(
            f"imdb_word_index.json is not in {self.data_dir} and could not be downloaded: a model trained on "
            "imdb.npz will not be able to classify raw text (Classifier.classify)",
            stacklevel=3,
        )
        return None

    def _raw_sequences(self):
        """``(x_train, y_train, x_test, y_test)`` as in ``imdb.npz`` before load_data's processing."""
        if self.source != "synthetic" and self.format in ("auto", "npz"):
            npz = self._npz()
            if npz is not None:
                self.source_description = f"real Keras imdb.npz {npz}"
                self.raw_word_index = self._npz_word_index()
                with np.load(npz, allow_pickle=True) as f:  # sha256-verified official file
                    return f["x_train"], f["y_train"], f["x_test"], f["y_test"]
            if self.format == "npz":
                msg = _offline("imdb.npz", self.data_dir, None, f"Download {KERAS_IMDB_URL} into {self.data_dir}")
                if self.source == "real":
                    raise ImdbDataError(msg)
                warnings.warn(msg + "\nsource='auto': using the synthetic stand-in now.", stacklevel=3)
                self.source = "synthetic"
        root = self._acl_root()
        x_train, y_train, x_test, y_test, self.raw_word_index = keras_imdb_from_acl(root, self.encoding_errors)
        self.source_description += " (indexed by seqlight's Tokenizer, not Keras's imdb.npz)"
        return x_train, y_train, x_test, y_test

    def prepare_data(self) -> None:
        if self._arrays is None:
            x_train, y_train, x_test, y_test = self._raw_sequences()
            self._arrays = keras_imdb_load_data(x_train, y_train, x_test, y_test, **self.load_kwargs)

    def _pad(self, xs) -> np.ndarray:
        if self.reverse:
            xs = [x[::-1] for x in xs]
        return pad_sequences(xs, maxlen=self.maxlen, padding=self.padding, truncating=self.truncating)

    def setup(self, stage: str | None = None) -> None:
        self.prepare_data()
        (x_train, y_train), (x_test, y_test) = self._arrays
        if self.train_set is None:
            x = self._pad(x_train)
            split_at = int(len(x) * (1.0 - self.validation_split))
            self.train_set = _tensors(x[:split_at], y_train[:split_at])
            self.val_set = _tensors(x[split_at:], y_train[split_at:])
            if self.raw_word_index is not None:
                kw = self.load_kwargs
                self.preprocessing = IndexedTextPreprocessing.from_ranks(
                    self.raw_word_index, maxlen=self.maxlen, num_words=kw["num_words"], skip_top=kw["skip_top"],
                    start_char=kw["start_char"], oov_char=kw["oov_char"], index_from=kw["index_from"],
                    padding=self.padding, truncating=self.truncating, reverse=self.reverse,
                )  # fmt: skip
            log.info("%d training, %d validation reviews (%s)", split_at, len(x) - split_at, self.source_description)
        if stage in (None, "test", "predict") and self.test_set is None:
            self.test_set = _tensors(self._pad(x_test), y_test)
