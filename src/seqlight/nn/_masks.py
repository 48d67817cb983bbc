"""Variable lengths for the recurrent layers: ``PackedSequence`` in and out, ``lengths=`` and ``mask=``.

All three become one boolean step mask ``(B, T)``, True for a real step, which the custom loop applies with
Keras's semantics (:mod:`seqlight.nn._loop`): a masked step keeps the previous state, and the output repeats it.

- ``PackedSequence`` (torch): unpacked to a post-padded batch with its lengths; the output is packed again with
  the input's ``batch_sizes``, ``sorted_indices`` and ``unsorted_indices``, as ``torch.nn.GRU`` returns it, and
  ``h_n`` is in the original (unsorted) batch order, as torch's.
- ``lengths (B,)``: the first ``lengths[b]`` steps of sequence ``b`` are real (padding at the end, as
  ``pack_padded_sequence``).
- ``mask (B, T)``: any pattern (padding at the front, as the book's ``pad_sequences``, at the end, or both);
  Keras's ``mask`` argument, what ``Embedding(mask_zero=True)`` produces (``x != 0``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

__all__ = ["unpack", "step_mask", "restore_packed"]


class _Packed(NamedTuple):
    batch_sizes: Tensor
    sorted_indices: Tensor | None
    unsorted_indices: Tensor | None
    lengths: Tensor


def unpack(input: PackedSequence) -> tuple[Tensor, Tensor, _Packed]:
    """A packed batch as ``(padded (B, T, F) batch-first in the original order, lengths (B,), how to repack)``."""
    padded, lengths = pad_packed_sequence(input, batch_first=True)
    return padded, lengths, _Packed(input.batch_sizes, input.sorted_indices, input.unsorted_indices, lengths)


def restore_packed(output: Tensor, info: _Packed) -> PackedSequence:
    """``output (B, T, F)`` (batch-first, original order) packed like the input was."""
    if info.sorted_indices is not None:
        output, lengths = output.index_select(0, info.sorted_indices), info.lengths[info.sorted_indices]
    else:
        lengths = info.lengths
    data = pack_padded_sequence(output, lengths.cpu(), batch_first=True, enforce_sorted=True).data
    return PackedSequence(data, info.batch_sizes, info.sorted_indices, info.unsorted_indices)


def step_mask(mask: Tensor | None, lengths, B: int, T: int, device) -> Tensor | None:
    """The ``(B, T)`` boolean step mask from ``mask`` or ``lengths`` (not both), checked; None for neither."""
    if mask is not None and lengths is not None:
        raise ValueError("give mask= or lengths=, not both")
    if lengths is not None:
        lengths = torch.as_tensor(lengths, device=device)
        if lengths.shape != (B,) or lengths.dtype.is_floating_point:
            raise ValueError(f"lengths must be {B} integers (one per sequence), got shape {tuple(lengths.shape)}")
        if bool((lengths < 0).any()) or bool((lengths > T).any()):
            raise ValueError(f"lengths must be in [0, {T}] (the padded length), got {lengths.tolist()}")
        return torch.arange(T, device=device).unsqueeze(0) < lengths.unsqueeze(1)
    if mask is None:
        return None
    mask = torch.as_tensor(mask, device=device)
    if tuple(mask.shape) != (B, T):
        raise ValueError(f"mask must have shape (batch, time) = {(B, T)}, got {tuple(mask.shape)}")
    return mask if mask.dtype == torch.bool else mask != 0
