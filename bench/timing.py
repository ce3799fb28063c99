"""Interleaved timing: every repetition times each contestant once, in an order that rotates, so machine drift
(other processes, thermal state, cache) falls on all of them alike. Plus the summary statistics.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["MIN_RUNS", "Stats", "interleave", "rotation", "summarize"]

# Fewer runs per figure leave p99 to one or two samples: every figure times at least 30.
MIN_RUNS = 30


@dataclass(frozen=True)
class Stats:
    """Summary of timed samples, in milliseconds.

    Attributes:
        runs: Number of samples.
        mean_ms: Mean.
        p50_ms: Median.
        p90_ms: 90th percentile.
        p99_ms: 99th percentile.
    """

    runs: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float


def summarize(seconds: Sequence[float]) -> Stats:
    """Mean and percentiles (numpy's linear interpolation) of samples given in seconds.

    Raises:
        ValueError: No samples.
    """
    if not seconds:
        raise ValueError("summarize needs at least one sample.")
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return Stats(len(ms), float(ms.mean()), float(p50), float(p90), float(p99))


def rotation(count: int, repetition: int) -> list[int]:
    """The order of ``count`` contestants in repetition ``repetition``: ``0..count-1`` rotated left by it."""
    shift = repetition % count if count else 0
    return [*range(shift, count), *range(shift)]


def interleave(
    contestants: Mapping[str, Callable[[int], object]],
    *,
    runs: int,
    warmup: int = 2,
    idle_s: float = 0.05,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, list[float]]:
    """Time each contestant ``runs`` times, round-robin in rotating order, after ``warmup`` untimed rounds.

    Each call gets the repetition index (so every contestant of one repetition can work on the same input).
    Before each timed call the machine is left idle for ``idle_s``: on a small machine a thread pool that kept
    spinning after the previous call would otherwise steal a core from the next contestant.

    Args:
        contestants: Name → callable taking the repetition index.
        runs: Timed repetitions (each contestant is timed once per repetition).
        warmup: Untimed repetitions first (same rotation), excluded from the samples.
        idle_s: Seconds of sleep before each timed call.
        clock: Monotonic clock in seconds.
        sleep: Sleep function.

    Returns:
        Name → ``runs`` durations in seconds, in repetition order.

    Raises:
        ValueError: ``runs`` < 1 or ``warmup`` < 0.
    """
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be >= 1 and warmup >= 0, got {runs}, {warmup}.")
    names = list(contestants)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(-warmup, runs):
        for index in rotation(len(names), rep):
            name = names[index]
            if rep >= 0 and idle_s > 0:
                sleep(idle_s)
            start = clock()
            contestants[name](max(rep, 0))
            elapsed = clock() - start
            if rep >= 0:
                samples[name].append(elapsed)
    return samples
