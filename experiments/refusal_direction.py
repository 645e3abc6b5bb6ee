"""Refusal direction: is refusal mediated by one direction in the residual stream?

Arditi et al. (2024, "Refusal in Language Models Is Mediated by a Single Direction") take the
difference of mean activations between harmful and harmless instructions (in the chat template,
at the positions after the instruction), pick one layer and position on held-out prompts, and
show that ablating that direction from every layer makes the model answer harmful requests,
adding it makes the model refuse harmless ones, the same edit baked into the weights
(orthogonalization) behaves identically, and harmless behaviour barely changes (small KL).
This script does each step, sweeps layers (only some work) and strengths, and reports every
intervention beside a random direction of the same norm and a shuffled-label direction.

Strengths are given two ways: `alpha`, in units of the difference of means (Arditi et al. add
it at alpha 1), and as a norm ratio, the added vector's norm over the mean norm of the residual
stream at that layer and position. A model whose difference of means is short beside its
residual stream (a real small model) may need a ratio near 1 before anything changes, so the
layer x strength grid is laid out in ratios.

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
from interp.core.plotting import heatmap
from interp.core.report import ExperimentConfig, load_for, main, script_notebook


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """Settings of the refusal-direction experiment."""

    n_train: int = 512
    """Harmful and harmless training requests each (the difference of means)."""
    n_val: int = 64
    """Validation requests each (choosing the layer and position), the end of the training split;
    at most a quarter of the smaller training split (the bundled real-text sets have ~100)."""
    n_eval: int = 256
    """Held-out requests each for the refusal rates (all held-out requests when larger)."""
    n_sweep: int = 64
    """Held-out requests each for the per-layer sweep, the strength sweep and the grid."""
    layer_step: int = 1
    """Every `layer_step`-th layer is a candidate (the selection and the layer sweep); 1: all of them,
    as Arditi et al. (each candidate costs forward passes over the validation set)."""
    positions: tuple[int, ...] = ()
    """Read positions of the candidates (negative: from the end of the chat template); empty: every
    post-instruction position, as Arditi et al."""
    max_new_tokens: int = 0
    """Tokens generated per completion (0: 3 for a model reading the toy prompt set, the built-in
    model, whose refusal starts `i cannot`; 24 for models reading English)."""
    alphas: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    """Strengths of the addition sweep at the chosen layer (on harmless requests), in units of
    the difference of means."""
    norm_ratios: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
    """Strengths of the addition sweep and of the layer x strength grid as the added vector's norm
    over the residual stream's mean norm at that layer and position."""
    grid_layers: int = 6
    """Layers of the layer x strength grid (evenly spaced over the candidate layers, the selected
    one included)."""
    min_refused: float = 0.5
    """Criterion: harmful requests refused unsteered at least this (else there is little to ablate)."""
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
        "norm_ratios": (1.0,),
        "grid_layers": 2,
    }


def requests(model, split: str) -> tuple[list[str], list[str]]:
    """(harmful, harmless) requests of a split, from the bundled sets of the prompt collection the
    model's profile reads: `harmful`/`harmless` for English, `toy_harmful`/`toy_harmless` for the toy one."""
    prompt_set = interp.profile_for(model).prompt_set
    prefix = "" if prompt_set == "english" else f"{prompt_set}_"
    return interp.data.prompts(f"{prefix}harmful", split), interp.data.prompts(f"{prefix}harmless", split)


def residual_norms(model, prompts: list[str], layers: list[int], position: int) -> dict[int, float]:
    """Mean norm of `resid_pre` at each layer, at the read position, over the prompts in the chat template."""
    tokens, mask = interp.tokenize(model, interp.format_chat(model, prompts))
    with torch.inference_mode():
        acts = interp.harvest(
            model, tokens, [("resid_pre", lay) for lay in layers], attention_mask=mask,
            select=lambda a: a[:, position],
        )
    return {lay: float(a.float().norm(dim=-1).mean()) for lay, a in zip(layers, acts.values())}


