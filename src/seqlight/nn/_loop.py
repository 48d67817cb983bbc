"""The custom recurrent loop: what runs when PyTorch's fused kernels cannot express Keras's semantics.

Input: the input projections of every timestep, computed before the loop in one matmul,
``xw[g, t] = x_t W_g^T + b_g`` with shape ``(G, T, B, H)`` (gates in storage order: GRU r, z, n; LSTM
i, f, g, o). Each step then does the recurrent matmul (one ``mm`` over all gates, or one ``bmm`` when
every gate sees its own recurrent-dropout mask) and a handful of elementwise ops.

Two implementations of the same equations:

- :class:`_Recurrence`, a ``torch.autograd.Function`` with a hand-written backward pass. The forward loop
  keeps the gate activations; the backward loop derives every activation's derivative from its output
  (``tanh' = 1 - y^2``, ``sigmoid' = y (1 - y)``, ``hard_sigmoid' = 0.2`` inside (0, 1), ...) and
  accumulates the recurrent weight gradient step by step. Large temporaries are avoided on purpose:
  on the test machine, every fresh megabyte costs more (page faults) than the small ops it would save.
  On the Jena shape its backward pass measured 6-10x faster than autograd recording the loop. It is
  differentiable once (no double backward).
- :func:`_autograd_loop`, the plain loop recorded by autograd: used under autocast (where each op picks
  its own precision) and for activations without an output-only derivative (``elu``, ``softsign``).
  It is written in the subset of Python that TorchScript compiles, and its compiled form is what runs while
  ``torch.jit.trace`` records a model (``seqlight.export``, and ``torch.onnx.export(..., dynamo=False)``,
  which traces): the tracer cannot record a Python ``autograd.Function``, and would unroll a Python loop into
  ``T`` copies of the step, fixing the sequence length. The compiled loop is recorded as one call holding a
  real loop (``prim::Loop``, ONNX ``Loop``), so an exported model takes any batch size and any length.
  Training never takes this branch: the path is chosen by ``torch.jit.is_tracing()`` alone.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor, nn

from seqlight.nn._fused import autocast_dtype

__all__ = ["ACTIVATIONS", "hard_sigmoid", "run"]


def hard_sigmoid(x: Tensor) -> Tensor:
    """Keras 2 ``hard_sigmoid``: ``clip(0.2 * x + 0.5, 0, 1)`` (Keras 3 uses ``x / 6 + 0.5``)."""
    return torch.clamp(0.2 * x + 0.5, 0.0, 1.0)


ACTIVATIONS = {
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "hard_sigmoid": hard_sigmoid,
    "relu": torch.relu,
    "linear": lambda x: x,
    "elu": nn.functional.elu,
    "softsign": nn.functional.softsign,
}


def _activate(name: str, x: Tensor) -> Tensor:
    """``ACTIVATIONS[name](x)`` in a form TorchScript compiles (it cannot call functions held in a dict)."""
    if name == "tanh":
        return torch.tanh(x)
    if name == "sigmoid":
        return torch.sigmoid(x)
    if name == "hard_sigmoid":
        return hard_sigmoid(x)
    if name == "relu":
        return torch.relu(x)
    if name == "elu":
        return nn.functional.elu(x)
    if name == "softsign":
        return nn.functional.softsign(x)
    return x  # "linear"; the layers check the name against ACTIVATIONS when they are built


# Derivative of the activation expressed through its output y.
_DERIV_FROM_OUTPUT = {
    "tanh": lambda y: 1 - y * y,
    "sigmoid": lambda y: y * (1 - y),
    "hard_sigmoid": lambda y: ((y > 0) & (y < 1)).to(y.dtype) * 0.2,
    "relu": lambda y: (y > 0).to(y.dtype),
    "linear": lambda y: torch.ones_like(y),
}


def _step_inputs(h: Tensor, mask: Tensor | None, G: int) -> Tensor:
    """The state fed to each gate's recurrent matmul: ``h`` itself, or ``h`` times the gate's mask."""
    return h.expand(G, *h.shape) if mask is None else h * mask


def _gates(xw: Tensor, t: int) -> Tensor:
    """Step ``t`` of the ``(G, T, B, H)`` input projections: a ``(G, B, H)`` view (no copy)."""
    return xw[:, t]


# ---------------------------------------------------------------------------------------------- autograd
def _autograd_loop(
    kind: str,
    xw: Tensor,
    w_hh: Tensor,
    b_hh: Tensor | None,
    h: Tensor,
    c: Tensor,
    mask: Tensor | None,
    act: str,
    ract: str,
    reset_after: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """The loop as plain tensor ops; returns ``(out (T, B, H), h_T, c_T)``. TorchScript compiles it (see the
    module docstring), hence the string dispatch of :func:`_activate` and ``c`` always a tensor (the LSTM's
    cell state, a placeholder that passes through untouched for the other kinds)."""
    G, T, B, H = xw.shape
    wt = w_hh.view(G, H, H).transpose(1, 2)
    # The Optionals are resolved here, before the loop: inside it, TorchScript would carry them from step to
    # step as Optional values, which the ONNX export cannot type. The placeholders are never read.
    masked = mask is not None
    m = mask if mask is not None else h
    bias = b_hh.view(G, 1, H) if b_hh is not None else wt
    outs = []
    for t in range(T):
        x = _gates(xw, t)
        hm = h * m if masked else h.expand(G, B, H)  # _step_inputs, resolved
        if kind == "simple_rnn":
            h = _activate(act, x[0] + hm[0] @ wt[0])
        elif kind == "lstm":
            a = x + torch.bmm(hm, wt)
            i, fg, o = _activate(ract, a[0]), _activate(ract, a[1]), _activate(ract, a[3])
            c = fg * c + i * _activate(act, a[2])
            h = o * _activate(act, c)
        elif reset_after:  # GRU, Keras 3 / torch: reset applied to the recurrent projection
            hh = torch.bmm(hm, wt) + bias
            r, z = _activate(ract, x[0] + hh[0]), _activate(ract, x[1] + hh[1])
            n = _activate(act, x[2] + r * hh[2])
            h = n + z * (h - n)
        else:  # GRU, Keras 2.0.8: reset applied to the state before the recurrent matmul
            hh = torch.bmm(hm[:2], wt[:2])
            r, z = _activate(ract, x[0] + hh[0]), _activate(ract, x[1] + hh[1])
            n = _activate(act, x[2] + (r * hm[2]) @ wt[2])
            h = n + z * (h - n)
        outs.append(h)
    return torch.stack(outs, 0), h, c


@functools.cache
def _scripted_loop():
    """:func:`_autograd_loop` compiled by TorchScript, once per process (about a second), on first export."""
    return torch.jit.script(_autograd_loop)


# ---------------------------------------------------------------------------------------------- hand-written backward
class _Recurrence(torch.autograd.Function):
    """The loop with a hand-written backward. ``xw``: ``(G, T, B, H)`` input projections."""

    @staticmethod
    def forward(ctx, xw, w_hh, b_hh, h0, c0, mask, kind, act, ract, reset_after):
        G, T, B, H = xw.shape
        f, fr = ACTIVATIONS[act], ACTIVATIONS[ract]
        wt = w_hh.view(G, H, H).transpose(1, 2)
        bias = None if b_hh is None else b_hh.view(G, 1, H)
        hs = xw.new_empty(T + 1, B, H)  # hs[t] is the state before step t
        hs[0] = h0
        saved = []
        c = c0
        w_t = w_hh.t()  # (H, G*H): without masks every gate's recurrent matmul is one mm
        for t in range(T):
            x, h = _gates(xw, t), hs[t]
            if mask is None:
                hm = h.expand(G, B, H)
                if kind == "gru" and not reset_after:
                    hh = torch.mm(h, w_t[:, : 2 * H]).view(B, 2, H).transpose(0, 1)
                else:
                    hh = (torch.mm(h, w_t) if bias is None else torch.addmm(b_hh, h, w_t)).view(B, G, H).transpose(0, 1)
            else:
                hm = h * mask
                if kind == "gru" and not reset_after:
                    hh = torch.bmm(hm[:2], wt[:2])
                else:
                    hh = torch.bmm(hm, wt) if bias is None else torch.baddbmm(bias, hm, wt)
            if kind == "simple_rnn":
                hs[t + 1] = f(x[0] + hh[0])
            elif kind == "lstm":
                a = x + hh
                ifo = fr(a[[0, 1, 3]])
                g = f(a[2])
                c = torch.addcmul(ifo[1] * c, ifo[0], g)
                tc = f(c)
                torch.mul(ifo[2], tc, out=hs[t + 1])
                saved.append((ifo, g, c, tc))
            elif reset_after:
                rz = fr(x[:2] + hh[:2])
                n = f(torch.addcmul(x[2], rz[0], hh[2]))
                torch.addcmul(n, rz[1], h - n, out=hs[t + 1])
                saved.append((rz, n, hh[2]))
            else:
                rz = fr(x[:2] + hh)
                n = f(torch.addmm(x[2], rz[0] * hm[2], wt[2]))
                torch.addcmul(n, rz[1], h - n, out=hs[t + 1])
                saved.append((rz, n))
        ctx.kind, ctx.act, ctx.ract, ctx.reset_after = kind, act, ract, reset_after
        ctx.has_bias = b_hh is not None
        # Per-step intermediates stay a list of small tensors: stacking them would copy them into fresh
        # (page-faulted) memory for nothing.
        ctx.extra = [list(s) for s in zip(*saved)] if saved else []
        ctx.save_for_backward(w_hh, c0, mask, hs)
        out = hs[1:]
        return out, hs[T], (c if c0 is not None else None)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_out, d_h, d_c):
        # Everything is computed one step at a time on (B, H) tensors: large temporaries cost more than
        # the extra small ops (every fresh megabyte is page-faulted in), so the only large buffer is the
        # gradient of the input projections, which is returned.
        w_hh, c0, mask, hs = ctx.saved_tensors
        extra = ctx.extra
        kind, reset_after = ctx.kind, ctx.reset_after
        T, B, H = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
        G = w_hh.shape[0] // H
        w = w_hh.view(G, H, H)
        dact, dract = _DERIV_FROM_OUTPUT[ctx.act], _DERIV_FROM_OUTPUT[ctx.ract]
        dh = torch.zeros_like(hs[0]) if d_h is None else d_h.clone()
        d_pre = hs.new_empty(G, T, B, H)  # gradient w.r.t. each gate's pre-activation == d xw
        d_w = torch.zeros_like(w)  # (G, H, H), accumulated step by step
        buf = hs.new_empty(G, B, H)  # gradient w.r.t. each gate's recurrent input (h * mask)
        d_rec_n = hs.new_empty(T, B, H) if ctx.has_bias else None  # GRU reset_after: d (h U_n + c_n)
        if kind == "lstm":
            dc = torch.zeros_like(c0) if d_c is None else d_c.clone()
        if kind == "gru":
            dh = _gru_backward(d_pre, d_w, d_rec_n, dh, d_out, hs, w, mask, extra, dact, dract, reset_after)
        elif kind == "lstm":
            dh, dc = _lstm_backward(d_pre, d_w, dh, dc, d_out, hs, c0, w, mask, extra, dact, dract)
        else:  # SimpleRNN
            for t in range(T - 1, -1, -1):
                if d_out is not None:
                    dh = dh + d_out[t]
                dp = d_pre[:, t]
                h_in = _step_inputs(hs[t], mask, G)  # what each gate's recurrent matmul saw
                torch.mul(dh, dact(hs[t + 1]), out=dp[0])
                torch.mm(dp[0], w[0], out=buf[0])
                d_w[0].addmm_(dp[0].t(), h_in[0])
                if mask is not None:
                    buf.mul_(mask)
                dh = buf.sum(0)
        d_c0 = dc if kind == "lstm" else None
        d_b = None
        if ctx.has_bias:  # the recurrent bias of gates r, z gets what their pre-activations got
            d_b = torch.cat([d_pre[:2].sum((1, 2)).view(-1), d_rec_n.sum((0, 1))])
        return d_pre, d_w.view(G * H, H), d_b, dh, d_c0, None, None, None, None, None


def _gru_backward(d_pre, d_w, d_rec_n, dh, d_out, hs, w, mask, extra, dact, dract, reset_after):
    """The GRU's backward loop; fills ``d_pre`` (G, T, B, H), ``d_w`` (G, H, H) and ``d_rec_n``; returns dh_0.

    Written for few Python operations per step: every per-step view is made once up front (``unbind``),
    and the gates' recurrent matmuls are separate ``mm``s on contiguous ``(B, H)`` slices.
    """
    T = hs.shape[0] - 1
    rzs, ns = extra[0], extra[1]
    hh_ns = extra[2] if reset_after else None
    d_r, d_z, d_n = (d.unbind(0) for d in d_pre.unbind(0))  # per gate, per step: contiguous (B, H)
    h_prev = hs.unbind(0)
    d_outs = d_out.unbind(0) if d_out is not None else None
    d_rns = d_rec_n.unbind(0) if reset_after else None
    w_r, w_z, w_n = w.unbind(0)
    dw_r, dw_z, dw_n = d_w.unbind(0)
    m_r, m_z, m_n = mask.unbind(0) if mask is not None else (None, None, None)
    mul, mm = torch.mul, torch.mm
    for t in range(T - 1, -1, -1):
        if d_outs is not None:
            dh = dh + d_outs[t]
        r, z = rzs[t].unbind(0)
        n, h = ns[t], h_prev[t]
        hr, hz, hn = (h, h, h) if mask is None else (h * m_r, h * m_z, h * m_n)
        dn, dz, dr = d_n[t], d_z[t], d_r[t]
        mul(dh * (1 - z), dact(n), out=dn)
        mul(dh * (h - n), dract(z), out=dz)
        if reset_after:
            d_rn = mul(dn, r, out=d_rns[t])  # gradient w.r.t. gate n's recurrent projection
            mul(dn * hh_ns[t], dract(r), out=dr)
            g_n = mm(d_rn, w_n)
            dw_n.addmm_(d_rn.t(), hn)
        else:
            d_rh = mm(dn, w_n)  # gradient w.r.t. r * hm_n
            mul(d_rh * hn, dract(r), out=dr)
            g_n = d_rh * r
            dw_n.addmm_(dn.t(), r * hn)
        g_r, g_z = mm(dr, w_r), mm(dz, w_z)
        dw_r.addmm_(dr.t(), hr)
        dw_z.addmm_(dz.t(), hz)
        if mask is None:
            dh = dh * z + g_r + g_z + g_n
        else:
            dh = torch.addcmul(torch.addcmul(torch.addcmul(dh * z, g_r, m_r), g_z, m_z), g_n, m_n)
    return dh


def _lstm_backward(d_pre, d_w, dh, dc, d_out, hs, c0, w, mask, extra, dact, dract):
    """The LSTM's backward loop (same structure as :func:`_gru_backward`); returns ``(dh_0, dc_0)``."""
    T, B, H = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
    ifos, gs, cs, tcs = extra
    d_i, d_f, d_g, d_o = (d.unbind(0) for d in d_pre.unbind(0))
    h_prev = hs.unbind(0)
    d_outs = d_out.unbind(0) if d_out is not None else None
    w_i, w_f, w_g, w_o = w.unbind(0)
    masks = mask.unbind(0) if mask is not None else None
    mul, mm, addcmul = torch.mul, torch.mm, torch.addcmul
    for t in range(T - 1, -1, -1):
        if d_outs is not None:
            dh = dh + d_outs[t]
        i, f, o = ifos[t].unbind(0)
        g, tc = gs[t], tcs[t]
        c_prev = c0 if t == 0 else cs[t - 1]
        dct = addcmul(dc, dh, o * dact(tc))
        di, df, dg, do = d_i[t], d_f[t], d_g[t], d_o[t]
        mul(dct * g, dract(i), out=di)
        mul(dct * c_prev, dract(f), out=df)
        mul(dct * i, dact(g), out=dg)
        mul(dh * tc, dract(o), out=do)
        dc = dct * f
        if masks is None:
            dh = mm(di, w_i).addmm_(df, w_f).addmm_(dg, w_g).addmm_(do, w_o)
        else:
            h = h_prev[t]
            m_i, m_f, m_g, m_o = masks
            for d_wg, d, m in zip(d_w.unbind(0), (di, df, dg, do), masks):
                d_wg.addmm_(d.t(), h * m)
            dh = addcmul(addcmul(addcmul(mm(di, w_i) * m_i, mm(df, w_f), m_f), mm(dg, w_g), m_g), mm(do, w_o), m_o)
    if masks is None:  # every gate saw the same state: the weight gradient is one matmul per gate
        hp = hs[:-1].reshape(T * B, H)
        for d_wg, d in zip(d_w.unbind(0), d_pre.unbind(0)):
            d_wg.addmm_(d.reshape(T * B, H).t(), hp)
    return dh, dc


