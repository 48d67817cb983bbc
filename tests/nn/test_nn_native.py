"""The native (C) recurrent loop: gradients against finite differences, results against the Python loop, the
choice of implementation, and the build (cached, and a clear fallback where it cannot be built)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from seqlight.nn import GRU, LSTM, Bidirectional, SimpleRNN, _loop
from seqlight.nn._native import native_status

needs_native = pytest.mark.skipif(
    native_status() != "available", reason=f"no native loop on this machine: {native_status()}"
)

I, H = 3, 4

CELLS = {  # every cell with a native loop, with the activations it meets in the book and beyond
    "GRU Keras 2.0.8": (GRU, dict(reset_after=False, recurrent_activation="hard_sigmoid")),
    "GRU reset_after": (GRU, dict()),
    "LSTM hard_sigmoid": (LSTM, dict(recurrent_activation="hard_sigmoid")),
    "LSTM relu": (LSTM, dict(activation="relu")),
    "SimpleRNN": (SimpleRNN, dict()),
    "SimpleRNN relu": (SimpleRNN, dict(activation="relu")),
}


@needs_native
@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("batch", [2, 33])  # 33: the 32-column blocks and the remainder
@pytest.mark.parametrize("rmasked", [False, True])
@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("gate_inputs", [False, True])  # x (T, B, in), or one input per gate (G, T, B, in)
def test_gradcheck_native_loop(name, batch, rmasked, padded, gate_inputs):
    """Each cell's C loop backward (and torch's whole-sequence weight gradients around it) against finite
    differences, in float64, with per-sample recurrent dropout masks and padding masks (front, end, inside)."""
    cls, kw = CELLS[name]
    torch.manual_seed(0)
    cell = cls(I, H, **kw).cell
    G, T = cell.gates, 4
    gen = torch.Generator().manual_seed(1)

    def rand(*shape, scale=1.0):
        return (scale * torch.randn(*shape, dtype=torch.float64, generator=gen)).requires_grad_()

    x = rand(*((G, T, batch, I) if gate_inputs else (T, batch, I)))
    w_ih, b_ih, w_hh = rand(G * H, I, scale=0.5), rand(G * H), rand(G * H, H, scale=0.5)
    b_hh = rand(H) if cell.has_recurrent_bias else None  # the GRU's c_n
    h0 = rand(batch, H)
    c0 = rand(batch, H) if cell.has_cell_state else None
    rmask = (torch.rand(G, batch, H, generator=gen, dtype=torch.float64) > 0.3).double() / 0.7 if rmasked else None
    steps = None
    if padded:
        steps = (torch.rand(T, batch, 1, generator=gen) > 0.3).double()
        steps[0, 0], steps[-1, -1] = 0, 0

    def f(x, w_ih, b_ih, w_hh, b_hh, h0, c0):
        out, h, c = _loop.run(cell, x, w_ih, b_ih, w_hh, b_hh, h0, c0, rmask, steps, implementation="native")
        return (out, h) if c is None else (out, h, c)

    assert torch.autograd.gradcheck(f, (x, w_ih, b_ih, w_hh, b_hh, h0, c0), eps=1e-6, atol=1e-6)


def _run(layer, x, seed, **kw):
    torch.manual_seed(seed)
    out, state = layer(x, **kw)
    states = state if isinstance(state, tuple) else (state,)
    loss = (out * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).pow(2).sum() + sum(s.sum() for s in states)
    grads = torch.autograd.grad(loss, [x, *layer.parameters()])
    return out, states, grads


OPTIONS = {
    "plain": dict(),
    "dropout": dict(dropout=0.3, recurrent_dropout=0.3),
    "stacked, backwards": dict(num_layers=2, go_backwards=True),
    "bias=False": dict(bias=False),
}


@needs_native
@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("lengths", [False, True])
def test_native_equals_the_python_loop(name, option, lengths):
    """Outputs, final states and every gradient (inputs and parameters) of the same layer on both loops, with the
    same dropout masks (same seed), in float64 (agreement to rounding) and float32 (to float32 tolerance)."""
    cls, kw = CELLS[name]
    for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 1e-3)):
        torch.manual_seed(0)
        layer = cls(I, H, **kw, **OPTIONS[option]).to(dtype)
        x = torch.randn(37, 9, I, dtype=dtype, requires_grad=True)
        call = {"lengths": torch.randint(1, 10, (37,))} if lengths else {}
        results = {}
        for impl in ("native", "function"):
            layer.implementation = impl
            results[impl] = _run(layer, x, seed=5, **call)
        (o1, s1, g1), (o2, s2, g2) = results["native"], results["function"]
        for a, b in zip((o1, *s1, *g1), (o2, *s2, *g2)):
            torch.testing.assert_close(a, b, atol=tol, rtol=tol)


@needs_native
@pytest.mark.parametrize("name", list(CELLS))
def test_native_empty_batch(name):
    """An empty batch runs as on the Python loop: empty outputs, zero gradients."""
    cls, kw = CELLS[name]
    layer = cls(I, H, implementation="native", **kw)
    x = torch.randn(0, 5, I, requires_grad=True)
    out, state = layer(x)
    assert out.shape == (0, 5, H)
    out.sum().backward()
    assert all(p.grad is not None and not p.grad.any() for p in layer.parameters())


@needs_native
def test_bidirectional_native_equals_python_loop():
    torch.manual_seed(0)
    fwd = GRU(I, H, reset_after=False, recurrent_activation="hard_sigmoid").double()
    layer = Bidirectional(fwd)
    x = torch.randn(4, 6, I, dtype=torch.float64, requires_grad=True)
    res = {}
    for impl in ("native", "function"):
        for sub in (layer.forward_layer, layer.backward_layer):
            sub.implementation = impl
        res[impl] = _run(layer, x, seed=0)
    (o1, s1, g1), (o2, s2, g2) = res["native"], res["function"]
    for a, b in zip((o1, *s1, *g1), (o2, *s2, *g2)):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


@needs_native
def test_auto_takes_the_native_loop_where_it_applies(monkeypatch):
    """The custom loop runs in C on CPU in float32 and float64 (Keras 2.0.8's GRU and LSTM under ``'auto'``, any
    cell under ``'loop'``), and in Python under autocast, in other dtypes and where ``'function'`` is asked."""
    calls = []
    real = _loop.run_native
    monkeypatch.setattr(_loop, "run_native", lambda *a, **k: calls.append(1) or real(*a, **k))
    x = torch.randn(2, 5, I)
    gru = GRU(I, H, reset_after=False, recurrent_activation="hard_sigmoid")
    gru(x)
    gru.double()(x.double())
    LSTM(I, H, recurrent_activation="hard_sigmoid")(x)
    SimpleRNN(I, H, implementation="loop")(x)
    assert len(calls) == 4
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gru.float()(x)
    gru.to(torch.bfloat16)(x.to(torch.bfloat16))
    GRU(I, H)(x)  # torch's semantics: 'auto' takes torch's fused kernel first
    GRU(I, H, reset_after=False, implementation="function")(x)
    assert len(calls) == 4


def test_native_where_it_cannot_run_is_a_clear_error():
    x = torch.randn(2, 5, I)
    with pytest.raises(ValueError, match="implementation='native' cannot run LSTMCell.*no elu activation"):
        LSTM(I, H, activation="elu", implementation="native")(x)
    gru = GRU(I, H, reset_after=False, implementation="native").to(torch.bfloat16)
    with pytest.raises(ValueError, match="CPU float32/float64"):
        gru(x.to(torch.bfloat16))


def _python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env={**os.environ, **env}
    )


STATUS = (
    "import torch; from seqlight.nn import GRU; from seqlight.nn._native import native_status; "
    "g = GRU(3, 4, reset_after=False); out, h = g(torch.randn(2, 5, 3)); print(native_status())"
)


def test_without_a_compiler_the_python_loop_runs(tmp_path):
    """No compiler (or SEQLIGHT_NATIVE=0): nothing is built, ``native_status`` says why, the layer still runs."""
    p = _python(STATUS, CC=str(tmp_path / "no-such-cc"), SEQLIGHT_CACHE=str(tmp_path / "cache"))
    assert p.returncode == 0, p.stderr
    assert "could not be run" in p.stdout and "no-such-cc" in p.stdout
    assert not list((tmp_path / "cache").rglob("*.so"))
    p = _python(STATUS, SEQLIGHT_NATIVE="0", SEQLIGHT_CACHE=str(tmp_path / "cache"))
    assert p.returncode == 0 and p.stdout.strip() == "$SEQLIGHT_NATIVE=0", p.stdout + p.stderr


@needs_native
def test_the_build_is_cached(tmp_path):
    cache = tmp_path / "cache"
    p = _python(STATUS, SEQLIGHT_CACHE=str(cache))
    assert p.returncode == 0 and p.stdout.strip() == "available", p.stdout + p.stderr
    (built,) = cache.joinpath("native").glob("*.so")
    first = built.stat().st_mtime_ns
    p = _python(STATUS, SEQLIGHT_CACHE=str(cache), CC=str(tmp_path / "no-such-cc"))  # would fail if it compiled
    assert p.returncode == 0, p.stderr
    assert "could not be run" in p.stdout  # a different compiler is a different build: not the cached one
    p = _python(STATUS, SEQLIGHT_CACHE=str(cache))
    assert p.stdout.strip() == "available" and built.stat().st_mtime_ns == first
    assert not [f for f in cache.joinpath("native").iterdir() if f.suffix != ".so" or f.name.startswith(".")]
