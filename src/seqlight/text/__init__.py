"""Text vectorization with the Keras semantics of *Deep Learning with Python* 6.1, and GloVe vectors.

- :class:`Tokenizer`, :func:`text_to_word_sequence`, :func:`tokenizer_from_json` — ``keras.preprocessing.text``
  (identical results to ``keras-preprocessing`` 1.1.2, several times faster);
- :func:`hashing_trick`, :func:`one_hot` — with a stable md5 hash by default (Keras: per-process ``hash``);
- :func:`pad_sequences` — ``keras.preprocessing.sequence.pad_sequences`` (pre-padding, pre-truncation);
- :func:`word_level_one_hot`, :func:`character_level_one_hot`, :func:`hashed_word_one_hot` — listings 6.1, 6.2, 6.4;
- :func:`load_glove`, :func:`embedding_matrix`, :func:`embedding_coverage` — listings 6.10 and 6.11 with a cache.
"""

from seqlight.text.glove import (
    Coverage,
    GloveFormatError,
    GloveVectors,
    embedding_coverage,
    embedding_matrix,
    load_glove,
    read_glove,
    write_glove,
)
from seqlight.text.hashing import hashing_trick, one_hot, stable_hash
from seqlight.text.onehot import character_level_one_hot, hashed_word_one_hot, word_level_one_hot
from seqlight.text.sequence import pad_sequences
from seqlight.text.tokenizer import DEFAULT_FILTERS, Tokenizer, text_to_word_sequence, tokenizer_from_json

__all__ = [
    "Coverage",
    "DEFAULT_FILTERS",
    "GloveFormatError",
    "GloveVectors",
    "Tokenizer",
    "character_level_one_hot",
    "embedding_coverage",
    "embedding_matrix",
    "hashed_word_one_hot",
    "hashing_trick",
    "load_glove",
    "one_hot",
    "pad_sequences",
    "read_glove",
    "stable_hash",
    "text_to_word_sequence",
    "tokenizer_from_json",
    "word_level_one_hot",
    "write_glove",
]
