"""How seqlight writes files: the one home of atomic writes, locks, permissions and leftovers.

Every data or cache file seqlight makes (downloads, unpacked archives, the synthetic datasets, GloVe caches,
saved tokenizers) is written through :func:`atomic_path`:

- the content goes to a temporary sibling ``.<name>.<host>.<pid>.<random>.part`` and is renamed onto ``<name>``
  only when complete, so a crash never leaves a file or folder that looks complete;
- the temporary name carries the writer's host and PID, so the next writer of ``<name>`` removes the
  temporaries of writers that died on this host (killed mid-write, machine reset): leftovers never pile up;
- files get the permissions ``open()`` gives (``0o666 & ~umask``), folders ``0o777 & ~umask``, so other users
  of a shared ``datasets/`` can read them (``tempfile.mkstemp``/``mkdtemp`` would make them private: 0600/0700).

:func:`file_lock` (``fcntl.flock`` on ``.<name>.lock``) keeps two processes from producing the same file or
folder at once, and :func:`create_once` uses it to make a file once: check, lock, check again (another
process may have made it meanwhile), write atomically. Nothing here writes before it has to: a complete file in
a read-only folder is read without creating anything.

Errors of the local disk (full, read-only, permission denied) raise :class:`LocalFileError` naming the path:
they are not network failures, and nothing should quietly fall back to other data because of them.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from seqlight.errors import SeqlightError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; the atomic renames still protect readers
    fcntl = None

__all__ = [
    "LocalFileError",
    "atomic_path",
    "cache_root",
    "create_once",
    "file_lock",
    "remove_stale_temps",
    "writable",
    "writable_or_cache",
]

log = logging.getLogger(__name__)

# errno values that mean "the local disk or its permissions", as opposed to bad content in a file we read
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.EFBIG}
# temporaries in the format of older seqlight versions (tempfile's 8 random characters, no PID): removed
# once nobody has touched them for this long, since their writer cannot be asked whether it is alive
_LEGACY_TEMP = re.compile(r"[a-z0-9_]{8}")
_LEGACY_MAX_AGE_S = 24 * 3600


class LocalFileError(SeqlightError, OSError):
    """A file or folder on this machine could not be written (disk full, read-only folder, permissions)."""

    @classmethod
    def about(cls, path: Path, err: OSError) -> LocalFileError:
        out = cls(
            f"could not write {path}: {err}. This is a problem of the local disk, not of the data: free some space "
            f"or make {path.parent} writable, or choose another folder (e.g. --data.init_args.data_dir)."
        )
        out.errno = err.errno
        return out


# ---------------------------------------------------------------------------------------------------------
# where files go


def cache_root() -> Path:
    """seqlight's cache folder: ``$SEQLIGHT_CACHE``, else ``~/.cache/seqlight``."""
    return Path(os.environ.get("SEQLIGHT_CACHE", Path.home() / ".cache" / "seqlight"))


