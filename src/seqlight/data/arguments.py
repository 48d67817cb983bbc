"""Checks of a DataModule's arguments, made in ``__init__`` before any file is read, with messages that name
the argument (the CLI prints them as one paragraph). Each takes the error class to raise, a
:class:`~seqlight.errors.SeqlightError` subclass of the DataModule's family."""

from __future__ import annotations

import numpy as np

__all__ = ["check_int", "check_choice", "check_number"]


def check_int(name: str, value, low: int, error: type[Exception], none_ok: bool = False) -> None:
    """Refuse an argument that is not an integer >= ``low`` (``None`` too, unless ``none_ok``), naming it."""
    if value is None and none_ok:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise error(f"{name} must be an integer >= {low}{' or None' if none_ok else ''}, got {value!r}")


def check_choice(name: str, value, choices, error: type[Exception]) -> None:
    """Refuse an argument that is not one of ``choices``, naming it and them."""
    if value not in choices:
        raise error(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")


def check_number(name: str, value, error: type[Exception], low: float, high: float | None = None) -> None:
    """Refuse a number outside ``(low, high)`` (open bounds; ``high=None``: no upper bound), naming it."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.number)) and value > low
    ok = ok and (high is None or value < high)
    if not ok:
        bound = f"in ({low}, {high})" if high is not None else f"> {low}"
        raise error(f"{name} must be a number {bound}, got {value!r}")
