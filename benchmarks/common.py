"""Timing helpers for ratio benchmarks: each benchmark times the workbench and its baseline
in the same process, on the same model and inputs, and reports the ratio, never an absolute time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def best_time(fn: Callable[[], object], *, repeat: int = 5, warmup: int = 1) -> float:
    """The fastest of `repeat` runs in seconds, after `warmup` untimed runs."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return min(times)


def peak_cuda_extra(fn: Callable[[], object]) -> int | None:
    """Peak CUDA memory allocated by `fn` beyond what was allocated before (None on CPU)."""
    if not torch.cuda.is_available():
        return None
    sync()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn()
    sync()
    return torch.cuda.max_memory_allocated() - base


@dataclass
class Row:
    benchmark: str
    ratio: float
    target: str
    ok: bool
    detail: str = ""


def print_table(rows: list[Row]) -> None:
    width = max(len(r.benchmark) for r in rows)
    print(f"{'benchmark':<{width}}  {'ratio':>8}  {'target':<12} ok   detail")
    for r in rows:
        print(f"{r.benchmark:<{width}}  {r.ratio:8.3f}  {r.target:<12} {'yes' if r.ok else 'NO ':<4} {r.detail}")
