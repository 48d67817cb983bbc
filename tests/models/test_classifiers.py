"""The IMDB classifiers: the book's parameter counts, Keras's init and loss semantics, GloVe hand-over, learning."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from lightning.pytorch import Trainer, seed_everything

from seqlight.callbacks import RunSummary, format_summary
from seqlight.data.imdb import ImdbDataModule, KerasImdbDataModule
from seqlight.models.classifiers import ConvClassifier, EmbeddingClassifier, RecurrentClassifier


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_parameter_counts_are_the_books():
    assert n_params(EmbeddingClassifier(10000, 20, 8)) == 80161  # 6.1.2 summary
    assert n_params(EmbeddingClassifier(10000, 100, 100, hidden_units=[32])) == 1320065  # 6.1.3 summary
    assert n_params(RecurrentClassifier(cell="simple_rnn", embedding_dim=32)) - 33 == 322080  # 6.2 summary
    assert n_params(RecurrentClassifier(cell="lstm", embedding_dim=32)) == 320000 + 4 * (32 * 32 + 32 * 32 + 32) + 33
    assert n_params(RecurrentClassifier(cell="lstm", embedding_dim=32, bidirectional=True)) == 320000 + 2 * 8320 + 65
    assert n_params(ConvClassifier()) == 1315937  # 6.4 summary


def test_keras_initialisation():
    m = EmbeddingClassifier(10000, 20, 8)
    w = m.embedding.weight
    assert w.abs().max() <= 0.05 and w.std() > 0.02  # U(-0.05, 0.05), not PyTorch's N(0, 1)
    lin = m.head[-1]
    assert lin.bias.abs().sum() == 0 and lin.weight.abs().max() <= (6 / (160 + 1)) ** 0.5


def test_sigmoid_output_is_bce_and_thresholded_accuracy():
    m = EmbeddingClassifier(50, 4, 3)
    s = torch.tensor([-2.0, 0.3, 4.0, -0.1])
    y = torch.tensor([0.0, 0.0, 1.0, 1.0])
    loss, hits = m.loss_and_hits(s, y)
    p = torch.sigmoid(s)
    ref = -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
    torch.testing.assert_close(loss, ref)
    assert hits.tolist() == [1, 0, 1, 0]


def test_linear_output_reproduces_kerass_clipping_loss_and_rounded_accuracy():
    m = ConvClassifier(num_words=50, maxlen=60, embedding_dim=4, output="linear")
    s = torch.tensor([1.6, 0.7, -0.3, 0.2, 2.0])
    y = torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0])
    loss, hits = m.loss_and_hits(s, y)
    eps = 1e-7
    p = s.clamp(eps, 1 - eps)
    ref = -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()  # Keras 2: clip, then cross-entropy
    torch.testing.assert_close(loss, ref)
    assert hits.tolist() == [0, 1, 1, 1, 0]  # round(1.6) = 2 != 1: Keras counts it wrong
    assert m.predict_proba(torch.randint(0, 50, (3, 60))).min() >= eps


def test_bidirectional_uses_the_backward_state_after_the_whole_sequence():
    torch.manual_seed(0)
    m = RecurrentClassifier(num_words=30, embedding_dim=4, cell="lstm", units=3, bidirectional=True, semantics="keras3")
    x = torch.randint(1, 30, (2, 9))
    out, _ = m.rnn(m.embedding(x))
    expected = m.dense(torch.cat([out[:, -1, :3], out[:, 0, 3:]], -1)).squeeze(-1)
    torch.testing.assert_close(m(x), expected)


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="maxlen"):
        EmbeddingClassifier(100, None, 8)
    with pytest.raises(ValueError, match="output"):
        ConvClassifier(output="softmax")
    with pytest.raises(ValueError, match="num_words"):
        RecurrentClassifier(num_words=0)
    with pytest.raises(ValueError, match="cell"):
        RecurrentClassifier(cell="transformer")


def _trainer(tmp_path, epochs=1, **kw):
    return Trainer(
        max_epochs=epochs, logger=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=tmp_path, enable_checkpointing=False, **kw,
    )  # fmt: skip


@pytest.fixture(scope="module")
def glove_dm(tmp_path_factory):
    d = tmp_path_factory.mktemp("imdb_cls")
    dm = ImdbDataModule(data_dir=str(d), source="synthetic", synthetic_size=100, maxlen=40, num_words=300,
                        training_samples=100, validation_samples=100, glove="auto", embedding_dim=12)  # fmt: skip
    dm.setup("fit")
    return dm


def test_pretrained_glove_is_copied_frozen_and_checkpointed(glove_dm, tmp_path):
    m = EmbeddingClassifier(300, 40, 12, hidden_units=[8], pretrained=True, freeze_embedding=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _trainer(tmp_path, max_steps=3).fit(m, datamodule=glove_dm)
    np.testing.assert_array_equal(m.embedding.weight.detach().numpy(), glove_dm.embedding_matrix)  # frozen
    state = m.state_dict()
    fresh = EmbeddingClassifier(300, 40, 12, hidden_units=[8], pretrained=True)
    fresh.load_state_dict(state)  # the GloVe rows travel in the state_dict, no DataModule needed
    torch.testing.assert_close(fresh.embedding.weight, m.embedding.weight)
    scratch = EmbeddingClassifier(300, 40, 12, hidden_units=[8])
    before = scratch.embedding.weight.detach().clone()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _trainer(tmp_path, max_steps=3).fit(scratch, datamodule=glove_dm)
    assert not torch.equal(before, scratch.embedding.weight)  # trainable and not GloVe
    assert not np.allclose(scratch.embedding.weight.detach().numpy(), glove_dm.embedding_matrix)


def test_pretrained_without_a_matrix_or_with_the_wrong_shape_fails(glove_dm, tmp_path):
    dm = KerasImdbDataModule(data_dir=str(glove_dm.data_dir), source="synthetic", synthetic_size=100, maxlen=40)
    with pytest.raises(ValueError, match="embedding_matrix"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _trainer(tmp_path, max_steps=1).fit(EmbeddingClassifier(10000, 40, 12, pretrained=True), datamodule=dm)
    with pytest.raises(ValueError, match=r"\(300, 12\)"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _trainer(tmp_path, max_steps=1).fit(EmbeddingClassifier(300, 40, 16, pretrained=True), datamodule=glove_dm)


def test_embedding_classifier_learns_the_synthetic_reviews_and_reports(tmp_path):
    seed_everything(0)
    dm = KerasImdbDataModule(
        data_dir=str(tmp_path), source="synthetic", synthetic_size=300, maxlen=20, num_words=500, batch_size=32
    )
    m = EmbeddingClassifier(500, 20, 8, hidden_units=[16])  # 6.1.2 + a hidden layer: "not great" is an XOR
    ckpt = __import__("lightning.pytorch.callbacks", fromlist=["ModelCheckpoint"]).ModelCheckpoint(
        monitor="val/acc", mode="max", dirpath=tmp_path / "ck", filename="best-{epoch:02d}"
    )
    summary = RunSummary()
    t = Trainer(
        max_epochs=8, logger=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[ckpt, summary]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t.fit(m, datamodule=dm)
    assert float(ckpt.best_model_score) > 0.75  # chance is 0.5
    for key in ("train/loss", "train/acc", "val/loss", "val/acc"):
        assert key in t.callback_metrics
    report = format_summary(summary.summary, m)
    best = summary.summary["metrics"]["val/acc"]
    assert best["best"] == float(ckpt.best_model_score) and f"(epoch {best['best_epoch'] + 1})" in report
    assert "best validation accuracy (epoch" in report and "SYNTHETIC" in report
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t.test(m, datamodule=dm, verbose=False)
    assert "test/acc" in t.callback_metrics and "test accuracy" in format_summary(summary.summary, m)


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_mask_zero_scores_a_review_the_same_however_it_is_padded(cell, bidirectional):
    """Keras's Embedding(mask_zero=True): a review pre-padded (pad_sequences' default), post-padded or unpadded
    gets the same score; without it (the book) the padding changes the score."""
    torch.manual_seed(0)
    kw = dict(num_words=50, embedding_dim=4, cell=cell, units=3, bidirectional=bidirectional)
    masked = RecurrentClassifier(mask_zero=True, **kw).double()
    book = RecurrentClassifier(**kw).double()
    book.load_state_dict(masked.state_dict())
    reviews = [torch.randint(1, 50, (n,)) for n in (9, 4, 6)]
    alone = torch.stack([masked(r[None])[0] for r in reviews])
    pre = torch.stack([torch.cat([torch.zeros(9 - len(r), dtype=torch.long), r]) for r in reviews])
    post = torch.stack([torch.cat([r, torch.zeros(9 - len(r), dtype=torch.long)]) for r in reviews])
    torch.testing.assert_close(masked(pre), alone, atol=1e-10, rtol=0)
    torch.testing.assert_close(masked(post), alone, atol=1e-10, rtol=0)
    assert not torch.allclose(book(pre), alone, atol=1e-6)  # the book's model reads the padding


def test_mask_zero_is_a_hyperparameter_and_old_checkpoints_load(tmp_path):
    """mask_zero is saved with the hyperparameters; a checkpoint from before it existed loads with the book's
    default (off)."""
    m = RecurrentClassifier(num_words=30, embedding_dim=4, units=3, mask_zero=True)
    assert m.hparams.mask_zero is True
    path = tmp_path / "m.ckpt"
    ckpt = {"state_dict": m.state_dict(), "hyper_parameters": dict(m.hparams), "pytorch-lightning_version": "2.5.0"}
    torch.save(ckpt, path)
    assert RecurrentClassifier.load_from_checkpoint(path).mask_zero is True
    del ckpt["hyper_parameters"]["mask_zero"]  # as written before mask_zero existed
    torch.save(ckpt, path)
    loaded = RecurrentClassifier.load_from_checkpoint(path)
    book = RecurrentClassifier(num_words=30, embedding_dim=4, units=3)
    book.load_state_dict(m.state_dict())
    x = torch.tensor([[0, 0, 3, 4, 5], [1, 2, 3, 0, 0]])
    assert loaded.mask_zero is False
    torch.testing.assert_close(loaded(x), book(x), atol=0, rtol=0)
    with pytest.raises(ValueError, match="mask_zero"):
        RecurrentClassifier(mask_zero="yes")
