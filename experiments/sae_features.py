"""SAE features: find a concept's feature by text and by output, read its card, steer with it.

A sparse autoencoder (SAE) rewrites a layer's activation as a sparse sum of learned feature
directions (Bricken et al. 2023, "Towards Monosemanticity"; Cunningham et al. 2023, "Sparse
Autoencoders Find Highly Interpretable Features in Language Models"). Templeton et al. (2024,
"Scaling Monosemanticity") find features for a concept two ways, by the text they fire on and
by the output tokens their decoder direction promotes, check them on max-activating examples,
and steer the model by adding a feature's decoder direction ("Golden Gate Claude"). This script
does the same with the built-in SAE: a harmful-request feature found by searching one request's
text (checked on held-out requests against harmless ones), a `paris` feature found by output
(steering `the capital of <country> is` towards `paris`), each with its card, and each
intervention beside a random direction of the same norm at the same strength.

Run: `python experiments/sae_features.py [--model NAME] [--out DIR] [--quick]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import plotly.graph_objects as go
import torch
from tqdm.auto import tqdm

import interp
from interp.core.controls import random_direction
from interp.core.report import ExperimentConfig, load_for, main, script_notebook


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """Settings of the SAE feature experiment."""

    sae: str = ""
    """SAE release for `interp.load_sae` (default: the SAE shipped for the model, `interp.default_sae`:
    the built-in SAE `toy` for the built-in model)."""
    sae_id: str = ""
    """SAE id within the release (empty for the built-in SAE)."""
    n_docs: int = 3000
    """Corpus documents for the max-activating examples and feature densities."""
    probe: str = "how do i steal a car ?"
    """The request whose text is searched for a harmful-request feature."""
    promotes: str = "paris"
    """The output token searched for (features whose decoder direction promotes it)."""
    n_requests: int = 32
    """Held-out harmful and harmless requests each on which the text-found feature is checked."""
    n_steer: int = 24
    """`the capital of <country> is` prompts steered with the output-found feature (countries whose
    capital is the promoted token left out)."""
    multiples: tuple[float, ...] = (4.0, 8.0, 12.0)
    """Steering strengths, in multiples of the feature's largest activation on the corpus."""
    min_fire: float = 0.5
    """Criterion: the text-found feature fires on at least this share of held-out harmful requests..."""
    max_fire_harmless: float = 0.1
    """...and on at most this share of harmless ones."""
    min_steered: float = 0.8
    """Criterion: steering turns at least this share of capital answers into the promoted token."""

    QUICK: ClassVar[dict[str, Any]] = {"n_docs": 1000}


