"""GloVe reading (txt, gz, zip), the cache, bad input, and the book's embedding matrix."""

from __future__ import annotations

import gzip
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from seqlight.text import (
    GloveFormatError,
    GloveVectors,
    embedding_coverage,
    embedding_matrix,
    load_glove,
    read_glove,
    write_glove,
)

GLOVE_50D = (
    Path(__file__).resolve().parents[3] / "shared" / "datasets" / "glove_6B_50d" / "glove.6B.50d.top20000.txt.gz"
)


def book_loop(lines):
    """The book's listing 6.10, on an iterable of text lines."""
    embeddings_index = {}
    for line in lines:
        values = line.split()
        word = values[0]
        coefs = np.asarray(values[1:], dtype="float32")
        embeddings_index[word] = coefs
    return embeddings_index


def book_matrix(word_index, embeddings_index, max_words, embedding_dim):
    """The book's listing 6.11."""
    m = np.zeros((max_words, embedding_dim))
    for word, i in word_index.items():
        if i < max_words:
            v = embeddings_index.get(word)
            if v is not None:
                m[i] = v
    return m


@pytest.fixture
def small(tmp_path):
    rng = np.random.default_rng(0)
    words = ["the", ",", ".", "of", "nan", "null", "1", "caf\u00e9", "'s", '"', "#", "--"]
    vecs = rng.standard_normal((len(words), 7)).astype(np.float32)
    return words, vecs, write_glove(tmp_path / "glove.6B.7d.txt", words, vecs)


def test_real_glove_equals_the_books_loop():
    if not GLOVE_50D.is_file():
        pytest.skip(f"real GloVe subset not at {GLOVE_50D}")
    with gzip.open(GLOVE_50D, "rt", encoding="utf-8") as f:
        ref = book_loop(f)
    v = read_glove(GLOVE_50D, dim=50)
    assert len(v) == len(ref) == 20000 and v.dim == 50 and v.words[:3] == ["the", ",", "."]
    assert v.words == list(ref)
    np.testing.assert_array_equal(np.asarray(v.vectors), np.stack(list(ref.values())))


@pytest.mark.parametrize("fmt", ["txt", "gz", "zip"])
def test_formats_read_the_same(small, tmp_path, fmt):
    words, vecs, txt = small
    expected = book_loop(txt.read_text(encoding="utf-8").splitlines())
    path = txt
    if fmt == "gz":
        path = tmp_path / "glove.6B.7d.txt.gz"
        path.write_bytes(gzip.compress(txt.read_bytes()))
    elif fmt == "zip":
        path = tmp_path / "glove.6B.zip"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("glove.6B.7d.txt", txt.read_bytes())
            zf.writestr("glove.6B.50d.txt", "x 1\n")
    v = load_glove(path, dim=7)
    assert v.words == words and v.words == list(expected)
    np.testing.assert_array_equal(np.asarray(v.vectors), np.stack(list(expected.values())))
    assert v["nan"].tolist() == expected["nan"].tolist()  # words that look like numbers or NA stay words
    if fmt == "zip":
        with pytest.raises(GloveFormatError, match="no member 'glove.6B.100d.txt'"):
            read_glove(path, dim=100)
        with pytest.raises(ValueError, match="needs dim"):
            read_glove(path)


def test_cache_is_used_and_invalidated(small, tmp_path):
    words, vecs, txt = small
    first = load_glove(txt)
    cache_npy = txt.with_name(txt.name + ".seqlight-cache.npy")
    assert cache_npy.is_file() and txt.with_name(txt.name + ".seqlight-cache.json").is_file()
    # poison the cached vectors: a cache hit must return them, proving the text was not parsed again
    arr = np.load(cache_npy)
    np.save(cache_npy, arr + 1)
    hit = load_glove(txt)
    np.testing.assert_array_equal(np.asarray(hit.vectors), np.asarray(first.vectors) + 1)
    # a changed source (new content, new mtime) is parsed again
    write_glove(txt, words, vecs * 2)
    os.utime(txt, ns=(1, 1))
    again = load_glove(txt)
    np.testing.assert_allclose(np.asarray(again.vectors), np.asarray(read_glove(txt).vectors))
    assert not np.allclose(np.asarray(again.vectors), np.asarray(hit.vectors))
    # cache=False never reads the cache; cache_dir puts it elsewhere
    np.save(cache_npy, np.load(cache_npy) + 5)
    np.testing.assert_array_equal(np.asarray(load_glove(txt, cache=False).vectors), np.asarray(again.vectors))
    load_glove(txt, cache_dir=tmp_path / "elsewhere")
    assert (tmp_path / "elsewhere" / (txt.name + ".seqlight-cache.npy")).is_file()


