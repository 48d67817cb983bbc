"""seqlight.nn layer behaviour: Keras dropout semantics, argument checks, dtypes, init (autocast: test_nn_autocast)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqlight.nn import GRU, LSTM, Bidirectional, SimpleRNN, keras_init_

I, H = 5, 4


def test_input_dropout_mask_is_constant_over_time_and_off_in_eval():
    """With a linear SimpleRNN and identity weights the input mask is visible in the output."""
    rnn = SimpleRNN(I, I, activation="linear", dropout=0.5).double()
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.eye(I))
        rnn.weight_hh_l0.zero_()
    x = torch.ones(8, 6, I, dtype=torch.float64)
    out, _ = rnn(x)
    assert set(np.unique(out.detach().numpy())) <= {0.0, 2.0}
    assert torch.equal(out, out[:, :1].expand_as(out))  # same mask at every step
    assert not torch.equal(out[0], out[1]) or not torch.equal(out[1], out[2])  # one mask per sample
    rnn.eval()
    assert torch.equal(rnn(x)[0], x)


@pytest.mark.parametrize("mode", ["per_sample", "batch"])
def test_recurrent_dropout_masks_shape_and_scale(mode):
    gru = GRU(I, H, dropout=0.3, recurrent_dropout=0.25, recurrent_dropout_mode=mode)
    torch.manual_seed(0)
    in_mask, rec_mask = gru.draw_masks(1000, I, 0, torch.empty(0, dtype=torch.float64))
    assert rec_mask.shape == ((3, 1000, H) if mode == "per_sample" else (3, H))
    assert in_mask.shape == ((3, 1000, I) if mode == "per_sample" else (1000, I))
    assert set(torch.unique(rec_mask).tolist()) <= {0.0, 1 / 0.75}
    assert abs(float((in_mask > 0).float().mean()) - 0.7) < 0.02
    gru.eval()
    assert gru.draw_masks(10, I, 0, torch.empty(0)) == (None, None)


def test_dispatch_fused_or_custom():
    assert GRU(I, H).uses_fused_path()
    assert GRU(I, H, dropout=0.5).uses_fused_path()
    assert not GRU(I, H, reset_after=False).uses_fused_path()
    assert not GRU(I, H, recurrent_activation="hard_sigmoid").uses_fused_path()
    rd = GRU(I, H, recurrent_dropout=0.2)
    assert not rd.uses_fused_path() and rd.eval().uses_fused_path()  # inactive in eval -> fused again
    assert GRU(I, H, recurrent_dropout=0.2, recurrent_dropout_mode="batch").uses_fused_path()
    assert SimpleRNN(I, H, activation="relu").uses_fused_path()
    assert not LSTM(I, H, activation="relu").uses_fused_path()
    with pytest.raises(ValueError, match="use_fused"):
        GRU(I, H, reset_after=False, use_fused=True).uses_fused_path()


@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(hidden_size=0), "hidden_size"),
        (dict(input_size=0), "input_size"),
        (dict(num_layers=0), "num_layers"),
        (dict(dropout=1.0), "dropout"),
        (dict(dropout=-0.1), "dropout"),
        (dict(recurrent_dropout=1.5), "recurrent_dropout"),
        (dict(activation="swish"), "activation"),
        (dict(recurrent_activation="gelu"), "recurrent_activation"),
        (dict(recurrent_dropout_mode="step"), "recurrent_dropout_mode"),
        (dict(initializer="he"), "initializer"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, name):
    args = dict(input_size=I, hidden_size=H)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        GRU(**args)


def test_load_keras_weights_rejects_wrong_shapes():
    gru = GRU(I, H, reset_after=False)
    good = [np.zeros((I, 3 * H)), np.zeros((H, 3 * H)), np.zeros(3 * H)]
    gru.load_keras_weights(good)
    with pytest.raises(ValueError, match="kernel"):
        gru.load_keras_weights([np.zeros((I + 1, 3 * H))] + good[1:])
    with pytest.raises(ValueError, match="recurrent_kernel"):
        gru.load_keras_weights([good[0], np.zeros((H, 4 * H)), good[2]])
    with pytest.raises(ValueError, match="reset_after"):
        gru.load_keras_weights(good[:2] + [np.zeros((2, 3 * H))])  # a Keras 3 GRU into a Keras 2.0.8 one
    with pytest.raises(ValueError, match="3 arrays"):
        gru.load_keras_weights(good[:2])
    with pytest.raises(ValueError, match="merge_mode"):
        Bidirectional(GRU(I, H), merge_mode="max")


def test_keras_initialisation():
    torch.manual_seed(0)
    lstm = LSTM(I, H)
    np.testing.assert_array_equal(lstm.bias_ih_l0.detach()[H : 2 * H].numpy(), 1.0)  # unit_forget_bias
    assert float(lstm.bias_ih_l0.detach()[:H].abs().sum()) == 0.0
    w = lstm.weight_hh_l0.detach()
    torch.testing.assert_close(w.t() @ w, torch.eye(H), atol=1e-5, rtol=0)  # orthogonal
    limit = (6 / (I + 4 * H)) ** 0.5
    assert float(lstm.weight_ih_l0.detach().abs().max()) <= limit
    t = LSTM(I, H, initializer="torch")
    assert float(t.bias_ih_l0.detach().abs().sum()) > 0


def _assert_glorot_uniform(w: torch.Tensor, fan_in: int, fan_out: int):
    """Keras glorot_uniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out)); its variance is l^2 / 3."""
    limit = (6 / (fan_in + fan_out)) ** 0.5
    w = w.detach().double()
    assert float(w.abs().max()) <= limit
    assert float(w.abs().max()) > 0.95 * limit  # fills the interval: not a narrower init (torch's Linear: 0.47 l)
    assert abs(float(w.var()) / (limit**2 / 3) - 1) < 0.1


def test_keras_init_follows_keras_initializers():
    """keras_init_ re-initialises Linear/Conv1d/Embedding as Keras does and leaves seqlight's recurrent layers
    (already Keras-initialised: glorot kernel, orthogonal recurrent kernel, zero bias, unit forget bias) alone."""
    torch.manual_seed(0)
    nn = torch.nn
    layers = {"emb": nn.Embedding(1000, 32), "conv": nn.Conv1d(32, 48, 7), "lstm": LSTM(48, 16)}
    model = nn.ModuleDict({**layers, "dense": nn.Linear(300, 100)})
    lstm_before = {k: v.clone() for k, v in model["lstm"].state_dict().items()}
    assert keras_init_(model) is model
    _assert_glorot_uniform(model["dense"].weight, 300, 100)
    _assert_glorot_uniform(model["conv"].weight, 32 * 7, 48 * 7)  # Keras's (k, in, out) kernel: fans in*k, out*k
    assert not model["dense"].bias.any() and not model["conv"].bias.any()
    emb = model["emb"].weight.detach()  # RandomUniform(-0.05, 0.05); torch's default is N(0, 1)
    assert float(emb.abs().max()) <= 0.05 and float(emb.abs().max()) > 0.049
    assert abs(float(emb.var()) / (0.05**2 / 3) - 1) < 0.05
    for k, v in model["lstm"].state_dict().items():
        assert torch.equal(v, lstm_before[k]), k
    lstm = model["lstm"]
    _assert_glorot_uniform(lstm.weight_ih_l0, 48, 4 * 16)
    w = lstm.weight_hh_l0.detach()  # (4H, H): Keras's (H, 4H) orthogonal kernel, transposed
    torch.testing.assert_close(w.t() @ w, torch.eye(16), atol=1e-5, rtol=0)
    bias = lstm.bias_ih_l0.detach()
    assert torch.equal(bias, torch.cat([torch.zeros(16), torch.ones(16), torch.zeros(32)]))  # unit forget bias


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("fused", [None, False])
def test_dtypes(dtype, fused):
    gru = GRU(I, H, use_fused=fused, dropout=0.1, recurrent_dropout=0.1 if fused is False else 0.0).to(dtype)
    out, h = gru(torch.randn(2, 5, I, dtype=dtype))
    out.sum().backward()
    assert out.dtype == dtype and gru.weight_hh_l0.grad.dtype == dtype


@pytest.mark.parametrize("fused", [None, False])
def test_batch_first_false_is_time_major(fused):
    torch.manual_seed(0)
    a = GRU(I, H, use_fused=fused).double()
    b = GRU(I, H, batch_first=False, use_fused=fused).double()
    b.load_state_dict(a.state_dict())
    x = torch.randn(3, 7, I, dtype=torch.float64)
    ya, ha = a(x)
    yb, hb = b(x.transpose(0, 1))
    torch.testing.assert_close(yb.transpose(0, 1), ya)
    torch.testing.assert_close(hb, ha)


@pytest.mark.parametrize("kw", [{}, {"reset_after": False}])
def test_meta_device_gives_shapes(kw):
    """Shape inference on the meta device runs both paths (autocast has no 'meta' device to ask about)."""
    out, h = GRU(I, H, **kw).to("meta")(torch.empty(2, 3, I, device="meta"))
    assert out.shape == (2, 3, H) and h.shape == (1, 2, H)


def test_base_class_is_abstract():
    """``KerasRecurrent`` has no cell of its own: building it is an error, not a silent GRU."""
    from seqlight.nn import KerasRecurrent

    with pytest.raises(TypeError, match="abstract"):
        KerasRecurrent(3, 4)
    assert GRU(3, 4).cell.gates == 3 and LSTM(3, 4).cell.has_cell_state and SimpleRNN(3, 4).cell.gates == 1
