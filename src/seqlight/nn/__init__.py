"""Keras-faithful recurrent layers with PyTorch signatures, and Keras initializers.

- :class:`SimpleRNN`, :class:`LSTM`, :class:`GRU`: drop-ins for ``torch.nn.RNN/LSTM/GRU`` (torch's arguments,
  state dicts and ``hx`` checks; ``batch_first=True`` by default; torch's ``dropout`` is ``inter_layer_dropout``)
  with Keras's ``activation``, ``recurrent_activation`` (``hard_sigmoid``), GRU ``reset_after``,
  ``dropout`` / ``recurrent_dropout``, ``go_backwards``, Keras initializers and ``load_keras_weights``.
  PyTorch's fused kernels run whenever the semantics allow, a custom loop otherwise, in C where the machine
  has a compiler (:func:`native_status` says whether it does; see :mod:`seqlight.nn._native`).
- :class:`Bidirectional`: Keras's wrapper (``merge_mode`` concat/sum/mul/ave/None).
- :mod:`seqlight.nn.reference`: numpy transcriptions of the book's RNN and of the Keras 2.0.8 / Keras 3
  equations (the test oracles).
- :func:`keras_init_`, :func:`glorot_uniform_`: Keras initializers for Linear / Conv1d / Embedding.
"""

from seqlight.nn import reference
from seqlight.nn._native import native_status
from seqlight.nn.activations import hard_sigmoid
from seqlight.nn.bidirectional import Bidirectional
from seqlight.nn.gru import GRU
from seqlight.nn.init import glorot_uniform_, keras_init_
from seqlight.nn.lstm import LSTM
from seqlight.nn.recurrent import KerasRecurrent
from seqlight.nn.simple_rnn import SimpleRNN

__all__ = [
    "GRU",
    "LSTM",
    "SimpleRNN",
    "Bidirectional",
    "KerasRecurrent",
    "hard_sigmoid",
    "native_status",
    "keras_init_",
    "glorot_uniform_",
    "reference",
]
