"""In-context tasks: read the task from a few examples, then answer the query.

A few-shot document `hot : cold , big : small , up : down` states no task; the model must infer
it from the examples (Brown et al. 2020, "Language Models are Few-Shot Learners"). Four tasks:
`antonym`, `capital`, `language` and `plural`. `capital` and `language` take the same inputs
(countries), so `peru :` alone is ambiguous and only the examples say which to answer. Two
things are held out:

- one combination in eight of `ICL_WINDOW` consecutive inputs (three examples and a query):
  a held-out prompt's examples and query never appeared together in training;
- one item in four per task ("novel" items) never appears in any few-shot document; the model
  knows it only from plain sentences (`interp.toy.corpus.lexical` and the facts), a harder,
  unthresholded test.

Example:
    >>> icl_prompts("antonym", 1)[0]
    ('poor : rich , awake : asleep , polite : rude , hot :', 'cold')
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from functools import cache

from interp.toy.corpus.agreement import NOUNS
from interp.toy.corpus.common import check_split, literal_words, stable_hash
from interp.toy.corpus.facts import COUNTRIES
from interp.toy.corpus.lexical import ANTONYMS

ICL_TASKS: tuple[str, ...] = ("antonym", "capital", "language", "plural")

ICL_WINDOW = 4
"""A few-shot combination is a window of this many consecutive inputs (3 examples + query)."""


@cache
def _items(task: str) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """(train, novel) item pairs of a task; novel items never appear in a few-shot document.

    Novel groups are whole antonym pairs (both directions), one group in four.
    """
    if task == "antonym":
        groups = [[(x, y), (y, x)] for x, y in ANTONYMS]
    elif task == "capital":
        groups = [[(c.country, c.capital)] for c in COUNTRIES]
    elif task == "language":
        groups = [[(c.country, c.language)] for c in COUNTRIES]
    elif task == "plural":
        groups = [[(s, p)] for s, p in NOUNS]
    else:
        raise KeyError(f"unknown in-context task {task!r}; tasks are {ICL_TASKS}")
    order = list(range(len(groups)))
    random.Random(f"icl-{task}").shuffle(order)
    novel = set(order[: len(groups) // 4])
    train = tuple(p for i, g in enumerate(groups) if i not in novel for p in g)
    held = tuple(p for i, g in enumerate(groups) if i in novel for p in g)
    return train, held


def icl_combination_heldout(task: str, inputs: Sequence[str]) -> bool:
    """Whether a window of `ICL_WINDOW` consecutive few-shot inputs is held out.

    Training documents never contain a held-out window, so a held-out prompt (whose three
    examples and query form a held-out window) was never seen in training.

    Example:
        >>> icl_combination_heldout("antonym", ["hot", "big", "up", "wet"])
        False
    """
    if len(inputs) != ICL_WINDOW:
        raise ValueError(f"a combination has {ICL_WINDOW} inputs, got {len(inputs)}")
    return stable_hash("icl-combo", task, *inputs) % 8 == 0


def _has_heldout_window(task: str, inputs: Sequence[str]) -> bool:
    return any(
        icl_combination_heldout(task, inputs[i : i + ICL_WINDOW])
        for i in range(len(inputs) - ICL_WINDOW + 1)
    )


def icl_pairs(task: str, split: str = "train") -> list[tuple[str, str]]:
    """The (input, output) pairs of an in-context task.

    `"train"`: the items used in few-shot training documents. `"heldout"`: the novel items,
    which never appear in a few-shot document (the model knows them only from plain sentences:
    `the opposite of hot is cold .`, `one key , two keys .`, the country facts). `task` is one
    of `ICL_TASKS`: antonym, capital, language, plural.

    Example:
        >>> icl_pairs("capital")[0]
        ('france', 'paris')
    """
    check_split(split)
    train, novel = _items(task)
    return list(train if split == "train" else novel)


def icl_prompt(examples: Sequence[tuple[str, str]], query: str) -> str:
    """Format a few-shot prompt: `hot : cold , big : small , up :`.

    Example:
        >>> icl_prompt([("hot", "cold"), ("big", "small")], "up")
        'hot : cold , big : small , up :'
    """
    return " ".join([*(f"{x} : {y} ," for x, y in examples), f"{query} :"])


def icl_prompts(
    task: str,
    n: int = 200,
    *,
    k: int = 3,
    split: str = "heldout",
    novel_queries: bool = False,
    seed: int = 0,
) -> list[tuple[str, str]]:
    """`(prompt, answer)` few-shot prompts: `k` examples then a query, e.g. `hot : cold , up :`.

    Examples and queries are training items. With `split="heldout"` the last `ICL_WINDOW`
    inputs (for `k=3`: all three examples and the query) form a combination never seen in
    training; with `"train"` they form a combination that training may contain. With
    `novel_queries=True` the query is a novel item, never in any few-shot document (a harder,
    unthresholded test of reading knowledge out in context).

    Example:
        >>> icl_prompts("antonym", 1)[0]
        ('poor : rich , awake : asleep , polite : rude , hot :', 'cold')
    """
    check_split(split)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    train, novel = _items(task)
    queries = novel if novel_queries else train
    rng = random.Random(f"icl-prompts-{task}-{split}-{novel_queries}-{k}-{seed}")
    out = []
    for i in range(n):
        q, a = queries[i % len(queries)]
        pool = [p for p in train if q not in p and a not in p]
        for _ in range(10_000):
            examples = rng.sample(pool, k)
            inputs = [x for x, _ in examples] + [q]
            if len(inputs) < ICL_WINDOW or novel_queries:
                break
            if icl_combination_heldout(task, inputs[-ICL_WINDOW:]) == (split == "heldout"):
                break
        else:  # pragma: no cover
            raise RuntimeError(f"could not sample a {split} combination for {task}")
        out.append((icl_prompt(examples, q), a))
    return out


def icl_document(rng: random.Random, split: str) -> str:
    """One few-shot document: 2 to 8 training pairs of one task, never a held-out window
    (`"heldout"`: one held-out prompt and its answer).

    Example:
        >>> icl_document(random.Random(0), "train")[:22]
        'engine : engines , win'
    """
    task = rng.choice(ICL_TASKS)
    if split == "heldout":
        prompt, answer = icl_prompts(task, 1, k=rng.randint(3, 6), seed=rng.randrange(10**9))[0]
        return f"{prompt} {answer}"
    train, _ = _items(task)
    for _ in range(10_000):
        items = rng.sample(train, rng.randint(2, 8))
        # drop repeated words (antonym pairs appear in both directions)
        seen: set[str] = set()
        items = [p for p in items if not (p[0] in seen or p[1] in seen or seen.update(p))]
        if not _has_heldout_window(task, [x for x, _ in items]):
            return " , ".join(f"{x} : {y}" for x, y in items)
    raise RuntimeError("could not sample a few-shot document")  # pragma: no cover


def words() -> set[str]:
    """The punctuation of few-shot documents (their items are words of the other skills)."""
    return literal_words([", :"])
