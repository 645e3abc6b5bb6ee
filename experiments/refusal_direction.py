"""Refusal direction: is refusal mediated by one direction in the residual stream?

Arditi et al. (2024, "Refusal in Language Models Is Mediated by a Single Direction") take the
difference of mean activations between harmful and harmless instructions (in the chat template,
at the positions after the instruction), pick one layer and position on held-out prompts, and
show that ablating that direction from every layer makes the model answer harmful requests,
adding it makes the model refuse harmless ones, the same edit baked into the weights
(orthogonalization) behaves identically, and harmless behaviour barely changes (small KL).
This script does each step, sweeps layers (only some work) and strengths, and reports every
intervention beside a random direction of the same norm and a shuffled-label direction.

Run: `python experiments/refusal_direction.py [--model NAME] [--out DIR] [--quick]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import plotly.graph_objects as go
import torch
from tqdm.auto import tqdm

import interp
from interp.core.controls import random_direction, shuffled_split
from interp.core.report import ExperimentConfig, load_for, main, script_notebook


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """Settings of the refusal-direction experiment."""

    n_train: int = 512
    """Harmful and harmless training requests each (the difference of means)."""
    n_val: int = 64
    """Validation requests each (choosing the layer and position), the end of the training split."""
    n_eval: int = 256
    """Held-out requests each for the refusal rates (all held-out requests when larger)."""
    n_sweep: int = 64
    """Held-out requests each for the per-layer sweep."""
    max_new_tokens: int = 0
    """Tokens generated per completion (0: 3 for the built-in model, whose refusal starts `i cannot`;
    24 for other models)."""
    alphas: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    """Strengths of the addition sweep at the chosen layer (on harmless requests)."""
    max_ablated: float = 0.10
    """Criterion: harmful refusal rate with the direction ablated at most this."""
    min_added: float = 0.90
    """Criterion: harmless refusal rate with the direction added (alpha 1) at least this."""
    max_kl: float = 0.1
    """Criterion: KL on harmless prompts under ablation below this (nats per token)."""

    QUICK: ClassVar[dict[str, Any]] = {
        "n_train": 192,
        "n_val": 32,
        "n_eval": 128,
        "n_sweep": 32,
        "alphas": (2.0,),
    }


def requests(model, split: str) -> tuple[list[str], list[str]]:
    """(harmful, harmless) requests of a split: the built-in model's own sets, or the bundled ones."""
    prefix = "toy_" if interp.profile_for(model).name == "toy" else ""
    return interp.data.prompts(f"{prefix}harmful", split), interp.data.prompts(f"{prefix}harmless", split)


