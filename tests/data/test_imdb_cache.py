"""The tokenized-corpus cache of the IMDB DataModules, the source hyperparameter, and num_words/max_words.

A cache hit is recognised by counting the calls that tokenize (``Tokenizer.fit_on_texts``) and read review
texts (``read_acl_imdb``), never by timing.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import seqlight.data.imdb_keras as imdb_keras
from seqlight.data.imdb import ImdbDataError, ImdbDataModule, KerasImdbDataModule, keras_imdb_load_data, read_acl_imdb
from seqlight.data.imdb_cache import MAX_ENTRIES, cache_dir
from seqlight.data.imdb_synthetic import make_synthetic_acl_imdb
from seqlight.text import Tokenizer, pad_sequences


@pytest.fixture
def data_dir(tmp_path) -> Path:
    d = tmp_path / "data"
    make_synthetic_acl_imdb(d / "imdb_synthetic", n_per_class=60)
    return d


@pytest.fixture
def calls(monkeypatch):
    """Counts of the tokenizing and reading calls made since the test began."""
    counts = {"fit": 0, "read": 0}
    fit, read = Tokenizer.fit_on_texts, imdb_keras.read_acl_imdb

    def counting_fit(self, texts):
        counts["fit"] += 1
        return fit(self, texts)

    def counting_read(*a, **kw):
        counts["read"] += 1
        return read(*a, **kw)

    monkeypatch.setattr(Tokenizer, "fit_on_texts", counting_fit)
    monkeypatch.setattr(imdb_keras, "read_acl_imdb", counting_read)
    return counts


def _keras(data_dir, **kw):
    kw = {"source": "synthetic", "synthetic_size": 60, "maxlen": 40, "num_words": 200, **kw}
    return KerasImdbDataModule(data_dir=str(data_dir), **kw)


def _raw(data_dir, **kw):
    kw = {"source": "synthetic", "synthetic_size": 60, "maxlen": 30, "num_words": 120, "training_samples": 50,
          "validation_samples": 40, **kw}  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # validation_samples clipped on the small set
        dm = ImdbDataModule(data_dir=str(data_dir), **kw)
        dm.setup()
    return dm


def _data(dm):
    """Everything a DataModule hands on: the three sets and the preprocessing kept in checkpoints."""
    dm.setup()
    sets = [t.numpy() for ds in (dm.train_set, dm.val_set, dm.test_set) for t in ds.tensors]
    return sets, dm.preprocessing.to_dict()


def _assert_same(a, b):
    (sets_a, pre_a), (sets_b, pre_b) = a, b
    assert len(sets_a) == len(sets_b)
    for x, y in zip(sets_a, sets_b):
        np.testing.assert_array_equal(x, y)
    assert pre_a == pre_b


def _entries() -> list[Path]:
    return sorted(cache_dir().glob("*.npz"))


def test_second_start_reads_the_cache_and_does_not_tokenize(data_dir, calls):
    first = _keras(data_dir)
    first_data = _data(first)
    assert first.cache_hit is False and calls == {"fit": 1, "read": 2} and len(_entries()) == 1
    second = _keras(data_dir)
    second_data = _data(second)
    assert second.cache_hit is True and calls == {"fit": 1, "read": 2}  # no review was read again
    _assert_same(first_data, second_data)
    # the raw-text module shares the entry (same files, same tokenizer settings) and restores the Tokenizer
    raw = _raw(data_dir)
    assert raw.cache_hit is True and calls["fit"] == 1 and len(_entries()) == 1
    texts, _ = read_acl_imdb(data_dir / "imdb_synthetic" / "aclImdb", "train")
    ref = Tokenizer(num_words=120)
    ref.fit_on_texts(texts)
    assert raw.tokenizer.word_index == ref.word_index and raw.tokenizer.num_words == 120
    assert raw.tokenizer.texts_to_sequences(texts[:5]) == ref.texts_to_sequences(texts[:5])


@pytest.mark.parametrize("make", [_keras, _raw], ids=["KerasImdbDataModule", "ImdbDataModule"])
def test_data_are_equal_with_and_without_the_cache(data_dir, make, tmp_path):
    uncached = make(data_dir, cache=False)
    data = _data(uncached)
    assert uncached.cache_hit is False and not cache_dir().exists()  # cache=False writes nothing
    miss = make(data_dir)
    _assert_same(data, _data(miss))
    hit = make(data_dir)
    _assert_same(data, _data(hit))
    assert (miss.cache_hit, hit.cache_hit) == (False, True)


def test_settings_applied_after_the_cache_hit_it_and_match_the_uncached_path(data_dir, calls):
    _data(_keras(data_dir))
    settings = [{"maxlen": 7}, {"num_words": 50, "skip_top": 3}, {"reverse": True, "padding": "post"},
                {"seed": 5, "shuffle": "keras2.2"}, {"oov_char": None, "load_maxlen": 60},
                {"truncating": "post"}]  # fmt: skip
    for kw in settings:
        hit = _keras(data_dir, **kw)
        got = _data(hit)
        assert hit.cache_hit is True, kw
        _assert_same(got, _data(_keras(data_dir, cache=False, **kw)))
    assert calls["fit"] == 1 + 6  # one build, then only the six uncached references tokenized


def test_a_changed_tokenizing_setting_or_changed_data_misses(data_dir, calls):
    _data(_keras(data_dir))
    other = _keras(data_dir, encoding_errors="replace")
    other.setup()
    assert other.cache_hit is False and calls["fit"] == 2 and len(_entries()) == 2
    # one review edited: the next start tokenizes again and sees the new words
    review = sorted((data_dir / "imdb_synthetic" / "aclImdb" / "train" / "pos").glob("*.txt"))[0]
    review.write_text("zyzzyva " * 50)
    edited = _keras(data_dir, num_words=None)
    edited.setup()
    assert edited.cache_hit is False and calls["fit"] == 3 and "zyzzyva" in edited.raw_word_index
    # touched only (same bytes, new mtime): also rebuilt, the signature cannot know the bytes are equal
    st = review.stat()
    os.utime(review, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert _keras(data_dir).cache_hit is None  # nothing read before setup
    touched = _keras(data_dir)
    touched.setup()
    assert touched.cache_hit is False and calls["fit"] == 4


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty", "foreign key"])
def test_a_damaged_entry_is_rebuilt_not_trusted(data_dir, calls, damage, caplog):
    good = _data(_keras(data_dir))
    (entry,) = _entries()
    raw = bytearray(entry.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) * 2 // 3]
    elif damage == "flip":
        raw[len(raw) // 3] ^= 0x5A  # inside the token arrays: caught by the zip CRC-32
    elif damage == "garbage":
        raw = bytearray(b"not a cache entry" * 100)
    elif damage == "empty":
        raw = bytearray()
    else:  # a sound entry of other data under this entry's name (the key inside must match)
        other = tmp = data_dir.parent / "other"
        make_synthetic_acl_imdb(tmp / "imdb_synthetic", n_per_class=30)
        _keras(other, synthetic_size=30).setup()
        raw = bytearray(next(p for p in _entries() if p != entry).read_bytes())
    entry.write_bytes(bytes(raw))
    fits = calls["fit"]
    with caplog.at_level("WARNING", logger="seqlight.data.imdb_cache"):
        again = _keras(data_dir)
        data = _data(again)
    assert again.cache_hit is False and calls["fit"] == fits + 1
    assert "damaged" in caplog.text and str(entry) in caplog.text
    _assert_same(good, data)
    after = _keras(data_dir)  # the rebuilt entry is sound
    _data(after)
    assert after.cache_hit is True and calls["fit"] == fits + 1


def test_the_cache_keeps_the_most_recently_used_entries(data_dir, calls):
    for i in range(MAX_ENTRIES + 2):
        _data(_keras(data_dir, synthetic_size=20 + i))
    assert len(_entries()) == MAX_ENTRIES


def test_an_unwritable_cache_warns_and_still_gives_the_data(data_dir, tmp_path, monkeypatch):
    blocker = tmp_path / "a file, not a folder"
    blocker.write_text("")
    monkeypatch.setenv("SEQLIGHT_CACHE", str(blocker / "cache"))
    with pytest.warns(UserWarning, match="corpus cache could not be written"):
        dm = _keras(data_dir)
        got = _data(dm)
    assert dm.cache_hit is False
    _assert_same(got, _data(_keras(data_dir, cache=False)))


def test_the_source_hyperparameter_keeps_the_users_value(tmp_path):
    dm = KerasImdbDataModule(data_dir=str(tmp_path / "none"), source="auto", format="npz", download=False,
                             synthetic_size=20, maxlen=10)  # fmt: skip
    with pytest.warns(UserWarning, match="imdb.npz is not in"):
        dm.setup()
    assert dm.source == "auto" and dm.hparams.source == "auto"  # as passed, for the next run and the checkpoint
    assert dm.data_source == "synthetic" and dm.is_synthetic and "SYNTHETIC" in dm.source_description
    real = KerasImdbDataModule(data_dir=str(tmp_path / "none"), source="real", format="npz", download=False)
    with pytest.raises(ImdbDataError, match="imdb.npz is not in"):
        real.setup()
    assert real.source == "real"


def test_max_words_is_the_old_name_of_num_words(data_dir, tmp_path):
    kw = {"source": "synthetic", "synthetic_size": 60, "maxlen": 30, "training_samples": 50, "validation_samples": 40}
    with pytest.warns(FutureWarning, match=r"max_words=\.\.\.\) is deprecated: it is now num_words"):
        old = ImdbDataModule(data_dir=str(data_dir), num_words=10000, max_words=120, **kw)
    assert old.num_words == 120 and old.hparams["num_words"] == 120 and "max_words" not in old.hparams
    _assert_same(_data(old), _data(_raw(data_dir)))
    with pytest.warns(FutureWarning, match="use num_words"):
        assert old.max_words == 120
    with pytest.raises(ImdbDataError, match="num_words=50 and max_words=120 are the same setting"):
        ImdbDataModule(data_dir=str(data_dir), num_words=50, max_words=120)
    # a checkpoint written before the rename: its DataModule hyperparameters say max_words
    ckpt = tmp_path / "old.ckpt"
    hparams = {"data_dir": str(data_dir), "source": "synthetic", "maxlen": 30, "max_words": 77, "training_samples": 50}
    torch.save({"datamodule_hyper_parameters": hparams, "pytorch-lightning_version": "2.5.0"}, ckpt)
    with pytest.warns(FutureWarning, match="max_words"):
        loaded = ImdbDataModule.load_from_checkpoint(ckpt)
    assert loaded.num_words == 77 and loaded.hparams["num_words"] == 77


def test_the_packaged_configs_use_num_words():
    from importlib.resources import files

    for cfg in files("seqlight.configs").iterdir():
        if cfg.name.startswith("imdb_"):
            text = cfg.read_text()
            assert "max_words:" not in text and "num_words: 10000" in text, cfg.name


def test_keras_preprocessing_oracle_on_the_cached_path(data_dir):
    """Both DataModules, from a cache hit, equal keras-preprocessing's Tokenizer + pad_sequences + the
    Keras 2.0.8 load_data written with lists (test_imdb.py checks that one against Keras's code)."""
    kp_text = pytest.importorskip("keras_preprocessing.text")
    root = data_dir / "imdb_synthetic" / "aclImdb"
    train, y_train = read_acl_imdb(root, "train")
    test, y_test = read_acl_imdb(root, "test")
    _data(_keras(data_dir))  # builds the entry
    k = kp_text.Tokenizer(num_words=120)
    k.fit_on_texts(train)
    raw = _raw(data_dir)
    assert raw.cache_hit is True
    ours = Tokenizer(num_words=120)  # (checked against keras-preprocessing in tests/text)
    ours.fit_on_texts(train)
    kept = raw.preprocessing.tokenizer  # what the checkpoint keeps, rebuilt from its JSON
    for name in ("num_words", "document_count", "filters", "lower", "split", "char_level", "oov_token"):
        assert getattr(kept, name) == getattr(ours, name), name
    for name in ("word_index", "word_counts", "word_docs", "index_docs", "index_word"):
        assert dict(getattr(kept, name)) == dict(getattr(ours, name)), name
    assert list(kept.word_counts) == list(ours.word_counts)  # first-appearance order, which ties follow
    idx = np.arange(len(train))
    np.random.RandomState(1337).shuffle(idx)
    x = pad_sequences(k.texts_to_sequences(train), maxlen=30)
    np.testing.assert_array_equal(raw.train_set.tensors[0].numpy(), x[idx[:50]])
    np.testing.assert_array_equal(raw.val_set.tensors[0].numpy(), x[idx[50:90]])
    np.testing.assert_array_equal(raw.test_set.tensors[0].numpy(), pad_sequences(k.texts_to_sequences(test), maxlen=30))
    k_all = kp_text.Tokenizer()
    k_all.fit_on_texts(train)
    seqs = k_all.texts_to_sequences(train), k_all.texts_to_sequences(test)
    (xa, ya), (xb, yb) = keras_imdb_load_data(seqs[0], y_train, seqs[1], y_test, num_words=200)
    keras = _keras(data_dir)
    keras.setup()
    assert keras.cache_hit is True
    np.testing.assert_array_equal(keras.train_set.tensors[0].numpy(), pad_sequences(xa[:96], maxlen=40))
    np.testing.assert_array_equal(keras.val_set.tensors[1].numpy(), ya[96:])
    np.testing.assert_array_equal(keras.test_set.tensors[0].numpy(), pad_sequences(xb, maxlen=40))
    assert keras.raw_word_index == k_all.word_index


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("truncating", ["pre", "post"])
def test_ragged_operations_equal_their_list_versions(padding, truncating):
    rng = np.random.RandomState(0)
    seqs = [list(rng.randint(1, 50, size=rng.choice([0, 1, 3, 9, 20]))) for _ in range(300)]
    r = imdb_keras.Ragged.from_lists(seqs)
    assert r.to_lists() == seqs and r.values.dtype == np.int32
    for maxlen in (1, 5, 20, 25):
        got = r.pad(maxlen, padding=padding, truncating=truncating)
        np.testing.assert_array_equal(got, pad_sequences(seqs, maxlen=maxlen, padding=padding, truncating=truncating))
        assert got.dtype == np.int32
    rows = rng.permutation(300)[:120]
    assert r.take(rows).to_lists() == [seqs[i] for i in rows]
    assert r.reversed_rows().to_lists() == [s[::-1] for s in seqs]
    assert r.keep_values(r.values % 3 == 0).to_lists() == [[w for w in s if w % 3 == 0] for s in seqs]
    assert imdb_keras.Ragged.from_lists([]).pad(4).shape == (0, 4)


def test_keras_npz_is_read_once_then_from_the_cache(tmp_path, monkeypatch, calls):
    """imdb.npz (object arrays of int lists, as Keras ships it) and imdb_word_index.json: load_data's result,
    the word ranks in the preprocessing, and a second start that does not unpickle the file again."""
    import hashlib
    import json

    import seqlight.data.imdb_download as imdb_download

    rng = np.random.RandomState(3)
    x_train = [list(rng.randint(1, 60, size=rng.randint(1, 30))) for _ in range(50)]
    x_test = [list(rng.randint(1, 60, size=rng.randint(1, 30))) for _ in range(40)]
    y_train, y_test = rng.randint(0, 2, 50), rng.randint(0, 2, 40)
    obj = np.empty(len(x_train), dtype=object)
    obj[:] = x_train
    obj_test = np.empty(len(x_test), dtype=object)
    obj_test[:] = x_test
    data = tmp_path / "data"
    data.mkdir()
    np.savez(data / "imdb.npz", x_train=obj, y_train=y_train, x_test=obj_test, y_test=y_test)
    (data / "imdb_word_index.json").write_text(json.dumps({f"w{i}": i for i in range(1, 60)}))
    monkeypatch.setattr(
        imdb_download, "KERAS_IMDB_SHA256", hashlib.sha256((data / "imdb.npz").read_bytes()).hexdigest()
    )
    loads = []
    real_load = np.load
    monkeypatch.setattr(np, "load", lambda *a, **kw: loads.append(kw.get("allow_pickle")) or real_load(*a, **kw))
    kw = dict(data_dir=str(data), source="real", format="npz", download=False, num_words=40, maxlen=12)
    first, second = KerasImdbDataModule(**kw), KerasImdbDataModule(**kw)
    got = _data(first)
    assert first.cache_hit is False and loads.count(True) == 1 and "imdb.npz" in first.source_description
    _assert_same(got, _data(second))
    assert second.cache_hit is True and loads.count(True) == 1 and calls["fit"] == 0  # no unpickling, no Tokenizer
    (xa, ya), (xb, yb) = keras_imdb_load_data(x_train, y_train, x_test, y_test, num_words=40)
    np.testing.assert_array_equal(second.train_set.tensors[0].numpy(), pad_sequences(xa[:40], maxlen=12))
    np.testing.assert_array_equal(second.test_set.tensors[1].numpy(), yb)
    assert second.preprocessing.word_ranks == {f"w{i}": i for i in range(1, 60)}


def test_an_old_config_with_max_words_trains_through_the_cli(data_dir, tmp_path, monkeypatch):
    """LightningCLI records the configured arguments as the DataModule's hyperparameters: the value in use must
    be saved as num_words, equal to the model's linked num_words (Lightning refuses to log differing values)."""
    import contextlib
    import io

    from seqlight.cli import main

    old = tmp_path / "old_imdb_glove_scratch.yaml"
    text = (Path(__file__).resolve().parents[2] / "src/seqlight/configs/imdb_glove_scratch.yaml").read_text()
    old.write_text(text.replace("num_words: 10000", "max_words: 300"))
    monkeypatch.chdir(tmp_path)
    with pytest.warns(FutureWarning, match="max_words"), contextlib.redirect_stdout(io.StringIO()):
        main(["fit", "--config", str(old), "--data.init_args.source", "synthetic", "--data.init_args.data_dir",
              str(data_dir), "--data.init_args.synthetic_size", "60", "--data.init_args.training_samples", "40",
              "--data.init_args.validation_samples", "20", "--trainer.max_epochs", "1",
              "--trainer.limit_train_batches", "1", "--trainer.enable_progress_bar=false",
              "--trainer.enable_model_summary=false"])  # fmt: skip
    ckpt = torch.load(tmp_path / "runs/imdb_glove_scratch/version_0/checkpoints/last.ckpt", weights_only=False)
    data_hp = ckpt["datamodule_hyper_parameters"]
    assert data_hp["num_words"] == 300 and "max_words" not in data_hp
    assert ckpt["hyper_parameters"]["num_words"] == 300
    assert ckpt["state_dict"]["embedding.weight"].shape[0] == 300
