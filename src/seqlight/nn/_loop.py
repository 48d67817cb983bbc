"""The custom recurrent loop: what runs when PyTorch's fused kernels cannot express Keras's semantics.

One time loop for every cell (:mod:`seqlight.nn.cells`): the loop computes each step's input projection
(``W_ih x_t^T + b``, feature-major, next to the step so that it is in cache), runs the steps, applies padding
masks and keeps what the backward pass reads; the cell does one step, forwards and backwards.

Padding masks (``steps``, ``(T, B, 1)``, 1 where a step is real): a masked step keeps the previous state,
``h_t = h_{t-1}`` (and ``c``), and the output repeats it: Keras's masking (:mod:`seqlight.nn._masks`). In the
backward pass its state gradient passes through unchanged and the cell's step gets none.

Four implementations, chosen by :func:`run` (``implementation``):

- ``'function'``: :class:`_Recurrence`, a ``torch.autograd.Function`` whose backward loop calls each cell's
  hand-written :meth:`~seqlight.nn.cells.Cell.step_backward` (activation derivatives from their outputs).
  Everything the backward pass reads goes through ``ctx.save_for_backward``: the states and the cell's
  per-step intermediates, written during the forward loop into preallocated buffers, which a small pool keeps
  from call to call (:class:`seqlight.nn._pool.Pool`). It is differentiable once (no double backward).
- ``'autograd'``: the cell's plain loop (:attr:`~seqlight.nn.cells.Cell.loop`) recorded by autograd: used
  under autocast (where each op picks its own precision) and for activations without an output-only
  derivative (``elu``, ``softsign``). The loops are written in the subset of Python that TorchScript
  compiles; their compiled form is what runs while ``torch.jit.trace`` records a model (``seqlight.export``,
  ``torch.onnx.export(..., dynamo=False)``): the tracer cannot record a Python ``autograd.Function`` and would
  unroll a Python loop into ``T`` copies of the step. The compiled loop is recorded as one call holding a real
  loop (``prim::Loop``, ONNX ``Loop``), so an exported model takes any batch size and any length.
- ``'native'``: the whole loop in C (:mod:`seqlight.nn._native`), for the cells that have one, on CPU in
  float32/float64, outside autocast and tracing; built on first use where the machine has a C compiler.
- ``'auto'``: ``'native'`` where it applies, else ``'function'`` where that applies, else ``'autograd'``; the
  compiled loop while tracing.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from seqlight.nn._fused import autocast_dtype
from seqlight.nn._native import native_why_not, run_native
from seqlight.nn._pool import POOL as _POOL
from seqlight.nn._pool import GiveBack as _GiveBack
from seqlight.nn.cells import Cell

__all__ = ["run", "LOOP_IMPLEMENTATIONS"]

LOOP_IMPLEMENTATIONS = ("auto", "native", "function", "autograd")


def _rows(b: Tensor | None, g: int, H: int) -> Tensor | None:
    return None if b is None else b[g * H : (g + 1) * H]


def _input_grads(d: Tensor, x: Tensor, w: Tensor, d_w: Tensor, d_x: Tensor | None) -> None:
    """One step's share: ``d_w += d x`` and ``d_x = d^T w`` (``d (G*H, B)``, ``x (B, in)``, ``w (G*H, in)``)."""
    d_w.addmm_(d, x)
    if d_x is not None:
        torch.mm(d.t(), w, out=d_x)


def _project(out: Tensor, w: Tensor, b: Tensor | None, x: Tensor) -> None:
    """``out[t] = w x[t]^T + b`` for every step: ``out (T, R, B)``, ``w (R, in)``, ``x (T, B, in)``."""
    wt = w.expand(x.shape[0], *w.shape)
    if b is None:
        torch.bmm(wt, x.transpose(1, 2), out=out)
    else:
        torch.baddbmm(b.view(1, -1, 1), wt, x.transpose(1, 2), out=out)


