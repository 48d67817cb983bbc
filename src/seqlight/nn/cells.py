"""The recurrent cells: one object per kind of cell, holding that cell's equations and nothing else.

A cell knows one timestep: its forward (:meth:`Cell.step`), its backward (:meth:`Cell.step_backward`), the
same step as a plain loop that autograd records and TorchScript compiles (:attr:`Cell.loop`), and PyTorch's
fused kernel when its semantics are torch's (:meth:`Cell.fused_kernel`). Layers, padding masks, dropout modes
and the choice of implementation live around the cells (:mod:`seqlight.nn._loop`, :mod:`seqlight.nn.recurrent`),
as Keras keeps its cells apart from its ``RNN`` layer.

For a batch of ``B``, ``H`` units and ``G`` gates in storage (torch) order (GRU r, z, n; LSTM i, f, g, o): the
recurrent weight ``w_hh (G*H, H)`` and, for the GRU with ``reset_after=True``, its recurrent bias ``b_hh
(G*H,)``; an optional per-sample recurrent dropout mask ``rmask (G, B, H)``; the affine parts of the
activations are folded into the weights (:mod:`seqlight.nn.activations`).

The steps work feature-major: the state is ``(H, B)`` and the input projections of every step ``xw (T, G*H,
B)``, so that a step is one contiguous block and every gate of it a contiguous ``(H, B)`` block (a ``(B, H)``
column slice of a ``(B, G*H)`` row makes each elementwise op several times dearer, and a step scattered over
many pages is cold in cache). The step's recurrent matmul is one ``addmm_`` into its block of ``xw``, and the
step overwrites ``xw`` with the gates' activations; what else the backward pass needs goes into ``(T, ., B)``
buffers (:meth:`Cell.buffer_shapes`), which the loop provides and saves. The backward step writes the gradient
of the step's input projections into its block of ``d_pre (T, G*H, B)`` and adds its share of the recurrent
weight gradient while the step's tensors are in cache.

Per-step views (``x[t]``, each gate's block) are made once per call with ``unbind`` (:meth:`Cell.blocks`): a
Python slice costs microseconds, as much as a small op.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from seqlight.nn.activations import ACTIVATIONS, Activation, activate, activate_fn

__all__ = ["Cell", "SimpleRNNCell", "LSTMCell", "GRUCell", "GRUResetBeforeCell", "make_cell"]


class _Recurrent:
    """The recurrent matmul of ``g`` gates, feature-major: ``[U_k (h * m_k)]_k`` as ``(g*H, B)`` for a state
    ``h (H, B)`` and masks ``m (g, H, B)``; forward, backward and the weight gradient."""

    def __init__(self, w: Tensor, mask: Tensor | None) -> None:
        self.w, self.wt, self.mask = w, w.t(), mask  # w (g*H, H); mask (g, H, B) or None
        self.g, self.H = w.shape[0] // w.shape[1], w.shape[1]
        self.w3 = w.view(self.g, self.H, self.H)

    def _masked(self, h: Tensor) -> Tensor:
        return h * self.mask  # (g, H, B)

    def forward_(self, x: Tensor, h: Tensor) -> Tensor:
        """``x += [U_k (h * m_k)]_k`` in place (``x (g*H, B)``, a step of ``xw``)."""
        if self.mask is None:
            return x.addmm_(self.w, h)
        x.view(self.g, self.H, -1).baddbmm_(self.w3, self._masked(h))
        return x

    def forward(self, bias: Tensor, h: Tensor, out: Tensor) -> Tensor:
        """``[U_k (h * m_k) + c_k]_k`` into ``out (g*H, B)``; ``bias (g*H, 1)``."""
        if self.mask is None:
            return torch.addmm(bias, self.w, h, out=out)
        torch.baddbmm(bias.view(self.g, self.H, 1), self.w3, self._masked(h), out=out.view(self.g, self.H, -1))
        return out

    def backward(self, add: Tensor | None, d: Tensor) -> Tensor:
        """``add + dL/dh`` for the gradient ``d (g*H, B)`` of the recurrent projections."""
        if self.mask is None:
            return torch.mm(self.wt, d) if add is None else torch.addmm(add, self.wt, d)
        dh = (torch.bmm(self.w3.transpose(1, 2), d.view(self.g, self.H, -1)) * self.mask).sum(0)
        return dh if add is None else dh.add_(add)

    def accumulate(self, d_w: Tensor, d: Tensor, h: Tensor) -> None:
        """Per step, while the step's tensors are in cache: ``d_w[k] += d_k (h * m_k)^T``."""
        if self.mask is None:
            d_w.addmm_(d, h.t())
        else:
            d_w.view(self.g, self.H, self.H).baddbmm_(d.view(self.g, self.H, -1), self._masked(h).transpose(1, 2))


