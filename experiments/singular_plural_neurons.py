"""Singular/plural neurons: which MLP neurons carry subject number, and what does ablating them do?

In `The key to the cabinets ___` the verb must agree with `key`, not with the nearer
`cabinets`. Ranking MLP neurons by how well their activation at the verb position separates
singular-subject from plural-subject prompts (standardized mean difference,
`interp.separating_neurons`), then ablating the top ones (zero and mean ablation), shows a
small set of neurons that matter far more than random neurons of the same count, while the
argmax verb rarely flips: one neuron, or a handful, rarely decides alone. A second ranking
beside it scores neurons by how much they support the correct verb over the wrong one
(attribution patching of the logit difference, Nanda 2023, "Attribution Patching"; verified by
real ablation), and its top k is ablated too (Finlayson et al. 2021, "Causal Analysis of Syntactic
Agreement Mechanisms in Neural Language Models"; the lecture's GPT-2 small anchors are layer 10
#2096 and layer 9 #1094, which this script ablates one at a time on any model whose profile lists
them as its `known_neurons` for number agreement: `gpt2`).

Run: `python experiments/singular_plural_neurons.py [--model NAME] [--out DIR] [--quick]`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, ClassVar

import plotly.graph_objects as go
import torch
from tqdm.auto import tqdm

import interp
from interp.core.controls import random_neurons
from interp.core.report import ExperimentConfig, load_for, main, script_notebook

#: The `ModelProfile.known_neurons` entry this experiment checks (GPT-2 small: L10.2096, L9.1094).
BEHAVIOUR = "number agreement"


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """Settings of the singular/plural neuron experiment."""

    n_train: int = 160
    """Prompts the neurons are ranked on (subject and attractor of opposite number)."""
    n_heldout: int = 160
    """Held-out prompts the ablations are measured on (never-seen subject/attractor triples)."""
    k: int = 10
    """How many top-ranked neurons to ablate together."""
    n_random: int = 5
    """Random same-size neuron sets (same layers, same counts) for the control."""
    min_ratio: float = 3.0
    """Criterion: the top-k's drop in agreement logit-difference is at least this times random-k's."""

    QUICK: ClassVar[dict[str, Any]] = {"n_train": 96, "n_heldout": 96, "n_random": 3}


@dataclass(frozen=True)
class Item:
    prompt: str
    plural: bool
    good: str
    bad: str


def prompt_sets(model, cfg: Config) -> tuple[list[Item], list[Item]]:
    """Train and held-out agreement prompts (subject and attractor differ in number), from the prompt
    collection the model's profile reads: the built-in corpus's (toy) or `interp.data`'s nouns (English)."""
    if interp.profile_for(model).prompt_set == "toy":
        corpus = interp.toy.corpus
        split = [
            corpus.agreement_prompts(s, n, seed=i)
            for i, (s, n) in enumerate((("train", cfg.n_train), ("heldout", cfg.n_heldout)))
        ]
        return tuple([Item(p.prompt, p.plural_subject, p.correct[0], p.wrong[0]) for p in ps] for ps in split)
    nouns = interp.data.pairs("singular_plural")
    rng, items = random.Random(cfg.seed), []
    for i in range(cfg.n_train + cfg.n_heldout):
        (s1, p1), (s2, p2) = rng.sample(nouns, 2)
        plural = i % 2 == 1
        subject, attractor = (p1, s2) if plural else (s1, p2)
        prep = rng.choice(("to", "near", "beside", "behind", "next to"))
        items.append(
            Item(
                f"The {subject} {prep} the {attractor}",
                plural,
                "are" if plural else "is",
                "is" if plural else "are",
            )
        )
    return items[: cfg.n_train], items[cfg.n_train :]


def ablate(model, neurons, method: str, held: list[Item], train: list[Item]):
    """Ablate `neurons` together on the held-out prompts (`method`: zero, or mean over the training
    prompts); the result and its summary: logit-difference drop, accuracy after, share of argmax changes."""
    res = interp.ablate_neurons(
        model,
        [p.prompt for p in held],
        list(neurons),
        method=method,
        reference=[p.prompt for p in train],
        targets=["is", "are"],
        metric=interp.logit_diff(model, [p.good for p in held], [p.bad for p in held]),
        progress=False,
    )
    return res, {
        "logit_diff_drop": -res.metric_change,
        "accuracy_after": float((res.metric_after > 0).float().mean()),
        "top1_changed": res.top1_changed,
    }


