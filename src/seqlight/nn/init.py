"""Keras default initializers for PyTorch modules.

Keras (2.0.8 and 3 alike) initialises Dense and Conv1D kernels with ``glorot_uniform``, recurrent kernels
with ``orthogonal``, biases with zeros and Embedding with ``RandomUniform(-0.05, 0.05)``. PyTorch's defaults
differ (kaiming-uniform weights, uniform biases, N(0, 1) embeddings) and change the book's results.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["glorot_uniform_", "keras_init_"]


def glorot_uniform_(tensor: torch.Tensor) -> torch.Tensor:
    """Keras ``glorot_uniform``: U(-l, l), l = sqrt(6 / (fan_in + fan_out)).

    For a Conv1d weight ``(out, in, k)`` the fans are ``in*k`` and ``out*k``, as Keras computes them for its
    ``(k, in, out)`` kernels, so this is :func:`torch.nn.init.xavier_uniform_`.
    """
    return nn.init.xavier_uniform_(tensor)


@torch.no_grad()
def keras_init_(module: nn.Module) -> nn.Module:
    """Re-initialise every Linear, Conv1d and Embedding inside ``module`` the way Keras does; return it.

    Recurrent layers of :mod:`seqlight.nn` initialise themselves (glorot / orthogonal / zeros) and are
    left alone.
    """
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d)):
            glorot_uniform_(m.weight)
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, nn.Embedding):
            m.weight.uniform_(-0.05, 0.05)
    return module