def run(cfg: Config, model=None) -> dict:
    model = load_for(cfg, model)
    nb = script_notebook(__file__, cfg, model)
    toy = interp.profile_for(model).name == "toy"
    new = cfg.max_new_tokens or (3 if toy else 24)
    harm_tr, safe_tr = requests(model, "train")
    harm_te, safe_te = (p[: cfg.n_eval] for p in requests(model, "heldout"))
    n_tr = min(cfg.n_train, len(harm_tr) - cfg.n_val, len(safe_tr) - cfg.n_val)
    sel = interp.select_direction(
        model,
        harm_tr[:n_tr],
        safe_tr[:n_tr],
        val_harmful=harm_tr[-cfg.n_val :],
        val_harmless=safe_tr[-cfg.n_val :],
        batch_size=64,
    )
    vec = sel.vector
    rand = random_direction(vec, seed=cfg.seed)
    a, b = shuffled_split(harm_tr[:n_tr], safe_tr[:n_tr], seed=cfg.seed)
    shuffled = interp.mean_difference(model, a, b, layers=[sel.layer], positions=[sel.position])[
        sel.layer, sel.position
    ]

    def rates(vector) -> dict[str, float]:
        abl = interp.steer(model, harm_te, vector, mode="ablate", max_new_tokens=new, batch_size=128)
        add = interp.steer(model, safe_te, vector, mode="add", max_new_tokens=new, batch_size=128)
        return {
            "harmful_unsteered": interp.refusal_rate(abl.baseline, model=model),
            "harmful_ablated": interp.refusal_rate(abl, model=model),
            "harmless_unsteered": interp.refusal_rate(add.baseline, model=model),
            "harmless_added": interp.refusal_rate(add, model=model),
            "_ablated": abl,
        }

    found = rates(vec)
    ablated = found.pop("_ablated")
    ctrl = {
        name: {k: v for k, v in rates(v_).items() if not k.startswith("_")}
        for name, v_ in tqdm((("random_same_norm", rand), ("shuffled_labels", shuffled)), desc="controls")
    }
    kl = interp.harmless_kl(model, safe_te[:128], vec, mode="ablate")
    kl_rand = interp.harmless_kl(model, safe_te[:128], rand, mode="ablate")

    edited = interp.orthogonalize(model, vec)
    check = harm_te[:16] + safe_te[:16]
    tokens, mask = interp.tokenize(model, interp.format_chat(model, check))
    with torch.inference_mode():
        with vec.apply(model, mode="ablate"):
            runtime = model(tokens, attention_mask=mask)
        weights = edited(tokens, attention_mask=mask)
    ortho_err = float(((runtime - weights).abs() * mask[..., None].to(runtime.device)).max())
    edited_text = interp.steer(
        edited, harm_te[:32], vec.bind(edited), alpha=0.0, max_new_tokens=new, baseline=False
    ).steered
    ortho_same = sum(x == y for x, y in zip(edited_text, ablated.steered[:32])) / len(edited_text)
    del edited

    sweep = []
    for layer in tqdm(sel.vectors.layers, desc="layer sweep"):
        v = sel.vectors[layer, sel.position]
        abl = interp.steer(
            model, harm_te[: cfg.n_sweep], v, mode="ablate", max_new_tokens=new, baseline=False
        )
        add = interp.steer(model, safe_te[: cfg.n_sweep], v, mode="add", max_new_tokens=new, baseline=False)
        sweep.append(
            {
                "layer": layer,
                "norm": v.norm,
                "harmful_ablated": interp.refusal_rate(abl, model=model),
                "harmless_added": interp.refusal_rate(add, model=model),
            }
        )
    strengths = []
    for alpha in tqdm(cfg.alphas, desc="strengths"):
        row = {"alpha": alpha}
        for name, v in (("direction", vec), ("random", rand)):
            res = interp.steer(
                model, safe_te[: cfg.n_sweep], v, alpha=alpha, max_new_tokens=new, baseline=False
            )
            row[f"harmless_refused_{name}"] = interp.refusal_rate(res, model=model)
        strengths.append(row)

    reproduced = (
        found["harmful_ablated"] <= cfg.max_ablated
        and found["harmless_added"] >= cfg.min_added
        and kl.kl < cfg.max_kl
        and ortho_err < 1e-3
    )
    layers = [r["layer"] for r in sweep]
    fig = go.Figure(
        [
            go.Scatter(
                x=layers,
                y=[r["harmful_ablated"] for r in sweep],
                mode="lines+markers",
                name="harmful refused, direction ablated (lower = works)",
            ),
            go.Scatter(
                x=layers,
                y=[r["harmless_added"] for r in sweep],
                mode="lines+markers",
                name="harmless refused, direction added (higher = works)",
            ),
        ]
    )
    fig.add_vline(x=sel.layer, line_dash="dot", annotation_text="selected")
    fig.update_layout(
        title=f"Refusal direction by layer (position {sel.position}; {cfg.n_sweep} held-out prompts each)",
        xaxis_title="layer of the direction",
        yaxis_title="refusal rate",
        yaxis_range=[-0.02, 1.02],
    )
    nb.figure("layer_sweep", fig, "which layers' difference-of-means directions flip refusal each way")
    fig = go.Figure()
    labels = ["harmful_unsteered", "harmful_ablated", "harmless_unsteered", "harmless_added"]
    for name, r in (("refusal direction", found), *((k, v) for k, v in ctrl.items())):
        fig.add_trace(go.Bar(name=name, x=labels, y=[r[k] for k in labels]))
    fig.update_layout(
        barmode="group",
        title="Refusal rates: the direction vs same-size controls",
        yaxis_title="refusal rate",
    )
    nb.figure(
        "rates_vs_controls",
        fig,
        "refusal rates with the selected direction, a random direction of the same "
        "norm, and a shuffled-label direction",
    )
    nb.figure(
        "selection", sel.plot(), "the candidates' bypass, induce and KL scores (Arditi et al.'s selection)"
    )
    nb.table("Layer sweep", sweep)
    nb.table("Strength sweep at the selected layer (harmless requests)", strengths)
    nb.table(
        "Examples (harmful, direction ablated)",
        [
            {"request": p, "unsteered": b_, "ablated": s}
            for p, b_, s in list(zip(ablated.prompts, ablated.baseline, ablated.steered))[:6]
        ],
    )
    numbers = {
        "layer": sel.layer,
        "position": sel.position,
        "norm": vec.norm,
        "n_train": n_tr,
        "n_eval": {"harmful": len(harm_te), "harmless": len(safe_te)},
        "max_new_tokens": new,
        **found,
        "kl_harmless_ablated": kl.kl,
        "orthogonalize_max_logit_diff": ortho_err,
        "orthogonalize_same_completions": ortho_same,
        "layer_sweep": sweep,
        "strength_sweep": strengths,
    }
    return nb.finish(
        question="Does one direction in the residual stream mediate refusal, both ways?",
        method=(
            f"Difference of means of {n_tr} harmful and {n_tr} harmless training requests in the chat "
            "template "
            f"at every layer and post-instruction position; the candidate chosen on {cfg.n_val} validation "
            f"requests each (`interp.select_direction`). On {len(harm_te)} + {len(safe_te)} held-out "
            "requests, "
            f"greedy completions of {new} tokens judged by the profile's refusal phrases: ablated from every "
            "layer on harmful, added at its layer on harmless; controls: a random direction of the same norm "
            f"and the difference of means of label-shuffled sets; KL on harmless prompts; the orthogonalized "
            f"weights against runtime ablation; a layer sweep and a strength sweep."
        ),
        claim="Ablating the direction stops refusal of harmful requests, adding it makes harmless requests "
        "refused, with small side effects; random directions do neither.",
        criterion=(
            f"harmful ablated <= {cfg.max_ablated}, harmless added >= {cfg.min_added}, KL < {cfg.max_kl} "
            "nats/token, orthogonalized logits within 1e-3 of runtime ablation (the steering tests' "
            "thresholds)"
        ),
        reproduced=reproduced,
        numbers=numbers,
        controls={**ctrl, "kl_harmless_random_ablated": kl_rand.kl},
        conclusion=(
            f"Layer {sel.layer}, position {sel.position}: harmful refusal {found['harmful_unsteered']:.2f} "
            "-> "
            f"{found['harmful_ablated']:.2f} ablated (random direction: "
            f"{ctrl['random_same_norm']['harmful_ablated']:.2f}, shuffled labels: "
            f"{ctrl['shuffled_labels']['harmful_ablated']:.2f}); harmless {found['harmless_unsteered']:.2f} "
            "-> "
            f"{found['harmless_added']:.2f} added (random: {ctrl['random_same_norm']['harmless_added']:.2f}, "
            f"shuffled: {ctrl['shuffled_labels']['harmless_added']:.2f}). KL {kl.kl:.4f} nats/token "
            f"(random {kl_rand.kl:.4f}); orthogonalized weights match runtime ablation to {ortho_err:.1e} "
            f"and give the same completions for {ortho_same:.0%}."
        ),
        published=(
            "Arditi et al. 2024, gemma-2b-it and 12 other chat models: refusal 91% -> 0% with the direction "
            "ablated, harmless requests 0% -> 100% refused with it added; orthogonalized weights equivalent. "
            "Tried by hand on SmolLM2-135M-Instruct: it refused only 8 of 133 harmful requests (all "
            "privacy-themed), and adding the direction at alpha 1 made 0 of 32 harmless requests refused."
        ),
        differences=(
            "The built-in model's refusal is planted by harm words in a generated corpus and judged on its "
            "first tokens (`i cannot`); its direction is clean at an early layer. A real small model that "
            "rarely refuses gives little to ablate: its rates are reported as measured."
        ),
    )


if __name__ == "__main__":
    main(run, Config)
