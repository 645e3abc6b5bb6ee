"""Logit lens: over which layers does a factual answer emerge?

nostalgebraist (2020, "interpreting GPT: the logit lens") read every layer's residual stream
through the model's own final norm and unembedding. For a factual prompt such as
`The capital of France is`, the answer is absent from early layers and appears, then
sharpens, over the later ones; the lens's entropy falls as it does. This script runs the lens
at the last position of every country's capital prompt and reports, per layer, how often the
answer is the top-1 token, its median rank and probability, and the entropy, beside a control
token (another country's capital) that should not rise.

Run: `python experiments/logit_lens.py [--model NAME] [--out DIR] [--quick]`.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any, ClassVar

import plotly.graph_objects as go
import torch
from tqdm.auto import tqdm

import interp
from interp.core.report import ExperimentConfig, load_for, main, script_notebook


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """Settings of the logit-lens experiment."""

    n_prompts: int = 64
    """How many countries' capital prompts to read (the first n of the prompt set)."""
    template: str = ""
    """Prompt template with {country} (default: `the capital of {country} is` for a model reading the
    toy prompt set, the built-in model; `The capital of {country} is` for one reading English)."""
    min_correct: int = 10
    """Criterion: at least this many prompts answered right by the model (the finding is read on those)."""
    min_stays: float = 0.95
    """Criterion: for at least this share of the correctly answered prompts the answer becomes, and stays,
    the lens's top-1 at some layer."""
    max_embed_hits: float = 0.05
    """Criterion: at the embedding the answer is top-1 for at most this share (it is not just copied)."""
    k: int = 5
    """Top tokens kept per layer."""

    QUICK: ClassVar[dict[str, Any]] = {"n_prompts": 16}


def one_token(model, word: str) -> bool:
    """Whether the answer is one token of the model's vocabulary (the lens tracks single tokens)."""
    try:
        interp.token_id(model, word)
    except KeyError:
        return False
    return True


def prompt_set(model, cfg: Config) -> list[tuple[str, str, str]]:
    """(prompt, answer, control answer) triples; the control is the next country's capital.

    The countries come from the prompt collection the model's profile reads (`prompt_set`): the
    built-in corpus's for `"toy"`, `interp.data`'s `country_capital` for English. Countries whose
    capital is several tokens are left out (SmolLM2 spells `Abuja` in three).
    """
    if interp.profile_for(model).prompt_set == "toy":
        from interp.toy.corpus import COUNTRIES

        pairs = [(c.country, c.capital) for c in COUNTRIES]
        template = cfg.template or "the capital of {country} is"
    else:
        pairs = interp.data.pairs("country_capital")
        template = cfg.template or "The capital of {country} is"
    pairs = [(c, cap) for c, cap in pairs if one_token(model, cap)][: cfg.n_prompts]
    return [
        (template.format(country=c), cap, pairs[(i + 1) % len(pairs)][1]) for i, (c, cap) in enumerate(pairs)
    ]