def run(kind, xw, w_hh, b_hh, h0, c0, mask, act, ract, reset_after):
    """Run the loop; return ``(output (B, T, H), h_T, c_T or None)``.

    ``xw``: input projections ``(G, T, B, H)``; ``w_hh``: ``(G*H, H)``; ``b_hh``: ``(G*H,)`` or None;
    ``mask``: per-sample recurrent dropout masks ``(G, B, H)`` or None.
    """
    if kind != "lstm":
        c0 = None
    tracing = torch.jit.is_tracing()  # torch.jit.trace, TorchScript-based ONNX export (module docstring)
    hand = (
        not tracing
        and act in _DERIV_FROM_OUTPUT
        and (ract in _DERIV_FROM_OUTPUT or kind == "simple_rnn")
        and autocast_dtype(xw.device.type) is None  # the same check as the fused path's (works on "meta" too)
    )
    if hand:
        out, h, c = _Recurrence.apply(xw, w_hh, b_hh, h0, c0, mask, kind, act, ract, reset_after)
    else:
        loop = _scripted_loop() if tracing else _autograd_loop
        out, h, c = loop(kind, xw, w_hh, b_hh, h0, h0 if c0 is None else c0, mask, act, ract, reset_after)
        c = c if c0 is not None else None
    return out.transpose(0, 1), h, c
