"""Neuron ablation, attribution ranking and neuron top-k, each against the plain passes they replace.

- `ablate_neurons` (clean and ablated runs, batched, last-position unembedding only, statistics)
  against what it replaces by hand: tokenizing the prompts and two plain batched forwards
  (clean, and with a hook): target <= 1.3.
- `rank_neurons` attribution of every MLP neuron (one forward + one backward, no verification)
  against tokenizing and one plain forward: target <= 4; the detail column gives the speed-up
  over ablating every neuron one at a time (n_layers * d_mlp forwards, extrapolated from the
  forward time).
- `neuron_activations` over a corpus (tokenize, token-budget batches, forward to the neuron's
  layer, the streaming top-k of `max_activating_examples`, and the neuron's running mean)
  against `harvest` at that layer on pre-tokenized batches of the same size, tokens/s:
  target >= 0.8.

Each pair is timed in turn, round after round, keeping the best of each: CPU time of the process
with one torch thread on a CPU (so other processes on a shared machine do not count), wall time
with synchronisation on a GPU.
"""

from __future__ import annotations


import torch
from transformer_lens import HookedTransformer

from benchmarks.common import Row, interleaved
from interp.core.hooks import harvest
from interp.core.tokens import tokenize
from interp.neurons import ablate_neurons, neuron_activations, rank_neurons, token_logprob

SUBJECTS = ["key", "keys", "dog", "dogs", "book", "books", "teacher", "teachers"]
ATTRACTORS = ["cabinet", "cabinets", "box", "boxes", "house", "houses", "tree", "trees"]
PROMPTS = [f"the {s} near the {a}" for s in SUBJECTS for a in ATTRACTORS]  # 64 prompts
CORPUS = [f"{p} is old . the capital of france is paris . we visited france last year ." for p in PROMPTS] * 4


def run(model: HookedTransformer) -> list[Row]:
    device = next(model.parameters()).device
    tokens, mask = tokenize(model, PROMPTS)  # for the plain forward the extrapolation uses
    layer = model.cfg.n_layers // 2
    neurons = [(layer, i) for i in range(0, model.cfg.d_mlp, max(1, model.cfg.d_mlp // 10))][:10]
    rows = []

    @torch.inference_mode()
    def two_forwards() -> None:
        t, m = tokenize(model, PROMPTS)
        model(t, attention_mask=m)
        model(t, attention_mask=m)

    def ablate() -> None:
        ablate_neurons(model, PROMPTS, neurons, targets=["is", "are"], batch_size=64, progress=False)

    t = interleaved({"base": two_forwards, "ablate": ablate}, device)
    t_base, t_abl = t["base"], t["ablate"]
    ratio = t_abl / t_base
    rows.append(Row(
        "ablate_neurons (clean + ablated) / tokenize + two forwards", ratio, "<= 1.3", ratio <= 1.3,
        f"{len(PROMPTS)} prompts, 10 neurons; {t_abl * 1e3:.1f} ms vs {t_base * 1e3:.1f} ms",
    ))

    @torch.inference_mode()
    def one_forward() -> None:
        t, m = tokenize(model, PROMPTS)
        model(t, attention_mask=m)

    metric = token_logprob(model, "is")

    def attribution() -> None:
        rank_neurons(model, PROMPTS, metric, k=10, verify=False, batch_size=64, progress=False)

    t = interleaved({"forward": one_forward, "attribution": attribution}, device)
    t_fwd, t_attr = t["forward"], t["attribution"]
    plain = torch.inference_mode()(lambda: model(tokens, attention_mask=mask))
    t_plain = interleaved({"plain": plain}, device)["plain"]
    n_neurons = model.cfg.n_layers * model.cfg.d_mlp
    ratio = t_attr / t_fwd
    rows.append(Row(
        "rank_neurons attribution, all neurons / tokenize + one forward", ratio, "<= 4", ratio <= 4,
        f"{n_neurons} neurons scored; {n_neurons * t_plain / t_attr:.0f}x faster than "
        "one ablation forward per neuron",
    ))

    batches = [tokenize(model, CORPUS[i:i + 32]) for i in range(0, len(CORPUS), 32)]
    n_tokens = sum(int(m.sum()) for _, m in batches)

    def harvest_only() -> None:
        for t, m in batches:
            harvest(model, t, [("mlp_post", layer)], attention_mask=m)

    def topk() -> None:
        neuron_activations(model, CORPUS, (layer, 3), k=20, batch_size=32, progress=False)

    t = interleaved({"harvest": harvest_only, "topk": topk}, device, rounds=5)
    t_h, t_k = t["harvest"], t["topk"]
    ratio = t_h / t_k  # tokens/s of neuron_activations over tokens/s of harvest
    rows.append(Row("neuron_activations / harvest alone, tokens/s", ratio, ">= 0.8", ratio >= 0.8,
                    f"{len(CORPUS)} texts, {n_tokens} tokens, layer {layer}; "
                    f"{t_k * 1e3:.1f} ms vs {t_h * 1e3:.1f} ms"))
    return rows