def run(cfg: Config, model=None) -> dict:
    model = load_for(cfg, model)
    nb = script_notebook(__file__, cfg, model)
    triples = prompt_set(model, cfg)
    rows, lenses = [], []
    for prompt, answer, control in tqdm(triples, desc="logit lens"):
        lens = interp.logit_lens(model, prompt, positions=-1, targets=[answer, control], k=cfg.k)
        lenses.append(lens)
        first = lens.first_top1(lens.target_ids[0], stays=True)
        rows.append(
            {
                "prompt": prompt,
                "answer": answer,
                "final_top1": lens.top1()[-1],
                "correct": lens.top_ids[-1, 0, 0].item() == lens.target_ids[0],
                "first_layer": None if first is None else lens.layers[first],
                "first_row": first,
                "rank": lens.trajectory(lens.target_ids[0], metric="rank"),
                "prob": lens.trajectory(lens.target_ids[0], metric="prob"),
                "control_rank": lens.trajectory(lens.target_ids[1], metric="rank"),
                "entropy": lens.entropy[:, 0],
            }
        )
    layers = list(lenses[0].layers)
    correct = [r for r in rows if r["correct"]]
    ranks = torch.stack([r["rank"] for r in rows]).float()
    ctrl = torch.stack([r["control_rank"] for r in rows]).float()
    top1 = torch.stack([r["rank"] == 1 for r in rows]).float().mean(0)
    entropy = torch.stack([r["entropy"] for r in rows]).mean(0)
    accuracy = len(correct) / len(rows)
    embed_hits = sum(bool(r["rank"][0] == 1) for r in correct) / max(len(correct), 1)
    first_rows = [r["first_row"] for r in correct if r["first_row"] is not None]
    stays = len(first_rows) / max(len(correct), 1)
    median_first = layers[int(statistics.median_low(first_rows))] if first_rows else None
    numbers = {
        "n_prompts": len(rows),
        "final_accuracy": accuracy,
        "n_correct": len(correct),
        "answer_top1_at_embedding_of_correct": embed_hits,
        "correct_prompts_where_answer_becomes_and_stays_top1": stays,
        "median_first_layer_top1": median_first,
        "layers": layers,
        "share_top1_by_layer": top1,
        "median_rank_by_layer": ranks.median(0).values,
        "mean_prob_by_layer": torch.stack([r["prob"] for r in rows]).mean(0),
        "mean_entropy_by_layer_nats": entropy,
    }
    controls = {
        "control_token": "another country's capital, same prompt",
        "control_median_rank_by_layer": ctrl.median(0).values,
        "control_share_top1_by_layer": (ctrl == 1).float().mean(0),
    }
    reproduced = (
        len(correct) >= cfg.min_correct and embed_hits <= cfg.max_embed_hits and stays >= cfg.min_stays
    )

    fig = go.Figure()
    for name, data, color in (("answer", ranks, "#1c7ed6"), ("control (other capital)", ctrl, "#adb5bd")):
        q = data.quantile(torch.tensor([0.25, 0.5, 0.75]), dim=0)
        fig.add_trace(
            go.Scatter(
                x=layers + layers[::-1],
                y=q[2].tolist() + q[0].flip(0).tolist(),
                fill="toself",
                line=dict(width=0),
                fillcolor=color,
                opacity=0.2,
                showlegend=False,
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(x=layers, y=q[1].tolist(), name=f"{name}: median rank", line=dict(color=color))
        )
    fig.update_layout(
        title=f"Rank of the answer under the logit lens ({len(rows)} capital prompts; band: IQR)",
        xaxis_title="layer (embed, then each block's output)",
        yaxis_title="rank (1 = top)",
        yaxis_type="log",
    )
    nb.figure(
        "rank_trajectory", fig, "median rank (log scale) of the capital and of a control capital per layer"
    )
    fig = go.Figure(
        [
            go.Bar(x=layers, y=top1.tolist(), name="answer top-1", marker_color="#1c7ed6"),
            go.Scatter(
                x=layers, y=entropy.tolist(), name="entropy (nats)", yaxis="y2", line=dict(color="#e8590c")
            ),
        ]
    )
    fig.update_layout(
        title="Share of prompts with the answer top-1, and mean entropy, per layer",
        yaxis=dict(title="share top-1", range=[0, 1]),
        yaxis2=dict(title="entropy (nats)", overlaying="y", side="right"),
    )
    nb.figure("top1_and_entropy", fig, "share of prompts whose lens top-1 is the answer; lens entropy")
    nb.figure(
        "example_heatmap",
        interp.logit_lens(model, triples[0][0], targets=[triples[0][1]]).plot(),
        f"the full lens of {triples[0][0]!r} (layers x positions, top-1 token per cell)",
    )
    nb.table(
        "Per layer",
        [
            {
                "layer": lay,
                "share top-1": float(top1[i]),
                "median rank": float(ranks.median(0).values[i]),
                "control median rank": float(ctrl.median(0).values[i]),
                "entropy": float(entropy[i]),
            }
            for i, lay in enumerate(layers)
        ],
    )
    nb.table(
        "Examples", [{k: r[k] for k in ("prompt", "answer", "final_top1", "first_layer")} for r in rows[:8]]
    )
    return nb.finish(
        question="Over which layers does the answer to a factual prompt appear in the residual stream?",
        method=(
            f"Logit lens (each layer's residual stream at the last position through the final norm and "
            f"unembedding) on {len(rows)} prompts `{triples[0][0]}`-style; per layer the answer's rank and "
            f"probability, the share of prompts where it is top-1, and the entropy; the control token is "
            f"another country's capital on the same prompt."
        ),
        claim=(
            "The answer is absent at the embedding and becomes the lens's top-1 at some layer, staying top-1 "
            "to the output."
        ),
        criterion=(
            f"at least {cfg.min_correct} prompts answered right; among them the answer is top-1 at the "
            f"embedding for <= {cfg.max_embed_hits} and becomes and stays top-1 at some layer for >= "
            f"{cfg.min_stays}"
        ),
        reproduced=reproduced,
        numbers=numbers,
        controls=controls,
        conclusion=(
            f"The lens's last layer names the capital for {accuracy:.0%} of prompts ({len(correct)}); at the "
            f"embedding for {embed_hits:.0%} of those. At the middle layer ({layers[len(layers) // 2]}) the "
            f"answer's median rank is {float(ranks.median(0).values[len(layers) // 2]):.0f}. The median "
            f"layer where it becomes and stays top-1 is {median_first}; entropy is {float(entropy[0]):.2f} "
            f"nats at the embedding and {float(entropy[-1]):.2f} at the output. The control "
            f"capital's median rank at the output is {float(ctrl.median(0).values[-1]):.0f}."
        ),
        published=(
            "nostalgebraist 2020 (GPT-2): the output token appears in the lens in the later layers; on "
            "SmolLM2-135M-Instruct (tried by hand) ` Paris` is rank 1 only from layer 28 of 30 and outside "
            "the top 1000 at mid depth."
        ),
        differences=(
            "On the built-in model: it has 4 layers and learned each capital as a memorised fact of its "
            "corpus, so the answer appears after the first block rather than in the last few layers of a "
            "deep model; the lens here is the plain lens (no tuned lens)."
        ),
    )


if __name__ == "__main__":
    main(run, Config)
