"""The machinery shared by :class:`SimpleRNN`, :class:`LSTM` and :class:`GRU`.

One class, :class:`KerasRecurrent`, holds what the three layers have in common: torch's constructor arguments
(``num_layers``, ``bias``, ``batch_first``, ``inter_layer_dropout`` for torch's ``dropout``, ``bidirectional``,
``device``, ``dtype``, in torch's positional order), parameters stored in PyTorch's layout, names and gate
order (``weight_ih_l{k}[_reverse]`` of shape ``(G*H, in)``, ``weight_hh_l{k}[_reverse]`` of shape ``(G*H, H)``),
torch state dicts both ways, torch's ``hx`` checks, Keras initializers, Keras dropout masks, and the choice
between two execution paths:

- the **fused path**: PyTorch's own kernel (``torch._VF.gru/lstm/rnn_tanh/rnn_relu``: oneDNN on CPU,
  cuDNN on GPU). It is taken whenever the semantics allow: ``tanh`` activation, ``sigmoid`` gates,
  ``reset_after=True`` for the GRU, and no per-sample recurrent dropout. Input dropout is a time-constant
  mask multiplied into the input in front of the kernel; batch-shared recurrent dropout is folded into
  the columns of the recurrent weight matrix (``U (h * m) == (U diag(m)) h``). Under autocast the kernel
  computes in the autocast dtype where it has a kernel for it; where it has none (oneDNN's bf16 LSTM on
  CPUs without AVX-512, see :mod:`seqlight.nn._fused`) it runs with autocast off, in the parameters' dtype.
- the **custom loop** (:mod:`seqlight.nn._loop`): everything else (``hard_sigmoid``, the Keras 2.0.8
  reset-before GRU, ``relu`` LSTM/GRU, per-sample recurrent dropout, padding masks). Each step is the layer's
  cell (:mod:`seqlight.nn.cells`): its input projection and one recurrent matmul, a few elementwise ops, and a
  hand-written backward pass.

``implementation=`` chooses explicitly (``'auto'``, ``'fused'``, ``'loop'``, ``'native'``, ``'function'``,
``'autograd'``; ``use_fused`` is its older form). Variable lengths (``PackedSequence``, ``lengths=``,
``mask=``) follow Keras's masking, see :meth:`KerasRecurrent.forward` and :mod:`seqlight.nn._masks`.

A bidirectional layer runs each direction as a layer of its own (the backward one on the flipped sequence,
its output flipped back), so both paths and every mask serve it unchanged. Masks are drawn in
:meth:`KerasRecurrent.draw_masks`, once per call (i.e. once per sequence) and direction, and
reused at every timestep, like Keras. Gate ``g`` of a mask is gate ``g`` in the storage order (GRU: r, z,
n; LSTM: i, f, g, o). Masks and the zero initial state take the parameters' dtype, not the input's: under
autocast the input of a stacked layer may be bf16 (the previous layer's output), and a bf16 mask would round
``1 / (1 - rate)`` (``1 / 0.7`` becomes 1.4297) and change with the path the previous layer took.
"""

from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from seqlight.nn import _fused, _loop
from seqlight.nn._masks import restore_packed, step_mask, unpack
from seqlight.nn.activations import ACTIVATIONS, hard_sigmoid
from seqlight.nn.cells import Cell, make_cell

__all__ = ["KerasRecurrent", "ACTIVATIONS", "hard_sigmoid", "KERAS_TO_TORCH_GATES", "IMPLEMENTATIONS"]

_GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}
#: ``implementation=``: the fused kernel, the custom loop (in C where the cell has a native loop and the machine a
#: compiler, else with a hand-written backward where it applies, else autograd), or one of the loop's three
#: implementations explicitly; ``'auto'`` takes the fused kernel first.
IMPLEMENTATIONS = ("auto", "fused", "loop", "native", "function", "autograd")
# Keras gate order -> storage (torch) gate order, per kind.
KERAS_TO_TORCH_GATES = {"simple_rnn": [0], "lstm": [0, 1, 2, 3], "gru": [1, 0, 2]}