class Cell:
    """One kind of recurrent cell (the interface; see the module docstring for the layout).

    Args:
        activation, recurrent_activation: names in :data:`seqlight.nn.activations.ACTIVATIONS`.
    """

    gates: int = 1
    has_cell_state: bool = False
    #: whether the cell has a recurrent bias ``b_hh`` of its own (only the GRU with ``reset_after=True``)
    has_recurrent_bias: bool = False
    #: per gate (storage order): True where the recurrent activation applies, False for the activation
    gate_is_recurrent: tuple[bool, ...] = (False,)
    #: the plain loop (autograd records it, TorchScript compiles it): ``xw (T, B, G*H)``, states ``(B, H)``
    loop: Callable
    #: the row blocks ``(first gate, end gate)`` whose per-step views the steps use (:meth:`blocks`)
    block_gates: tuple[tuple[int, int], ...] = ()
    #: the order of the gates inside the loop, as storage indices (None: the storage order); :meth:`fold` puts
    #: the weights in it and :meth:`order_gates` the masks, so that gates sharing an activation are adjacent
    gate_order: tuple[int, ...] | None = None
    #: the name of the cell's loop in C (:mod:`seqlight.nn._native`), or None
    native: str | None = None

    def __init__(self, activation: str = "tanh", recurrent_activation: str = "sigmoid") -> None:
        self.activation, self.recurrent_activation = activation, recurrent_activation
        self.act: Activation = ACTIVATIONS[activation]
        self.ract: Activation = ACTIVATIONS[recurrent_activation]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.activation!r}, {self.recurrent_activation!r})"

    # -------------------------------------------------------------- what can run it
    def fused_kernel(self) -> Callable | None:
        """PyTorch's fused kernel (``torch._VF.*``) computing exactly this cell, or None."""
        return None

    def has_hand_backward(self) -> bool:
        """Whether every activation's derivative follows from its output (the hand-written backward)."""
        used = {self.act} | ({self.ract} if any(self.gate_is_recurrent) else set())
        return all(a.grad is not None for a in used)

    def core_names(self) -> tuple[str, str]:
        """The activations' names for :func:`seqlight.nn.activations.activate` (the cores, after folding)."""
        return self.activation, self.recurrent_activation

    # -------------------------------------------------------------- folding the activations' affine maps
    def fold(self, w_ih: Tensor, b_ih: Tensor | None, w_hh: Tensor, b_hh: Tensor | None):
        """The weights with each gate's ``scale * a + shift`` folded in and the gates in :attr:`gate_order`
        (autograd ops, before the loop)."""
        w_ih, b_ih, w_hh, b_hh = self._fold_affine(w_ih, b_ih, w_hh, b_hh)
        H = w_hh.shape[1]
        return tuple(self.order_gates(w, block=H) for w in (w_ih, b_ih, w_hh, b_hh))

    def _fold_affine(self, w_ih, b_ih, w_hh, b_hh):
        acts = [self.ract if r else self.act for r in self.gate_is_recurrent]
        if not any(a.affine for a in acts):
            return w_ih, b_ih, w_hh, b_hh
        H = w_hh.shape[1]
        scale = torch.tensor([a.scale for a in acts], dtype=w_ih.dtype, device=w_ih.device).repeat_interleave(H)
        shift = torch.tensor([a.shift for a in acts], dtype=w_ih.dtype, device=w_ih.device).repeat_interleave(H)
        b_ih = shift if b_ih is None else torch.addcmul(shift, b_ih, scale)
        s = scale.unsqueeze(1)
        return w_ih * s, b_ih, w_hh * s, (None if b_hh is None else b_hh * scale)

    def order_gates(self, t: Tensor | None, dim: int = 0, block: int = 1) -> Tensor | None:
        """``t`` with its gates (``block`` rows each along ``dim``) in :attr:`gate_order`."""
        if t is None or self.gate_order is None:
            return t
        return torch.cat([t.narrow(dim, g * block, block) for g in self.gate_order], dim)

    # -------------------------------------------------------------- the step
    def blocks(self, xw: Tensor) -> list[tuple[Tensor, ...]]:
        """Per-step views of ``xw`` (or of ``d_pre``) ``(T, G*H, B)``: the whole step, then each block of
        :attr:`block_gates`, each as a tuple over time."""
        H = xw.shape[1] // self.gates
        return [xw.unbind(0)] + [xw[:, a * H : b * H].unbind(0) for a, b in self.block_gates]

    def buffer_shapes(self, T: int, B: int, H: int) -> list[tuple[int, ...]]:
        """The ``(T, ., B)`` buffers the forward step fills and the backward step reads (the loop provides them)."""
        return []

    def prepare(self, w_hh: Tensor, b_hh: Tensor | None, rmask: Tensor | None):
        """Per-call constants of the step (the recurrent matmuls); ``rmask (G, H, B)``, feature-major."""
        return _Recurrent(w_hh, rmask)

    def step(self, P, t: int, x, h: Tensor, c: Tensor | None, buf, h_out, c_out):
        """Step ``t`` from ``x`` (:meth:`blocks` of ``xw``; overwritten with the gates) and the state ``(H, B)``;
        writes the new ``h`` (``c``) into ``h_out`` (``c_out``) when given, else returns fresh tensors. ``buf``:
        the buffers, each unbound along time. Returns ``(h, c or None)``."""
        raise NotImplementedError

    def step_backward(self, P, t: int, dh, dc, hs, cs, x, buf, gbuf, d, d_w):
        """The gradient of step ``t`` from ``dh`` (``dc``) w.r.t. its new state; fills step ``t`` of ``d``
        (:meth:`blocks` of ``d_pre``) and returns ``(dh, dc)`` w.r.t. the state before it. ``hs``: the states
        (``hs[t]`` before step ``t``), ``x``: :meth:`blocks` of ``xw`` as the forward steps left it."""
        raise NotImplementedError

    def grad_buffer_shapes(self, T: int, B: int, H: int) -> list[tuple[int, ...]]:
        """The ``(T, ., B)`` buffers the backward steps fill (unbound along time for them)."""
        return []

    def finish_backward(self, P, hs: Tensor, buf, gbuf, d_pre: Tensor, d_w: Tensor) -> Tensor | None:
        """After the backward loop: the recurrent bias's gradient (or None)."""
        return None


