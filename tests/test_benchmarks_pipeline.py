"""benchmarks/pipeline.py runs end to end at its smoke-test size (a few batches; its timings mean nothing here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "pipeline.py"


def test_pipeline_benchmark_quick_run_prints_both_tables(tmp_path):
    p = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--data_dir", str(tmp_path / "datasets")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    out = p.stdout
    assert "8 training + 8 validation batches" in out and "load average" in out
    for clock in ("wall", "CPU"):
        (line,) = [ln for ln in out.splitlines() if ln.startswith(f"CLI / bare, {clock}")]
        assert "target <= 1.1x" in line and ("PASS" in line or "MISS" in line)
    for name in ("bare PyTorch loop", "seqlight CLI"):
        assert name in out
    for name in ("import lightning.pytorch", "seqlight --help", "seqlight fit --help", "to first training batch"):
        assert name in out
    assert (tmp_path / "datasets" / "jena_climate_synthetic.csv").is_file()  # the offline data both sides read


def test_vs_keras_is_skipped_with_a_message_without_tensorflow(tmp_path):
    """benchmarks/vs_keras.py is optional: where the interpreter has no TensorFlow/Keras 3 it says how to get
    them and exits 0 (here --keras_python names an interpreter that certainly lacks them)."""
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    script = SCRIPT.parent / "vs_keras.py"
    p = subprocess.run(
        [sys.executable, str(script), "--keras_python", str(fake)], capture_output=True, text=True, timeout=120
    )
    assert p.returncode == 0, p.stderr[-2000:]
    assert "skipped" in p.stdout and "pip install tensorflow-cpu keras" in p.stdout
