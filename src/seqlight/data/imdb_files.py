"""Finding and reading the IMDB files: the ``aclImdb`` folder (unpacked once, under a lock) and GloVe.

Nothing here downloads (see :mod:`seqlight.data.imdb_download`) or tokenizes (see :mod:`seqlight.data.imdb_keras`
and :mod:`seqlight.data.imdb_cache`).

- :func:`locate_acl_imdb` finds ``aclImdb/{train,test}/{pos,neg}`` under a folder, or unpacks a tarball found
  there, once, even when several processes ask at the same time (:func:`seqlight.files.create_once`).
- :func:`acl_imdb_files` lists a split's review files in the order every reader uses (``neg`` then ``pos``,
  each sorted by name), and :func:`read_acl_imdb` reads them.
- :func:`acl_imdb_signature` is a cheap fingerprint of the review files (names, sizes, mtimes), which the
  tokenized-corpus cache uses as the identity of the data.
- :func:`locate_glove` finds ``glove.6B.<d>d.txt`` (or ``.txt.gz``, or ``glove.6B.zip``).

Bad input: a missing ``train``/``test`` ``pos``/``neg`` folder or one without ``.txt`` files raises
:class:`ImdbDataError` naming it; a review that is not UTF-8 raises naming the file and the byte offset
(``encoding_errors="replace"`` reads it with U+FFFD instead); empty reviews are kept and counted in the log.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Literal

import numpy as np

from seqlight.data.download import extract_tar
from seqlight.errors import SeqlightError
from seqlight.files import cache_root, create_once, writable

__all__ = [
    "ACL_TARBALLS",
    "ImdbDataError",
    "acl_imdb_files",
    "acl_imdb_signature",
    "locate_acl_imdb",
    "locate_glove",
    "read_acl_imdb",
]

log = logging.getLogger(__name__)

ACL_TARBALLS = ("aclImdb_v1.tar.gz", "aclImdb_v1_labelled.tar.gz")
SPLITS = ("train", "test")
CLASSES = ("neg", "pos")  # label 0, label 1: the order of every reader


class ImdbDataError(SeqlightError, ValueError):
    """The IMDB files are missing, incomplete or unreadable; the message names the folder or file."""


def _is_acl_root(folder: Path) -> bool:
    return all((folder / s / c).is_dir() for s in SPLITS for c in CLASSES)


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
    :class:`~seqlight.data.download.DownloadError` naming it.
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


def _class_folder(root: Path, split: str, name: str) -> Path:
    folder = Path(root) / split / name
    if not folder.is_dir():
        raise ImdbDataError(
            f"{folder} is missing: an aclImdb folder needs train/pos, train/neg, test/pos and test/neg "
            "(unpack the official aclImdb_v1.tar.gz there, or use source='synthetic')"
        )
    return folder


def acl_imdb_files(root: str | os.PathLike, split: str) -> tuple[list[Path], list[Path]]:
    """The review files of ``root/<split>/neg`` and ``.../pos``, each sorted by name: the order of
    :func:`read_acl_imdb` and of the DataModules' test rows."""
    out = []
    for name in CLASSES:
        folder = _class_folder(Path(root), split, name)
        files = sorted(p for p in folder.iterdir() if p.suffix == ".txt")
        if not files:
            raise ImdbDataError(f"{folder} has no .txt reviews: the aclImdb folder is incomplete")
        out.append(files)
    return out[0], out[1]


def acl_imdb_signature(root: str | os.PathLike, splits: tuple[str, ...] = SPLITS) -> str:
    """A sha256 over the name, size and modification time (ns) of every ``.txt`` review of ``splits``.

    Any review added, removed, renamed, edited or touched changes it, and nothing is read but the folder
    listings and one ``stat`` per file (about 0.1 s for the 50,000 reviews). The folder's path is not part of
    it: the same tarball unpacked elsewhere (tar restores the mtimes) has the same signature.
    """
    h = hashlib.sha256()
    for split in splits:
        for name in CLASSES:
            folder = _class_folder(Path(root), split, name)
            entries = sorted((e for e in os.scandir(folder) if e.name.endswith(".txt")), key=lambda e: e.name)
            if not entries:
                raise ImdbDataError(f"{folder} has no .txt reviews: the aclImdb folder is incomplete")
            h.update(f"{split}/{name}:{len(entries)}\n".encode())
            for e in entries:
                st = e.stat()
                h.update(f"{e.name}\t{st.st_size}\t{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


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
