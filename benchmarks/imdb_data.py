"""IMDB data preparation: first and second start, and peak memory of a fit epoch, against the issue's targets.

For each config (``imdb_lstm``: :class:`~seqlight.data.KerasImdbDataModule`, ``imdb_glove``:
:class:`~seqlight.data.ImdbDataModule` with GloVe), in fresh processes and a fresh cache folder:

1. **first start**: ``prepare_data()`` + ``setup("fit")`` with an empty corpus cache (tokenizes 50,000 reviews
   and writes the cache entry);
2. **second start**: the same in a new process, reading the cache. Target: <= 2 s.

Then ``python -m seqlight fit --config imdb_lstm ... --trainer.max_epochs 1`` (one full epoch unless
``--fit-batches``), once with an empty cache and once with a warm one: the peak resident memory of the whole
process (DataModule setup, model, one training epoch and its validation). Target: <= 1 GB.

Each time is the process's own measurement around the DataModule calls (imports excluded), each peak the
child's ``ru_maxrss``. The load average is printed beside each table: on a busy machine times grow.

Usage::

    python benchmarks/imdb_data.py [--data-dir ../shared/datasets] [--glove PATH] [--fit-batches N] [--skip-fit]

``--data-dir`` must hold the real reviews (``aclImdb/`` or its tarball, directly or in ``aclImdb/``); with
``../shared/datasets`` the tarball is unpacked once into the benchmark's temporary cache folder. ``--glove``
defaults to the 50d file found in ``--data-dir`` (the shared datasets' ``glove_6B_50d`` subset included).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PREP_TARGET_S = 2.0
RSS_TARGET_MB = 1024.0

CHILD = r"""
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
import yaml
from importlib import import_module
from importlib.resources import files
cfg = yaml.safe_load(files("seqlight.configs").joinpath(sys.argv[1] + ".yaml").read_text())
module, _, name = cfg["data"]["class_path"].rpartition(".")
kwargs = dict(cfg["data"].get("init_args") or {})
kwargs.update(json.loads(sys.argv[2]))
dm = getattr(import_module(module), name)(**kwargs)
t = time.perf_counter()
dm.prepare_data()
dm.setup("fit")
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak, "hit": dm.cache_hit, "data": dm.source_description,
                  "train": len(dm.train_set), "val": len(dm.val_set)}))
"""


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def _run(cmd: list[str], env: dict, cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``cmd``; its peak RSS in MB (a child's ru_maxrss: the largest of the children waited for so far, so
    every measurement runs in a fresh wrapper process that reports its own single child)."""
    wrapper = (
        "import resource, subprocess, sys\n"
        "p = subprocess.run(sys.argv[1:])\n"
        "print('PEAK_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(p.returncode)\n"
    )
    p = subprocess.run([sys.executable, "-c", wrapper, *cmd], env=env, cwd=cwd, capture_output=True, text=True)
    peak = [line for line in p.stderr.splitlines() if line.startswith("PEAK_KB")]
    return p, (int(peak[-1].split()[1]) / 1024 if peak else float("nan"))


def _mark(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def prep_rows(config: str, overrides: dict, cache: Path, env: dict, cwd: Path) -> list[tuple]:
    env = dict(env, SEQLIGHT_CACHE=str(cache))
    rows = []
    for start in ("first start (cold cache)", "second start (cache)"):
        p, _ = _run([sys.executable, "-c", CHILD, config, json.dumps(overrides)], env, cwd)
        if p.returncode != 0:
            sys.exit(f"{config} {start} failed:\n{p.stderr[-3000:]}")
        r = json.loads(p.stdout.strip().splitlines()[-1])
        rows.append((config, start, r["seconds"], r["peak_mb"], r["hit"], r["data"]))
    return rows


def fit_row(data_dir: str, cache: Path, env: dict, cwd: Path, batches: int | None, label: str) -> tuple:
    cmd = [sys.executable, "-m", "seqlight", "fit", "--config", "imdb_lstm", "--data.init_args.source", "real",
           "--data.init_args.data_dir", data_dir, "--data.init_args.download", "false", "--trainer.max_epochs", "1",
           "--trainer.enable_progress_bar", "false",
           "--trainer.logger.init_args.save_dir", str(cwd / "runs")]  # fmt: skip
    if batches:
        cmd += ["--trainer.limit_train_batches", str(batches)]
    p, peak = _run(cmd, dict(env, SEQLIGHT_CACHE=str(cache)), cwd)
    if p.returncode != 0:
        sys.exit(f"fit failed:\n{p.stderr[-3000:]}")
    return label, peak


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "datasets"))
    ap.add_argument("--glove", default=None, help="a glove.6B.50d.txt(.gz) file (default: found in --data-dir)")
    ap.add_argument("--fit-batches", type=int, default=None, help="limit_train_batches (default: a full epoch)")
    ap.add_argument("--skip-fit", action="store_true")
    args = ap.parse_args(argv)

    data_dir = str(Path(args.data_dir).resolve())
    glove = args.glove
    if glove is None:
        from seqlight.data.imdb import locate_glove

        d = Path(data_dir)
        found = [locate_glove(d, 50)] + sorted((d / "glove_6B_50d").glob("glove.6B.50d*.txt*"))
        glove = next((str(p) for p in found if p is not None), None)
    work = Path(tempfile.mkdtemp(prefix="seqlight-imdb-bench-"))
    env = dict(os.environ, SEQLIGHT_NUM_THREADS=os.environ.get("SEQLIGHT_NUM_THREADS", "1"))
    try:
        shared = work / "cache-unpacked"  # the tarball, unpacked once for all runs (not part of any timing)
        real = {"source": "real", "data_dir": data_dir, "download": False}
        from seqlight.data.imdb import locate_acl_imdb

        os.environ["SEQLIGHT_CACHE"] = str(shared)
        root = locate_acl_imdb(data_dir)
        if root is None:
            sys.exit(f"no aclImdb (folder or tarball) in {data_dir}: this benchmark needs the real reviews")
        real["data_dir"] = str(root.parent)
        rows = prep_rows("imdb_lstm", real, work / "cache-lstm", env, work)
        if glove:
            rows += prep_rows("imdb_glove", {**real, "glove": glove, "embedding_dim": 50}, work / "cache-glove", env,
                              work)  # fmt: skip
        print(f"\nIMDB data preparation (prepare_data + setup('fit'), imports excluded); {_load()}")
        print(f"{'config':<12} {'start':<26} {'seconds':>8} {'peak RSS MB':>12}  {'cache hit':<9} target <= 2 s")
        for config, start, sec, peak, hit, _ in rows:
            verdict = _mark(sec <= PREP_TARGET_S) if hit else "(reference)"
            print(f"{config:<12} {start:<26} {sec:8.2f} {peak:12.0f}  {hit!s:<9} {verdict}")
        print(f"data: {rows[0][5]}")
        if not glove:
            print("imdb_glove skipped: no glove.6B.50d file (pass --glove)")
        if not args.skip_fit:
            what = f"{args.fit_batches} training batches" if args.fit_batches else "one full epoch"
            fits = [
                fit_row(real["data_dir"], work / "cache-fit", env, work, args.fit_batches, "fit, cold cache"),
                fit_row(real["data_dir"], work / "cache-fit", env, work, args.fit_batches, "fit, warm cache"),
            ]
            print(f"\nimdb_lstm fit, {what} + validation: peak RSS of the process; {_load()}")
            for label, peak in fits:
                print(f"{label:<20} {peak:8.0f} MB  target <= {RSS_TARGET_MB:.0f} MB  {_mark(peak <= RSS_TARGET_MB)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