class _Recurrence(torch.autograd.Function):
    """The input projections and the loop, with each cell's hand-written backward step, feature-major
    (:mod:`seqlight.nn.cells`).

    ``x``: the (dropout-masked) inputs time-major ``(T, B, in)`` (any strides), or ``(G, T, B, in)`` with one
    input mask per gate; ``w_ih (G*H, in)``, ``b_ih (G*H,)`` or None (both folded, :meth:`Cell.fold`). States
    ``(H, B)`` (``h0``, ``c0`` and the outputs), ``rmask (G, H, B)``, ``steps (T, 1, B)``. Returns ``(hs (T, H,
    B), h_T, c_T or None)``.
    """

    @staticmethod
    def forward(ctx, cell: Cell, x, w_ih, b_ih, w_hh, b_hh, h0, c0, rmask, steps):
        H, B = h0.shape
        GH, G = w_hh.shape[0], cell.gates
        T = x.shape[-3]
        x3 = _POOL.take((T, GH, B), x)  # the input projections, overwritten with the gates by the steps
        x_t = None
        if x.dim() == 3:  # W_ih x_t^T + b, step by step in the loop, while the step is in cache
            x_t = x.unbind(0)
            b_col = None if b_ih is None else b_ih.unsqueeze(1)
        else:  # one input mask per gate: all steps at once
            for g in range(G):
                _project(x3[:, g * H : (g + 1) * H], w_ih[g * H : (g + 1) * H], _rows(b_ih, g, H), x[g])
        P = cell.prepare(w_hh, b_hh, rmask)
        buf = [_POOL.take(shape, x) for shape in cell.buffer_shapes(T, B, H)]
        buf_t = [b.unbind(0) for b in buf]
        xs = cell.blocks(x3)
        hs = x.new_empty(T + 1, H, B)  # hs[t]: the state before step t; a part of the output
        hs[0] = h0
        hs_t = hs.unbind(0)
        cs, cs_t = None, [None] * (T + 1)
        if cell.has_cell_state:
            cs = _POOL.take((T + 1, H, B), x)
            cs[0] = c0
            cs_t = cs.unbind(0)
        keep = None if steps is None else (steps > 0).unbind(0)
        step = cell.step
        for t in range(T):
            if x_t is not None:
                if b_col is None:
                    torch.mm(w_ih, x_t[t].t(), out=xs[0][t])
                else:
                    torch.addmm(b_col, w_ih, x_t[t].t(), out=xs[0][t])
            step(P, t, xs, hs_t[t], cs_t[t], buf_t, hs_t[t + 1], cs_t[t + 1])
            if keep is not None:  # a masked step keeps the state it was given
                torch.where(keep[t], hs_t[t + 1], hs_t[t], out=hs_t[t + 1])
                if cs is not None:
                    torch.where(keep[t], cs_t[t + 1], cs_t[t], out=cs_t[t + 1])
        c_T = None if cs is None else cs_t[T].clone()
        ctx.set_materialize_grads(False)  # an unused output's gradient stays None (no zeros to add at every step)
        if any(ctx.needs_input_grad):
            ctx.cell = cell
            ctx.save_for_backward(x, w_ih, b_ih, w_hh, b_hh, rmask, steps, hs, cs, x3, *buf)
            ctx.give_back = _GiveBack(x3, cs, *buf)
        else:
            _POOL.give(x3, cs, *buf)
        return hs[1:], hs_t[T], c_T

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_out, d_h, d_c):
        cell: Cell = ctx.cell
        x, w_ih, b_ih, w_hh, b_hh, rmask, steps, hs, cs, x3, *buf = ctx.saved_tensors
        T, H, B = hs.shape[0] - 1, hs.shape[1], hs.shape[2]
        GH, G = w_hh.shape[0], cell.gates
        P = cell.prepare(w_hh, b_hh, rmask)
        d_pre = _POOL.take((T, GH, B), hs)  # the gradient of the input projections
        d_w = torch.zeros_like(w_hh)
        gbuf = [_POOL.take(shape, hs) for shape in cell.grad_buffer_shapes(T, B, H)]
        hs_t, xs, d = hs.unbind(0), cell.blocks(x3), cell.blocks(d_pre)
        cs_t = None if cs is None else cs.unbind(0)
        buf_t, gbuf_t = [b.unbind(0) for b in buf], [g.unbind(0) for g in gbuf]
        d_out_t = None if d_out is None else d_out.unbind(0)
        steps_t = None if steps is None else steps.unbind(0)
        skip_t = None if steps is None else (1 - steps).unbind(0)
        dh = torch.zeros_like(hs_t[0]) if d_h is None else d_h.clone()
        dc = None
        if cs is not None:
            dc = torch.zeros_like(hs_t[0]) if d_c is None else d_c.clone()
        step_backward = cell.step_backward
        x_t = d_x = d_x_t = d_w_ih = None
        if x.dim() == 3:  # the input projections' gradients step by step, while the step is in cache
            x_t, d_w_ih = x.unbind(0), torch.zeros_like(w_ih)
            if ctx.needs_input_grad[1]:
                d_x = torch.empty_like(x)  # x's own memory layout (often batch-first)
                d_x_t = d_x.unbind(0)
        for t in range(T - 1, -1, -1):
            if x_t is not None and t < T - 1:  # step t + 1's gradient is complete
                _input_grads(d[0][t + 1], x_t[t + 1], w_ih, d_w_ih, None if d_x_t is None else d_x_t[t + 1])
            if d_out_t is not None:
                dh = dh + d_out_t[t]
            if steps_t is None:
                dh, dc = step_backward(P, t, dh, dc, hs_t, cs_t, xs, buf_t, gbuf_t, d, d_w)
            else:  # a masked step passes the state's gradient through, and its cell step gets none
                m, skip = steps_t[t], skip_t[t]
                dh_cell, dc_cell = step_backward(
                    P, t, dh * m, None if dc is None else dc * m, hs_t, cs_t, xs, buf_t, gbuf_t, d, d_w
                )
                dh = torch.addcmul(dh_cell, dh, skip)
                if dc is not None:
                    dc = torch.addcmul(dc_cell, dc, skip)
        d_b = cell.finish_backward(P, hs, buf, gbuf, d_pre, d_w)
        # the input projections' gradients: d x_t = d_t^T W_ih, d W_ih = sum_t d_t x_t, d b_ih = sum of d
        if x_t is not None:
            _input_grads(d[0][0], x_t[0], w_ih, d_w_ih, None if d_x_t is None else d_x_t[0])
        else:
            d3 = d_pre.view(T, G, H, B)
            if ctx.needs_input_grad[1]:
                d_x = torch.stack([torch.matmul(d3[:, g].transpose(1, 2), w_ih[g * H : (g + 1) * H]) for g in range(G)])
            d_w_ih = torch.cat([torch.bmm(d3[:, g], x[g]).sum(0) for g in range(G)])
        d_b_ih = None if b_ih is None else d_pre.sum((0, 2))
        _POOL.give(d_pre, *gbuf)
        if b_hh is None:
            d_b = None
        return None, d_x, d_w_ih, d_b_ih, d_w, d_b, dh, dc, None, None


