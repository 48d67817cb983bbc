"""The chapter's IMDB sentiment classifiers (book 6.1.2, 6.1.3, 6.2.3, 6.2.4, 6.3.8, 6.4.3) as LightningModules.

Every classifier maps padded word-index sequences ``(batch, maxlen)`` to one score per review and is
trained as the book compiles it: ``optimizer='rmsprop'`` (Keras's RMSprop: lr 1e-3, rho 0.9, eps 1e-7),
``loss='binary_crossentropy'``, ``metrics=['acc']``. Logged: ``{train,val,test}/loss`` and ``.../acc``.
Embeddings start as Keras's ``uniform`` initializer U(-0.05, 0.05), dense and conv kernels as
``glorot_uniform`` with zero biases.

- :class:`EmbeddingClassifier`: ``Embedding -> Flatten -> [Dense(relu)]* -> Dense(1, sigmoid)`` (6.1.2; 6.1.3
  with ``hidden_units=[32]``, and with ``pretrained=True`` the GloVe matrix of the DataModule, frozen).
- :class:`RecurrentClassifier`: ``Embedding -> SimpleRNN/LSTM/GRU (or Bidirectional) -> Dense(1, sigmoid)``
  (6.2.3, 6.2.4, 6.3.8), on :mod:`seqlight.nn`.
- :class:`ConvClassifier`: ``Embedding(128) -> Conv1D(32, 7) -> MaxPooling1D(5) -> Conv1D(32, 7) ->
  GlobalMaxPooling1D -> Dense(1)`` (6.4.3).

The book's 6.4 convnet ends in a *linear* ``Dense(1)`` trained with ``binary_crossentropy``: Keras then clips
the output to ``[1e-7, 1 - 1e-7]`` inside the loss, and ``acc`` compares ``round(output)`` unclipped with the
label (an output of 1.6 counts as wrong). ``output='linear'`` reproduces exactly that; the default
``output='sigmoid'`` is the sound version (a sigmoid, i.e. ``BCEWithLogits`` on the linear score).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric

from seqlight.data.preprocessing import IndexedTextPreprocessing, TextPreprocessing
from seqlight.errors import SeqlightError
from seqlight.models.common import KerasStyleModule, last_state
from seqlight.nn import Bidirectional
from seqlight.nn.conv import Conv1D, GlobalMaxPooling1D, MaxPooling1D
from seqlight.nn.init import keras_init_

__all__ = ["Classifier", "EmbeddingClassifier", "RecurrentClassifier", "ConvClassifier"]

_EPS = 1e-7  # Keras's K.epsilon(), the clip of binary_crossentropy


class Classifier(KerasStyleModule):
    """Base class: an Embedding, Keras's binary cross-entropy and accuracy, Keras's RMSprop, what a run reports.

    Args:
        num_words: vocabulary size of the Embedding (linked from the DataModule; book 10,000).
        maxlen: padded review length (linked from the DataModule).
        embedding_dim: Embedding output size (linked from :class:`~seqlight.data.ImdbDataModule`, whose GloVe
            dimension it is; set in the config for the other models).
        lr: RMSprop learning rate (Keras default 1e-3).
        output: ``'sigmoid'`` (the score is a logit; loss = ``BCEWithLogits``) or ``'linear'`` (Keras's
            ``binary_crossentropy`` on an unsquashed output: clip to [1e-7, 1-1e-7], accuracy from
            ``round(output)``), see the module doc.

    Subclasses build ``self.embedding`` and their layers and implement ``score(embedded) -> (batch,)``.
    """

    def __init__(
        self,
        num_words: int = 10000,
        maxlen: int | None = None,
        embedding_dim: int = 32,
        lr: float = 1e-3,
        output: Literal["sigmoid", "linear"] = "sigmoid",
    ) -> None:
        super().__init__()
        for name, value in (("num_words", num_words), ("embedding_dim", embedding_dim)):
            if value is None or int(value) != value or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if maxlen is not None and maxlen < 1:
            raise ValueError(f"maxlen must be >= 1, got {maxlen}")
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if output not in ("sigmoid", "linear"):
            raise ValueError(f"output must be 'sigmoid' or 'linear', got {output!r}")
        self.num_words = int(num_words)
        self.maxlen = maxlen
        self.embedding_dim = int(embedding_dim)
        self.lr = lr
        self.output = output
        self.embedding = keras_init_(nn.Embedding(self.num_words, self.embedding_dim))
        # Validation/test means as metric states (sum and count), synchronised across DDP processes: each
        # process scores its own share of the reviews, and the logged value is the whole split's.
        self.eval_means = nn.ModuleDict(
            {f"{split}_{name}": MeanMetric() for split in ("val", "test") for name in ("loss", "acc")}
        )

    def score(self, embedded: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        """The raw score ``(batch,)``: a logit for ``output='sigmoid'``, Keras's linear output otherwise."""
        if x.dtype != torch.long:
            x = x.long()
        return self.score(self.embedding(x))

    def classify(self, texts: str | Sequence[str]) -> float | np.ndarray:
        """Probability that each raw review is positive, through the tokenizer the model was trained with.

        ``texts``: one review (returns a float) or a sequence of them (returns a float64 array). Each is
        tokenized, indexed and padded exactly as the training DataModule did (the model's
        :attr:`preprocessing`: the fitted Tokenizer for raw IMDB, the word ranks and ``load_data`` settings for
        the pre-indexed family); the model runs in eval mode without gradients.
        """
        prep = self._require_preprocessing(TextPreprocessing, IndexedTextPreprocessing)
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        if not texts:
            raise SeqlightError("classify() needs at least one text")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text {i} is a {type(text).__name__}, not a str")
            if not text.strip():
                raise SeqlightError(f"text {i} is empty: there is nothing to classify")
        probs = self._infer(torch.from_numpy(prep.encode(texts))).double().cpu().numpy()
        return float(probs[0]) if single else probs

    def predict_proba(self, x: Tensor) -> Tensor:
        """Probability of a positive review, as the book's ``model.predict``, for padded index sequences."""
        if isinstance(x, str) or (isinstance(x, (list, tuple)) and x and isinstance(x[0], str)):
            raise TypeError("predict_proba takes padded word indices; for raw review texts use classify(texts)")
        s = self(torch.as_tensor(x))
        return torch.sigmoid(s) if self.output == "sigmoid" else s.clamp(_EPS, 1 - _EPS)

    # -- loss and metrics --------------------------------------------------------------------------------
    def loss_and_hits(self, s: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Mean binary cross-entropy and the per-review 0/1 hits of Keras's ``binary_accuracy``."""
        s, y = s.float(), y.float()
        if self.output == "sigmoid":
            loss = nn.functional.binary_cross_entropy_with_logits(s, y)
            hits = ((s > 0).float() == y).float()
        else:
            p = s.clamp(_EPS, 1 - _EPS)
            loss = nn.functional.binary_cross_entropy(p, y)
            hits = (torch.round(s) == y).float()  # Keras rounds the unclipped output
        return loss, hits

    def _step(self, batch, split: str) -> Tensor:
        x, y = batch
        s = self(x)
        loss, hits = self.loss_and_hits(s, y)
        n = len(y)
        if split == "val" and getattr(self, "_confusion", None) is not None:
            predicted = (s > 0) if self.output == "sigmoid" else (torch.round(s.float()) >= 1)
            pairs = y.long().cpu() * 2 + predicted.long().cpu()
            self._confusion += torch.bincount(pairs, minlength=4).reshape(2, 2)
        if split == "train":
            self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n)
            self.log("train/acc", hits.mean(), on_step=False, on_epoch=True, prog_bar=True, batch_size=n)
        else:
            for name, value, weight in (("loss", loss.detach(), n), ("acc", hits, 1)):
                metric = self.eval_means[f"{split}_{name}"]
                metric.update(value, weight)
                self.log(f"{split}/{name}", metric, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def predict_step(self, batch, batch_idx, dataloader_idx=0) -> Tensor:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self.predict_proba(x)

    # -- what a run reports (read by seqlight.callbacks.RunSummary) ---------------------------------------
    summary_metrics = ("acc", "loss")  # the printed table: accuracy and loss per split
    chart_metrics = ("loss", "acc")  # TensorBoard: train and validation on one chart each

    def on_validation_epoch_start(self) -> None:
        self._confusion = torch.zeros(2, 2, dtype=torch.long)  # [true label, predicted label], this process

    def validation_figure(self):
        """The confusion matrix of the last validation epoch (counts of this process's reviews), as a figure."""
        counts = getattr(self, "_confusion", None)
        if counts is None or counts.sum() == 0:
            return None
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure

        fig = Figure(figsize=(3.6, 3.2))
        ax = fig.add_subplot()
        ax.imshow(counts.numpy(), cmap="Blues")
        names = ["negative", "positive"]
        ax.set_xticks([0, 1], names)
        ax.set_yticks([0, 1], names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        for (i, j), n in np.ndenumerate(counts.numpy()):
            ax.text(j, i, str(n), ha="center", va="center", color="white" if n > counts.max() / 2 else "black")
        acc = float(counts.trace()) / float(counts.sum())
        ax.set_title(f"validation, epoch {self.current_epoch + 1}: acc {acc:.3f}", fontsize=9)
        fig.tight_layout()
        return fig


class EmbeddingClassifier(Classifier):
    """Book 6.1.2 (``Embedding(10000, 8) -> Flatten -> Dense(1, sigmoid)``) and 6.1.3 (GloVe).

    Args:
        num_words, maxlen, embedding_dim, lr, output: see :class:`Classifier`; ``maxlen`` is required (the
            Flatten size).
        hidden_units: ``Dense(relu)`` layers between Flatten and the output (6.1.3: ``[32]``).
        pretrained: copy the DataModule's ``embedding_matrix`` (GloVe, built as the book's listing 6.11)
            into the Embedding at ``setup('fit')``. It is then part of the state_dict, so checkpoints load
            without the DataModule.
        freeze_embedding: ``layers[0].trainable = False`` as the book does with GloVe.

    Example:
        >>> import torch
        >>> m = EmbeddingClassifier(num_words=10000, maxlen=20, embedding_dim=8)
        >>> m(torch.randint(0, 10000, (4, 20))).shape, sum(p.numel() for p in m.parameters())  # book: 80,161
        (torch.Size([4]), 80161)
    """

    def __init__(
        self,
        num_words: int = 10000,
        maxlen: int | None = 20,
        embedding_dim: int = 8,
        hidden_units: list[int] | None = None,
        pretrained: bool = False,
        freeze_embedding: bool = False,
        lr: float = 1e-3,
        output: Literal["sigmoid", "linear"] = "sigmoid",
    ) -> None:
        super().__init__(num_words, maxlen, embedding_dim, lr, output)
        if maxlen is None:
            raise ValueError("EmbeddingClassifier needs maxlen (Flatten's size); the CLI links it from the DataModule")
        self.save_hyperparameters()
        self.pretrained = pretrained
        self.embedding.weight.requires_grad_(not freeze_embedding)
        layers: list[nn.Module] = [nn.Flatten()]
        width = maxlen * self.embedding_dim
        for units in hidden_units or []:
            layers += [nn.Linear(width, units), nn.ReLU()]
            width = units
        layers.append(nn.Linear(width, 1))
        self.head = keras_init_(nn.Sequential(*layers))

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage != "fit" or not self.pretrained:
            return
        dm = getattr(self.trainer, "datamodule", None)
        matrix = getattr(dm, "embedding_matrix", None)
        if matrix is None:
            raise ValueError(
                "pretrained=True needs a DataModule with an embedding_matrix: use seqlight.data.ImdbDataModule with "
                "glove set (a GloVe file path or 'auto')"
            )
        matrix = torch.as_tensor(matrix, dtype=self.embedding.weight.dtype)
        if tuple(matrix.shape) != tuple(self.embedding.weight.shape):
            raise ValueError(
                f"the DataModule's embedding_matrix is {tuple(matrix.shape)}, the Embedding is "
                f"{tuple(self.embedding.weight.shape)} (num_words, embedding_dim)"
            )
        with torch.no_grad():
            self.embedding.weight.copy_(matrix)

    def score(self, embedded: Tensor) -> Tensor:
        return self.head(embedded).squeeze(-1)


class RecurrentClassifier(Classifier):
    """Book 6.2.3 (SimpleRNN), 6.2.4 (LSTM), 6.3.8 (reversed and bidirectional LSTM): ``Embedding -> RNN -> Dense(1)``.

    Args:
        num_words, maxlen, embedding_dim, lr, output: see :class:`Classifier` (book: 10,000 words, 32 dims;
            128 for the reversed LSTM).
        cell: ``'simple_rnn'``, ``'lstm'`` or ``'gru'``.
        units: the recurrent layer's size (book 32).
        bidirectional: wrap it in :class:`seqlight.nn.Bidirectional` (concat).
        semantics: ``'keras2'`` (the book's Keras 2.0.8: ``hard_sigmoid`` gates, seqlight's custom loop) or
            ``'keras3'`` (sigmoid gates: PyTorch's fused kernel). SimpleRNN is the same in both.
        dropout, recurrent_dropout: Keras's per-sequence masks (the book uses none for IMDB).
        mask_zero: Keras's ``Embedding(mask_zero=True)``: index 0 is padding, and the recurrent layer skips
            those steps (a masked step keeps the state; see :mod:`seqlight.nn._masks`), so a review scores the
            same however much padding surrounds it. Off by default, as in the book, whose padded steps run
            through the RNN. Only here: Keras 2 refuses a mask in ``Flatten`` and ``Conv1D`` ("does not
            support masking"), and Keras 3's do not use it, so the Embedding+Flatten and Conv1D models have no
            such option.

    Example:
        >>> import torch
        >>> m = RecurrentClassifier(cell="simple_rnn", embedding_dim=32, units=32)
        >>> m(torch.randint(0, 10000, (2, 50))).shape, sum(p.numel() for p in m.parameters())  # book: 322,080 + 33
        (torch.Size([2]), 322113)
    """

    def __init__(
        self,
        num_words: int = 10000,
        maxlen: int | None = None,
        embedding_dim: int = 32,
        cell: Literal["simple_rnn", "lstm", "gru"] = "lstm",
        units: int = 32,
        bidirectional: bool = False,
        semantics: Literal["keras2", "keras3"] = "keras2",
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        lr: float = 1e-3,
        output: Literal["sigmoid", "linear"] = "sigmoid",
        mask_zero: bool = False,
    ) -> None:
        super().__init__(num_words, maxlen, embedding_dim, lr, output)
        from seqlight.models.recurrent_forecasters import recurrent_layer

        if mask_zero not in (True, False):
            raise ValueError(f"mask_zero must be true or false, got {mask_zero!r}")
        self.mask_zero = bool(mask_zero)

        self.save_hyperparameters()
        rnn = recurrent_layer(
            cell, self.embedding_dim, units, semantics, dropout=dropout, recurrent_dropout=recurrent_dropout
        )
        self.rnn = Bidirectional(rnn) if bidirectional else rnn
        self.dense = keras_init_(nn.Linear(2 * units if bidirectional else units, 1))

    def forward(self, x: Tensor) -> Tensor:
        if not self.mask_zero:
            return super().forward(x)
        x = x.long()  # Keras's Embedding(mask_zero=True): the mask is x != 0, handed to the recurrent layer
        _, state = self.rnn(self.embedding(x), mask=x != 0)
        return self.dense(last_state(self.rnn, state)).squeeze(-1)

    def score(self, embedded: Tensor) -> Tensor:
        _, state = self.rnn(embedded)
        return self.dense(last_state(self.rnn, state)).squeeze(-1)


class ConvClassifier(Classifier):
    """Book 6.4.3: ``Embedding(10000, 128) -> Conv1D(32, 7, relu) -> MaxPooling1D(5) -> Conv1D(32, 7, relu) ->
    GlobalMaxPooling1D -> Dense(1)``, RMSprop(lr=1e-4).

    ``output='linear'`` is the book's net exactly (no sigmoid, Keras's clipping loss, see the module doc);
    the default ``'sigmoid'`` adds the sigmoid the book forgot.

    Example:
        >>> import torch
        >>> m = ConvClassifier(maxlen=500)
        >>> m(torch.randint(0, 10000, (2, 500))).shape, sum(p.numel() for p in m.parameters())  # book: 1,315,937
        (torch.Size([2]), 1315937)
    """

    def __init__(
        self,
        num_words: int = 10000,
        maxlen: int | None = None,
        embedding_dim: int = 128,
        filters: int = 32,
        kernel_size: int = 7,
        pool_size: int = 5,
        lr: float = 1e-4,
        output: Literal["sigmoid", "linear"] = "sigmoid",
    ) -> None:
        super().__init__(num_words, maxlen, embedding_dim, lr, output)
        self.save_hyperparameters()
        self.features = nn.Sequential(
            Conv1D(self.embedding_dim, filters, kernel_size, activation="relu"),
            MaxPooling1D(pool_size),
            Conv1D(filters, filters, kernel_size, activation="relu"),
            GlobalMaxPooling1D(),
        )
        self.dense = keras_init_(nn.Linear(filters, 1))

    def score(self, embedded: Tensor) -> Tensor:
        return self.dense(self.features(embedded)).squeeze(-1)
