"""In-context task vectors: does a few-shot prompt compress its task into one vector?

Hendel et al. (2023, "In-Context Learning Creates Task Vectors") and Todd et al. (2024,
"Function Vectors in Large Language Models") find that the residual state at the last position
of few-shot prompts (`hot : cold , big : small , up :`) carries the task: averaged over many
prompts and put into a zero-shot query (`up :`) at a middle layer, it makes the model perform the
task without examples; only some layers work, and two vectors can be combined. Here the task
vector at each layer is the mean last-position state of few-shot prompts minus that of zero-shot
queries (`interp.mean_difference`), added to held-out zero-shot queries; it is reported beside a
random direction of the same norm and a vector from shuffled-label prompts (each input paired
with another example's output), and `v(capital) - v(language)` is added to language prompts to
see whether it switches them to capitals.

Run: `python experiments/task_vectors.py [--model NAME] [--out DIR] [--quick]`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, ClassVar

import plotly.graph_objects as go
from tqdm.auto import tqdm

import interp
from interp.core.controls import random_direction, shuffled_pairs
from interp.core.report import ExperimentConfig, load_for, main, script_notebook


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """Settings of the task-vector experiment."""

    tasks: tuple[str, ...] = ()
    """Tasks (default: antonym, capital, language, plural of the built-in corpus for a model reading
    the toy prompt set; the bundled pairs antonyms, country_capital, english_french for English)."""
    n_fewshot: int = 64
    """Few-shot prompts averaged into each task vector."""
    k: int = 3
    """Examples per few-shot prompt."""
    n_eval: int = 32
    """Zero-shot queries per task (items not used as the vector's zero-shot baseline)."""
    min_best: float = 0.9
    """Criterion: mean over tasks of the best layer's accuracy at least this."""
    min_gain: float = 0.2
    """Criterion: on tasks with room (zero-shot accuracy < 0.8), the best layer beats the better of
    zero-shot and the random direction (same layer, same norm) by at least this, on average."""
    max_worst: float = 0.5
    """Criterion: only some layers work: the worst layer's mean accuracy at most this."""
    answer_tokens: int = 4
    """Tokens generated per query; the answer counts when the completion starts with it as a
    whole word (SmolLM2 spells many answers in several tokens, or starts with a bare space)."""
    apply_to: str = "last"
    """Where the vector is added to a query: `"last"` (its last position only, as Hendel et al.
    put the task vector in) or `"all"` positions."""

    QUICK: ClassVar[dict[str, Any]] = {"n_fewshot": 32, "n_eval": 24}


@dataclass(frozen=True)
class Task:
    name: str
    pairs: list[tuple[str, str]]
    prompt: Any  # (examples, query) -> text


def tasks_for(model, cfg: Config) -> list[Task]:
    """The tasks of the prompt collection the model's profile reads (`prompt_set`)."""
    if interp.profile_for(model).prompt_set == "toy":
        corpus = interp.toy.corpus
        names = cfg.tasks or corpus.ICL_TASKS
        return [Task(t, corpus.icl_pairs(t, "train"), corpus.icl_prompt) for t in names]

    def prompt(examples, query):
        return "".join(f"{x} -> {y}\n" for x, y in examples) + f"{query} ->"

    names = cfg.tasks or ("antonyms", "country_capital", "english_french")
    return [Task(t, interp.data.pairs(t), prompt) for t in names]


def answered(text: str, answer: str) -> bool:
    """Whether a completion starts with the answer as a whole word (case-insensitive)."""
    text, answer = text.strip().lower(), answer.strip().lower()
    return text.startswith(answer) and (len(text) == len(answer) or not text[len(answer)].isalnum())


def accuracy(texts, answers) -> float:
    return sum(answered(t, a) for t, a in zip(texts, answers)) / max(len(answers), 1)


def vectors(model, task: Task, cfg: Config, shuffle: bool):
    """Task vectors at every layer: few-shot minus zero-shot mean last-position states."""
    rng = random.Random(f"{cfg.seed}-{task.name}-{shuffle}")
    few = []
    for i in range(cfg.n_fewshot):
        items = rng.sample(task.pairs, cfg.k + 1)
        examples = shuffled_pairs(items[: cfg.k], seed=i) if shuffle else items[: cfg.k]
        few.append(task.prompt(examples, items[-1][0]))
    zero = [task.prompt([], x) for x, _ in task.pairs[::2]]
    return interp.mean_difference(model, few, zero, positions="last", chat=False, cache=False)


def run(cfg: Config, model=None) -> dict:
    model = load_for(cfg, model)
    nb = script_notebook(__file__, cfg, model)
    tasks = tasks_for(model, cfg)
    rows, per_task, vecs = [], {}, {}
    for task in tqdm(tasks, desc="tasks"):
        vs, vs_shuffled = vectors(model, task, cfg, False), vectors(model, task, cfg, True)
        vecs[task.name] = vs
        held = task.pairs[1::2][: cfg.n_eval]
        queries, answers = [task.prompt([], x) for x, _ in held], [y for _, y in held]
        rng = random.Random(f"{cfg.seed}-{task.name}-few-shot")
        few_shot_prompts = [
            task.prompt(rng.sample([p for p in task.pairs if p[0] != x], cfg.k), x) for x, _ in held
        ]
        gen = dict(max_new_tokens=cfg.answer_tokens, chat=False, apply_to=cfg.apply_to)
        # the ceiling: the few-shot prompts' own greedy completions (alpha 0 adds nothing)
        few_shot = accuracy(
            interp.steer(model, few_shot_prompts, vs[vs.layers[0]], alpha=0.0, baseline=False, **gen).steered,
            answers,
        )
        zero_shot = None
        acc = {"task vector": [], "random same norm": [], "shuffled labels": []}
        for layer in vs.layers:
            res = interp.steer(model, queries, vs[layer], baseline=zero_shot is None, **gen)
            zero_shot = accuracy(res.baseline, answers) if zero_shot is None else zero_shot
            acc["task vector"].append(accuracy(res.steered, answers))
            for name, v in (
                ("random same norm", random_direction(vs[layer], seed=cfg.seed)),
                ("shuffled labels", vs_shuffled[layer]),
            ):
                acc[name].append(
                    accuracy(interp.steer(model, queries, v, baseline=False, **gen).steered, answers)
                )
        best = max(
            range(len(vs.layers)),  # ties: the layer with the largest margin over the random direction
            key=lambda i: (acc["task vector"][i], acc["task vector"][i] - acc["random same norm"][i]),
        )
        per_task[task.name] = {
            "zero_shot": zero_shot,
            "few_shot": few_shot,
            "by_layer": acc,
            "best_layer": vs.layers[best],
            "best": acc["task vector"][best],
            "random_at_best": acc["random same norm"][best],
            "shuffled_at_best": acc["shuffled labels"][best],
            "n_eval": len(held),
        }
        rows += [
            {
                "task": task.name,
                "layer": lay,
                "zero-shot": zero_shot,
                **{name: a[i] for name, a in acc.items()},
            }
            for i, lay in enumerate(vs.layers)
        ]
    layers = list(vecs[tasks[0].name].layers)
    mean_by_layer = [
        sum(t["by_layer"]["task vector"][i] for t in per_task.values()) / len(per_task)
        for i in range(len(layers))
    ]
    mean_best = sum(t["best"] for t in per_task.values()) / len(per_task)
    room = {k: t for k, t in per_task.items() if t["zero_shot"] < 0.8}
    gains = {k: t["best"] - max(t["zero_shot"], t["random_at_best"]) for k, t in room.items()}
    gains_ok = bool(gains) and sum(gains.values()) / len(gains) >= cfg.min_gain
    reproduced = mean_best >= cfg.min_best and gains_ok and min(mean_by_layer) <= cfg.max_worst

    arithmetic = None
    names = {t.name: t for t in tasks}
    if {"capital", "language"} <= set(names):  # same inputs, two tasks: switch one into the other
        lang = names["language"]
        capital_of = dict(names["capital"].pairs)
        rng = random.Random(cfg.seed)
        items = [p for p in lang.pairs if p[0] in capital_of]
        prompts = [lang.prompt(rng.sample(lang.pairs, cfg.k), x) for x, _ in items[: cfg.n_eval]]
        targets = [capital_of[x] for x, _ in items[: cfg.n_eval]]
        arithmetic = []
        for layer in layers:
            v = vecs["capital"][layer] - vecs["language"][layer]
            gen = dict(max_new_tokens=cfg.answer_tokens, chat=False, apply_to=cfg.apply_to)
            res = interp.steer(model, prompts, v, **gen)
            ctrl = interp.steer(model, prompts, random_direction(v, seed=cfg.seed), baseline=False, **gen)
            arithmetic.append(
                {
                    "layer": layer,
                    "capital_answers": accuracy(res.steered, targets),
                    "unsteered_capital_answers": accuracy(res.baseline, targets),
                    "random_same_norm": accuracy(ctrl.steered, targets),
                }
            )

    fig = go.Figure()
    for name, t in per_task.items():
        fig.add_trace(
            go.Scatter(x=layers, y=t["by_layer"]["task vector"], name=f"{name}", mode="lines+markers")
        )
        fig.add_trace(
            go.Scatter(
                x=layers,
                y=t["by_layer"]["random same norm"],
                name=f"{name}: random",
                mode="lines",
                line=dict(dash="dot"),
                opacity=0.5,
            )
        )
    fig.update_layout(
        title="Zero-shot accuracy with the task vector added, by layer (dotted: random, same norm)",
        xaxis_title="layer (resid_pre)",
        yaxis_title="accuracy",
        yaxis_range=[-0.02, 1.02],
    )
    nb.figure(
        "accuracy_by_layer", fig, "task-vector accuracy per layer and task, with the random-direction control"
    )
    nb.table("Per task and layer", rows)
    if arithmetic:
        nb.table("Arithmetic: v(capital) - v(language) added to language few-shot prompts", arithmetic)
    numbers = {
        "layers": layers,
        "mean_accuracy_by_layer": mean_by_layer,
        "mean_best_accuracy": mean_best,
        "tasks": {k: {key: v for key, v in t.items() if key != "by_layer"} for k, t in per_task.items()},
        "gain_over_zero_shot_and_random": gains,
        "arithmetic": arithmetic or "not run (needs capital and language)",
    }
    best_arith = max(arithmetic, key=lambda r: r["capital_answers"]) if arithmetic else None
    return nb.finish(
        question=(
            "Does the mean last-position state of few-shot prompts carry the task, so that adding it to a "
            "zero-shot query makes the model do the task?"
        ),
        method=(
            f"Per task, {cfg.n_fewshot} few-shot prompts of {cfg.k} examples; the task vector at each layer "
            "is "
            f"their mean last-position resid_pre minus that of zero-shot queries on half of the items; added "
            f"(alpha 1, at {'the last position' if cfg.apply_to == 'last' else cfg.apply_to + ' positions'}) "
            f"to zero-shot queries on the other half; {cfg.answer_tokens} greedy tokens generated, correct when "
            f"they start with the answer as a whole word (the few-shot prompts' own accuracy on the same "
            f"queries is the ceiling). "
            f"Controls: a random direction of the same norm at the same layer; the same construction from "
            f"shuffled-label prompts."
        ),
        claim=(
            "Task vectors added at some (not all) layers make zero-shot queries perform the task, beyond "
            "what a random direction of the same size does."
        ),
        criterion=(
            f"mean best-layer accuracy >= {cfg.min_best}; on tasks with zero-shot accuracy < 0.8 the best "
            f"layer beats the better of zero-shot and the random direction by >= {cfg.min_gain} on average; "
            f"the worst layer's mean accuracy <= {cfg.max_worst}"
        ),
        reproduced=reproduced,
        numbers=numbers,
        controls={
            k: {"random_at_best": t["random_at_best"], "shuffled_at_best": t["shuffled_at_best"]}
            for k, t in per_task.items()
        },
        conclusion=(
            f"Mean accuracy by layer {[round(a, 2) for a in mean_by_layer]} (best per task "
            f"{ {k: round(t['best'], 2) for k, t in per_task.items()} }, zero-shot "
            f"{ {k: round(t['zero_shot'], 2) for k, t in per_task.items()} }, few-shot prompts themselves "
            f"{ {k: round(t['few_shot'], 2) for k, t in per_task.items()} }, random direction at the best "
            f"layer { {k: round(t['random_at_best'], 2) for k, t in per_task.items()} }). Shuffled-label "
            f"vectors reach { {k: round(t['shuffled_at_best'], 2) for k, t in per_task.items()} }: "
            f"shuffling pairs keeps the outputs' category, which is most of what the vector carries here."
            + (
                f" Arithmetic: v(capital) - v(language) at layer {best_arith['layer']} turns "
                f"{best_arith['capital_answers']:.0%} of language prompts into capitals (random "
                f"{best_arith['random_same_norm']:.0%})."
                if best_arith
                else ""
            )
        ),
        published=(
            "Hendel et al. 2023 (GPT-J, Pythia, LLaMA): patching the task vector from middle layers recovers "
            "most of few-shot accuracy, early and late layers do not; Todd et al. 2024: function vectors "
            "from attention heads transfer to zero-shot and compose by addition."
        ),
        differences=(
            "The built-in model's few-shot format is `x : y ,`; zero-shot queries are already partly "
            "answered (antonyms and plurals are also taught in sentences), so the gain is measured on the "
            "tasks with room (capital vs language share their inputs). The vector is a difference of "
            "means added (at the query's last position by default), not the few-shot state patched in "
            "in place of the query's."
        ),
    )


if __name__ == "__main__":
    main(run, Config)