def known_neurons(model, held: list[Item], train: list[Item]) -> dict[str, dict]:
    """Each published number-agreement neuron of the model's profile (`known_neurons`), zero-ablated
    alone on the held-out prompts: `{"L10.2096": summary, ...}`; empty when the profile lists none (or
    the model lacks them, as a shrunken copy would)."""
    listed = interp.profile_for(model).known_neurons.get(BEHAVIOUR, ())
    return {
        f"L{layer}.{i}": ablate(model, [(layer, i)], "zero", held, train)[1]
        for layer, i in listed
        if layer < model.cfg.n_layers and i < model.cfg.d_mlp
    }


def run(cfg: Config, model=None) -> dict:
    model = load_for(cfg, model)
    nb = script_notebook(__file__, cfg, model)
    train, held = prompt_sets(model, cfg)

    def metric(items):
        return interp.logit_diff(model, [p.good for p in items], [p.bad for p in items])

    separation = interp.separating_neurons(
        model,
        [p.prompt for p in train if not p.plural],
        [p.prompt for p in train if p.plural],
        k=cfg.k,
        progress=False,
    )
    top = list(separation.neurons)
    ranking = interp.rank_neurons(model, [p.prompt for p in train], metric(train), k=cfg.k, progress=False)

    effects, controls, results = {}, {}, {}
    for method in tqdm(("zero", "mean"), desc="ablations"):
        results[method], effects[method] = ablate(model, top, method, held, train)
        rand = [
            ablate(model, random_neurons(model, top, seed=cfg.seed + s), method, held, train)[1]
            for s in range(cfg.n_random)
        ]
        controls[method] = {key: sum(r[key] for r in rand) / len(rand) for key in rand[0]}
        controls[method]["logit_diff_drop_per_seed"] = [r["logit_diff_drop"] for r in rand]
    _, single = ablate(model, top[:1], "zero", held, train)
    _, by_attribution = ablate(model, list(ranking.neurons), "zero", held, train)
    before = results["zero"].metric_before
    acc_before = float((before > 0).float().mean())
    ratio = {  # None where random neurons do not lower the difference at all (no ratio to speak of)
        m: effects[m]["logit_diff_drop"] / controls[m]["logit_diff_drop"]
        if controls[m]["logit_diff_drop"] > 1e-6
        else None
        for m in effects
    }
    zero_top, zero_rand = effects["zero"]["logit_diff_drop"], controls["zero"]["logit_diff_drop"]
    ratio_text = "random neurons do not lower it" if ratio["zero"] is None else f"{ratio['zero']:.1f}x"
    baseline = float(results["zero"].metric_before.mean())
    reproduced = baseline > 0 and zero_top > 0 and zero_top >= cfg.min_ratio * max(zero_rand, 0.0)

    anchors = known_neurons(model, held, train)

    plural = torch.tensor([p.plural for p in held])
    fig = go.Figure()
    for label, res, color in (
        ("clean", None, "#9aa5b1"),
        (f"top-{cfg.k} zero-ablated", results["zero"], "#d9480f"),
        (f"top-{cfg.k} mean-ablated", results["mean"], "#f08c00"),
    ):
        probs = results["zero"].prob_before if res is None else res.prob_after
        xs, ys = [], []
        for group, mask in (("singular subject", ~plural), ("plural subject", plural)):
            for j, tok in enumerate(("is", "are")):
                xs.append(f"{group}: p({tok})")
                ys.append(float(probs[mask, j].mean()))
        fig.add_trace(go.Bar(name=label, x=xs, y=ys, marker_color=color))
    fig.update_layout(
        barmode="group",
        title=f"Verb probabilities before and after ablating the top-{cfg.k} neurons",
        yaxis_title="mean probability",
    )
    nb.figure("is_are_bars", fig, "p(is), p(are) on singular- and plural-subject prompts, clean and ablated")
    fig = go.Figure(
        [
            go.Bar(
                x=["top-k", *[f"random seed {s}" for s in range(cfg.n_random)]],
                y=[zero_top, *controls["zero"]["logit_diff_drop_per_seed"]],
                marker_color=["#d9480f"] + ["#adb5bd"] * cfg.n_random,
            )
        ]
    )
    fig.update_layout(
        title=f"Drop in agreement logit-difference, zero ablation of {cfg.k} neurons",
        yaxis_title="mean drop (nats)",
    )
    nb.figure(
        "top_vs_random", fig, "the top-ranked neurons against random neurons of the same layers and count"
    )
    nb.figure("separation", separation.plot(), "the neurons that best separate singular from plural subjects")
    nb.figure("attribution", ranking.plot(), "second ranking: attribution vs measured ablation for its top k")
    nb.table(
        "Top neurons by separation",
        [
            {"neuron": f"L{lay}.{i}", "d (singular - plural)": float(d), "AUC": float(a)}
            for (lay, i), d, a in zip(top, separation.top("d"), separation.top("auc"))
        ],
    )
    nb.table(
        "Top neurons by attribution (second ranking)",
        [
            {
                "neuron": f"L{lay}.{i}",
                "attribution": float(a),
                "measured (one at a time)": None if ranking.ablation is None else float(m),
            }
            for (lay, i), a, m in zip(
                ranking.neurons,
                ranking.attribution,
                ranking.ablation if ranking.ablation is not None else ranking.attribution,
            )
        ],
    )
    numbers = {
        "n_train": len(train),
        "n_heldout": len(held),
        "top_neurons": [f"L{a}.{b}" for a, b in top],
        "ranking": "separation (standardized mean difference, singular vs plural subject, last position)",
        "top_d": [float(x) for x in separation.top("d")],
        "top_auc": [float(x) for x in separation.top("auc")],
        "attribution_top_neurons": [f"L{a}.{b}" for a, b in ranking.neurons],
        "attribution_top_k_zero": by_attribution,
        "overlap_separation_attribution": len(set(top) & set(ranking.neurons)),
        "ranking_spearman_attribution_vs_ablation": ranking.spearman,
        "attribution_reliable": ranking.reliable,
        "attribution_reliability": ranking.reliability,
        "baseline_logit_diff": float(before.mean()),
        "accuracy_before": acc_before,
        "zero": effects["zero"],
        "mean": effects["mean"],
        "ratio_top_over_random": ratio,
        "single_top_neuron": single,
        "known_neurons": anchors or "not run (the model's profile lists no number-agreement neurons)",
    }
    return nb.finish(
        question="Do a few MLP neurons carry subject number for verb agreement, and does removing them "
        "flip the verb?",
        method=(
            f"Rank every MLP neuron by how well its last-position activation separates singular- from "
            f"plural-subject prompts (standardized mean difference d over {len(train)} prompts; second "
            f"ranking: attribution patching of the logit difference, top {cfg.k} verified by real ablation); "
            f"then on "
            f"{len(held)} held-out prompts ablate the top {cfg.k} together (zero, and mean over the training "
            f"prompts) and {cfg.n_random} random sets of the same count in the same layers; also the top "
            f"neuron alone."
        ),
        claim="The top-ranked neurons hurt agreement far more than random neurons of the same count, yet the "
        "argmax verb rarely changes.",
        criterion=(
            f"zero ablation: top-{cfg.k} logit-difference drop > 0 and >= {cfg.min_ratio} x the mean "
            f"random-{cfg.k} drop (the neuron test's threshold)"
        ),
        reproduced=reproduced,
        numbers=numbers,
        controls={f"random_{cfg.k}_{m}": c for m, c in controls.items()},
        conclusion=(
            f"Zero-ablating the top {cfg.k} lowers the logit difference by {zero_top:.3f} against "
            f"{zero_rand:.3f} for random neurons ({ratio_text}; mean ablation "
            f"{effects['mean']['logit_diff_drop']:.3f} vs {controls['mean']['logit_diff_drop']:.3f}). "
            f"Agreement accuracy goes {acc_before:.2f} -> {effects['zero']['accuracy_after']:.2f}; the "
            f"argmax token changes on {effects['zero']['top1_changed']:.0%} of prompts (top neuron alone: "
            f"{single['top1_changed']:.0%}, drop {single['logit_diff_drop']:.3f}). The attribution ranking's "
            f"top {cfg.k} (overlap {len(set(top) & set(ranking.neurons))}) drops it by "
            f"{by_attribution['logit_diff_drop']:.3f}."
        ),
        published=(
            "Finlayson et al. 2021 and the lecture (GPT-2 small): agreement is spread over neurons such as "
            "layer 10 #2096 and layer 9 #1094; ablating one changes probabilities but rarely the argmax."
        ),
        differences=(
            "The built-in model (4 layers, 512 neurons each) learned agreement from a generated corpus "
            "with 5 verb pairs; the ranking is by activation contrast (which also picks up neurons for the "
            "attractor's number, opposite to the subject's here), with attribution beside it; published "
            "neurons (GPT-2 small's L10.2096 and L9.1094) are checked only on a model whose profile lists "
            "them (`known_neurons`)."
        ),
    )


if __name__ == "__main__":
    main(run, Config)
