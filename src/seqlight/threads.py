"""How many threads torch computes with when seqlight is in charge (see README, "Threads").

The chapter's models are small: their per-timestep operations are too short for a second intra-op thread to
pay for its synchronisation, and when the cores are shared, spinning OpenMP threads make them many times
slower (measured on a 2-core box with other jobs running: 150 training + 150 validation batches of
``jena_gru.yaml`` in 24 s with 1 thread, 236 s with 2). So seqlight uses **one intra-op thread unless you
chose**, where "you chose" is, first match wins:

1. ``--num_threads N`` on the command line (:func:`configure_threads`);
2. a ``torch.set_num_threads(n)`` call after seqlight was imported (the count differs from the one recorded
   when this module was imported, or from the one seqlight set last);
3. ``$SEQLIGHT_NUM_THREADS`` (seqlight sets that many);
4. ``$OMP_NUM_THREADS`` or ``$MKL_NUM_THREADS`` (torch already took them; seqlight leaves them alone).

:func:`default_threads` applies that rule. seqlight's LightningModules call it when the Trainer sets them up
(``KerasStyleModule.setup``), so ``Trainer().fit(model, dm)`` in Python is as fast as the command line; it
says once what it decided (Lightning's info log). Nothing else in seqlight touches the thread count, so
layers, DataModules and inference in your own code run with whatever you configured.

**Memory allocator.** Where seqlight decides the threads it also keeps glibc's ``malloc`` from handing large
tensors back to the kernel after every step (:func:`tune_malloc`). glibc serves each allocation above its
mmap threshold with a fresh ``mmap`` and unmaps it when freed, and trims the heap's free top back to the
kernel beyond its trim threshold; both adapt to the largest block freed (mmap threshold at most 32 MiB, trim
threshold twice that), and every page handed back is zero-filled again on first touch. A model that allocates
tens of MB a step (``imdb_conv1d.yaml``: its embedded batch is 128 x 500 x 128 floats, 31 MiB, and the
convolutions' inputs, outputs and gradients are of that order) spent about a third of its CPU time in the
kernel that way: on the real reviews, 100 training + 20 validation batches (two runs each) took 16.5-16.7 s
user and 9.8-10.0 s sys with 5.1-5.3 million page faults; with the thresholds below, 16.7-17.0 s user and
1.1 s sys with 0.18-0.20 million, peak resident memory 811-892 MB against 811-825 MB. seqlight
sets the mmap threshold to glibc's maximum (32 MiB; larger blocks still come from ``mmap``) and the trim
threshold to 256 MiB (free memory kept for reuse), when a seqlight model is set up (after the data), through
:func:`default_threads`. It leaves them alone where you chose (any of
``$MALLOC_MMAP_THRESHOLD_``, ``$MALLOC_TRIM_THRESHOLD_``, ``$MALLOC_TOP_PAD_``, ``$MALLOC_MMAP_MAX_``, or
``glibc.malloc`` in ``$GLIBC_TUNABLES``), where ``$SEQLIGHT_MALLOC_TUNING`` is ``0``, and off glibc.
"""

from __future__ import annotations

import ctypes
import os
import sys

import torch
from lightning.pytorch.utilities import rank_zero_info

from seqlight.errors import SeqlightError

__all__ = ["ThreadsError", "configure_threads", "default_threads", "tune_malloc"]

ENV = "SEQLIGHT_NUM_THREADS"
_OTHER_ENVS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")

# torch's count when seqlight was imported: a later difference is the user's own torch.set_num_threads call
_at_import = torch.get_num_threads()
# the count seqlight set or accepted last (None: not decided yet in this process)
_decided: int | None = None

MALLOC_ENV = "SEQLIGHT_MALLOC_TUNING"
_MALLOC_USER_ENVS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 * 2**20  # glibc's maximum on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)
TRIM_THRESHOLD = 256 * 2**20
# None: not tried yet in this process; else what tune_malloc found (True: set, or a reason it was not)
_malloc_tuned: bool | str | None = None


class ThreadsError(SeqlightError, ValueError):
    """A thread count that is not a whole number >= 1."""


def _parse(value, what: str) -> int:
    try:
        n = int(str(value).strip())
    except ValueError:
        n = 0
    if n < 1:
        raise ThreadsError(f"{what} must be a whole number >= 1, got {value!r}")
    return n


def _set(n: int, why: str, log: bool) -> int:
    global _decided
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    changed = _decided != n
    _decided = n
    if log and changed:
        rank_zero_info(f"seqlight: torch uses {n} intra-op thread{'s' if n > 1 else ''} ({why}; see README, Threads)")
    return n


def default_threads(log: bool = True, tune: bool = True) -> int:
    """Set torch's intra-op threads to seqlight's default unless the user chose (see the module doc); return
    the count in use. Cheap and idempotent: call it wherever seqlight starts computing. Also applies
    :func:`tune_malloc`, unless ``tune=False``."""
    if tune:
        tune_malloc()
    current = torch.get_num_threads()
    if _decided is not None:
        if current == _decided:
            return current
        return _set(current, "set with torch.set_num_threads", log)
    if current != _at_import:
        return _set(current, "set with torch.set_num_threads", log)
    if os.environ.get(ENV, "").strip():
        return _set(_parse(os.environ[ENV], f"${ENV}"), f"${ENV}", log)
    for name in _OTHER_ENVS:
        if os.environ.get(name, "").strip():
            return _set(current, f"${name}", log)
    return _set(1, f"seqlight's default for small models; to change it set ${ENV} or call torch.set_num_threads", log)


def tune_malloc() -> bool | str:
    """Set glibc's malloc mmap and trim thresholds once per process (see the module doc); ``True`` when set,
    else why not (a short phrase). Cheap and idempotent."""
    global _malloc_tuned
    if _malloc_tuned is None:
        _malloc_tuned = _tune_malloc()
    return _malloc_tuned


def _tune_malloc() -> bool | str:
    if os.environ.get(MALLOC_ENV, "").strip() == "0":
        return f"${MALLOC_ENV}=0"
    if any(os.environ.get(name) for name in _MALLOC_USER_ENVS) or "glibc.malloc" in os.environ.get(
        "GLIBC_TUNABLES", ""
    ):
        return "set in the environment"
    if not sys.platform.startswith("linux"):
        return "not glibc"
    try:
        libc_version = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        libc_version = ""
    if not libc_version.startswith("glibc"):
        return "not glibc"
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return "no mallopt"
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # (Setting either turns off glibc's own adjustment of both: set both.)
    ok = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    return True if ok else "mallopt refused"


def configure_threads(num_threads: int | None) -> int:
    """The command line's ``--num_threads``: that many intra-op threads, or :func:`default_threads` for ``None``
    (``$SEQLIGHT_NUM_THREADS``, ``$OMP_NUM_THREADS``, else 1). Returns the count in use. (The allocator is
    tuned later, when the model is set up: reading and preparing the data keep glibc's defaults.)"""
    if num_threads is None:
        return default_threads(log=False, tune=False)
    return _set(_parse(num_threads, "--num_threads"), "--num_threads", log=False)
