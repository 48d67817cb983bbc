"""RecurrentForecaster, ConvForecaster, ConvGRUForecaster: the book's architectures, sizes and a training step."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from seqlight.models.recurrent_forecasters import ConvForecaster, ConvGRUForecaster, RecurrentForecaster
from seqlight.nn import GRU, Bidirectional


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
        num_features=14, units=[32, 64], activation=["tanh", "relu"], dropout=0.1, recurrent_dropout=0.5, semantics="keras2"
    )
    assert [r.hidden_size for r in m.rnns] == [32, 64]
    assert m.rnns[1].activation == "relu" and m.rnns[1].input_size == 32
    assert all(r.recurrent_dropout == 0.5 and r.dropout == 0.1 for r in m.rnns)
    assert m(torch.randn(3, 20, 14)).shape == (3,)


def test_bidirectional_forecaster_uses_both_final_states():
    m = RecurrentForecaster(num_features=14, bidirectional=True).eval()
    assert isinstance(m.rnns[0], Bidirectional) and m.head.in_features == 64
    x = torch.randn(2, 10, 14)
    _, h = m.rnns[0](x)
    want = m.head(torch.cat([h[0], h[1]], -1)).squeeze(-1)
    torch.testing.assert_close(m(x), want)


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
    L.Trainer(max_epochs=25, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False).fit(model, loader)
    model.eval()
    with torch.no_grad():
        after = (model(x) - y).abs().mean()
    assert after < 0.8 * before
