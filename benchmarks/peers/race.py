"""Steered generation, every side on the same weights: tokens/s as a ratio to plain HF `generate`.

Each side (see `sides.py`) first runs once untimed; that run is also the correctness check:
every peer must produce exactly the tokens our loop produces with the same edit (a benchmark
that compares different computations is worthless), and plain HF / transformer-lens `generate`
the tokens of our plain loop. Then the sides take turns, round after round
(`common.interleaved_samples`: process CPU time with one torch thread on a CPU, so a busy
machine slows every side alike), and each side's median time and spread are reported.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from benchmarks.common import interleaved_samples, median_spread, print_columns
from benchmarks.peers.sides import SAME_AS, Setup, all_sides, same
from benchmarks.peers.weights import Pair


@dataclass
class RaceRow:
    side: str
    batch: int
    tokens_per_s: float
    spread: float
    vs_hf: float  # tokens/s of this side / tokens/s of plain HF generate, same batch
    same_as: str | None  # the side whose tokens this one must equal
    same: bool | None


def race(
    pair: Pair, batch: int, *, new_tokens: int = 32, rounds: int = 5, only: Iterable[str] | None = None
) -> list[RaceRow]:
    """Time every installed side (or those named in `only`) at one batch size; check tokens first."""
    setup = Setup.build(pair, batch, new_tokens)
    sides = all_sides(setup)
    if only is not None:
        keep = {"HF generate", *only}
        keep |= {SAME_AS[n] for n in keep if n in SAME_AS}  # what they are checked against
        sides = {n: fn for n, fn in sides.items() if n in keep}
    outputs = {name: fn() for name, fn in sides.items()}  # warm-up and correctness run
    times = interleaved_samples(sides, rounds=rounds, warmup=0)
    n = batch * new_tokens
    hf_median = median_spread(times["HF generate"])[0]
    rows = []
    for name, ts in times.items():
        median, spread = median_spread(ts)
        ref = SAME_AS.get(name)
        ok = None if ref is None else same(setup, outputs[name], outputs[ref])
        rows.append(RaceRow(name, batch, n / median, spread, hf_median / median, ref, ok))
    return rows


def print_race(rows: list[RaceRow]) -> None:
    header = ["steered generation (greedy, KV cache)", "batch", "tok/s", "spread", "÷ HF gen"]
    header.append("same tokens as")
    print_columns(header, [
        [r.side, str(r.batch), f"{r.tokens_per_s:.1f}", f"{r.spread:.2f}", f"{r.vs_hf:.3f}",
         "" if r.same_as is None else f"{'yes' if r.same else 'NO'}: {r.same_as}"]
        for r in rows
    ])