def writable(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` could be written: it, or the nearest existing folder above it, is writable."""
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return os.access(folder, os.W_OK)


def writable_or_cache(folder: str | os.PathLike, *subdirs: str) -> Path:
    """``folder`` when it is writable, else ``cache_root()/<subdirs>`` (e.g. for a read-only dataset share)."""
    return Path(folder) if writable(folder) else cache_root().joinpath(*subdirs)


# ---------------------------------------------------------------------------------------------------------
# temporaries and their leftovers


def _host() -> str:
    # no dots, so that the name parses back from the right even when <name> has dots
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


def _temp_sibling(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.{_host()}.{os.getpid()}.{secrets.token_hex(4)}.part")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def _is_stale(name: str, dest_name: str, now: float, mtime: Callable[[], float]) -> bool:
    """Whether ``name`` is a temporary of ``dest_name`` whose writer is gone."""
    prefix, suffix = f".{dest_name}.", ".part"
    if not (name.startswith(prefix) and name.endswith(suffix)):
        return False
    middle = name[len(prefix) : -len(suffix)]
    parts = middle.rsplit(".", 2)
    if len(parts) == 3 and parts[1].isdigit():
        # ours when the host matches exactly (a temporary of "<name>.zip" has "zip.<host>" there)
        return parts[0] == _host() and int(parts[1]) != os.getpid() and not _pid_alive(int(parts[1]))
    return bool(_LEGACY_TEMP.fullmatch(middle)) and now - mtime() > _LEGACY_MAX_AGE_S


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def remove_stale_temps(dest: str | os.PathLike) -> list[Path]:
    """Remove the temporaries of ``dest`` left by writers that died on this host; return what was removed.

    Safe without a lock: a writer that is not alive cannot be writing. Temporaries of live processes, of other
    hosts (a shared network folder) and of other files are left alone.
    """
    dest = Path(dest)
    removed: list[Path] = []
    now = time.time()
    try:
        entries = list(os.scandir(dest.parent))
    except OSError:
        return removed
    for entry in entries:
        if _is_stale(entry.name, dest.name, now, lambda e=entry: e.stat(follow_symlinks=False).st_mtime):
            path = Path(entry.path)
            try:
                _remove(path)
            except OSError:  # e.g. another user's leftover in a shared folder: not ours to force
                continue
            log.info("removed %s, left by a writer that was killed", path)
            removed.append(path)
    return removed


# ---------------------------------------------------------------------------------------------------------
# atomic writes


def _mkdirs(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)  # 0o777 & ~umask, like the folders of any other tool
    except OSError as e:
        raise LocalFileError.about(folder, e) from e


def _replace_dir(tmp: Path, dest: Path) -> None:
    """Rename the folder ``tmp`` onto ``dest``; an existing ``dest`` is first moved aside, then deleted."""
    if not (dest.exists() or dest.is_symlink()):
        os.replace(tmp, dest)
        return
    # A folder cannot be renamed onto a non-empty one. The old one gets a temporary's name, so that if we die
    # between the two renames, the next writer removes it as a leftover.
    old = _temp_sibling(dest)
    os.replace(dest, old)
    os.replace(tmp, dest)
    _remove(old)


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``, renamed onto ``dest`` when the block ends without an exception.

    The temporary file exists (empty) on entry; with ``directory=True`` it is an empty folder that becomes
    ``dest`` (an existing ``dest`` folder is replaced). On an exception the temporary is removed and nothing
    changes at ``dest``. Leftovers of dead writers of ``dest`` are removed first. Errors of the local disk
    (creating, writing or renaming) raise :class:`LocalFileError` naming ``dest``.

    >>> with atomic_path("out.csv") as tmp:   # doctest: +SKIP
    ...     tmp.write_text("a,b\\n")
    """
    dest = Path(dest)
    _mkdirs(dest.parent)
    remove_stale_temps(dest)
    tmp = _temp_sibling(dest)
    try:
        if directory:
            os.mkdir(tmp, 0o777)
        else:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as e:
        raise LocalFileError.about(dest, e) from e
    try:
        yield tmp
        if directory:
            _replace_dir(tmp, dest)
        else:
            os.replace(tmp, dest)
    except BaseException as e:
        _remove(tmp)
        if isinstance(e, OSError) and not isinstance(e, SeqlightError) and e.errno in _DISK_ERRNOS:
            raise LocalFileError.about(dest, e) from e
        raise


# ---------------------------------------------------------------------------------------------------------
# one writer at a time

_held = threading.local()  # the lock files this thread holds, so that nested use does not deadlock


@contextlib.contextmanager
def file_lock(dest: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock for producing ``dest``, shared by all processes on this host (and NFS/SMB mounts
    that support ``flock``). Re-entrant within a thread.

    The lock file ``.<name>.lock`` beside ``dest`` is removed on release, so a data folder stays clean. That is
    safe because a process that waited on the removed file notices (its inode is no longer the path's) and
    locks the new one.
    """
    dest = Path(dest)
    lock = dest.with_name(f".{dest.name}.lock")
    held: set[str] = _held.__dict__.setdefault("paths", set())
    key = str(lock.absolute())
    if fcntl is None or key in held:
        yield
        return
    _mkdirs(dest.parent)
    while True:
        try:
            fd = os.open(lock, os.O_RDONLY | os.O_CREAT, 0o666)
        except OSError as e:
            raise LocalFileError.about(lock, e) from e
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("waiting for another process that is writing %s", dest)
                fcntl.flock(fd, fcntl.LOCK_EX)
            mine = os.fstat(fd)
            now = os.stat(lock)
            if (mine.st_dev, mine.st_ino) == (now.st_dev, now.st_ino):
                break
        except FileNotFoundError:
            pass  # the holder removed it on release: lock the next one
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    held.add(key)
    try:
        yield
    finally:
        held.discard(key)
        with contextlib.suppress(OSError):
            os.unlink(lock)  # while still holding it: see the docstring
        os.close(fd)


def create_once(
    dest: str | os.PathLike, make: Callable[[], object], *, done: Callable[[Path], bool] | None = None
) -> Path:
    """Run ``make()`` to produce ``dest`` unless it is already there, one process at a time; return ``dest``.

    ``done(dest)`` (default: ``dest`` exists) says whether it is there and complete. It is checked without a
    lock first (so a read-only folder that holds ``dest`` is never written to), then again under
    :func:`file_lock`, since another process may have made it while this one waited. ``make`` writes ``dest``
    atomically itself (with :func:`atomic_path`, or a writer built on it).
    """
    dest = Path(dest)
    done = done or (lambda p: p.exists())
    if not done(dest):
        with file_lock(dest):
            if not done(dest):
                make()
    return dest
