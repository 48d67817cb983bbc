"""Training under CPU bf16 autocast (Lightning's ``bf16-mixed``) on every x86 CPU, whichever kernels oneDNN has.

oneDNN has a bf16 LSTM only on CPUs with AVX-512: on an AVX2-only CPU ``torch.nn.LSTM`` raises under CPU bf16
autocast. These tests check that capability instead of assuming it, so they pass on both kinds of CPU, and
``test_as_an_avx2_only_cpu`` reruns them in a subprocess with ``ONEDNN_MAX_CPU_ISA=AVX2``, which makes oneDNN
behave as on an AVX2-only CPU (its bf16 LSTM then fails here as it does there).
"""

from __future__ import annotations

import logging
import os
import platform
import subprocess
import sys

import pytest
import torch

from seqlight.nn import GRU, LSTM, Bidirectional, SimpleRNN, _fused

I, H, B, T = 5, 4, 3, 12
# Set by test_as_an_avx2_only_cpu for its subprocess: "0" when oneDNN there must lack the bf16 LSTM.
EXPECT_BF16_LSTM = os.environ.get("SEQLIGHT_TEST_EXPECT_BF16_LSTM")

# Every layer, with the options that change the execution path (fused kernel, input-dropout mask in front of it,
# batch-shared recurrent dropout folded into its weights, custom loop, per-gate masks, stacking, go_backwards).
CASES = {
    "rnn": lambda: SimpleRNN(I, H),
    "rnn-relu-dropout": lambda: SimpleRNN(I, H, activation="relu", dropout=0.2),
    "rnn-loop-recurrent_dropout": lambda: SimpleRNN(I, H, recurrent_dropout=0.2),
    "rnn-elu": lambda: SimpleRNN(I, H, activation="elu"),
    "gru": lambda: GRU(I, H),
    "gru-keras2": lambda: GRU(I, H, reset_after=False, recurrent_activation="hard_sigmoid", recurrent_dropout=0.2),
    "gru-stacked-batch_masks-backwards": lambda: GRU(
        I, H, num_layers=2, dropout=0.2, recurrent_dropout=0.2, recurrent_dropout_mode="batch", go_backwards=True
    ),
    "gru-softsign-loop": lambda: GRU(I, H, activation="softsign", use_fused=False),
    "lstm": lambda: LSTM(I, H),
    "lstm-keras2": lambda: LSTM(I, H, recurrent_activation="hard_sigmoid"),
    "lstm-stacked-batch_masks-backwards": lambda: LSTM(
        I, H, num_layers=2, dropout=0.2, recurrent_dropout=0.2, recurrent_dropout_mode="batch", go_backwards=True
    ),
    "lstm-per_sample_masks": lambda: LSTM(I, H, dropout=0.2, recurrent_dropout=0.2),
    "lstm-relu-torch_init": lambda: LSTM(I, H, activation="relu", initializer="torch", unit_forget_bias=False),
    "bi-lstm-ave": lambda: Bidirectional(LSTM(I, H), merge_mode="ave"),
    "bi-gru-concat": lambda: Bidirectional(GRU(I, H)),
    "bi-lstm-keras2-mul": lambda: Bidirectional(LSTM(I, H, recurrent_activation="hard_sigmoid"), "mul"),
    "bi-rnn-sum": lambda: Bidirectional(SimpleRNN(I, H), "sum"),
}


@pytest.fixture
def fresh_probe(monkeypatch, caplog):
    """Forget what earlier tests learnt about the kernels, so that the probe and its log run again."""
    monkeypatch.setattr(_fused, "_RUNS", {})
    caplog.set_level(logging.WARNING, logger="seqlight.nn")
    return caplog


def _fallback_logs(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "seqlight.nn" and "autocast" in r.getMessage()]


def _torch_lstm_runs_under_bf16_autocast() -> bool:
    """The capability these tests depend on: does oneDNN have a bf16 LSTM on this CPU?"""
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            torch.nn.LSTM(I, H, batch_first=True)(torch.randn(2, 3, I))
    except RuntimeError:
        return False
    return True


def _run(layer, x, autocast: bool, seed: int = 1):
    """Output and parameter gradients of one training step, with the same dropout masks for every call."""
    torch.manual_seed(seed)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out, _ = layer(x)
        loss = out.float().pow(2).mean()
    params = [p for p in layer.parameters()]
    grads = torch.autograd.grad(loss, params)
    return out, grads


def _assert_trains_like_float32(layer, x):
    """A bf16-autocast training step gives finite, non-zero gradients, and outputs and gradients within bf16
    rounding of the float32 step. The bounds are twice the worst seen over 20 seeds: bf16 keeps 8 significant
    bits, and SimpleRNN keeps its state in bf16, so the error compounds over the T steps (up to 2% of the
    outputs' range, 7% of a gradient's norm); a broken path (a mask or a state lost) is off by tens of percent."""
    out, grads = _run(layer, x, autocast=True)
    ref, ref_grads = _run(layer, x, autocast=False)
    _assert_bf16_close(out, ref)
    for g, r in zip(grads, ref_grads):
        assert torch.isfinite(g).all()
        assert float((g.float() - r).norm()) <= 0.15 * float(r.norm()) + 1e-4
    assert sum(float(g.abs().sum()) for g in grads) > 0
    layer.eval()
    with torch.no_grad():
        ref = layer(x)[0]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            _assert_bf16_close(layer(x)[0], ref)