# ------------------------------------------------------------------------------------------------ SimpleRNN
def _simple_rnn_loop(
    xw: Tensor,
    w_hh: Tensor,
    b_hh: Tensor | None,
    h: Tensor,
    c: Tensor,
    rmask: Tensor | None,
    steps: Tensor | None,
    act: str,
    ract: str,
) -> tuple[Tensor, Tensor, Tensor]:
    """``h' = act(x + (h * m) U^T)``; ``steps (T, B, 1)``: keep the state where 0. Returns ``(out, h_T, c)``."""
    # The Optionals are resolved before the loop: inside it TorchScript would carry them as Optional values,
    # which the ONNX export cannot type. The placeholders are never read.
    masked = rmask is not None
    m = rmask[0] if rmask is not None else h
    keep = steps is not None
    s = steps if steps is not None else xw
    wt = w_hh.t()
    outs = []
    for t in range(xw.shape[0]):
        hm = h * m if masked else h
        new = activate(act, xw[t] + hm @ wt)
        h = torch.where(s[t] > 0, new, h) if keep else new
        outs.append(h)
    return torch.stack(outs, 0), h, c


class SimpleRNNCell(Cell):
    """Keras ``SimpleRNN``: ``h' = activation(x W + b + (h * m) U)``."""

    native = "simple_rnn"
    gates = 1
    gate_is_recurrent = (False,)
    loop = staticmethod(_simple_rnn_loop)

    def fused_kernel(self):
        return {"tanh": torch._VF.rnn_tanh, "relu": torch._VF.rnn_relu}.get(self.activation)

    def step(self, P, t, x, h, c, buf, h_out, c_out):
        return self.act.core_out(P.forward_(x[0][t], h), h_out), None

    def step_backward(self, P, t, dh, dc, hs, cs, x, buf, gbuf, d, d_w):
        # The step's output is hs[t + 1] wherever its gradient is not zero (masked steps get dh == 0).
        dt = self.act.grad(dh, hs[t + 1], d[0][t])
        P.accumulate(d_w, dt, hs[t])
        return P.backward(None, dt), None


