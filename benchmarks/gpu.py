"""Every packaged config for a few batches on one CUDA GPU, per precision, and the recurrent layers against cuDNN.

One table, two parts:

- **configs**: ``python -m seqlight fit --config NAME`` for each config of ``seqlight.commands.config_infos()``,
  on synthetic data (``--data.init_args.source synthetic``: nothing is downloaded), one epoch of
  ``--batches`` training batches and ``--val-batches`` validation batches, on ``--trainer.accelerator gpu
  --trainer.devices 1``, in ``32-true``, ``16-mixed`` and ``bf16-mixed`` (the last only where
  ``torch.cuda.is_bf16_supported()``). Each run is its own process (a fresh CUDA context); a callback
  (:class:`StepTimer`, added with ``--trainer.callbacks+=gpu.StepTimer``) times the training steps after the
  first two (warm-up, cuDNN autotuning) with ``torch.cuda.synchronize()``, and the table shows the median step,
  training samples per second, the peak GPU memory and the last ``train/loss`` (``nan`` would flag a precision
  problem). A run that fails shows ``FAILED`` and the last line of its error.
- **recurrent**: the variants of ``benchmarks/recurrent.py`` (which has no device argument: its models and
  tensors are built on the CPU) moved to CUDA, each timed for a training step of the book's shapes against
  ``torch.nn.GRU`` / ``torch.nn.LSTM``, which run cuDNN there. The ``nn.GRUCell`` loop is left out (it draws its
  masks on the CPU).

Without CUDA it prints one line saying so and exits 0. ``--dry-run`` prints the plan (the command of every
config run) and exits 0 without running anything, on any machine.

Usage::

    python benchmarks/gpu.py                         # everything (about 10 s per config run)
    python benchmarks/gpu.py --configs jena_gru imdb_lstm --precisions 32-true bf16-mixed
    python benchmarks/gpu.py --no-configs            # the recurrent comparison only
    python benchmarks/gpu.py --dry-run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

HERE = Path(__file__).resolve().parent
PRECISIONS = ("32-true", "16-mixed", "bf16-mixed")


class StepTimer(Callback):
    """Times training steps on the GPU (after ``skip`` warm-up steps) and writes them to ``out`` as JSON."""

    def __init__(self, out: str, skip: int = 2) -> None:
        self.out, self.skip = Path(out), skip
        self.times: list[float] = []
        self.batch_sizes: list[int] = []
        self._t0 = 0.0

    def _sync(self) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def on_train_start(self, trainer, pl_module) -> None:
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._sync()
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._sync()
        if batch_idx >= self.skip:
            self.times.append(time.perf_counter() - self._t0)
            self.batch_sizes.append(len(batch[-1]) if isinstance(batch, (tuple, list)) else len(batch))

    def on_train_end(self, trainer, pl_module) -> None:
        loss = trainer.callback_metrics.get("train/loss", trainer.callback_metrics.get("train/loss_epoch"))
        record = {
            "step_s": statistics.median(self.times) if self.times else None,
            "samples_per_s": sum(self.batch_sizes) / sum(self.times) if self.times else None,
            "steps_timed": len(self.times),
            "peak_mib": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None,
            "train_loss": float(loss) if loss is not None else None,
        }
        self.out.write_text(json.dumps(record))


def config_command(
    name: str, precision: str, batches: int, val_batches: int, data_dir: Path, out: Path, accelerator: str = "gpu"
) -> list[str]:
    return [
        sys.executable, "-m", "seqlight", "fit", "--config", name,
        "--data.init_args.source", "synthetic", "--data.init_args.data_dir", str(data_dir),
        "--trainer.accelerator", accelerator, "--trainer.devices", "1", "--trainer.precision", precision,
        "--trainer.max_epochs", "1", "--trainer.limit_train_batches", str(batches),
        "--trainer.limit_val_batches", str(val_batches), "--trainer.num_sanity_val_steps", "0",
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        "--trainer.callbacks+=gpu.StepTimer", f"--trainer.callbacks.out={out}",
    ]  # fmt: skip


def run_config(name: str, precision: str, args, work: Path) -> dict:
    out = work / f"{name}-{precision}.json"
    accelerator = "cpu" if args.cpu else "gpu"
    cmd = config_command(name, precision, args.batches, args.val_batches, work / "datasets", out, accelerator)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout} s", "wall_s": time.perf_counter() - t0}
    wall = time.perf_counter() - t0
    if p.returncode != 0 or not out.is_file():
        lines = [ln for ln in (p.stderr or p.stdout).strip().splitlines() if ln.strip()]
        return {"error": (lines[-1] if lines else f"exit {p.returncode}")[:100], "wall_s": wall}
    return {**json.loads(out.read_text()), "wall_s": wall}


def _training_step(model, opt, loss_fn, x, y):
    def step() -> None:
        loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def recurrent_rows(iters: int, device: str = "cuda") -> list[tuple[str, str, float | None, float | None, str]]:
    """(shape, variant, samples/s, ratio to the cuDNN reference, error) for recurrent.py's variants on CUDA."""
    sys.path.insert(0, str(HERE))
    import recurrent  # benchmarks/recurrent.py: its variants and shapes

    from seqlight.models.common import keras_rmsprop

    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    rows = []
    for shape, variants, imdb in (
        ("Jena", recurrent.jena_variants(), False),
        ("IMDB", recurrent.imdb_variants(), True),
    ):
        ref = None
        for name, build, _target in variants:
            if "GRUCell" in name:
                continue
            try:
                torch.manual_seed(0)
                emb = torch.nn.Embedding(recurrent.VOCAB, recurrent.H) if imdb else None
                model = recurrent.LastState(build(), emb).to(dev)
                opt = keras_rmsprop(model.parameters())
                b = recurrent.B
                if imdb:
                    x = torch.randint(1, recurrent.VOCAB, (b, recurrent.T_IMDB), device=dev)
                    y = torch.randint(0, 2, (b,), device=dev).float()
                    loss_fn = torch.nn.functional.binary_cross_entropy_with_logits
                else:
                    x, y = torch.randn(b, recurrent.T_JENA, recurrent.F, device=dev), torch.randn(b, device=dev)
                    loss_fn = torch.nn.functional.l1_loss

                step = _training_step(model, opt, loss_fn, x, y)
                for _ in range(3):
                    step()
                sync()
                t0 = time.perf_counter()
                for _ in range(iters):
                    step()
                sync()
                rate = b * iters / (time.perf_counter() - t0)
                ref = rate if ref is None else ref
                rows.append((shape, name, rate, rate / ref, ""))
            except Exception as e:  # noqa: BLE001 - one failing variant must not hide the others
                rows.append((shape, name, None, None, f"{type(e).__name__}: {e}"[:80]))
    return rows


