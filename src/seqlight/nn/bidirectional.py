"""``seqlight.nn.Bidirectional``: Keras's bidirectional wrapper around any seqlight recurrent layer."""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from seqlight.nn._masks import restore_packed, unpack
from seqlight.nn.recurrent import KerasRecurrent

__all__ = ["Bidirectional"]

_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


class Bidirectional(nn.Module):
    """Run a recurrent layer forwards and a copy of it backwards; merge the two outputs (Keras's wrapper).

    The backward copy has the same configuration with ``go_backwards`` flipped and its own, freshly
    initialised weights. Its output is flipped back to chronological order before merging, and its final
    state is the state after the *whole* reversed sequence (``torch.nn.GRU(bidirectional=True)`` users
    often take ``output[:, -1, H:]`` by mistake, the backward state after one step).

    Args:
        layer: a :class:`seqlight.nn.GRU`, :class:`~seqlight.nn.LSTM` or :class:`~seqlight.nn.SimpleRNN`.
        merge_mode: ``'concat'`` (default, output ``2H`` features), ``'sum'``, ``'mul'``, ``'ave'``, or
            ``None`` (output is the pair ``(forward_output, backward_output)``).
        backward_layer: an explicit backward layer (Keras's ``backward_layer``); must match ``layer``'s
            sizes and have the opposite ``go_backwards``.

    Call: ``output, h_n = bi(x)`` (``output, (h_n, c_n)`` for an LSTM); ``h_n`` is
    ``(2 * num_layers, B, H)``: the forward layer's states, then the backward layer's. (``torch.nn``
    interleaves them per layer because it stacks bidirectional layers; Keras's wrapper runs each
    direction's whole stack, and so does this one. For torch's layout, build the layer itself with
    ``bidirectional=True``: ``GRU(14, 32, bidirectional=True)``.)

    Example:
        >>> import torch
        >>> from seqlight.nn import LSTM, Bidirectional
        >>> bi = Bidirectional(LSTM(32, 32))
        >>> output, (h_n, c_n) = bi(torch.randn(2, 50, 32))
        >>> output.shape, h_n.shape, bi.output_size
        (torch.Size([2, 50, 64]), torch.Size([2, 2, 32]), 64)
    """

    def __init__(
        self, layer: KerasRecurrent, merge_mode: str | None = "concat", backward_layer: KerasRecurrent | None = None
    ):
        super().__init__()
        if not isinstance(layer, KerasRecurrent):
            raise ValueError(f"layer must be a seqlight.nn recurrent layer, got {type(layer).__name__}")
        if layer.bidirectional or (backward_layer is not None and backward_layer.bidirectional):
            raise ValueError(
                "layer is already bidirectional (bidirectional=True runs both directions, torch's way): "
                "wrap a one-direction layer, or use the layer alone"
            )
        if merge_mode not in _MERGE_MODES:
            raise ValueError(f"merge_mode must be one of {_MERGE_MODES}, got {merge_mode!r}")
        if backward_layer is None:
            backward_layer = copy.deepcopy(layer)
            backward_layer.go_backwards = not layer.go_backwards
            backward_layer.reset_parameters()
        elif (
            type(backward_layer) is not type(layer)
            or backward_layer.hidden_size != layer.hidden_size
            or backward_layer.input_size != layer.input_size
            or backward_layer.go_backwards == layer.go_backwards
        ):
            raise ValueError("backward_layer must be the same kind and size as layer, with the opposite go_backwards")
        self.forward_layer = layer
        self.backward_layer = backward_layer
        self.merge_mode = merge_mode

    @property
    def output_size(self) -> int:
        """Features of the merged output per step (``2H`` for concat, else ``H``)."""
        return 2 * self.forward_layer.hidden_size if self.merge_mode == "concat" else self.forward_layer.hidden_size

    @property
    def hidden_size(self) -> int:
        return self.forward_layer.hidden_size

    def _split_state(self, hx):
        if hx is None:
            return None, None
        L = self.forward_layer.num_layers
        if isinstance(hx, tuple):  # LSTM (h, c), each (2L, B, H)
            return (hx[0][:L], hx[1][:L]), (hx[0][L:], hx[1][L:])
        return hx[:L], hx[L:]

    def forward(self, input: Tensor | PackedSequence, hx=None, *, lengths=None, mask=None):
        """``lengths``, ``mask`` and a ``PackedSequence`` input as :meth:`KerasRecurrent.forward`; each direction
        skips the masked steps (the backward one meets the end padding first and keeps its initial state
        there), and a packed input gives a packed output."""
        hf, hb = self._split_state(hx)
        packed = None
        if isinstance(input, PackedSequence):
            if lengths is not None or mask is not None:
                raise ValueError("a PackedSequence carries its lengths: give no lengths= or mask= with it")
            input, lengths, packed = unpack(input)
            if not self.forward_layer.batch_first:
                input = input.transpose(0, 1)
        y_f, s_f = self.forward_layer(input, hf, lengths=lengths, mask=mask)
        y_b, s_b = self.backward_layer(input, hb, lengths=lengths, mask=mask)
        time_dim = 1 if self.forward_layer.batch_first else 0
        y_b = y_b.flip(time_dim)
        if self.merge_mode == "concat":
            y = torch.cat([y_f, y_b], -1)
        elif self.merge_mode == "sum":
            y = y_f + y_b
        elif self.merge_mode == "mul":
            y = y_f * y_b
        elif self.merge_mode == "ave":
            y = (y_f + y_b) / 2
        else:
            y = (y_f, y_b)
        if packed is not None:
            repack = lambda t: restore_packed(t if time_dim == 1 else t.transpose(0, 1), packed)  # noqa: E731
            y = tuple(map(repack, y)) if isinstance(y, tuple) else repack(y)
        if isinstance(s_f, tuple):
            return y, (torch.cat([s_f[0], s_b[0]], 0), torch.cat([s_f[1], s_b[1]], 0))
        return y, torch.cat([s_f, s_b], 0)

    def load_keras_weights(self, weights) -> None:
        """Load Keras's ``Bidirectional.get_weights()``: the forward layer's list followed by the backward
        layer's (a flat list), or the pair ``(forward_weights, backward_weights)``."""
        weights = list(weights)
        if len(weights) == 2 and all(isinstance(w, (list, tuple)) for w in weights):
            fwd, bwd = weights
        else:
            if len(weights) % 2:
                raise ValueError(f"weights must hold the forward and the backward lists, got {len(weights)} arrays")
            half = len(weights) // 2
            fwd, bwd = weights[:half], weights[half:]
        self.forward_layer.load_keras_weights(fwd)
        self.backward_layer.load_keras_weights(bwd)

    def extra_repr(self) -> str:
        return f"merge_mode={self.merge_mode!r}"
