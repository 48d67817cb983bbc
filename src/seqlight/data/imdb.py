"""IMDB for chapter 6: raw aclImdb text + GloVe (6.1.3) and the pre-indexed ``keras.datasets.imdb`` (6.1-6.4).

Two LightningDataModules:

- :class:`ImdbDataModule` — the book's listings 6.8-6.12 and 6.17: read ``aclImdb/train`` (``neg`` then
  ``pos``, files sorted by name), fit a Keras :class:`~seqlight.text.Tokenizer` with ``num_words`` on all
  training texts, pad to ``maxlen``, shuffle with a *seeded* RandomState (the book's shuffle is unseeded),
  take ``training_samples`` for training and the next ``validation_samples`` for validation; the test set
  is ``aclImdb/test`` with the same tokenizer. With ``glove`` set, the GloVe embedding matrix is built as in
  the book and handed to the model through :attr:`ImdbDataModule.embedding_matrix`.
- :class:`KerasImdbDataModule` — ``keras.datasets.imdb.load_data(num_words, skip_top, maxlen, seed=113,
  start_char=1, oov_char=2, index_from=3)`` followed by ``pad_sequences(maxlen)`` and Keras's
  ``validation_split=0.2`` (the *last* 20 % of the shuffled training set). It reads the official
  ``imdb.npz`` (verified sha256) when present or downloadable; otherwise it builds the same kind of
  arrays from the raw aclImdb folders (see :func:`keras_imdb_from_acl`, which says how they differ).

Both read the tokenized corpus through the on-disk cache of :mod:`seqlight.data.imdb_cache` (``cache=True``):
the first start tokenizes, later ones load arrays (about 1 s). The jobs behind them live in their own
modules, re-exported here: :mod:`~seqlight.data.imdb_files` (finding, unpacking, reading),
:mod:`~seqlight.data.imdb_download` (the official downloads), :mod:`~seqlight.data.imdb_keras`
(``load_data`` on compact arrays).

``source``: ``"real"`` (files in ``data_dir`` or downloaded, else a clear error), ``"synthetic"`` (the
offline stand-in of :mod:`seqlight.data.imdb_synthetic`, in the same layout) or ``"auto"`` (real if present or
downloadable, else synthetic with a warning that says where to put the real files). The argument keeps what
was passed; :attr:`~_ImdbBase.data_source` says what was used (``"real"`` or ``"synthetic"``).
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from lightning.pytorch import LightningDataModule
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader, SequentialSampler, TensorDataset

from seqlight.data import imdb_download
from seqlight.data.arguments import check_choice, check_int, check_number
from seqlight.data.download import DownloadError
from seqlight.data.imdb_cache import TokenizedCorpus, cached_corpus, corpus_key, tokenizer_settings
from seqlight.data.imdb_download import (
    ACL_IMDB_MD5,
    ACL_IMDB_SHA256,
    ACL_IMDB_URL,
    KERAS_IMDB_SHA256,
    KERAS_IMDB_URL,
    KERAS_IMDB_WORD_INDEX_MD5,
    KERAS_IMDB_WORD_INDEX_URL,
    download_acl_imdb,
    download_glove,
    find_keras_imdb_npz,
    find_keras_imdb_word_index,
    offline_message,
)
from seqlight.data.imdb_files import (
    ACL_TARBALLS,
    ImdbDataError,
    acl_imdb_files,
    acl_imdb_signature,
    locate_acl_imdb,
    locate_glove,
    read_acl_imdb,
)
from seqlight.data.imdb_keras import Ragged, keras_imdb_from_acl, keras_imdb_load_data, load_data_ragged, tokenize_acl
from seqlight.data.imdb_synthetic import make_synthetic_acl_imdb, make_synthetic_glove
from seqlight.data.preprocessing import IndexedTextPreprocessing, TextPreprocessing
from seqlight.data.windows import RandomRowSampler, run_seed, shard_for_evaluation
from seqlight.files import writable_or_cache
from seqlight.home import resolve_home_path
from seqlight.text import Tokenizer, embedding_coverage, embedding_matrix, load_glove
from seqlight.text.glove import GLOVE_6B_URL

__all__ = [
    "ACL_IMDB_URL",
    "ACL_IMDB_MD5",
    "ACL_IMDB_SHA256",
    "ACL_TARBALLS",
    "KERAS_IMDB_URL",
    "KERAS_IMDB_SHA256",
    "KERAS_IMDB_WORD_INDEX_URL",
    "KERAS_IMDB_WORD_INDEX_MD5",
    "ImdbDataError",
    "ImdbDataModule",
    "KerasImdbDataModule",
    "acl_imdb_files",
    "download_acl_imdb",
    "download_glove",
    "read_acl_imdb",
    "locate_acl_imdb",
    "keras_imdb_load_data",
    "keras_imdb_from_acl",
    "locate_glove",
]

log = logging.getLogger(__name__)

SYNTHETIC_DIR = "imdb_synthetic"


def _tensors(x: np.ndarray, y: np.ndarray) -> TensorDataset:
    return TensorDataset(
        torch.from_numpy(np.ascontiguousarray(x, dtype=np.int64)), torch.from_numpy(y.astype(np.float32))
    )


class _ImdbBase(LightningDataModule):
    def __init__(
        self, data_dir, source, batch_size, synthetic_size, download, download_timeout, encoding_errors, cache
    ):
        super().__init__()
        check_choice("source", source, ("auto", "real", "synthetic"), ImdbDataError)
        check_int("batch_size", batch_size, 1, ImdbDataError)
        check_int("synthetic_size", synthetic_size, 1, ImdbDataError)
        check_number("download_timeout", download_timeout, ImdbDataError, 0.0)
        check_choice("encoding_errors", encoding_errors, ("strict", "replace"), ImdbDataError)
        if not isinstance(cache, bool):
            raise ImdbDataError(f"cache must be true or false, got {cache!r}")
        self.data_dir = resolve_home_path(data_dir)  # relative: under $SEQLIGHT_HOME when set
        self.source = source  # as passed (a hyperparameter); what was used is data_source
        self.batch_size = batch_size
        self.synthetic_size = synthetic_size
        self.download = download
        self.download_timeout = download_timeout
        self.encoding_errors = encoding_errors
        self.cache = cache
        self.source_description: str | None = None
        self.data_source: Literal["real", "synthetic"] | None = None  # known after prepare_data
        self.cache_hit: bool | None = None  # whether the tokenized corpus came from the cache
        self.train_set = self.val_set = self.test_set = None
        # what the model keeps to index raw text as the training data was (learned in setup())
        self.preprocessing: TextPreprocessing | IndexedTextPreprocessing | None = None

    @property
    def is_synthetic(self) -> bool:
        return self.data_source == "synthetic"

    def _synthetic_root(self) -> Path:
        base = writable_or_cache(self.data_dir / SYNTHETIC_DIR, SYNTHETIC_DIR)
        self.data_source = "synthetic"
        root = make_synthetic_acl_imdb(base, n_per_class=self.synthetic_size)
        self.source_description = f"SYNTHETIC offline stand-in {root} (not the real IMDB reviews)"
        return root

    def _acl_root(self, synthetic: bool = False) -> Path:
        """The aclImdb folder to read: found, unpacked, downloaded, or the synthetic one."""
        if self.source != "synthetic" and not synthetic:
            err: Exception | None = None
            for folder in dict.fromkeys((self.data_dir, self.home)):
                try:
                    found = locate_acl_imdb(folder)
                except DownloadError as e:  # a tarball that is not a complete archive: download a good one below
                    found, err = None, e
                if found is not None:
                    self.source_description = f"real aclImdb {found}"
                    self.data_source = "real"
                    return found
            if self.download:
                try:
                    found = download_acl_imdb(self.home, self.download_timeout)
                    self.source_description = f"real aclImdb {found} (downloaded)"
                    self.data_source = "real"
                    return found
                except DownloadError as e:
                    err = e
            msg = offline_message(
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

    def _acl_corpus(self, root: Path) -> TokenizedCorpus:
        """The tokenized aclImdb at ``root`` (both splits, ``Tokenizer()`` with all words), cached on disk."""
        identity = {"kind": "aclImdb", "reviews": acl_imdb_signature(root)}
        settings = {"encoding_errors": self.encoding_errors, "tokenizer": tokenizer_settings(Tokenizer())}

        def build() -> TokenizedCorpus:
            log.info("tokenizing %s", root)
            tok, arrays = tokenize_acl(root, self.encoding_errors)
            return TokenizedCorpus.from_tokenizer(tok, arrays)

        corpus, self.cache_hit = cached_corpus(corpus_key(identity, settings), build, cache=self.cache)
        return corpus

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
        num_words: the Tokenizer's ``num_words`` (indices ``< num_words``), book ``max_words = 10000``.
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
        download_timeout: seconds to wait for a download server.
        encoding_errors: ``"strict"`` (error naming the file) or ``"replace"`` for reviews that are not UTF-8.
        cache: read and write the tokenized corpus in the on-disk cache (:mod:`seqlight.data.imdb_cache`).
        max_words: the old name of ``num_words`` (the book's variable), still accepted with a
            ``FutureWarning``, so old configs and checkpoints load.
    """

    def __init__(
        self,
        data_dir: str = "datasets",
        source: Literal["auto", "real", "synthetic"] = "auto",
        maxlen: int = 100,
        num_words: int = 10000,
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
        cache: bool = True,
        max_words: int | None = None,
    ):
        super().__init__(
            data_dir, source, batch_size, synthetic_size, download, download_timeout, encoding_errors, cache
        )
        if max_words is not None:
            if num_words not in (10000, max_words):
                raise ImdbDataError(
                    f"num_words={num_words} and max_words={max_words} are the same setting (max_words is its old "
                    "name): pass only num_words"
                )
            warnings.warn(
                "ImdbDataModule(max_words=...) is deprecated: it is now num_words, as in Keras's "
                f"Tokenizer(num_words=) (use --data.init_args.num_words {max_words}, or num_words: {max_words} "
                "in the config)",
                FutureWarning,
                stacklevel=2,
            )
            num_words = max_words
        check_int("num_words (the Tokenizer's num_words)", num_words, 1, ImdbDataError)
        for name, value in (("maxlen", maxlen), ("training_samples", training_samples),
                            ("validation_samples", validation_samples), ("embedding_dim", embedding_dim)):  # fmt: skip
            check_int(name, value, 1, ImdbDataError)
        self.save_hyperparameters(ignore=["max_words"])
        # LightningCLI records the configured arguments, not these locals: the value in use goes in under its
        # one name (the model's linked num_words must equal it, or Lightning refuses to log them together)
        for saved in (self.hparams, self._hparams_initial):
            saved["num_words"] = num_words
        self._maxlen = maxlen
        self._num_words = num_words
        self.training_samples = training_samples
        self.validation_samples = validation_samples
        self.seed = seed
        self.glove = glove
        self._embedding_dim = embedding_dim
        self._tokenizer: Tokenizer | None = None
        self.embedding_matrix: np.ndarray | None = None
        self.coverage = None
        self._root: Path | None = None
        self._test_sequences: Ragged | None = None
        self._test_labels: np.ndarray | None = None

    # linked into the model by the CLI
    @property
    def num_words(self) -> int:
        return self._num_words

    @property
    def max_words(self) -> int:
        """The old name of :attr:`num_words`."""
        warnings.warn("ImdbDataModule.max_words is deprecated: use num_words", FutureWarning, stacklevel=2)
        return self._num_words

    @property
    def maxlen(self) -> int:
        return self._maxlen

    @property
    def tokenizer(self) -> Tokenizer | None:
        """The Tokenizer fitted on the training reviews (after ``setup``), built from :attr:`preprocessing`'s
        JSON when first asked for (a warm start needs only the word index)."""
        if self._tokenizer is None and self.preprocessing is not None:
            self._tokenizer = self.preprocessing.tokenizer
        return self._tokenizer

    @tokenizer.setter
    def tokenizer(self, value: Tokenizer | None) -> None:
        self._tokenizer = value

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
            offline_message(
                f"glove.6B.{self.embedding_dim}d.txt (or .txt.gz, or glove.6B.zip)",
                self.data_dir,
                err,
                f"Download {GLOVE_6B_URL} into {self.data_dir}, or pass --data.init_args.glove PATH "
                "(with --data.init_args.embedding_dim set to its dimension)",
            )
        )

    def _padded(self, seqs: Ragged) -> np.ndarray:
        """``pad_sequences(tokenizer.texts_to_sequences(texts), maxlen)``: the corpus keeps all words, the
        Tokenizer's ``num_words`` drops indices ``>= num_words``."""
        return seqs.keep_values(seqs.values < self.num_words).pad(self.maxlen)

    def setup(self, stage: str | None = None) -> None:
        self.prepare_data()
        if self.train_set is None:
            corpus = self._acl_corpus(self._root)
            word_index = corpus.word_index()
            self.preprocessing = TextPreprocessing(corpus.tokenizer_json_for(self.num_words), maxlen=self.maxlen)
            self._test_sequences, self._test_labels = corpus.x_test, corpus.y_test
            rank_zero_info(f"Found {len(word_index)} unique tokens ({self.source_description}).")
            data, labels = self._padded(corpus.x_train), corpus.y_train
            del corpus
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
            path = self._glove_path()
            if path is not None:
                vectors = load_glove(path, dim=self.embedding_dim)
                self.embedding_matrix = embedding_matrix(word_index, vectors, self.num_words)
                self.coverage = embedding_coverage(word_index, vectors, self.num_words)
                rank_zero_info(f"GloVe {path}: {len(vectors)} word vectors, {self.coverage}")
        if stage in (None, "test", "predict") and self.test_set is None:
            self.test_set = _tensors(self._padded(self._test_sequences), self._test_labels)


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
        cache: read and write the tokenized corpus in the on-disk cache (:mod:`seqlight.data.imdb_cache`).
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
        cache: bool = True,
    ):
        super().__init__(
            data_dir, source, batch_size, synthetic_size, download, download_timeout, encoding_errors, cache
        )
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
        self._word_index_json: str | None = None
        self._raw_word_index: dict[str, int] | None = None
        self._arrays: tuple[tuple[Ragged, np.ndarray], tuple[Ragged, np.ndarray]] | None = None

    @property
    def num_words(self) -> int | None:
        return self._num_words

    @property
    def maxlen(self) -> int:
        return self._maxlen

    @property
    def raw_word_index(self) -> dict[str, int] | None:
        """word -> rank behind the sequences (``imdb.get_word_index()``, or our Tokenizer's), if known."""
        if self._raw_word_index is None and self._word_index_json:
            self._raw_word_index = json.loads(self._word_index_json)
        return self._raw_word_index

    def _npz_corpus(self, npz: Path) -> TokenizedCorpus:
        """``imdb.npz`` as arrays, cached (unpickling its 50,000 lists costs seconds and hundreds of MB)."""

        def build() -> TokenizedCorpus:
            with np.load(npz, allow_pickle=True) as f:  # sha256-verified official file
                arrays = {"x_train": Ragged.from_lists(f["x_train"]), "y_train": f["y_train"].astype(np.int64)}
                arrays.update(x_test=Ragged.from_lists(f["x_test"]), y_test=f["y_test"].astype(np.int64))
            return TokenizedCorpus(**arrays)

        # find_keras_imdb_npz only returns a file with the pinned sha256 (read here, not at import: tests pin others)
        key = corpus_key({"kind": "imdb.npz", "sha256": imdb_download.KERAS_IMDB_SHA256}, {})
        corpus, self.cache_hit = cached_corpus(key, build, cache=self.cache)
        return corpus

    def _raw_corpus(self) -> TokenizedCorpus:
        """The sequences as in ``imdb.npz`` before load_data's processing, and their word ranks."""
        synthetic = False
        if self.source != "synthetic" and self.format in ("auto", "npz"):
            npz = find_keras_imdb_npz(self.data_dir, self.home, self.download, self.download_timeout)
            if npz is not None:
                self.source_description = f"real Keras imdb.npz {npz}"
                self.data_source = "real"
                corpus = self._npz_corpus(npz)
                ranks = find_keras_imdb_word_index(self.data_dir, self.home, self.download, self.download_timeout)
                if ranks is not None:
                    corpus.word_index_json = json.dumps(ranks, ensure_ascii=False, separators=(",", ":"))
                return corpus
            if self.format == "npz":
                msg = offline_message(
                    "imdb.npz", self.data_dir, None, f"Download {KERAS_IMDB_URL} into {self.data_dir}"
                )
                if self.source == "real":
                    raise ImdbDataError(msg)
                warnings.warn(msg + "\nsource='auto': using the synthetic stand-in now.", stacklevel=3)
                synthetic = True
        corpus = self._acl_corpus(self._acl_root(synthetic=synthetic))
        self.source_description += " (indexed by seqlight's Tokenizer, not Keras's imdb.npz)"
        return corpus

    def prepare_data(self) -> None:
        if self._arrays is None:
            corpus = self._raw_corpus()
            self._word_index_json = corpus.word_index_json or None
            self._arrays = load_data_ragged(
                corpus.x_train, corpus.y_train, corpus.x_test, corpus.y_test, **self.load_kwargs
            )

    def _pad(self, xs: Ragged) -> np.ndarray:
        if self.reverse:
            xs = xs.reversed_rows()
        return xs.pad(self.maxlen, padding=self.padding, truncating=self.truncating)

    def setup(self, stage: str | None = None) -> None:
        self.prepare_data()
        (x_train, y_train), (x_test, y_test) = self._arrays
        if self.train_set is None:
            x = self._pad(x_train)
            split_at = int(len(x) * (1.0 - self.validation_split))
            self.train_set = _tensors(x[:split_at], y_train[:split_at])
            self.val_set = _tensors(x[split_at:], y_train[split_at:])
            del x
            if self._word_index_json:
                kw = self.load_kwargs
                self.preprocessing = IndexedTextPreprocessing(
                    word_ranks_json=self._word_index_json, maxlen=self.maxlen, num_words=kw["num_words"],
                    skip_top=kw["skip_top"], start_char=kw["start_char"], oov_char=kw["oov_char"],
                    index_from=kw["index_from"], padding=self.padding, truncating=self.truncating,
                    reverse=self.reverse,
                )  # fmt: skip
            log.info(
                "%d training, %d validation reviews (%s)", split_at, len(x_train) - split_at, self.source_description
            )
        if stage in (None, "test", "predict") and self.test_set is None:
            self.test_set = _tensors(self._pad(x_test), y_test)
