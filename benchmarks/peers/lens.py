"""The logit lens over every layer and position of a 64-token prompt, three ways, same weights.

- `interp.logit_lens(model, tokens)`: every layer's residual stream through the final norm and
  the unembedding, with top-k, entropy, KL to the final layer (what the workbench shows);
- tuned-lens' `LogitLens` on Hugging Face's `output_hidden_states` (the embedding and each block's
  input; the last row is the model's own logits, as tuned-lens reads it), then log-softmax and
  top-k;
- transformer-lens' `run_with_cache` + `cache.accumulated_resid(apply_ln=True)` + `unembed`,
  then log-softmax and top-k.

All three decode the same `n_layers + 1` residual streams, so they must agree: the check is the
largest difference of the probabilities each gives to interp's top-k tokens, over every layer
and position. Speeds are calls/s, interleaved, as ratios to tuned-lens' and to one plain forward.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from benchmarks.common import interleaved_samples, median_spread, print_columns
from benchmarks.peers.sides import PROMPTS, installed
from benchmarks.peers.weights import Pair


@dataclass
class LensRow:
    side: str
    calls_per_s: float
    spread: float
    vs_tuned: float | None
    vs_forward: float
    max_prob_diff: float | None  # against interp's top-k probabilities


def lens_prompt(pair: Pair, length: int = 64) -> torch.Tensor:
    """`[1, length]` ids: BOS, then the benchmark prompts' words over and over."""
    tok = pair.tokenizer
    words = tok(" ".join(PROMPTS), add_special_tokens=False)["input_ids"]
    ids = [tok.bos_token_id] + (words * (length // len(words) + 1))[: length - 1]
    return torch.tensor([ids])


def lens_race(pair: Pair, *, k: int = 5, rounds: int = 5) -> list[LensRow]:
    import interp

    hf, tl = pair.hf, pair.tl
    ids = lens_prompt(pair).to(tl.cfg.device)

    def ours():
        return interp.logit_lens(tl, ids[0], k=k)

    def tl_accumulated():
        with torch.inference_mode():
            _, cache = tl.run_with_cache(ids)
            logp = tl.unembed(cache.accumulated_resid(apply_ln=True)).log_softmax(-1)[:, 0]
            return logp, logp.topk(k, dim=-1)

    def forward():
        with torch.inference_mode():
            return hf(ids).logits

    sides = {"interp.logit_lens": ours, "TL accumulated_resid + unembed": tl_accumulated}
    if installed("tuned-lens"):
        from tuned_lens.nn.lenses import LogitLens

        lens = LogitLens.from_model(hf)

        def tuned():
            with torch.inference_mode():
                out = hf(ids, output_hidden_states=True)
                hs = out.hidden_states
                rows = [lens(hs[i], i) for i in range(len(hs) - 1)] + [out.logits]
                logp = torch.stack(rows).log_softmax(-1)[:, 0]
                return logp, logp.topk(k, dim=-1)

        sides["tuned-lens LogitLens"] = tuned
    sides["one HF forward"] = forward

    ref = ours()
    diffs: dict[str, float | None] = {"interp.logit_lens": 0.0, "one HF forward": None}
    for name in sides:
        if name in diffs:
            continue
        logp = sides[name]()[0]
        probs = logp.exp().gather(-1, ref.top_ids.to(logp.device))
        diffs[name] = (probs - ref.top_probs).abs().max().item()
    times = interleaved_samples(sides, rounds=rounds, warmup=1)
    med = {n: median_spread(ts) for n, ts in times.items()}
    tuned_t = med.get("tuned-lens LogitLens", (None,))[0]
    forward_t = med["one HF forward"][0]
    return [
        LensRow(name, 1 / m, spread, None if tuned_t is None else tuned_t / m, forward_t / m, diffs[name])
        for name, (m, spread) in med.items()
    ]


def print_lens(rows: list[LensRow]) -> None:
    header = ["logit lens, all layers x 64 positions", "calls/s", "spread", "÷ tuned-lens", "÷ forward"]
    header.append("max |Δp|")
    print_columns(header, [
        [r.side, f"{r.calls_per_s:.2f}", f"{r.spread:.2f}", "" if r.vs_tuned is None else f"{r.vs_tuned:.3f}",
         f"{r.vs_forward:.3f}", "" if r.max_prob_diff is None else f"{r.max_prob_diff:.1e}"]
        for r in rows
    ])