# ------------------------------------------------------------------------------------------------ LSTM
def _lstm_loop(
    xw: Tensor,
    w_hh: Tensor,
    b_hh: Tensor | None,
    h: Tensor,
    c: Tensor,
    rmask: Tensor | None,
    steps: Tensor | None,
    act: str,
    ract: str,
) -> tuple[Tensor, Tensor, Tensor]:
    """``i, f, o = ract(.)``, ``g = act(.)``, ``c' = f c + i g``, ``h' = o act(c')``; gates in the loop's order
    i, f, o, g (:attr:`LSTMCell.gate_order`)."""
    T, B, GH = xw.shape
    H = GH // 4
    masked = rmask is not None
    m = rmask if rmask is not None else h.unsqueeze(0)
    keep = steps is not None
    s = steps if steps is not None else xw
    w3t = w_hh.view(4, H, H).transpose(1, 2)
    wt = w_hh.t()
    outs = []
    for t in range(T):
        if masked:
            a = xw[t] + torch.bmm(h * m, w3t).transpose(0, 1).reshape(B, GH)
        else:
            a = xw[t] + h @ wt
        i, f = activate(ract, a[:, :H]), activate(ract, a[:, H : 2 * H])
        o, g = activate(ract, a[:, 2 * H : 3 * H]), activate(act, a[:, 3 * H :])
        c_new = f * c + i * g
        h_new = o * activate_fn(act, c_new)
        if keep:
            k = s[t] > 0
            h, c = torch.where(k, h_new, h), torch.where(k, c_new, c)
        else:
            h, c = h_new, c_new
        outs.append(h)
    return torch.stack(outs, 0), h, c


