"""Timing helpers shared by the benchmarks: median wall time of repeated calls."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable


def median_seconds(func: Callable[[], object], repeats: int = 7, warmup: int = 1) -> float:
    """Median wall-clock seconds of ``func()`` over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        func()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_medians(funcs: dict[str, Callable[[], object]], repeats: int = 7, warmup: int = 1) -> dict[str, float]:
    """Median wall-clock seconds of each function, calling them in turn (a, b, c, then c, a, b, ...).

    On a shared machine the load drifts while a benchmark runs; taking turns exposes every
    function to the same drift, so ratios between them stay meaningful. Each round takes
    the functions in a new order (shuffled with a fixed seed), so that no function always
    runs right after the same one: a function that leaves the caches cold, or much memory
    to hand back to the system, would otherwise slow its successor every time.
    """
    for _ in range(warmup):
        for func in funcs.values():
            func()
    times: dict[str, list[float]] = {name: [] for name in funcs}
    names, rng = list(funcs), random.Random(0)
    for _ in range(repeats):
        rng.shuffle(names)
        for name in names:
            func = funcs[name]
            start = time.perf_counter()
            func()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}
