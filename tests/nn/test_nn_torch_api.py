"""seqlight.nn as a drop-in for torch.nn.GRU / LSTM / RNN: torch's arguments, state dicts, hx checks, h_n order."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from seqlight.nn import GRU, LSTM, Bidirectional, SimpleRNN, reference
from seqlight.nn.recurrent import KERAS_TO_TORCH_GATES

B, T, I, H = 3, 6, 5, 4
OURS = {"gru": GRU, "lstm": LSTM, "simple_rnn": SimpleRNN}
TORCH = {"gru": nn.GRU, "lstm": nn.LSTM, "simple_rnn": nn.RNN}
README = Path(__file__).resolve().parents[2] / "README.md"


def _pair(kind, use_fused=None, **kw):
    """A torch layer with random weights (biases included) and the seqlight layer loaded from its state dict."""
    torch.manual_seed(0)
    ref = TORCH[kind](I, H, **kw).double()
    ours = OURS[kind](I, H, **{k.replace("dropout", "inter_layer_dropout"): v for k, v in kw.items()})
    ours = ours.double()
    ours.use_fused = use_fused
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def _state(kind, kw, batch=B):
    D = 2 if kw.get("bidirectional") else 1
    shape = (kw.get("num_layers", 1) * D, batch, H)
    h = torch.randn(shape, dtype=torch.float64)
    return (h, torch.randn(shape, dtype=torch.float64)) if kind == "lstm" else h


CONFIGS = [
    {},
    {"bias": False},
    {"bidirectional": True},
    {"num_layers": 2, "bidirectional": True, "batch_first": True},
    {"num_layers": 3, "bias": False, "bidirectional": True, "batch_first": False},
]


# ------------------------------------------------------------------ constructor
@pytest.mark.parametrize("kind", OURS)
def test_torch_arguments_by_position_and_name(kind):
    extra = ("tanh",) if kind == "simple_rnn" else ()  # nn.RNN's nonlinearity comes fourth
    a = OURS[kind](14, 32, 2, *extra, False, False, 0.25, True)
    b = OURS[kind](14, 32, num_layers=2, bias=False, batch_first=False, inter_layer_dropout=0.25, bidirectional=True)
    ref = TORCH[kind](14, 32, 2, *extra, False, False, 0.25, True)
    for m in (a, b):
        assert (m.num_layers, m.bias, m.batch_first, m.inter_layer_dropout, m.bidirectional) == (
            2,
            False,
            False,
            0.25,
            True,
        )
        assert m.dropout == 0.0  # Keras's input dropout is untouched by torch's positional dropout
        assert {n: p.shape for n, p in m.named_parameters()}.keys() <= {n for n, _ in ref.named_parameters()}
    # torch's `GRU(14, 32, 1, True, True)`: batch_first given, True
    assert OURS[kind](14, 32, 1, *extra, True, True).batch_first is True
    assert OURS[kind](14, 32).batch_first is True  # seqlight's one deliberate default (Keras, the book)


def test_device_dtype_and_simple_rnn_nonlinearity():
    g = GRU(3, 4, device="cpu", dtype=torch.float64)
    assert all(p.dtype == torch.float64 for p in g.parameters())
    assert GRU(3, 4, device="meta").weight_hh_l0.is_meta
    assert SimpleRNN(3, 4, nonlinearity="relu").activation == "relu"
    with pytest.raises(ValueError, match="nonlinearity='relu'.*activation='elu'"):
        SimpleRNN(3, 4, nonlinearity="relu", activation="elu")
    with pytest.raises(ValueError, match="proj_size"):
        LSTM(3, 4, proj_size=2)
    with pytest.raises(ValueError, match="bias must be True or False, got 0.2"):
        GRU(3, 4, 1, 0.2)  # a rate in a flag's slot: an argument in the wrong position
    with pytest.raises(ValueError, match="go_backwards=True and bidirectional=True"):
        GRU(3, 4, bidirectional=True, go_backwards=True)
    with pytest.raises(ValueError, match="already bidirectional"):
        Bidirectional(GRU(3, 4, bidirectional=True))


@pytest.mark.parametrize("kind", OURS)
def test_bias_false_has_no_bias_parameters(kind):
    m = OURS[kind](I, H, 2, bias=False, bidirectional=True)
    assert not [n for n, _ in m.named_parameters() if "bias" in n]
    assert sum(p.numel() for p in m.parameters()) == sum(
        p.numel() for p in TORCH[kind](I, H, 2, bias=False, bidirectional=True).parameters()
    )


@pytest.mark.parametrize("kind", OURS)
def test_all_weights_and_flatten_parameters_as_torch(kind):
    ref, ours = _pair(kind, num_layers=2, bidirectional=True)
    ours.flatten_parameters()
    assert len(ours.all_weights) == len(ref.all_weights) == 4
    names = [n for n, _ in ref.named_parameters()]
    params = dict(ours.named_parameters())
    for j, (mine, theirs) in enumerate(zip(ours.all_weights, ref.all_weights)):
        n = len(mine)  # the LSTM and RNN keep one bias: torch's b_ih + b_hh
        assert [p.shape for p in mine] == [p.shape for p in theirs][:n]
        want = [name for name in names if name.split("_l")[1] == names[4 * j].split("_l")[1]][:n]
        assert [params[name] for name in want] == mine  # the module's own parameters, in torch's order


# ------------------------------------------------------------------ equal to torch, both ways
@pytest.mark.parametrize("use_fused", [None, False])
@pytest.mark.parametrize("kw", CONFIGS, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "default")
@pytest.mark.parametrize("kind", OURS)
def test_equals_torch_layer_after_loading_its_state_dict(kind, kw, use_fused):
    kw = {"batch_first": True, **kw}
    ref, ours = _pair(kind, use_fused=use_fused, **kw)
    ref.eval(), ours.eval()
    x = torch.randn((B, T, I) if kw["batch_first"] else (T, B, I), dtype=torch.float64)
    hx = _state(kind, kw)
    for args in ((x,), (x, hx)):
        y_ref, s_ref = ref(*args)
        y, s = ours(*args)
        torch.testing.assert_close(y, y_ref, atol=1e-6, rtol=0)
        torch.testing.assert_close(s, s_ref, atol=1e-6, rtol=0)  # h_n (and c_n) in torch's order
    assert ours.uses_fused_path() is (use_fused is None)


@pytest.mark.parametrize("kw", CONFIGS[:4], ids=["default", "nobias", "bi", "bi2"])
@pytest.mark.parametrize("kind", OURS)
def test_torch_state_dict_loads_into_torch(kind, kw):
    torch.manual_seed(1)
    ours = OURS[kind](I, H, **kw).double()
    with torch.no_grad():
        for p in ours.parameters():
            p.normal_(0, 0.5)
    ref = TORCH[kind](I, H, **{"batch_first": True, **kw}).double()
    ref.load_state_dict(ours.torch_state_dict())  # strict: every name and shape as torch's
    x = torch.randn(B, T, I, dtype=torch.float64)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-6, rtol=0)
    back = OURS[kind].from_torch(ref)
    assert back.batch_first and back.bias == kw.get("bias", True)
    torch.testing.assert_close(back(x), ref(x), atol=1e-6, rtol=0)


@pytest.mark.parametrize("kind", ["lstm", "simple_rnn"])
def test_torch_biases_are_summed_into_one(kind):
    ref, ours = _pair(kind)
    sd = ref.state_dict()
    torch.testing.assert_close(ours.bias_ih_l0, sd["bias_ih_l0"] + sd["bias_hh_l0"])
    assert "bias_hh_l0" not in ours.state_dict()
    torch.testing.assert_close(ours.torch_state_dict()["bias_hh_l0"], torch.zeros_like(sd["bias_hh_l0"]))


def test_state_dict_mismatches_are_reported():
    book = GRU(I, H, reset_after=False)
    with pytest.raises(ValueError, match="reset_after=False.*reset_after=True"):
        book.load_state_dict(nn.GRU(I, H).state_dict())
    with pytest.raises(ValueError, match="no torch.nn.GRU equivalent"):
        book.torch_state_dict()
    with pytest.raises(RuntimeError, match="Unexpected key.*bias_ih_l0"):
        LSTM(I, H, bias=False).load_state_dict(nn.LSTM(I, H).state_dict())
    with pytest.raises(ValueError, match="takes a torch.nn.LSTM, got GRU"):
        LSTM.from_torch(nn.GRU(I, H))
    wrapped = nn.Sequential(LSTM(I, H))  # a prefix: the sum works inside a model too
    wrapped.load_state_dict(nn.Sequential(nn.LSTM(I, H)).state_dict())


# ------------------------------------------------------------------ bias=False against the NumPy references
@pytest.mark.parametrize("use_fused", [None, False])
@pytest.mark.parametrize("case", ["simple_rnn", "lstm", "gru3", "gru2"])
def test_bias_false_matches_reference(case, use_fused):
    kind = case[:3] if case.startswith("gru") else case
    reset_after = case != "gru2"
    if not reset_after and use_fused is None:
        use_fused = False
    rng = np.random.default_rng(0)
    G = {"simple_rnn": 1, "lstm": 4, "gru": 3}[kind]
    w = [rng.normal(0, 0.5, (I, G * H)), rng.normal(0, 0.5, (H, G * H))]
    kw = {"reset_after": reset_after} if kind == "gru" else {}
    layer = OURS[kind](I, H, bias=False, use_fused=use_fused, **kw).double()
    layer.load_keras_weights(w)
    x = rng.normal(size=(B, T, I))
    y, _ = layer(torch.from_numpy(x))
    oracle = {"simple_rnn": reference.simple_rnn, "lstm": reference.lstm}.get(kind)
    if oracle is None:
        oracle = reference.gru_keras3 if reset_after else reference.gru_keras2
        out = oracle(x, *w, None, recurrent_activation="sigmoid")
    else:
        out = oracle(x, *w, None)
    np.testing.assert_allclose(y.detach().numpy(), out[0], atol=1e-10)


def test_bias_false_trains_on_both_paths():
    for use_fused in (None, False):
        gru = GRU(I, H, bias=False, use_fused=use_fused, dropout=0.2)
        out, _ = gru(torch.randn(B, T, I))
        out.sum().backward()
        assert all(p.grad is not None for p in gru.parameters())


# ------------------------------------------------------------------ bidirectional=True
@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_bidirectional_matches_keras_wrapper_per_direction(kind):
    """bidirectional=True is Keras's Bidirectional(concat) with torch's h_n order; Keras weights load as the
    forward list then the backward list."""
    rng = np.random.default_rng(2)
    G = {"lstm": 4, "gru": 3}[kind]
    bias = (2, G * H) if kind == "gru" else (G * H,)
    fwd = [rng.normal(0, 0.5, s) for s in ((I, G * H), (H, G * H), bias)]
    bwd = [rng.normal(0, 0.5, s) for s in ((I, G * H), (H, G * H), bias)]
    ours = OURS[kind](I, H, bidirectional=True).double()
    ours.load_keras_weights(fwd + bwd)
    wrapper = Bidirectional(OURS[kind](I, H).double())
    wrapper.load_keras_weights(fwd + bwd)
    x = torch.randn(B, T, I, dtype=torch.float64)
    y, s = ours(x)
    y_w, s_w = wrapper(x)
    torch.testing.assert_close(y, y_w)
    h = s[0] if kind == "lstm" else s
    torch.testing.assert_close(h, s_w[0] if kind == "lstm" else s_w)  # one layer: both orders agree
    torch.testing.assert_close(h[1], y[:, 0, H:])  # the backward state after the whole sequence
    assert KERAS_TO_TORCH_GATES[kind]  # gate reordering applies to both directions alike


def test_stacked_bidirectional_h_n_is_layer_major():
    ref, ours = _pair("gru", num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(B, T, I, dtype=torch.float64)
    y, h = ours(x)
    assert h.shape == (4, B, H)
    torch.testing.assert_close(h[2], y[:, -1, :H])  # layer 1 forward
    torch.testing.assert_close(h[3], y[:, 0, H:])  # layer 1 backward
    torch.testing.assert_close(h, ref(x)[1])


def test_inter_layer_dropout_is_between_layers_in_training_only():
    torch.manual_seed(0)
    x = torch.randn(B, T, I)
    with pytest.warns(UserWarning, match="does nothing with num_layers=1"):
        one = GRU(I, H, 1, inter_layer_dropout=0.5).train()
    torch.testing.assert_close(one(x)[0], one.eval()(x)[0])  # one layer: nothing between layers (torch warns)
    two = GRU(I, H, 2, inter_layer_dropout=0.5)
    y_eval = two.eval()(x)[0]
    two.train()
    assert not torch.allclose(two(x)[0], y_eval)
    assert two.uses_fused_path()
    ref = nn.GRU(I, H, 2, batch_first=True, dropout=0.5)
    ref.load_state_dict(two.torch_state_dict())
    torch.testing.assert_close(ref.eval()(x)[0], y_eval)


# ------------------------------------------------------------------ hx checked like torch
@pytest.mark.parametrize("kind", OURS)
def test_hx_shape_is_checked(kind):
    layer = OURS[kind](I, H)
    x = torch.randn(B, T, I)
    bad = torch.zeros(3, B, H)  # the 3-layer hx for num_layers=1
    hx = (bad, torch.zeros(1, B, H)) if kind == "lstm" else bad
    name = "h_0" if kind == "lstm" else "hx"
    with pytest.raises(ValueError, match=re.escape(f"{name} must have shape (1, 3, 4)") + r".*got \(3, 3, 4\)"):
        layer(x, hx)
    bi = OURS[kind](I, H, 2, bidirectional=True)
    good = torch.zeros(4, B, H)
    bi(x, (good, good) if kind == "lstm" else good)
    with pytest.raises(ValueError, match=r"must have shape \(4, 3, 4\)"):
        bi(x, (good[:2], good[:2]) if kind == "lstm" else good[:2])
    with pytest.raises(ValueError, match="same dtype"):
        layer(x, (torch.zeros(1, B, H, dtype=torch.float16),) * 2 if kind == "lstm" else torch.zeros(1, B, H).half())


def test_lstm_state_must_be_a_pair_and_c_0_is_checked():
    lstm = LSTM(I, H)
    x = torch.randn(B, T, I)
    with pytest.raises(ValueError, match=r"pair \(h_0, c_0\)"):
        lstm(x, torch.zeros(1, B, H))
    with pytest.raises(ValueError, match=r"c_0 must have shape \(1, 3, 4\).*got \(1, 2, 4\)"):
        lstm(x, (torch.zeros(1, B, H), torch.zeros(1, 2, H)))


@pytest.mark.parametrize("kind", OURS)
@pytest.mark.parametrize("batch_first", [True, False])
def test_unbatched_input_as_torch(kind, batch_first):
    kw = {"num_layers": 2, "bidirectional": True, "batch_first": batch_first}
    ref, ours = _pair(kind, **kw)
    x = torch.randn(T, I, dtype=torch.float64)
    hx = _state(kind, kw, batch=1)
    hx = tuple(h[:, 0] for h in hx) if kind == "lstm" else hx[:, 0]
    for args in ((x,), (x, hx)):
        torch.testing.assert_close(ours(*args), ref(*args), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="unbatched 2-D input takes a 2-D state"):
        ours(x, _state(kind, kw, batch=1))


# ------------------------------------------------------------------ the README's example, bidirectional
def _readme_nn_example() -> str:
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    (block,) = [b for b in blocks if "from seqlight.nn import" in b]
    return block


@pytest.mark.parametrize("bidirectional", [False, True])
def test_readme_nn_example_runs_bidirectional(bidirectional):
    code = _readme_nn_example()
    if bidirectional:
        assert "recurrent_dropout=0.2," in code  # the book's GRU, made bidirectional the torch way
        code = code.replace("recurrent_dropout=0.2,", "recurrent_dropout=0.2,\n    bidirectional=True,", 1)
    env: dict = {}
    exec(compile(code, str(README), "exec"), env)
    D = 2 if bidirectional else 1
    assert env["book_gru"].bidirectional is bidirectional
    book_out, book_h = env["book_gru"](torch.randn(2, 9, 14))
    assert book_out.shape == (2, 9, 32 * D) and book_h.shape == (D, 2, 32)
    assert env["gru"].bidirectional  # the torch user's line in the README is bidirectional already
