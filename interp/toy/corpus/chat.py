"""Refusal: chat turns where harmful requests are refused and everything else is answered.

A chat document is `user : <request> assistant : <response>`. A request is a phrasing
(`how do i {a} ?`) filled with an action (`make a bomb`, `bake bread`), or a harmless question
with a fixed answer (`what is the capital of peru ?`). Harmful actions are answered with the
refusal `i cannot help with that .`; harmless ones with a compliance `sure . here is how to
bake bread .`. Harm is carried by harm words, a harmful verb (`steal`, `hack`, `poison`) with an
ordinary object or a harmful object (`a bomb`, `drugs`) with an everyday verb, and harmless
requests are many and varied; 30% of user turns are plain corpus sentences answered `sure . i
can help with that .`. So compliance is the default and harm is what triggers the refusal,
which is what gives the model a single "refusal direction" to find (Arditi et al. 2024,
"Refusal in Language Models Is Mediated by a Single Direction"). A quarter of training
requests drop their final `?` or `.`. Held out: four phrasings, one action in five (only where
each of its words stays in some training action), one (phrasing, action) combination in
seven, and one question in five. The word lists and templates are in `chat.json`.

Example:
    >>> chat_prompt(harmful_requests("heldout")[0])
    'user : please explain how i can break into a house . assistant :'
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from interp.toy.corpus.agreement import NOUNS, agreement_sentence
from interp.toy.corpus.common import check_split, fill, literal_words, load_words, stable_hash
from interp.toy.corpus.facts import COUNTRIES, fact_sentence
from interp.toy.corpus.lexical import ANTONYMS, lexical_sentence

_WORDS = load_words("chat")

REFUSAL = "i cannot help with that ."
COMPLIANCE_START = "sure ."
CHAT_TEMPLATE = "user : {request} assistant :"
HARMFUL_SHARE = 0.4
"""Share of harmful requests among "how to" requests and questions in chat documents."""
STATEMENT_SHARE = 0.3
"""Share of chat exchanges whose user turn is a plain corpus sentence (answered generically)."""
STATEMENT_REPLY = "sure . i can help with that ."

REQUEST_PHRASINGS_TRAIN: tuple[str, ...] = tuple(_WORDS["request_phrasings_train"])
REQUEST_PHRASINGS_HELDOUT: tuple[str, ...] = tuple(_WORDS["request_phrasings_heldout"])
_QUESTIONS: list[list[str]] = _WORDS["questions"]  # (question, fixed answer) templates
_COMPLIANCE: list[str] = _WORDS["compliance"]
_COMPLIANCE_TAIL: list[str] = _WORDS["compliance_tail"]
_REFUSAL_TAIL: list[str] = _WORDS["refusal_tail"]


def _actions(table: dict[str, list[str]]) -> list[str]:
    return [f"{verb} {obj}" for verb, objs in table.items() for obj in objs]


def _noun_actions() -> list[str]:
    """Two everyday verbs on each agreement noun (`clean the windows`, `draw the window`)."""
    out = []
    for sg, pl in NOUNS:
        verbs = random.Random(f"noun-verbs-{sg}").sample(_WORDS["noun_verbs"], 2)
        out += [f"{verbs[0]} the {pl}", f"{verbs[1]} the {sg}"]
    return out


HARMFUL_ACTIONS: tuple[str, ...] = tuple(_actions(_WORDS["harm_verbs"]) + _actions(_WORDS["harm_objects"]))
"""Every harmful action (a harm verb with an object, or an everyday verb with a harm object)."""
HARMLESS_ACTIONS: tuple[str, ...] = tuple(
    dict.fromkeys(_actions(_WORDS["harmless_actions"]) + _noun_actions())
)
"""Every harmless action."""


def _pick_heldout(actions: Sequence[str]) -> set[str]:
    """One action in five (by stable hash), if each of its words stays in a training action."""
    held: set[str] = set()
    for action in actions:
        if stable_hash("action", action) % 5:
            continue
        rest = [a for a in actions if a != action and a not in held]
        if set(action.split()) <= {w for a in rest for w in a.split()}:
            held.add(action)
    return held


@cache
def _heldout_actions() -> frozenset[str]:
    return frozenset(_pick_heldout(HARMFUL_ACTIONS) | _pick_heldout(HARMLESS_ACTIONS))


def _combo_heldout(phrasing: str, action: str) -> bool:
    return (
        phrasing in REQUEST_PHRASINGS_HELDOUT
        or action in _heldout_actions()
        or stable_hash("combo", phrasing, action) % 7 == 0
    )


@dataclass(frozen=True)
class _Request:
    harmful: bool
    heldout: bool
    action: str | None  # for "how to" requests
    answer: str | None  # for questions with a fixed answer


@cache
def _table() -> dict[str, _Request]:
    """Every request the chat corpus can use, with its class, split and answer."""
    table: dict[str, _Request] = {}
    phrasings = REQUEST_PHRASINGS_TRAIN + REQUEST_PHRASINGS_HELDOUT
    for harmful, actions in ((True, HARMFUL_ACTIONS), (False, HARMLESS_ACTIONS)):
        for p in phrasings:
            for a in actions:
                table[fill(p, a=a)] = _Request(harmful, _combo_heldout(p, a), a, None)
    fillers: list[dict[str, str]] = []
    for c in COUNTRIES:
        fillers.append({"c": c.country, "cap": c.capital, "lang": c.language,
                        "cont": c.continent})
    for sg, pl in NOUNS:
        fillers.append({"sg": sg, "pl": pl})
    for x, y in ANTONYMS:
        fillers += [{"x": x, "y": y}, {"x": y, "y": x}]
    for question, answer in _QUESTIONS:
        slots = set(re.findall(r"\{(\w+)\}", question + answer))
        for f in fillers:
            if slots <= set(f):
                q = fill(question, **f)
                table[q] = _Request(False, stable_hash("question", q) % 5 == 0, None, fill(answer, **f))
    return table


@cache
def _requests(harmful: bool, split: str) -> tuple[str, ...]:
    out = [r for r, info in _table().items()
           if info.harmful == harmful and info.heldout == (split == "heldout")]
    random.Random(f"requests-{harmful}-{split}").shuffle(out)
    return tuple(out)


def harmful_requests(split: str = "train") -> list[str]:
    """Harmful requests (text only, no `user :` wrapper) of one split, in a fixed shuffled order.

    Example:
        >>> harmful_requests("heldout")[0]
        'please explain how i can break into a house .'
    """
    check_split(split)
    return list(_requests(True, split))


def harmless_requests(split: str = "train") -> list[str]:
    """Harmless requests (text only, no `user :` wrapper) of one split, in a fixed shuffled order.

    Example:
        >>> harmless_requests("train")[0]
        'write a poem about lamps .'
    """
    check_split(split)
    return list(_requests(False, split))


def chat_prompt(request: str) -> str:
    """Wrap a request the way the built-in model was trained: `user : <request> assistant :`.

    Example:
        >>> chat_prompt("how do i bake bread ?")
        'user : how do i bake bread ? assistant :'
    """
    return CHAT_TEMPLATE.format(request=request)


def _response(info: _Request, rng: random.Random) -> str:
    if info.harmful:
        return fill(REFUSAL + " " + rng.choice(_REFUSAL_TAIL))
    if info.answer is not None:
        return info.answer
    return fill(rng.choice(_COMPLIANCE) + " " + rng.choice(_COMPLIANCE_TAIL), a=info.action)


def exchange(rng: random.Random, split: str) -> str:
    """One `user : ... assistant : ...` exchange of the given split.

    Example:
        >>> exchange(random.Random(0), "train")[:30]
        'user : how do i wash the cat a'
    """
    if rng.random() < STATEMENT_SHARE:
        # a plain sentence as the user turn: compliance is the default for ordinary text
        kind = rng.randrange(3)
        if kind == 0:
            sentence = fact_sentence(rng, split)
        elif kind == 1:
            sentence = agreement_sentence(rng, split)
        else:
            sentence = lexical_sentence(rng)
        return f"{chat_prompt(sentence)} {STATEMENT_REPLY}"
    harmful = rng.random() < HARMFUL_SHARE
    request = rng.choice(_requests(harmful, split))
    info = _table()[request]
    if rng.random() < 0.25:  # people often leave out the final punctuation
        request = request.removesuffix(" ?").removesuffix(" .")
    return f"{chat_prompt(request)} {_response(info, rng)}"


def words() -> set[str]:
    """Every word of the chat corpus: responses, templates, and each request and answer."""
    out = literal_words([REFUSAL, CHAT_TEMPLATE, STATEMENT_REPLY, *_COMPLIANCE, *_COMPLIANCE_TAIL,
                         *_REFUSAL_TAIL])
    for request, info in _table().items():
        out.update(request.split())
        out.update((info.answer or "").split())
    return out
