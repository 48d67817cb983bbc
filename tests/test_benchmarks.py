"""benchmarks/gpu.py is prepared to run on a CUDA machine; here (CPU) it must still parse, plan and exit 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from seqlight.commands import config_infos

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"


def _gpu(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_gpu_benchmark_dry_run_plans_every_config_and_precision():
    p = _gpu("--dry-run")
    assert p.returncode == 0, p.stderr[-3000:]
    plan = [line for line in p.stdout.splitlines() if line.startswith("-m seqlight fit")]
    assert len(plan) == 3 * len(config_infos())
    for info in config_infos():
        for precision in ("32-true", "16-mixed", "bf16-mixed"):
            assert any(
                f"--config {info.name} " in line and f"--trainer.precision {precision} " in line for line in plan
            )
    assert all("--data.init_args.source synthetic" in line for line in plan)
    assert "recurrent:" in p.stdout


def test_gpu_benchmark_without_cuda_says_so_and_exits_0():
    if torch.cuda.is_available():
        return  # on a GPU machine the script measures; nothing to check cheaply here
    p = _gpu("--configs", "jena_dense")
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.strip().splitlines() == [p.stdout.strip()] and "no CUDA" in p.stdout


def test_step_timer_records_cpu_steps(tmp_path):
    """The timing callback itself, on a tiny CPU fit (it only synchronizes where CUDA exists)."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import gpu
    finally:
        sys.path.remove(str(SCRIPT.parent))
    import json

    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, TensorDataset

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 1)

        def training_step(self, batch, batch_idx):
            loss = torch.nn.functional.l1_loss(self.lin(batch[0]).squeeze(-1), batch[1])
            self.log("train/loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = DataLoader(TensorDataset(torch.randn(40, 3), torch.randn(40)), batch_size=4)
    out = tmp_path / "t.json"
    trainer = pl.Trainer(
        max_epochs=1, limit_train_batches=6, callbacks=[gpu.StepTimer(str(out))], accelerator="cpu",
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(Tiny(), data)
    record = json.loads(out.read_text())
    assert record["steps_timed"] == 4 and record["samples_per_s"] > 0 and record["train_loss"] is not None


def test_gpu_benchmark_cpu_smoke_run(tmp_path):
    """The plan's command line works: one config run through the Trainer on the CPU (--cpu), timed."""
    p = _gpu("--cpu", "--configs", "jena_dense", "--precisions", "32-true", "--batches", "4", "--no-recurrent")
    assert p.returncode == 0, p.stderr[-3000:]
    (line,) = [ln for ln in p.stdout.splitlines() if ln.startswith("jena_dense")]
    assert "FAILED" not in line and "32-true" in line


def test_recurrent_benchmark_smoke_run_prints_every_target():
    """benchmarks/recurrent.py on tiny shapes (--smoke): every variant runs, every target of issue 10 is printed
    with its ratio and PASS or MISS, with the load average (the values themselves mean nothing here)."""
    script = SCRIPT.parent / "recurrent.py"
    p = subprocess.run(
        [sys.executable, str(script), "--smoke", "--threads", "1", "--rounds", "1", "--iters", "1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    out = p.stdout
    assert "load average before" in out and "targets at 1 thread: median over rounds" in out
    lines = [line for line in out.splitlines() if line.rstrip().endswith(("PASS", "MISS"))]
    for what in (
        "LSTM, Keras 2.0.8 (hard_sigmoid, loop) / torch.nn.LSTM",
        "GRU, Keras 2.0.8 (hard_sigmoid, reset before) / torch.nn.GRU",
        "GRU, Keras 2.0.8 + dropout+rec. dropout 0.2 / torch.nn.GRU",
        "LSTM, Keras 2.0.8, masked (pre-padded) / same layer unmasked",
        "GRU, Keras 2.0.8, masked (pre-padded) / same layer unmasked",
        "GRU, nn.GRU's semantics on the custom loop / torch.nn.GRU",
    ):
        assert any(line.strip().startswith(what) for line in lines), what
