"""Offline stand-ins for aclImdb and GloVe, in the official formats, for tests and the quick start.

:func:`make_synthetic_acl_imdb` writes ``<dest>/aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt`` (plus
``README`` and ``imdb.vocab``) with reviews whose label can be learned:

- every review is filler words with sentence punctuation, capitals and ``<br />`` tags (so the Keras
  tokenizer's filters and lower-casing matter), a few *sentiment phrases* anywhere, and one closing
  verdict ("overall this movie was ...") at the end, inside the 20-word window of the book's 6.1.2;
- a positive review's phrases are positive words ("great") or negated negative ones ("not awful"); a
  negative review's are negative words or negated positive ones ("not great"). A bag of words sees "not"
  and "great" in both classes: the negated reviews need word order, which is what the recurrent models of
  6.2 and 6.3 can use and ``Flatten`` over a short window partly can.

:func:`make_synthetic_glove` writes a small GloVe-format text file whose vectors put the positive and the
negative words on opposite sides of one direction, so pretrained vectors help as in 6.1.3.

Everything is deterministic for a given seed; the files are written atomically (a temporary folder renamed)
by one process at a time (:func:`seqlight.files.create_once`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from seqlight.files import atomic_path, create_once

__all__ = ["NEGATIVE", "POSITIVE", "make_synthetic_acl_imdb", "make_synthetic_glove", "synthetic_vocabulary"]

POSITIVE = (
    "great",
    "excellent",
    "wonderful",
    "superb",
    "brilliant",
    "moving",
    "delightful",
    "fantastic",
    "enjoyable",
    "masterful",
)
NEGATIVE = ("awful", "terrible", "boring", "dreadful", "poor", "dull", "horrible", "weak", "pointless", "tedious")
_SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "ta", "vo", "si", "pe", "da", "gu", "fe", "ho", "ji", "bu", "zo")
_MARKER = ".complete"


def synthetic_vocabulary(n_filler: int = 400, seed: int = 0) -> list[str]:
    """Filler words: distinct pronounceable nonsense words (two or three syllables)."""
    rng = np.random.RandomState(seed)
    words: list[str] = []
    seen = set(POSITIVE) | set(NEGATIVE) | {"not", "the", "a", "this", "movie", "film", "was", "is", "br", "overall"}
    while len(words) < n_filler:
        w = "".join(_SYLLABLES[i] for i in rng.randint(len(_SYLLABLES), size=rng.randint(2, 4)))
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


def _review(rng: np.random.RandomState, label: int, filler: list[str], negated_share: float) -> str:
    n = rng.randint(15, 120)
    # Zipf-like filler distribution, so the vocabulary has a long tail as real text does
    ranks = np.minimum(rng.zipf(1.3, size=n) - 1, len(filler) - 1)
    words = [filler[r] for r in ranks]

    def phrase() -> list[str]:
        negated = rng.rand() < negated_share
        good = (label == 1) != negated
        word = (POSITIVE if good else NEGATIVE)[rng.randint(len(POSITIVE))]
        return ["this", "movie", "was"] + (["not", word] if negated else [word])

    for _ in range(rng.randint(1, 4)):
        pos = rng.randint(len(words) + 1)
        words[pos:pos] = phrase()
    words += ["overall"] + phrase()  # a closing verdict, within the book's 20-word window of 6.1.2
    out = []
    for i, w in enumerate(words):
        if i == 0 or out[-1].endswith("."):
            w = w.capitalize()
        out.append(w)
        r = rng.rand()
        if r < 0.06:
            out[-1] += "."
        elif r < 0.09:
            out[-1] += ","
        elif r < 0.1:
            out[-1] += ". <br /><br />"
    return " ".join(out).rstrip(",") + "."


def make_synthetic_acl_imdb(
    dest: str | os.PathLike,
    n_per_class: int = 500,
    n_test_per_class: int | None = None,
    seed: int = 0,
    negated_share: float = 0.35,
) -> Path:
    """Write (once) and return ``dest/aclImdb`` in the official layout with synthetic, learnable reviews.

    An existing complete folder made with the same arguments is reused; a different or incomplete one is
    replaced. The folder is built under a temporary name and renamed, so readers never see half of it, and
    two processes asking at once build it once (the second waits for the first).
    """
    n_test_per_class = n_per_class if n_test_per_class is None else n_test_per_class
    tag = f"n={n_per_class},test={n_test_per_class},seed={seed},negated={negated_share},v=2"
    final = Path(dest) / "aclImdb"

    def complete(folder: Path) -> bool:
        marker = folder / _MARKER
        return marker.is_file() and marker.read_text() == tag

    def build() -> None:
        with atomic_path(final, directory=True) as root:
            _write_reviews(root, tag, n_per_class, n_test_per_class, seed, negated_share)

    return create_once(final, build, done=complete)


def _write_reviews(root: Path, tag: str, n_per_class: int, n_test_per_class: int, seed: int, negated_share: float):
    """Fill the empty folder ``root`` with the synthetic aclImdb files."""
    filler = synthetic_vocabulary(seed=seed)
    rng = np.random.RandomState(seed)
    for split, n in (("train", n_per_class), ("test", n_test_per_class)):
        for label, name in ((0, "neg"), (1, "pos")):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                rating = rng.randint(7, 11) if label else rng.randint(1, 5)
                (folder / f"{i}_{rating}.txt").write_text(_review(rng, label, filler, negated_share), encoding="utf-8")
    (root / "README").write_text(
        "Synthetic reviews in the layout of the Large Movie Review Dataset v1.0 (aclImdb), made by "
        f"seqlight.data.imdb_synthetic ({tag}). Not real data.\n",
        encoding="utf-8",
    )
    vocab = sorted(set(filler) | set(POSITIVE) | set(NEGATIVE) | {"not", "this", "movie", "was", "br", "overall"})
    (root / "imdb.vocab").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (root / _MARKER).write_text(tag)


def make_synthetic_glove(dest: str | os.PathLike, dim: int = 100, seed: int = 0, n_extra: int = 200) -> Path:
    """Write (once) a GloVe-format file ``dest/glove.synthetic.<dim>d.txt`` covering the synthetic vocabulary.

    Positive words lie near ``+u`` and negative words near ``-u`` for a fixed unit vector ``u``; "not" and
    the filler words are random. ``n_extra`` words that never occur in the reviews are added, and a few
    filler words are left out, so the coverage report has something to say.
    """
    from seqlight.text.glove import write_glove

    dest = Path(dest)
    path = dest / f"glove.synthetic.{dim}d.txt"
    if path.exists():
        return path
    rng = np.random.RandomState(seed + 1)
    u = rng.randn(dim)
    u /= np.linalg.norm(u)
    filler = synthetic_vocabulary(seed=seed)
    words = ["the", "this", "movie", "was", "not", "br", "overall", *POSITIVE, *NEGATIVE, *filler[:-20]]
    words += [f"extra{i}" for i in range(n_extra)]
    vecs = rng.randn(len(words), dim) * 0.3
    for i, w in enumerate(words):
        if w in POSITIVE:
            vecs[i] += 2.0 * u
        elif w in NEGATIVE:
            vecs[i] -= 2.0 * u
    return write_glove(path, words, vecs.astype(np.float32))