def _check_rate(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return value


def _check_activation(name: str, value: str) -> str:
    if value not in ACTIVATIONS:
        raise ValueError(f"{name} must be one of {sorted(ACTIVATIONS)}, got {value!r}")
    return value


def _check_flag(name: str, value) -> bool:
    # torch accepts 0/1 as well; anything else in a flag's slot is an argument in the wrong position
    if value not in (True, False) or not isinstance(value, (bool, int, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


class KerasRecurrent(nn.Module):
    """Base class of the Keras-faithful recurrent layers; see :class:`seqlight.nn.GRU` for the arguments.

    The positional arguments are ``torch.nn.GRU``'s, in its order; Keras's options are keyword-only.
    """

    #: ``'gru'``, ``'lstm'`` or ``'simple_rnn'``: set by the subclasses; the base class itself is abstract.
    kind: str | None = None

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
        unit_forget_bias: bool = True,
        use_fused: bool | None = None,
        implementation: str = "auto",
    ) -> None:
        if self.kind not in _GATES:
            raise TypeError(
                f"{type(self).__name__} is the abstract base of the recurrent layers (it has no cell): build a "
                "seqlight.nn.GRU, LSTM or SimpleRNN, or subclass with kind = 'gru', 'lstm' or 'simple_rnn'"
            )
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if recurrent_dropout_mode not in ("per_sample", "batch"):
            raise ValueError(f"recurrent_dropout_mode must be 'per_sample' or 'batch', got {recurrent_dropout_mode!r}")
        if initializer not in ("keras", "torch"):
            raise ValueError(f"initializer must be 'keras' or 'torch', got {initializer!r}")
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.bias = _check_flag("bias", bias)
        self.batch_first = _check_flag("batch_first", batch_first)
        self.inter_layer_dropout = _check_rate("inter_layer_dropout", inter_layer_dropout)
        self.bidirectional = _check_flag("bidirectional", bidirectional)
        if self.inter_layer_dropout and self.num_layers == 1:  # as torch warns for its dropout
            warnings.warn(
                f"inter_layer_dropout={self.inter_layer_dropout} (torch's dropout) acts between stacked layers only "
                "and does nothing with num_layers=1; Keras's dropout on the inputs is dropout=",
                stacklevel=3,
            )
        self.activation = _check_activation("activation", activation)
        self.recurrent_activation = _check_activation("recurrent_activation", recurrent_activation)
        self.dropout = _check_rate("dropout", dropout)
        self.recurrent_dropout = _check_rate("recurrent_dropout", recurrent_dropout)
        self.recurrent_dropout_mode = recurrent_dropout_mode
        self.go_backwards = _check_flag("go_backwards", go_backwards)
        if self.go_backwards and self.bidirectional:
            raise ValueError(
                "go_backwards=True and bidirectional=True together: a bidirectional layer already runs both "
                "directions (go_backwards is for one direction, as Keras's)"
            )
        self.initializer = initializer
        self.reset_after = bool(reset_after) if self.kind == "gru" else True
        self.unit_forget_bias = bool(unit_forget_bias)
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}")
        if use_fused is not None and implementation != "auto":
            raise ValueError("give implementation= or use_fused= (its older, coarser form), not both")
        self.implementation = implementation
        if use_fused is not None:
            self.use_fused = use_fused
        self.gates = _GATES[self.kind]
        self.num_directions = 2 if self.bidirectional else 1
        self._suffixes = ("", "_reverse")[: self.num_directions]
        # torch's parameter names, per (layer, direction) in torch's order (all_weights, state dicts)
        self._all_weights: list[list[str]] = []
        G, H = self.gates, self.hidden_size
        factory = {"device": device, "dtype": dtype}
        for k in range(self.num_layers):
            in_size = self.input_size if k == 0 else H * self.num_directions
            for sfx in self._suffixes:
                names = [f"weight_ih_l{k}{sfx}", f"weight_hh_l{k}{sfx}"]
                if self.bias:
                    names.append(f"bias_ih_l{k}{sfx}")
                    if self.cell.has_recurrent_bias:
                        names.append(f"bias_hh_l{k}{sfx}")
                shapes = {
                    "weight_ih": (G * H, in_size),
                    "weight_hh": (G * H, H),
                    "bias_ih": (G * H,),
                    "bias_hh": (G * H,),
                }
                for name in names:
                    self.register_parameter(name, nn.Parameter(torch.empty(shapes[name.split("_l")[0]], **factory)))
                self._all_weights.append(names)
        self.reset_parameters()

    # ------------------------------------------------------------------ parameters
    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Keras initializers (``glorot_uniform`` kernel, ``orthogonal`` recurrent kernel, zero bias, forget
        bias 1 for the LSTM with ``unit_forget_bias``), or PyTorch's U(-1/sqrt(H), 1/sqrt(H)) everywhere."""
        H = self.hidden_size
        for name, p in self.named_parameters(recurse=False):
            if self.initializer == "torch":
                bound = 1.0 / math.sqrt(H)
                p.uniform_(-bound, bound)
            elif name.startswith("weight_ih"):
                nn.init.xavier_uniform_(p)  # fans (in, G*H) as Keras's (in, G*H) kernel
            elif name.startswith("weight_hh"):
                if p.device.type != "meta":  # orthogonal_ needs a QR decomposition, which meta tensors lack
                    nn.init.orthogonal_(p)  # (G*H, H) with orthonormal columns == Keras's (H, G*H) orthogonal
            else:
                p.zero_()
                if self.kind == "lstm" and self.unit_forget_bias and name.startswith("bias_ih"):
                    p[H : 2 * H] = 1.0

    def _layer_params(self, k: int, sfx: str = "") -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        return (
            getattr(self, f"weight_ih_l{k}{sfx}"),
            getattr(self, f"weight_hh_l{k}{sfx}"),
            getattr(self, f"bias_ih_l{k}{sfx}", None),
            getattr(self, f"bias_hh_l{k}{sfx}", None),
        )

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        """The parameters per layer and direction, in torch's order (``torch.nn.GRU.all_weights``):
        ``[[weight_ih_l0, weight_hh_l0, bias_ih_l0(, bias_hh_l0)], [..._l0_reverse], [..._l1], ...]``.
        The LSTM and SimpleRNN have no ``bias_hh`` (one bias, as Keras); nor has the ``reset_after=False`` GRU."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def flatten_parameters(self) -> None:
        """A no-op, kept for code written for ``torch.nn.GRU`` (where it packs the weights for cuDNN; on CPU it is a
        no-op there too). The fused kernel is called with the parameters as they are."""

    # ------------------------------------------------------------------ torch state dicts
    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
        # A torch.nn.LSTM / nn.RNN state dict has two biases per layer where Keras (and this layer) has one:
        # both are added to the gates' pre-activations, so their sum is the one bias. torch's load_state_dict
        # works on its own copy of the caller's dict, which is why it may be edited here.
        for names in self._all_weights:
            w_ih = names[0]
            b_ih, b_hh = prefix + w_ih.replace("weight_ih", "bias_ih"), prefix + w_ih.replace("weight_ih", "bias_hh")
            if b_hh[len(prefix) :] in names or b_hh not in state_dict:
                continue
            if self.kind == "gru":
                raise ValueError(
                    f"{b_hh!r}: this GRU has reset_after=False (the Keras 2.0.8 GRU of the book), whose one bias "
                    "cannot hold torch's recurrent bias: inside the candidate gate torch multiplies it by the reset "
                    "gate, r * (h U_n + b_hn), which no bias of the reset-before equation equals. Build the layer "
                    "with reset_after=True (the default) to load a torch.nn.GRU state dict."
                )
            if self.bias and b_ih in state_dict:
                state_dict[b_ih] = state_dict[b_ih] + state_dict.pop(b_hh)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing, unexpected, errors)

    @torch.no_grad()
    def torch_state_dict(self) -> dict[str, Tensor]:
        """This layer's weights as the state dict of the matching ``torch.nn.GRU`` / ``nn.LSTM`` / ``nn.RNN``
        (same sizes, ``bias``, ``bidirectional``, ``num_layers``): for the LSTM and SimpleRNN the one bias goes to
        ``bias_ih`` and ``bias_hh`` is zeros. Only the equations' weights travel: Keras's options (dropout,
        ``hard_sigmoid``, ...) have no torch counterpart. The reverse, ``load_state_dict(torch_layer.state_dict())``,
        works directly."""
        if self.kind == "gru" and not self.reset_after:
            raise ValueError(
                "a reset_after=False GRU (the Keras 2.0.8 GRU of the book) has no torch.nn.GRU equivalent: torch "
                "applies the reset gate after the recurrent matmul (reset_after=True)"
            )
        out: dict[str, Tensor] = {}
        for names in self._all_weights:
            for name in names:
                out[name] = getattr(self, name).detach().clone()
            if self.bias and len(names) == 3:
                out[names[2].replace("bias_ih", "bias_hh")] = torch.zeros_like(out[names[2]])
        return out

    @classmethod
    def from_torch(cls, module: nn.RNNBase, **keras_options):
        """A seqlight layer with the sizes, options and weights of ``module`` (a ``torch.nn.GRU`` for
        :class:`GRU`, ``nn.LSTM`` for :class:`LSTM`, ``nn.RNN`` for :class:`SimpleRNN`) and the same outputs.
        ``keras_options`` (keyword arguments such as ``dropout``, ``recurrent_dropout``) are passed on."""
        want = {"gru": nn.GRU, "lstm": nn.LSTM, "simple_rnn": nn.RNN}[cls.kind]
        if not isinstance(module, want):
            raise ValueError(f"{cls.__name__}.from_torch takes a torch.nn.{want.__name__}, got {type(module).__name__}")
        if getattr(module, "proj_size", 0):
            raise ValueError(f"proj_size={module.proj_size} is not supported (Keras has no projected LSTM)")
        if cls.kind == "simple_rnn":
            keras_options.setdefault("activation", module.nonlinearity)
        p = next(module.parameters())
        layer = cls(
            module.input_size,
            module.hidden_size,
            module.num_layers,
            bias=module.bias,
            batch_first=module.batch_first,
            inter_layer_dropout=module.dropout,
            bidirectional=module.bidirectional,
            device=p.device,
            dtype=p.dtype,
            **keras_options,
        )
        layer.load_state_dict(module.state_dict())
        return layer.train(module.training)

    # ------------------------------------------------------------------ the cell and the implementation
    @property
    def cell(self) -> Cell:
        """This layer's cell (:mod:`seqlight.nn.cells`): its equations, made from the current options."""
        key = (self.kind, self.activation, self.recurrent_activation, self.reset_after)
        cached = self.__dict__.get("_cell")
        if cached is None or cached[0] != key:
            cached = (key, make_cell(*key))
            self.__dict__["_cell"] = cached
        return cached[1]

    @property
    def use_fused(self) -> bool | None:
        """The older switch: ``None`` is ``implementation='auto'``, ``True`` ``'fused'``, ``False`` ``'loop'``."""
        return {"auto": None, "fused": True}.get(self.implementation, False)

    @use_fused.setter
    def use_fused(self, value: bool | None) -> None:
        if value not in (None, True, False):
            raise ValueError(f"use_fused must be None, True or False, got {value!r}")
        self.implementation = {None: "auto", True: "fused", False: "loop"}[value]

    def _fused_blocker(self, masked: bool = False) -> str | None:
        """Why the next call cannot run the fused kernel, or None if it can."""
        if self.cell.fused_kernel() is None:
            return (
                f"no fused kernel computes activation={self.activation!r}, recurrent_activation="
                f"{self.recurrent_activation!r}" + (f", reset_after={self.reset_after}" if self.kind == "gru" else "")
            )
        if self.training and self.recurrent_dropout > 0 and self.recurrent_dropout_mode == "per_sample":
            return "per-sample recurrent dropout (recurrent_dropout_mode='per_sample') in training"
        if masked:
            return "a padding mask (lengths=, mask= or a PackedSequence): Keras's masking runs in the custom loop"
        return None

    def uses_fused_path(self, masked: bool = False) -> bool:
        """Whether the next call (in the current train/eval mode; ``masked``: with a padding mask) runs
        PyTorch's fused kernel. Raises ValueError for ``implementation='fused'`` when it cannot.

        Under autocast the kernel may run in the parameters' dtype rather than the autocast dtype, where it
        has no kernel for the latter (see :mod:`seqlight.nn._fused`); it is the fused kernel all the same.
        """
        if self.implementation not in ("auto", "fused"):
            return False
        why = self._fused_blocker(masked)
        if self.implementation == "fused" and why is not None:
            raise ValueError(f"implementation='fused' (use_fused=True) but this call needs the custom loop: {why}")
        return why is None

    # ------------------------------------------------------------------ masks
    def _per_gate_input_masks(self) -> bool:
        # Keras (2.x, and 3 with recurrent_dropout > 0) draws one input mask per gate in its step-by-step
        # implementation; Keras 3's fused path draws one mask shared by the gates. We follow both.
        return self.recurrent_dropout > 0 and self.recurrent_dropout_mode == "per_sample"

    def draw_masks(self, batch: int, in_size: int, layer: int, like: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """Draw this call's dropout masks for layer ``layer`` (already scaled by ``1 / (1 - rate)``).

        Returns ``(input_mask, recurrent_mask)``, each ``None`` when inactive (eval mode or rate 0):

        - input mask ``(B, in)`` shared by the gates, or ``(G, B, in)`` one per gate when
          ``recurrent_dropout > 0`` and ``recurrent_dropout_mode == 'per_sample'`` (Keras's step-by-step
          implementation);
        - recurrent mask ``(G, B, H)`` per sample and gate (``'per_sample'``) or ``(G, H)`` shared by the
          batch (``'batch'``).

        The masks take ``like``'s dtype and device (:meth:`forward` passes a parameter of the layer).
        Tests override this method to inject masks.
        """
        del layer
        G, H = self.gates, self.hidden_size
        in_mask = rec_mask = None
        if self.training and self.dropout > 0:
            shape = (G, batch, in_size) if self._per_gate_input_masks() else (batch, in_size)
            keep = 1.0 - self.dropout
            in_mask = torch.empty(shape, dtype=like.dtype, device=like.device).bernoulli_(keep).div_(keep)
        if self.training and self.recurrent_dropout > 0:
            shape = (G, batch, H) if self.recurrent_dropout_mode == "per_sample" else (G, H)
            keep = 1.0 - self.recurrent_dropout
            rec_mask = torch.empty(shape, dtype=like.dtype, device=like.device).bernoulli_(keep).div_(keep)
        return in_mask, rec_mask

    # ------------------------------------------------------------------ forward
    def _check_state(self, name: str, t, batch: int | None, x: Tensor) -> Tensor:
        """Validate one initial state as ``torch.nn.GRU`` does, naming what was expected and what came."""
        LD, H = self.num_layers * self.num_directions, self.hidden_size
        want = (LD, H) if batch is None else (LD, batch, H)
        if not isinstance(t, Tensor):
            raise ValueError(f"{name} must be a tensor of shape {want}, got {type(t).__name__}")
        if tuple(t.shape) != want:
            raise ValueError(
                f"{name} must have shape {want} (num_layers * num_directions, "
                f"{'' if batch is None else 'batch, '}hidden_size), got {tuple(t.shape)}"
                + (" (unbatched 2-D input takes a 2-D state)" if batch is None else "")
            )
        if t.device != x.device:
            raise ValueError(f"{name} is on {t.device}, the input on {x.device}: they must be on the same device")
        if t.dtype != x.dtype and t.dtype != self.weight_ih_l0.dtype:
            raise ValueError(f"{name} has dtype {t.dtype}, the input {x.dtype}: they must have the same dtype")
        return t if batch is not None else t.unsqueeze(1)

    def _initial_state(self, hx, batch: int, x: Tensor, like: Tensor, batched: bool = True):
        LD, H = self.num_layers * self.num_directions, self.hidden_size
        if hx is None:
            z = like.new_zeros(LD, batch, H)
            return z, (z if self.cell.has_cell_state else None)
        b = batch if batched else None
        if self.cell.has_cell_state:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise ValueError(f"the LSTM's state must be the pair (h_0, c_0), got {type(hx).__name__}")
            return self._check_state("h_0", hx[0], b, x), self._check_state("c_0", hx[1], b, x)
        return self._check_state("hx", hx, b, x), None

    def forward(self, input: Tensor | PackedSequence, hx=None, *, lengths=None, mask=None):
        """Run the layer on ``input`` (``(B, T, in)`` with ``batch_first=True``, ``(T, in)`` unbatched, or a
        ``PackedSequence``).

        Returns ``(output, h_n)`` (``(output, (h_n, c_n))`` for the LSTM): ``output`` is the last layer's
        hidden state at every step, ``(B, T, D*H)`` (Keras ``return_sequences=True``; ``output[:, -1]`` or
        ``h_n[-1]`` is Keras's default ``return_sequences=False``), ``h_n`` is ``(num_layers * D, B, H)``,
        ``D = 2`` if ``bidirectional`` else 1, in torch's order (layer by layer, forward then backward).
        With ``go_backwards=True`` the sequence is processed from the end, and ``output`` is in processing
        order (reversed), as in Keras. ``hx`` is checked as torch checks it (shape, device, dtype).

        Variable lengths (:mod:`seqlight.nn._masks`), with Keras's masking: a masked step keeps the previous
        state, and ``output`` repeats it there; ``h_n`` is each sequence's state after its last real step.

        - ``input`` a ``PackedSequence``: ``output`` is packed the same way (torch's layout), ``h_n`` in the
          original batch order;
        - ``lengths (B,)``: the first ``lengths[b]`` steps of sequence ``b`` are real (padding at the end);
        - ``mask (B, T)`` (``(T, B)`` with ``batch_first=False``): True (or nonzero) for a real step; padding
          anywhere (the book's ``pad_sequences`` pads at the front).
        """
        packed = None
        if isinstance(input, PackedSequence):
            if lengths is not None or mask is not None:
                raise ValueError("a PackedSequence carries its lengths: give no lengths= or mask= with it")
            if self.go_backwards:
                raise ValueError(
                    "go_backwards=True with a PackedSequence: its reversed output has no packed layout; use "
                    "bidirectional=True, seqlight.nn.Bidirectional, or a padded batch with lengths="
                )
            x, lens, packed = unpack(input)
            batched = True
            steps = step_mask(None, lens.to(x.device), x.shape[0], x.shape[1], x.device)
        else:
            batched = input.dim() == 3
            if not batched:
                if input.dim() != 2:
                    raise ValueError(
                        "input must be 3-D (batch, time, features) or 2-D (time, features), got shape "
                        f"{tuple(input.shape)}"
                    )
                input = input.unsqueeze(0 if self.batch_first else 1)
                mask = None if mask is None else torch.as_tensor(mask).unsqueeze(0 if self.batch_first else 1)
                lengths = None if lengths is None else torch.as_tensor(lengths).reshape(1)
            x = input if self.batch_first else input.transpose(0, 1)
            if mask is not None and not self.batch_first:
                mask = torch.as_tensor(mask).transpose(0, 1)
            steps = step_mask(mask, lengths, x.shape[0], x.shape[1], x.device)
        if x.shape[-1] != self.input_size:
            raise ValueError(f"input has {x.shape[-1]} features, the layer expects input_size={self.input_size}")
        if self.go_backwards:
            x = x.flip(1)
            steps = None if steps is None else steps.flip(1)
        B = x.shape[0]
        w = self.weight_ih_l0  # masks and zero states in the parameters' dtype (module docstring)
        h0, c0 = self._initial_state(hx, B, x, w, batched)
        fused = self.uses_fused_path(masked=steps is not None)
        if fused and not _fused.runs_under_autocast(self.kind, self.activation, x.device):
            # No kernel for the autocast dtype here: run this layer's recurrence as if autocast were off,
            # as autocast does for its float32 ops. Without autocast this check is one C call; with it, a
            # dict look-up (the probe runs once per process).
            x, h0 = x.to(w.dtype), h0.to(w.dtype)
            c0 = None if c0 is None else c0.to(w.dtype)
            autocast = torch.autocast(x.device.type, enabled=False)
        else:
            autocast = contextlib.nullcontext()
        run_layer = self._fused_layer if fused else self._custom_layer
        D = self.num_directions
        hs, cs = [], []
        with autocast:
            for k in range(self.num_layers):
                if k and self.inter_layer_dropout and self.training:
                    x = self.drop_between_layers(x, k)
                ys = []
                for d, sfx in enumerate(self._suffixes):
                    # each direction is a layer of its own, with its own Keras masks (as Keras's Bidirectional)
                    in_mask, rec_mask = self.draw_masks(B, x.shape[-1], k, w)
                    i = k * D + d
                    state = (h0[i], c0[i] if c0 is not None else None)
                    flip = (lambda t: t.flip(1)) if d else (lambda t: t)
                    st = None if steps is None else flip(steps)
                    y, h, c = run_layer(k, sfx, flip(x), state, in_mask, rec_mask, st)
                    ys.append(flip(y))  # the backward direction's output in chronological order
                    hs.append(h)
                    cs.append(c)
                x = ys[0] if D == 1 else torch.cat(ys, -1)
        h_n = torch.stack(hs, 0)
        c_n = torch.stack(cs, 0) if self.cell.has_cell_state else None
        if packed is not None:
            out = restore_packed(x, packed)
        else:
            out = x if self.batch_first else x.transpose(0, 1)
        if not batched:
            out, h_n = out.squeeze(0 if self.batch_first else 1), h_n.squeeze(1)
            c_n = None if c_n is None else c_n.squeeze(1)
        if c_n is not None:
            return out, (h_n, c_n)
        return out, h_n

    def drop_between_layers(self, x: Tensor, layer: int) -> Tensor:
        """torch's ``dropout`` (here ``inter_layer_dropout``) on the output of layer ``layer - 1``, elementwise,
        in training only. Tests override this method to inject masks."""
        del layer
        return nn.functional.dropout(x, self.inter_layer_dropout, True)

    def _fused_layer(self, k, sfx, x, state, in_mask, rec_mask, steps):
        del steps  # never set on this path (uses_fused_path)
        w_ih, w_hh, b_ih, b_hh = self._layer_params(k, sfx)
        if b_ih is None:  # bias=False
            params = [w_ih, w_hh]
        else:
            params = [w_ih, w_hh, b_ih, torch.zeros_like(b_ih) if b_hh is None else b_hh]  # Keras's one bias
        if in_mask is not None:
            x = x * in_mask.unsqueeze(1)
        if rec_mask is not None:  # batch-shared masks fold into the weight columns, gate by gate
            G, H = self.gates, self.hidden_size
            params[1] = (w_hh.view(G, H, H) * rec_mask.unsqueeze(1)).reshape(G * H, H)
        h0 = state[0].unsqueeze(0).contiguous()
        c0 = None if state[1] is None else state[1].unsqueeze(0).contiguous()
        out, h, c = _fused.call(self.cell.fused_kernel(), x, h0, c0, params, self.training)
        return out, h[0], None if c is None else c[0]

    def _custom_layer(self, k, sfx, x, state, in_mask, rec_mask, steps):
        w_ih, w_hh, b_ih, b_hh = self._layer_params(k, sfx)
        cell = self.cell
        G, H = self.gates, self.hidden_size
        if b_hh is None and cell.has_recurrent_bias:  # bias=False: the equations with a zero recurrent bias
            b_hh = w_ih.new_zeros(G * H)
        if rec_mask is not None and rec_mask.dim() == 2:  # batch-shared: fold into the weights' columns
            w_hh = (w_hh.view(G, H, H) * rec_mask.unsqueeze(1)).reshape(G * H, H)
            rec_mask = None
        w_ih, b_ih, w_hh, b_hh = cell.fold(w_ih, b_ih, w_hh, b_hh)
        # time-major (T, B, in): the loop projects every step with one batched matmul (seqlight.nn.cells)
        x = x.transpose(0, 1)
        if in_mask is not None and in_mask.dim() == 3:  # one input mask per gate: (G, T, B, in)
            x = x.unsqueeze(0) * in_mask.unsqueeze(1)
        elif in_mask is not None:
            x = x * in_mask
        loop_steps = None if steps is None else steps.t().unsqueeze(-1).to(x.dtype)  # (T, B, 1)
        implementation = self.implementation if self.implementation in _loop.LOOP_IMPLEMENTATIONS else "auto"
        return _loop.run(cell, x, w_ih, b_ih, w_hh, b_hh, state[0], state[1], rec_mask, loop_steps, implementation)

    # ------------------------------------------------------------------ Keras weights
    def load_keras_weights(self, weights) -> None:
        """Load the list returned by Keras's ``layer.get_weights()``.

        ``[kernel (in, G*H), recurrent_kernel (H, G*H), bias]`` in Keras gate order (GRU z, r, h; LSTM
        i, f, c, o); without the bias for ``bias=False`` (Keras ``use_bias=False``). The GRU bias is ``(3H,)``
        in the Keras 2.0.8 layout (``reset_after=False``) and ``(2, 3H)`` in the tf.keras / Keras 3 layout
        (``reset_after=True``). For ``num_layers > 1`` pass the concatenation of the per-layer lists (as a
        stack of Keras layers would return them); with ``bidirectional=True`` each layer's forward list then
        its backward list (for one layer, Keras's ``Bidirectional.get_weights()``).
        """
        weights = [np.asarray(w) for w in weights]
        n = 3 if self.bias else 2
        groups = self._all_weights
        if len(weights) != n * len(groups):
            what = "kernel, recurrent_kernel, bias" if self.bias else "kernel, recurrent_kernel: bias=False"
            raise ValueError(
                f"weights must hold {n} arrays per layer and direction ({what}), {n * len(groups)} for "
                f"num_layers={self.num_layers}, bidirectional={self.bidirectional}; got {len(weights)}"
            )
        G, H = self.gates, self.hidden_size
        perm = KERAS_TO_TORCH_GATES[self.kind]

        def reorder(a: np.ndarray) -> np.ndarray:  # (..., G*H) Keras order -> torch order
            return np.concatenate([a[..., g * H : (g + 1) * H] for g in perm], axis=-1)

        new = {}
        for j, names in enumerate(groups):
            kernel, rec = weights[n * j : n * j + 2]
            in_size = getattr(self, names[0]).shape[1]
            if kernel.shape != (in_size, G * H):
                raise ValueError(f"weights[{n * j}] (kernel) must have shape {(in_size, G * H)}, got {kernel.shape}")
            if rec.shape != (H, G * H):
                raise ValueError(
                    f"weights[{n * j + 1}] (recurrent_kernel) must have shape {(H, G * H)}, got {rec.shape}"
                )
            new[names[0]] = reorder(kernel).T
            new[names[1]] = reorder(rec).T
            if not self.bias:
                continue
            bias = weights[n * j + 2]
            two = self.kind == "gru" and self.reset_after
            want = (2, G * H) if two else (G * H,)
            if bias.shape != want:
                hint = ""
                if self.kind == "gru":
                    hint = (
                        " ((3*units,) is the Keras 2.0.8 reset-before GRU: build the layer with reset_after=False; "
                        "(2, 3*units) is reset_after=True)"
                    )
                raise ValueError(f"weights[{n * j + 2}] (bias) must have shape {want}, got {bias.shape}{hint}")
            if two:
                new[names[2]] = reorder(bias[0])
                new[names[3]] = reorder(bias[1])
            else:
                new[names[2]] = reorder(bias)
        with torch.no_grad():
            for name, value in new.items():
                p = getattr(self, name)
                p.copy_(torch.as_tensor(np.ascontiguousarray(value), dtype=p.dtype))

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.inter_layer_dropout:
            s += f", inter_layer_dropout={self.inter_layer_dropout}"
        s += f", activation={self.activation!r}"
        if self.kind != "simple_rnn":
            s += f", recurrent_activation={self.recurrent_activation!r}"
        if self.kind == "gru":
            s += f", reset_after={self.reset_after}"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.recurrent_dropout:
            s += f", recurrent_dropout={self.recurrent_dropout}, recurrent_dropout_mode={self.recurrent_dropout_mode!r}"
        if self.go_backwards:
            s += ", go_backwards=True"
        if not self.batch_first:
            s += ", batch_first=False"
        return s