def _fmt(v, spec: str) -> str:
    return "-".rjust(int(spec.split(".")[0])) if v is None else format(v, spec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", help="config names (default: every packaged config)")
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument("--batches", type=int, default=12, help="training batches per config run (2 are warm-up)")
    parser.add_argument("--val-batches", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=300, help="seconds per config run")
    parser.add_argument("--no-configs", action="store_true", help="skip the config runs")
    parser.add_argument("--no-recurrent", action="store_true", help="skip the recurrent comparison")
    parser.add_argument("--iters", type=int, default=10, help="timed steps per recurrent variant")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and exit 0, running nothing")
    parser.add_argument("--cpu", action="store_true", help="run the plan on the CPU: a smoke test, not a benchmark")
    args = parser.parse_args(argv)

    from seqlight.commands import config_infos

    names = args.configs or [info.name for info in config_infos()]
    cuda = torch.cuda.is_available()
    if args.dry_run:
        print(f"dry run: CUDA {'available: ' + torch.cuda.get_device_name(0) if cuda else 'not available'}")
        if not args.no_configs:
            for name in names:
                for precision in args.precisions:
                    cmd = config_command(
                        name, precision, args.batches, args.val_batches, Path("WORK/datasets"), Path("WORK/out.json")
                    )
                    print(" ".join(cmd[1:]))
        if not args.no_recurrent:
            print(f"recurrent: benchmarks/recurrent.py's variants on CUDA, {args.iters} steps each, against cuDNN")
        return 0
    if not cuda and not args.cpu:
        print(f"benchmarks/gpu.py: no CUDA device (torch {torch.__version__}): nothing measured.")
        return 0

    bf16 = torch.cuda.is_bf16_supported() if not args.cpu else True
    device = "CPU (smoke test, not a benchmark)" if args.cpu else torch.cuda.get_device_name(0)
    print(
        f"{device}, torch {torch.__version__} (CUDA {torch.version.cuda}, cuDNN "
        f"{torch.backends.cudnn.version()}), {args.batches} training batches per run, the first 2 untimed; "
        f"bf16 {'supported' if bf16 else 'NOT supported'}"
    )
    lines = []
    if not args.no_configs:
        header = (
            f"{'config':26s} {'precision':10s} {'step ms':>8s} {'samples/s':>10s} {'peak MiB':>9s} {'loss':>8s} "
            f"{'wall s':>7s}"
        )
        lines += [header, "-" * len(header)]
        with tempfile.TemporaryDirectory(prefix="seqlight-gpu-") as tmp:
            work = Path(tmp)
            for name in names:
                for precision in args.precisions:
                    if precision == "bf16-mixed" and not bf16:
                        lines.append(f"{name:26s} {precision:10s} not supported on this GPU")
                        continue
                    r = run_config(name, precision, args, work)
                    if "error" in r:
                        line = f"{name:26s} {precision:10s} FAILED ({r['wall_s']:.0f} s): {r['error']}"
                    else:
                        step = None if r["step_s"] is None else 1000 * r["step_s"]
                        line = (
                            f"{name:26s} {precision:10s} {_fmt(step, '8.2f')} {_fmt(r['samples_per_s'], '10.0f')} "
                            f"{_fmt(r['peak_mib'], '9.0f')} {_fmt(r['train_loss'], '8.4f')} {r['wall_s']:7.1f}"
                        )
                    lines.append(line)
                    print(line, file=sys.stderr, flush=True)  # progress; the table comes last, on stdout
    if not args.no_recurrent:
        header = f"{'recurrent (training step, float32)':60s} {'samples/s':>10s} {'vs cuDNN':>9s}"
        lines += ["", header, "-" * len(header)]
        for shape, name, rate, ratio, err in recurrent_rows(args.iters, "cpu" if args.cpu else "cuda"):
            label = f"{shape}: {name}"
            if err:
                lines.append(f"{label:60s} FAILED: {err}")
            else:
                lines.append(f"{label:60s} {rate:10.0f} {ratio:8.2f}x")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
