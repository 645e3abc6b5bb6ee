"""Logit lens at the last position, all layers, against one plain forward pass.

The lens runs one forward, a block at a time, keeping only the last position of each layer's
residual (and skipping the forward's own final norm and unembedding), then normalizes and
unembeds n_layers + 1 vectors
and reduces them to top-k, entropy, KL and a target's probability and rank. The baseline is
`model(tokens)`; both get the same token ids of a prompt that fills the context (up to 128
tokens). The two are
timed alternately and the best of each is kept (CPU time on a CPU, wall time on a GPU), so load
on a shared machine hits both alike.
Target: lens time / forward time <= 1.3.
"""

from __future__ import annotations


import torch
from transformer_lens import HookedTransformer

from benchmarks.common import Row, interleaved
from interp.lens import logit_lens

TARGET = 1.3
SENTENCES = (
    "we visited france last year . the capital of france is paris . the people of france speak french . "
    "my friend is from japan . the capital of japan is tokyo . the key to the cabinets is old . "
)
QUESTION = "cat -> cat ; dog -> dog ; paris -> paris ; the capital of germany is"


def context_prompt(model: HookedTransformer, limit: int = 128) -> str:
    """Sentences followed by a question, cut from the front to fit min(n_ctx, limit) tokens."""
    budget = min(model.cfg.n_ctx, limit) - 1  # BOS
    words = (SENTENCES * 20).split() + QUESTION.split()
    return " ".join(words[-budget:])


def run(model: HookedTransformer) -> list[Row]:
    prompt = context_prompt(model)
    tokens = model.to_tokens(prompt)

    @torch.inference_mode()
    def forward() -> None:
        model(tokens)

    def lens() -> None:
        logit_lens(model, tokens, positions=-1, targets="berlin")

    t = interleaved({"forward": forward, "lens": lens}, tokens.device, rounds=15, warmup=2)
    ratio = t["lens"] / t["forward"]
    return [
        Row(
            "logit lens, all layers at last position / one forward",
            ratio,
            f"<= {TARGET}",
            ratio <= TARGET,
            f"{tokens.shape[1]} tokens, {model.cfg.n_layers + 1} layers; lens {t['lens'] * 1e3:.2f} ms, "
            f"forward {t['forward'] * 1e3:.2f} ms",
        )
    ]
