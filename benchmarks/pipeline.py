"""The pipeline around the model: a fit epoch through the CLI against a bare PyTorch loop, and start-up.

Usage:  python benchmarks/pipeline.py [--rounds 2] [--train_batches 500] [--val_batches 769] [--quick]

**Epoch.** One fit epoch of ``jena_gru.yaml`` (by default the book's 500 training and 769 validation
batches, on the offline synthetic Jena data) two ways, each in a fresh process, alternating, ``--rounds``
times:

- ``seqlight CLI``: ``python -m seqlight fit --config jena_gru --trainer.max_epochs 1`` as a user runs it
  (progress bar, TensorBoard logger, checkpoints, ``RunSummary`` with its figure, ``EpochSeeds``...), plus
  a timing callback. The epoch is timed from the first training batch's start to the end of training
  (after validation, the checkpoints and the epoch's summary); what comes before it (imports, parsing,
  reading the data, the sanity check) is the start-up, reported apart.
- ``bare PyTorch``: the same DataModule and model built from the same config, the same optimizer
  (``model.configure_optimizers()``), one torch thread as the CLI uses; per batch ``zero_grad``,
  forward, L1 loss, ``backward``, ``step``, then a ``no_grad`` pass over the validation batches that sums
  the absolute errors. Nothing else.

The target is CLI epoch <= 1.1x bare epoch; the ratio is the median of the rounds' ratios (each round runs
both sides back to back, so a busy neighbour weighs on both). Both clocks are shown: wall time, and the
process's CPU time (all its threads: TensorBoard's writer and the progress bar count), which a busy neighbour
disturbs far less than wall time. On a quiet machine, with seqlight's one torch thread, the two agree.

**Start-up.** Wall time of ``python -c "import lightning.pytorch"`` (the floor seqlight builds on),
``python -m seqlight --help``, ``python -m seqlight fit --help`` (best of ``--startup_rounds``), and the
CLI's time from process start to the first training batch (from the epoch runs, split into its phases).

The load average is printed with each table: on a shared machine read the ratios, not the seconds.
``--quick`` (a few batches, one round) is the smoke test's setting; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lightning.pytorch import Callback

HERE = Path(__file__).resolve().parent
CONFIG = "jena_gru"
TARGET = 1.1  # CLI epoch / bare epoch


# ---------------------------------------------------------------------------------------------------------
# the CLI side: a callback that writes when each phase started (time.time(), comparable across processes)


class PhaseTimer(Callback):
    """Records wall-clock marks of a one-epoch fit into ``out`` (JSON) at the end of training; with
    ``every_epoch``, also each epoch's ``[first batch start, validation end]`` (``perf_counter``) as ``epochs``."""

    def __init__(self, out: str, every_epoch: bool = False) -> None:
        self.out = Path(out)
        self.every_epoch = every_epoch
        self.epochs: list[list[float]] = []
        self.marks: dict[str, tuple[float, float]] = {}
        self._mark("built")  # imports and parsing done, classes being built

    def _mark(self, name: str) -> None:
        # wall clock (comparable across processes) and this process's CPU time (all its threads)
        self.marks.setdefault(name, (time.time(), time.process_time()))

    def setup(self, trainer, pl_module, stage: str) -> None:
        self._mark("setup")  # the Trainer is running: the model, the Trainer and the DataModule's setup are done

    def on_fit_start(self, trainer, pl_module) -> None:
        self._mark("fit_start")  # the DataModule's setup is done

    def on_sanity_check_start(self, trainer, pl_module) -> None:
        self._mark("sanity_start")

    def on_train_start(self, trainer, pl_module) -> None:
        self._mark("train_start")

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._mark("first_batch")
        if batch_idx == 0:
            self.epochs.append([time.perf_counter(), float("nan")])

    def on_validation_start(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._mark("val_start")

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._mark("val_end")
            if self.epochs:
                self.epochs[-1][1] = time.perf_counter()

    def on_train_end(self, trainer, pl_module) -> None:
        self._mark("train_end")
        record = {**self.marks, "epochs": self.epochs} if self.every_epoch else self.marks
        self.out.write_text(json.dumps(record))


def cli_command(args, out: Path, save_dir: Path) -> list[str]:
    return [
        sys.executable, "-m", "seqlight", "fit", "--config", CONFIG,
        "--data.init_args.source", "synthetic", "--data.init_args.data_dir", str(args.data_dir),
        "--trainer.max_epochs", "1", "--trainer.limit_train_batches", str(args.train_batches),
        "--trainer.limit_val_batches", str(args.val_batches),
        "--trainer.logger.init_args.save_dir", str(save_dir),
        "--trainer.callbacks+=pipeline.PhaseTimer", f"--trainer.callbacks.out={out}",
    ]  # fmt: skip


def run_cli(args, work: Path, i: int) -> dict:
    out = work / f"cli-{i}.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    log = work / f"cli-{i}.log"
    launched = time.time()
    with open(log, "w") as f:
        p = subprocess.run(cli_command(args, out, work / "runs"), cwd=work, env=env, stdout=f, stderr=f)
    ended = time.time()
    if p.returncode != 0 or not out.is_file():
        tail = log.read_text().strip().splitlines()[-5:]
        raise SystemExit(f"the CLI run failed (exit {p.returncode}):\n" + "\n".join(tail))
    m = json.loads(out.read_text())
    wall = {k: v[0] for k, v in m.items()}
    cpu = {k: v[1] for k, v in m.items()}
    sanity = wall["train_start"] - wall.get("sanity_start", wall["train_start"])
    return {
        **spans(wall, ""),
        **spans(cpu, "cpu_"),
        "first_batch": wall["first_batch"] - launched,
        "phases": {
            "imports, parsing": wall["built"] - launched,
            "building model and Trainer, data setup": wall["setup"] - wall["built"],
            "fit start": wall["fit_start"] - wall["setup"],
            "sanity check": sanity,
            "other (to the first batch)": wall["first_batch"] - wall["fit_start"] - sanity,
        },
        "exit": ended - wall["train_end"],
    }


def spans(m: dict[str, float], prefix: str) -> dict[str, float]:
    """The epoch's parts from the marks: training batches, validation, what follows it, the whole epoch."""
    return {
        prefix + "train": m["val_start"] - m["first_batch"],
        prefix + "val": m["val_end"] - m["val_start"],
        prefix + "after": m["train_end"] - m["val_end"],  # checkpoints, summaries, the figure (the epoch's end)
        prefix + "epoch": m["train_end"] - m["first_batch"],
    }


# ---------------------------------------------------------------------------------------------------------
# the bare side, in its own process (``--bare-child``)


def bare_child(args) -> None:
    import torch
    import yaml
    from lightning.fabric.utilities.seed import seed_everything

    from seqlight.cli import DATA_TO_MODEL_LINKS, _import
    from seqlight.commands import packaged_config

    cfg = yaml.safe_load(packaged_config(CONFIG).read_text())
    torch.set_num_threads(int(cfg.get("num_threads") or 1))
    seed_everything(cfg.get("seed_everything", 0), verbose=False)
    data_args = {**cfg["data"]["init_args"], "source": "synthetic", "data_dir": str(args.data_dir)}
    dm = _import(cfg["data"]["class_path"])(**data_args)
    model_cls = _import(cfg["model"]["class_path"])
    model_args = dict(cfg["model"]["init_args"])
    accepted = inspect.signature(model_cls.__init__).parameters
    for source, target in DATA_TO_MODEL_LINKS:  # as the CLI links them
        value = getattr(dm, source, None)
        if value is not None and target in accepted:
            model_args[target] = value
    model = model_cls(**model_args)
    dm.setup("fit")
    train, val = dm.train_dataloader(), dm.val_dataloader()
    opt = model.configure_optimizers()
    loss_fn = torch.nn.functional.l1_loss

    model.train()
    t0, c0 = time.perf_counter(), time.process_time()
    for i, (x, y) in enumerate(train):
        if i == args.train_batches:
            break
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    t1, c1 = time.perf_counter(), time.process_time()
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for i, (x, y) in enumerate(val):
            if i == args.val_batches:
                break
            total += float((model(x) - y).abs().sum())
            n += len(y)
    model.train()
    t2, c2 = time.perf_counter(), time.process_time()
    wall = {"first_batch": t0, "val_start": t1, "val_end": t2, "train_end": t2}
    cpu = {"first_batch": c0, "val_start": c1, "val_end": c2, "train_end": c2}
    print(json.dumps({**spans(wall, ""), **spans(cpu, "cpu_"), "val_mae": total / n}))


def run_bare(args, work: Path) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--bare-child", "--data_dir", str(args.data_dir),
           "--train_batches", str(args.train_batches), "--val_batches", str(args.val_batches)]  # fmt: skip
    p = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"the bare loop failed (exit {p.returncode}):\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------------------
