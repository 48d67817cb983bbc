"""The recurrent cells: one object per kind of cell, holding that cell's equations and nothing else.

A cell knows one timestep: its forward (:meth:`Cell.step`), its backward (:meth:`Cell.step_backward`), the
same step as a plain loop that autograd records and TorchScript compiles (:attr:`Cell.loop`), and the name of
PyTorch's fused kernel when its semantics are torch's (:meth:`Cell.fused_kernel`). Layers, padding masks,
dropout modes and the choice of implementation live around the cells (:mod:`seqlight.nn._loop`,
:mod:`seqlight.nn.recurrent`), as Keras keeps its cells apart from its ``RNN`` layer.

Layout, for a batch of ``B``, ``H`` units and ``G`` gates in storage (torch) order (GRU r, z, n; LSTM i, f, g,
o): the input projections of every step ``xw (T, B, G*H)`` (computed before the loop in one matmul, affine
parts of the activations folded in, see :mod:`seqlight.nn.activations`); the recurrent weight ``w_hh (G*H, H)``
and, for the GRU with ``reset_after=True``, its recurrent bias ``b_hh (G*H,)``; an optional per-sample
recurrent dropout mask ``rmask (G, B, H)``.

The forward step overwrites its step of ``xw`` with the gates' activations (the loop owns ``xw`` and marks it
dirty) and writes what else its backward needs into preallocated ``(T, ...)`` buffers (:meth:`Cell.buffers`);
the loop hands both to ``ctx.save_for_backward``. Fewer fresh megabytes per step: on CPUs every new page costs
a fault, more than the small ops of a step. The backward step writes the gradient of the step's input
projections into ``d_pre[t] (B, G*H)``; the recurrent weight gradient is one matmul over all steps at the end
(:meth:`Cell.finish_backward`), or accumulated step by step under a per-sample recurrent mask.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from seqlight.nn.activations import ACTIVATIONS, Activation, activate, activate_fn

__all__ = ["Cell", "SimpleRNNCell", "LSTMCell", "GRUCell", "GRUResetBeforeCell", "make_cell"]


class _Recurrent:
    """The recurrent matmul of ``g`` gates, ``[(h * m_k) U_k^T]_k`` as ``(B, g*H)``, forward and backward."""

    def __init__(self, w: Tensor, mask: Tensor | None) -> None:
        self.w, self.wt, self.mask = w, w.t(), mask  # w (g*H, H)
        self.g, self.H = w.shape[0] // w.shape[1], w.shape[1]
        if mask is not None:
            self.w3 = w.view(self.g, self.H, self.H)
            self.w3t = self.w3.transpose(1, 2)

    def forward_(self, x: Tensor, h: Tensor) -> Tensor:
        """``x += [(h * m_k) U_k^T]_k`` in place (``x`` a step of ``xw``)."""
        if self.mask is None:
            return x.addmm_(h, self.wt)
        B = h.shape[0]
        return x.add_(torch.bmm(h * self.mask, self.w3t).transpose(0, 1).reshape(B, self.g * self.H))

    def forward(self, add: Tensor | None, h: Tensor, out: Tensor | None = None) -> Tensor:
        """``add + [(h * m_k) U_k^T]_k``; ``add`` (B, g*H) or (g*H,) or None."""
        if self.mask is None:
            if add is None:
                return torch.mm(h, self.wt, out=out)
            return torch.addmm(add, h, self.wt, out=out)
        B = h.shape[0]
        hh = torch.bmm(h * self.mask, self.w3t).transpose(0, 1).reshape(B, self.g * self.H)
        if add is None:
            return hh if out is None else out.copy_(hh)
        return torch.add(add, hh, out=out)

    def backward(self, add: Tensor | None, d: Tensor) -> Tensor:
        """``add + d(h)`` for the gradient ``d (B, g*H)`` of the recurrent projections."""
        if self.mask is None:
            return torch.mm(d, self.w) if add is None else torch.addmm(add, d, self.w)
        B = d.shape[0]
        dh = (torch.bmm(d.view(B, self.g, self.H).transpose(0, 1), self.w3) * self.mask).sum(0)
        return dh if add is None else dh + add

    def accumulate(self, d_w: Tensor, d: Tensor, h: Tensor) -> None:
        """Per step, under a per-sample mask only: ``d_w[k] += d_k^T (h * m_k)``."""
        if self.mask is not None:
            B = d.shape[0]
            d_w.view(self.g, self.H, self.H).baddbmm_(d.view(B, self.g, self.H).permute(1, 2, 0), h * self.mask)

    def finish(self, d_w: Tensor, d: Tensor, h: Tensor) -> None:
        """After the loop, without a mask: ``d_w += D^T H`` over all steps (``d (T, B, g*H)``, ``h (T, B, H)``)."""
        if self.mask is None:
            d_w.addmm_(d.reshape(-1, d.shape[-1]).t(), h.reshape(-1, h.shape[-1]))


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
    #: the plain loop (autograd records it, TorchScript compiles it), see :func:`_simple_rnn_loop`
    loop: Callable

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
        """The weights with each gate's ``scale * a + shift`` folded in (autograd ops, before the loop)."""
        acts = [self.ract if r else self.act for r in self.gate_is_recurrent]
        if not any(a.affine for a in acts):
            return w_ih, b_ih, w_hh, b_hh
        H = w_hh.shape[1]
        scale = torch.tensor([a.scale for a in acts], dtype=w_ih.dtype, device=w_ih.device).repeat_interleave(H)
        shift = torch.tensor([a.shift for a in acts], dtype=w_ih.dtype, device=w_ih.device).repeat_interleave(H)
        b_ih = shift if b_ih is None else torch.addcmul(shift, b_ih, scale)
        s = scale.unsqueeze(1)
        return w_ih * s, b_ih, w_hh * s, (None if b_hh is None else b_hh * scale)

    # -------------------------------------------------------------- the step
    def buffers(self, T: int, B: int, H: int, like: Tensor) -> list[Tensor]:
        """Preallocated ``(T, ...)`` tensors the forward step fills and the backward step reads."""
        return []

    def prepare(self, w_hh: Tensor, b_hh: Tensor | None, rmask: Tensor | None):
        """Per-call constants of the step (views of the weights, the recurrent matmuls)."""
        return _Recurrent(w_hh, rmask)

    def step(self, P, x: Tensor, h: Tensor, c: Tensor | None, buf: list[Tensor], t: int, h_out, c_out):
        """One step from ``x (B, G*H)`` (step ``t`` of ``xw``, overwritten with the gates) and the state;
        writes the new ``h`` (``c``) into ``h_out`` (``c_out``) when given, else returns fresh tensors. ``buf``:
        the buffers, each unbound along time. Returns ``(h, c or None)``."""
        raise NotImplementedError

    def step_backward(self, P, t, dh, dc, hs, cs, gates, buf, gbuf, d_pre, d_w):
        """The gradient of step ``t`` from ``dh`` (``dc``) w.r.t. its new state; fills ``d_pre[t]`` and returns
        ``(dh, dc)`` w.r.t. the state before it. ``hs``: the states (``hs[t]`` before step ``t``), ``gates``: the
        steps of ``xw`` as the forward steps left them; all unbound along time."""
        raise NotImplementedError

    def grad_buffers(self, T: int, B: int, H: int, like: Tensor) -> list[Tensor]:
        return []

    def finish_backward(self, P, hs: Tensor, buf, gbuf, d_pre: Tensor, d_w: Tensor) -> Tensor | None:
        """After the backward loop: complete ``d_w``; return the recurrent bias's gradient (or None)."""
        P.finish(d_w, d_pre, hs[:-1])
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

    gates = 1
    gate_is_recurrent = (False,)
    loop = staticmethod(_simple_rnn_loop)

    def fused_kernel(self):
        return {"tanh": torch._VF.rnn_tanh, "relu": torch._VF.rnn_relu}.get(self.activation)

    def step(self, P, x, h, c, buf, t, h_out, c_out):
        return self.act.core_out(P.forward_(x, h), h_out), None

    def step_backward(self, P, t, dh, dc, hs, cs, gates, buf, gbuf, d_pre, d_w):
        # The step's output is hs[t + 1] wherever its gradient is not zero (masked steps get dh == 0).
        d = self.act.grad(dh, hs[t + 1], d_pre[t])
        P.accumulate(d_w, d, hs[t])
        return P.backward(None, d), None


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
    """``i, f, o = ract(.)``, ``g = act(.)``, ``c' = f c + i g``, ``h' = o act(c')``."""
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
        g, o = activate(act, a[:, 2 * H : 3 * H]), activate(ract, a[:, 3 * H :])
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
    """Keras ``LSTM`` (one bias), gates i, f, g, o (Keras i, f, c, o)."""

    gates = 4
    has_cell_state = True
    gate_is_recurrent = (True, True, False, True)
    loop = staticmethod(_lstm_loop)

    def fused_kernel(self):
        return torch._VF.lstm if (self.activation, self.recurrent_activation) == ("tanh", "sigmoid") else None

    def buffers(self, T, B, H, like):
        return [like.new_empty(T, B, H)]  # activation(c'); the gates stay in xw

    def step(self, P, x, h, c, buf, t, h_out, c_out):
        H = h.shape[1]
        a = P.forward_(x, h)  # the gates' pre-activations, in place
        i_f, g, o = a[:, : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
        self.ract.core_out(i_f, i_f)
        self.act.core_out(g, g)
        self.ract.core_out(o, o)
        c_new = torch.addcmul(a[:, H : 2 * H] * c, a[:, :H], g, out=c_out)
        tc = self.act.fn_out(c_new, buf[0][t])
        return torch.mul(o, tc, out=h_out), c_new

    def grad_buffers(self, T, B, H, like):
        return [like.new_empty(B, 4 * H), like.new_empty(B, H)]  # each gate's upstream gradient; a scratch

    def step_backward(self, P, t, dh, dc, hs, cs, gates, buf, gbuf, d_pre, d_w):
        a, tc = gates[t], buf[0][t]
        H = tc.shape[1]
        i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
        up, d = gbuf[0], d_pre[t]
        dct = self.act.fn_grad(dh * o, tc, gbuf[1]).add_(dc)
        torch.mul(dct, g, out=up[:, :H])
        torch.mul(dct, cs[t], out=up[:, H : 2 * H])
        torch.mul(dct, i, out=up[:, 2 * H : 3 * H])
        torch.mul(dh, tc, out=up[:, 3 * H :])
        self.ract.grad(up[:, : 2 * H], a[:, : 2 * H], d[:, : 2 * H])
        self.act.grad(up[:, 2 * H : 3 * H], g, d[:, 2 * H : 3 * H])
        self.ract.grad(up[:, 3 * H :], o, d[:, 3 * H :])
        P.accumulate(d_w, d, hs[t])
        return P.backward(None, d), dct * f


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
    """``reset_after=True`` (Keras 3, torch): ``n = act(x_n + r * (h U_n + c_n))``, ``h' = n + z (h - n)``."""
    T, B, GH = xw.shape
    H = GH // 3
    masked = rmask is not None
    m = rmask if rmask is not None else h.unsqueeze(0)
    keep = steps is not None
    s = steps if steps is not None else xw
    bias = b_hh if b_hh is not None else xw.new_zeros(GH)
    w3t = w_hh.view(3, H, H).transpose(1, 2)
    wt = w_hh.t()
    outs = []
    for t in range(T):
        if masked:
            hh = torch.bmm(h * m, w3t).transpose(0, 1).reshape(B, GH) + bias
        else:
            hh = torch.addmm(bias, h, wt)
        x = xw[t]
        rz = activate(ract, x[:, : 2 * H] + hh[:, : 2 * H])
        n = activate(act, x[:, 2 * H :] + rz[:, :H] * hh[:, 2 * H :])
        new = n + rz[:, H:] * (h - n)
        h = torch.where(s[t] > 0, new, h) if keep else new
        outs.append(h)
    return torch.stack(outs, 0), h, c


class GRUCell(Cell):
    """The GRU with ``reset_after=True`` (tf.keras / Keras 3 / ``torch.nn.GRU``): two biases, gates r, z, n."""

    gates = 3
    has_recurrent_bias = True
    gate_is_recurrent = (True, True, False)
    loop = staticmethod(_gru_loop)

    def fused_kernel(self):
        return torch._VF.gru if (self.activation, self.recurrent_activation) == ("tanh", "sigmoid") else None

    def prepare(self, w_hh, b_hh, rmask):
        P = _Recurrent(w_hh, rmask)
        P.bias = b_hh if b_hh is not None else w_hh.new_zeros(w_hh.shape[0])
        return P

    def buffers(self, T, B, H, like):
        return [like.new_empty(T, B, 3 * H), like.new_empty(T, B, H)]  # the recurrent projections h U + c; h - n

    def step(self, P, x, h, c, buf, t, h_out, c_out):
        hh, hmn = buf[0][t], buf[1][t]
        H = hmn.shape[1]
        P.forward(P.bias, h, out=hh)
        rz, n = x[:, : 2 * H].add_(hh[:, : 2 * H]), x[:, 2 * H :]
        self.ract.core_out(rz, rz)
        self.act.core_out(n.addcmul_(rz[:, :H], hh[:, 2 * H :]), n)
        torch.sub(h, n, out=hmn)
        return torch.addcmul(n, rz[:, H:], hmn, out=h_out), None

    def grad_buffers(self, T, B, H, like):
        # gradient of the recurrent projections (r, z: as their pre-activations; n: times r), and the
        # upstream gradient of r and z, one step
        return [like.new_empty(T, B, 3 * H), like.new_empty(B, 2 * H)]

    def step_backward(self, P, t, dh, dc, hs, cs, gates, buf, gbuf, d_pre, d_w):
        a, hh, hmn = gates[t], buf[0][t], buf[1][t]
        H = hmn.shape[1]
        rz, n = a[:, : 2 * H], a[:, 2 * H :]
        d, rec, up = d_pre[t], gbuf[0][t], gbuf[1]
        dhz = dh * rz[:, H:]
        dn = self.act.grad(dh - dhz, n, d[:, 2 * H :])
        torch.mul(dn, hh[:, 2 * H :], out=up[:, :H])
        torch.mul(dh, hmn, out=up[:, H:])
        self.ract.grad(up, rz, rec[:, : 2 * H])
        torch.mul(dn, rz[:, :H], out=rec[:, 2 * H :])
        d[:, : 2 * H].copy_(rec[:, : 2 * H])
        P.accumulate(d_w, rec, hs[t])
        return P.backward(dhz, rec), None

    def finish_backward(self, P, hs, buf, gbuf, d_pre, d_w):
        rec = gbuf[0]
        P.finish(d_w, rec, hs[:-1])
        return rec.sum((0, 1))


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

    def prepare(self, w_hh, b_hh, rmask):
        H = w_hh.shape[1]
        P = _Recurrent(w_hh[: 2 * H], None if rmask is None else rmask[:2])  # r and z
        P.n = _Recurrent(w_hh[2 * H :], None if rmask is None else rmask[2:])  # n, on r * h
        return P

    def buffers(self, T, B, H, like):
        return [like.new_empty(T, B, H), like.new_empty(T, B, H)]  # r * (h * m_n); h - n

    def step(self, P, x, h, c, buf, t, h_out, c_out):
        rh, hmn = buf[0][t], buf[1][t]
        H = hmn.shape[1]
        rz, n = P.forward_(x[:, : 2 * H], h), x[:, 2 * H :]
        self.ract.core_out(rz, rz)
        torch.mul(rz[:, :H], h if P.n.mask is None else h * P.n.mask[0], out=rh)
        self.act.core_out(n.addmm_(rh, P.n.wt), n)
        torch.sub(h, n, out=hmn)
        return torch.addcmul(n, rz[:, H:], hmn, out=h_out), None

    def grad_buffers(self, T, B, H, like):
        return [like.new_empty(B, 2 * H)]

    def step_backward(self, P, t, dh, dc, hs, cs, gates, buf, gbuf, d_pre, d_w):
        a, hmn = gates[t], buf[1][t]
        H = hmn.shape[1]
        rz, n = a[:, : 2 * H], a[:, 2 * H :]
        d, up, h = d_pre[t], gbuf[0], hs[t]
        r, z = rz[:, :H], rz[:, H:]
        dhz = dh * z
        dn = self.act.grad(dh - dhz, n, d[:, 2 * H :])
        d_rh = torch.mm(dn, P.n.w)  # gradient w.r.t. r * (h * m_n)
        hn = h if P.n.mask is None else h * P.n.mask[0]
        torch.mul(d_rh, hn, out=up[:, :H])
        torch.mul(dh, hmn, out=up[:, H:])
        d_rz = self.ract.grad(up, rz, d[:, : 2 * H])
        P.accumulate(d_w[: 2 * H], d_rz, h)
        d_h_n = d_rh * r if P.n.mask is None else d_rh * r * P.n.mask[0]
        return P.backward(dhz.add_(d_h_n), d_rz), None

    def finish_backward(self, P, hs, buf, gbuf, d_pre, d_w):
        H = hs.shape[-1]
        P.finish(d_w[: 2 * H], d_pre[:, :, : 2 * H], hs[:-1])
        d_w[2 * H :].addmm_(d_pre[:, :, 2 * H :].reshape(-1, H).t(), buf[0].reshape(-1, H))  # dn^T (r * h * m_n)
        return None


def make_cell(kind: str, activation: str, recurrent_activation: str, reset_after: bool = True) -> Cell:
    """The cell of a layer kind (``'simple_rnn'``, ``'lstm'``, ``'gru'``)."""
    if kind == "simple_rnn":
        return SimpleRNNCell(activation, "sigmoid")
    if kind == "lstm":
        return LSTMCell(activation, recurrent_activation)
    if kind == "gru":
        return (GRUCell if reset_after else GRUResetBeforeCell)(activation, recurrent_activation)
    raise ValueError(f"unknown recurrent kind {kind!r}: 'simple_rnn', 'lstm' or 'gru'")
