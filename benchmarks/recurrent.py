"""Training speed of seqlight.nn's recurrent layers against torch.nn.GRU / nn.LSTM, measured in the same run.

One training step = forward + backward + RMSprop step of ``layer -> last state -> Dense(1)``:

- Jena shape (book 6.3): batch 128, 240 steps, 14 features, 32 units, MAE loss; reference ``torch.nn.GRU``.
- IMDB shape (book 6.2): ``Embedding(10000, 32) -> LSTM(32)``, batch 128, 500 steps, BCE; reference
  ``torch.nn.LSTM``.

The machine may be shared: the variants are interleaved in rounds (every round times each variant once),
and the table shows each variant's best round, as a rate and as a ratio to the reference's best round.
Other jobs only ever slow a round down, so the best round is the closest to the code's own speed; the load
average before and after is printed too.

Usage::

    python benchmarks/recurrent.py                 # 1 and 2 threads, 5 rounds
    python benchmarks/recurrent.py --threads 2 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from torch import nn

from seqlight.models.common import keras_rmsprop
from seqlight.nn import GRU, LSTM

B, T_JENA, F, H = 128, 240, 14, 32
T_IMDB, VOCAB = 500, 10000


class LastState(nn.Module):
    """``rnn -> h_T -> Dense(1)`` (optionally after an Embedding)."""

    def __init__(self, rnn: nn.Module, embedding: nn.Module | None = None) -> None:
        super().__init__()
        self.embedding, self.rnn, self.head = embedding, rnn, nn.Linear(H, 1)

    def forward(self, x):
        if self.embedding is not None:
            x = self.embedding(x)
        out, state = self.rnn(x)
        h = state[0] if isinstance(state, tuple) else state
        return self.head(h[-1]).squeeze(-1)


class GRUCellLoop(nn.Module):
    """The usual PyTorch answer to recurrent dropout: ``nn.GRUCell`` in a Python loop, one mask per sample."""

    def __init__(self, dropout: float, recurrent_dropout: float) -> None:
        super().__init__()
        self.cell, self.p, self.rp = nn.GRUCell(F, H), dropout, recurrent_dropout

    def forward(self, x):
        h = x.new_zeros(x.shape[0], H)
        in_mask = torch.empty(x.shape[0], 1, F).bernoulli_(1 - self.p) / (1 - self.p)
        rec_mask = torch.empty(x.shape[0], H).bernoulli_(1 - self.rp) / (1 - self.rp)
        x = x * in_mask
        for t in range(x.shape[1]):
            h = self.cell(x[:, t], h * rec_mask)
        return None, h.unsqueeze(0)


def jena_variants():
    k2 = dict(recurrent_activation="hard_sigmoid", reset_after=False)
    rd = dict(dropout=0.2, recurrent_dropout=0.2)
    return [
        ("torch.nn.GRU (reference)", lambda: nn.GRU(F, H, batch_first=True), None),
        ("GRU, fused (Keras 3 semantics)", lambda: GRU(F, H), 0.95),
        ("GRU, dropout=0.2 (fused)", lambda: GRU(F, H, dropout=0.2), None),
        (
            "GRU, dropout+rec. dropout 0.2, batch mask (fused)",
            lambda: GRU(F, H, recurrent_dropout_mode="batch", **rd),
            0.9,
        ),
        ("GRU, dropout+rec. dropout 0.2, per-sample (loop)", lambda: GRU(F, H, **rd), 0.85),
        ("GRU, Keras 2.0.8 (hard_sigmoid, reset before)", lambda: GRU(F, H, **k2), 0.75),
        ("GRU, Keras 2.0.8 + dropout+rec. dropout 0.2", lambda: GRU(F, H, **k2, **rd), None),
        ("GRU, Keras 3 semantics on the custom loop", lambda: GRU(F, H, use_fused=False), None),
        ("nn.GRUCell loop + rec. dropout 0.2 (orientation)", lambda: GRUCellLoop(0.2, 0.2), None),
    ]


def imdb_variants():
    return [
        ("torch.nn.LSTM (reference)", lambda: nn.LSTM(H, H, batch_first=True), None),
        ("LSTM, fused (Keras 3 semantics)", lambda: LSTM(H, H), 0.95),
        ("LSTM, Keras 2.0.8 (hard_sigmoid, loop)", lambda: LSTM(H, H, recurrent_activation="hard_sigmoid"), None),
    ]


def make_step(build, imdb: bool):
    torch.manual_seed(0)
    model = LastState(build(), nn.Embedding(VOCAB, H) if imdb else None)
    opt = keras_rmsprop(model.parameters())
    if imdb:
        x, y = torch.randint(1, VOCAB, (B, T_IMDB)), torch.randint(0, 2, (B,)).float()
        loss_fn = nn.functional.binary_cross_entropy_with_logits
    else:
        x, y = torch.randn(B, T_JENA, F), torch.randn(B)
        loss_fn = nn.functional.l1_loss

    def step():
        loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def measure(variants, imdb: bool, rounds: int, iters: int):
    steps = [make_step(build, imdb) for _, build, _ in variants]
    for step in steps:  # warm-up (allocator, oneDNN primitives)
        step()
        step()
    rates = [[] for _ in variants]
    ratios = [[] for _ in variants]
    for _ in range(rounds):
        this_round = []
        for step in steps:
            t0 = time.perf_counter()
            for _ in range(iters):
                step()
            this_round.append(B * iters / (time.perf_counter() - t0))
        for i, r in enumerate(this_round):
            rates[i].append(r)
            ratios[i].append(r / this_round[0])
    best_ref = max(rates[0])
    return [(max(r), max(r) / best_ref, statistics.median(q)) for r, q in zip(rates, ratios)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--iters", type=int, default=3, help="training steps per variant per round (Jena)")
    parser.add_argument("--no-imdb", action="store_true", help="skip the IMDB/LSTM shape")
    args = parser.parse_args()
    load_before = os.getloadavg()
    results = {}
    for n in args.threads:
        torch.set_num_threads(n)
        results[n] = measure(jena_variants(), False, args.rounds, args.iters)
        if not args.no_imdb:
            results[n] += measure(imdb_variants(), True, args.rounds, max(1, args.iters - 1))
    load_after = os.getloadavg()
    names = [(v[0], v[2]) for v in jena_variants()] + ([] if args.no_imdb else [(v[0], v[2]) for v in imdb_variants()])
    header = f"{'variant (training samples/s; ratio to the reference of the same round)':52s}"
    for n in args.threads:
        header += f" | {f'{n} thread' + ('s' if n > 1 else ''):>9s} {'ratio':>6s} {'(med)':>6s}"
    header += " | target"
    print(
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, best of {args.rounds} rounds "
        "(in brackets: the median of the per-round ratios); "
        f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}"
    )
    print(
        "Jena shape: batch 128, 240 steps, 14 features, 32 units; "
        "IMDB shape: Embedding(10000, 32) -> LSTM(32), 500 steps"
    )
    print(header)
    print("-" * len(header))
    for i, (name, target) in enumerate(names):
        line = f"{name:52s}"
        for n in args.threads:
            rate, ratio, median_ratio = results[n][i]
            line += f" | {rate:9.0f} {ratio:5.2f}x ({median_ratio:4.2f})"
        if target is not None:
            ok = all(results[n][i][1] >= target for n in args.threads)
            line += f" | >= {target:.2f}x {'met' if ok else 'MISSED'}"
        print(line)


if __name__ == "__main__":
    main()
