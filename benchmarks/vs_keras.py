"""The book's Jena GRU in Keras 3 (TensorFlow) against seqlight, each at its defaults (optional benchmark).

Usage:  python benchmarks/vs_keras.py [--keras_python /path/to/python] [--steps 100] [--epochs 2]

Skipped, with a message and exit code 0, where no interpreter with TensorFlow and Keras 3 is found: the one
running this script, or ``--keras_python`` (e.g. a separate venv: ``python -m venv /tmp/tfvenv &&
/tmp/tfvenv/bin/pip install tensorflow-cpu keras pandas``; TensorFlow need not share seqlight's venv).

Both sides read the same CSV (``--csv``; by default seqlight's offline stand-in for the Jena file, written
once into ``--data_dir``), standardized with the mean and std of its first 200,000 rows, and run the
book's section 6.3.5 setup: GRU(32) -> Dense(1), RMSprop (Keras defaults), MAE, batches of 128 windows,
lookback 1440, step 6, delay 144, training rows drawn with replacement from 0..200000, validation on the
consecutive windows from row 200001. ``--steps`` training and as many validation batches an epoch.

- **Keras**: the book's generator (listing 6.33, transcribed below) and ``model.fit(gen, steps_per_epoch,
  validation_data=val_gen, validation_steps)``; ``layers.GRU(32, recurrent_activation=hard_sigmoid,
  reset_after=False)`` with Keras 2.0.8's ``hard_sigmoid`` (``clip(0.2 x + 0.5, 0, 1)``; Keras 3's
  built-in of that name is ``relu6(x + 3) / 6``), one bias, as the book ran it. TensorFlow's default
  threads.
- **seqlight**: ``python -m seqlight fit --config jena_gru`` (or ``jena_gru_dropout``) at its defaults (one
  torch thread, progress bar, logger, checkpoints), with ``--trainer.limit_train_batches`` and
  ``--trainer.limit_val_batches`` set to the same steps.

With recurrent dropout, both use ``dropout=0.2, recurrent_dropout=0.2`` (book 6.3.6).

Samples/s = (training + validation windows of one epoch) / that epoch's wall time, from the start of its
first training batch to the end of its validation. The last of ``--epochs`` epochs is timed, so Keras's
graph tracing and Lightning's sanity check (both in the first epoch) are left out. Each case runs quiet
and again beside a busy neighbour (a process spinning on one core). The load average is printed: on a
shared machine "quiet" is only as quiet as the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BATCH, LOOKBACK, STEP, DELAY = 128, 1440, 6, 144
TRAIN_MAX, VAL_MIN, VAL_MAX = 200000, 200001, 300000
CASES = {"GRU": ("jena_gru", 0.0), "GRU + dropout": ("jena_gru_dropout", 0.2)}


# ---------------------------------------------------------------------------------------------------------
# the Keras side (runs under --keras_python: imports nothing from seqlight)


def book_generator(data, lookback, delay, min_index, max_index, shuffle=False, batch_size=128, step=6):
    """Listing 6.33 of the book, as printed (NumPy's global generator draws the rows)."""
    import numpy as np

    if max_index is None:
        max_index = len(data) - delay - 1
    i = min_index + lookback
    while 1:
        if shuffle:
            rows = np.random.randint(min_index + lookback, max_index, size=batch_size)
        else:
            if i + batch_size >= max_index:
                i = min_index + lookback
            rows = np.arange(i, min(i + batch_size, max_index))
            i += len(rows)
        samples = np.zeros((len(rows), lookback // step, data.shape[-1]))
        targets = np.zeros((len(rows),))
        for j, _row in enumerate(rows):
            indices = range(rows[j] - lookback, rows[j], step)
            samples[j] = data[indices]
            targets[j] = data[rows[j] + delay][1]
        yield samples, targets


def read_book_csv(path: str):
    """The book's parsing (listing 6.28-6.32): every column but the date, standardized on the first 200,000
    rows."""
    import numpy as np

    with open(path) as f:
        lines = f.read().split("\n")[1:]
    lines = [ln for ln in lines if ln.strip()]
    float_data = np.zeros((len(lines), len(lines[0].split(",")) - 1))
    for i, line in enumerate(lines):
        float_data[i, :] = [float(x) for x in line.split(",")[1:]]
    mean = float_data[:TRAIN_MAX].mean(axis=0)
    float_data -= mean
    std = float_data[:TRAIN_MAX].std(axis=0)
    float_data /= std
    return float_data


def keras_child(args) -> None:
    import numpy as np

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    from keras import layers

    float_data = read_book_csv(args.csv)
    np.random.seed(0)
    keras.utils.set_random_seed(0)
    train_gen = book_generator(float_data, LOOKBACK, DELAY, 0, TRAIN_MAX, shuffle=True, step=STEP, batch_size=BATCH)
    val_gen = book_generator(float_data, LOOKBACK, DELAY, VAL_MIN, VAL_MAX, step=STEP, batch_size=BATCH)

    def hard_sigmoid_keras2(x):  # Keras 2.0.8's hard_sigmoid
        return keras.ops.clip(0.2 * x + 0.5, 0.0, 1.0)

    model = keras.Sequential(
        [
            keras.Input((None, float_data.shape[-1])),
            layers.GRU(
                32,
                recurrent_activation=hard_sigmoid_keras2,
                reset_after=False,
                dropout=args.dropout,
                recurrent_dropout=args.dropout,
            ),
            layers.Dense(1),
        ]
    )
    model.compile(optimizer=keras.optimizers.RMSprop(), loss="mae")

    marks: list[tuple[str, int, float]] = []

    class Marks(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0:
                marks.append(("start", self.epoch, time.perf_counter()))

        def on_epoch_end(self, epoch, logs=None):  # after the epoch's validation
            marks.append(("end", epoch, time.perf_counter()))

    model.fit(
        train_gen,
        steps_per_epoch=args.steps,
        epochs=args.epochs,
        validation_data=val_gen,
        validation_steps=args.steps,
        callbacks=[Marks()],
        verbose=0,
    )
    last = args.epochs - 1
    start = next(t for kind, e, t in marks if kind == "start" and e == last)
    end = next(t for kind, e, t in marks if kind == "end" and e == last)
    print(json.dumps({"epoch_s": end - start, "keras": keras.__version__, "backend": keras.backend.backend()}))


def keras_available(python: str) -> str | None:
    """``"keras X on tensorflow Y"`` where ``python`` can import both, else None."""
    code = (
        "import os; os.environ['TF_CPP_MIN_LOG_LEVEL']='2'; import tensorflow as tf, keras; "
        "print(f'keras {keras.__version__} on tensorflow {tf.__version__}')"
    )
    try:
        p = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if p.returncode != 0 or not p.stdout.strip().startswith("keras 3"):
        return None
    return p.stdout.strip().splitlines()[-1]


def run_keras(args, dropout: float) -> float:
    cmd = [args.keras_python, str(Path(__file__).resolve()), "--keras-child", "--csv", str(args.csv),
           "--steps", str(args.steps), "--epochs", str(args.epochs), "--dropout", str(dropout)]  # fmt: skip
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"the Keras run failed (exit {p.returncode}):\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])["epoch_s"]


# ---------------------------------------------------------------------------------------------------------
# the seqlight side: the CLI at its defaults, timed by benchmarks/pipeline.py's PhaseTimer


def run_seqlight(args, config: str, work: Path) -> float:
    out = work / f"{config}.json"
    out.unlink(missing_ok=True)
    cmd = [
        sys.executable, "-m", "seqlight", "fit", "--config", config,
        "--data.init_args.path", str(args.csv),
        "--trainer.max_epochs", str(args.epochs), "--trainer.limit_train_batches", str(args.steps),
        "--trainer.limit_val_batches", str(args.steps),
        "--trainer.logger.init_args.save_dir", str(work / "runs"),
        "--trainer.callbacks+=pipeline.PhaseTimer", f"--trainer.callbacks.out={out}",
        "--trainer.callbacks.every_epoch=true",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    log = work / f"{config}.log"
    with open(log, "w") as f:
        p = subprocess.run(cmd, cwd=work, env=env, stdout=f, stderr=f)
    if p.returncode != 0 or not out.is_file():
        raise SystemExit(f"the seqlight run failed (exit {p.returncode}):\n" + log.read_text()[-3000:])
    epochs = json.loads(out.read_text())["epochs"]
    start, end = epochs[-1]
    return end - start


# ---------------------------------------------------------------------------------------------------------


class BusyNeighbour:
    """A process spinning on one core for as long as the ``with`` block lasts."""

    def __enter__(self):
        self.p = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        self.p.kill()
        self.p.wait()


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keras_python", default=sys.executable, help="an interpreter with tensorflow and keras 3")
    ap.add_argument("--csv", default=None, help="a Jena CSV (default: the offline stand-in in --data_dir)")
    ap.add_argument("--data_dir", default=None, help="where the offline stand-in is written (default datasets)")
    ap.add_argument("--steps", type=int, default=100, help="training and validation batches an epoch")
    ap.add_argument("--epochs", type=int, default=2, help="epochs per run; the last one is timed")
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--no-busy", action="store_true", help="skip the runs beside a busy neighbour")
    ap.add_argument("--keras-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--dropout", type=float, default=0.0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.keras_child:
        keras_child(args)
        return

    found = keras_available(args.keras_python)
    if found is None:
        print(
            f"vs_keras: skipped: {args.keras_python} cannot import TensorFlow and Keras 3. Install them (better in a "
            "separate venv: python -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu keras pandas) "
            "and pass --keras_python /tmp/tfvenv/bin/python."
        )
        return
    if args.csv is None:
        from seqlight.data.jena import SYNTHETIC_FILENAME
        from seqlight.data.jena_synthetic import write_jena_csv
        from seqlight.home import resolve_home_path

        args.csv = resolve_home_path(args.data_dir or "datasets") / SYNTHETIC_FILENAME
        if not args.csv.is_file():
            args.csv.parent.mkdir(parents=True, exist_ok=True)
            write_jena_csv(args.csv)
    args.csv = Path(args.csv).resolve()

    import torch

    samples = 2 * args.steps * BATCH
    print(
        f"Jena GRU, book 6.3.5: {found} vs seqlight (torch {torch.__version__}); {args.steps} training + "
        f"{args.steps} validation batches of {BATCH} an epoch, epoch {args.epochs} of {args.epochs} timed; "
        f"{os.cpu_count()} CPUs; {args.csv.name}"
    )
    print(f"{'case':<16}{'neighbour':<11}{'Keras /s':>10}{'seqlight /s':>13}{'seqlight/Keras':>16}  load average")
    with tempfile.TemporaryDirectory(prefix="seqlight-vs-keras-") as tmp:
        work = Path(tmp)
        for case in args.cases:
            config, dropout = CASES[case]
            for busy in (False, True) if not args.no_busy else (False,):
                before = load()
                if busy:
                    with BusyNeighbour():
                        k, s = run_keras(args, dropout), run_seqlight(args, config, work)
                else:
                    k, s = run_keras(args, dropout), run_seqlight(args, config, work)
                print(
                    f"{case:<16}{'busy' if busy else 'none':<11}{samples / k:>10,.0f}{samples / s:>13,.0f}"
                    f"{k / s:>15.2f}x  {before} -> {load()}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
