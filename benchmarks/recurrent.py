"""Training speed of seqlight.nn's recurrent layers against torch.nn.GRU / nn.LSTM, measured in the same run.

One training step = forward + backward + RMSprop step of ``layer -> last state -> Dense(1)``:

- Jena shape (book 6.3): batch 128, 240 steps, 14 features, 32 units, MAE loss; reference ``torch.nn.GRU``.
- IMDB shape (book 6.2): ``Embedding(10000, 32) -> LSTM(32)``, batch 128, 500 steps, BCE; reference
  ``torch.nn.LSTM``.

The machine may be shared: the variants are interleaved in rounds (every round times each variant once),
and the table shows each variant's best round, as a rate and as a ratio to the reference's best round.
Other jobs only ever slow a round down, so the best round is the closest to the code's own speed; the load
average before and after is printed too.

Targets (issue 10, at 1 thread) end the output, one line each with its ratio and PASS or MISS: a ratio to the
shape's torch reference, or, for the masked rows, to the same layer unmasked. Masked rows run pre-padded
batches (lengths drawn uniformly in [1, T], the padding at the front as ``pad_sequences`` puts it) through
``mask=``: Keras's masking, a masked step keeps the state (``seqlight.nn._masks``). The custom loop runs in C
where the machine has a compiler (``seqlight.nn._native``; the header line says whether it does); the rows
ending in "on the Python loop" (``implementation='function'``) run the same layers without it, for
orientation. The row "GRU, nn.GRU's semantics on the custom loop" is the stretch goal of issue 10, item 6:
seqlight's own loop against torch's fused kernel on the same equations; its LSTM twin is shown without a
target (at the IMDB shape the input-side matrix products, which both run in MKL, take most of the time).

Usage::

    python benchmarks/recurrent.py                 # 1 and 2 threads, 7 rounds
    python benchmarks/recurrent.py --threads 1 --rounds 3
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
from seqlight.nn._native import native_status
from seqlight.threads import tune_malloc

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


class Masked(nn.Module):
    """``rnn(x, mask=...)`` with a fixed pre-padded mask: sequence ``b`` has its last ``lengths[b]`` steps real."""

    def __init__(self, rnn: nn.Module, T: int) -> None:
        super().__init__()
        self.rnn = rnn
        lengths = torch.randint(1, T + 1, (B,), generator=torch.Generator().manual_seed(0))
        self.register_buffer("mask", torch.arange(T).unsqueeze(0) >= (T - lengths).unsqueeze(1))

    def forward(self, x):
        return self.rnn(x, mask=self.mask)


# The book's layers (Keras 2.0.8 semantics), named once: the targets refer to them.
K2_GRU = "GRU, Keras 2.0.8 (hard_sigmoid, reset before)"
K2_GRU_RD = "GRU, Keras 2.0.8 + dropout+rec. dropout 0.2"
K2_GRU_MASKED = "GRU, Keras 2.0.8, masked (pre-padded)"
K2_LSTM = "LSTM, Keras 2.0.8 (hard_sigmoid, loop)"
K2_LSTM_MASKED = "LSTM, Keras 2.0.8, masked (pre-padded)"
STRETCH = "GRU, nn.GRU's semantics on the custom loop"
STRETCH_LSTM = "LSTM, nn.LSTM's semantics on the custom loop"
PYTHON_LOOP = " on the Python loop"  # the same layer without the native loop, for orientation


def jena_variants():
    """``(name, build, target)``: target a ratio to the reference (row 0), ``(other row, ratio)`` for a ratio to
    another row, or None."""
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
        (K2_GRU, lambda: GRU(F, H, **k2), 0.95),
        (K2_GRU + PYTHON_LOOP, lambda: GRU(F, H, **k2, implementation="function"), None),
        (K2_GRU_RD, lambda: GRU(F, H, **k2, **rd), 0.9),
        (K2_GRU_RD + PYTHON_LOOP, lambda: GRU(F, H, **k2, **rd, implementation="function"), None),
        (K2_GRU_MASKED, lambda: Masked(GRU(F, H, **k2), T_JENA), (K2_GRU, 0.8)),
        (STRETCH, lambda: GRU(F, H, implementation="loop"), 1.0),
        ("nn.GRUCell loop + rec. dropout 0.2 (orientation)", lambda: GRUCellLoop(0.2, 0.2), None),
    ]


def imdb_variants():
    return [
        ("torch.nn.LSTM (reference)", lambda: nn.LSTM(H, H, batch_first=True), None),
        ("LSTM, fused (Keras 3 semantics)", lambda: LSTM(H, H), 0.95),
        (K2_LSTM, lambda: LSTM(H, H, recurrent_activation="hard_sigmoid"), 0.9),
        (
            K2_LSTM + PYTHON_LOOP,
            lambda: LSTM(H, H, recurrent_activation="hard_sigmoid", implementation="function"),
            None,
        ),
        (K2_LSTM_MASKED, lambda: Masked(LSTM(H, H, recurrent_activation="hard_sigmoid"), T_IMDB), (K2_LSTM, 0.8)),
        (STRETCH_LSTM, lambda: LSTM(H, H, implementation="loop"), None),  # orientation: the stretch goal is the GRU
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
    for k in range(rounds):
        # each round starts with another variant: whoever runs after the others have freed their memory pays
        # for fresh pages, and no variant should always be that one
        this_round = [0.0] * len(steps)
        for i in [(k + j) % len(steps) for j in range(len(steps))]:
            t0 = time.perf_counter()
            for _ in range(iters):
                steps[i]()
            this_round[i] = B * iters / (time.perf_counter() - t0)
        for i, r in enumerate(this_round):
            rates[i].append(r)
            ratios[i].append(r / this_round[0])
    best_ref = max(rates[0])
    return [(max(r), max(r) / best_ref, statistics.median(q), r) for r, q in zip(rates, ratios)]


def targets(names, results) -> list[tuple[str, float, float, float, bool]]:
    """``(what, median ratio, best-round ratio, target, met)`` per target (one thread count).

    The verdict uses the median over rounds of the ratio within each round: the two rates of a ratio are
    measured seconds apart, under the same load, while the best rounds of two variants may come from different
    moments of a neighbour's activity (on a shared machine a lucky round of the reference alone moves the
    best-round ratio by 20% and more)."""
    out = []
    for i, (name, target, ref) in enumerate(names):
        if target is None:
            continue
        if isinstance(target, tuple):
            other, value = target
            j = [n for n, _, _ in names].index(other)
            what = f"{name} / same layer unmasked"
        else:
            value, j = target, ref
            what = f"{name} / {names[ref][0].split(' (')[0]}"
        paired = statistics.median(a / b for a, b in zip(results[i][3], results[j][3]))
        out.append((what, paired, results[i][0] / results[j][0], value, paired >= value))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--iters", type=int, default=3, help="training steps per variant per round (Jena)")
    parser.add_argument("--no-imdb", action="store_true", help="skip the IMDB/LSTM shape")
    parser.add_argument("--smoke", action="store_true", help="tiny shapes: checks the script runs, measures nothing")
    args = parser.parse_args(argv)
    if args.smoke:
        global B, T_JENA, T_IMDB
        B, T_JENA, T_IMDB = 8, 12, 16
    tune_malloc()  # as seqlight's models do when they are set up: the loops' buffers are megabytes
    load_before = os.getloadavg()
    results = {}
    for n in args.threads:
        torch.set_num_threads(n)
        results[n] = measure(jena_variants(), False, args.rounds, args.iters)
        if not args.no_imdb:
            results[n] += measure(imdb_variants(), True, args.rounds, max(1, args.iters - 1))
    load_after = os.getloadavg()
    names = [(v[0], v[2], 0) for v in jena_variants()]  # (name, target, index of its reference row)
    if not args.no_imdb:
        names += [(v[0], v[2], len(names)) for v in imdb_variants()]
    width = max(72, *(len(name) for name, _, _ in names))
    header = f"{'variant (training samples/s; ratio to the reference of the same round)':{width}s}"
    for n in args.threads:
        header += f" | {f'{n} thread' + ('s' if n > 1 else ''):>9s} {'ratio':>6s} {'(med)':>6s}"
    print(
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, best of {args.rounds} rounds "
        "(in brackets: the median of the per-round ratios); "
        f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}"
    )
    print(
        "Jena shape: batch 128, 240 steps, 14 features, 32 units; "
        "IMDB shape: Embedding(10000, 32) -> LSTM(32), 500 steps; "
        f"native loop: {native_status()}"
    )
    print(header)
    print("-" * len(header))
    for i, (name, _, _) in enumerate(names):
        line = f"{name:{width}s}"
        for n in args.threads:
            rate, ratio, median_ratio, _ = results[n][i]
            line += f" | {rate:9.0f} {ratio:5.2f}x ({median_ratio:4.2f})"
        print(line)
    n = 1 if 1 in args.threads else args.threads[0]
    print(
        f"\ntargets at {n} thread{'s' if n > 1 else ''}: median over rounds of the ratio within a round "
        f"(best rounds' ratio in brackets); load average {load_before[0]:.2f} before, {load_after[0]:.2f} after:"
    )
    for what, paired, best, value, met in targets(names, results[n]):
        print(f"  {what:76s} {paired:5.2f}x ({best:4.2f})  >= {value:.2f}x  {'PASS' if met else 'MISS'}")


if __name__ == "__main__":
    main()
