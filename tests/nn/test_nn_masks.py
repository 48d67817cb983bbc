"""Variable lengths: ``lengths=``, ``mask=`` and ``PackedSequence``, with Keras's masking semantics.

Oracles: the numpy references extended with masks (seqlight.nn.reference), each sequence run alone, and
torch's own layers on the same ``PackedSequence``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pack_sequence

from seqlight.nn import GRU, LSTM, Bidirectional, SimpleRNN, reference
from seqlight.nn.recurrent import KERAS_TO_TORCH_GATES

B, T, I, H = 4, 7, 5, 3
LENGTHS = [7, 3, 5, 1]
GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}
CLS = {"simple_rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}
CASES = [
    ("simple_rnn", dict(activation="tanh")),
    ("lstm", dict(recurrent_activation="hard_sigmoid")),  # the book's IMDB LSTM
    ("lstm", dict()),
    ("lstm", dict(activation="elu")),  # the autograd loop
    ("gru", dict(reset_after=False, recurrent_activation="hard_sigmoid")),  # the book's Jena GRU
    ("gru", dict()),
]
IDS = [k + "-" + "-".join(f"{a}={b}" for a, b in kw.items()) for k, kw in CASES]


def _keras_weights(kind, rng, reset_after=True, in_size=I):
    G = GATES[kind]
    bias = rng.normal(0, 0.5, (2, G * H) if kind == "gru" and reset_after else (G * H,))
    return [rng.normal(0, 0.5, (in_size, G * H)), rng.normal(0, 0.5, (H, G * H)), bias]


def _oracle(kind, x, w, kw, **more):
    kw = dict(kw)
    reset_after = kw.pop("reset_after", True)
    if kind == "simple_rnn":
        out, h = reference.simple_rnn(x, *w, **kw, **more)
        return out, h
    if kind == "lstm":
        return reference.lstm(x, *w, **kw, **more)[:2]
    out, h = (reference.gru_keras3 if reset_after else reference.gru_keras2)(x, *w, **kw, **more)
    return out, h


def _padding_masks():
    post = np.arange(T)[None] < np.array(LENGTHS)[:, None]
    pre = post[:, ::-1].copy()
    holes = post.copy()
    holes[0, [2, 3]] = False  # masked steps inside a sequence
    holes[2, 0] = False
    return {"post": post, "pre": pre, "holes": holes}


def _state(state):
    return state[0] if isinstance(state, tuple) else state


# every case on both loop implementations, but elu (no output-only derivative) on the autograd loop only,
# where the layer runs it
IMPLEMENTED = [
    pytest.param(case, impl, id=f"{name}-{impl}")
    for case, name in zip(CASES, IDS, strict=True)
    for impl in ("function", "autograd")
    if not (impl == "function" and case[1].get("activation") == "elu")
]


@pytest.mark.parametrize(("case", "implementation"), IMPLEMENTED)
@pytest.mark.parametrize("padding", ["post", "pre", "holes"])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_masked_layer_matches_masked_reference(case, padding, go_backwards, implementation):
    kind, kw = case
    rng = np.random.default_rng(0)
    w = _keras_weights(kind, rng, kw.get("reset_after", True))
    layer = CLS[kind](I, H, go_backwards=go_backwards, implementation=implementation, **kw).double()
    layer.load_keras_weights(w)
    x = rng.normal(size=(B, T, I))
    mask = _padding_masks()[padding]
    out, state = layer(torch.as_tensor(x), mask=torch.as_tensor(mask))
    want_out, want_h = _oracle(kind, x, w, kw, mask=mask, go_backwards=go_backwards)
    np.testing.assert_allclose(out.detach().numpy(), want_out, atol=1e-10, rtol=0)
    np.testing.assert_allclose(_state(state)[-1].detach().numpy(), want_h, atol=1e-10, rtol=0)


def _alone_runs(layer, x, mask):
    """Each sequence's real steps run alone (no padding, no mask): outputs and final states."""
    outs, hs = [], []
    for b in range(x.shape[0]):
        out, state = layer(x[b : b + 1, mask[b]])
        outs.append(out[0])
        hs.append(_state(state)[:, 0])
    return outs, torch.stack(hs, 1)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("padding", ["post", "pre"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padded_batch_equals_each_sequence_alone(case, padding, bidirectional):
    """The final state (and the output at the real steps) of a padded batch is that of each sequence run alone,
    pre- or post-padded, bidirectional and stacked included."""
    kind, kw = case
    torch.manual_seed(1)
    layer = CLS[kind](I, H, num_layers=2, bidirectional=bidirectional, **kw).double()
    x = torch.randn(B, T, I, dtype=torch.float64)
    mask = torch.as_tensor(_padding_masks()[padding])
    out, state = layer(x, mask=mask)
    outs, h_alone = _alone_runs(layer, x, mask)
    torch.testing.assert_close(_state(state), h_alone, atol=1e-10, rtol=0)
    for b in range(B):
        torch.testing.assert_close(out[b, mask[b]], outs[b], atol=1e-10, rtol=0)


def test_masked_steps_repeat_the_state_in_the_output():
    """Keras's masking: at a masked step the output is the previous state (the initial one before any real step)."""
    torch.manual_seed(2)
    layer = GRU(I, H, reset_after=False, recurrent_activation="hard_sigmoid").double()
    x = torch.randn(B, T, I, dtype=torch.float64)
    h0 = torch.randn(1, B, H, dtype=torch.float64)
    mask = torch.as_tensor(_padding_masks()["holes"])
    out, h_n = layer(x, h0, mask=mask)
    for b in range(B):
        prev = h0[0, b]
        for t in range(T):
            if not mask[b, t]:
                torch.testing.assert_close(out[b, t], prev, atol=0, rtol=0)
            prev = out[b, t]
        torch.testing.assert_close(h_n[0, b], prev, atol=0, rtol=0)


def test_lengths_is_post_padding_and_checked():
    torch.manual_seed(3)
    layer = LSTM(I, H, recurrent_activation="hard_sigmoid").double()
    x = torch.randn(B, T, I, dtype=torch.float64)
    by_mask = layer(x, mask=torch.as_tensor(_padding_masks()["post"]))
    by_lengths = layer(x, lengths=torch.tensor(LENGTHS))
    torch.testing.assert_close(by_mask[0], by_lengths[0], atol=0, rtol=0)
    torch.testing.assert_close(by_mask[1][1], by_lengths[1][1], atol=0, rtol=0)
    with pytest.raises(ValueError, match="not both"):
        layer(x, lengths=LENGTHS, mask=torch.ones(B, T, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"lengths must be in \[0, 7\]"):
        layer(x, lengths=[8, 1, 1, 1])
    with pytest.raises(ValueError, match="mask must have shape"):
        layer(x, mask=torch.ones(T, B, dtype=torch.bool))
    time_major = LSTM(I, H, batch_first=False, recurrent_activation="hard_sigmoid").double()
    time_major.load_state_dict(layer.state_dict())
    got = time_major(x.transpose(0, 1), mask=torch.as_tensor(_padding_masks()["post"]).t())
    torch.testing.assert_close(got[0].transpose(0, 1), by_mask[0], atol=0, rtol=0)


TORCH = {"gru": nn.GRU, "lstm": nn.LSTM, "simple_rnn": nn.RNN}


@pytest.mark.parametrize("kind", ["simple_rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_sequence_matches_torch(kind, bidirectional):
    """A PackedSequence in, a PackedSequence out, exactly as torch's own layer with the same weights: the same
    data, batch_sizes, sorted/unsorted indices, and h_n in the original batch order."""
    torch.manual_seed(4)
    ref = TORCH[kind](I, H, num_layers=2, batch_first=True, bidirectional=bidirectional).double()
    ours = CLS[kind].from_torch(ref)
    seqs = [torch.randn(n, I, dtype=torch.float64) for n in LENGTHS]
    packed = pack_sequence(seqs, enforce_sorted=False)
    want_out, want_state = ref(packed)
    got_out, got_state = ours(packed)
    assert not ours.uses_fused_path(masked=True)  # Keras's masking runs in the custom loop
    torch.testing.assert_close(got_out.data, want_out.data, atol=1e-10, rtol=0)
    for name in ("batch_sizes", "sorted_indices", "unsorted_indices"):
        assert torch.equal(getattr(got_out, name), getattr(want_out, name)), name
    torch.testing.assert_close(_state(got_state), _state(want_state), atol=1e-10, rtol=0)
    if kind == "lstm":
        torch.testing.assert_close(got_state[1], want_state[1], atol=1e-10, rtol=0)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_packed_sequence_equals_each_sequence_alone(case):
    kind, kw = case
    torch.manual_seed(5)
    layer = CLS[kind](I, H, **kw).double()
    seqs = [torch.randn(n, I, dtype=torch.float64) for n in LENGTHS]
    out, state = layer(pack_sequence(seqs, enforce_sorted=False))
    padded, lengths = nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
    assert lengths.tolist() == LENGTHS
    for b, s in enumerate(seqs):
        alone_out, alone_state = layer(s[None])
        torch.testing.assert_close(padded[b, : LENGTHS[b]], alone_out[0], atol=1e-10, rtol=0)
        torch.testing.assert_close(_state(state)[:, b], _state(alone_state)[:, 0], atol=1e-10, rtol=0)
    sorted_input = pack_padded_sequence(padded, torch.tensor(LENGTHS), batch_first=True, enforce_sorted=False)
    assert torch.equal(sorted_input.batch_sizes, out.batch_sizes)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_bidirectional_wrapper_with_mask_and_packed_input(kind):
    """Keras's Bidirectional with a mask: each direction equals its reference with the mask (the backward one
    with ``go_backwards``); a PackedSequence gives the same values at the real steps, packed."""
    rng = np.random.default_rng(6)
    kw = dict(reset_after=False, recurrent_activation="hard_sigmoid") if kind == "gru" else {}
    wf, wb = _keras_weights(kind, rng, False), _keras_weights(kind, rng, False)
    bi = Bidirectional(CLS[kind](I, H, **kw).double())
    bi.load_keras_weights(wf + wb)
    x = rng.normal(size=(B, T, I))
    for padding in ("post", "pre"):
        mask = _padding_masks()[padding]
        out, state = bi(torch.as_tensor(x), mask=torch.as_tensor(mask))
        yf, hf = _oracle(kind, x, wf, kw, mask=mask)
        yb, hb = _oracle(kind, x, wb, kw, mask=mask, go_backwards=True)
        np.testing.assert_allclose(out.detach().numpy(), np.concatenate([yf, yb[:, ::-1]], -1), atol=1e-10)
        np.testing.assert_allclose(_state(state).detach().numpy(), np.stack([hf, hb]), atol=1e-10)
    mask = _padding_masks()["post"]
    packed = pack_padded_sequence(torch.as_tensor(x), torch.tensor(LENGTHS), batch_first=True, enforce_sorted=False)
    out_p, state_p = bi(packed)
    out_m, state_m = bi(torch.as_tensor(x), lengths=LENGTHS)
    padded, _ = nn.utils.rnn.pad_packed_sequence(out_p, batch_first=True)
    for b in range(B):
        torch.testing.assert_close(padded[b, : LENGTHS[b]], out_m[b, : LENGTHS[b]], atol=0, rtol=0)
    torch.testing.assert_close(_state(state_p), _state(state_m), atol=0, rtol=0)


def _inject_dropout(layer, kind, rng, in_mask, rec_mask):
    perm = KERAS_TO_TORCH_GATES[kind]
    tin = torch.as_tensor(in_mask[perm] if in_mask.ndim == 3 else in_mask)
    trec = torch.as_tensor(rec_mask[perm])
    layer.draw_masks = lambda batch, in_size, k, like: (tin[..., :batch, :], trec[..., :batch, :])


@pytest.mark.parametrize("case", [c for c in CASES if c[1].get("activation") != "elu"], ids=IDS[:3] + IDS[4:])
@pytest.mark.parametrize("padding", ["post", "pre", "holes"])
def test_keras_dropout_under_masks_matches_reference(case, padding):
    """Keras's dropout and recurrent dropout (per-sample, per-gate masks) with a padding mask: exactly the numpy
    reference given the same dropout masks and padding mask."""
    kind, kw = case
    G = GATES[kind]
    rng = np.random.default_rng(7)
    w = _keras_weights(kind, rng, kw.get("reset_after", True))
    layer = CLS[kind](I, H, dropout=0.3, recurrent_dropout=0.4, **kw).double().train()
    layer.load_keras_weights(w)
    keep = lambda shape, p: (rng.random(shape) > p) / (1 - p)  # noqa: E731
    in_mask, rec_mask = keep((G, B, I), 0.3), keep((G, B, H), 0.4)
    _inject_dropout(layer, kind, rng, in_mask, rec_mask)
    x = rng.normal(size=(B, T, I))
    mask = _padding_masks()[padding]
    out, state = layer(torch.as_tensor(x), mask=torch.as_tensor(mask))
    want_out, want_h = _oracle(kind, x, w, kw, mask=mask, dropout_mask=in_mask, recurrent_mask=rec_mask)
    np.testing.assert_allclose(out.detach().numpy(), want_out, atol=1e-10, rtol=0)
    np.testing.assert_allclose(_state(state)[-1].detach().numpy(), want_h, atol=1e-10, rtol=0)


@pytest.mark.parametrize("mode", ["per_sample", "batch"])
@pytest.mark.parametrize("padding", ["post", "pre"])
def test_both_dropout_modes_under_masks_equal_each_sequence_alone(mode, padding):
    """Keras's dropout (per-sample or batch recurrent masks) and torch's inter_layer_dropout, given fixed masks:
    a padded batch equals each sequence run alone with its own rows of the masks, at its own real steps."""
    torch.manual_seed(8)
    layer = GRU(
        I, H, 2, True, True, 0.5, dropout=0.2, recurrent_dropout=0.3, recurrent_dropout_mode=mode,
        reset_after=False, recurrent_activation="hard_sigmoid",
    ).double().train()  # fmt: skip
    x = torch.randn(B, T, I, dtype=torch.float64)
    mask = torch.as_tensor(_padding_masks()[padding])
    gen = torch.Generator().manual_seed(9)
    bern = lambda shape, p: torch.bernoulli(torch.full(shape, 1 - p, dtype=torch.float64), generator=gen) / (1 - p)  # noqa: E731
    drawn = {}
    for k in range(2):
        in_size = I if k == 0 else H
        rec_shape = (3, B, H) if mode == "per_sample" else (3, H)
        in_shape = (3, B, in_size) if mode == "per_sample" else (B, in_size)
        drawn[k] = (bern(in_shape, 0.2), bern(rec_shape, 0.3))
    between = bern((B, T, H), 0.5)  # torch's dropout between the layers, elementwise

    def run(rows, steps):
        def draw(batch, in_size, k, like):
            m_in, m_rec = drawn[k]
            m_in = m_in[..., rows, :]
            return m_in, (m_rec[:, rows] if mode == "per_sample" else m_rec)

        layer.draw_masks = draw
        layer.drop_between_layers = lambda y, k: y * between[rows][:, steps]
        return layer(x[rows][:, steps]) if steps is not None else None

    layer.draw_masks = lambda batch, in_size, k, like: drawn[k]
    layer.drop_between_layers = lambda y, k: y * between
    out, h_n = layer(x, mask=mask)
    for b in range(B):
        alone_out, alone_h = run([b], mask[b])
        torch.testing.assert_close(h_n[:, b], alone_h[:, 0], atol=1e-10, rtol=0)
        torch.testing.assert_close(out[b, mask[b]], alone_out[0], atol=1e-10, rtol=0)


@pytest.mark.parametrize("case", [c for c in CASES if c[1].get("activation") != "elu"], ids=IDS[:3] + IDS[4:])
@pytest.mark.parametrize("padding", ["post", "pre"])
def test_gradients_of_a_padded_batch_equal_the_sum_over_sequences_alone(case, padding):
    """The parameter gradients of a masked batch (hand-written backward) are the sum of each sequence's own: the
    padded steps contribute nothing."""
    kind, kw = case
    torch.manual_seed(10)
    layer = CLS[kind](I, H, bidirectional=True, **kw).double()
    x = torch.randn(B, T, I, dtype=torch.float64)
    mask = torch.as_tensor(_padding_masks()[padding])

    def loss(out, state):
        return _state(state).sin().sum() + out.pow(2).sum()

    layer.zero_grad()
    out, state = layer(x, mask=mask)
    loss(out * mask[..., None], state).backward()  # the output at padded steps is not part of the loss
    got = {n: p.grad.clone() for n, p in layer.named_parameters()}
    layer.zero_grad()
    for b in range(B):
        loss(*layer(x[b : b + 1, mask[b]])).backward()
    for n, p in layer.named_parameters():
        torch.testing.assert_close(got[n], p.grad, atol=1e-10, rtol=0, msg=n)


@pytest.mark.parametrize("cls", [SimpleRNN, LSTM, GRU])
def test_gradcheck_through_the_masked_layer(cls):
    """The whole masked layer (input projections, folded hard_sigmoid, both directions) against finite
    differences, the input's gradient included."""
    torch.manual_seed(11)
    kw = {} if cls is SimpleRNN else dict(recurrent_activation="hard_sigmoid")
    layer = cls(I, 2, bidirectional=True, **kw).double()
    x = torch.randn(3, 4, I, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[0, 1, 1, 1], [1, 1, 0, 0], [1, 0, 1, 1]], dtype=torch.bool)

    def f(x, *params):
        out, state = torch.func.functional_call(layer, dict(zip(names, params)), (x,), dict(mask=mask))
        return out, _state(state)

    names = [n for n, _ in layer.named_parameters()]
    assert torch.autograd.gradcheck(f, (x, *layer.parameters()), eps=1e-6, atol=1e-6)
