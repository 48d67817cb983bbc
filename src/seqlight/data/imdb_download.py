"""The official IMDB and GloVe downloads: addresses, pinned digests, and where the files land.

Every download goes through :func:`seqlight.data.download.fetch` (verified digest, atomic, resumable) and is
unpacked once (:func:`seqlight.data.imdb_files.locate_acl_imdb`'s lock). Nothing is downloaded unless a
DataModule was allowed to (``download=True``) and the file is not already there.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path

from seqlight.data.download import DownloadError, extract_zip_member, fetch, file_digest, tar_with_top, zip_with_member
from seqlight.data.imdb_files import ImdbDataError, _unpack
from seqlight.text.glove import GLOVE_6B_MD5, GLOVE_6B_URL

__all__ = [
    "ACL_IMDB_URL",
    "ACL_IMDB_MD5",
    "ACL_IMDB_SHA256",
    "KERAS_IMDB_URL",
    "KERAS_IMDB_SHA256",
    "KERAS_IMDB_WORD_INDEX_URL",
    "KERAS_IMDB_WORD_INDEX_MD5",
    "download_acl_imdb",
    "download_glove",
    "find_keras_imdb_npz",
    "find_keras_imdb_word_index",
    "offline_message",
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


def download_acl_imdb(data_dir: str | os.PathLike, timeout: float = 30.0) -> Path:
    """Download ``aclImdb_v1.tar.gz`` (sha256-verified, atomic) into ``data_dir`` and unpack it there."""
    data_dir = Path(data_dir)
    tarball = fetch(
        ACL_IMDB_URL, data_dir / "aclImdb_v1.tar.gz", f"sha256:{ACL_IMDB_SHA256}",
        timeout=timeout, validate=tar_with_top("aclImdb"),
    )  # fmt: skip
    return _unpack(tarball, data_dir)


def download_glove(data_dir: str | os.PathLike, dim: int, timeout: float = 30.0) -> Path:
    """Download the official ``glove.6B.zip`` (822 MB, md5-verified, atomic) and extract ``glove.6B.<dim>d.txt``."""
    data_dir = Path(data_dir)
    member = f"glove.6B.{dim}d.txt"
    archive = fetch(
        GLOVE_6B_URL, data_dir / "glove.6B.zip", f"md5:{GLOVE_6B_MD5}",
        timeout=timeout, deadline=6 * 3600, validate=zip_with_member(member),  # 822 MB
    )  # fmt: skip
    return extract_zip_member(archive, member, data_dir / member)


def find_keras_imdb_npz(data_dir: Path, home: Path, download: bool, timeout: float) -> Path | None:
    """The official ``imdb.npz``: in ``data_dir`` (or ``home``), else downloaded there when ``download``.

    ``None`` when it is not there and cannot be downloaded. A copy that is not the official file raises
    :class:`ImdbDataError` when downloads are off, and is downloaded again when they are on.
    """
    candidates = [Path(data_dir) / "imdb.npz", Path(home) / "imdb.npz"]
    dest = next((p for p in candidates if p.is_file()), candidates[1])
    if not download:
        if not dest.is_file():
            return None
        if file_digest(dest) != KERAS_IMDB_SHA256:
            raise ImdbDataError(
                f"{dest} is not the official imdb.npz (its sha256 is not {KERAS_IMDB_SHA256}): delete it, or "
                "pass --data.init_args.download true to replace it with a fresh download"
            )
        return dest
    try:  # a corrupt copy at dest is downloaded again
        return fetch(KERAS_IMDB_URL, dest, f"sha256:{KERAS_IMDB_SHA256}", timeout=timeout)
    except DownloadError as e:
        log.info("imdb.npz not available: %s", e)
        return None


def find_keras_imdb_word_index(data_dir: Path, home: Path, download: bool, timeout: float) -> dict[str, int] | None:
    """``imdb.get_word_index()``: the ranks behind ``imdb.npz``, needed to index new reviews the same way.

    In ``data_dir`` (or ``home``), else downloaded (md5-verified) when allowed; ``None`` (with a warning)
    otherwise.
    """
    candidates = [Path(data_dir) / "imdb_word_index.json", Path(home) / "imdb_word_index.json"]
    dest = next((p for p in candidates if p.is_file()), candidates[1])
    try:
        if download:
            dest = fetch(KERAS_IMDB_WORD_INDEX_URL, dest, f"md5:{KERAS_IMDB_WORD_INDEX_MD5}", timeout=timeout)
        if dest.is_file():
            return json.loads(dest.read_text(encoding="utf-8"))
    except DownloadError as e:
        log.info("imdb_word_index.json not available: %s", e)
    warnings.warn(
        f"imdb_word_index.json is not in {data_dir} and could not be downloaded: a model trained on "
        "imdb.npz will not be able to classify raw text (Classifier.classify)",
        stacklevel=4,
    )
    return None


def offline_message(what: str, where: Path, err: Exception | None, hint: str) -> str:
    """What to do when ``what`` is neither in ``where`` nor downloadable."""
    reason = f" and could not be downloaded ({err})" if err is not None else ""
    return (
        f"{what} is not in {where}{reason}.\n  - {hint}\n"
        "  - or use the offline stand-in in the same layout: --data.init_args.source synthetic "
        "(results then show that the code works, not the book's numbers)."
    )
