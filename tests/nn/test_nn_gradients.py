"""Gradients of the custom loop (hand-written backward) against finite differences and the fused kernels."""

from __future__ import annotations

import pytest
import torch

from seqlight.nn import GRU, LSTM, SimpleRNN, _loop, _pool, native_status

B, T, I, H = 2, 4, 3, 3


def _layer(cls, **kw):
    torch.manual_seed(0)
    return cls(I, H, **kw).double()


GRAD_CASES = [
    (SimpleRNN, dict(activation="tanh")),
    (SimpleRNN, dict(activation="relu")),
    (LSTM, dict()),
    (LSTM, dict(recurrent_activation="hard_sigmoid")),
    (GRU, dict()),
    (GRU, dict(reset_after=False, recurrent_activation="hard_sigmoid")),
    (GRU, dict(reset_after=False, activation="relu")),
]


@pytest.mark.parametrize("cls,kw", GRAD_CASES, ids=[f"{c.__name__}-{kw}" for c, kw in GRAD_CASES])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("padded", [False, True])
def test_gradcheck_custom_loop(cls, kw, masked, padded):
    """Each cell's hand-written backward against finite differences, with per-sample recurrent dropout masks
    (``masked``) and padding masks (``padded``: masked steps keep the state, at the front, the end and inside)."""
    cell = _layer(cls, use_fused=False, **kw).cell
    G = cell.gates
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(T, B, I, dtype=torch.float64, generator=gen, requires_grad=True)  # time-major
    w_ih = (0.5 * torch.randn(G * H, I, dtype=torch.float64, generator=gen)).requires_grad_()
    b_ih = torch.randn(G * H, dtype=torch.float64, generator=gen, requires_grad=True)
    w_hh = (0.5 * torch.randn(G * H, H, dtype=torch.float64, generator=gen)).requires_grad_()
    b_hh = None
    if cell.has_recurrent_bias:  # the GRU's c_n (its c_r and c_z are folded into the input projections)
        b_hh = torch.randn(H, dtype=torch.float64, generator=gen, requires_grad=True)
    h0 = torch.randn(B, H, dtype=torch.float64, generator=gen, requires_grad=True)
    c0 = torch.randn(B, H, dtype=torch.float64, generator=gen, requires_grad=True) if cell.has_cell_state else None
    mask = (torch.rand(G, B, H, generator=gen, dtype=torch.float64) > 0.3).double() / 0.7 if masked else None
    steps = torch.tensor([[0, 1], [1, 1], [1, 0], [0, 1]], dtype=torch.float64).unsqueeze(-1) if padded else None

    def f(x, w_ih, b_ih, w_hh, b_hh, h0, c0):
        out, h, c = _loop.run(cell, x, w_ih, b_ih, w_hh, b_hh, h0, c0, mask, steps, implementation="function")
        return (out, h) if c is None else (out, h, c)

    assert torch.autograd.gradcheck(f, (x, w_ih, b_ih, w_hh, b_hh, h0, c0), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("cls", [SimpleRNN, LSTM, GRU])
def test_fused_and_custom_paths_agree_with_gradients(cls):
    torch.manual_seed(2)
    fused = cls(I, H).double()
    custom = cls(I, H, use_fused=False).double()
    custom.load_state_dict(fused.state_dict())
    assert fused.uses_fused_path() and not custom.uses_fused_path()
    x = torch.randn(B, T, I, dtype=torch.float64)
    outs = []
    for layer in (fused, custom):
        layer.zero_grad()
        out, _ = layer(x)
        (out.sin().sum()).backward()
        outs.append((out.detach(), {n: p.grad.clone() for n, p in layer.named_parameters()}))
    torch.testing.assert_close(outs[0][0], outs[1][0], atol=1e-10, rtol=1e-8)
    for name in outs[0][1]:
        torch.testing.assert_close(outs[0][1][name], outs[1][1][name], atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_batch_recurrent_dropout_fused_equals_custom(cls):
    torch.manual_seed(3)
    fused = cls(I, H, dropout=0.3, recurrent_dropout=0.5, recurrent_dropout_mode="batch").double()
    custom = cls(I, H, dropout=0.3, recurrent_dropout=0.5, recurrent_dropout_mode="batch", use_fused=False).double()
    custom.load_state_dict(fused.state_dict())
    assert fused.uses_fused_path()
    x = torch.randn(B, T, I, dtype=torch.float64)
    torch.manual_seed(4)
    a = fused(x)[0]
    torch.manual_seed(4)
    b = custom(x)[0]
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("cls,kw", GRAD_CASES, ids=[f"{c.__name__}-{kw}" for c, kw in GRAD_CASES])
def test_hand_backward_equals_autograd_loop(cls, kw):
    """The two loop implementations (hand-written backward, autograd through the plain loop) give the same
    outputs and gradients, with dropout masks of both kinds and a padding mask."""
    torch.manual_seed(5)
    layer = _layer(cls, dropout=0.3, recurrent_dropout=0.4, **kw)
    x = torch.randn(B, T, I, dtype=torch.float64)
    steps = torch.tensor([[0, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)
    results = []
    for implementation in ("function", "autograd"):
        layer.implementation = implementation
        layer.zero_grad()
        torch.manual_seed(6)
        out, _ = layer(x, mask=steps)
        out.pow(2).sum().backward()
        results.append([out.detach()] + [p.grad.clone() for p in layer.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b)


def test_implementation_switch():
    """``implementation=`` chooses the path explicitly; ``use_fused`` is its older form."""
    x = torch.randn(B, T, I, dtype=torch.float64)
    gru = _layer(GRU, implementation="fused")
    assert gru.uses_fused_path() and gru.use_fused is True
    with pytest.raises(ValueError, match="padding mask"):
        gru(x, lengths=[2, 3])
    keras2 = _layer(GRU, reset_after=False, recurrent_activation="hard_sigmoid", implementation="function")
    assert not keras2.uses_fused_path() and keras2.use_fused is False
    with pytest.raises(ValueError, match="implementation='fused'"):
        _layer(GRU, reset_after=False, implementation="fused").uses_fused_path()
    with pytest.raises(ValueError, match="implementation='function'"):
        _layer(LSTM, activation="elu", implementation="function")(x)
    with pytest.raises(ValueError, match="not both"):
        _layer(GRU, use_fused=False, implementation="autograd")
    with pytest.raises(ValueError, match="implementation must be"):
        _layer(GRU, implementation="cudnn")
    old = _layer(GRU, use_fused=False)
    assert old.implementation == "loop" and not old.uses_fused_path()


def test_buffers_reused_across_calls_never_change_a_result():
    """The loop keeps its buffers from one call to the next (seqlight.nn._pool.Pool): outputs of an earlier call
    stay as they were, and a graph kept with retain_graph=True still gives the same gradients after other calls."""
    torch.manual_seed(7)
    layer = _layer(LSTM, recurrent_activation="hard_sigmoid")
    x1, x2 = torch.randn(B, T, I, dtype=torch.float64), torch.randn(B, T, I, dtype=torch.float64)
    with torch.no_grad():
        out1, (h1, c1) = layer(x1)
        kept = out1.clone(), h1.clone(), c1.clone()
        layer(x2)  # may reuse the first call's buffers
    for a, b in zip((out1, h1, c1), kept):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    out, (h, c) = layer(x1)
    loss = out.sum() + c.sum()
    first = torch.autograd.grad(loss, list(layer.parameters()), retain_graph=True)
    for _ in range(3):  # other calls, forward and backward, in between
        o, (_, cc) = layer(x2)
        (o.sum() + cc.sum()).backward()
    second = torch.autograd.grad(loss, list(layer.parameters()))
    for a, b in zip(first, second):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_buffer_pool_is_bounded():
    """Batches of ever new shapes (bucketed lengths) must not grow the kept buffers without bound."""
    pool = _pool.Pool(per_key=2, max_bytes=1000)
    like = torch.zeros(1)
    pool.give(*[torch.empty(10 * n) for n in range(1, 30)])  # float32: 40 n bytes each
    assert pool.bytes <= 1000 and sum(t.nbytes for ts in pool.free.values() for t in ts) == pool.bytes
    kept = pool.take((10,), like)
    assert kept.shape == (10,) and pool.bytes <= 1000 - 40
    pool.give(*[torch.empty(10) for _ in range(5)])
    assert len(pool.free[((10,), torch.float32, like.device)]) == 2  # at most per_key of a shape


@pytest.mark.parametrize("implementation", ["function", "native"])
def test_a_call_under_inference_mode_leaves_no_buffer_a_training_call_cannot_write(implementation):
    """Lightning validates under torch.inference_mode: buffers made there are inference tensors, and a training
    step that took one from the pool failed ("Inplace update to inference tensor outside InferenceMode")."""
    if implementation == "native" and native_status() != "available":
        pytest.skip(f"no native loop: {native_status()}")
    layer = GRU(I, H, reset_after=False, recurrent_activation="hard_sigmoid", implementation=implementation)
    x = torch.randn(5, 7, I)  # a shape no other test of this process uses, so the pool has nothing for it yet
    with torch.inference_mode():
        expected, _ = layer(x)
    out, h = layer(x)
    h.sum().backward()
    torch.testing.assert_close(out, expected.clone())
