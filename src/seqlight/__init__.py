"""seqlight: chapter 6 of *Deep Learning with Python* (text and sequences) on PyTorch Lightning.

Sub-packages, importable on their own:

- ``seqlight.text``   Keras-compatible Tokenizer, one_hot, hashing_trick, pad_sequences, GloVe loading.
- ``seqlight.nn``     SimpleRNN / LSTM / GRU / Bidirectional with Keras semantics (recurrent dropout included).
- ``seqlight.data``   LightningDataModules: Jena climate (windowed), raw and pre-indexed IMDB.
- ``seqlight.models`` LightningModules for every model of the chapter.
- ``seqlight.cli``    LightningCLI entry point (``python -m seqlight fit --config configs/jena_gru.yaml``).
"""

__version__ = "0.1.0"
