"""Neuron ablation, attribution ranking and neuron top-k, each against the plain passes they replace.

- `ablate_neurons` (clean and ablated runs, batched, last-position unembedding only, statistics)
  against two plain batched forwards of the same prompts: target <= 1.3.
- `rank_neurons` attribution of every MLP neuron (one forward + one backward, no verification)
  against one plain forward: target <= 4; the detail column gives the speed-up over ablating
  every neuron one at a time (n_layers * d_mlp forwards, extrapolated from the forward time).
- `neuron_activations` over a corpus (tokenize, forward to the neuron's layer, streaming top-k)
  against `harvest` at that layer on the same pre-tokenized batches, tokens/s: target >= 0.8.
"""

from __future__ import annotations

import torch
from transformer_lens import HookedTransformer

from benchmarks.common import Row, best_time
from interp.ablation import ablate_neurons, token_logprob
from interp.hooks import harvest
from interp.models import tokenize
from interp.neurons import neuron_activations, rank_neurons

SUBJECTS = ["key", "keys", "dog", "dogs", "book", "books", "teacher", "teachers"]
ATTRACTORS = ["cabinet", "cabinets", "box", "boxes", "house", "houses", "tree", "trees"]
PROMPTS = [f"the {s} near the {a}" for s in SUBJECTS for a in ATTRACTORS]  # 64 prompts
CORPUS = [f"{p} is old . the capital of france is paris . we visited france last year ." for p in PROMPTS] * 4


def run(model: HookedTransformer) -> list[Row]:
    tokens, mask = tokenize(model, PROMPTS)
    layer = model.cfg.n_layers // 2
    neurons = [(layer, i) for i in range(0, model.cfg.d_mlp, max(1, model.cfg.d_mlp // 10))][:10]
    rows = []

    @torch.inference_mode()
    def two_forwards() -> None:
        model(tokens, attention_mask=mask)
        model(tokens, attention_mask=mask)

    def ablate() -> None:
        ablate_neurons(model, PROMPTS, neurons, tokens=["is", "are"], batch_size=64, progress=False)

    t_base, t_abl = best_time(two_forwards, repeat=7), best_time(ablate, repeat=7)
    ratio = t_abl / t_base
    rows.append(Row("ablate_neurons (clean + ablated) / two forwards", ratio, "<= 1.3", ratio <= 1.3,
                    f"{len(PROMPTS)} prompts, 10 neurons; {t_abl * 1e3:.1f} ms vs {t_base * 1e3:.1f} ms"))

    @torch.inference_mode()
    def one_forward() -> None:
        model(tokens, attention_mask=mask)

    metric = token_logprob(model, "is")

    def attribution() -> None:
        rank_neurons(model, PROMPTS, metric, k=10, verify=False, batch_size=64, progress=False)

    t_fwd, t_attr = best_time(one_forward, repeat=7), best_time(attribution, repeat=5)
    n_neurons = model.cfg.n_layers * model.cfg.d_mlp
    ratio = t_attr / t_fwd
    rows.append(Row("rank_neurons attribution, all neurons / one forward", ratio, "<= 4", ratio <= 4,
                    f"{n_neurons} neurons scored; {n_neurons * t_fwd / t_attr:.0f}x faster than one ablation "
                    f"forward per neuron"))

    batches = [tokenize(model, CORPUS[i:i + 32]) for i in range(0, len(CORPUS), 32)]
    n_tokens = sum(int(m.sum()) for _, m in batches)

    def harvest_only() -> None:
        for t, m in batches:
            harvest(model, t, [("mlp_post", layer)], attention_mask=m)

    def topk() -> None:
        neuron_activations(model, CORPUS, layer, 3, k=20, batch_size=32, progress=False)

    t_h, t_k = best_time(harvest_only, repeat=5), best_time(topk, repeat=5)
    ratio = t_h / t_k  # tokens/s of neuron_activations over tokens/s of harvest
    rows.append(Row("neuron_activations / harvest alone, tokens/s", ratio, ">= 0.8", ratio >= 0.8,
                    f"{len(CORPUS)} texts, {n_tokens} tokens, layer {layer}; "
                    f"{t_k * 1e3:.1f} ms vs {t_h * 1e3:.1f} ms"))
    return rows
