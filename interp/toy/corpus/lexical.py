"""Lexical knowledge: antonyms and plurals, taught in plain sentences.

`the opposite of hot is cold .` and `one key , two keys .` teach word relations outside any
few-shot format. The in-context tasks (`interp.toy.corpus.icl`) ask for the same relations in
the format `hot : cold , big :`, and their "novel" items are known *only* from these sentences,
so they measure whether the model reads a relation it knows into a format it has seen used for
other items. Antonym pairs and templates are in `lexical.json`; nouns come from the agreement
corpus.

Example:
    >>> lexical_sentence(random.Random(1))
    'the opposite of arrive is leave .'
"""

from __future__ import annotations

import random

from interp.toy.corpus.agreement import NOUNS
from interp.toy.corpus.common import fill, literal_words, load_words
from interp.toy.corpus.facts import AGES

_WORDS = load_words("lexical")

ANTONYMS: list[tuple[str, str]] = [tuple(pair) for pair in _WORDS["antonyms"]]  # type: ignore[misc]
"""Antonym pairs; the task uses both directions."""

_ANTONYM_SENTENCES: list[str] = _WORDS["antonym_sentences"]  # {x} and its opposite {y}
_PLURAL_SENTENCES: list[str] = _WORDS["plural_sentences"]  # {x} singular, {y} plural
NUMBER_WORDS: list[str] = _WORDS["number_words"]


def lexical_sentence(rng: random.Random) -> str:
    """One sentence about an antonym pair (either direction) or a noun's plural.

    Example:
        >>> lexical_sentence(random.Random(1))
        'the opposite of arrive is leave .'
    """
    if rng.random() < 0.5:
        x, y = rng.choice(ANTONYMS)
        if rng.random() < 0.5:
            x, y = y, x
        return fill(rng.choice(_ANTONYM_SENTENCES), x=x, y=y)
    x, y = rng.choice(NOUNS)
    r = rng.random()
    if r < 0.2:
        n = rng.choice(NUMBER_WORDS[1:])
        return f"i see {n} {y} and one {x} ."
    if r < 0.4:
        return f"there are {rng.choice(AGES[1:])} {y} here and 1 {x} there ."
    return fill(rng.choice(_PLURAL_SENTENCES), x=x, y=y)


def words() -> set[str]:
    """Every word the lexical sentences can use."""
    out = {w for pair in ANTONYMS for w in pair} | set(NUMBER_WORDS)
    return out | literal_words(_ANTONYM_SENTENCES + _PLURAL_SENTENCES
                               + ["i see and one .", "there are here and 1 there ."])
