"""IMDB DataModules on the offline data: layout, seeded splits, Keras load_data semantics, bad input."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from seqlight.data.imdb import (
    ImdbDataError,
    ImdbDataModule,
    KerasImdbDataModule,
    keras_imdb_load_data,
    read_acl_imdb,
)
from seqlight.data.imdb_synthetic import make_synthetic_acl_imdb, make_synthetic_glove
from seqlight.text import GloveFormatError, Tokenizer, embedding_matrix, load_glove, pad_sequences


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("imdb")
    make_synthetic_acl_imdb(d / "imdb_synthetic", n_per_class=100)
    return d


def _dm(data_dir, **kw):
    kw.setdefault("synthetic_size", 100)
    return ImdbDataModule(data_dir=str(data_dir), source="synthetic", **kw)


def test_synthetic_layout_is_the_official_one(data_dir):
    root = data_dir / "imdb_synthetic" / "aclImdb"
    for split in ("train", "test"):
        for cls, ratings in (("pos", range(7, 11)), ("neg", range(1, 5))):
            files = sorted((root / split / cls).glob("*.txt"))
            assert len(files) == 100
            assert all(int(f.stem.split("_")[1]) in ratings for f in files)
    texts, labels = read_acl_imdb(root, "train")
    assert labels.tolist() == [0] * 100 + [1] * 100
    # reused, not rewritten, when asked again with the same arguments (a file that exists, whatever its rating)
    review = sorted((root / "train" / "pos").glob("0_*.txt"))[0]
    mtime = review.stat().st_mtime_ns
    make_synthetic_acl_imdb(data_dir / "imdb_synthetic", n_per_class=100)
    assert review.stat().st_mtime_ns == mtime


def test_synthetic_reviews_need_word_order_for_some():
    from seqlight.data.imdb_synthetic import NEGATIVE, POSITIVE

    root = make_synthetic_acl_imdb(Path(__import__("tempfile").mkdtemp()), n_per_class=60, seed=3)
    texts, labels = read_acl_imdb(root, "train")
    t = [s.lower() for s in texts]
    negated_pos = [any(f"not {w}" in s for w in POSITIVE) for s in t]
    negated_neg = [any(f"not {w}" in s for w in NEGATIVE) for s in t]
    assert any(negated_pos) and any(negated_neg)
    # "not great" only in negative reviews, "not awful" only in positive ones
    assert all(y == 0 for y, n in zip(labels, negated_pos) if n)
    assert all(y == 1 for y, n in zip(labels, negated_neg) if n)


def test_properties_are_valid_right_after_construction(tmp_path):
    dm = ImdbDataModule(data_dir=str(tmp_path / "nothing"), maxlen=100, num_words=10000, embedding_dim=50)
    assert (dm.num_words, dm.maxlen, dm.embedding_dim) == (10000, 100, 50)
    k = KerasImdbDataModule(data_dir=str(tmp_path / "nothing"), num_words=5000, maxlen=20)
    assert (k.num_words, k.maxlen) == (5000, 20)
    assert not (tmp_path / "nothing").exists()  # nothing read or written yet


def test_raw_module_is_the_books_listing(data_dir):
    dm = _dm(data_dir, maxlen=30, num_words=50, training_samples=40, validation_samples=100, seed=7)
    dm.setup("fit")
    root = data_dir / "imdb_synthetic" / "aclImdb"
    texts, labels = read_acl_imdb(root, "train")
    tok = Tokenizer(num_words=50)
    tok.fit_on_texts(texts)
    assert dm.tokenizer.word_index == tok.word_index
    data = pad_sequences(tok.texts_to_sequences(texts), maxlen=30)
    idx = np.arange(len(data))
    np.random.RandomState(7).shuffle(idx)
    x, y = dm.train_set.tensors
    np.testing.assert_array_equal(x.numpy(), data[idx[:40]])
    np.testing.assert_array_equal(y.numpy(), labels[idx[:40]])
    np.testing.assert_array_equal(dm.val_set.tensors[0].numpy(), data[idx[40:140]])
    assert dm.embedding_matrix is None
    dm.setup("test")
    test_texts, test_labels = read_acl_imdb(root, "test")
    np.testing.assert_array_equal(
        dm.test_set.tensors[0].numpy(), pad_sequences(tok.texts_to_sequences(test_texts), maxlen=30)
    )
    assert len(next(iter(dm.train_dataloader()))[0]) == 32


def test_seed_changes_the_split_and_clipping_warns(data_dir):
    a, b = _dm(data_dir, seed=1, training_samples=50), _dm(data_dir, seed=2, training_samples=50)
    with pytest.warns(UserWarning, match="validation_samples=10000 but only 150 reviews are left"):
        a.setup("fit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b.setup("fit")
    assert len(a.val_set) == 150
    assert not np.array_equal(a.train_set.tensors[0].numpy(), b.train_set.tensors[0].numpy())
    with pytest.raises(ImdbDataError, match="leaves nothing to validate"):
        _dm(data_dir, training_samples=200).setup("fit")


def test_glove_matrix_is_handed_over(data_dir):
    dm = _dm(data_dir, glove="auto", embedding_dim=16, training_samples=20, validation_samples=20)
    dm.setup("fit")
    path = data_dir / "imdb_synthetic" / "glove.synthetic.16d.txt"
    ref = embedding_matrix(dm.tokenizer.word_index, load_glove(path), 10000)
    np.testing.assert_array_equal(dm.embedding_matrix, ref)
    assert dm.embedding_matrix.shape == (10000, 16)
    assert 0 < dm.coverage.found < dm.coverage.total  # some filler words are left out on purpose
    explicit = _dm(data_dir, glove=str(path), embedding_dim=16, training_samples=20, validation_samples=20)
    explicit.setup("fit")
    np.testing.assert_array_equal(explicit.embedding_matrix, ref)
    with pytest.raises(GloveFormatError, match=r"glove\.synthetic\.16d\.txt, line 1: 16 values for 'the', expected 8 "):
        _dm(data_dir, glove=str(path), embedding_dim=8, training_samples=20, validation_samples=20).setup("fit")


def test_keras_load_data_semantics_match_keras_2_0_8():
    rng = np.random.RandomState(0)
    x_train = [list(rng.randint(1, 30, size=rng.randint(0, 12))) for _ in range(23)]
    x_test = [list(rng.randint(1, 30, size=rng.randint(0, 12))) for _ in range(17)]
    y_train, y_test = rng.randint(0, 2, 23), rng.randint(0, 2, 17)
    (xa, ya), (xb, yb) = keras_imdb_load_data(x_train, y_train, x_test, y_test, num_words=20, skip_top=2, seed=113)
    # Keras 2.0.8, written out: seed / shuffle each array, seed*2 for the test arrays
    ref_x, ref_y = np.array(x_train, dtype=object), np.array(y_train)
    np.random.seed(113)
    np.random.shuffle(ref_x)
    np.random.seed(113)
    np.random.shuffle(ref_y)
    ref_xt, ref_yt = np.array(x_test, dtype=object), np.array(y_test)
    np.random.seed(226)
    np.random.shuffle(ref_xt)
    np.random.seed(226)
    np.random.shuffle(ref_yt)
    expect = [[1] + [w + 3 for w in x] for x in list(ref_x) + list(ref_xt)]
    expect = [[w if 2 <= w < 20 else 2 for w in x] for x in expect]
    assert xa + xb == expect
    assert ya.tolist() + yb.tolist() == ref_y.tolist() + ref_yt.tolist()
    # maxlen drops len >= maxlen and keeps the train/test boundary; oov_char=None drops instead
    (xa, ya), (xb, yb) = keras_imdb_load_data(x_train, y_train, x_test, y_test, maxlen=8, oov_char=None, num_words=10)
    assert all(len(x) < 8 for x in xa + xb) and all(all(w < 10 for w in x) for x in xa + xb)
    assert len(xa) == sum(len(x) + 1 < 8 for x in x_train) and len(xb) == sum(len(x) + 1 < 8 for x in x_test)
    with pytest.raises(ValueError, match="no sequence was kept"):
        keras_imdb_load_data(x_train, y_train, x_test, y_test, maxlen=1)


def test_keras_module_validation_split_and_reverse(data_dir):
    kw = dict(data_dir=str(data_dir), source="synthetic", synthetic_size=100, maxlen=25, num_words=300)
    dm = KerasImdbDataModule(**kw)
    rev = KerasImdbDataModule(reverse=True, **kw)
    dm.setup()
    rev.setup()
    (x_train, y_train), (x_test, _) = dm._arrays
    x_train = x_train.to_lists()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (160, 40, 200)  # the last 20% validate
    np.testing.assert_array_equal(dm.val_set.tensors[0].numpy(), pad_sequences(x_train[160:], maxlen=25))
    np.testing.assert_array_equal(dm.val_set.tensors[1].numpy(), y_train[160:])
    # reversed *before* padding: pre-truncation then keeps the first words
    np.testing.assert_array_equal(
        rev.train_set.tensors[0].numpy(), pad_sequences([x[::-1] for x in x_train[:160]], maxlen=25)
    )
    assert all(x[0] == 1 for x in x_train)  # start_char
    assert dm.raw_word_index is not None and "synthetic" in dm.source_description.lower()


def test_bad_npz_is_refused(tmp_path):
    (tmp_path / "imdb.npz").write_bytes(b"not the official file")
    with pytest.raises(ImdbDataError, match="sha256"):
        KerasImdbDataModule(data_dir=str(tmp_path), source="real", download=False).setup()


def test_missing_data_real_is_an_error_and_auto_falls_back(tmp_path):
    with pytest.raises(ImdbDataError, match="aclImdb"):
        ImdbDataModule(data_dir=str(tmp_path / "empty"), source="real", download=False).prepare_data()
    dm = ImdbDataModule(data_dir=str(tmp_path / "empty"), source="auto", download=False, synthetic_size=20,
                        training_samples=10, validation_samples=10)  # fmt: skip
    with pytest.warns(UserWarning, match="source='synthetic'|synthetic stand-in"):
        dm.prepare_data()
    assert dm.is_synthetic


def _acl(tmp_path) -> Path:
    root = tmp_path / "aclImdb"
    for s in ("train", "test"):
        for c in ("pos", "neg"):
            (root / s / c).mkdir(parents=True)
            (root / s / c / "0_1.txt").write_text(f"{c} review")
    return root


def test_partial_folders_non_utf8_and_empty_reviews(tmp_path):
    root = _acl(tmp_path)
    (root / "train" / "pos" / "1_9.txt").write_bytes(b"bad \xff\xfe bytes")
    with pytest.raises(ImdbDataError, match=r"1_9.txt: bytes that are not UTF-8 at byte 4"):
        read_acl_imdb(root, "train")
    texts, _ = read_acl_imdb(root, "train", encoding_errors="replace")
    assert "\ufffd" in texts[-1]
    (root / "train" / "pos" / "1_9.txt").write_text("")  # an empty review is kept
    texts, labels = read_acl_imdb(root, "train")
    assert texts[-1] == "" and labels.tolist() == [0, 1, 1]
    for f in (root / "train" / "neg").iterdir():
        f.unlink()
    with pytest.raises(ImdbDataError, match=r"train/neg has no .txt reviews"):
        read_acl_imdb(root, "train")
    (root / "train" / "neg").rmdir()
    with pytest.raises(ImdbDataError, match=r"train/neg is missing"):
        read_acl_imdb(root, "train")


def test_arguments_are_checked(tmp_path):
    for kw in (
        {"num_words": 0},
        {"max_words": 0},
        {"maxlen": 0},
        {"training_samples": 0},
        {"source": "web"},
        {"batch_size": 0},
    ):
        with pytest.raises(ValueError):
            ImdbDataModule(data_dir=str(tmp_path), **kw)
    for kw in ({"num_words": 0}, {"validation_split": 1.0}, {"format": "csv"}):
        with pytest.raises(ValueError):
            KerasImdbDataModule(data_dir=str(tmp_path), **kw)


def test_synthetic_glove_file_is_glove_format(tmp_path):
    p = make_synthetic_glove(tmp_path, dim=12)
    v = load_glove(p, dim=12)
    from seqlight.data.imdb_synthetic import NEGATIVE, POSITIVE

    pos = np.mean([v[w] for w in POSITIVE], 0)
    neg = np.mean([v[w] for w in NEGATIVE], 0)
    assert np.linalg.norm(pos - neg) > 2.0  # the sentiment direction the pretrained model can use


def test_downloads_are_pinned_verified_and_unpacked(tmp_path, monkeypatch):
    """The official URLs and digests go to download.fetch; what it returns is unpacked (tarball, zip member)."""
    import tarfile
    import zipfile

    import seqlight.data.imdb as imdb
    import seqlight.data.imdb_download as imdb_download

    calls = []
    src = tmp_path / "src"
    make_synthetic_acl_imdb(src, n_per_class=3)
    tarball = tmp_path / "aclImdb_v1.tar.gz"
    with tarfile.open(tarball, "w:gz") as tf:
        tf.add(src / "aclImdb", arcname="aclImdb")
    glove_zip = tmp_path / "glove.6B.zip"
    with zipfile.ZipFile(glove_zip, "w") as zf:
        zf.writestr("glove.6B.16d.txt", (make_synthetic_glove(tmp_path / "g", dim=16)).read_text())

    def fake_fetch(url, dest, checksum=None, timeout=30, **kw):
        calls.append((url, Path(dest).name, checksum))
        if url == imdb.KERAS_IMDB_URL:
            raise imdb.DownloadError("offline")
        return tarball if url == imdb.ACL_IMDB_URL else glove_zip

    monkeypatch.setattr(imdb_download, "fetch", fake_fetch)
    data = tmp_path / "data"
    dm = ImdbDataModule(data_dir=str(data), source="real", glove="auto", embedding_dim=16, training_samples=2,
                        validation_samples=2)  # fmt: skip
    dm.setup("fit")
    assert calls == [
        (
            "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
            "aclImdb_v1.tar.gz",
            "sha256:" + imdb.ACL_IMDB_SHA256,
        ),
        ("https://nlp.stanford.edu/data/glove.6B.zip", "glove.6B.zip", "md5:056ea991adb4740ac6bf1b6d9b50408b"),
    ]
    assert (data / "aclImdb" / "train" / "pos").is_dir() and (data / "glove.6B.16d.txt").is_file()
    assert dm.embedding_matrix.shape == (10000, 16) and "downloaded" in dm.source_description
    k = KerasImdbDataModule(data_dir=str(tmp_path / "data2"), source="real", maxlen=10)
    k.prepare_data()
    assert calls[2] == ("https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb.npz", "imdb.npz",
                        "sha256:69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f")  # fmt: skip
    assert "indexed by seqlight's Tokenizer" in k.source_description  # no imdb.npz: built from the raw reviews