class LSTMCell(Cell):
    """Keras ``LSTM`` (one bias), gates i, f, g, o (Keras i, f, c, o); inside the loop i, f, o, g, so that one op
    applies the recurrent activation to the three gates that take it."""

    native = "lstm"
    gates = 4
    has_cell_state = True
    gate_is_recurrent = (True, True, False, True)
    gate_order = (0, 1, 3, 2)
    loop = staticmethod(_lstm_loop)
    block_gates = ((0, 3), (0, 1), (1, 2), (2, 3), (3, 4))  # x[1] = i, f and o; x[2] = i, f, o, g

    def fused_kernel(self):
        return torch._VF.lstm if (self.activation, self.recurrent_activation) == ("tanh", "sigmoid") else None

    def buffer_shapes(self, T, B, H):
        return [(T, H, B)]  # activation(c'); the gates stay in xw

    def step(self, P, t, x, h, c, buf, h_out, c_out):
        P.forward_(x[0][t], h)  # the gates' pre-activations, in place
        ifo, i, f, o, g = x[1][t], x[2][t], x[3][t], x[4][t], x[5][t]
        self.ract.core_out(ifo, ifo)
        self.act.core_out(g, g)
        c_new = torch.addcmul(f * c, i, g, out=c_out)
        tc = self.act.fn_out(c_new, buf[0][t])
        return torch.mul(o, tc, out=h_out), c_new

    def step_backward(self, P, t, dh, dc, hs, cs, x, buf, gbuf, d, d_w):
        ifo, i, f, o, g, tc = x[1][t], x[2][t], x[3][t], x[4][t], x[5][t], buf[0][t]
        up = P.__dict__.get("up")
        if up is None:  # the upstream gradients of i, f and o, one step: made once per backward pass
            whole = dh.new_empty(3 * dh.shape[0], dh.shape[1])
            up = P.up = (whole, *whole.view(3, *dh.shape).unbind(0))
        dct = self.act.fn_grad(dh * o, tc, torch.empty_like(dh)).add_(dc)
        torch.mul(dct, g, out=up[1])
        torch.mul(dct, cs[t], out=up[2])
        torch.mul(dh, tc, out=up[3])
        self.ract.grad(up[0], ifo, d[1][t])
        self.act.grad(dct * i, g, d[5][t])
        dt = d[0][t]
        P.accumulate(d_w, dt, hs[t])
        return P.backward(None, dt), dct * f


# ------------------------------------------------------------------------------------------------ GRU
def _gru_loop(
    xw: Tensor,
    w_hh: Tensor,
    b_hh: Tensor | None,
    h: Tensor,
    c: Tensor,
    rmask: Tensor | None,
    steps: Tensor | None,
    act: str,
    ract: str,
) -> tuple[Tensor, Tensor, Tensor]:
    """``reset_after=True`` (Keras 3, torch): ``n = act(x_n + r * (h U_n + c_n))``, ``h' = n + z (h - n)``;
    ``b_hh`` is ``c_n`` alone (:meth:`GRUCell.fold`)."""
    T, B, GH = xw.shape
    H = GH // 3
    masked = rmask is not None
    m = rmask if rmask is not None else h.unsqueeze(0).expand(3, B, H)
    keep = steps is not None
    s = steps if steps is not None else xw
    bias = b_hh if b_hh is not None else xw.new_zeros(H)  # c_n; c_r and c_z are folded into xw
    w3t = w_hh.view(3, H, H).transpose(1, 2)
    outs = []
    for t in range(T):
        x = xw[t]
        if masked:
            hrz = torch.bmm(h * m[:2], w3t[:2]).transpose(0, 1).reshape(B, 2 * H)
            hn = torch.addmm(bias, h * m[2], w3t[2])
        else:
            hrz = h @ w_hh[: 2 * H].t()
            hn = torch.addmm(bias, h, w3t[2])
        rz = activate(ract, x[:, : 2 * H] + hrz)
        n = activate(act, x[:, 2 * H :] + rz[:, :H] * hn)
        new = n + rz[:, H:] * (h - n)
        h = torch.where(s[t] > 0, new, h) if keep else new
        outs.append(h)
    return torch.stack(outs, 0), h, c


def _split_rz_n(P, d_w: Tensor) -> tuple[Tensor, Tensor]:
    """``d_w``'s rows of r and z, and of n (made once per backward pass)."""
    dw = P.__dict__.get("dw")
    if dw is None:
        H = d_w.shape[1]
        dw = P.dw = (d_w[: 2 * H], d_w[2 * H :])
    return dw


