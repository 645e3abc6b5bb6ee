"""Steering speed: steered generation vs plain `generate`, and stopped harvests vs a full forward.

- `steer(...)` (add, and directional ablation) tokens/s ÷ plain `model.generate` tokens/s on the
  same left-padded batch, greedy, KV cache on, a fixed number of new tokens: target >= 0.95.
- `harvest` at layer L (one hook, `stop_at_layer`, the positions mean_difference keeps) tokens/s
  ÷ full forward tokens/s: target >= 0.8 x n_layers / (L + 1).
"""

from __future__ import annotations

import torch
from transformer_lens import HookedTransformer

from benchmarks.common import Row, interleaved
from interp.core.hooks import harvest
from interp.core.tokens import maybe_chat, tokenize
from interp.steering import SteeringVector, steer

PROMPTS = [
    "how do i bake bread ?",
    "tell me how to grow tomatoes .",
    "can you help me learn french ?",
    "explain how to fix a bike .",
    "what is the best way to plan a trip ?",
    "how can i paint a wall ?",
    "give me steps to wash a car .",
    "teach me to play chess .",
]


def _prompts(n: int) -> list[str]:
    return [PROMPTS[i % len(PROMPTS)] for i in range(n)]


def run(model: HookedTransformer, batch: int = 16, new_tokens: int = 32) -> list[Row]:
    rows = []
    prompts = _prompts(batch)
    torch.manual_seed(0)
    layer = model.cfg.n_layers // 2
    vector = SteeringVector(torch.randn(model.cfg.d_model) * 4.0, layer=layer).bind(model)
    texts = maybe_chat(model, prompts, None)

    def plain():  # text in, text out, as steer()
        with torch.inference_mode():
            model.generate(
                texts,
                max_new_tokens=new_tokens,
                do_sample=False,
                use_past_kv_cache=True,
                stop_at_eos=False,
                verbose=False,
            )

    times = interleaved(
        {
            "plain": plain,
            **{
                mode: lambda m=mode: steer(
                    model,
                    prompts,
                    vector,
                    mode=m,
                    max_new_tokens=new_tokens,
                    baseline=False,
                    stop_at_eos=False,
                    batch_size=batch,
                )
                for mode in ("add", "ablate")
            },
        }
    )
    for mode in ("add", "ablate"):
        ratio = times["plain"] / times[mode]
        rows.append(
            Row(
                f"steering: steer({mode}) / generate tok/s",
                ratio,
                ">= 0.95",
                ratio >= 0.95,
                f"batch {batch} x {new_tokens} new tokens, layer {layer}",
            )
        )

    tokens, mask = tokenize(model, maybe_chat(model, _prompts(4 * batch), None))

    def full():
        with torch.inference_mode():
            model(tokens, attention_mask=mask, return_type="logits")

    n = model.cfg.n_layers
    depths = sorted({0, n // 2 - 1, n - 2} - {-1})
    times = interleaved(
        {
            "full": full,
            **{
                at: lambda a=at: harvest(
                    model, tokens, [("resid_post", a)], attention_mask=mask, select=lambda x: x[:, -2:]
                )
                for at in depths
            },
        }
    )
    for at in depths:
        ratio, target = times["full"] / times[at], 0.8 * n / (at + 1)
        rows.append(
            Row(
                f"steering: harvest resid_post {at} / forward tok/s",
                ratio,
                f">= {target:.2f}",
                ratio >= target,
                f"{n} layers, stop_at_layer={at + 1}",
            )
        )
    return rows
