"""Verified, atomic downloads of the official data files.

Every download goes to a temporary file in the destination folder, is checked against a pinned digest
(``"sha256:<hex>"`` or ``"md5:<hex>"``), and only then renamed to its final name: an interrupted or corrupt
download never leaves a file that looks complete. Where no digest of the official file is known, the
first verified download records its sha256 next to the file (``<name>.sha256``) and later downloads must
match it; the caller is expected to validate the content itself (e.g. the Jena CSV's schema and row count).

Extraction (:func:`extract_zip_member`, :func:`extract_tar`) is atomic in the same way.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from seqlight.errors import SeqlightError

__all__ = ["DownloadError", "fetch", "file_digest", "extract_zip_member", "extract_tar", "atomic_write_path"]

CHUNK = 1 << 20


class DownloadError(SeqlightError, RuntimeError):
    """A download failed (no network, HTTP error) or its content did not match the pinned digest."""


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _parse_checksum(checksum: str | None) -> tuple[str, str] | None:
    if checksum is None:
        return None
    algo, _, hexdigest = checksum.partition(":")
    if algo not in ("sha256", "md5") or not hexdigest:
        raise ValueError(f"checksum must look like 'sha256:<hex>' or 'md5:<hex>', got {checksum!r}")
    return algo, hexdigest.lower()


class atomic_write_path:
    """Context manager yielding a temporary path next to ``dest``; renamed onto ``dest`` on success only.

    >>> with atomic_write_path("out.csv") as tmp:   # doctest: +SKIP
    ...     write_everything(tmp)
    """

    def __init__(self, dest: str | os.PathLike):
        self.dest = Path(dest)

    def __enter__(self) -> Path:
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{self.dest.name}.", suffix=".part", dir=self.dest.parent)
        os.close(fd)
        self.tmp = Path(name)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            os.replace(self.tmp, self.dest)
        else:
            self.tmp.unlink(missing_ok=True)
            if self.tmp.is_dir():
                shutil.rmtree(self.tmp, ignore_errors=True)


def _progress(done: int, total: int | None, started: float, name: str) -> None:
    if not sys.stderr.isatty() and total and done < total and done % (16 * CHUNK):
        return
    rate = done / max(time.monotonic() - started, 1e-9) / 1e6
    if total:
        msg = f"\r{name}: {done / 1e6:7.1f} / {total / 1e6:.1f} MB ({100 * done / total:5.1f}%) {rate:5.1f} MB/s"
    else:
        msg = f"\r{name}: {done / 1e6:7.1f} MB {rate:5.1f} MB/s"
    print(msg, end="", file=sys.stderr, flush=True)


def fetch(url: str, dest: str | os.PathLike, checksum: str | None = None, *, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest`` unless a verified copy is already there; return ``dest``.

    ``checksum`` is ``"sha256:<hex>"`` or ``"md5:<hex>"``. With ``checksum=None`` the sha256 of the first
    download is written to ``<dest>.sha256`` and later downloads (or an existing ``dest``) must match it.
    Raises :class:`DownloadError` with the URL and the reason when the network is unreachable or the
    digest does not match; nothing is left at ``dest`` in that case.
    """
    dest = Path(dest)
    pinned = _parse_checksum(checksum)
    record = dest.with_name(dest.name + ".sha256")
    if pinned is None and record.exists():
        pinned = ("sha256", record.read_text().split()[0].lower())

    if dest.exists():
        if pinned is None or file_digest(dest, pinned[0]) == pinned[1]:
            return dest
        raise DownloadError(
            f"{dest} exists but its {pinned[0]} is not {pinned[1]}: the file is corrupt or not the official one. "
            "Delete it and run again to download a fresh copy."
        )

    with atomic_write_path(dest) as tmp:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as out:
                total = resp.length
                done, started = 0, time.monotonic()
                for chunk in iter(lambda: resp.read(CHUNK), b""):
                    out.write(chunk)
                    done += len(chunk)
                    _progress(done, total, started, dest.name)
                print(file=sys.stderr)
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            raise DownloadError(f"could not download {url}: {getattr(e, 'reason', e)}") from e
        if pinned is not None:
            got = file_digest(tmp, pinned[0])
            if got != pinned[1]:
                raise DownloadError(
                    f"downloaded {url} but its {pinned[0]} is {got}, expected {pinned[1]}; the file was discarded"
                )
    if pinned is None:
        with atomic_write_path(record) as tmp:
            tmp.write_text(f"{file_digest(dest)}  {dest.name}\n")
    return dest


def extract_zip_member(archive: str | os.PathLike, member: str, dest: str | os.PathLike) -> Path:
    """Extract one member of a zip archive to ``dest`` atomically (it is found by its base name)."""
    dest = Path(dest)
    with zipfile.ZipFile(archive) as zf:
        names = [n for n in zf.namelist() if Path(n).name == member and not n.startswith("__MACOSX")]
        if not names:
            raise DownloadError(f"{archive} has no member named {member!r} (it has {zf.namelist()[:5]}...)")
        with atomic_write_path(dest) as tmp, zf.open(names[0]) as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out, CHUNK)
    return dest


def extract_tar(archive: str | os.PathLike, top: str, dest_dir: str | os.PathLike) -> Path:
    """Extract a tar(.gz) archive whose entries live under ``top/`` into ``dest_dir/top`` atomically.

    The archive is unpacked into a temporary folder beside the target and renamed when complete, so an
    interrupted extraction never leaves a partial ``dest_dir/top``. Members that would escape the folder
    (absolute paths, ``..``, links) are refused.
    """
    dest_dir = Path(dest_dir)
    final = dest_dir / top
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{top}.", suffix=".part", dir=dest_dir))
    try:
        with tarfile.open(archive) as tf:
            members = []
            for m in tf.getmembers():
                p = Path(m.name)
                if p.is_absolute() or ".." in p.parts or not (m.isfile() or m.isdir()):
                    raise DownloadError(f"{archive}: refusing unsafe member {m.name!r}")
                members.append(m)
            tf.extractall(tmp, members=members)
        if not (tmp / top).is_dir():
            raise DownloadError(f"{archive} has no top-level folder {top!r}")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp / top, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
