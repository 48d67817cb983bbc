"""The custom recurrent loop: what runs when PyTorch's fused kernels cannot express Keras's semantics.

One time loop for every cell (:mod:`seqlight.nn.cells`): the loop handles the state, padding masks and the
saving of tensors for the backward pass; the cell does one step. Input: the input projections of every step
``xw (T, B, G*H)``, computed before the loop in one matmul.

Padding masks (``steps``, ``(T, B, 1)``, 1 where a step is real): a masked step keeps the previous state,
``h_t = h_{t-1}`` (and ``c``), and the output repeats it (Keras 3's ``RNN`` with a mask). In the backward
pass its state gradient passes through unchanged and the cell's step gets none.

Three implementations, chosen by :func:`run` (``implementation``):

- ``'function'``: :class:`_Recurrence`, a ``torch.autograd.Function`` whose backward loop calls each cell's
  hand-written :meth:`~seqlight.nn.cells.Cell.step_backward` (activation derivatives from their outputs).
  Everything the backward pass reads goes through ``ctx.save_for_backward``: the states and the cell's
  per-step intermediates, written during the forward loop into preallocated ``(T, ...)`` buffers. It is
  differentiable once (no double backward).
- ``'autograd'``: the cell's plain loop (:attr:`~seqlight.nn.cells.Cell.loop`) recorded by autograd: used
  under autocast (where each op picks its own precision) and for activations without an output-only
  derivative (``elu``, ``softsign``). The loops are written in the subset of Python that TorchScript
  compiles; their compiled form is what runs while ``torch.jit.trace`` records a model (``seqlight.export``,
  ``torch.onnx.export(..., dynamo=False)``): the tracer cannot record a Python ``autograd.Function`` and would
  unroll a Python loop into ``T`` copies of the step. The compiled loop is recorded as one call holding a real
  loop (``prim::Loop``, ONNX ``Loop``), so an exported model takes any batch size and any length.
- ``'auto'``: ``'function'`` where it applies, else ``'autograd'``; the compiled loop while tracing.
"""

from __future__ import annotations

import functools

import torch

from seqlight.nn._fused import autocast_dtype
from seqlight.nn.cells import Cell

__all__ = ["run", "LOOP_IMPLEMENTATIONS"]

LOOP_IMPLEMENTATIONS = ("auto", "function", "autograd")


class _Recurrence(torch.autograd.Function):
    """The loop with each cell's hand-written backward step, feature-major (:mod:`seqlight.nn.cells`).

    ``xw``: ``G*H * T * B`` contiguous values laid out ``(G*H, T, B)`` (any shape, e.g. the ``(G*H, T*B)`` of
    one matmul); it is overwritten with the gates' activations (marked dirty and returned as a fourth output,
    which callers drop), so it must not be a view. States ``(H, B)`` (``h0``, ``c0`` and the outputs), ``rmask
    (G, H, B)``, ``steps (T, 1, B)``. Returns ``(hs (H, T, B), h_T, c_T or None, xw)``.
    """

    @staticmethod
    def forward(ctx, cell: Cell, xw, w_hh, b_hh, h0, c0, rmask, steps):
        H, B = h0.shape
        GH = w_hh.shape[0]
        T = xw.numel() // (GH * B)
        x3 = xw.view(GH, T, B)
        P = cell.prepare(w_hh, b_hh, rmask)
        buf = cell.buffers(T, B, H, xw)
        buf_t = [b.unbind(1) for b in buf]
        x = cell.blocks(x3)
        hs = xw.new_empty(H, T + 1, B)  # hs[:, t]: the state before step t
        hs[:, 0] = h0
        hs_t = hs.unbind(1)
        cs, cs_t = None, [None] * (T + 1)
        if cell.has_cell_state:
            cs = xw.new_empty(H, T + 1, B)
            cs[:, 0] = c0
            cs_t = cs.unbind(1)
        keep = None if steps is None else (steps > 0).unbind(0)
        step = cell.step
        for t in range(T):
            if keep is None:
                step(P, t, x, hs_t[t], cs_t[t], buf_t, hs_t[t + 1], cs_t[t + 1])
            else:
                h_new, c_new = step(P, t, x, hs_t[t], cs_t[t], buf_t, None, None)
                torch.where(keep[t], h_new, hs_t[t], out=hs_t[t + 1])
                if cs is not None:
                    torch.where(keep[t], c_new, cs_t[t], out=cs_t[t + 1])
        ctx.cell = cell
        ctx.mark_dirty(xw)
        ctx.save_for_backward(w_hh, b_hh, rmask, steps, hs, cs, xw, *buf)
        return hs[:, 1:], hs_t[T], (None if cs is None else cs_t[T]), xw

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_out, d_h, d_c, d_gates):
        del d_gates  # the gates output is dropped by the callers
        cell: Cell = ctx.cell
        w_hh, b_hh, rmask, steps, hs, cs, xw, *buf = ctx.saved_tensors
        H, T, B = hs.shape[0], hs.shape[1] - 1, hs.shape[2]
        GH = w_hh.shape[0]
        P = cell.prepare(w_hh, b_hh, rmask)
        d_pre = hs.new_empty(GH, T, B)  # == the gradient of xw
        d_w = torch.zeros_like(w_hh)
        gbuf = cell.grad_buffers(T, B, H, hs)
        hs_t, x, d = hs.unbind(1), cell.blocks(xw.view(GH, T, B)), cell.blocks(d_pre)
        cs_t = None if cs is None else cs.unbind(1)
        buf_t, gbuf_t = [b.unbind(1) for b in buf], [g.unbind(1) for g in gbuf]
        d_out_t = None if d_out is None else d_out.unbind(1)
        steps_t = None if steps is None else steps.unbind(0)
        dh = torch.zeros_like(hs_t[0]) if d_h is None else d_h.clone()
        dc = None
        if cs is not None:
            dc = torch.zeros_like(hs_t[0]) if d_c is None else d_c.clone()
        step_backward = cell.step_backward
        for t in range(T - 1, -1, -1):
            if d_out_t is not None:
                dh = dh + d_out_t[t]
            if steps_t is None:
                dh, dc = step_backward(P, t, dh, dc, hs_t, cs_t, x, buf_t, gbuf_t, d, d_w)
            else:  # a masked step passes the state's gradient through, and its cell step gets none
                m = steps_t[t]
                dh_step = dh * m
                dh_keep = dh - dh_step
                dc_step = dc_keep = None
                if dc is not None:
                    dc_step = dc * m
                    dc_keep = dc - dc_step
                dh, dc = step_backward(P, t, dh_step, dc_step, hs_t, cs_t, x, buf_t, gbuf_t, d, d_w)
                dh = dh + dh_keep
                if dc is not None:
                    dc = dc + dc_keep
        d_b = cell.finish_backward(P, hs, buf, gbuf, d_pre, d_w)
        if b_hh is None:
            d_b = None
        return None, d_pre.view(xw.shape), d_w, d_b, dh, dc, None, None


