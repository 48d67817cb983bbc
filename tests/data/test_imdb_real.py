"""The IMDB DataModules on the real reviews (../shared/datasets; skipped where absent): a cold start builds
the corpus cache, a warm one reads it without tokenizing, and both equal the book's pipeline written with
the Tokenizer and lists (the Tokenizer itself is checked against keras-preprocessing on these reviews in
tests/text/test_text_tokenizer.py)."""

from __future__ import annotations

import numpy as np
import pytest

from seqlight.data.imdb import ImdbDataModule, KerasImdbDataModule, keras_imdb_load_data, read_acl_imdb
from seqlight.text import Tokenizer, pad_sequences

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_dir(tmp_path_factory, shared_dataset):
    tarball = shared_dataset("aclImdb", "aclImdb_v1_labelled.tar.gz")  # skips where absent
    d = tmp_path_factory.mktemp("real_imdb")
    (d / tarball.name).symlink_to(tarball)
    return d


def test_real_reviews_cold_and_warm_start_equal_the_books_pipeline(real_dir, monkeypatch):
    kw = dict(data_dir=str(real_dir), source="real", download=False)
    cold = KerasImdbDataModule(num_words=10000, maxlen=500, **kw)
    cold.setup()
    assert cold.cache_hit is False and cold.data_source == "real"
    fits = []
    monkeypatch.setattr(Tokenizer, "fit_on_texts", lambda self, texts: fits.append(1))
    warm = KerasImdbDataModule(num_words=10000, maxlen=500, **kw)
    warm.setup()
    raw = ImdbDataModule(num_words=10000, maxlen=100, **kw)  # the other module shares the entry
    raw.setup()
    assert warm.cache_hit is True and raw.cache_hit is True and fits == []
    monkeypatch.undo()
    for a, b in ((cold.train_set, warm.train_set), (cold.val_set, warm.val_set), (cold.test_set, warm.test_set)):
        for x, y in zip(a.tensors, b.tensors):
            assert x.equal(y)
    assert cold.preprocessing.to_dict() == warm.preprocessing.to_dict()

    # the book's pipeline, with lists: Tokenizer on the training texts, load_data, pad_sequences
    root = real_dir / "aclImdb"
    train, y_train = read_acl_imdb(root, "train")
    test, y_test = read_acl_imdb(root, "test")
    tok = Tokenizer()
    tok.fit_on_texts(train)
    assert warm.raw_word_index == tok.word_index and len(tok.word_index) == 88582
    seqs_train, seqs_test = tok.texts_to_sequences(train), tok.texts_to_sequences(test)
    (xa, ya), (xb, yb) = keras_imdb_load_data(seqs_train, y_train, seqs_test, y_test, num_words=10000)
    np.testing.assert_array_equal(warm.train_set.tensors[0].numpy(), pad_sequences(xa[:20000], maxlen=500))
    np.testing.assert_array_equal(warm.val_set.tensors[1].numpy(), ya[20000:])
    np.testing.assert_array_equal(warm.test_set.tensors[0].numpy(), pad_sequences(xb, maxlen=500))
    del xa, xb
    tok.num_words = 10000  # listing 6.9: Tokenizer(num_words=max_words), pad to 100, seeded shuffle
    data = pad_sequences(tok.texts_to_sequences(train), maxlen=100)
    idx = np.arange(len(data))
    np.random.RandomState(1337).shuffle(idx)
    np.testing.assert_array_equal(raw.train_set.tensors[0].numpy(), data[idx[:200]])
    np.testing.assert_array_equal(raw.val_set.tensors[0].numpy(), data[idx[200:10200]])
    np.testing.assert_array_equal(
        raw.test_set.tensors[0].numpy(), pad_sequences(tok.texts_to_sequences(test), maxlen=100)
    )
    assert raw.tokenizer.word_index == tok.word_index
