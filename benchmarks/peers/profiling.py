"""Where generation time goes: `python -m benchmarks.peers.profiling [--batch 1] [--sides tl,loop,hf]`.

Profiles (pyinstrument, one torch thread) 32 greedy new tokens on the peers' GPT-2-small-sized
random weights: transformer-lens' `generate`, our loop (`interp.core.generation.generate`) and
Hugging Face's `generate`, and prints the call trees. This is the profile that showed
transformer-lens' forward copying `W_U.T`, `W_Q`/`W_K`/`W_V` and `W_O` into new layouts on
every forward (most of a single-token step), which `linear_layout` removes.
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.peers.sides import Setup, baselines, interp_sides
from benchmarks.peers.weights import gpt2_pair


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--sides", default="tl,loop,hf", help="comma-separated: tl, loop, hf")
    parser.add_argument("--interval", type=float, default=0.0005, help="sampling interval in seconds")
    args = parser.parse_args()
    from pyinstrument import Profiler

    torch.set_num_threads(1)
    setup = Setup.build(gpt2_pair(), args.batch)
    sides = {**baselines(setup), **interp_sides(setup)}
    chosen = {"tl": sides["TL generate"], "loop": sides["interp loop"], "hf": sides["HF generate"]}
    for name in args.sides.split(","):
        fn = chosen[name]
        fn()  # warm
        profiler = Profiler(interval=args.interval)
        profiler.start()
        fn()
        profiler.stop()
        print(f"===== {name}: batch {args.batch}, 32 new tokens")
        print(profiler.output_text(unicode=False, color=False, show_all=False))


if __name__ == "__main__":
    main()
