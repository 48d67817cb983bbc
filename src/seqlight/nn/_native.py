"""The native recurrent loop: a cell's time loop in C, compiled on first use with the machine's C compiler.

Every implementation in PyTorch, its own fused kernel included, spends most of a small recurrent layer's time
on the overhead of its per-step operations, not on arithmetic: a GRU(32) step on a batch of 128 is about
400,000 multiply-adds, some 10 microseconds of one core, against the 40 that a dozen small torch operations
cost. Here the whole loop over time is one call into C (``native/recurrence.c``): per step the recurrent
matmuls, written for the feature-major layout of :mod:`seqlight.nn.cells` (the state ``(H, B)``, 32 columns
kept in registers), and the gates' elementwise work in the same pass, with a vectorizable ``exp``. What is
not sequential stays with torch: the input projections of all steps before the loop (one batched matmul)
and, after the backward loop, every weight gradient, as whole-sequence matrix products.

The C file has no Python or torch headers and builds in about a second, with ``$CC`` or ``cc`` and
``-O3 -march=native``, into seqlight's cache folder (``$SEQLIGHT_CACHE/native``, else ``~/.cache/seqlight``),
once per source, compiler and CPU. Where there is no compiler, or ``$SEQLIGHT_NATIVE=0``, nothing is built and
``implementation='auto'`` runs the Python loop (:mod:`seqlight.nn._loop`) as before: same results, slower.
:func:`native_status` says which. It runs on CPU tensors in float32 and float64 (the latter for gradcheck),
outside autocast and tracing, on one core whatever torch's thread count (the GIL is released meanwhile).

Every cell has a native loop (:attr:`seqlight.nn.cells.Cell.native`): SimpleRNN, LSTM, and the GRU both ways
(``reset_after``), with every activation but ``elu`` and ``softsign``, per-sample recurrent dropout masks and
padding masks. ``implementation='auto'`` still takes PyTorch's fused kernel first where it computes the same
equations (torch's semantics: bit for bit ``torch.nn.GRU``), so the C loop runs for the book's Keras 2.0.8
layers, for per-sample recurrent dropout and for masks; ``implementation='loop'`` (or ``'native'``) asks for it
everywhere. Measured in ``benchmarks/recurrent.py`` against torch's kernels in the same run.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from seqlight.nn._pool import POOL, GiveBack

__all__ = ["native_status", "native_why_not", "run_native"]

_log = logging.getLogger("seqlight.nn")

ENV = "SEQLIGHT_NATIVE"
SOURCE_DIR = Path(__file__).resolve().parent / "native"
SOURCES = ("recurrence.c", "recurrence.h")
# -fno-trapping-math lets the compiler vectorize exp's float-to-int step; the arithmetic is IEEE otherwise.
FLAGS = ("-O3", "-std=gnu99", "-fno-trapping-math", "-fno-math-errno", "-shared", "-fPIC")
ARCH_FLAGS = ("-march=native",)  # dropped (with a slower build) where the compiler does not know it
#: the activation cores the C loops know (activations.py's names; the affine parts are folded into the weights)
ACTIVATION_IDS = {"linear": 0, "tanh": 1, "sigmoid": 2, "hard_sigmoid": 3, "relu": 4}

_library: ctypes.CDLL | None = None
_why_not: str | None = None  # why there is no library (None: not tried yet, or loaded)
_tried = False


def _cpu_identity() -> str:
    """What ``-march=native`` compiled for: the CPU model and its feature flags (Linux), else the platform."""
    try:
        with open("/proc/cpuinfo") as f:
            lines = [ln for ln in f if ln.startswith(("model name", "flags", "Features", "CPU part"))]
        return "".join(sorted(set(lines)))
    except OSError:
        return platform.platform() + platform.processor()


def _compiler() -> str | None:
    cc = os.environ.get("CC", "").strip()
    if cc:
        return shutil.which(cc) or cc
    for name in ("cc", "gcc", "clang"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _cache_folder() -> Path:
    from seqlight.files import cache_root, writable

    folder = cache_root() / "native"
    if writable(folder):
        return folder
    return Path(tempfile.gettempdir()) / f"seqlight-native-{os.getuid() if hasattr(os, 'getuid') else 'user'}"


def _build() -> Path | str:
    """The compiled library (built now if needed), or why it cannot be."""
    cc = _compiler()
    if cc is None:
        return "no C compiler found (set $CC, or install gcc or clang)"
    source = b"".join((SOURCE_DIR / name).read_bytes() for name in SOURCES)
    key = hashlib.sha256(b"\0".join([source, cc.encode(), " ".join(FLAGS).encode(), _cpu_identity().encode()]))
    folder = _cache_folder()
    out = folder / f"recurrence-{key.hexdigest()[:20]}.so"
    if out.is_file():
        return out
    folder.mkdir(parents=True, exist_ok=True)
    # compiled beside its final name and renamed into place: concurrent processes (DDP ranks) each build their
    # own copy and the last rename wins, with identical contents; a half-written file is never loaded
    tmp = folder / f".{out.stem}.{os.getpid()}.tmp.so"
    errors = []
    for arch in (ARCH_FLAGS, ()):
        cmd = [cc, *FLAGS, *arch, "-o", str(tmp), str(SOURCE_DIR / "recurrence.c"), "-lm"]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"{cc} could not be run ({e})"
        if p.returncode == 0:
            os.replace(tmp, out)
            return out
        errors.append(p.stderr.strip().splitlines()[-1:] or [f"exit {p.returncode}"])
    tmp.unlink(missing_ok=True)
    return f"{cc} failed to compile {SOURCE_DIR / 'recurrence.c'}: {errors[-1][0]}"


def _declare(lib: ctypes.CDLL) -> None:
    """Argument types of every kernel's two entry points (the C file's signatures)."""
    p, i, z = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
    for sfx, real in (("f32", ctypes.c_float), ("f64", ctypes.c_double)):
        for kernel in KERNELS.values():
            fwd = getattr(lib, f"{kernel.name}_forward_{sfx}")
            fwd.argtypes, fwd.restype = [i, i, i, z, z, *[p] * 9, i, i, real, real], i
            bwd = getattr(lib, f"{kernel.name}_backward_{sfx}")
            bwd.argtypes, bwd.restype = [i, i, i, z, z, *[p] * 12, i, i, real], i


def library() -> ctypes.CDLL | None:
    """The loaded native library, built on the first call; None where it cannot be (see :func:`native_status`)."""
    global _library, _why_not, _tried
    if _tried:
        return _library
    _tried = True
    if os.environ.get(ENV, "").strip() == "0":
        _why_not = f"${ENV}=0"
        return None
    try:
        built = _build()
        if isinstance(built, str):
            _why_not = built
        else:
            lib = ctypes.CDLL(str(built))
            _declare(lib)
            _library = lib
    except (OSError, AttributeError) as e:
        _why_not = f"the native library could not be built or loaded ({e})"
    if _library is None:
        _log.info("seqlight.nn: no native recurrent loop (%s); the Python loop runs instead", _why_not)
    return _library


def native_status() -> str:
    """``'available'``, or why the native loop cannot run on this machine (builds it on first call)."""
    return "available" if library() is not None else str(_why_not)


def native_why_not(cell, x: Tensor, w_hh: Tensor, autocast: bool, tracing: bool) -> str | None:
    """Why ``cell`` cannot run natively on these tensors (None: it can)."""
    kind = getattr(cell, "native", None)
    if kind is None:
        return f"{type(cell).__name__} has no native loop"
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64) or w_hh.dtype != x.dtype:
        return f"the native loop takes CPU float32/float64 tensors, not {x.dtype} on {x.device.type}"
    if autocast or tracing:
        return "the native loop does not run under autocast or while tracing"
    act, ract = cell.core_names()
    if act not in ACTIVATION_IDS or ract not in ACTIVATION_IDS:
        return f"the native loop has no {act if act not in ACTIVATION_IDS else ract} activation"
    if library() is None:
        return str(_why_not)
    return None


def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _check(code: int, what: str) -> None:
    if code != 0:
        raise MemoryError(f"seqlight's native {what} could not allocate its scratch memory")


def _padded(n: int) -> int:
    """A row length of at least ``n`` numbers whose rows are not a multiple of 4 KiB apart (the C file's layout):
    64 bytes past the next 64-byte boundary in float32 (128 in float64)."""
    return n + (-n) % 16 + 16


def _block(rows: int, T: int, B: int, like: Tensor) -> Tensor:
    """An uninitialised ``(rows, ld)`` block from the pool, for a ``(rows, T, B)`` sequence (:func:`_steps`)."""
    return POOL.take((rows, _padded(T * B)), like)


def _steps(block: Tensor, T: int, B: int) -> Tensor:
    """``block``'s first ``T * B`` columns as the sequence ``(rows, T, B)``."""
    return block[:, : T * B].view(block.shape[0], T, B)


def _rows_of(x: Tensor) -> Tensor:
    """Time-major inputs ``(T, B, in)`` (any strides) as the matrix ``(T * B, in)``, copied only if needed."""
    return x.reshape(x.shape[0] * x.shape[1], x.shape[2])  # (not -1: an empty batch has no size to infer)


def _state_products(d: Tensor, h_prev: Tensor, rmask: Tensor | None, gates: range) -> Tensor:
    """``[d_g (h m_g)^T]_g``: the weight gradient of the recurrent products whose input is the previous state
    (masked per gate), ``d``: their gradients, ``(len(gates) * H, T * B)``; ``h_prev (H, T, B)``."""
    H, TB = h_prev.shape[0], d.shape[1]
    if rmask is None:
        return torch.mm(d, h_prev.reshape(H, TB).t())  # the padded rows make this a view, not a copy
    m = rmask.view(-1, H, 1, rmask.shape[-1])
    blocks = d.split(H)
    return torch.cat([torch.mm(blocks[i], (h_prev * m[g]).reshape(H, TB).t()) for i, g in enumerate(gates)])


def _grads_state_inputs(G, d_pre, h_prev, rmask, aux, d_aux):
    """SimpleRNN, LSTM: every gate's recurrent input is the (masked) previous state."""
    return _state_products(d_pre, h_prev, rmask, range(G)), None


def _grads_gru_reset_before(G, d_pre, h_prev, rmask, aux, d_aux):
    """r, z: the previous state; n: ``r h m_n``, kept in ``aux``."""
    H = h_prev.shape[0]
    d_n = torch.mm(d_pre[2 * H :], aux.reshape(H, -1).t())
    return torch.cat([_state_products(d_pre[: 2 * H], h_prev, rmask, range(2)), d_n]), None


def _grads_gru(G, d_pre, h_prev, rmask, aux, d_aux):
    """r, z, n: the previous state; n's product ``U_n (h m_n) + c_n`` has the gradient ``d_aux`` (the reset gate
    scales it), which also sums to the gradient of ``c_n``."""
    H = h_prev.shape[0]
    d_aux = d_aux.reshape(H, -1)
    rz = _state_products(d_pre[: 2 * H], h_prev, rmask, range(2))
    return torch.cat([rz, _state_products(d_aux, h_prev, rmask, range(2, 3))]), d_aux.sum(1)


@dataclass(frozen=True)
class _Kernel:
    """One cell's loop in C (``<name>_forward/backward``, see the C file) and its weight gradients around it."""

    name: str
    aux: bool  # whether the cell keeps a (H, T, B) sequence besides the gates
    d_aux: bool  # whether its backward pass writes one (the GRU's gradient of U_n h + c_n)
    weight_grads: Callable  # (G, d_pre, h_prev, rmask, aux, d_aux) -> (d U, d b_hh or None)


KERNELS = {
    "simple_rnn": _Kernel("simple_rnn", False, False, _grads_state_inputs),
    "lstm": _Kernel("lstm", True, False, _grads_state_inputs),
    "gru": _Kernel("gru", True, True, _grads_gru),
    "gru_reset_before": _Kernel("gru_rb", True, False, _grads_gru_reset_before),
}


class _NativeRecurrence(torch.autograd.Function):
    """A cell's loop in C. ``x (T, B, in)`` or ``(G, T, B, in)`` (one input mask per gate), the folded weights
    (``b_hh``: the GRU's ``c_n`` or None), states ``(H, B)`` (``c0`` for the LSTM, else None), ``rmask (G, H,
    B)``, ``steps (T, 1, B)``, as :func:`seqlight.nn._loop.run` prepares them. Returns ``(hs (H, T, B), h_T (H,
    B), c_T or None)``; the C file describes the layout."""

    @staticmethod
    def forward(ctx, cell, x, w_ih, b_ih, w_hh, b_hh, h0, c0, rmask, steps):
        kernel = KERNELS[cell.native]
        G, (H, B), T = cell.gates, h0.shape, x.shape[-3]
        xs = [_rows_of(x)] if x.dim() == 3 else [_rows_of(xg) for xg in x]  # one per input mask
        xw_block = _block(G * H, T, B, x)
        aux_block = _block(H, T, B, x) if kernel.aux else None
        xw = xw_block[:, : T * B]  # the input projections, overwritten with the gates
        for rows, x_rows, w in zip(xw.chunk(len(xs)), xs, w_ih.chunk(len(xs))):
            rows.addmm_(w, x_rows.t(), beta=0)  # beta=0: the uninitialised memory is not read; the loop adds b_ih
        hs = _steps(x.new_empty(H, _padded((T + 1) * B)), T + 1, B)  # the output: not from the pool
        hs[:, 0] = h0
        cs = None
        if c0 is not None:
            cs = _steps(x.new_empty(H, _padded((T + 1) * B)), T + 1, B)
            cs[:, 0] = c0
        aux = None if aux_block is None else _steps(aux_block, T, B)
        w_hh = w_hh.contiguous()
        b, c_n, rm, st = (None if t is None else t.contiguous() for t in (b_ih, b_hh, rmask, steps))
        fwd = getattr(library(), f"{kernel.name}_forward_{_SUFFIX[x.dtype]}")
        ptrs = [_ptr(t) for t in (xw, b, w_hh, c_n, rm, st, hs, cs, aux)]
        act, ract = (ACTIVATION_IDS[a] for a in cell.core_names())
        code = fwd(T, B, H, xw.stride(0), hs.stride(0), *ptrs, act, ract, cell.act.scale, cell.act.shift)
        _check(code, f"{kernel.name} loop")
        ctx.set_materialize_grads(False)
        ctx.cell, ctx.per_gate_inputs = cell, x.dim() == 4
        ctx.save_for_backward(w_ih, b_ih, w_hh, b_hh, rm, st, hs, cs, xw, aux, *xs)
        ctx.give_back = GiveBack(xw_block, aux_block)
        return hs[:, 1:], hs[:, T].clone(), None if cs is None else cs[:, T].clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_out, d_h, d_c):
        cell = ctx.cell
        kernel = KERNELS[cell.native]
        w_ih, b_ih, w_hh, b_hh, rmask, steps, hs, cs, xw, aux, *xs = ctx.saved_tensors
        G, H, T, B = cell.gates, hs.shape[0], hs.shape[1] - 1, hs.shape[2]
        dh = torch.zeros_like(hs[:, 0]) if d_h is None else d_h.contiguous().clone()
        dc = None
        if cs is not None:
            dc = torch.zeros_like(hs[:, 0]) if d_c is None else d_c.contiguous().clone()
        d_block = _block(G * H, T, B, xw)
        d_pre = d_block[:, : T * B]
        d_aux_block = _block(H, T, B, xw) if kernel.d_aux else None
        d_aux = None if d_aux_block is None else _steps(d_aux_block, T, B)
        out_block = None
        if d_out is not None and d_out.stride() != (d_pre.stride(0), B, 1):  # the C loop reads it as d_pre
            out_block = _block(H, T, B, xw)
            d_out = _steps(out_block, T, B).copy_(d_out)
        wt = w_hh.t().contiguous()
        bwd = getattr(library(), f"{kernel.name}_backward_{_SUFFIX[xw.dtype]}")
        ptrs = [_ptr(t) for t in (xw, wt, rmask, steps, hs, cs, aux, d_out, dh, dc, d_pre, d_aux)]
        act, ract = (ACTIVATION_IDS[a] for a in cell.core_names())
        _check(bwd(T, B, H, d_pre.stride(0), hs.stride(0), *ptrs, act, ract, cell.act.scale), f"{kernel.name} backward")
        # every weight gradient is one product over all steps: d U_g = D_g (input of U_g)^T, d W = D X
        d_w_hh, d_b_hh = kernel.weight_grads(G, d_pre, hs[:, :T], rmask, aux, d_aux)
        d_pres, w_ihs = d_pre.chunk(len(xs)), w_ih.chunk(len(xs))
        # (X^T D^T)^T: MKL takes the narrow X (T * B, in) far better as the left factor (twice as fast here)
        d_w_ih = torch.cat([torch.mm(x_rows.t(), d.t()).t() for d, x_rows in zip(d_pres, xs)])
        d_x = None
        if ctx.needs_input_grad[1]:
            d_xs = [torch.mm(d.t(), w).view(T, B, w.shape[1]) for d, w in zip(d_pres, w_ihs)]
            d_x = torch.stack(d_xs) if ctx.per_gate_inputs else d_xs[0]  # (stack would copy the one of them)
        d_b_ih = None if b_ih is None else d_pre.sum(1)
        POOL.give(d_block, d_aux_block, out_block)
        if b_hh is None:
            d_b_hh = None
        return None, d_x, d_w_ih, d_b_ih, d_w_hh, d_b_hh, dh, dc, None, None


_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}


def run_native(cell, x, w_ih, b_ih, w_hh, b_hh, h0, c0, rmask, steps) -> tuple[Tensor, Tensor, Tensor | None]:
    """``cell``'s loop in C: feature-major tensors as :func:`seqlight.nn._loop.run` prepares them; returns
    ``(hs (H, T, B), h_T (H, B), c_T (H, B) or None)``."""
    return _NativeRecurrence.apply(cell, x, w_ih, b_ih, w_hh, b_hh, h0, c0, rmask, steps)
