"""Run every benchmark: `python -m benchmarks [name ...] [--model toy|gpt2-random|gemma-2-2b-random]`.

Each `benchmarks/bench_*.py` exposes `run(model) -> list[Row]`. `python -m benchmarks peers`
compares interp with its peers on GPT-2-small-sized random weights (`--peers-size small` for a
quick run on tiny ones, `--rounds N` timed rounds per side). The default run (no names) includes
the peers group only when the peers are installed (`make bench-peers`), on the tiny
weights, so that it finishes in a few minutes on two CPU cores.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
from pathlib import Path

import torch

from benchmarks.common import print_table
from benchmarks.models import bench_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmark module names without bench_ (default: all)")
    parser.add_argument("--model", default="toy", help="toy, gpt2-random or gemma-2-2b-random")
    parser.add_argument("--peers-size", default=None, help="peers: gpt2 (default) or small")
    parser.add_argument("--rounds", type=int, default=None, help="peers: timed rounds per side (default 5)")
    args = parser.parse_args()
    if args.peers_size:
        os.environ["INTERP_PEERS_SIZE"] = args.peers_size
    if args.rounds:
        os.environ["INTERP_PEERS_ROUNDS"] = str(args.rounds)
    torch.manual_seed(0)
    model = bench_model(args.model)
    found = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name.startswith("bench_"))
    chosen = [f"bench_{n}" for n in args.names] if args.names else found
    if not args.names and "bench_peers" in chosen:  # the default run: peers only with the bench extra
        from benchmarks.peers.sides import missing

        if missing():
            chosen.remove("bench_peers")
            print(f"peers group skipped: {', '.join(missing())} not installed (make bench-peers)")
        elif not args.peers_size:
            os.environ["INTERP_PEERS_SIZE"] = "small"  # GPT-2-small-sized: `python -m benchmarks peers`
            os.environ.setdefault("INTERP_PEERS_ROUNDS", "3")  # no targets at this size: agreement first
    rows = []
    for name in chosen:
        rows += importlib.import_module(f"benchmarks.{name}").run(model)
    print(f"model: {args.model}  device: {next(model.parameters()).device}")
    print_table(rows)


if __name__ == "__main__":
    main()