class GRUCell(Cell):
    """The GRU with ``reset_after=True`` (tf.keras / Keras 3 / ``torch.nn.GRU``): two biases, gates r, z, n.

    The recurrent biases of r and z add to the pre-activations as the input biases do: :meth:`fold` moves them
    into the input projections, and the loop keeps only ``c_n`` (``b_hh (H,)``), which the reset gate scales.
    """

    native = "gru"
    gates = 3
    has_recurrent_bias = True
    gate_is_recurrent = (True, True, False)
    loop = staticmethod(_gru_loop)
    block_gates = ((0, 2), (0, 1), (1, 2), (2, 3))  # x[1] = r and z, x[2] = r, z, n

    def fused_kernel(self):
        return torch._VF.gru if (self.activation, self.recurrent_activation) == ("tanh", "sigmoid") else None

    def fold(self, w_ih, b_ih, w_hh, b_hh):
        w_ih, b_ih, w_hh, b_hh = super().fold(w_ih, b_ih, w_hh, b_hh)
        if b_hh is not None:
            H = w_hh.shape[1]
            rz = torch.cat([b_hh[: 2 * H], b_hh.new_zeros(H)])
            b_ih, b_hh = (rz if b_ih is None else b_ih + rz), b_hh[2 * H :]
        return w_ih, b_ih, w_hh, b_hh

    def prepare(self, w_hh, b_hh, rmask):
        H = w_hh.shape[1]
        P = _Recurrent(w_hh[: 2 * H], None if rmask is None else rmask[:2])  # r and z
        P.n = _Recurrent(w_hh[2 * H :], None if rmask is None else rmask[2:])
        P.bias = (b_hh if b_hh is not None else w_hh.new_zeros(H)).view(H, 1)
        return P

    def buffer_shapes(self, T, B, H):
        return [(T, H, B), (T, H, B)]  # h U_n + c_n; h - n

    def step(self, P, t, x, h, c, buf, h_out, c_out):
        rz, n = P.forward_(x[1][t], h), x[4][t]
        self.ract.core_out(rz, rz)
        hh_n = P.n.forward(P.bias, h, buf[0][t])
        self.act.core_out(n.addcmul_(x[2][t], hh_n), n)
        hmn = torch.sub(h, n, out=buf[1][t])
        return torch.addcmul(n, x[3][t], hmn, out=h_out), None

    def grad_buffer_shapes(self, T, B, H):
        return [(T, H, B)]  # the gradient of h U_n + c_n

    def step_backward(self, P, t, dh, dc, hs, cs, x, buf, gbuf, d, d_w):
        r, z, n, hh_n, hmn, h = x[2][t], x[3][t], x[4][t], buf[0][t], buf[1][t], hs[t]
        dhz = dh * z
        dn = self.act.grad(dh - dhz, n, d[4][t])
        self.ract.grad(dn * hh_n, r, d[2][t])
        self.ract.grad(dh * hmn, z, d[3][t])
        d_hn, d_rz = torch.mul(dn, r, out=gbuf[0][t]), d[1][t]
        dw = _split_rz_n(P, d_w)
        P.accumulate(dw[0], d_rz, h)
        P.n.accumulate(dw[1], d_hn, h)
        return P.n.backward(P.backward(dhz, d_rz), d_hn), None

    def finish_backward(self, P, hs, buf, gbuf, d_pre, d_w):
        return gbuf[0].sum((0, 2))