# start-up


def best_wall(cmd: list[str], rounds: int, cwd: Path) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(cmd[1:])} failed (exit {p.returncode}):\n{p.stderr[-2000:]}")
        best = min(best, wall)
    return best


def startup(args, work: Path) -> dict[str, float]:
    py = sys.executable
    cmds = {
        'python -c "import lightning.pytorch"': [py, "-c", "import lightning.pytorch"],
        "python -m seqlight --help": [py, "-m", "seqlight", "--help"],
        "python -m seqlight fit --help": [py, "-m", "seqlight", "fit", "--help"],
    }
    return {name: best_wall(cmd, args.startup_rounds, work) for name, cmd in cmds.items()}


# ---------------------------------------------------------------------------------------------------------


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train_batches", type=int, default=500)
    ap.add_argument("--val_batches", type=int, default=769)
    ap.add_argument("--rounds", type=int, default=2, help="CLI and bare epochs, alternating")
    ap.add_argument("--startup_rounds", type=int, default=3, help="runs of each start-up command (best kept)")
    ap.add_argument("--data_dir", default=None, help="where the synthetic CSV is (written once; default datasets)")
    ap.add_argument("--no-epoch", action="store_true", help="start-up only")
    ap.add_argument("--no-startup", action="store_true", help="epoch only")
    ap.add_argument("--quick", action="store_true", help="smoke-test size: 8+8 batches, one round of each")
    ap.add_argument("--bare-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.train_batches, args.val_batches, args.rounds, args.startup_rounds = 8, 8, 1, 1
    if args.data_dir is None:
        from seqlight.home import resolve_home_path

        args.data_dir = resolve_home_path("datasets")
    args.data_dir = Path(args.data_dir).resolve()
    if args.bare_child:
        bare_child(args)
        return

    import torch

    print(
        f"seqlight pipeline benchmark: torch {torch.__version__}, {os.cpu_count()} CPUs, "
        f"python {sys.version.split()[0]}"
    )
    with tempfile.TemporaryDirectory(prefix="seqlight-pipeline-") as tmp:
        work = Path(tmp)
        cli_runs = None if args.no_epoch else epoch_table(args, work)
        if not args.no_startup:
            startup_table(args, work, cli_runs)


def epoch_table(args, work: Path) -> list[dict]:
    load_before = load()
    cli, bare = [], []
    for i in range(args.rounds):
        cli.append(run_cli(args, work, i))
        bare.append(run_bare(args, work))
    print(
        f"\nfit epoch of {CONFIG}.yaml: {args.train_batches} training + {args.val_batches} validation batches "
        f"(synthetic data), {args.rounds} round(s), medians; load average {load_before} before, {load()} after"
    )
    print(f"{'':<20}{'':<6}{'train s':>9}{'val s':>9}{'end s':>9}{'epoch s':>9}")
    for prefix, clock in (("", "wall"), ("cpu_", "CPU")):
        for name, runs in (("bare PyTorch loop", bare), ("seqlight CLI", cli)):
            med = {k: statistics.median(r[prefix + k] for r in runs) for k in ("train", "val", "after", "epoch")}
            print(f"{name:<20}{clock:<6}{med['train']:>9.2f}{med['val']:>9.2f}{med['after']:>9.2f}{med['epoch']:>9.2f}")
    for prefix, clock in (("", "wall"), ("cpu_", "CPU")):
        ratios = [c[prefix + "epoch"] / b[prefix + "epoch"] for c, b in zip(cli, bare)]
        ratio = statistics.median(ratios)
        parts = {
            k: statistics.median(c[prefix + k] / b[prefix + k] for c, b in zip(cli, bare)) for k in ("train", "val")
        }
        verdict = "PASS" if ratio <= TARGET else "MISS"
        print(
            f"CLI / bare, {clock:<4} epoch {ratio:.3f}x (rounds {', '.join(f'{r:.3f}' for r in ratios)}; train "
            f"{parts['train']:.3f}x, validation {parts['val']:.3f}x): target <= {TARGET}x {verdict}"
        )
    return cli


def startup_table(args, work: Path, cli_runs: list[dict] | None) -> None:
    load_before = load()
    walls = startup(args, work)
    floor = walls['python -c "import lightning.pytorch"']
    print(f"\nstart-up, best of {args.startup_rounds} (wall s); load average {load_before} before, {load()} after")
    print(f"{'':<44}{'wall s':>8}{'vs import':>11}{'added s':>9}")
    for name, wall in walls.items():
        print(f"{name:<44}{wall:>8.2f}{wall / floor:>10.2f}x{wall - floor:>9.2f}")
    if cli_runs:
        first = min(r["first_batch"] for r in cli_runs)
        name = "fit: process start to first training batch"
        print(f"{name:<44}{first:>8.2f}{first / floor:>10.2f}x{first - floor:>9.2f}")
        best = min(cli_runs, key=lambda r: r["first_batch"])
        for phase, seconds in best["phases"].items():
            print(f"  {phase:<42}{seconds:>8.2f}")
        print(f"  {'(after training: exit)':<42}{best['exit']:>8.2f}")


if __name__ == "__main__":
    main()
