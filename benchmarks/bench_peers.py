"""The peers row group: interp against steering-vectors, nnsight, repeng and tuned-lens.

It runs on its own weights (a GPT-2-small-sized random model built both ways, see
`benchmarks/peers/`), not on the model the other benchmarks use; without the peers installed
it prints which are missing and still compares interp with plain Hugging Face and
transformer-lens. `python -m benchmarks peers` runs it alone.
"""

from __future__ import annotations

import os

from transformer_lens import HookedTransformer

from benchmarks.common import Row
from benchmarks.peers import run_peers


def run(model: HookedTransformer) -> list[Row]:
    """`INTERP_PEERS_SIZE` (gpt2 or small) and `INTERP_PEERS_ROUNDS` tune the run."""
    size = os.environ.get("INTERP_PEERS_SIZE", "gpt2")
    rounds = int(os.environ.get("INTERP_PEERS_ROUNDS", "5"))
    return run_peers(size=size, rounds=rounds, device=str(model.cfg.device))
