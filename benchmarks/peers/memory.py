"""Peak memory to harvest one layer's residual stream over 256 prompts x 64 tokens, three ways.

- `interp.harvest(model, tokens, [("resid_post", L)])`: one hook, and the forward stops after
  block L;
- transformer-lens' `run_with_cache`: every activation of every layer (and the logits), of
  which the one wanted is kept;
- nnsight: `model.transformer.h[L].output.save()` inside `model.trace(...)`, then
  `tracer.stop()` so the layers after L do not run (nnsight's own advice for harvesting).

Every side reads the same batches (32 prompts each) and returns the same `[256, 64, d_model]`
tensor, checked equal; the number is the peak heap (CPU) or CUDA memory above what was in use
before, as a ratio to `run_with_cache`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from benchmarks.common import peak_cuda_extra, peak_heap_extra, print_columns
from benchmarks.peers.sides import installed
from benchmarks.peers.weights import Pair


@dataclass
class MemoryRow:
    side: str
    peak_mb: float
    vs_cache: float
    max_diff: float


def harvest_tokens(pair: Pair, prompts: int = 256, length: int = 64, seed: int = 0) -> torch.Tensor:
    """`[prompts, length]` random ids (BOS first), the same for every side."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, pair.tl.cfg.d_vocab, (prompts, length), generator=g)
    ids[:, 0] = pair.tokenizer.bos_token_id
    return ids


def memory_race(pair: Pair, *, prompts: int = 256, length: int = 64, batch: int = 32) -> list[MemoryRow]:
    import interp

    tl, hf = pair.tl, pair.hf
    layer = tl.cfg.n_layers // 2
    name = f"blocks.{layer}.hook_resid_post"
    ids = harvest_tokens(pair, prompts, length).to(tl.cfg.device)
    batches = ids.split(batch)

    def ours():
        return torch.cat([interp.harvest(tl, b, [("resid_post", layer)])[name] for b in batches])

    def cached():
        out = []
        with torch.inference_mode():
            for b in batches:
                _, cache = tl.run_with_cache(b)
                out.append(cache[name])
                del cache
        return torch.cat(out)

    sides = {"run_with_cache": cached, "interp.harvest": ours}
    if installed("nnsight"):
        import warnings

        from nnsight import LanguageModel

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lm = LanguageModel(hf, tokenizer=pair.tokenizer)

        def nnsight_save():
            out = []
            with torch.inference_mode():
                for b in batches:
                    with lm.trace(b) as tracer:
                        h = lm.transformer.h[layer].output.save()
                        tracer.stop()
                    out.append(h)
            return torch.cat(out)

        sides["nnsight .save()"] = nnsight_save

    peaks, results = {}, {}
    for side, fn in sides.items():
        results[side] = fn()  # also warms: first-call allocations are not the harvest's
        peaks[side] = peak_cuda_extra(fn) if torch.cuda.is_available() else peak_heap_extra(fn)[0]
    ref = results["interp.harvest"]
    base = peaks["run_with_cache"]
    return [
        MemoryRow(side, peaks[side] / 2**20, peaks[side] / base, (results[side] - ref).abs().max().item())
        for side in sides
    ]


def print_memory(rows: list[MemoryRow]) -> None:
    header = ["harvest one layer, 256 x 64 tokens", "peak MB", "÷ run_with_cache", "max |Δ| vs interp"]
    cells = [[r.side, f"{r.peak_mb:.0f}", f"{r.vs_cache:.3f}", f"{r.max_diff:.1e}"] for r in rows]
    print_columns(header, cells)
