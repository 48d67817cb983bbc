"""The one table of activations used by seqlight.nn: recurrent layers, Conv1D and the numpy references.

Each activation is an affine map followed by a *core* function, ``fn(x) = core(scale * x + shift)``:
``hard_sigmoid`` (Keras 2: ``clip(0.2 x + 0.5, 0, 1)``) is the core ``clip01`` after ``(0.2, 0.5)``; ``tanh`` is
``2 sigmoid(2 x) - 1``, the core ``2 sigmoid(x) - 1`` after ``(2, 0)`` (on CPUs, torch's ``tanh`` costs several
times its ``sigmoid``); every other one has ``(1, 0)``. The custom recurrent loop folds the affine map into
the weights before the time loop (it is linear, so ``scale * (x W + h U + b) + shift == x (scale W) + h (scale
U) + (scale b + shift)``) and runs only the core at each step: one op instead of three for ``hard_sigmoid``.

``grad`` is the core's derivative written through its *output* ``y`` (``tanh' = 1 - y^2``), as one fused op
(``torch.ops.aten.tanh_backward`` and friends, with an ``out=`` tensor): what the hand-written backward pass
of :mod:`seqlight.nn._loop` needs. It is ``None`` where the output does not determine the derivative
cheaply (``elu``, ``softsign``): layers with those run the loop recorded by autograd.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = ["ACTIVATIONS", "Activation", "activate", "activate_fn", "hard_sigmoid"]

_aten = torch.ops.aten


def hard_sigmoid(x: Tensor) -> Tensor:
    """Keras 2 ``hard_sigmoid``: ``clip(0.2 * x + 0.5, 0, 1)`` (Keras 3 uses ``x / 6 + 0.5``)."""
    return torch.clamp(0.2 * x + 0.5, 0.0, 1.0)


def _copy_out(x: Tensor, out: Tensor | None) -> Tensor:
    return x if out is None else out.copy_(x)


def _out_of(fn: Callable[[Tensor], Tensor]) -> Callable[[Tensor, Tensor | None], Tensor]:
    return lambda x, out: fn(x) if out is None else out.copy_(fn(x))


def _grad_identity(g: Tensor, y: Tensor, out: Tensor) -> Tensor:
    return out.copy_(g)


@dataclass(frozen=True)
class Activation:
    """One activation: ``fn(x) == core(scale * x + shift)``.

    ``core_out(x, out)`` writes ``core(x)`` into ``out`` (which may be ``x`` itself, or None for a fresh tensor);
    ``grad(g, y, out)`` writes ``g * core'(x)`` into ``out`` from the core's output ``y = core(x)``.
    :meth:`fn_out` and :meth:`fn_grad` are the same for ``fn`` (no folding: the LSTM's activation of ``c``).
    """

    name: str
    fn: Callable[[Tensor], Tensor]
    core: Callable[[Tensor], Tensor]
    core_out: Callable[[Tensor, Tensor | None], Tensor]
    grad: Callable[[Tensor, Tensor, Tensor], Tensor] | None
    scale: float = 1.0
    shift: float = 0.0

    def __call__(self, x: Tensor) -> Tensor:
        """``fn(x)``: the table's entries stay the callables they were (``ACTIVATIONS["tanh"](x)``)."""
        return self.fn(x)

    @property
    def affine(self) -> bool:
        return self.scale != 1.0 or self.shift != 0.0

    def fn_out(self, x: Tensor, out: Tensor | None) -> Tensor:
        """``fn(x)`` into ``out``, through the core."""
        if self.affine:
            x = torch.mul(x, _const(self.scale, x))
            if self.shift != 0.0:
                x.add_(_const(self.shift, x))
        return self.core_out(x, out)

    def fn_grad(self, g: Tensor, y: Tensor, out: Tensor) -> Tensor:
        """``g * fn'(x)`` into ``out`` from ``y = fn(x)``."""
        if self.name == "tanh":  # the core's 1/2 and the scale's 2 cancel: tanh' = 1 - y^2
            return _aten.tanh_backward.grad_input(g, y, grad_input=out)
        out = self.grad(g, y, out)
        return out.mul_(_const(self.scale, out)) if self.scale != 1.0 else out


_CONSTANTS: dict[tuple, Tensor] = {}


def _const(value: float, like: Tensor) -> Tensor:
    """``value`` as a 0-dim tensor of ``like``'s dtype and device: an op with a Python number converts it to a
    tensor at every call, which costs more than a small op itself."""
    key = (value, like.dtype, like.device)
    c = _CONSTANTS.get(key)
    if c is None:
        c = _CONSTANTS[key] = torch.tensor(value, dtype=like.dtype, device=like.device)
    return c


def _tanh_core_out(x: Tensor, out: Tensor | None) -> Tensor:
    # tanh(x / 2 * 2) as 2 sigmoid(x) - 1, x already doubled: torch's CPU tanh costs several times its sigmoid
    return torch.sigmoid(x, out=out).mul_(_const(2.0, x)).add_(_const(-1.0, x))


def _tanh_core_grad(g: Tensor, y: Tensor, out: Tensor) -> Tensor:
    # d/dx (2 sigmoid(x) - 1) = (1 - y^2) / 2 with y the core's output
    return _aten.tanh_backward.grad_input(g, y, grad_input=out).mul_(_const(0.5, g))


def _table() -> dict[str, Activation]:
    clip = lambda x: torch.clamp(x, 0.0, 1.0)  # noqa: E731
    return {
        a.name: a
        for a in [
            Activation(
                "tanh",
                torch.tanh,
                lambda x: 2.0 * torch.sigmoid(x) - 1.0,
                _tanh_core_out,
                _tanh_core_grad,
                scale=2.0,
            ),
            Activation(
                "sigmoid",
                torch.sigmoid,
                torch.sigmoid,
                lambda x, out: torch.sigmoid(x, out=out),
                lambda g, y, out: _aten.sigmoid_backward.grad_input(g, y, grad_input=out),
            ),
            Activation(
                "hard_sigmoid",
                hard_sigmoid,
                clip,
                lambda x, out: torch.clamp(x, 0.0, 1.0, out=out),
                # y = clip(x) lies strictly inside (0, 1) exactly where x does: the derivative is 1 there
                lambda g, y, out: _aten.hardtanh_backward.grad_input(g, y, 0.0, 1.0, grad_input=out),
                scale=0.2,
                shift=0.5,
            ),
            Activation(
                "relu",
                torch.relu,
                torch.relu,
                lambda x, out: torch.clamp(x, min=0.0, out=out),
                lambda g, y, out: _aten.threshold_backward.grad_input(g, y, 0.0, grad_input=out),
            ),
            Activation("linear", lambda x: x, lambda x: x, _copy_out, _grad_identity),
            Activation("elu", nn.functional.elu, nn.functional.elu, _out_of(nn.functional.elu), None),
            Activation(
                "softsign", nn.functional.softsign, nn.functional.softsign, _out_of(nn.functional.softsign), None
            ),
        ]
    }


ACTIVATIONS: dict[str, Activation] = _table()


def activate(name: str, x: Tensor) -> Tensor:
    """``ACTIVATIONS[name].core(x)`` in a form TorchScript compiles (it cannot call functions held in a dict).

    The core only: the loops that call it have folded the activation's affine map into their weights.
    """
    if name == "tanh":
        return 2.0 * torch.sigmoid(x) - 1.0
    if name == "sigmoid":
        return torch.sigmoid(x)
    if name == "hard_sigmoid":
        return torch.clamp(x, 0.0, 1.0)
    if name == "relu":
        return torch.relu(x)
    if name == "elu":
        return nn.functional.elu(x)
    if name == "softsign":
        return nn.functional.softsign(x)
    return x  # "linear"; the layers check the name against ACTIVATIONS when they are built


def activate_fn(name: str, x: Tensor) -> Tensor:
    """``ACTIVATIONS[name].fn(x)`` (no folding: the LSTM's activation of its cell state), for TorchScript."""
    if name == "tanh":
        return torch.tanh(x)
    if name == "hard_sigmoid":
        return hard_sigmoid(x)
    return activate(name, x)
