"""``seqlight.nn.GRU``: a gated recurrent unit with Keras's options and PyTorch's signature."""

from __future__ import annotations

from seqlight.nn.recurrent import KerasRecurrent

__all__ = ["GRU"]


class GRU(KerasRecurrent):
    """Gated recurrent unit, a drop-in for ``torch.nn.GRU`` with Keras's semantics.

    Equations (storage gate order r, z, n, as ``torch.nn.GRU``; Keras orders its weights z, r, h)::

        r = recurrent_activation(x W_r + b_r + h U_r [+ c_r])
        z = recurrent_activation(x W_z + b_z + h U_z [+ c_z])
        reset_after=True  (tf.keras / Keras 3 / torch):  n = activation(x W_n + b_n + r * (h U_n + c_n))
        reset_after=False (Keras 2.0.8, the book):       n = activation(x W_n + b_n + (r * h) U_n)
        h' = z * h + (1 - z) * n

    The book ran Keras 2.0.8: ``GRU(32, recurrent_activation='hard_sigmoid', reset_after=False)`` here.
    The defaults are the modern Keras 3 ones, which are exactly ``torch.nn.GRU`` and run its fused kernel.

    torch's arguments, by name and in torch's positional order; Keras's options are keyword-only::

        torch argument (position)     seqlight argument                  meaning in seqlight
        input_size (1), hidden_size (2), num_layers (3), bias (4), bidirectional (7), device, dtype: same
        batch_first (5), default False  batch_first, default True      (batch, time, features), as Keras
        dropout (6)                   inter_layer_dropout (6)            torch's: between stacked layers
        (none)                        dropout= (keyword)                 Keras's: on the inputs, per sequence

    Args:
        input_size: features per timestep.
        hidden_size: units (Keras ``units``).
        num_layers: stacked layers; each has its own Keras dropout masks, as a stack of Keras layers.
        bias: ``False``: no bias parameters (Keras ``use_bias=False``, torch ``bias=False``).
        batch_first: ``True`` (default, as everywhere in seqlight and in Keras): ``(batch, time, features)``;
            ``False``: ``(time, batch, features)``. The one default that differs from torch's.
        inter_layer_dropout: torch's ``dropout``: dropout on the output of every layer but the last, drawn
            elementwise, in training only (as torch's, and unlike Keras's ``dropout`` below).
        bidirectional: run a backward direction too (torch's layout): parameters ``weight_ih_l0_reverse``...,
            output ``2 * hidden_size`` features (forward, backward), ``h_n`` ``(num_layers * 2, B, H)``
            layer by layer, forward then backward. Each direction draws its own Keras masks.
        device, dtype: where and in which dtype the parameters are made.
        activation: candidate activation: ``tanh`` (default), ``relu``, ``sigmoid``, ``hard_sigmoid``,
            ``linear``, ``elu``, ``softsign``.
        recurrent_activation: gate activation, ``sigmoid`` (default) or ``hard_sigmoid``
            (Keras 2: ``clip(0.2 x + 0.5, 0, 1)``).
        dropout: Keras ``dropout``: rate of a mask on the inputs, one per sequence, reused at every step.
            Not torch's ``dropout`` (that one is ``inter_layer_dropout``).
        recurrent_dropout: Keras ``recurrent_dropout``: rate of masks on the state fed to the recurrent
            matmul, one per sequence and gate, reused at every step. Inactive in eval mode.
        recurrent_dropout_mode: ``'per_sample'`` (default: Keras exactly, each sample its own masks; runs
            the custom loop) or ``'batch'`` (one mask per gate shared by the batch, folded into the
            recurrent weights: keeps the fused kernel; a coarser noise than Keras's).
        go_backwards: process the sequence from the end; ``output`` is then in reversed time order.
        initializer: ``'keras'`` (glorot_uniform / orthogonal / zeros) or ``'torch'`` (U(±1/sqrt(H))).
        reset_after: see the equations. ``False`` has one bias (``bias_ih_l{k}``), ``True`` two.
        implementation: ``'auto'`` (default): PyTorch's fused kernel whenever the semantics allow, else the
            custom loop; ``'fused'``: the fused kernel, ValueError if a call needs the loop; ``'loop'``: the
            custom loop (in C for ``reset_after=False`` where the machine has a C compiler, else hand-written
            backward where every activation allows, else autograd); ``'native'``, ``'function'`` or
            ``'autograd'``: one of the loop's three implementations (see :mod:`seqlight.nn._loop`).
        use_fused: the older form of ``implementation``: ``None`` is ``'auto'``, ``True`` ``'fused'``,
            ``False`` ``'loop'``.

    Call: ``output, h_n = gru(x, hx=None, *, lengths=None, mask=None)``; ``output (B, T, D*H)`` is every step
    of the last layer (Keras ``return_sequences=True``); ``h_n (num_layers * D, B, H)`` the final states
    (``h_n[-1]`` is Keras's default output for one direction). ``hx`` is checked as torch checks it; 2-D
    (unbatched) input is accepted, as torch's. Variable lengths, with Keras's masking (a masked step keeps
    the state; the output repeats it): ``x`` a ``PackedSequence`` (the output is packed too), ``lengths``
    (padding at the end) or ``mask (B, T)`` (padding anywhere); see :meth:`KerasRecurrent.forward`.

    State dicts: ``gru.load_state_dict(torch_gru.state_dict())`` and ``GRU.from_torch(torch_gru)`` take a
    ``torch.nn.GRU``'s weights; ``gru.torch_state_dict()`` gives them back (``reset_after=False`` has no
    torch equivalent). ``all_weights`` and ``flatten_parameters()`` (a no-op) are torch's.

    Example:
        >>> import torch
        >>> from seqlight.nn import GRU
        >>> gru = GRU(14, 32, dropout=0.2, recurrent_dropout=0.2)
        >>> output, h_n = gru(torch.randn(4, 240, 14))
        >>> output.shape, h_n.shape
        (torch.Size([4, 240, 32]), torch.Size([1, 4, 32]))
        >>> book = GRU(14, 32, recurrent_activation="hard_sigmoid", reset_after=False)  # Keras 2.0.8
        >>> sum(p.numel() for p in book.parameters())  # as the book's model.summary()
        4512
        >>> torch_gru = torch.nn.GRU(14, 32, 2, True, True, 0.1, True)  # a torch user's layer ...
        >>> gru = GRU(14, 32, 2, True, True, 0.1, True)  # ... and the same line here
        >>> _ = gru.load_state_dict(torch_gru.state_dict())
        >>> x = torch.randn(4, 240, 14)
        >>> torch.allclose(gru.eval()(x)[1], torch_gru.eval()(x)[1], atol=1e-6)  # h_n (4, B, 32), torch's order
        True
    """

    kind = "gru"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = True,
        inter_layer_dropout: float = 0.0,
        bidirectional: bool = False,
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
        reset_after: bool = True,
        use_fused: bool | None = None,
        implementation: str = "auto",
    ) -> None:
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
            reset_after=reset_after,
            use_fused=use_fused,
            implementation=implementation,
        )
