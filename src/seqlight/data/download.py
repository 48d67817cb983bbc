"""Verified, atomic downloads of the official data files, and their extraction.

:func:`fetch` never lets a bad download reach the file's final name, nor its digest reach the trust record:

1. the body goes to a temporary file beside the destination (:func:`seqlight.files.atomic_path`), with an
   overall ``deadline`` besides the per-read ``timeout``, so a server that drips bytes cannot hang a run;
2. the bytes received must equal the ``Content-Length`` (Python's HTTP client stops quietly when a server
   closes early), and a cut chunked response is an error too;
3. the content must match the pinned digest (``"sha256:<hex>"`` or ``"md5:<hex>"``) where one is known, and
   pass the caller's ``validate`` check (e.g. :func:`zip_with_member`: "a zip holding the Jena CSV");
4. only then is it renamed to its final name, and where no digest is pinned, its sha256 is recorded in
   ``<name>.sha256`` (trust on first use) so that a later change of the local file is noticed.

A cached file that fails its digest or ``validate`` is downloaded again, with a warning: nobody has to delete
it by hand. Network failures raise :class:`DownloadError` (a DataModule with ``source="auto"`` may then use
its offline stand-in); errors of the local disk raise :class:`seqlight.files.LocalFileError` (no fallback:
the user must see them). Extraction (:func:`extract_zip_member`, :func:`extract_tar`) is atomic and locked
in the same way.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import os
import shutil
import sys
import tarfile
import time
import urllib.error
import urllib.request
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from seqlight.errors import SeqlightError
from seqlight.files import atomic_path, file_lock

__all__ = [
    "DownloadError",
    "atomic_write_path",
    "extract_tar",
    "extract_zip_member",
    "fetch",
    "file_digest",
    "tar_with_top",
    "zip_with_member",
]

log = logging.getLogger(__name__)

CHUNK = 1 << 20
DEFAULT_DEADLINE_S = 3600.0
# first line of a trust-on-first-use record; records without it were written by seqlight versions that did
# not verify downloads (and may vouch for a cut file), so they are ignored and replaced
_RECORD_HEADER = "# sha256 of a download whose length and content seqlight verified (trust on first use)"
# errors of a damaged archive, as the zip, tar and gzip modules raise them
_ARCHIVE_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)

atomic_write_path = atomic_path  # the former name, kept for code that imports it from here


class DownloadError(SeqlightError, RuntimeError):
    """A download failed (no network, HTTP error, cut or corrupt content) or did not match the pinned digest."""


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


# ---------------------------------------------------------------------------------------------------------
# content checks, for fetch(validate=...): each raises ValueError saying what is wrong


def _zip_member_name(zf: zipfile.ZipFile, member: str) -> str | None:
    names = [n for n in zf.namelist() if PurePosixPath(n).name == member and not n.startswith("__MACOSX")]
    return names[0] if names else None


def zip_with_member(member: str) -> Callable[[Path], None]:
    """A check that a file is a complete zip archive holding ``member`` (found by its base name), CRC included."""

    def check(path: Path) -> None:
        try:
            with zipfile.ZipFile(path) as zf:
                name = _zip_member_name(zf, member)
                if name is None:
                    raise ValueError(f"it is a zip archive without {member!r} (it has {zf.namelist()[:5]})")
                with zf.open(name) as f:  # reading to the end checks the member's CRC
                    while f.read(CHUNK):
                        pass
        except _ARCHIVE_ERRORS as e:
            raise ValueError(f"it is not a complete zip archive ({e})") from e

    return check


def tar_with_top(top: str) -> Callable[[Path], None]:
    """A check that a file is a complete tar (or tar.gz) archive with entries under ``top/``."""

    def check(path: Path) -> None:
        try:
            with open(path, "rb") as raw:
                gz = raw.read(2) == b"\x1f\x8b"
            with gzip.open(path) if gz else open(path, "rb") as stream:
                with tarfile.open(fileobj=stream, mode="r|") as tf:
                    found = any(PurePosixPath(m.name).parts[:1] == (top,) for m in tf)
                # tar stops at its end-of-archive blocks; gzip checks its CRC and length only at the very end
                while stream.read(CHUNK):
                    pass
        except _ARCHIVE_ERRORS as e:
            raise ValueError(f"it is not a complete tar archive ({e})") from e
        if not found:
            raise ValueError(f"it is a tar archive without a top-level folder {top!r}")

    return check


def _looks_like_html(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(512).lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head"))


# ---------------------------------------------------------------------------------------------------------
# fetch


def _read_record(record: Path) -> tuple[str, str] | None:
    """The sha256 in a trust-on-first-use record, or None (no record, or one from an older seqlight)."""
    try:
        lines = record.read_text().splitlines()
    except FileNotFoundError:
        return None
    if len(lines) < 2 or lines[0] != _RECORD_HEADER or not lines[1].split():
        log.info("ignoring %s: an older seqlight wrote it without verifying the download", record)
        return None
    return "sha256", lines[1].split()[0].lower()


def _problem(path: Path, pinned: tuple[str, str] | None, validate: Callable[[Path], None] | None) -> str | None:
    """Why the file at ``path`` is not the expected one, or None when it is."""
    if pinned is not None:
        got = file_digest(path, pinned[0])
        if got != pinned[1]:
            return f"has {pinned[0]} {got}, expected {pinned[1]}"
        return None  # the digest says more than any content check could
    if validate is not None:
        try:
            validate(path)
        except ValueError as e:
            return f"is not the expected file: {e}" + (" (it is an HTML page)" if _looks_like_html(path) else "")
    return None


class _Progress:
    """A one-line progress report on stderr, at most twice a second."""

    def __init__(self, name: str, total: int | None):
        self.name, self.total = name, total
        self.started = self.last = time.monotonic()
        self.shown = False

    def __call__(self, done: int, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < 0.5:
            return
        self.last = now
        rate = done / max(now - self.started, 1e-9) / 1e6
        if self.total:
            pct = 100 * done / self.total
            msg = f"\r{self.name}: {done / 1e6:7.1f} / {self.total / 1e6:.1f} MB ({pct:5.1f}%) {rate:5.1f} MB/s"
        else:
            msg = f"\r{self.name}: {done / 1e6:7.1f} MB {rate:5.1f} MB/s"
        if sys.stderr.isatty() or final:
            print(msg, end="\n" if final else "", file=sys.stderr, flush=True)
            self.shown = True


def _download(url: str, tmp: Path, name: str, timeout: float, deadline: float | None) -> tuple[int, dict[str, str]]:
    """Stream ``url`` into ``tmp``; return the byte count and the sha256 and md5 of the body.

    Network problems raise DownloadError; a local write error is left to atomic_path, which names the file.
    """
    started = time.monotonic()
    try:
        resp = urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as e:
        raise DownloadError(f"could not download {url}: HTTP error {e.code} ({e.reason})") from e
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        raise DownloadError(f"could not download {url}: {getattr(e, 'reason', None) or e}") from e
    hashes = {"sha256": hashlib.sha256(), "md5": hashlib.md5()}
    with resp, open(tmp, "wb") as out:
        total = resp.length  # Content-Length; None for a chunked response
        progress = _Progress(name, total)
        read = getattr(resp, "read1", resp.read)  # read1: returns what has arrived, so the deadline is checked
        done = 0
        while True:
            if deadline is not None and time.monotonic() - started > deadline:
                raise DownloadError(
                    f"could not download {url}: not complete after the {deadline:g} s deadline ({done} bytes "
                    "received); the partial file was discarded. Check the network, or download it by hand."
                )
            try:
                chunk = read(CHUNK)
            except (http.client.HTTPException, OSError) as e:  # IncompleteRead, reset, timeout
                raise DownloadError(f"could not download {url}: {e!r} after {done} bytes") from e
            if not chunk:
                break
            out.write(chunk)
            for h in hashes.values():
                h.update(chunk)
            done += len(chunk)
            progress(done)
        progress(done, final=True)
    if total is not None and done != total:
        raise DownloadError(
            f"could not download {url}: received {done} of {total} bytes (the connection was cut); "
            "the partial file was discarded. Run again to retry."
        )
    return done, {k: h.hexdigest() for k, h in hashes.items()}


def fetch(
    url: str,
    dest: str | os.PathLike,
    checksum: str | None = None,
    *,
    timeout: float = 30.0,
    deadline: float | None = DEFAULT_DEADLINE_S,
    validate: Callable[[Path], None] | None = None,
) -> Path:
    """Download ``url`` to ``dest`` unless a good copy is already there; return ``dest``.

    Args:
        url: the official address.
        dest: the final path. Nothing is written beside it while a good copy is there (a read-only folder
            holding the file works).
        checksum: ``"sha256:<hex>"`` or ``"md5:<hex>"`` of the official file. ``None``: the sha256 of the first
            verified download is recorded in ``<dest>.sha256`` and ``dest`` must keep matching it.
        timeout: seconds a single network read may wait.
        deadline: seconds the whole download may take (``None``: no limit).
        validate: ``validate(path)`` raises ``ValueError`` when the file is not what it should be, e.g.
            :func:`zip_with_member` or :func:`tar_with_top`. Run on every new download before it is renamed
            and recorded, and on a cached ``dest`` that no digest vouches for.

    A cached ``dest`` that fails the digest or ``validate`` is downloaded again (with a warning). Raises
    :class:`DownloadError` when the download fails, is cut, or is not the expected file (nothing is left
    at ``dest`` then), and :class:`~seqlight.files.LocalFileError` when the local disk refuses the write.
    """
    dest = Path(dest)
    official = _parse_checksum(checksum)
    record = dest.with_name(dest.name + ".sha256")
    recorded = _read_record(record) if official is None else None
    pinned = official or recorded
    if dest.is_file() and _problem(dest, pinned, validate) is None:
        return dest  # the common case: no lock taken, nothing written
    with file_lock(dest):
        if dest.is_file():
            problem = _problem(dest, pinned, validate)
            if problem is None:
                return dest  # another process downloaded it while we waited
            msg = f"{dest} {problem}: it is corrupt or not the official file; downloading it again"
            warnings.warn(msg, stacklevel=2)
            # (a record is written only after verification, so it still describes the good file: it stays)
            dest.unlink()
        with atomic_path(dest) as tmp:
            size, digests = _download(url, tmp, dest.name, timeout, deadline)
            if pinned is not None and digests[pinned[0]] != pinned[1]:
                if official is None:
                    why = f"that of the copy first downloaded here ({record}; delete it if the official file changed)"
                else:
                    why = "that of the official file"
                raise DownloadError(
                    f"downloaded {url} ({size} bytes) but its {pinned[0]} is {digests[pinned[0]]}, not {pinned[1]}, "
                    f"{why}; the file was discarded"
                )
            if validate is not None:
                problem = _problem(tmp, None, validate)
                if problem is not None:
                    raise DownloadError(f"downloaded {url} ({size} bytes) but it {problem}; the file was discarded")
        if official is None:
            with atomic_path(record) as tmp:
                tmp.write_text(f"{_RECORD_HEADER}\n{digests['sha256']}  {dest.name}\n")
    return dest


# ---------------------------------------------------------------------------------------------------------
# extraction


def extract_zip_member(archive: str | os.PathLike, member: str, dest: str | os.PathLike) -> Path:
    """Extract one member of a zip archive to ``dest`` atomically (it is found by its base name)."""
    dest = Path(dest)
    try:
        with zipfile.ZipFile(archive) as zf:
            name = _zip_member_name(zf, member)
            if name is None:
                raise DownloadError(f"{archive} has no member named {member!r} (it has {zf.namelist()[:5]}...)")
            with file_lock(dest), atomic_path(dest) as tmp, zf.open(name) as src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
    except _ARCHIVE_ERRORS as e:
        raise DownloadError(f"{archive} is not a complete zip archive ({e}); download it again") from e
    return dest


def extract_tar(archive: str | os.PathLike, top: str, dest_dir: str | os.PathLike) -> Path:
    """Extract a tar(.gz) archive whose entries live under ``top/`` into ``dest_dir/top`` atomically.

    The archive is unpacked into a temporary folder beside the target, renamed to ``top`` when complete, so an
    interrupted extraction never leaves a partial ``dest_dir/top`` (and its leftover is removed by the next
    writer). Entries outside ``top/`` are skipped; members that would escape the folder (absolute paths,
    ``..``, links, devices) are refused.
    """
    final = Path(dest_dir) / top
    try:
        with file_lock(final), atomic_path(final, directory=True) as tmp, tarfile.open(archive) as tf:
            members = []
            for m in tf.getmembers():
                p = PurePosixPath(m.name)
                if p.is_absolute() or ".." in p.parts or not (m.isfile() or m.isdir()):
                    raise DownloadError(f"{archive}: refusing unsafe member {m.name!r}")
                if p.parts[:1] == (top,) and len(p.parts) > 1:
                    m.name = str(PurePosixPath(*p.parts[1:]))  # the temporary folder *is* top
                    members.append(m)
            if not members:
                raise DownloadError(f"{archive} has no top-level folder {top!r}")
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tf.extractall(tmp, members=members, **safe)
    except _ARCHIVE_ERRORS as e:
        raise DownloadError(f"{archive} is not a complete tar archive ({e}); download it again") from e
    return final
