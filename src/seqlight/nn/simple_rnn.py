"""``seqlight.nn.SimpleRNN``: Keras's fully-connected RNN with PyTorch's signature."""

from __future__ import annotations

from seqlight.nn.recurrent import KerasRecurrent

__all__ = ["SimpleRNN"]


class SimpleRNN(KerasRecurrent):
    """Fully-connected RNN, a drop-in for ``torch.nn.RNN`` with Keras's semantics.

    ``h' = activation(x W + b + h U)``: the book's numpy RNN of section 6.2 (see
    :func:`seqlight.nn.reference.book_simple_rnn`). One bias (``torch.nn.RNN`` has two: their sum loads
    here). ``tanh`` and
    ``relu`` run PyTorch's fused kernel (unless per-sample recurrent dropout is active in training).

    Args:
        input_size, hidden_size, num_layers, bias, batch_first, inter_layer_dropout, bidirectional, device,
        dtype, activation, dropout, recurrent_dropout, recurrent_dropout_mode, go_backwards, initializer,
        use_fused, implementation: as :class:`seqlight.nn.GRU` (torch's arguments in ``torch.nn.RNN``'s
            positional order).
        nonlinearity: torch's name for ``activation``, in its fourth position as in ``nn.RNN``; ``None``
            (default) leaves ``activation`` in charge. Giving both, differently, raises ValueError.

    Call: ``output, h_n = rnn(x, h0=None)``.

    Example:
        >>> import torch
        >>> from seqlight.nn import SimpleRNN
        >>> rnn = SimpleRNN(32, 32)
        >>> output, h_n = rnn(torch.randn(2, 500, 32))
        >>> output.shape, h_n.shape
        (torch.Size([2, 500, 32]), torch.Size([1, 2, 32]))
        >>> 320000 + sum(p.numel() for p in rnn.parameters())  # the book's Embedding(10000, 32) + SimpleRNN(32)
        322080
    """

    kind = "simple_rnn"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str | None = None,
        bias: bool = True,
        batch_first: bool = True,
        inter_layer_dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        *,
        activation: str = "tanh",
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        recurrent_dropout_mode: str = "per_sample",
        go_backwards: bool = False,
        initializer: str = "keras",
        use_fused: bool | None = None,
        implementation: str = "auto",
    ) -> None:
        if nonlinearity is not None:  # torch's name for Keras's activation
            if activation not in ("tanh", nonlinearity):
                raise ValueError(
                    f"nonlinearity={nonlinearity!r} (torch's name) and activation={activation!r} (Keras's) "
                    "disagree: give one of them"
                )
            activation = nonlinearity
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            inter_layer_dropout,
            bidirectional,
            device,
            dtype,
            activation=activation,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            recurrent_dropout_mode=recurrent_dropout_mode,
            go_backwards=go_backwards,
            initializer=initializer,
            use_fused=use_fused,
            implementation=implementation,
        )
