"""Back-patching: can two-hop questions a model gets wrong be fixed by giving it more layers?

Biran et al. (2024, "Hopping Too Late: Exploring the Limitations of Large Language Models on
Multi-Hop Queries", arXiv:2406.12775) find that in a two-hop query (`the spouse of the performer
of Imagine is`) the bridge entity is resolved late, leaving too few layers for the second hop.
Patching the last position's hidden state from a later layer back into an earlier layer of the
same prompt (back-patching) re-runs the upper layers on a state that already holds the first hop,
and fixes up to 66% of the failures (the lecture cites 40-60%). Here: queries whose two one-hop
facts the model knows (`prague is the capital of` -> czechia; `the language of czechia is` ->
czech) but whose composition (`the language of prague is`) it gets wrong; every (later source,
earlier target) layer pair back-patched at the last position; a query counts as fixed if some
pair yields the right answer. The control patches the same layers from a query with another answer.

Run: `python experiments/backpatching.py [--model NAME] [--out DIR] [--quick]`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import plotly.graph_objects as go
import torch
from tqdm.auto import tqdm

import interp
from interp.core.predict import next_tokens
from interp.core.tokens import target_id
from interp.core.report import ExperimentConfig, load_for, main, script_notebook

#: (second-hop template with {x}, the answer's field); {x} is the country for one hop, the capital for two
TOY_HOPS = (
    ("the language of {x} is", "language"),
    ("{x} is a country in", "continent"),
    ("people in {x} speak", "language"),
)
TOY_PREFIXES = ("", "as you know , ", "in fact , ", "i think ", "everyone knows that ")


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """Settings of the back-patching experiment."""

    n_countries: int = 64
    """Countries (bridge entities) whose two-hop queries are screened."""
    prefixes: tuple[str, ...] = TOY_PREFIXES
    """Prefixes in front of each two-hop template (more phrasings, more failures to fix)."""
    min_fixed: float = 0.4
    """Criterion: back-patching fixes at least this share of the failures (the lecture's 40%)."""
    min_margin: float = 0.2
    """Criterion: and this much more than patching the same layers from another query."""
    min_failures: int = 5
    """Fewer failures than this: too few to measure (not reproduced)."""
    max_failures: int = 0
    """Back-patch at most this many of the screened failures (0: all of them)."""

    QUICK: ClassVar[dict[str, Any]] = {
        "n_countries": 40,
        "prefixes": ("as you know , ", "in fact , ", "i think "),
        "max_failures": 24,
    }


def queries(model, cfg: Config) -> list[dict[str, str]]:
    """Two-hop queries with their one-hop versions: `two`, `hop1` (-> `bridge`), `one` (-> `answer`).

    A model whose profile reads the toy prompt set (the built-in model) composes its own facts (a
    capital's country, then that country's language or continent); a model reading English gets the
    bundled real-world set `interp.data.records("two_hop")` (a landmark's, city's or person's
    country, then its capital or official language)."""
    if interp.profile_for(model).prompt_set != "toy":
        return interp.data.records("two_hop")
    out = []
    for c in interp.toy.corpus.COUNTRIES[: cfg.n_countries]:
        for prefix in cfg.prefixes:
            for template, field in TOY_HOPS:
                out.append(
                    {
                        "two": prefix + template.format(x=c.capital),
                        "one": prefix + template.format(x=c.country),
                        "answer": c[field].split()[0],
                        "hop1": f"{c.capital} is the capital of",
                        "bridge": c.country,
                    }
                )
    return out


def answer_ids(model, words: list[str]) -> torch.Tensor:
    """The token each answer starts with at a next-token position (a word of several tokens is
    read by its first, as Biran et al. score answers)."""
    with warnings.catch_warnings():  # "' New Delhi' is 2 tokens ...; tracking ' New'": intended here
        warnings.simplefilter("ignore", UserWarning)
        return torch.tensor([target_id(model, w) for w in words])


def right(model, prompts: list[str], answers: list[str]) -> torch.Tensor:
    """Per prompt: is the greedy next token the answer's first token?"""
    return next_tokens(model, prompts).ids[:, 0] == answer_ids(model, answers)


def run(cfg: Config, model=None) -> dict:
    model = load_for(cfg, model)
    nb = script_notebook(__file__, cfg, model)
    qs = queries(model, cfg)
    two = right(model, [q["two"] for q in qs], [q["answer"] for q in qs])
    one = right(model, [q["one"] for q in qs], [q["answer"] for q in qs])
    hop1 = right(model, [q["hop1"] for q in qs], [q["bridge"] for q in qs])
    failures = [q for q, t, o, h in zip(qs, two, one, hop1) if o and h and not t]
    n_screened_failures = len(failures)
    if cfg.max_failures:
        failures = failures[: cfg.max_failures]
    known = int((one & hop1).sum())
    n = model.cfg.n_layers
    pairs = [(s, t) for s in range(n) for t in range(n) if t < s]
    fixes = torch.zeros(len(failures), len(pairs), dtype=torch.bool)
    control = torch.zeros(len(failures), len(pairs), dtype=torch.bool)
    for i, q in enumerate(tqdm(failures, desc="back-patching")):
        answer = int(answer_ids(model, [q["answer"]])[0])
        others = [f for f in failures[i + 1 :] + failures[:i] if f["answer"] != q["answer"]] or [q]
        other = others[0]["two"]  # the next failure with another answer: its state should not fix this one
        for row, source in ((fixes, q["two"]), (control, other)):
            ps = interp.patchscope(
                model,
                source,
                source_position=-1,
                target=q["two"],
                placeholder=-1,
                target_layers=list(range(n)),
                targets=answer,
                max_new_tokens=1,
                batch_size=n * n,  # the whole grid in one patched pass
            )
            got = dict(zip(zip(ps.source_layers, ps.target_layers), ps.correct.tolist()))
            row[i] = torch.tensor([got[p] for p in pairs])
    nf = max(len(failures), 1)
    fixed, fixed_ctrl = float(fixes.any(1).sum()) / nf, float(control.any(1).sum()) / nf
    per_pair, per_pair_ctrl = fixes.float().mean(0), control.float().mean(0)
    best = int(per_pair.argmax()) if pairs else 0
    reproduced = (
        len(failures) >= cfg.min_failures and fixed >= cfg.min_fixed and fixed - fixed_ctrl >= cfg.min_margin
    )

    grid = torch.full((n, n), float("nan"))
    for (s, t), v in zip(pairs, per_pair.tolist()):
        grid[s, t] = v
    fig = go.Figure(
        go.Heatmap(
            z=grid.tolist(),
            x=[str(t) for t in range(n)],
            y=[str(s) for s in range(n)],
            colorscale="Blues",
            zmin=0,
            zmax=1,
            texttemplate="%{z:.2f}",
        )
    )
    fig.update_layout(
        title=f"Share of {len(failures)} two-hop failures fixed, per (source, target) layer",
        xaxis_title="target layer (earlier; resid_pre)",
        yaxis_title="source layer (later)",
    )
    nb.figure("fix_rate_grid", fig, "share of failures each back-patching pair fixes")
    fig = go.Figure(
        go.Bar(
            x=["back-patching (any pair)", "control: another query's state"],
            y=[fixed, fixed_ctrl],
            marker_color=["#1c7ed6", "#adb5bd"],
        )
    )
    fig.update_layout(title="Two-hop failures fixed", yaxis_title="share", yaxis_range=[0, 1])
    nb.figure("fixed_vs_control", fig, "failures fixed by back-patching vs by patching another query's state")
    nb.table(
        "Per layer pair",
        [
            {
                "source layer": s,
                "target layer": t,
                "fixed": float(per_pair[j]),
                "control": float(per_pair_ctrl[j]),
            }
            for j, (s, t) in enumerate(pairs)
        ],
    )
    nb.table(
        "Failures (first 10)",
        [
            {
                "two-hop query": q["two"],
                "answer": q["answer"],
                "bridge": q["bridge"],
                "fixed": bool(fixes[i].any()),
            }
            for i, q in enumerate(failures[:10])
        ],
    )
    toy = interp.profile_for(model).prompt_set == "toy"  # the queries came from the built-in corpus
    bridge_kind = (
        "bridge: a capital's country" if toy
        else "interp.data two_hop; bridge: a landmark's, city's or person's country"
    )
    numbers = {
        "n_queries": len(qs),
        "query_set": "built-in model's facts" if toy else "interp.data two_hop",
        "two_hop_correct": float(two.float().mean()),
        "hop1_correct": float(hop1.float().mean()),
        "one_hop_correct": float(one.float().mean()),
        "both_one_hops_known": known,
        "n_failures_screened": n_screened_failures,
        "n_failures": len(failures),
        "fixed_any_pair": fixed,
        "best_pair": {"source": pairs[best][0], "target": pairs[best][1], "fixed": float(per_pair[best])}
        if pairs
        else None,
        "fixed_by_pair": {f"{s}->{t}": float(v) for (s, t), v in zip(pairs, per_pair)},
    }
    return nb.finish(
        question=(
            "When a model knows both hops of a two-hop question but answers it wrongly, does re-running its "
            "upper layers on a later state (back-patching) fix the answer?"
        ),
        method=(
            f"{len(qs)} two-hop queries ({bridge_kind}); "
            f"{known} have both one-hop facts answered right, and {n_screened_failures} of those a wrong "
            f"composition; back-patched {len(failures)} of them (answers read by their first token). "
            f"For each, the last "
            f"position's resid_pre at every later layer patched into every earlier layer of the same prompt "
            f"({len(pairs)} pairs, one batched patchscope); fixed = some pair's first token is the answer. "
            f"Control: the same pairs patched from the next failing query with a different answer."
        ),
        claim=(
            "Back-patching fixes a large share of two-hop failures (40-60% in the lecture, up to 66% in the "
            "paper), far more than patching an unrelated state."
        ),
        criterion=(
            f">= {cfg.min_failures} failures; fixed by some pair >= {cfg.min_fixed}; and >= {cfg.min_margin} "
            f"above the other-query control"
        ),
        reproduced=reproduced,
        numbers=numbers,
        controls={
            "other_query_fixed_any_pair": fixed_ctrl,
            "other_query_fixed_by_pair": {f"{s}->{t}": float(v) for (s, t), v in zip(pairs, per_pair_ctrl)},
        },
        conclusion=(
            f"{len(failures)} of {len(qs)} queries fail with both hops known; back-patching fixes "
            f"{fixed:.0%} of them (best single pair "
            f"{(pairs[best] if pairs else None)}: {float(per_pair[best]) if pairs else 0:.0%}); patching "
            f"another query's state fixes {fixed_ctrl:.0%}."
        ),
        published=(
            "Biran et al. 2024 (LLaMA 2/3, Pythia, ...): back-patching fixes up to 66% of two-hop failures "
            "whose hops are known; the lecture cites 40-60%."
        ),
        differences=(
            "The built-in model has 4 layers and learned some capital-level facts directly, so its "
            "failures come from phrasings (prefixes) it composes badly; 'fixed by some pair' picks the "
            "best of six pairs per query, as the paper's upper bound does, which the control also gets."
            if toy
            else f"A {n}-layer model far smaller than the paper's; its failures include answers in another "
            "form (' the', a restatement) rather than a wrong entity; 'fixed by some pair' picks the best of "
            f"{len(pairs)} pairs per query (the paper's upper bound), which the control also gets."
        ),
    )


if __name__ == "__main__":
    main(run, Config)
