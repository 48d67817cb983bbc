"""Shuffled training windows per second: seqlight's JenaDataModule against the book's generator.

Usage:  python benchmarks/jena_windows.py [--data_dir datasets] [--epochs 3] [--book_batches 100]

Both sides draw the book's training batches (rows with replacement from 1440..200000, 128 windows of
240 x 14, float) from the same standardized 420,551-row series (the real CSV if it is in --data_dir,
else the synthetic stand-in in the official format), in the same process, one after the other. The
reference is a NumPy transcription of the book's listing 6.33 (seqlight.data.book_generator).

The memory figure is measured in a fresh subprocess: the peak resident set size while building the
DataModule (reading and checking the CSV, standardizing, the window store) and running one training
epoch, minus the resident size right before (after `import torch, pandas, lightning`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_child(data_dir: str) -> None:
    import lightning  # noqa: F401  - the baseline includes the libraries, not the data
    import pandas  # noqa: F401
    import torch  # noqa: F401

    from seqlight.data import JenaDataModule

    before = rss_mb()
    dm = JenaDataModule(data_dir=data_dir, source="auto", seed=0)
    dm.setup()
    for _ in dm.train_dataloader():
        pass
    print(json.dumps({"before": before, "peak": peak_mb(), "after": rss_mb(), "source": dm.source_description}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data_dir", default="datasets")
    ap.add_argument("--epochs", type=int, default=3, help="seqlight epochs of 500 batches to time")
    ap.add_argument("--book_batches", type=int, default=100, help="book generator batches to time")
    ap.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        memory_child(args.data_dir)
        return

    import torch

    from seqlight.data import JenaDataModule
    from seqlight.data.book_generator import generator

    torch.set_num_threads(1)
    dm = JenaDataModule(data_dir=args.data_dir, source="auto", seed=0)
    t0 = time.perf_counter()
    dm.setup()
    setup_s = time.perf_counter() - t0

    loader = dm.train_dataloader()
    n, t0 = 0, time.perf_counter()
    for _ in range(args.epochs):
        for x, _y in loader:
            n += len(x)
    ours = n / (time.perf_counter() - t0)
    assert x.shape == (128, 240, 14)

    data = (dm.series.values - dm.mean) / dm.std  # the book's float_data after standardization
    gen = generator(data, 1440, 144, 0, 200000, shuffle=True, batch_size=128, step=6, rng=np.random.default_rng(0))
    next(gen)
    t0 = time.perf_counter()
    for _ in range(args.book_batches):
        samples, targets = next(gen)
    book = args.book_batches * 128 / (time.perf_counter() - t0)

    child = subprocess.run(
        [sys.executable, __file__, "--memory-child", "--data_dir", args.data_dir],
        capture_output=True,
        text=True,
        check=True,
    )
    mem = json.loads(child.stdout.strip().splitlines()[-1])
    peak = mem["peak"] - mem["before"]

    print(
        f"data: {dm.source_description}, {len(dm.series.values):,} rows; "
        f"setup (read + check + standardize) {setup_s:.2f} s"
    )
    print(f"torch {torch.__version__}, intra-op threads 1 (the gather is NumPy, single-threaded)\n")
    print(f"| {'what':44s} | {'windows/s':>11s} | {'ratio':>7s} | target |")
    print(f"|{'-' * 46}|{'-' * 13}|{'-' * 9}|--------|")
    print(f"| {'book generator (NumPy transcription)':44s} | {book:11,.0f} | {1.0:7.2f} |        |")
    print(f"| {'seqlight JenaDataModule.train_dataloader()':44s} | {ours:11,.0f} | {ours / book:7.1f} | >= 20x |")
    print("\n| memory | MB | target |\n|---|---|---|")
    print(f"| peak RSS while building the DataModule and one epoch, above the imports | {peak:.0f} | <= 400 |")
    print(f"| RSS kept afterwards, above the imports | {mem['after'] - mem['before']:.0f} | |")


if __name__ == "__main__":
    main()
