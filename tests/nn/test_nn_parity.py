"""seqlight.nn layers against the numpy transcriptions of the Keras equations (float64, 1e-5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqlight.nn import GRU, LSTM, Bidirectional, SimpleRNN, reference
from seqlight.nn.recurrent import KERAS_TO_TORCH_GATES

B, T, I, H = 3, 7, 5, 4
GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}


def keras_weights(kind, rng, reset_after=True, in_size=I):
    G = GATES[kind]
    kernel = rng.normal(0, 0.5, (in_size, G * H))
    rec = rng.normal(0, 0.5, (H, G * H))
    bias = rng.normal(0, 0.5, (2, G * H) if kind == "gru" and reset_after else (G * H,))
    return [kernel, rec, bias]


def make_layer(kind, **kw):
    cls = {"simple_rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}[kind]
    return cls(I, H, **kw).double()


def oracle(kind, x, w, reset_after=True, **kw):
    if kind == "simple_rnn":
        kw.pop("recurrent_activation", None)
        out, h = reference.simple_rnn(x, *w, **kw)
        return out, h, None
    if kind == "lstm":
        return reference.lstm(x, *w, **kw)
    fn = reference.gru_keras3 if reset_after else reference.gru_keras2
    out, h = fn(x, *w, **kw)
    return out, h, None


def inject(layer, kind, in_mask, rec_mask):
    """Give the layer fixed masks (Keras gate order -> storage gate order)."""
    perm = KERAS_TO_TORCH_GATES[kind]
    tin = None if in_mask is None else torch.as_tensor(in_mask if in_mask.ndim == 2 else in_mask[perm])
    trec = None if rec_mask is None else torch.as_tensor(rec_mask[perm])
    layer.draw_masks = lambda batch, in_size, k, like: (tin, trec)


def run(layer, x):
    out, state = layer(torch.as_tensor(x))
    if isinstance(state, tuple):
        return out.detach().numpy(), state[0][-1].detach().numpy(), state[1][-1].detach().numpy()
    return out.detach().numpy(), state[-1].detach().numpy(), None


CASES = [
    ("simple_rnn", dict(activation="tanh")),
    ("simple_rnn", dict(activation="relu")),
    ("lstm", dict(recurrent_activation="sigmoid")),
    ("lstm", dict(recurrent_activation="hard_sigmoid")),
    ("lstm", dict(activation="relu")),
    ("gru", dict(reset_after=True)),
    ("gru", dict(reset_after=True, recurrent_activation="hard_sigmoid")),
    ("gru", dict(reset_after=False, recurrent_activation="hard_sigmoid")),
    ("gru", dict(reset_after=False, activation="relu", recurrent_activation="hard_sigmoid")),
    ("gru", dict(reset_after=True, activation="relu")),
    ("lstm", dict(activation="elu")),  # autograd loop
]


def _ids(case):
    kind, kw = case
    return kind + "-" + "-".join(f"{k}={v}" for k, v in kw.items())


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
@pytest.mark.parametrize("use_fused", [None, False])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_no_dropout_matches_reference(case, use_fused, go_backwards):
    kind, kw = case
    rng = np.random.default_rng(0)
    reset_after = kw.get("reset_after", True)
    w = keras_weights(kind, rng, reset_after)
    layer = make_layer(kind, use_fused=use_fused, go_backwards=go_backwards, **kw)
    layer.load_keras_weights(w)
    x = rng.normal(size=(B, T, I))
    ref_kw = {k: v for k, v in kw.items() if k != "reset_after"}
    want = oracle(kind, x, w, reset_after, go_backwards=go_backwards, **ref_kw)
    got = run(layer, x)
    for g, r in zip(got, want):
        if r is not None:
            np.testing.assert_allclose(g, r, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "case", CASES[:1] + CASES[2:4] + CASES[5:9], ids=[_ids(c) for c in CASES[:1] + CASES[2:4] + CASES[5:9]]
)
@pytest.mark.parametrize("mode", ["per_sample", "batch", "input_only"])
def test_dropout_masks_match_reference(case, mode):
    kind, kw = case
    G = GATES[kind]
    rng = np.random.default_rng(1)
    reset_after = kw.get("reset_after", True)
    w = keras_weights(kind, rng, reset_after)
    rd = 0.0 if mode == "input_only" else 0.4
    layer = make_layer(
        kind,
        dropout=0.3,
        recurrent_dropout=rd,
        recurrent_dropout_mode="batch" if mode == "batch" else "per_sample",
        **kw,
    )
    layer.load_keras_weights(w)
    layer.train()
    keep = lambda shape, p: (rng.random(shape) > p) / (1 - p)  # noqa: E731
    if mode == "per_sample":
        in_mask, rec_mask, ref_rec = keep((G, B, I), 0.3), keep((G, B, H), 0.4), None
        ref_rec = rec_mask
    elif mode == "batch":
        in_mask, rec_mask = keep((B, I), 0.3), keep((G, H), 0.4)
        ref_rec = np.broadcast_to(rec_mask[:, None, :], (G, B, H))
    else:
        in_mask, rec_mask, ref_rec = keep((B, I), 0.3), None, None
    inject(layer, kind, in_mask, rec_mask)
    x = rng.normal(size=(B, T, I))
    ref_kw = {k: v for k, v in kw.items() if k != "reset_after"}
    want = oracle(kind, x, w, reset_after, dropout_mask=in_mask, recurrent_mask=ref_rec, **ref_kw)
    got = run(layer, x)
    for g, r in zip(got, want):
        if r is not None:
            np.testing.assert_allclose(g, r, atol=1e-5, rtol=0)


def test_book_numpy_rnn_equals_simple_rnn():
    rng = np.random.default_rng(2)
    x = rng.random((20, I))
    W, U, b = rng.random((H, I)) * 0.3, rng.random((H, H)) * 0.3, rng.random(H)
    layer = make_layer("simple_rnn")
    layer.load_keras_weights([W.T, U.T, b])
    got, _, _ = run(layer, x[None])
    np.testing.assert_allclose(got[0], reference.book_simple_rnn(x, W, U, b), atol=1e-5)


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_bidirectional_matches_reference(kind, merge_mode):
    rng = np.random.default_rng(3)
    wf, wb = keras_weights(kind, rng, False), keras_weights(kind, rng, False)
    kw = dict(reset_after=False, recurrent_activation="hard_sigmoid") if kind == "gru" else {}
    bi = Bidirectional(make_layer(kind, **kw), merge_mode=merge_mode)
    bi.load_keras_weights(wf + wb)  # Keras's flat list: forward weights, then backward
    x = rng.normal(size=(B, T, I))
    ref_kw = {"recurrent_activation": "hard_sigmoid"} if kind == "gru" else {}
    yf, hf, _ = oracle(kind, x, wf, False, **ref_kw)
    yb, hb, _ = oracle(kind, x, wb, False, go_backwards=True, **ref_kw)
    yb = yb[:, ::-1]
    out, state = bi(torch.as_tensor(x))
    h_n = state[0] if kind == "lstm" else state
    want = {"concat": np.concatenate([yf, yb], -1), "sum": yf + yb, "mul": yf * yb, "ave": (yf + yb) / 2}
    if merge_mode is None:
        np.testing.assert_allclose(out[0].detach().numpy(), yf, atol=1e-5)
        np.testing.assert_allclose(out[1].detach().numpy(), yb, atol=1e-5)
    else:
        np.testing.assert_allclose(out.detach().numpy(), want[merge_mode], atol=1e-5)
    # the backward state is the one after the whole (reversed) sequence, i.e. at output position 0
    np.testing.assert_allclose(h_n[1].detach().numpy(), hb, atol=1e-5)
    np.testing.assert_allclose(h_n[0].detach().numpy(), hf, atol=1e-5)


@pytest.mark.parametrize("kind", ["simple_rnn", "lstm", "gru"])
def test_stacked_layers_match_chained_reference(kind):
    rng = np.random.default_rng(4)
    w0 = keras_weights(kind, rng)
    w1 = keras_weights(kind, rng, in_size=H)
    layer = make_layer(kind, num_layers=2)
    layer.load_keras_weights(w0 + w1)
    x = rng.normal(size=(B, T, I))
    y0 = oracle(kind, x, w0)[0]
    want = oracle(kind, y0, w1)
    got = run(layer, x)
    np.testing.assert_allclose(got[0], want[0], atol=1e-5)


def test_initial_state_is_used():
    rng = np.random.default_rng(5)
    w = keras_weights("lstm", rng)
    layer = make_layer("lstm", use_fused=False)
    layer.load_keras_weights(w)
    x = rng.normal(size=(B, T, I))
    h0, c0 = rng.normal(size=(B, H)), rng.normal(size=(B, H))
    out, (h, c) = layer(torch.as_tensor(x), (torch.as_tensor(h0)[None], torch.as_tensor(c0)[None]))
    want = reference.lstm(x, *w, h0=h0, c0=c0)
    np.testing.assert_allclose(out.detach().numpy(), want[0], atol=1e-5)
    np.testing.assert_allclose(c[0].detach().numpy(), want[2], atol=1e-5)
