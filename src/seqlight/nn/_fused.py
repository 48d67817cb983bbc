"""PyTorch's fused recurrent kernels: one call for the four kinds, and whether it runs under the active autocast.

The fused kernels (``torch._VF.lstm/gru/rnn_tanh/rnn_relu``: oneDNN on CPU, cuDNN on GPU) do not exist for
every dtype on every machine. oneDNN has a bf16 LSTM only on CPUs with AVX-512 (``torch.ops.mkldnn.
_is_mkldnn_bf16_supported()``); on an AVX2-only CPU, ``torch.nn.LSTM`` under ``torch.autocast("cpu",
torch.bfloat16)`` (Lightning's ``precision="bf16-mixed"``) raises "could not create a primitive descriptor for
the LSTM forward propagation primitive". The same happens under CPU fp16 autocast on CPUs without AVX-512 FP16,
while the GRU and RNN kernels (PyTorch's own loop around autocast matmuls) run everywhere.

Rather than predicting from CPU flags which kernel oneDNN has for which dtype (the answer changes with the
oneDNN version, the dtype and ``ONEDNN_MAX_CPU_ISA``), :func:`runs_under_autocast` runs the kernel once per
process on a tiny input under the active autocast and remembers the answer. Where it fails, the layer runs the
same kernel with autocast off for the recurrence, in the parameters' dtype (float32): what autocast itself
does for ops it has no lower-precision kernel for. The reason is logged once per process (logger
``seqlight.nn``).
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor

__all__ = ["autocast_dtype", "call", "kernel", "runs_under_autocast"]

_log = logging.getLogger("seqlight.nn")

# (kind, activation, device, autocast dtype) -> whether the fused kernel ran there.
_RUNS: dict[tuple, bool] = {}
# One C call (~70 ns, where x.device.type alone takes ~200 ns): all the dispatch check costs without autocast.
_any_autocast = getattr(torch._C, "_is_any_autocast_enabled", lambda: True)


def autocast_dtype(device_type: str) -> torch.dtype | None:
    """The dtype autocast computes in on ``device_type``, or None when autocast is off there."""
    # is_autocast_available first: is_autocast_enabled raises for device types autocast lacks (e.g. "meta").
    if torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return None


def kernel(kind: str, activation: str):
    """The fused kernel of a layer kind: ``torch._VF.lstm``, ``gru``, ``rnn_tanh`` or ``rnn_relu``."""
    if kind == "simple_rnn":
        return torch._VF.rnn_tanh if activation == "tanh" else torch._VF.rnn_relu
    return {"lstm": torch._VF.lstm, "gru": torch._VF.gru}[kind]


def call(fn, x: Tensor, h0: Tensor, c0: Tensor | None, params: list, train: bool):
    """One batch-first, one-direction, one-layer call of the fused kernel ``fn`` (:func:`kernel`); returns
    ``(out, h_n, c_n or None)``.

    ``h0``, ``c0``: ``(1, B, H)`` (``c0`` for the LSTM, else None); ``params``: ``[w_ih, w_hh, b_ih, b_hh]`` in
    PyTorch's gate order, or ``[w_ih, w_hh]`` without biases.
    """
    flags = dict(
        has_biases=len(params) == 4, num_layers=1, dropout=0.0, train=train, bidirectional=False, batch_first=True
    )
    if c0 is not None:
        out, h, c = fn(x, (h0, c0), params, **flags)
        return out, h, c
    out, h = fn(x, h0, params, **flags)
    return out, h, None


def runs_under_autocast(kind: str, activation: str, device: torch.device) -> bool:
    """Whether the fused kernel of ``kind`` runs under the autocast now active on ``device``'s type.

    True at once when autocast is off. Otherwise the answer of :func:`_probe` for this kind, device and
    autocast dtype, computed once per process.
    """
    if not _any_autocast():
        return True
    dtype = autocast_dtype(device.type)
    if dtype is None:
        return True
    key = (kind, activation if kind == "simple_rnn" else "tanh", str(device), dtype)
    ok = _RUNS.get(key)
    if ok is None:
        reason = _probe(kind, key[1], device, dtype)
        ok = _RUNS[key] = reason is None
        if reason is not None:
            name = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "RNN"}[kind]
            hint = ""
            if device.type == "cpu" and dtype == torch.bfloat16:
                hint = (
                    " On CPUs, oneDNN has a bf16 LSTM only with AVX-512 "
                    f"(torch.ops.mkldnn._is_mkldnn_bf16_supported() is {_mkldnn_bf16()})."
                )
            _log.warning(
                "PyTorch's fused %s kernel does not run under %s autocast to %s on this machine (%s). seqlight.nn "
                "runs it with autocast off, in the parameters' dtype, for the recurrence only (the rest of the model "
                "keeps %s).%s",
                name,
                device.type,
                dtype,
                reason,
                dtype,
                hint,
            )
    return ok


def _probe(kind: str, activation: str, device: torch.device, dtype: torch.dtype) -> str | None:
    """Run the kernel forwards and backwards, in training and in inference, under autocast to ``dtype`` on a
    tiny input; return None if it ran, else the error's first line."""
    G = {"lstm": 4, "gru": 3}.get(kind, 1)
    B, T, In, H = 2, 3, 4, 4

    def const(*shape):  # deterministic values: the probe must not consume the user's random stream
        n = 1
        for s in shape:
            n *= s
        return (torch.arange(n, dtype=torch.float32, device=device).reshape(shape) % 7 - 3) / 10

    # inference_mode(False): a probe run inside inference mode would fail its backward pass for that reason alone.
    with torch.inference_mode(False), torch.enable_grad(), torch.autocast(device.type, dtype=dtype):
        params = [const(G * H, In), const(G * H, H), const(G * H), const(G * H)]
        params = [p.requires_grad_() for p in params]
        x, h0 = const(B, T, In), const(1, B, H)
        c0 = h0 if kind == "lstm" else None
        try:
            fn = kernel(kind, activation)
            out, _, _ = call(fn, x, h0, c0, params, True)
            out.float().sum().backward()
            with torch.no_grad():
                call(fn, x, h0, c0, params, False)
        except RuntimeError as e:  # oneDNN: "could not create a primitive descriptor for ... primitive. Run ..."
            return f"{type(e).__name__}: {str(e).split('. ')[0].splitlines()[0] if str(e) else ''}"
    return None


def _mkldnn_bf16() -> bool | str:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return "unknown"
