"""The one base class of the errors a user can act on.

A :class:`SeqlightError` means "your input or your machine needs attention", never "seqlight has a bug":
a malformed CSV, a checkpoint that is not one, a download that failed, a setting out of range. Its message
is complete on its own (it names the file, line, column or option, and says what to do), so the command
line prints it as one paragraph without a traceback (``SEQLIGHT_DEBUG=1`` shows the traceback too).
Library users catch it like any exception; each subclass also derives from the built-in exception that
fits (``ValueError``, ``RuntimeError``, ``OSError``) so existing ``except`` clauses keep working.
"""

from __future__ import annotations

__all__ = ["SeqlightError"]


class SeqlightError(Exception):
    """An error caused by the user's input or environment, with a message that says what to do."""
