"""``seqlight.nn.LSTM``: long short-term memory with Keras's options and PyTorch's signature."""

from __future__ import annotations

from seqlight.nn.recurrent import KerasRecurrent

__all__ = ["LSTM"]


class LSTM(KerasRecurrent):
    """LSTM, a drop-in for ``torch.nn.LSTM`` with Keras's semantics.

    Equations (gate order i, f, g, o in Keras and torch alike)::

        i, f, o = recurrent_activation(x W_{i,f,o} + b_{i,f,o} + h U_{i,f,o})
        g = activation(x W_g + b_g + h U_g)
        c' = f * c + i * g;   h' = o * activation(c')

    One bias per layer (``bias_ih_l{k}``), as Keras; ``torch.nn.LSTM`` has two (their sum is this one:
    ``load_state_dict(torch_lstm.state_dict())`` adds them, ``torch_state_dict()`` puts it in ``bias_ih``).
    The book ran Keras 2.0.8: ``recurrent_activation='hard_sigmoid'``; the default here is Keras 3's
    ``sigmoid``, which runs PyTorch's fused kernel.

    Args:
        input_size, hidden_size, num_layers, bias, batch_first, inter_layer_dropout, bidirectional, device,
        dtype, activation, recurrent_activation, dropout, recurrent_dropout, recurrent_dropout_mode,
        go_backwards, initializer, use_fused, implementation: as :class:`seqlight.nn.GRU` (torch's arguments in torch's
            positional order, Keras's keyword-only; ``dropout`` is Keras's, torch's is ``inter_layer_dropout``).
        proj_size: torch's; ``0`` only (Keras has no projected LSTM).
        unit_forget_bias: Keras's default ``True``: the forget-gate bias starts at 1 (with
            ``initializer='keras'``).

    Call: ``output, (h_n, c_n) = lstm(x, (h0, c0))`` (the state argument is optional);
    ``output (B, T, D*H)``, ``h_n`` and ``c_n`` ``(num_layers * D, B, H)``, ``D = 2`` if bidirectional.

    Example:
        >>> import torch
        >>> from seqlight.nn import LSTM
        >>> lstm = LSTM(32, 32)
        >>> output, (h_n, c_n) = lstm(torch.randn(2, 500, 32))
        >>> output.shape, h_n.shape, c_n.shape
        (torch.Size([2, 500, 32]), torch.Size([1, 2, 32]), torch.Size([1, 2, 32]))
        >>> sum(p.numel() for p in lstm.parameters())  # Keras LSTM(32) on 32 inputs: 8,320
        8320
    """

    kind = "lstm"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = True,
        inter_layer_dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
        *,
        activation: str = "tanh",
        recurrent_activation: str = "sigmoid",
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        recurrent_dropout_mode: str = "per_sample",
        go_backwards: bool = False,
        initializer: str = "keras",
        unit_forget_bias: bool = True,
        use_fused: bool | None = None,
        implementation: str = "auto",
    ) -> None:
        if proj_size != 0:
            raise ValueError(f"proj_size must be 0, got {proj_size!r}: Keras has no projected LSTM, nor has seqlight")
        self.proj_size = 0
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
            recurrent_activation=recurrent_activation,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            recurrent_dropout_mode=recurrent_dropout_mode,
            go_backwards=go_backwards,
            initializer=initializer,
            unit_forget_bias=unit_forget_bias,
            use_fused=use_fused,
            implementation=implementation,
        )
