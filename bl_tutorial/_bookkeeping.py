"""Bookkeeping of a training run: the time spent in named phases, and running means of named values."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch

__all__ = ["Clock", "Means"]


class Clock:
    """Seconds spent in named phases of a run, for ``benchmarks/run_time.py``.

    >>> clock = Clock()
    >>> with clock.phase("nap"):
    ...     pass
    >>> list(clock.seconds)
    ['nap']

    On CUDA each phase ends with a synchronisation, so that the GPU's queued work is
    counted in the phase that queued it.
    """

    def __init__(self, device: torch.device | None = None):
        self.seconds: dict[str, float] = {}
        self._cuda = device is not None and device.type == "cuda"

    @contextmanager
    def phase(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            if self._cuda:
                torch.cuda.synchronize()
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def timed(self, items: Iterable, name: str) -> Iterator:
        """Yield from ``items``, counting the time spent waiting for each one as ``name``."""
        iterator, end = iter(items), object()
        while True:
            with self.phase(name):
                item = next(iterator, end)
            if item is end:
                return
            yield item


class Means:
    """Running sums of named scalars and per-class vectors (tensors stay on the device)."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor | float] = {}
        self.counts: dict[str, int] = {}
        self.firsts: dict[str, float] = {}

    def add(self, name: str, value, count: int = 1) -> None:
        value = value.detach().double() * count if isinstance(value, torch.Tensor) else float(value) * count
        self.sums[name] = self.sums.get(name, 0) + value
        self.counts[name] = self.counts.get(name, 0) + count

    def first(self, name: str, value) -> None:
        """Keep ``value`` under ``name`` unless a value was kept already (e.g. the weight at an epoch's start)."""
        self.firsts.setdefault(name, float(value))

    def result(self) -> dict:
        out = {}
        for name, total in self.sums.items():
            mean = total / self.counts[name]
            out[name] = mean.tolist() if isinstance(mean, torch.Tensor) else float(mean)
        return {**out, **self.firsts}