def _assert_bf16_close(out, ref):
    assert out.shape == ref.shape
    err = float((out.detach().float() - ref.detach()).abs().max())
    assert err <= 0.04 * float(ref.detach().abs().max()) + 1e-3, err


@pytest.mark.parametrize("case", list(CASES))
def test_every_layer_trains_under_cpu_bf16_autocast(case):
    torch.manual_seed(0)
    _assert_trains_like_float32(CASES[case](), torch.randn(B, T, I))


def test_lstm_falls_back_exactly_where_torch_lstm_fails(fresh_probe):
    """Where oneDNN has no bf16 LSTM, seqlight's LSTM runs the kernel in float32 (its output says so) and says why
    once; where it has one, the LSTM runs in bf16 and nothing is logged. GRU and RNN kernels run everywhere."""
    torch_ok = _torch_lstm_runs_under_bf16_autocast()
    if EXPECT_BF16_LSTM is not None:  # the subprocess of test_as_an_avx2_only_cpu: the reproduction must hold
        assert torch_ok == bool(int(EXPECT_BF16_LSTM)), "ONEDNN_MAX_CPU_ISA did not change oneDNN's bf16 LSTM"
    x = torch.randn(B, T, I)
    for _ in range(3):
        for layer in (LSTM(I, H), LSTM(I, H, num_layers=2), Bidirectional(LSTM(I, H)), GRU(I, H), SimpleRNN(I, H)):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out, _ = layer(x)
            if isinstance(layer, GRU):
                assert out.dtype == torch.float32  # PyTorch's GRU cell keeps its state in float32 under autocast
            elif isinstance(layer, SimpleRNN) or torch_ok:
                assert out.dtype == torch.bfloat16
            else:
                assert out.dtype == torch.float32  # the fallback: the recurrence ran in float32
    logs = _fallback_logs(fresh_probe)
    if torch_ok:
        assert logs == []
    else:
        assert len(logs) == 1 and "LSTM" in logs[0] and "primitive descriptor" in logs[0], logs


def test_forced_refusal_trains_every_lstm(fresh_probe, monkeypatch):
    """Make the LSTM kernel refuse autocast the way oneDNN does on an AVX2-only CPU, on any machine: every LSTM
    option still trains, within bf16 rounding of float32, and the reason is logged once."""
    real = torch._VF.lstm

    def avx2_onednn_lstm(*args, **kwargs):
        if torch.is_autocast_enabled("cpu"):
            raise RuntimeError("could not create a primitive descriptor for the LSTM forward propagation primitive.")
        return real(*args, **kwargs)

    monkeypatch.setattr(torch._VF, "lstm", avx2_onednn_lstm)
    assert not _torch_lstm_runs_under_bf16_autocast()  # the refusal is in place, for torch.nn.LSTM too
    torch.manual_seed(0)
    x = torch.randn(B, T, I)
    for case in [c for c in CASES if "lstm" in c]:
        _assert_trains_like_float32(CASES[case](), x)
    logs = _fallback_logs(fresh_probe)
    assert len(logs) == 1 and "LSTM" in logs[0] and "primitive descriptor" in logs[0], logs


def test_probe_leaves_the_random_stream_alone(fresh_probe):
    """The probe runs inside the first autocast call: it must not shift the dropout masks a seed gives."""
    layer = LSTM(I, H, dropout=0.5)
    x = torch.randn(B, T, I)
    first, _ = _run(layer, x, autocast=True)  # probes
    second, _ = _run(layer, x, autocast=True)  # cached answer
    torch.testing.assert_close(first, second, atol=0, rtol=0)


def test_probe_runs_inside_inference_mode(fresh_probe):
    """A first autocast call under inference_mode must not conclude that the kernel cannot run."""
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        LSTM(I, H)(torch.randn(B, T, I))
    assert all(ok == _torch_lstm_runs_under_bf16_autocast() for k, ok in _fused._RUNS.items() if k[0] == "lstm")
    assert _fused._RUNS


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="ONEDNN_MAX_CPU_ISA is x86's")
def test_as_an_avx2_only_cpu():
    """Run this file's tests with oneDNN limited to AVX2, as on the CPUs where bf16-mixed used to crash."""
    env = dict(os.environ, ONEDNN_MAX_CPU_ISA="AVX2", SEQLIGHT_TEST_EXPECT_BF16_LSTM="0", OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k", "not avx2_only_cpu"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "skipped" not in proc.stdout and "failed" not in proc.stdout