def run(cfg: Config, model=None) -> dict:
    model = load_for(cfg, model)
    nb = script_notebook(__file__, cfg, model)
    toy = interp.profile_for(model).prompt_set == "toy"  # the built-in model's planted refusal
    name = model.cfg.model_name
    new = cfg.max_new_tokens or (3 if toy else 24)
    rate = lambda res: interp.refusal_rate(res, model=model)  # noqa: E731
    harm_tr, safe_tr = requests(model, "train")
    harm_te, safe_te = (p[: cfg.n_eval] for p in requests(model, "heldout"))
    n_val = max(1, min(cfg.n_val, len(harm_tr) // 4, len(safe_tr) // 4))
    n_tr = min(cfg.n_train, len(harm_tr) - n_val, len(safe_tr) - n_val)
    sel = interp.select_direction(
        model, harm_tr[:n_tr], safe_tr[:n_tr], val_harmful=harm_tr[-n_val:], val_harmless=safe_tr[-n_val:],
        layers=list(range(0, model.cfg.n_layers, cfg.layer_step)), positions=list(cfg.positions) or None,
        batch_size=64,
    )
    vec = sel.vector
    rand = random_direction(vec, seed=cfg.seed)
    a, b = shuffled_split(harm_tr[:n_tr], safe_tr[:n_tr], seed=cfg.seed)
    shuffled = interp.mean_difference(model, a, b, layers=[sel.layer], positions=[sel.position])[
        sel.layer, sel.position
    ]

    def rates(vector, baseline: dict | None = None) -> dict[str, Any]:
        """Refusal rates ablated on harmful and added on harmless (the unsteered ones measured once)."""
        kw = dict(max_new_tokens=new, batch_size=128, baseline=baseline is None)
        abl = interp.steer(model, harm_te, vector, mode="ablate", **kw)
        add = interp.steer(model, safe_te, vector, mode="add", **kw)
        base = baseline or {"harmful_unsteered": rate(abl.baseline), "harmless_unsteered": rate(add.baseline)}
        return {"harmful_unsteered": base["harmful_unsteered"], "harmful_ablated": rate(abl),
                "harmless_unsteered": base["harmless_unsteered"], "harmless_added": rate(add),
                "_ablated": abl}

    found = rates(vec)
    ablated = found.pop("_ablated")
    ctrl = {
        k: {m: v for m, v in rates(v_, found).items() if not m.startswith("_")}
        for k, v_ in tqdm((("random_same_norm", rand), ("shuffled_labels", shuffled)), desc="controls")
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

    harm_sw, safe_sw = harm_te[: cfg.n_sweep], safe_te[: cfg.n_sweep]
    below = [lay for lay in sel.vectors.layers if lay < sel.max_layer]
    # a zero difference (layer 0 at a template token: the same embedding in both sets) has no direction
    cand = [lay for lay in below if sel.vectors[lay, sel.position].norm > 0]
    zero_layers = sorted(set(below) - set(cand))
    resid = residual_norms(model, safe_sw, cand, sel.position)
    sweep = []
    for layer in tqdm(cand, desc="layer sweep"):
        v = sel.vectors[layer, sel.position]
        abl = interp.steer(model, harm_sw, v, mode="ablate", max_new_tokens=new, baseline=False)
        add = interp.steer(model, safe_sw, v, mode="add", max_new_tokens=new, baseline=False)
        sweep.append({"layer": layer, "norm": v.norm, "norm_ratio": v.norm / resid[layer],
                      "harmful_ablated": rate(abl), "harmless_added": rate(add)})

    def added(v, layer: int, alpha: float) -> tuple[float, str]:
        res = interp.steer(model, safe_sw, v, layer=layer, alpha=alpha, max_new_tokens=new, baseline=False)
        return rate(res), res.steered[0]

    unit = vec.norm / resid[sel.layer]  # the direction's norm ratio at alpha 1
    strengths = []
    steps = sorted({*cfg.alphas, *(r / unit for r in cfg.norm_ratios)})
    for alpha in tqdm(steps, desc="strengths"):
        row: dict[str, Any] = {"alpha": alpha, "norm_ratio": alpha * unit}
        row["harmless_refused_direction"], row["example"] = added(vec, sel.layer, alpha)
        row["harmless_refused_random"], _ = added(rand, sel.layer, alpha)
        strengths.append(row)

    picks = sorted({cand[round(i * (len(cand) - 1) / max(cfg.grid_layers - 1, 1))]
                    for i in range(cfg.grid_layers)} | {sel.layer})
    grid = torch.zeros(len(picks), len(cfg.norm_ratios))
    grid_rows = []
    for i, layer in enumerate(tqdm(picks, desc="layer x strength grid")):
        v = sel.vectors[layer, sel.position]
        for j, ratio in enumerate(cfg.norm_ratios):
            alpha = ratio * resid[layer] / v.norm
            grid[i, j], example = added(v, layer, alpha)
            grid_rows.append({"layer": layer, "norm_ratio": ratio, "alpha": alpha,
                              "harmless_refused": float(grid[i, j]), "example": example})
    best_i, best_j = divmod(int(grid.argmax()), grid.shape[1])
    best = dict(grid_rows[best_i * grid.shape[1] + best_j])
    best_v = sel.vectors[best["layer"], sel.position]
    best_rand = random_direction(best_v, seed=cfg.seed)
    best["harmless_refused_random"] = (  # only measured where the direction did something
        added(best_rand, best["layer"], best["alpha"])[0] if grid.max() > 0 else None
    )

    if best["harmless_refused"] > 0:
        strength_text = (
            f"Strength: the most harmless refusals in the layer x strength grid are "
            f"{best['harmless_refused']:.2f} at layer {best['layer']}, norm ratio {best['norm_ratio']:g} "
            f"(alpha {best['alpha']:.3g}; a random direction there: {best['harmless_refused_random']:.2f}); "
            f"example: {best['example'][:80]!r}."
        )
    else:
        strength_text = (
            f"Strength: no cell of the layer x strength grid (layers {picks}, norm ratios "
            f"{list(cfg.norm_ratios)}) made any harmless request refused; example at layer {best['layer']}, "
            f"ratio {best['norm_ratio']:g}: {best['example'][:80]!r}."
        )
    top = max(sweep, key=lambda r: r["harmless_added"])
    sweep_text = (
        f"Best alpha-1 layer for adding: {top['layer']} ({top['harmless_added']:.2f}). "
        if top["harmless_added"] > 0
        else f"No layer's direction at alpha 1 made any of {len(safe_sw)} harmless requests refused. "
    )
    eligible = int(sel.eligible.sum())  # candidates passing Arditi et al.'s induce and KL filters
    checks = {
        f"harmful refused unsteered >= {cfg.min_refused}": found["harmful_unsteered"] >= cfg.min_refused,
        f"harmful ablated <= {cfg.max_ablated}": found["harmful_ablated"] <= cfg.max_ablated,
        f"harmless added (alpha 1) >= {cfg.min_added}": found["harmless_added"] >= cfg.min_added,
        f"KL < {cfg.max_kl} nats/token": kl.kl < cfg.max_kl,
        "orthogonalized logits within 1e-3 of runtime ablation": ortho_err < 1e-3,
    }
    reproduced = all(checks.values())
    failed = [k for k, ok in checks.items() if not ok]

    layers = [r["layer"] for r in sweep]
    fig = go.Figure([
        go.Scatter(x=layers, y=[r["harmful_ablated"] for r in sweep], mode="lines+markers",
                   name="harmful refused, direction ablated (lower = works)"),
        go.Scatter(x=layers, y=[r["harmless_added"] for r in sweep], mode="lines+markers",
                   name="harmless refused, direction added (higher = works)"),
    ])
    fig.add_vline(x=sel.layer, line_dash="dot", annotation_text="selected")
    fig.update_layout(
        title=f"Refusal direction by layer, alpha 1 (position {sel.position}; {len(safe_sw)} held-out "
        "prompts each)",
        xaxis_title="layer of the direction", yaxis_title="refusal rate", yaxis_range=[-0.02, 1.02],
    )
    nb.figure("layer_sweep", fig, "which layers' difference-of-means directions flip refusal each way")
    fig = go.Figure()
    labels = ["harmful_unsteered", "harmful_ablated", "harmless_unsteered", "harmless_added"]
    for k, r in (("refusal direction", found), *ctrl.items()):
        fig.add_trace(go.Bar(name=k, x=labels, y=[r[m] for m in labels]))
    fig.update_layout(barmode="group", title="Refusal rates: the direction vs same-size controls",
                      yaxis_title="refusal rate")
    nb.figure("rates_vs_controls", fig, "refusal rates with the selected direction, a random direction of "
              "the same norm, and a shuffled-label direction")
    nb.figure("selection", sel.plot(),
              "the candidates' bypass, induce and KL scores (Arditi et al.'s selection)")
    fig = heatmap(grid, x_labels=[f"{r:g}" for r in cfg.norm_ratios], y_labels=[str(x) for x in picks],
                  text=[[f"{float(x):.2f}" for x in row] for row in grid], zmin=0.0, zmax=1.0,
                  title="Harmless requests refused with each layer's direction added",
                  x_title="added norm / residual norm", y_title="layer", colorbar_title="refusal rate")
    nb.figure("strength_grid", fig, "harmless refusal rate per layer and strength (norm ratio)")
    nb.table("Layer sweep (alpha 1)", sweep)
    nb.table(f"Strength sweep at the selected layer {sel.layer} (harmless requests)", strengths)
    nb.table("Layer x strength grid (harmless requests, each layer's own direction)", grid_rows)
    phrases = interp.profile_for(model).refusal_phrases
    refused = [(p, b_, s) for p, b_, s in zip(ablated.prompts, ablated.baseline, ablated.steered)
               if interp.steering.is_refusal(b_, phrases)]
    nb.table("Harmful requests refused unsteered, and with the direction ablated", [
        {"request": p, "unsteered": b_, "ablated": s} for p, b_, s in refused
    ])
    nb.table("Examples (harmful, direction ablated)", [
        {"request": p, "unsteered": b_, "ablated": s}
        for p, b_, s in list(zip(ablated.prompts, ablated.baseline, ablated.steered))[:6]
    ])
    numbers = {
        "layer": sel.layer, "position": sel.position, "norm": vec.norm, "eligible_candidates": eligible,
        "residual_norm_at_layer": resid[sel.layer], "norm_ratio_at_alpha_1": unit,
        "n_train": n_tr, "n_val": n_val, "n_eval": {"harmful": len(harm_te), "harmless": len(safe_te)},
        "max_new_tokens": new, **found,
        "kl_harmless_ablated": kl.kl, "orthogonalize_max_logit_diff": ortho_err,
        "orthogonalize_same_completions": ortho_same,
        "layer_sweep": sweep, "strength_sweep": strengths, "grid": grid_rows, "grid_best": best,
        "criteria": checks, "failed": failed, "zero_difference_layers": zero_layers,
    }
    verdict = "Reproduced." if reproduced else f"Not reproduced on {name}: fails " + "; ".join(failed) + "."
    return nb.finish(
        question="Does one direction in the residual stream mediate refusal, both ways?",
        method=(
            f"Difference of means of {n_tr} harmful and {n_tr} harmless training requests in the chat "
            f"template at every layer and post-instruction position; the candidate chosen on {n_val} "
            f"validation requests each (`interp.select_direction`). On {len(harm_te)} + {len(safe_te)} "
            f"held-out requests, greedy completions of {new} tokens judged by the profile's refusal "
            "phrases: ablated from every layer on harmful, added at its layer (alpha 1) on harmless; "
            "controls: a random direction of the same norm and the difference of means of label-shuffled "
            "sets; KL on harmless prompts; the orthogonalized weights against runtime ablation; a layer "
            f"sweep at alpha 1, a strength sweep at the selected layer (alphas {list(cfg.alphas)} and norm "
            f"ratios {list(cfg.norm_ratios)}), and a grid of {len(picks)} layers x norm ratios "
            f"{list(cfg.norm_ratios)} on {len(safe_sw)} harmless requests."
        ),
        claim="Ablating the direction stops refusal of harmful requests, adding it makes harmless requests "
        "refused, with small side effects; random directions do neither.",
        criterion="all of: " + ", ".join(checks) + " (the steering tests' thresholds; the strength sweep and "
        "grid are reported, not part of the criterion)",
        reproduced=reproduced,
        numbers=numbers,
        controls={**ctrl, "kl_harmless_random_ablated": kl_rand.kl},
        conclusion=(
            f"{verdict} Layer {sel.layer}, position {sel.position} (norm {vec.norm:.3g}, "
            + ("" if eligible else "chosen by the lowest bypass score alone, as no candidate passed the "
               "induce and KL filters; ")
            + f"{unit:.2f} of the residual norm there): harmful refusal {found['harmful_unsteered']:.2f} -> "
            f"{found['harmful_ablated']:.2f} ablated (random direction: "
            f"{ctrl['random_same_norm']['harmful_ablated']:.2f}, "
            f"shuffled labels: {ctrl['shuffled_labels']['harmful_ablated']:.2f}); harmless "
            f"{found['harmless_unsteered']:.2f} -> {found['harmless_added']:.2f} added at alpha 1 (random: "
            f"{ctrl['random_same_norm']['harmless_added']:.2f}, shuffled: "
            f"{ctrl['shuffled_labels']['harmless_added']:.2f}). KL {kl.kl:.4f} nats/token (random "
            f"{kl_rand.kl:.4f}); orthogonalized weights match runtime ablation to {ortho_err:.1e} and give "
            f"the same completions for {ortho_same:.0%}. " + sweep_text + strength_text
        ),
        published=(
            "Arditi et al. 2024, gemma-2b-it and 12 other chat models: refusal 91% -> 0% with the direction "
            "ablated, harmless requests 0% -> 100% refused with it added; orthogonalized weights equivalent."
        ),
        differences=(
            "The built-in model's refusal is planted by harm words in a generated corpus and judged on its "
            "first tokens (`i cannot`); its direction is clean at an early layer."
            if toy
            else f"{name} is far smaller than the paper's models and rarely refuses (tried by hand before "
            "this script: 8 of 133 bundled harmful requests refused, all privacy-themed; alpha 1 made 0 "
            "of 32 harmless requests refused at any layer), so there is little to ablate and the rates are "
            f"reported as measured; the bundled sets are small ({len(harm_tr)} + {len(safe_tr)} training "
            "requests), and refusal is judged by phrases in the first tokens, which a broken completion at a "
            "high strength does not contain."
        ),
    )


if __name__ == "__main__":
    main(run, Config)
