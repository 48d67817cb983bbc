"""The layers under ``torch.jit.trace``: the TorchScript-compiled loop (seqlight.nn._loop) gives the same numbers
as the eager layers, at batch sizes and lengths other than the traced ones (ONNX: tests/test_export.py)."""

from __future__ import annotations

import warnings

import pytest
import torch

from seqlight.nn import GRU, LSTM, Bidirectional, SimpleRNN, _loop
from seqlight.nn.activations import ACTIVATIONS, activate
from seqlight.nn.cells import GRUCell, GRUResetBeforeCell, LSTMCell, SimpleRNNCell

I, H = 5, 4

CASES = {
    "gru_keras2": lambda: GRU(I, H, recurrent_activation="hard_sigmoid", reset_after=False),
    "gru_keras3": lambda: GRU(I, H),
    "gru_relu_two_layers": lambda: GRU(I, H, num_layers=2, activation="relu"),
    "lstm_keras2": lambda: LSTM(I, H, recurrent_activation="hard_sigmoid"),
    "lstm_elu_backwards": lambda: LSTM(I, H, activation="elu", go_backwards=True),
    "lstm_keras3": lambda: LSTM(I, H),
    "simple_rnn_softsign": lambda: SimpleRNN(I, H, activation="softsign"),
    "simple_rnn_tanh": lambda: SimpleRNN(I, H),
    "bidirectional_gru_keras2": lambda: Bidirectional(
        GRU(I, H, recurrent_activation="hard_sigmoid", reset_after=False)
    ),
}


def _trace(layer, x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarning (the input checks) and TorchScript's deprecation notice
        return torch.jit.trace(layer, (x,), check_trace=False)


@pytest.mark.parametrize("name", sorted(CASES))
def test_traced_layer_matches_eager_at_other_sizes(name):
    torch.manual_seed(0)
    layer = CASES[name]().double().eval()
    with torch.no_grad():
        traced = _trace(layer, torch.randn(3, 7, I, dtype=torch.float64))
        for shape in [(3, 7, I), (1, 12, I), (6, 2, I)]:  # other batch sizes and lengths: a loop, not unrolled
            x = torch.randn(*shape, dtype=torch.float64)
            got, want = traced(x), layer(x)
            torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_custom_loop_layers_are_traced_through_the_compiled_loop():
    """The keras2 GRU's trace holds a loop (not 7 unrolled steps) and no Python autograd.Function."""
    layer = GRU(I, H, recurrent_activation="hard_sigmoid", reset_after=False).eval()
    with torch.no_grad():
        graph = str(_trace(layer, torch.randn(2, 7, I)).inlined_graph)
    assert "prim::Loop" in graph
    assert "PythonOp" not in graph


CELLS = {
    "gru": GRUCell("tanh", "hard_sigmoid"),
    "gru_reset_before": GRUResetBeforeCell("tanh", "hard_sigmoid"),
    "lstm": LSTMCell("tanh", "hard_sigmoid"),
    "simple_rnn": SimpleRNNCell("tanh"),
}


@pytest.mark.parametrize("kind", sorted(CELLS))
@pytest.mark.parametrize("padded", [False, True])
def test_compiled_loop_equals_eager_loop_with_masks(kind, padded):
    """Each cell's compiled loop is its eager loop, recurrent-dropout and padding masks and all (a model traced
    in train mode, or with a mask)."""
    torch.manual_seed(0)
    cell = CELLS[kind]
    G, T, B = cell.gates, 6, 3
    xw, w_hh = torch.randn(T, B, G * H), torch.randn(G * H, H) / 2
    b_hh = torch.randn(H) if cell.has_recurrent_bias else None  # the GRU's c_n
    h0, c0 = torch.randn(B, H), torch.randn(B, H)
    mask = torch.bernoulli(torch.full((G, B, H), 0.7)) / 0.7
    steps = (torch.rand(T, B, 1) > 0.4).float() if padded else None
    args = (xw, w_hh, b_hh, h0, c0, mask, steps, *cell.core_names())
    want = cell.loop(*args)
    got = _loop._scripted(cell.loop)(*args)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_compiled_activation_dispatch_matches_the_table(name):
    """``activate`` (what TorchScript compiles) and the table's cores (what the eager paths call) agree, and each
    activation is its core after its affine map."""
    a = ACTIVATIONS[name]
    for dtype, atol in ((torch.float64, 1e-15), (torch.float32, 4e-7)):  # float32: tanh as a sigmoid, 2 ulp
        x = torch.linspace(-4, 4, 101, dtype=dtype)
        torch.testing.assert_close(activate(name, x), a.core(x), rtol=0, atol=0)
        torch.testing.assert_close(a.fn(x), a.core(a.scale * x + a.shift), rtol=0, atol=atol)
        torch.testing.assert_close(a.fn(x), a.fn_out(x, None), rtol=0, atol=atol)
        torch.testing.assert_close(a(x), a.fn(x), rtol=0, atol=0)
