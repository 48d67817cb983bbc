"""The machinery shared by :class:`SimpleRNN`, :class:`LSTM` and :class:`GRU`.

One class, :class:`KerasRecurrent`, holds what the three layers have in common: parameters stored in
PyTorch's layout and gate order (``weight_ih_l{k}`` of shape ``(G*H, in)``, ``weight_hh_l{k}`` of shape
``(G*H, H)``), Keras initializers, Keras dropout masks, and the choice between two execution paths:

- the **fused path**: PyTorch's own kernel (``torch._VF.gru/lstm/rnn_tanh/rnn_relu``: oneDNN on CPU,
  cuDNN on GPU). It is taken whenever the semantics allow: ``tanh`` activation, ``sigmoid`` gates,
  ``reset_after=True`` for the GRU, and no per-sample recurrent dropout. Input dropout is a time-constant
  mask multiplied into the input in front of the kernel; batch-shared recurrent dropout is folded into
  the columns of the recurrent weight matrix (``U (h * m) == (U diag(m)) h``). Under autocast the kernel
  computes in the autocast dtype where it has a kernel for it; where it has none (oneDNN's bf16 LSTM on
  CPUs without AVX-512, see :mod:`seqlight.nn._fused`) it runs with autocast off, in the parameters' dtype.
- the **custom loop** (:mod:`seqlight.nn._loop`): everything else (``hard_sigmoid``, the Keras 2.0.8
  reset-before GRU, ``relu`` LSTM/GRU, per-sample recurrent dropout). The input projections of all
  timesteps are one matmul; each step is one batched recurrent matmul plus a few elementwise ops, with a
  hand-written backward pass.

Masks are drawn in :meth:`KerasRecurrent.draw_masks`, once per call (i.e. once per sequence) and
reused at every timestep, like Keras. Gate ``g`` of a mask is gate ``g`` in the storage order (GRU: r, z,
n; LSTM: i, f, g, o). Masks and the zero initial state take the parameters' dtype, not the input's: under
autocast the input of a stacked layer may be bf16 (the previous layer's output), and a bf16 mask would round
``1 / (1 - rate)`` (``1 / 0.7`` becomes 1.4297) and change with the path the previous layer took.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
from torch import Tensor, nn

from seqlight.nn import _fused, _loop
from seqlight.nn._loop import ACTIVATIONS, hard_sigmoid

__all__ = ["KerasRecurrent", "ACTIVATIONS", "hard_sigmoid", "KERAS_TO_TORCH_GATES"]

_GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}
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


class KerasRecurrent(nn.Module):
    """Base class of the Keras-faithful recurrent layers; see :class:`seqlight.nn.GRU` for the arguments."""

    kind = "gru"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        batch_first: bool = True,
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
    ) -> None:
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if recurrent_dropout_mode not in ("per_sample", "batch"):
            raise ValueError(f"recurrent_dropout_mode must be 'per_sample' or 'batch', got {recurrent_dropout_mode!r}")
        if initializer not in ("keras", "torch"):
            raise ValueError(f"initializer must be 'keras' or 'torch', got {initializer!r}")
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.batch_first = bool(batch_first)
        self.activation = _check_activation("activation", activation)
        self.recurrent_activation = _check_activation("recurrent_activation", recurrent_activation)
        self.dropout = _check_rate("dropout", dropout)
        self.recurrent_dropout = _check_rate("recurrent_dropout", recurrent_dropout)
        self.recurrent_dropout_mode = recurrent_dropout_mode
        self.go_backwards = bool(go_backwards)
        self.initializer = initializer
        self.reset_after = bool(reset_after) if self.kind == "gru" else True
        self.unit_forget_bias = bool(unit_forget_bias)
        self.use_fused = use_fused
        self.gates = _GATES[self.kind]
        G, H = self.gates, self.hidden_size
        for k in range(self.num_layers):
            in_size = self.input_size if k == 0 else H
            self.register_parameter(f"weight_ih_l{k}", nn.Parameter(torch.empty(G * H, in_size)))
            self.register_parameter(f"weight_hh_l{k}", nn.Parameter(torch.empty(G * H, H)))
            self.register_parameter(f"bias_ih_l{k}", nn.Parameter(torch.empty(G * H)))
            if self.kind == "gru" and self.reset_after:
                self.register_parameter(f"bias_hh_l{k}", nn.Parameter(torch.empty(G * H)))
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
                nn.init.orthogonal_(p)  # (G*H, H) with orthonormal columns == Keras's (H, G*H) orthogonal
            else:
                p.zero_()
                if self.kind == "lstm" and self.unit_forget_bias and name.startswith("bias_ih"):
                    p[H : 2 * H] = 1.0

    def _layer_params(self, k: int) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        b_hh = getattr(self, f"bias_hh_l{k}", None)
        return getattr(self, f"weight_ih_l{k}"), getattr(self, f"weight_hh_l{k}"), getattr(self, f"bias_ih_l{k}"), b_hh

    # ------------------------------------------------------------------ dispatch
    def _fused_semantics(self) -> bool:
        if self.kind == "simple_rnn":
            return self.activation in ("tanh", "relu")
        return self.activation == "tanh" and self.recurrent_activation == "sigmoid" and self.reset_after

    def uses_fused_path(self) -> bool:
        """Whether the next call (in the current train/eval mode) runs PyTorch's fused kernel.

        Under autocast the kernel may run in the parameters' dtype rather than the autocast dtype, where it
        has no kernel for the latter (see :mod:`seqlight.nn._fused`); it is the fused kernel all the same.
        """
        if self.use_fused is False:
            return False
        per_sample_rd = self.training and self.recurrent_dropout > 0 and self.recurrent_dropout_mode == "per_sample"
        ok = self._fused_semantics() and not per_sample_rd
        if self.use_fused and not ok:
            raise ValueError(
                f"use_fused=True but these settings need the custom loop (activation={self.activation!r}, "
                f"recurrent_activation={self.recurrent_activation!r}, reset_after={self.reset_after}, "
                f"recurrent_dropout_mode={self.recurrent_dropout_mode!r})"
            )
        return ok

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
    def _initial_state(self, hx, batch: int, like: Tensor):
        L, H = self.num_layers, self.hidden_size
        if self.kind == "lstm":
            if hx is None:
                z = like.new_zeros(L, batch, H)
                return z, z
            h0, c0 = hx
            return h0, c0
        if hx is None:
            return like.new_zeros(L, batch, H), None
        return hx, None

    def forward(self, input: Tensor, hx=None):
        """Run the layer on ``input`` (``(B, T, in)`` with ``batch_first=True``).

        Returns ``(output, h_n)`` (``(output, (h_n, c_n))`` for the LSTM): ``output`` is the last layer's
        hidden state at every step, ``(B, T, H)`` (Keras ``return_sequences=True``; ``output[:, -1]`` or
        ``h_n[-1]`` is Keras's default ``return_sequences=False``), ``h_n`` is ``(num_layers, B, H)``.
        With ``go_backwards=True`` the sequence is processed from the end, and ``output`` is in processing
        order (reversed), as in Keras.
        """
        if input.dim() != 3:
            raise ValueError(f"input must be 3-D (batch, time, features), got shape {tuple(input.shape)}")
        x = input if self.batch_first else input.transpose(0, 1)
        if x.shape[-1] != self.input_size:
            raise ValueError(f"input has {x.shape[-1]} features, the layer expects input_size={self.input_size}")
        if self.go_backwards:
            x = x.flip(1)
        B = x.shape[0]
        w = self.weight_ih_l0  # masks and zero states in the parameters' dtype (module docstring)
        h0, c0 = self._initial_state(hx, B, w)
        fused = self.uses_fused_path()
        if fused and not _fused.runs_under_autocast(self.kind, self.activation, x.device):
            # No kernel for the autocast dtype here: run this layer's recurrence as if autocast were off,
            # as autocast does for its float32 ops. Without autocast this check is one C call; with it, a
            # dict look-up (the probe runs once per process).
            x, h0 = x.to(w.dtype), h0.to(w.dtype)
            c0 = None if c0 is None else c0.to(w.dtype)
            autocast = torch.autocast(x.device.type, enabled=False)
        else:
            autocast = contextlib.nullcontext()
        hs, cs = [], []
        with autocast:
            for k in range(self.num_layers):
                in_mask, rec_mask = self.draw_masks(B, x.shape[-1], k, w)
                state = (h0[k], c0[k] if c0 is not None else None)
                if fused:
                    x, h, c = self._fused_layer(k, x, state, in_mask, rec_mask)
                else:
                    x, h, c = self._custom_layer(k, x, state, in_mask, rec_mask)
                hs.append(h)
                cs.append(c)
        out = x if self.batch_first else x.transpose(0, 1)
        h_n = torch.stack(hs, 0)
        if self.kind == "lstm":
            return out, (h_n, torch.stack(cs, 0))
        return out, h_n

    def _fused_layer(self, k, x, state, in_mask, rec_mask):
        w_ih, w_hh, b_ih, b_hh = self._layer_params(k)
        if b_hh is None:  # Keras's single bias: the kernel's recurrent bias is zero
            b_hh = torch.zeros_like(b_ih)
        if in_mask is not None:
            x = x * in_mask.unsqueeze(1)
        if rec_mask is not None:  # batch-shared masks fold into the weight columns, gate by gate
            G, H = self.gates, self.hidden_size
            w_hh = (w_hh.view(G, H, H) * rec_mask.unsqueeze(1)).reshape(G * H, H)
        h0 = state[0].unsqueeze(0).contiguous()
        c0 = None if state[1] is None else state[1].unsqueeze(0).contiguous()
        out, h, c = _fused.call(self.kind, self.activation, x, h0, c0, [w_ih, w_hh, b_ih, b_hh], self.training)
        return out, h[0], None if c is None else c[0]

    def _custom_layer(self, k, x, state, in_mask, rec_mask):
        w_ih, w_hh, b_ih, b_hh = self._layer_params(k)
        G, H = self.gates, self.hidden_size
        B, T = x.shape[0], x.shape[1]
        x = x.transpose(0, 1)  # (T, B, in): the projections come out gate- and time-major for the loop
        kernel = w_ih.view(G, H, -1).transpose(1, 2)  # (G, in, H)
        bias = b_ih.view(G, 1, H)
        if in_mask is not None and in_mask.dim() == 3:  # one input mask per gate
            xm = x.unsqueeze(0) * in_mask.unsqueeze(1)  # (G, T, B, in)
            xw = torch.baddbmm(bias, xm.reshape(G, T * B, -1), kernel)
        else:
            if in_mask is not None:
                x = x * in_mask
            xw = torch.baddbmm(bias, x.reshape(1, T * B, -1).expand(G, -1, -1), kernel)  # all steps at once
        xw = xw.view(G, T, B, H)
        if rec_mask is not None and rec_mask.dim() == 2:  # batch-shared: fold into the weights
            w_hh = (w_hh.view(G, H, H) * rec_mask.unsqueeze(1)).reshape(G * H, H)
            rec_mask = None
        return _loop.run(
            self.kind,
            xw,
            w_hh,
            b_hh,
            state[0],
            state[1],
            rec_mask,
            self.activation,
            self.recurrent_activation,
            self.reset_after,
        )

    # ------------------------------------------------------------------ Keras weights
    def load_keras_weights(self, weights) -> None:
        """Load the list returned by Keras's ``layer.get_weights()``.

        ``[kernel (in, G*H), recurrent_kernel (H, G*H), bias]`` in Keras gate order (GRU z, r, h; LSTM
        i, f, c, o). The GRU bias is ``(3H,)`` in the Keras 2.0.8 layout (``reset_after=False``) and
        ``(2, 3H)`` in the tf.keras / Keras 3 layout (``reset_after=True``). For ``num_layers > 1`` pass the
        concatenation of the per-layer lists (as a stack of Keras layers would return them).
        """
        weights = [np.asarray(w) for w in weights]
        if len(weights) != 3 * self.num_layers:
            raise ValueError(
                f"weights must hold 3 arrays per layer (kernel, recurrent_kernel, bias), "
                f"{3 * self.num_layers} for num_layers={self.num_layers}; got {len(weights)}"
            )
        G, H = self.gates, self.hidden_size
        perm = KERAS_TO_TORCH_GATES[self.kind]

        def reorder(a: np.ndarray) -> np.ndarray:  # (..., G*H) Keras order -> torch order
            return np.concatenate([a[..., g * H : (g + 1) * H] for g in perm], axis=-1)

        new = {}
        for k in range(self.num_layers):
            kernel, rec, bias = weights[3 * k : 3 * k + 3]
            in_size = self.input_size if k == 0 else H
            if kernel.shape != (in_size, G * H):
                raise ValueError(f"weights[{3 * k}] (kernel) must have shape {(in_size, G * H)}, got {kernel.shape}")
            if rec.shape != (H, G * H):
                raise ValueError(
                    f"weights[{3 * k + 1}] (recurrent_kernel) must have shape {(H, G * H)}, got {rec.shape}"
                )
            two = self.kind == "gru" and self.reset_after
            want = (2, G * H) if two else (G * H,)
            if bias.shape != want:
                hint = ""
                if self.kind == "gru":
                    hint = (
                        " ((3*units,) is the Keras 2.0.8 reset-before GRU: build the layer with reset_after=False; "
                        "(2, 3*units) is reset_after=True)"
                    )
                raise ValueError(f"weights[{3 * k + 2}] (bias) must have shape {want}, got {bias.shape}{hint}")
            new[f"weight_ih_l{k}"] = reorder(kernel).T
            new[f"weight_hh_l{k}"] = reorder(rec).T
            if two:
                new[f"bias_ih_l{k}"] = reorder(bias[0])
                new[f"bias_hh_l{k}"] = reorder(bias[1])
            else:
                new[f"bias_ih_l{k}"] = reorder(bias)
        with torch.no_grad():
            for name, value in new.items():
                p = getattr(self, name)
                p.copy_(torch.as_tensor(np.ascontiguousarray(value), dtype=p.dtype))

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
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
