"""hashing_trick / one_hot against keras-preprocessing, the stable hash across processes, the 6.1.1 listings."""

from __future__ import annotations

import os
import string
import subprocess
import sys

import numpy as np
import pytest

kp_text = pytest.importorskip("keras_preprocessing.text")

from seqlight.text import (  # noqa: E402
    character_level_one_hot,
    hashed_word_one_hot,
    hashing_trick,
    one_hot,
    word_level_one_hot,
)

TEXTS = ["The cat sat on the mat.", "The dog ate my homework.", "Caf\u00e9 \u00fcber na\u00efve!", ""]


@pytest.mark.parametrize("n", [2, 7, 1000, 10007])
def test_default_is_keras_md5(n):
    for t in TEXTS:
        assert hashing_trick(t, n) == kp_text.hashing_trick(t, n, hash_function="md5")
        assert one_hot(t, n) == kp_text.hashing_trick(t, n, hash_function="md5")
        assert all(1 <= i < n for i in hashing_trick(t, n))


def test_python_hash_option_is_kerass_default():
    for t in TEXTS:
        assert hashing_trick(t, 1000, hash_function="hash") == kp_text.hashing_trick(t, 1000)
        assert one_hot(t, 1000, hash_function="hash") == kp_text.one_hot(t, 1000)
        assert hashing_trick(t, 50, hash_function=len) == kp_text.hashing_trick(t, 50, hash_function=len)


def test_stable_default_is_the_same_in_every_process():
    code = "from seqlight.text import one_hot; print(one_hot('The cat sat on the mat, said the dog.', 1000))"
    outs = set()
    salted = set()
    for seed in ("1", "2", "3"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        outs.add(
            subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
        )
        code_h = code.replace("1000)", "1000, hash_function='hash')")
        salted.add(
            subprocess.run([sys.executable, "-c", code_h], env=env, capture_output=True, text=True, check=True).stdout
        )
    assert len(outs) == 1
    assert len(salted) > 1  # why the default is not Python's hash


def test_bad_arguments():
    with pytest.raises(ValueError, match="n must be"):
        hashing_trick("a b", 1)
    with pytest.raises(ValueError, match="hash_function"):
        hashing_trick("a b", 10, hash_function="sha1")
    with pytest.raises(TypeError):
        hashing_trick(b"bytes", 10)


def test_listing_6_1_word_level_one_hot():
    samples = ["The cat sat on the mat.", "The dog ate my homework."]
    results, token_index = word_level_one_hot(samples)
    assert results.shape == (2, 10, 11)  # book: max(token_index.values()) + 1
    assert token_index == {w: i for i, w in enumerate("The cat sat on the mat. dog ate my homework.".split(), 1)}
    assert results[0, 0, token_index["The"]] == 1 and results[1, 0, token_index["The"]] == 1
    np.testing.assert_array_equal(results[0, :6].sum(-1), 1)
    np.testing.assert_array_equal(results[0, 6:].sum(), 0)


def test_listing_6_2_character_level_one_hot():
    samples = ["The cat sat on the mat.", "The dog ate my homework."]
    results = character_level_one_hot(samples)
    assert results.shape == (2, 50, 101)
    for i, s in enumerate(samples):
        for j, c in enumerate(s):
            assert results[i, j].sum() == 1 and results[i, j, string.printable.index(c) + 1] == 1
        assert results[i, len(s) :].sum() == 0
    assert character_level_one_hot(["\u00e9"])[0, 0].sum() == 0  # not printable: an all-zero row


def test_listing_6_4_hashed_one_hot():
    samples = ["The cat sat on the mat.", "The dog ate my homework."]
    r = hashed_word_one_hot(samples)
    assert r.shape == (2, 10, 1000)
    np.testing.assert_array_equal(r[0, :6].sum(-1), 1)
    np.testing.assert_array_equal(r[1, :5].sum(-1), 1)
    assert r[0, 6:].sum() == 0 and r[1, 5:].sum() == 0
    assert r[0, 0].argmax() == r[1, 0].argmax()  # "The" hashes to the same column in both samples