def _gru_reset_before_loop(
    xw: Tensor,
    w_hh: Tensor,
    b_hh: Tensor | None,
    h: Tensor,
    c: Tensor,
    rmask: Tensor | None,
    steps: Tensor | None,
    act: str,
    ract: str,
) -> tuple[Tensor, Tensor, Tensor]:
    """``reset_after=False`` (Keras 2.0.8, the book): ``n = act(x_n + (r * h) U_n)``, ``h' = n + z (h - n)``."""
    T, B, GH = xw.shape
    H = GH // 3
    masked = rmask is not None
    m = rmask if rmask is not None else h.unsqueeze(0).expand(3, B, H)
    keep = steps is not None
    s = steps if steps is not None else xw
    w3t = w_hh.view(3, H, H).transpose(1, 2)
    outs = []
    for t in range(T):
        x = xw[t]
        if masked:
            hrz = torch.bmm(h * m[:2], w3t[:2]).transpose(0, 1).reshape(B, 2 * H)
            hn = h * m[2]
        else:
            hrz = h @ w_hh[: 2 * H].t()
            hn = h
        rz = activate(ract, x[:, : 2 * H] + hrz)
        n = activate(act, x[:, 2 * H :] + (rz[:, :H] * hn) @ w3t[2])
        new = n + rz[:, H:] * (h - n)
        h = torch.where(s[t] > 0, new, h) if keep else new
        outs.append(h)
    return torch.stack(outs, 0), h, c


class GRUResetBeforeCell(Cell):
    """The GRU with ``reset_after=False`` (Keras 2.0.8, the book): one bias, the reset gate on the state."""

    gates = 3
    gate_is_recurrent = (True, True, False)
    loop = staticmethod(_gru_reset_before_loop)
    native = "gru_reset_before"
    block_gates = ((0, 2), (0, 1), (1, 2), (2, 3))  # x[1] = r and z, x[2] = r, z, n

    def prepare(self, w_hh, b_hh, rmask):
        H = w_hh.shape[1]
        P = _Recurrent(w_hh[: 2 * H], None if rmask is None else rmask[:2])  # r and z
        P.n = _Recurrent(w_hh[2 * H :], None if rmask is None else rmask[2:])  # n, on r * h
        return P

    def buffer_shapes(self, T, B, H):
        return [(T, H, B), (T, H, B)]  # r * (h * m_n); h - n

    def step(self, P, t, x, h, c, buf, h_out, c_out):
        rz, n = P.forward_(x[1][t], h), x[4][t]
        self.ract.core_out(rz, rz)
        rh = torch.mul(x[2][t], h if P.n.mask is None else h * P.n.mask[0], out=buf[0][t])
        self.act.core_out(n.addmm_(P.n.w, rh), n)
        hmn = torch.sub(h, n, out=buf[1][t])
        return torch.addcmul(n, x[3][t], hmn, out=h_out), None

    def step_backward(self, P, t, dh, dc, hs, cs, x, buf, gbuf, d, d_w):
        r, z, n, hmn, h = x[2][t], x[3][t], x[4][t], buf[1][t], hs[t]
        dhz = dh * z
        dn = self.act.grad(dh - dhz, n, d[4][t])
        d_rh = torch.mm(P.n.wt, dn)  # gradient w.r.t. r * (h * m_n)
        hn = h if P.n.mask is None else h * P.n.mask[0]
        self.ract.grad(d_rh * hn, r, d[2][t])
        self.ract.grad(dh * hmn, z, d[3][t])
        d_rz = d[1][t]
        dw = _split_rz_n(P, d_w)
        P.accumulate(dw[0], d_rz, h)
        dw[1].addmm_(dn, buf[0][t].t())  # dn (r * h * m_n)^T: the mask is in the saved input
        d_hn = d_rh * r if P.n.mask is None else d_rh * r * P.n.mask[0]
        return P.backward(dhz.add_(d_hn), d_rz), None


def make_cell(kind: str, activation: str, recurrent_activation: str, reset_after: bool = True) -> Cell:
    """The cell of a layer kind (``'simple_rnn'``, ``'lstm'``, ``'gru'``)."""
    if kind == "simple_rnn":
        return SimpleRNNCell(activation, "sigmoid")
    if kind == "lstm":
        return LSTMCell(activation, recurrent_activation)
    if kind == "gru":
        return (GRUCell if reset_after else GRUResetBeforeCell)(activation, recurrent_activation)
    raise ValueError(f"unknown recurrent kind {kind!r}: 'simple_rnn', 'lstm' or 'gru'")
