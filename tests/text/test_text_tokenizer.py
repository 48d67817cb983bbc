"""Tokenizer parity with keras-preprocessing 1.1.2 (the test oracle), on crafted corpora and the real reviews."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

kp_text = pytest.importorskip("keras_preprocessing.text")

from seqlight.text import Tokenizer, text_to_word_sequence, tokenizer_from_json  # noqa: E402

ACL_TARBALL = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "aclImdb" / "aclImdb_v1_labelled.tar.gz"

CORPUS = [
    "The cat sat on the mat.",
    "The dog ate my homework.",
    "",
    "   ",
    "Don't STOP me now!!! I'm having such a good time...\tI'm having a ball\n",
    "Caf\u00e9 na\u00efve \u00c9COLE stra\u00dfe \u0130stanbul "
    "\u039f\u0394\u039f\u03a3 \u03a3\u039f\u03a6\u0399\u0391\u03a3",
    "windows\r\nline\rendings and\xa0non-breaking\u2009spaces, <br /><br />html tags",
    "numbers 1,000.5 and e-mail a@b.com (parens) [brackets] {braces} ~tilde~ `tick` |pipe| ^caret^",
    "emoji \U0001f600 and \u00bfqu\u00e9? \u00a1s\u00ed! \u201cquotes\u201d \u2014 dash",
    "the the the cat cat dog",
    "mat mat mat mat homework",
]


def _state(t):
    return (
        dict(t.word_index),
        list(t.word_counts.items()),  # order matters: first appearance
        dict(t.word_docs),
        dict(t.index_docs),
        t.document_count,
    )


def _pair(**kw):
    return kp_text.Tokenizer(**kw), Tokenizer(**kw)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"num_words": 5},
        {"num_words": 1},
        {"oov_token": "<OOV>"},
        {"oov_token": "<OOV>", "num_words": 6},
        {"oov_token": "the", "num_words": 4},  # an OOV token that is also a word: Keras's index collision kept
        {"lower": False},
        {"char_level": True, "num_words": 20},
        {"filters": "", "split": " "},
        {"filters": '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n\u2014\u201c\u201d', "split": " "},  # non-ASCII filters
        {"split": "a"},
        {"split": "\u00e9"},
    ],
)
def test_matches_keras_on_crafted_corpus(kw):
    k, s = _pair(**kw)
    k.fit_on_texts(CORPUS)
    s.fit_on_texts(CORPUS)
    assert _state(s) == _state(k)
    assert s.texts_to_sequences(CORPUS) == k.texts_to_sequences(CORPUS)
    seqs = k.texts_to_sequences(CORPUS) + [[0, 1, 2, 3, 999, 10**6]]
    assert s.sequences_to_texts(seqs) == k.sequences_to_texts(seqs)
    for mode in ("binary", "count", "freq", "tfidf"):
        np.testing.assert_allclose(s.texts_to_matrix(CORPUS, mode), k.texts_to_matrix(CORPUS, mode), rtol=0, atol=1e-12)


def test_repeated_fits_pretokenized_texts_and_sequences_match_keras():
    k, s = _pair(num_words=8, oov_token="?")
    for t in (k, s):
        t.fit_on_texts(CORPUS[:5])
        t.fit_on_texts(iter(CORPUS[5:]))  # a generator, as Keras accepts
        t.fit_on_texts([["The", "Cat"], ["dog", "NEW", "new"]])  # lists of tokens are taken as tokenized
        t.fit_on_sequences([[1, 2, 2, 3], [4, 40]])
    assert _state(s) == _state(k)
    texts = CORPUS + [["Cat", "unknown", "the"]]
    assert s.texts_to_sequences(texts) == k.texts_to_sequences(texts)
    np.testing.assert_allclose(s.texts_to_matrix(texts, "tfidf"), k.texts_to_matrix(texts, "tfidf"), atol=1e-12)


def test_texts_with_nul_characters_take_the_per_text_path_and_still_match():
    texts = ["a\x00b c", "c\x00 a a", "b"]
    k, s = _pair()
    k.fit_on_texts(texts)
    s.fit_on_texts(texts)
    assert _state(s) == _state(k)
    assert s.texts_to_sequences(texts) == k.texts_to_sequences(texts)


def test_book_listing_6_3():
    t = Tokenizer(num_words=1000)
    samples = ["The cat sat on the mat.", "The dog ate my homework."]
    t.fit_on_texts(samples)
    assert t.word_index == {"the": 1, "cat": 2, "sat": 3, "on": 4, "mat": 5, "dog": 6, "ate": 7, "my": 8, "homework": 9}
    assert t.texts_to_matrix(samples, mode="binary").shape == (2, 1000)
    assert text_to_word_sequence("The cat sat on the mat.") == kp_text.text_to_word_sequence("The cat sat on the mat.")


def test_json_round_trips_with_keras():
    s = Tokenizer(num_words=7, oov_token="<unk>")
    s.fit_on_texts(CORPUS)
    k = kp_text.tokenizer_from_json(s.to_json())
    assert k.texts_to_sequences(CORPUS) == s.texts_to_sequences(CORPUS)
    k2 = kp_text.Tokenizer(num_words=7, oov_token="<unk>")
    k2.fit_on_texts(CORPUS)
    s2 = tokenizer_from_json(k2.to_json())
    assert _state(s2) == _state(k2)
    np.testing.assert_allclose(s2.texts_to_matrix(CORPUS, "tfidf"), k2.texts_to_matrix(CORPUS, "tfidf"))


def test_save_and_load(tmp_path):
    s = Tokenizer(num_words=7)
    s.fit_on_texts(CORPUS)
    path = s.save(tmp_path / "sub" / "tok.json")
    assert json.loads(path.read_text())["class_name"] == "Tokenizer"
    assert list(tmp_path.glob("sub/*.part")) == []
    back = Tokenizer.load(path)
    assert _state(back) == _state(s)
    assert back.texts_to_sequences(CORPUS) == s.texts_to_sequences(CORPUS)
    (tmp_path / "bad.json").write_text('{"config": {}}')
    with pytest.raises(ValueError, match="bad.json"):
        Tokenizer.load(tmp_path / "bad.json")


@pytest.mark.parametrize("n", [0, -1, 2.5, True])
def test_num_words_below_one_is_an_error(n):
    with pytest.raises(ValueError, match="num_words"):
        Tokenizer(num_words=n)


@pytest.mark.parametrize("bad", [3, None, b"bytes", 1.5])
def test_texts_that_are_not_strings_are_named(bad):
    t = Tokenizer()
    with pytest.raises(TypeError, match="text 1"):
        t.fit_on_texts(["fine", bad])
    t.fit_on_texts(["fine"])
    with pytest.raises(TypeError, match="text 1"):
        t.texts_to_sequences(["fine", bad])


def test_a_single_string_is_refused():
    with pytest.raises(TypeError, match="single string"):
        Tokenizer().fit_on_texts("The cat sat on the mat.")


def test_matrix_errors_match_keras():
    with pytest.raises(ValueError, match="Specify a dimension"):
        Tokenizer().sequences_to_matrix([[1]])
    t = Tokenizer(num_words=5)
    with pytest.raises(ValueError, match="tfidf"):
        t.sequences_to_matrix([[1]], mode="tfidf")
    with pytest.raises(ValueError, match="Unknown vectorization mode"):
        t.sequences_to_matrix([[1]], mode="bogus")


def _real_train_texts():
    if not ACL_TARBALL.is_file():
        pytest.skip(f"real aclImdb not at {ACL_TARBALL}")
    texts = {}
    with tarfile.open(ACL_TARBALL) as tf:
        for m in tf:
            parts = m.name.split("/")
            if m.isfile() and len(parts) == 4 and parts[1] == "train" and parts[2] in ("neg", "pos"):
                texts[(parts[2], parts[3])] = tf.extractfile(m).read().decode("utf-8")
    return [texts[k] for k in sorted(texts)]  # neg then pos, by file name


@pytest.fixture(scope="module")
def real_texts():
    return _real_train_texts()


def test_real_imdb_training_reviews_match_keras(real_texts):
    assert len(real_texts) == 25000
    k, s = _pair(num_words=10000)
    k.fit_on_texts(real_texts)
    s.fit_on_texts(real_texts)
    assert s.word_index == k.word_index
    assert list(s.word_counts.items()) == list(k.word_counts.items())
    assert dict(s.word_docs) == dict(k.word_docs)
    assert s.texts_to_sequences(real_texts) == k.texts_to_sequences(real_texts)
    sample = real_texts[::125]  # 200 reviews, both classes
    for mode in ("binary", "count", "freq", "tfidf"):
        np.testing.assert_allclose(s.texts_to_matrix(sample, mode), k.texts_to_matrix(sample, mode), rtol=0, atol=1e-6)


def test_sequences_of_the_fitted_texts_and_of_other_texts_agree():
    # texts_to_sequences reuses the token ids of the texts it was just fitted on (same objects);
    # equal texts that are other objects, a mutated list, and a changed num_words must give the same answers
    texts = [t * 3 for t in CORPUS] * 700  # > one chunk
    k, s = _pair(num_words=9)
    k.fit_on_texts(texts)
    s.fit_on_texts(texts)
    expected = k.texts_to_sequences(texts)
    assert s.texts_to_sequences(texts) == expected
    assert s.texts_to_sequences([(t + ".")[:-1] for t in texts]) == expected
    texts[3] = "homework homework cat"
    assert s.texts_to_sequences(texts) == k.texts_to_sequences(texts)
    k.num_words = s.num_words = 4
    assert s.texts_to_sequences(texts) == k.texts_to_sequences(texts)
    s.oov_token = k.oov_token = "cat"
    assert s.texts_to_sequences(texts) == k.texts_to_sequences(texts)


MUTATIONS = {
    "reassign an index": lambda wi: wi.__setitem__("cat", 1),  # same length: the old cache missed it
    "move a word past num_words": lambda wi: wi.__setitem__("the", 50),
    "add a word": lambda wi: wi.__setitem__("zebra", 2),
    "delete a word": lambda wi: wi.__delitem__("mat"),
    "pop": lambda wi: wi.pop("dog"),
    "update": lambda wi: wi.update({"on": 3, "sat": 60}),
    "in-place or": lambda wi: wi.__ior__({"homework": 1}),
    "setdefault": lambda wi: wi.setdefault("zebra", 4),
    "popitem": lambda wi: wi.popitem(),
    "clear": lambda wi: wi.clear(),
}


@pytest.mark.parametrize("kw", [{"num_words": 5}, {"num_words": 6, "oov_token": "<OOV>"}, {}])
@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_word_index_edits_are_honoured_like_keras(kw, mutation):
    """texts_to_sequences reads the current word_index, as Keras does and the docstring says; the num_words
    lookup it keeps must never go stale (it was keyed on id(word_index) and its length)."""
    new_texts = ["the cat sat on the mat", "zebra homework, the dog!", "on on sat sat"]
    for texts in (new_texts, CORPUS):  # other texts (tokenized again) and the very texts fitted (ids reused)
        k, s = _pair(**kw)
        k.fit_on_texts(CORPUS)
        s.fit_on_texts(CORPUS)
        assert s.texts_to_sequences(new_texts) == k.texts_to_sequences(new_texts)  # the lookup is now built
        MUTATIONS[mutation](k.word_index)
        MUTATIONS[mutation](s.word_index)
        assert s.word_index == k.word_index
        want = k.texts_to_sequences(texts)
        if "oov_token" in kw and kw["oov_token"] not in k.word_index:  # Keras then appends None for unknown words
            want = [[i for i in seq if i is not None] for seq in want]
        assert s.texts_to_sequences(texts) == want, mutation


def test_word_index_assigned_copied_or_pickled_stays_live():
    import copy
    import pickle

    k, s = _pair(num_words=4)
    k.fit_on_texts(CORPUS)
    s.fit_on_texts(CORPUS)
    texts = ["the cat sat on the mat"]
    s.texts_to_sequences(texts)
    k.word_index = dict(k.word_index, sat=2, cat=3)
    s.word_index = dict(s.word_index, sat=2, cat=3)  # a plain dict assigned: taken over, and tracked
    before = k.texts_to_sequences(texts)
    assert s.texts_to_sequences(texts) == before == [[1, 3, 2, 1, 2]]  # "on" is beyond num_words
    k.word_index["on"] = 1
    after = k.texts_to_sequences(texts)
    for other in (copy.deepcopy(s), pickle.loads(pickle.dumps(s))):
        other.texts_to_sequences(texts)
        other.word_index["on"] = 1
        assert other.texts_to_sequences(texts) == after == [[1, 3, 2, 1, 1, 2]]
    assert s.texts_to_sequences(texts) == before  # the copies' edits do not reach the original
    assert json.loads(s.to_json())["config"]["word_index"] == json.dumps(s.word_index)
