"""pad_sequences parity with keras-preprocessing 1.1.2 (random and edge cases) and its documented differences."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

if not hasattr(np, "unicode_"):  # keras-preprocessing predates NumPy 2
    np.unicode_ = np.str_
kp_seq = pytest.importorskip("keras_preprocessing.sequence")

from seqlight.text import pad_sequences  # noqa: E402

PAIRS = list(itertools.product(("pre", "post"), ("pre", "post")))


def _random_sequences(rng, n, max_len, empty_share=0.2):
    return [
        list(rng.integers(1, 1000, size=0 if rng.random() < empty_share else rng.integers(1, max_len)))
        for _ in range(n)
    ]


@pytest.mark.parametrize("padding,truncating", PAIRS)
@pytest.mark.parametrize("maxlen", [None, 1, 3, 7, 50])
def test_random_sequences_match_keras(padding, truncating, maxlen):
    rng = np.random.default_rng(abs(hash((padding, truncating, maxlen))) % 2**32)
    for _ in range(5):
        seqs = _random_sequences(rng, rng.integers(1, 40), 12)
        if not any(seqs):
            seqs[0] = [5]
        ours = pad_sequences(seqs, maxlen=maxlen, padding=padding, truncating=truncating)
        ref = kp_seq.pad_sequences(seqs, maxlen=maxlen, padding=padding, truncating=truncating)
        assert ours.dtype == ref.dtype and ours.shape == ref.shape
        np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("padding,truncating", PAIRS)
def test_edge_cases_match_keras(padding, truncating):
    cases = [
        ([[], [], []], None),  # only empty sequences: width 0
        ([[], [1, 2], []], None),
        ([[], [1, 2], []], 4),
        ([[1, 2, 3]], 3),  # exactly maxlen
        ([[1, 2, 3]], 2),
        ([np.array([1, 2, 3]), (4, 5)], None),  # arrays and tuples
        ([[1.7, -2.2], [3]], None),  # floats cast to int32 as Keras does
    ]
    for seqs, maxlen in cases:
        ours = pad_sequences(seqs, maxlen=maxlen, padding=padding, truncating=truncating)
        ref = kp_seq.pad_sequences(seqs, maxlen=maxlen, padding=padding, truncating=truncating)
        assert ours.shape == ref.shape, (seqs, maxlen)
        np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("padding", ["pre", "post"])
def test_maxlen_zero(padding):
    seqs = [[1, 2], [], [3]]
    ref = kp_seq.pad_sequences(seqs, maxlen=0, padding=padding, truncating="post")
    np.testing.assert_array_equal(pad_sequences(seqs, maxlen=0, padding=padding, truncating="post"), ref)
    # documented difference: Keras fails for truncating='pre' (s[-0:] is the whole sequence); we give (n, 0)
    with pytest.raises(ValueError):
        kp_seq.pad_sequences(seqs, maxlen=0, padding=padding, truncating="pre")
    assert pad_sequences(seqs, maxlen=0, padding=padding, truncating="pre").shape == (3, 0)


def test_dtype_value_and_item_shape_options_match_keras():
    seqs = [[1, 2, 3], [4]]
    for kw in (
        {"dtype": "float32", "value": -1.5},
        {"dtype": "int64", "value": 7},
        {"dtype": "float64", "value": np.nan},
    ):
        np.testing.assert_array_equal(pad_sequences(seqs, maxlen=4, **kw), kp_seq.pad_sequences(seqs, maxlen=4, **kw))
    words = [["a", "b"], ["c"]]
    for kw in ({"dtype": object, "value": "<pad>"}, {"dtype": "<U5", "value": "-"}):
        np.testing.assert_array_equal(pad_sequences(words, maxlen=3, **kw), kp_seq.pad_sequences(words, maxlen=3, **kw))
    vectors = [np.ones((3, 2)), np.full((1, 2), 5.0)]
    np.testing.assert_array_equal(
        pad_sequences(vectors, maxlen=2, dtype="float32"), kp_seq.pad_sequences(vectors, maxlen=2, dtype="float32")
    )


def test_errors():
    with pytest.raises(ValueError, match="dtype=object"):
        pad_sequences([["a"]], value="x")
    with pytest.raises(ValueError, match="non-iterable at position 1"):
        pad_sequences([[1], 5])
    with pytest.raises(ValueError, match="Padding type"):
        pad_sequences([[]], padding="middle")  # Keras only notices with a non-empty sequence
    with pytest.raises(ValueError, match="Truncating type"):
        pad_sequences([[1]], truncating="both")
    with pytest.raises(ValueError, match="maxlen"):
        pad_sequences([[1]], maxlen=-1)
    with pytest.raises(ValueError, match="different from expected shape"):
        pad_sequences([np.ones((2, 3)), np.ones((2, 4))], dtype="float32")


def test_empty_list_of_sequences():
    # documented difference: Keras fails on np.max([])
    assert pad_sequences([]).shape == (0, 0)
    assert pad_sequences([], maxlen=5).shape == (0, 5)


def test_book_usage_keeps_the_last_words():
    x = pad_sequences([list(range(1, 1001))], maxlen=500)
    assert x.shape == (1, 500) and x[0, 0] == 501 and x[0, -1] == 1000
