"""Run the chapter's IMDB experiments on the real data and compare with the book (slow: minutes to an hour).

Each experiment is its config in ``configs/`` run through the seqlight CLI on the real aclImdb (and GloVe for
6.1.3), one torch thread per run, no progress bar. The GloVe runs are then tested on aclImdb/test with the
weights after the last epoch, as the book does. Each result is read from the run's ``metrics.json`` (never
from printed text). Results go to ``runs/imdb_book_runs.md`` (a table: best/last validation accuracy, test
accuracy where the book has one, the book's numbers).

Usage::

    python scripts/imdb_book_runs.py --data-dir ../shared/datasets \\
        --glove ../shared/datasets/glove_6B_50d/glove.6B.50d.imdb_subset.txt.gz --glove-dim 50 \\
        embedding glove glove_scratch simple_rnn lstm

The book used glove.6B.100d; pass the 100d file with ``--glove-dim 100`` when you have it. Without
``imdb.npz`` (offline), the pre-indexed experiments use indices built from the raw reviews (see
``seqlight.data.KerasImdbDataModule``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name: (config, book best val acc, book test acc or None, book reference)
EXPERIMENTS = {
    "embedding": ("imdb_embedding", 0.7594, None, "6.1.2 Embedding(10000, 8)+Flatten, maxlen 20"),
    "glove": ("imdb_glove", 0.5723, 0.5366, "6.1.3 GloVe frozen, 200 samples"),
    "glove_scratch": ("imdb_glove_scratch", 0.5282, None, "6.1.3 same net, no GloVe"),
    "simple_rnn": ("imdb_simple_rnn", 0.8460, None, "6.2.3 SimpleRNN(32)"),
    "lstm": ("imdb_lstm", 0.8928, None, "6.2.4 LSTM(32)"),
    "lstm_reversed": ("imdb_lstm_reversed", 0.8770, None, "6.3.8 LSTM(32) on reversed reviews, Embedding 128"),
    "lstm_bidirectional": ("imdb_lstm_bidirectional", 0.8856, None, "6.3.8 Bidirectional(LSTM(32))"),
    "conv1d": ("imdb_conv1d", 0.8382, None, "6.4.3 Conv1D"),
}


def _cli(args: list[str], log_path: Path) -> str:
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with open(log_path, "a") as log:
        log.write(f"\n$ {' '.join(args)}\n")
        log.flush()
        proc = subprocess.run(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        log.write(proc.stdout)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(args)} failed (exit {proc.returncode}); see {log_path}")
    return proc.stdout


def _summary(version: Path | None) -> dict:
    """The run's ``metrics.json`` (written by seqlight.callbacks.RunSummary), the one record of its results."""
    path = version / "metrics.json" if version is not None else None
    if path is None or not path.is_file():
        raise RuntimeError(f"the run left no metrics.json ({path})")
    return json.loads(path.read_text())


def _metric(summary: dict, name: str, which: str) -> float | None:
    entry = summary["metrics"].get(name)
    return entry[which] if entry else None


def _version_dir(name: str, before: set[str]) -> Path | None:
    base = ROOT / "runs" / name
    new = sorted(set(p.name for p in base.glob("version_*")) - before, key=lambda s: int(s.split("_")[1]))
    return base / new[-1] if new else None


def run(name: str, data_dir: str, glove: str | None, glove_dim: int, extra: list[str], log_path: Path) -> dict:
    config, book_val, book_test, what = EXPERIMENTS[name]
    args = [sys.executable, "-m", "seqlight", "fit", "--config", f"configs/{config}.yaml", "--num_threads", "1",
            "--trainer.enable_progress_bar", "false", "--data.init_args.data_dir", data_dir,
            "--data.init_args.source", "real"]  # fmt: skip
    if name == "glove":
        args += ["--data.init_args.embedding_dim", str(glove_dim), "--data.init_args.glove", glove or "auto"]
    args += extra
    before = set(p.name for p in (ROOT / "runs" / config).glob("version_*"))
    started = time.time()
    _cli(args, log_path)
    version = _version_dir(config, before)
    summary = _summary(version)
    result = {
        "name": name, "what": what, "book_val": book_val, "book_test": book_test,
        "best_val": _metric(summary, "val/acc", "best"), "last_val": _metric(summary, "val/acc", "last"),
        "best_epoch": _metric(summary, "val/acc", "best_epoch"), "data": summary["data_source"],
        "minutes": (time.time() - started) / 60, "args": args[2:], "run": str(version),
    }  # fmt: skip
    if book_test is not None or name == "glove_scratch":
        ckpt = version / "checkpoints" / "last.ckpt"
        if ckpt.exists():
            test_args = [a if a != "fit" else "test" for a in args] + ["--ckpt_path", str(ckpt)]
            before = set(p.name for p in (ROOT / "runs" / config).glob("version_*"))
            _cli(test_args, log_path)
            result["test"] = _metric(_summary(_version_dir(config, before)), "test/acc", "last")
    return result


def write_table(results: list[dict], path: Path, note: str) -> None:
    lines = [
        "| experiment | book best val acc | seqlight best val acc | last val acc | test acc (book) | minutes |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        test = ""
        if r.get("test") is not None:
            test = f"{r['test']:.4f}" + (f" ({r['book_test']:.4f})" if r.get("book_test") else "")
        best = f"{r['best_val']:.4f}" if r.get("best_val") is not None else "n/a"
        last = f"{r['last_val']:.4f}" if r.get("last_val") is not None else "n/a"
        lines.append(f"| {r['what']} | {r['book_val']:.4f} | {best} | {last} | {test} | {r['minutes']:.1f} |")
    path.write_text(note + "\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiments", nargs="*", help=f"any of {', '.join(EXPERIMENTS)} (default: all)")
    p.add_argument("--data-dir", default="datasets")
    p.add_argument("--glove", default=None, help="GloVe file for 6.1.3 (default: look in the data dir)")
    p.add_argument("--glove-dim", type=int, default=100)
    p.add_argument("--out", default="runs/imdb_book_runs.md")
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more CLI arguments for every run")
    a = p.parse_args()
    unknown = [e for e in a.experiments if e not in EXPERIMENTS]
    if unknown:
        p.error(f"unknown experiment(s) {unknown}; choose from {list(EXPERIMENTS)}")
    a.experiments = a.experiments or list(EXPERIMENTS)
    out = ROOT / a.out
    out.parent.mkdir(parents=True, exist_ok=True)
    log_path = out.with_suffix(".log")
    note = f"Real-data runs ({time.strftime('%Y-%m-%d %H:%M')}), data {a.data_dir}, GloVe {a.glove} ({a.glove_dim}d)."
    results = []
    for name in a.experiments:
        print(f"== {name}: {EXPERIMENTS[name][3]}", flush=True)
        results.append(run(name, a.data_dir, a.glove, a.glove_dim, a.extra, log_path))
        print(json.dumps(results[-1]), flush=True)
        write_table(results, out, note)


if __name__ == "__main__":
    main()