def _bad(tmp_path, content: bytes, name="g.txt") -> Path:
    p = tmp_path / name
    p.write_bytes(content)
    return p


@pytest.mark.parametrize(
    "content,match",
    [
        (b"a 1 2 3\nb 1 2\nc 1 2 3\n", r"g.txt, line 2: 2 values for 'b', expected 3"),
        (b"a 1 2 3\nb 1 2 3 4\n", r"line 2: 4 values"),
        (b"a 1 2 3\nb 1 2 3 \n", r"line 2: 4 values"),
        (b"a 1 2 3\nb 1 x 3\n", r"line 2: 'x' is not a number"),
        (b"a 1 2 3\nb 1 inf 3\n", r"line 2: non-finite"),
        (b"a 1 2 3\n\nc 1 2 3\n", r"line 2: blank line"),
        (b"a 1 2 3\n\xff\xfe 1 2 3\n", r"line 2: bytes that are not UTF-8"),
        (b"", r"g.txt: the file is empty"),
        (b"word\n", r"line 1: a word without values"),
    ],
)
def test_bad_lines_are_named(tmp_path, content, match):
    with pytest.raises(GloveFormatError, match=match):
        read_glove(_bad(tmp_path, content))


def test_dimension_mismatch_and_missing_file(tmp_path):
    with pytest.raises(GloveFormatError, match="line 1: 3 values for 'a', expected 50"):
        read_glove(_bad(tmp_path, b"a 1 2 3\n"), dim=50)
    with pytest.raises(FileNotFoundError, match="nowhere.txt"):
        load_glove(tmp_path / "nowhere.txt")


def test_duplicated_words_keep_the_last_vector_with_a_warning(tmp_path):
    p = _bad(tmp_path, b"a 1 1\nb 2 2\na 3 3\n")
    with pytest.warns(UserWarning, match=r"'a' \(lines 1 and 3\)"):
        v = read_glove(p)
    assert v["a"].tolist() == [3.0, 3.0] == book_loop(p.read_text().splitlines())["a"].tolist()
    assert len(v) == 2


def test_crlf_line_endings_are_accepted(tmp_path):
    v = read_glove(_bad(tmp_path, b"a 1 2\r\nb 3 4\r\n"))
    assert v.words == ["a", "b"] and np.asarray(v.vectors).tolist() == [[1, 2], [3, 4]]


def test_embedding_matrix_is_the_books(small):
    words, vecs, txt = small
    v = load_glove(txt)
    word_index = {"the": 1, "unknownword": 2, "of": 3, "caf\u00e9": 4, "nan": 5, "zzz": 6}
    for num_words in (1, 4, 7, 100):
        m = embedding_matrix(word_index, v, num_words)
        ref = book_matrix(word_index, book_loop(txt.read_text(encoding="utf-8").splitlines()), num_words, 7)
        assert m.shape == (num_words, 7) and m.dtype == np.float32
        np.testing.assert_array_equal(m, ref.astype(np.float32))
        # a plain dict (the book's embeddings_index) works too
        np.testing.assert_array_equal(
            embedding_matrix(word_index, dict(zip(v.words, np.asarray(v.vectors))), num_words), m
        )
    assert not embedding_matrix(word_index, v, 7)[[0, 2, 6]].any()  # padding row and missing words stay zero
    cov = embedding_coverage(word_index, v, 6)
    assert (cov.found, cov.total, cov.missing) == (4, 5, ("unknownword",))
    assert str(cov).startswith("found 4 of 5 words (80.0%)")
    with pytest.raises(ValueError):
        embedding_matrix(word_index, v, 0)


def test_vectors_behave_like_the_books_dict():
    v = GloveVectors(["a", "b"], np.eye(2, dtype=np.float32))
    assert "a" in v and "c" not in v and v.get("c") is None and v["b"].tolist() == [0, 1] and v.dim == 2


def test_no_half_written_cache(small, monkeypatch):
    words, vecs, txt = small

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", boom)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v = load_glove(txt)  # cache writing fails quietly; the vectors are still returned
    assert len(v) == len(words)
    assert not list(txt.parent.glob("*.seqlight-cache*")) and not list(txt.parent.glob(".*part"))
