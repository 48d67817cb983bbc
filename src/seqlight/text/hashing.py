"""``hashing_trick`` and ``one_hot`` (``keras.preprocessing.text``) with a hash that is the same in every process.

Keras hashes words with Python's ``hash``, which is salted per process (``PYTHONHASHSEED``): the same word
gets a different index in every run, so a model trained with ``one_hot`` cannot be used in the next process
(keras-team/keras#9500). Here the default is ``"md5"`` — exactly Keras's ``hash_function="md5"`` option,
``int(md5(word).hexdigest(), 16) % (n - 1) + 1`` — and Python's ``hash`` is available as
``hash_function="hash"`` (or pass ``hash``, or any callable ``str -> int``).

    >>> hashing_trick("The cat sat on the mat.", 1000)
    [132, 759, 622, 379, 132, 962]
"""

from __future__ import annotations

from collections.abc import Callable
from hashlib import md5

from seqlight.text.tokenizer import DEFAULT_FILTERS, text_to_word_sequence

__all__ = ["hashing_trick", "one_hot", "stable_hash"]


def stable_hash(word: str) -> int:
    """md5 of the UTF-8 bytes as an integer: the same value in every process and on every machine."""
    return int(md5(word.encode("utf-8")).hexdigest(), 16)


def _resolve(hash_function) -> Callable[[str], int]:
    if hash_function is None or hash_function == "md5":
        return stable_hash
    if hash_function == "hash":
        return hash
    if callable(hash_function):
        return hash_function
    raise ValueError(f"hash_function must be None, 'md5', 'hash' or a callable, got {hash_function!r}")


def hashing_trick(
    text: str,
    n: int,
    hash_function: str | Callable[[str], int] | None = None,
    filters: str = DEFAULT_FILTERS,
    lower: bool = True,
    split: str = " ",
) -> list[int]:
    """Words of ``text`` as indices in ``[1, n)``: ``hash(word) % (n - 1) + 1`` (0 stays free for padding).

    ``hash_function``: ``None``/``"md5"`` (stable, the default here), ``"hash"`` (Python's salted hash, Keras's
    default) or a callable. Collisions are possible, as with any hashing trick: choose ``n`` well above the
    vocabulary size.
    """
    if isinstance(n, bool) or int(n) != n or n < 2:
        raise ValueError(f"n must be an integer >= 2 (indices are 1..n-1), got {n!r}")
    h = _resolve(hash_function)
    return [h(w) % (n - 1) + 1 for w in text_to_word_sequence(text, filters=filters, lower=lower, split=split)]


def one_hot(
    text: str,
    n: int,
    filters: str = DEFAULT_FILTERS,
    lower: bool = True,
    split: str = " ",
    hash_function: str | Callable[[str], int] | None = None,
) -> list[int]:
    """Keras's ``one_hot``: despite the name, a list of word indices from :func:`hashing_trick`.

    Keras uses Python's ``hash`` here; seqlight uses the stable md5 hash unless ``hash_function="hash"``.
    """
    return hashing_trick(text, n, hash_function=hash_function, filters=filters, lower=lower, split=split)
