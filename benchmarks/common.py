"""Timing helpers for ratio benchmarks: each benchmark times the workbench and its baseline
in the same process, on the same model and inputs, and reports the ratio, never an absolute time."""

from __future__ import annotations

import ctypes
import gc
import random
import threading
import time
import tracemalloc
from collections.abc import Callable
from typing import Any
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


def interleaved_samples(
    fns: dict[str, Callable[[], object]], device: torch.device | str | None = None, *, rounds: int = 7,
    warmup: int = 1,
) -> dict[str, list[float]]:
    """Every timed run of each function in seconds, the functions taking turns each round (in a
    seeded random order per round), so a busy spell slows them alike instead of whichever
    happened to run during it.

    On a CPU the clock is the process's CPU time with one torch thread: on a shared machine wall
    time also counts the time other processes hold the cores, which says nothing about either
    side (and idle worker threads spinning would count as CPU time). On a GPU it is wall time
    with a device synchronisation around each call.
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    cpu = torch.device(device).type == "cpu"
    clock = time.process_time if cpu else time.perf_counter
    threads = torch.get_num_threads()
    if cpu:
        torch.set_num_threads(1)
    times: dict[str, list[float]] = {name: [] for name in fns}
    order = random.Random(0)
    try:
        for i in range(warmup + rounds):
            # a fresh order each round: no side always runs first, after the same neighbour, or
            # on caches its predecessor left warm
            for name in order.sample(list(fns), len(fns)):
                fn = fns[name]
                gc.collect()  # no side pays for another's garbage
                sync()
                start = clock()
                fn()
                sync()
                if i >= warmup:
                    times[name].append(clock() - start)
    finally:
        torch.set_num_threads(threads)
    return times


def interleaved(
    fns: dict[str, Callable[[], object]], device: torch.device | str | None = None, *, rounds: int = 7,
    warmup: int = 1,
) -> dict[str, float]:
    """Best time of each function in seconds, timed as `interleaved_samples` times them."""
    samples = interleaved_samples(fns, device, rounds=rounds, warmup=warmup)
    return {name: min(ts) for name, ts in samples.items()}


def median_spread(times: list[float]) -> tuple[float, float]:
    """`(median, spread)` of repeated timings; spread is (max - min) / median."""
    ordered = sorted(times)
    n = len(ordered)
    median = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
    return median, (ordered[-1] - ordered[0]) / median if median > 0 else 0.0


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


_MALLINFO2 = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")


def peak_heap_extra(fn: Callable[[], Any]) -> tuple[int, Any]:
    """`(peak extra bytes, fn())`: the live malloc heap (glibc `mallinfo2`: in-use blocks plus
    mmapped chunks, so torch's CPU tensors count) sampled every 0.2 ms while `fn` runs, minus
    the heap before; tracemalloc's Python-heap peak where glibc is unavailable."""
    gc.collect()
    try:
        class Info(ctypes.Structure):
            _fields_ = [(n, ctypes.c_size_t) for n in _MALLINFO2]

        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = Info
    except (OSError, AttributeError):
        tracemalloc.start()
        out = fn()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak, out

    def in_use() -> int:
        info = libc.mallinfo2()
        return info.uordblks + info.hblkhd

    base = in_use()
    peak, done = [base], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], in_use())
            time.sleep(0.0002)

    thread = threading.Thread(target=sample)
    thread.start()
    try:
        out = fn()
    finally:
        done.set()
        thread.join()
    return peak[0] - base, out


@dataclass
class Row:
    benchmark: str
    ratio: float
    target: str
    ok: bool
    detail: str = ""


def print_columns(header: list[str], rows: list[list[str]]) -> None:
    """A plain-text table fitted to its cells: the first and last columns left-aligned (names,
    notes), the others right-aligned (numbers)."""
    widths = [max(len(c) for c in col) for col in zip(header, *rows)]
    last = len(header) - 1
    for line in [header, *rows]:
        cells = [c.ljust(w) if i in (0, last) else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))]
        print("  ".join(cells).rstrip())


def print_table(rows: list[Row]) -> None:
    width = max(len(r.benchmark) for r in rows)
    print(f"{'benchmark':<{width}}  {'ratio':>8}  {'target':<12} ok   detail")
    for r in rows:
        print(f"{r.benchmark:<{width}}  {r.ratio:8.3f}  {r.target:<12} {'yes' if r.ok else 'NO ':<4} {r.detail}")
