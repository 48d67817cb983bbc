"""Buffers the custom recurrent loops keep from one call to the next (:mod:`seqlight.nn._loop`,
:mod:`seqlight.nn._native`): the per-step intermediates of a long sequence are megabytes, and a fresh tensor's
pages are faulted in and zeroed by the kernel at first touch."""

from __future__ import annotations

import threading

from torch import Tensor

__all__ = ["Pool", "GiveBack", "POOL"]


class Pool:
    """Buffers kept from one call to the next: a fresh tensor's pages are faulted in (and zeroed by the kernel) at
    first touch, which on the IMDB shape cost more than the loop's arithmetic. A buffer is taken for a call and
    given back when nothing can read it any more: at once without a graph, else when the graph node that saved it
    is freed (:class:`GiveBack`), so a graph kept with ``retain_graph=True`` keeps its buffers."""

    def __init__(self, per_key: int = 2, max_bytes: int = 256 << 20) -> None:
        self.per_key, self.max_bytes, self.bytes = per_key, max_bytes, 0
        self.free: dict[tuple, list[Tensor]] = {}
        self.lock = threading.Lock()

    def take(self, shape: tuple[int, ...], like: Tensor) -> Tensor:
        key = (shape, like.dtype, like.device)
        with self.lock:
            free = self.free.get(key)
            if free:
                t = free.pop()
                self.bytes -= t.nbytes
                return t
        return like.new_empty(shape)

    def give(self, *tensors: Tensor | None) -> None:
        """Keep ``tensors`` for later calls, at most ``per_key`` of a shape and ``max_bytes`` in all (batches of
        ever new shapes must not grow the pool without bound). Tensors made under ``torch.inference_mode`` (Lightning
        validates in it) are not kept: outside it, a later call's in-place writes into them would be refused.
        (Kept tensors may serve a call under inference mode: writing into a normal tensor there is allowed.)"""
        with self.lock:
            for t in tensors:
                if t is None or t.is_inference() or self.bytes + t.nbytes > self.max_bytes:
                    continue
                free = self.free.setdefault((tuple(t.shape), t.dtype, t.device), [])
                if len(free) < self.per_key:
                    free.append(t)
                    self.bytes += t.nbytes


POOL = Pool()


class GiveBack:
    """Held by a graph node (``ctx``): gives its buffers back to the pool when the node is freed."""

    def __init__(self, *tensors: Tensor | None) -> None:
        self.tensors = tensors

    def __del__(self) -> None:
        try:
            POOL.give(*self.tensors)
        except Exception:  # noqa: BLE001 - at interpreter exit the module's globals may be gone
            pass