@functools.cache
def _scripted(loop):
    """A cell's plain loop compiled by TorchScript, once per process (about a second), on first export."""
    return torch.jit.script(loop)


def run(cell: Cell, xw, w_hh, b_hh, h0, c0, rmask=None, steps=None, implementation: str = "auto"):
    """Run ``cell`` over the input projections ``xw``, laid out ``(G*H, T, B)`` (feature-major, see
    :mod:`seqlight.nn.cells`; any shape with that memory, the loop may overwrite it); return ``(output (B, T,
    H), h_T (B, H), c_T (B, H) or None)``.

    ``w_hh (G*H, H)``; ``b_hh``: the cell's recurrent bias (``c_n (H,)`` for :class:`~seqlight.nn.cells.GRUCell`
    after its ``fold``) or None; ``h0``/``c0 (B, H)`` (``c0`` for cells with a cell state, else None);
    ``rmask``: per-sample recurrent dropout masks ``(G, B, H)`` or None; ``steps``: ``(T, B, 1)`` float, 1 for a
    real step, 0 for a masked one, or None. ``implementation``: see the module docstring.
    """
    if implementation not in LOOP_IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {LOOP_IMPLEMENTATIONS}, got {implementation!r}")
    tracing = torch.jit.is_tracing()  # torch.jit.trace, TorchScript-based ONNX export (module docstring)
    if implementation == "function":
        if tracing or not cell.has_hand_backward():
            raise ValueError(
                f"implementation='function' needs activations whose derivative follows from their output and no "
                f"tracing; {cell!r} under {'tracing' if tracing else 'eager'} mode cannot run it"
            )
        hand = True
    elif implementation == "autograd":
        hand = False
    else:
        # the same autocast check as the fused path's (works on "meta" tensors too)
        hand = not tracing and cell.has_hand_backward() and autocast_dtype(xw.device.type) is None
    if hand:
        if xw._is_view() or (xw.is_leaf and xw.requires_grad):
            xw = xw.clone()  # the loop overwrites xw with the gates: it takes a tensor of its own
        rm = None if rmask is None else rmask.transpose(1, 2).contiguous()
        st = None if steps is None else steps.transpose(1, 2).contiguous()
        c0t = None if c0 is None else c0.t()
        hs, h, c, _ = _Recurrence.apply(cell, xw, w_hh, b_hh, h0.t(), c0t, rm, st)
        return hs.permute(2, 1, 0), h.t(), (None if c is None else c.t())
    loop = _scripted(cell.loop) if tracing else cell.loop
    act, ract = cell.core_names()
    B = h0.shape[0]
    xw = xw.reshape(w_hh.shape[0], -1, B).permute(1, 2, 0)  # (T, B, G*H)
    out, h, c = loop(xw, w_hh, b_hh, h0, h0 if c0 is None else c0, rmask, steps, act, ract)
    return out.transpose(0, 1), h, (c if c0 is not None else None)