def run(cfg: Config, model=None) -> dict:
    model = load_for(cfg, model)
    nb = script_notebook(__file__, cfg, model)
    profile = interp.profile_for(model)
    release = cfg.sae or interp.default_sae(model)
    if release is None:
        raise ValueError(
            f"no SAE is shipped for {model.cfg.model_name!r} (shipped: "
            f"{', '.join(interp.sae.shipped_saes())}); pass one with --sae RELEASE --sae-id ID (a sae-lens "
            "release or a saved SAE folder)"
        )
    sae = interp.load_sae(release, cfg.sae_id or None)
    toy = profile.prompt_set == "toy"  # the built-in vocabulary: its own corpus, lower-case words
    if toy:
        docs = list(interp.toy.corpus.documents(cfg.n_docs, seed=21))
        pairs = [(c.country, c.capital) for c in interp.toy.corpus.COUNTRIES]
        template, prefix = "the capital of {} is", "toy_"
    else:
        docs = (profile.default_corpus or (lambda: (interp.data.prompts("harmless"), "")))()[0]
        docs = docs[: cfg.n_docs]
        pairs, template, prefix = interp.data.pairs("country_capital"), "The capital of {} is", ""
    top = interp.max_activating_examples(model, sae, docs, k=20, cache=False)

    def chat(text: str) -> str:
        return interp.format_chat(model, [text])[0]

    # 1. by text: the probe's top features, the most selective one on training requests
    probe = interp.search_features(model, sae, text=chat(cfg.probe), k=5, density=top, progress=False)
    feats = probe.features.tolist()

    def fire_rates(requests: list[str]) -> torch.Tensor:
        fired = torch.zeros(len(feats))
        for r in tqdm(requests, desc="feature on requests", leave=False):
            fa = interp.feature_activations(model, sae, chat(r))
            fired += (fa.acts[fa.first :, feats].max(0).values > 0).float()
        return fired / max(len(requests), 1)

    n = cfg.n_requests
    harm_tr, safe_tr = (interp.data.prompts(f"{prefix}{k}", "train")[:16] for k in ("harmful", "harmless"))
    harm_te, safe_te = (interp.data.prompts(f"{prefix}{k}", "heldout")[:n] for k in ("harmful", "harmless"))
    sel_score = fire_rates(harm_tr) - fire_rates(safe_tr)
    best = int(sel_score.argmax())
    text_feature = feats[best]
    harm_rate, safe_rate = fire_rates(harm_te), fire_rates(safe_te)
    text_ok = bool(harm_rate[best] >= cfg.min_fire and safe_rate[best] <= cfg.max_fire_harmless)

    # 2. by output: features promoting the token; steer capital prompts with them
    wanted = cfg.promotes if toy else cfg.promotes.strip().capitalize()  # BPE: ` Paris`, not `par`+`is`
    found = interp.search_features(model, sae, promotes=[wanted], k=5, density=top, progress=False)
    prompts = [template.format(c) for c, cap in pairs if cap.lower() != cfg.promotes.lower()][: cfg.n_steer]

    def share(texts) -> float:
        return sum((t.split() or [""])[0].strip().lower() == cfg.promotes.lower() for t in texts) / len(texts)

    runs = []
    for feature in tqdm(found.features.tolist()[:3], desc="steering"):
        vector = interp.feature_vector(model, sae, feature)
        peak = float(top.values[top.row(feature), 0])
        for times in cfg.multiples:
            res = interp.steer(model, prompts, vector, alpha=times * peak, max_new_tokens=1, chat=False)
            ctrl = interp.steer(
                model,
                prompts,
                random_direction(vector, seed=cfg.seed),
                alpha=times * peak,
                max_new_tokens=1,
                chat=False,
                baseline=False,
            )
            runs.append(
                {
                    "feature": feature,
                    "multiple": times,
                    "alpha": times * peak,
                    "steered": share(res.steered),
                    "unsteered": share(res.baseline),
                    "random_same_norm": share(ctrl.steered),
                }
            )
    best_run = max(runs, key=lambda r: (r["steered"], -r["multiple"]))
    steer_ok = best_run["unsteered"] == 0 and best_run["steered"] >= cfg.min_steered
    vector = interp.feature_vector(model, sae, best_run["feature"])
    shown = interp.steer(model, prompts[:6], vector, alpha=best_run["alpha"], max_new_tokens=4, chat=False)

    nb.figure(
        "text_feature_card",
        interp.feature_card(model, sae, text_feature, examples=top).plot(),
        f"card of feature {text_feature}, found by searching {cfg.probe!r}",
    )
    nb.figure(
        "output_feature_card",
        interp.feature_card(model, sae, best_run["feature"], examples=top).plot(),
        f"card of feature {best_run['feature']}, found as a promoter of {cfg.promotes!r}",
    )
    fig = go.Figure(
        [
            go.Bar(name=k, x=[str(f) for f in feats], y=v.tolist())
            for k, v in (("held-out harmful", harm_rate), ("held-out harmless", safe_rate))
        ]
    )
    fig.update_layout(
        barmode="group",
        title=f"Where the probe's top features fire ({n} requests each)",
        xaxis_title="feature (top 5 for the probe text)",
        yaxis_title="share of requests",
    )
    nb.figure(
        "text_features_fire", fig, "firing rate of the probe's top features on harmful vs harmless requests"
    )
    fig = go.Figure()
    for name, color in (("steered", "#1c7ed6"), ("random_same_norm", "#adb5bd")):
        fig.add_trace(
            go.Bar(
                name=name,
                x=[f"f{r['feature']} x{r['multiple']:g}" for r in runs],
                y=[r[name] for r in runs],
                marker_color=color,
            )
        )
    fig.update_layout(
        barmode="group",
        title=f"Share of capital answers turned into {cfg.promotes!r}",
        yaxis_title="share",
        yaxis_range=[0, 1],
    )
    nb.figure(
        "steering", fig, "steering with the output-found features vs a random direction of the same norm"
    )
    nb.table(
        "Text search: the probe's top features",
        [
            {
                "feature": f,
                "score": float(s),
                "train selectivity": float(sel_score[i]),
                "held-out harmful": float(harm_rate[i]),
                "held-out harmless": float(safe_rate[i]),
            }
            for i, (f, s) in enumerate(zip(feats, probe.scores))
        ],
    )
    nb.table("Steering runs", runs)
    nb.table(
        "Completions with the best steering",
        [
            {"prompt": p, "unsteered": b, "steered": s}
            for p, b, s in zip(shown.prompts, shown.baseline, shown.steered)
        ],
    )
    numbers = {
        "sae": release,
        "d_sae": sae.cfg.d_sae,
        "n_docs": len(docs),
        "text_feature": text_feature,
        "text_feature_fires_harmful": float(harm_rate[best]),
        "text_feature_fires_harmless": float(safe_rate[best]),
        "output_features": found.features,
        "best_steering": best_run,
    }
    return nb.finish(
        question="Can a concept's SAE feature be found from a text and from an output token, and does adding "
        "its decoder direction steer the model?",
        method=(
            f"Max-activating examples and densities over {len(docs)} documents. By text: the top 5 features "
            "on "
            f"{cfg.probe!r} in the chat template, the one most selective on 16 + 16 training requests, "
            "checked "
            f"on {len(harm_te)} held-out harmful and {len(safe_te)} harmless requests (fires anywhere after "
            "BOS). "
            f"By output: the top features whose decoder direction promotes {cfg.promotes!r}; the best 3 "
            "added "
            f"at {list(cfg.multiples)} x their peak activation to {len(prompts)} capital prompts, beside a "
            f"random direction of the same norm and strength."
        ),
        claim="A feature found by text fires selectively on the concept; a feature found by output steers "
        "the model towards that output, and a random direction of the same size does not.",
        criterion=(
            f"text feature fires on >= {cfg.min_fire} of held-out harmful and <= {cfg.max_fire_harmless} of "
            f"harmless requests; best steering turns >= {cfg.min_steered} of capital answers into "
            f"{cfg.promotes!r} (none unsteered), as in the SAE tests"
        ),
        reproduced=text_ok and steer_ok,
        numbers=numbers,
        controls={
            "text_feature_on_harmless": float(safe_rate[best]),
            "random_direction_same_norm_steered": best_run["random_same_norm"],
        },
        conclusion=(
            f"Feature {text_feature} fires on {float(harm_rate[best]):.0%} of held-out harmful requests and "
            f"{float(safe_rate[best]):.0%} of harmless ones. Feature {best_run['feature']} added at "
            f"{best_run['multiple']:g} x its peak turns {best_run['steered']:.0%} of capital answers into "
            f"{cfg.promotes!r} (unsteered {best_run['unsteered']:.0%}; random direction "
            f"{best_run['random_same_norm']:.0%})."
        ),
        published=(
            "Templeton et al. 2024 (Claude 3 Sonnet): features found by text and by promoted output, "
            "verified on max-activating examples, steer behaviour when clamped high (Golden Gate Bridge); "
            "Bricken et al. 2023 and Cunningham et al. 2023 on smaller models."
        ),
        differences=(
            "The built-in SAE (TopK, 1701 live features on block 2's output of a 4-layer model) reads "
            "a corpus with planted concepts, so a feature is judged by firing rates on held-out requests "
            "rather than by human labelling; steering strength is in multiples of the feature's peak."
        ),
    )


if __name__ == "__main__":
    main(run, Config)
