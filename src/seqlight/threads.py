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
"""

from __future__ import annotations

import os

import torch
from lightning.pytorch.utilities import rank_zero_info

from seqlight.errors import SeqlightError

__all__ = ["ThreadsError", "configure_threads", "default_threads"]

ENV = "SEQLIGHT_NUM_THREADS"
_OTHER_ENVS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")

# torch's count when seqlight was imported: a later difference is the user's own torch.set_num_threads call
_at_import = torch.get_num_threads()
# the count seqlight set or accepted last (None: not decided yet in this process)
_decided: int | None = None


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


def default_threads(log: bool = True) -> int:
    """Set torch's intra-op threads to seqlight's default unless the user chose (see the module doc); return
    the count in use. Cheap and idempotent: call it wherever seqlight starts computing."""
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


def configure_threads(num_threads: int | None) -> int:
    """The command line's ``--num_threads``: that many intra-op threads, or :func:`default_threads` for ``None``
    (``$SEQLIGHT_NUM_THREADS``, ``$OMP_NUM_THREADS``, else 1). Returns the count in use."""
    if num_threads is None:
        return default_threads(log=False)
    return _set(_parse(num_threads, "--num_threads"), "--num_threads", log=False)
