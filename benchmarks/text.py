"""seqlight.text speed against its references, measured in the same run (ratios matter; the machine is shared).

1. ``Tokenizer.fit_on_texts`` + ``texts_to_sequences`` on the 25,000 aclImdb training reviews, against
   ``keras-preprocessing`` 1.1.2 (same settings: ``num_words=10000``); the outputs are checked to be equal.
2. Reading a 400,000-line 100-d GloVe text, against a transcription of the book's listing 6.10 loop.
   No real 100d file is at hand, so a GloVe-format file of that shape is generated in a temporary folder:
   400,000 distinct words, each with one of 4,000 random 100-d rows written with 6 significant digits
   (the real glove.6B.100d.txt is 347 MB; this one is about the same size). The values read are checked
   against the book loop's.
3. The cached reload of the same file (``load_glove`` a second time).

Usage::

    python benchmarks/text.py [--data-dir ../shared/datasets] [--repeats 2] [--threads 1]

Without the real reviews (no aclImdb in ``--data-dir``) part 1 runs on 25,000 synthetic reviews and says so.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def best_of(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        gc.collect()
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def load_reviews(data_dir: str) -> tuple[list[str], str]:
    from seqlight.data.imdb import locate_acl_imdb, read_acl_imdb
    from seqlight.data.imdb_synthetic import make_synthetic_acl_imdb

    root = locate_acl_imdb(data_dir) if Path(data_dir).exists() else None
    if root is not None:
        texts, _ = read_acl_imdb(root, "train")
        return texts, f"real aclImdb/train ({root})"
    root = make_synthetic_acl_imdb(tempfile.mkdtemp(), n_per_class=12500)
    texts, _ = read_acl_imdb(root, "train")
    return texts, "SYNTHETIC reviews (no aclImdb found)"


def tokenizer_rows(texts: list[str], repeats: int) -> list[tuple[str, float, float]]:
    from keras_preprocessing.text import Tokenizer as KerasTokenizer

    from seqlight.text import Tokenizer

    def keras():
        t = KerasTokenizer(num_words=10000)
        t.fit_on_texts(texts)
        return t, t.texts_to_sequences(texts)

    def ours():
        t = Tokenizer(num_words=10000)
        t.fit_on_texts(texts)
        return t, t.texts_to_sequences(texts)

    tk, (kt, kseq) = best_of(keras, repeats)
    to, (ot, oseq) = best_of(ours, repeats)
    assert ot.word_index == kt.word_index and oseq == kseq, "outputs differ from keras-preprocessing"
    tk_seq, _ = best_of(lambda: kt.texts_to_sequences(texts), repeats)
    to_seq = float("inf")
    for _ in range(repeats):  # the fitted ids are used once: refit (untimed) before each timing
        fresh = Tokenizer(num_words=10000)
        fresh.fit_on_texts(texts)
        to_seq = min(to_seq, best_of(lambda fresh=fresh: fresh.texts_to_sequences(texts), 1)[0])
    # equal texts that are other str objects: no reuse of the fitted token ids
    copies = [(t + " ")[:-1] for t in texts]
    to_copy, oseq2 = best_of(lambda: ot.texts_to_sequences(copies), repeats)
    assert oseq2 == kseq
    return [
        ("Tokenizer fit_on_texts + texts_to_sequences (25k reviews)", tk, to),
        ("  texts_to_sequences alone, on the fitted texts (token ids reused)", tk_seq, to_seq),
        ("  texts_to_sequences alone, on equal copies (tokenized again)", tk_seq, to_copy),
    ]


def write_glove_like(path: Path, lines: int = 400_000, dim: int = 100) -> None:
    rng = np.random.default_rng(0)
    rows = [" ".join(f"{v:.6g}" for v in r) for r in (rng.standard_normal((4000, dim)) * 0.4).astype(np.float32)]
    with open(path, "w", encoding="utf-8") as f:
        for start in range(0, lines, 50_000):
            f.write("".join(f"w{i} {rows[i % 4000]}\n" for i in range(start, min(start + 50_000, lines))))


def book_glove_loop(path: Path) -> dict:
    """The book's listing 6.10, verbatim apart from the path."""
    embeddings_index = {}
    f = open(path, encoding="utf-8")
    for line in f:
        values = line.split()
        word = values[0]
        coefs = np.asarray(values[1:], dtype="float32")
        embeddings_index[word] = coefs
    f.close()
    return embeddings_index


def glove_rows(repeats: int) -> list[tuple[str, float, float]]:
    from seqlight.text import load_glove, read_glove

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "glove.6B.100d.txt"
        write_glove_like(path)
        size = path.stat().st_size
        t_book, ref = best_of(lambda: book_glove_loop(path), 1)
        t_read, vec = best_of(lambda: read_glove(path, dim=100), repeats)
        assert vec.words == list(ref) and np.array_equal(np.asarray(vec.vectors), np.stack(list(ref.values())))
        del ref
        t_first, _ = best_of(lambda: load_glove(path, dim=100), 1)  # parses and writes the cache
        t_cached, cached = best_of(lambda: load_glove(path, dim=100), repeats)
        assert np.array_equal(np.asarray(cached.vectors), np.asarray(vec.vectors))
        label = f"GloVe 400,000 x 100 text ({size / 1e6:.0f} MB, generated)"
        return [
            (f"{label}: parse", t_book, t_read),
            ("  load_glove, first call (parse + write cache)", t_book, t_first),
            ("  load_glove, cached reload", t_book, t_cached),
        ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default="datasets")
    p.add_argument("--repeats", type=int, default=2, help="best of N for every timing but the book's GloVe loop")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    texts, source = load_reviews(a.data_dir)
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}; reviews: {len(texts)} from {source}", flush=True)
    rows = tokenizer_rows(texts, a.repeats) + glove_rows(a.repeats)
    print("\n| task | reference (s) | seqlight (s) | speed-up |\n|---|---|---|---|")
    refs = ["keras-preprocessing 1.1.2", "", "", "book's listing 6.10 loop", "", ""]
    for (task, ref, ours), who in zip(rows, refs):
        print(f"| {task} | {ref:.2f}{' (' + who + ')' if who else ''} | {ours:.3f} | {ref / ours:.1f}x |")


if __name__ == "__main__":
    main()