@functools.cache
def _scripted(loop):
    """A cell's plain loop compiled by TorchScript, once per process (about a second), on first export."""
    return torch.jit.script(loop)


def run(cell: Cell, x, w_ih, b_ih, w_hh, b_hh, h0, c0, rmask=None, steps=None, implementation: str = "auto"):
    """Run ``cell`` on the inputs ``x``; return ``(output (B, T, H), h_T (B, H), c_T (B, H) or None)``.

    ``x``: ``(T, B, in)`` (time-major, any strides), or ``(G, T, B, in)`` with one input dropout mask per
    gate; ``w_ih (G*H, in)``, ``b_ih (G*H,)`` or None, ``w_hh (G*H, H)``, ``b_hh``: the cell's own recurrent
    bias or None, all after :meth:`~seqlight.nn.cells.Cell.fold`; ``h0``/``c0 (B, H)`` (``c0`` for cells with a
    cell state, else None); ``rmask``: per-sample recurrent dropout masks ``(G, B, H)`` or None; ``steps``:
    ``(T, B, 1)`` float, 1 for a real step, 0 for a masked one, or None.
    ``implementation``: see the module docstring.
    """
    if implementation not in LOOP_IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {LOOP_IMPLEMENTATIONS}, got {implementation!r}")
    tracing = torch.jit.is_tracing()  # torch.jit.trace, TorchScript-based ONNX export (module docstring)
    autocast = autocast_dtype(x.device.type) is not None  # the fused path's check (works on "meta" tensors too)
    native = False
    if implementation in ("auto", "native"):
        why_not = native_why_not(cell, x, w_hh, autocast, tracing)
        if implementation == "native" and why_not is not None:
            raise ValueError(f"implementation='native' cannot run {cell!r} here: {why_not}")
        native = why_not is None
    if native:
        hand = True
    elif implementation == "function":
        if tracing or not cell.has_hand_backward():
            raise ValueError(
                f"implementation='function' needs activations whose derivative follows from their output and no "
                f"tracing; {cell!r} under {'tracing' if tracing else 'eager'} mode cannot run it"
            )
        hand = True
    elif implementation == "autograd":
        hand = False
    else:
        hand = not tracing and cell.has_hand_backward() and not autocast
    rmask = cell.order_gates(rmask)  # the masks in the loop's gate order, as fold put the weights
    if x.dim() == 4:
        x = cell.order_gates(x)
    if hand:
        rm = None if rmask is None else rmask.transpose(1, 2).contiguous()
        st = None if steps is None else steps.transpose(1, 2).contiguous()
        c0t = None if c0 is None else c0.t()
        if native:
            hs, h, c = run_native(cell, x, w_ih, b_ih, w_hh, b_hh, h0.t(), c0t, rm, st)
            return hs.permute(2, 1, 0), h.t(), (None if c is None else c.t())
        hs, h, c = _Recurrence.apply(cell, x, w_ih, b_ih, w_hh, b_hh, h0.t(), c0t, rm, st)
        return hs.permute(2, 0, 1), h.t(), (None if c is None else c.t())
    if x.dim() == 3:
        xw = torch.matmul(x, w_ih.t())  # (T, B, G*H) for the plain loops
    else:
        xw = torch.cat([torch.matmul(x[g], w.t()) for g, w in enumerate(w_ih.chunk(cell.gates))], -1)
    if b_ih is not None:
        xw = xw + b_ih
    loop = _scripted(cell.loop) if tracing else cell.loop
    act, ract = cell.core_names()
    out, h, c = loop(xw, w_hh, b_hh, h0, h0 if c0 is None else c0, rmask, steps, act, ract)
    return out.transpose(0, 1), h, (c if c0 is not None else None)
