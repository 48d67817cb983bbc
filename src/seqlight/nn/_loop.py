"""The custom recurrent loop: what runs when PyTorch's fused kernels cannot express Keras's semantics.

Input: the input projections of every timestep, computed before the loop in one matmul,
``xw[t, g] = x_t W_g^T + b_g`` with shape ``(T, G, B, H)`` (gates in storage order: GRU r, z, n; LSTM
i, f, g, o). Each step then does one batched recurrent matmul (``bmm`` over the gates) and a handful of
elementwise ops.

Two implementations of the same equations:

- :class:`_Recurrence`, a ``torch.autograd.Function`` with a hand-written backward pass. The forward loop
  keeps the gate activations; the backward pass derives every activation's derivative from its output
  in bulk (``tanh' = 1 - y^2``, ``sigmoid' = y (1 - y)``, ``hard_sigmoid' = 0.2`` inside (0, 1), ...),
  so each backward step is again one ``bmm`` and a few multiplies, and the recurrent weight gradient is
  one matmul over all timesteps after the loop. Measured on the Jena shape this is about twice as fast
  as letting autograd record the loop.
- :func:`_autograd_loop`, the plain loop recorded by autograd: used under autocast (where each op picks
  its own precision), for activations without an output-only derivative (``elu``, ``softsign``), and
  when double backward is needed (``create_graph``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

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

# Derivative of the activation expressed through its output y.
_DERIV_FROM_OUTPUT = {
    "tanh": lambda y: 1 - y * y,
    "sigmoid": lambda y: y * (1 - y),
    "hard_sigmoid": lambda y: ((y > 0) & (y < 1)).to(y.dtype) * 0.2,
    "relu": lambda y: (y > 0).to(y.dtype),
    "linear": lambda y: torch.ones_like(y),
}


def _recurrent_matmul(hm: Tensor, wt: Tensor, bias: Tensor | None) -> Tensor:
    """``(G, B, H) @ (G, H, H) [+ (G, 1, H)]``: the recurrent projection of every gate at once."""
    if bias is None:
        return torch.bmm(hm, wt)
    return torch.baddbmm(bias, hm, wt)


def _step_inputs(h: Tensor, mask: Tensor | None, G: int) -> Tensor:
    return h.expand(G, *h.shape) if mask is None else h * mask


# ---------------------------------------------------------------------------------------------- autograd
def _autograd_loop(kind, xw, w_hh, b_hh, h, c, mask, act, ract, reset_after):
    T, G, B, H = xw.shape
    f, fr = ACTIVATIONS[act], ACTIVATIONS[ract]
    wt = w_hh.view(G, H, H).transpose(1, 2)
    bias = None if b_hh is None else b_hh.view(G, 1, H)
    outs = []
    for t in range(T):
        x = xw[t]
        if kind == "simple_rnn":
            h = f(x[0] + _recurrent_matmul(_step_inputs(h, mask, 1), wt, None)[0])
        elif kind == "lstm":
            a = x + _recurrent_matmul(_step_inputs(h, mask, 4), wt, None)
            i, fg, o = fr(a[0]), fr(a[1]), fr(a[3])
            c = fg * c + i * f(a[2])
            h = o * f(c)
        elif reset_after:  # GRU, Keras 3 / torch: reset applied to the recurrent projection
            hh = _recurrent_matmul(_step_inputs(h, mask, 3), wt, bias)
            r, z = fr(x[0] + hh[0]), fr(x[1] + hh[1])
            n = f(x[2] + r * hh[2])
            h = n + z * (h - n)
        else:  # GRU, Keras 2.0.8: reset applied to the state before the recurrent matmul
            hm = _step_inputs(h, mask, 3)
            hh = torch.bmm(hm[:2], wt[:2])
            r, z = fr(x[0] + hh[0]), fr(x[1] + hh[1])
            n = f(x[2] + (r * hm[2]) @ wt[2])
            h = n + z * (h - n)
        outs.append(h)
    return torch.stack(outs, 0), h, c


# ---------------------------------------------------------------------------------------------- hand-written backward
class _Recurrence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xw, w_hh, b_hh, h0, c0, mask, kind, act, ract, reset_after):
        T, G, B, H = xw.shape
        f, fr = ACTIVATIONS[act], ACTIVATIONS[ract]
        wt = w_hh.view(G, H, H).transpose(1, 2)
        bias = None if b_hh is None else b_hh.view(G, 1, H)
        h, c = h0, c0
        outs, saved = [], []
        for t in range(T):
            x = xw[t]
            hm = _step_inputs(h, mask, G)
            if kind == "simple_rnn":
                h = f(x[0] + torch.mm(hm[0], wt[0]))
            elif kind == "lstm":
                a = torch.baddbmm(x, hm, wt)
                ifo = fr(a[[0, 1, 3]])
                g = f(a[2])
                c = torch.addcmul(ifo[1] * c, ifo[0], g)
                tc = f(c)
                h = ifo[2] * tc
                saved.append((ifo, g, c, tc))
            elif reset_after:
                hh = _recurrent_matmul(hm, wt, bias)
                rz = fr(x[:2] + hh[:2])
                n = f(torch.addcmul(x[2], rz[0], hh[2]))
                h = torch.addcmul(n, rz[1], h - n)
                saved.append((rz, n, hh[2]))
            else:
                hh = torch.bmm(hm[:2], wt[:2])
                rz = fr(x[:2] + hh)
                n = f(torch.addmm(x[2], rz[0] * hm[2], wt[2]))
                h = torch.addcmul(n, rz[1], h - n)
                saved.append((rz, n))
            outs.append(h)
        out = torch.stack(outs, 0)
        ctx.kind, ctx.act, ctx.ract, ctx.reset_after = kind, act, ract, reset_after
        ctx.has_bias, ctx.has_c = b_hh is not None, c0 is not None
        extra = [torch.stack(s, 0) for s in zip(*saved)] if saved else []
        ctx.save_for_backward(w_hh, h0, c0, mask, out, *extra)
        return out, h, (c if c0 is not None else None)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_out, d_h, d_c):
        w_hh, h0, c0, mask, out, *extra = ctx.saved_tensors
        kind, act, ract = ctx.kind, ctx.act, ctx.ract
        T, B, H = out.shape
        G = w_hh.shape[0] // H
        w = w_hh.view(G, H, H)
        dact, dract = _DERIV_FROM_OUTPUT[act], _DERIV_FROM_OUTPUT[ract]
        h_prev = torch.cat([h0.unsqueeze(0), out[:-1]], 0)  # (T, B, H)
        d_out = torch.zeros_like(out) if d_out is None else d_out
        dh = torch.zeros_like(h0) if d_h is None else d_h.clone()
        d_pre = out.new_empty(T, G, B, H)  # gradient w.r.t. each gate's pre-activation == d xw
        # Coefficients of the step equations, for all steps at once.
        if kind == "simple_rnn":
            coef = dact(out)
        elif kind == "lstm":
            ifo, g, cs, tc = extra
            c_prev = torch.cat([c0.unsqueeze(0), cs[:-1]], 0)
            q = ifo[:, 2] * dact(tc)  # d h / d c through tanh(c)
            p_o = tc * dract(ifo[:, 2])
            a_i = g * dract(ifo[:, 0])
            a_f = c_prev * dract(ifo[:, 1])
            a_g = ifo[:, 0] * dact(g)
            f_gate = ifo[:, 1]
            dc = torch.zeros_like(h0) if d_c is None else d_c.clone()
        elif kind == "gru":
            rz, n = extra[0], extra[1]
            r, z = rz[:, 0], rz[:, 1]
            c_n = (1 - z) * dact(n)
            a_z = (h_prev - n) * dract(z)
            if ctx.reset_after:
                a_r = extra[2] * dract(r)  # hh_n * r'
            else:
                hm_n = h_prev if mask is None else h_prev * mask[2]
                a_r = hm_n * dract(r)
            d_hh_n = out.new_empty(T, B, H)  # gradient w.r.t. the recurrent projection of gate n
        for t in range(T - 1, -1, -1):
            dh = dh + d_out[t]
            dp = d_pre[t]
            if kind == "simple_rnn":
                torch.mul(dh, coef[t], out=dp[0])
                dhm = torch.mm(dp[0], w[0]).unsqueeze(0)
                carry = None
            elif kind == "lstm":
                dct = torch.addcmul(dc, dh, q[t])
                torch.mul(dct, a_i[t], out=dp[0])
                torch.mul(dct, a_f[t], out=dp[1])
                torch.mul(dct, a_g[t], out=dp[2])
                torch.mul(dh, p_o[t], out=dp[3])
                dc = dct * f_gate[t]
                dhm = torch.bmm(dp, w)
                carry = None
            elif ctx.reset_after:
                torch.mul(dh, c_n[t], out=dp[2])
                torch.mul(dh, a_z[t], out=dp[1])
                torch.mul(dp[2], a_r[t], out=dp[0])
                dhh = torch.stack([dp[0], dp[1], torch.mul(dp[2], r[t], out=d_hh_n[t])], 0)
                dhm = torch.bmm(dhh, w)
                carry = dh * z[t]
            else:
                torch.mul(dh, c_n[t], out=dp[2])
                torch.mul(dh, a_z[t], out=dp[1])
                d_rh = torch.mm(dp[2], w[2])  # gradient w.r.t. r * hm_n
                torch.mul(d_rh, a_r[t], out=dp[0])
                dhm_rz = torch.bmm(dp[:2], w[:2])
                dhm = torch.cat([dhm_rz, (d_rh * r[t]).unsqueeze(0)], 0)
                carry = dh * z[t]
            if mask is not None:
                dhm = dhm * mask
            dh = dhm.sum(0) if carry is None else carry + dhm.sum(0)
        # Weight gradients: one matmul over all timesteps.
        hm_all = h_prev.unsqueeze(1).expand(T, G, B, H)
        if mask is not None:
            hm_all = hm_all * mask.unsqueeze(0)
        d_rec = d_pre
        if kind == "gru":
            if ctx.reset_after:
                d_rec = torch.cat([d_pre[:, :2], d_hh_n.unsqueeze(1)], 1)
            else:
                hm_all = torch.cat([hm_all[:, :2], (r * hm_n).unsqueeze(1)], 1)
        d_w = torch.einsum("tgbo,tgbi->goi", d_rec, hm_all).reshape(G * H, H)
        d_b = d_rec.sum((0, 2)).reshape(G * H) if ctx.has_bias else None
        d_c0 = dc if kind == "lstm" else None
        return d_pre, d_w, d_b, dh, d_c0, None, None, None, None, None


def run(kind, xw, w_hh, b_hh, h0, c0, mask, act, ract, reset_after):
    """Run the loop; return ``(output (B, T, H), h_T, c_T or None)``.

    ``xw``: input projections ``(T, G, B, H)``; ``w_hh``: ``(G*H, H)``; ``b_hh``: ``(G*H,)`` or None;
    ``mask``: per-sample recurrent dropout masks ``(G, B, H)`` or None.
    """
    if kind != "lstm":
        c0 = None
    hand = (
        act in _DERIV_FROM_OUTPUT
        and (ract in _DERIV_FROM_OUTPUT or kind == "simple_rnn")
        and not torch.is_autocast_enabled(xw.device.type)
    )
    if hand:
        out, h, c = _Recurrence.apply(xw, w_hh, b_hh, h0, c0, mask, kind, act, ract, reset_after)
    else:
        out, h, c = _autograd_loop(kind, xw, w_hh, b_hh, h0, c0, mask, act, ract, reset_after)
    return out.transpose(0, 1), h, c
