"""RecurrentForecaster, ConvForecaster, ConvGRUForecaster: the book's architectures, sizes and a training step."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from seqlight.models.common import last_state
from seqlight.models.recurrent_forecasters import ConvForecaster, ConvGRUForecaster, RecurrentForecaster
from seqlight.nn import GRU, LSTM, Bidirectional


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_gru_forecaster_keras2_has_the_books_parameter_count():
    m = RecurrentForecaster(num_features=14, semantics="keras2")
    gru = m.rnns[0]
    assert isinstance(gru, GRU) and gru.recurrent_activation == "hard_sigmoid" and not gru.reset_after
    assert n_params(m) == 3 * (14 * 32 + 32 * 32 + 32) + 33  # Keras 2.0.8 GRU(32) + Dense(1)
    assert n_params(RecurrentForecaster(num_features=14, semantics="keras3")) == 4608 + 33


def test_stacked_gru_per_layer_options():
    m = RecurrentForecaster(
        num_features=14,
        units=[32, 64],
        activation=["tanh", "relu"],
        dropout=0.1,
        recurrent_dropout=0.5,
        semantics="keras2",
    )
    assert [r.hidden_size for r in m.rnns] == [32, 64]
    assert m.rnns[1].activation == "relu" and m.rnns[1].input_size == 32
    assert all(r.recurrent_dropout == 0.5 and r.dropout == 0.1 for r in m.rnns)
    assert m(torch.randn(3, 20, 14)).shape == (3,)


def _torch_gru_like(m: RecurrentForecaster) -> nn.GRU:
    """torch.nn.GRU(bidirectional=True, num_layers=len(m.rnns)) holding the forecaster's weights: an independent
    reference (torch's own stacking, direction handling and final states). seqlight's keras3 GRU has
    torch's parameter names and layout; each Bidirectional layer's backward copy is torch's *_reverse."""
    first = m.rnns[0].forward_layer
    ref = nn.GRU(first.input_size, first.hidden_size, num_layers=len(m.rnns), batch_first=True, bidirectional=True)
    with torch.no_grad():
        for k, bi in enumerate(m.rnns):
            for direction, layer in (("", bi.forward_layer), ("_reverse", bi.backward_layer)):
                for name, value in layer.named_parameters():  # weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0
                    getattr(ref, name.replace("_l0", f"_l{k}") + direction).copy_(value)
    return ref


@pytest.mark.parametrize("units", [[32], [8, 8]])
def test_bidirectional_forecaster_matches_torch_bidirectional_gru(units):
    torch.manual_seed(0)
    m = RecurrentForecaster(num_features=14, units=units, bidirectional=True).eval()
    assert isinstance(m.rnns[0], Bidirectional) and m.head.in_features == 2 * units[-1]
    ref = _torch_gru_like(m)
    x = torch.randn(3, 10, 14)
    _, h_n = ref(x)  # (2 * layers, B, H): torch interleaves the directions per layer
    want = m.head(torch.cat([h_n[-2], h_n[-1]], -1)).squeeze(-1)  # the top layer's forward and backward states
    torch.testing.assert_close(m(x), want)
    # and the backward half really is the state after the whole reversed sequence: it depends on x[:, 0]
    x2 = x.clone()
    x2[:, 0] += 1.0
    assert not torch.allclose(m(x2), m(x))


def _keras_last(layer, output: Tensor) -> Tensor:
    """Keras's return_sequences=False, read off the output sequence (independent of how h_n is laid out):
    the last step; for a bidirectional layer the forward half at the last step, the backward half at the first."""
    if isinstance(layer, Bidirectional) or getattr(layer, "bidirectional", False):
        h = output.shape[-1] // 2
        return torch.cat([output[:, -1, :h], output[:, 0, h:]], -1)
    return output[:, -1]


@pytest.mark.parametrize(
    "make",
    [
        lambda: GRU(4, 5, num_layers=2, batch_first=True),  # h_n is (2, B, H), as a bidirectional layer's
        lambda: Bidirectional(GRU(4, 5, num_layers=2, batch_first=True)),  # h_n is (4, B, H)
        lambda: Bidirectional(LSTM(4, 5, batch_first=True)),
        lambda: LSTM(4, 5, num_layers=2, batch_first=True),
        lambda: nn.GRU(4, 5, num_layers=2, batch_first=True),
        lambda: nn.LSTM(4, 5, num_layers=2, batch_first=True, bidirectional=True),  # torch interleaves directions
    ],
)
def test_last_state_knows_the_layer_not_the_shape(make):
    torch.manual_seed(0)
    layer = make()
    output, state = layer(torch.randn(3, 7, 4))
    torch.testing.assert_close(last_state(layer, state), _keras_last(layer, output))


def test_forecaster_with_a_two_layer_gru_uses_its_top_layer():
    """The old helper took any (2, B, H) state for a bidirectional one and concatenated both layers' states."""
    torch.manual_seed(0)
    m = RecurrentForecaster(num_features=14, units=[8]).eval()
    m.rnns[0] = GRU(14, 8, num_layers=2, batch_first=True)
    x = torch.randn(3, 10, 14)
    output, _ = m.rnns[0](x)
    torch.testing.assert_close(m(x), m.head(output[:, -1]).squeeze(-1))


def test_conv_forecaster_book_shapes():
    m = ConvForecaster(num_features=14)
    # 6.4.4: 240 -> conv5 236 -> pool3 78 -> conv5 74 -> pool3 24 -> conv5 20 -> global max
    h = m.net[:4](torch.randn(2, 240, 14))
    assert h.shape == (2, 24, 32)
    assert m(torch.randn(2, 240, 14)).shape == (2,)


def test_conv_gru_forecaster_has_the_books_parameter_count():
    assert n_params(ConvGRUForecaster(num_features=14, semantics="keras2")) == 13697  # book 6.4.5 summary
    m = ConvGRUForecaster(num_features=14)
    assert m.gru.dropout == 0.1 and m.gru.recurrent_dropout == 0.5
    assert m(torch.randn(2, 240, 14)).shape == (2,)


@pytest.mark.parametrize(
    "bad", [dict(units=[]), dict(cell="rnn"), dict(semantics="keras1"), dict(units=[32, 32], activation=["tanh"])]
)
def test_bad_arguments(bad):
    with pytest.raises(ValueError):
        RecurrentForecaster(num_features=14, **bad)


@pytest.mark.parametrize(
    "make",
    [
        lambda: RecurrentForecaster(num_features=4, units=[8], dropout=0.2, recurrent_dropout=0.2, semantics="keras2"),
        lambda: ConvForecaster(num_features=4, filters=8),
        lambda: ConvGRUForecaster(num_features=4, filters=8, units=8),
    ],
)
def test_fit_reduces_training_loss(make):
    torch.manual_seed(0)
    x = torch.randn(256, 120, 4)
    y = x[:, -10:, 1].mean(1) * 3  # learnable by every architecture: a scaled recent mean of feature 1
    loader = DataLoader(TensorDataset(x, y), batch_size=64)
    model = make()
    with torch.no_grad():
        before = (model(x) - y).abs().mean()
    model.lr = 1e-2
    L.Trainer(
        max_epochs=25, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False
    ).fit(model, loader)
    model.eval()
    with torch.no_grad():
        after = (model(x) - y).abs().mean()
    assert after < 0.8 * before
