"""The one-hot encoding listings of *Deep Learning with Python* 6.1.1 (listings 6.1, 6.2 and 6.4) as functions.

They return the book's 3-D arrays ``(samples, max_length, index_size)`` of 0/1 floats. Listing 6.2 in the
book builds ``dict(zip(range(1, 101), string.printable))`` (index -> character) and then looks characters up
in it, which finds nothing and, through ``results[i, j, None] = 1``, sets *every* entry of the row; here the
table maps character -> index as the text intends. Listing 6.4 uses Python's salted ``hash``; here the
stable md5 hash of :mod:`seqlight.text.hashing` is the default.

    >>> results, token_index = word_level_one_hot(["The cat sat on the mat.", "The dog ate my homework."])
    >>> results.shape, token_index["The"]
    ((2, 10, 11), 1)
    >>> character_level_one_hot(["The cat sat on the mat."]).shape
    (1, 50, 101)
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence

import numpy as np

from seqlight.text.hashing import _resolve

__all__ = ["word_level_one_hot", "character_level_one_hot", "hashed_word_one_hot"]


def word_level_one_hot(samples: Sequence[str], max_length: int = 10) -> tuple[np.ndarray, dict[str, int]]:
    """Listing 6.1: index the whitespace-separated tokens from 1 in order of appearance (no lower-casing,
    punctuation kept) and one-hot the first ``max_length`` of each sample.

    Returns ``(results, token_index)``, ``results.shape == (len(samples), max_length, max index + 1)``.
    """
    token_index: dict[str, int] = {}
    for sample in samples:
        for word in sample.split():
            if word not in token_index:
                token_index[word] = len(token_index) + 1
    results = np.zeros((len(samples), max_length, max(token_index.values(), default=0) + 1))
    for i, sample in enumerate(samples):
        for j, word in enumerate(sample.split()[:max_length]):
            results[i, j, token_index[word]] = 1.0
    return results, token_index


def character_level_one_hot(
    samples: Sequence[str], max_length: int = 50, characters: str = string.printable
) -> np.ndarray:
    """Listing 6.2: one-hot the first ``max_length`` characters over ``string.printable`` (indices 1..100).

    Characters outside ``characters`` are left as all-zero rows.
    """
    token_index = {c: i for i, c in enumerate(characters, 1)}
    results = np.zeros((len(samples), max_length, len(characters) + 1))
    for i, sample in enumerate(samples):
        for j, character in enumerate(sample[:max_length]):
            index = token_index.get(character)
            if index is not None:
                results[i, j, index] = 1.0
    return results


def hashed_word_one_hot(
    samples: Sequence[str],
    dimensionality: int = 1000,
    max_length: int = 10,
    hash_function: str | Callable[[str], int] | None = None,
) -> np.ndarray:
    """Listing 6.4 (one-hot hashing trick): word ``w`` goes to ``abs(hash(w)) % dimensionality``.

    ``hash_function``: ``None``/``"md5"`` (stable, default), ``"hash"`` (the book's, salted per process) or a
    callable.
    """
    h = _resolve(hash_function)
    results = np.zeros((len(samples), max_length, dimensionality))
    for i, sample in enumerate(samples):
        for j, word in enumerate(sample.split()[:max_length]):
            results[i, j, abs(h(word)) % dimensionality] = 1.0
    return results
