"""Gradients of the custom loop (hand-written backward) against finite differences and the fused kernels."""

from __future__ import annotations

import pytest
import torch

from seqlight.nn import GRU, LSTM, SimpleRNN, _loop

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
def test_gradcheck_custom_loop(cls, kw, masked):
    layer = _layer(cls, use_fused=False, **kw)
    G = layer.gates
    kind = layer.kind
    gen = torch.Generator().manual_seed(1)
    xw = torch.randn(G, T, B, H, dtype=torch.float64, generator=gen, requires_grad=True)
    w_hh = (0.5 * torch.randn(G * H, H, dtype=torch.float64, generator=gen)).requires_grad_()
    b_hh = (
        torch.randn(G * H, dtype=torch.float64, generator=gen, requires_grad=True)
        if kind == "gru" and layer.reset_after
        else None
    )
    h0 = torch.randn(B, H, dtype=torch.float64, generator=gen, requires_grad=True)
    c0 = torch.randn(B, H, dtype=torch.float64, generator=gen, requires_grad=True) if kind == "lstm" else None
    mask = (torch.rand(G, B, H, generator=gen, dtype=torch.float64) > 0.3).double() / 0.7 if masked else None

    def f(xw, w_hh, b_hh, h0, c0):
        out, h, c = _loop._Recurrence.apply(
            xw, w_hh, b_hh, h0, c0, mask, kind, layer.activation, layer.recurrent_activation, layer.reset_after
        )
        return (out, h) if c is None else (out, h, c)

    assert torch.autograd.gradcheck(f, (xw, w_hh, b_hh, h0, c0), eps=1e-6, atol=1e-6)


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


def test_hand_backward_equals_autograd_loop():
    """The hand-written backward and autograd through the plain loop give the same gradients."""
    torch.manual_seed(5)
    layer = GRU(I, H, reset_after=False, recurrent_activation="hard_sigmoid").double()
    x = torch.randn(B, T, I, dtype=torch.float64)
    grads = []
    for hand in (True, False):
        layer.zero_grad()
        if hand:
            out, _ = layer(x)
        else:
            saved = dict(_loop._DERIV_FROM_OUTPUT)
            _loop._DERIV_FROM_OUTPUT.clear()
            try:
                out, _ = layer(x)
            finally:
                _loop._DERIV_FROM_OUTPUT.update(saved)
        out.pow(2).sum().backward()
        grads.append([p.grad.clone() for p in layer.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)
