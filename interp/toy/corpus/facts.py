"""Facts: countries with their capital, language and continent, said many ways.

The model learns a relation well only if it sees it in several forms, so each country's
capital appears in forward phrasings (`the capital city of peru is lima .`), backward ones
(`lima is the capital of peru .`), entity descriptions (`lima : a city in peru .`) and neutral
sentences that merely mention it (`we visited peru last year .`). What is held out is one
*form*, not the fact: the plain template `the capital of <country> is` for one country in four,
and the prefix `everyone knows that` in front of that template for every country. A model that
answers those prompts has learned the fact, not the string. The countries and templates are in
`facts.json`.

Example:
    >>> capital_prompts("train")[0]
    ('the capital of france is', 'paris')
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

from interp.toy.corpus.common import check_split, fill, literal_words, load_words

_WORDS = load_words("facts")


@dataclass(frozen=True)
class Country:
    """One country record; readable as attributes (`c.capital`) or as a dict (`c["capital"]`)."""

    country: str
    capital: str
    language: str
    continent: str

    def __getitem__(self, key: str) -> str:
        if key not in ("country", "capital", "language", "continent"):
            raise KeyError(f"{key!r}: a Country has country, capital, language, continent")
        return getattr(self, key)

    def as_dict(self) -> dict[str, str]:
        """The record as a plain dict."""
        return asdict(self)


COUNTRIES: list[Country] = [Country(*row) for row in _WORDS["countries"]]
"""The 64 countries of the fact corpus (every name, capital and language is one token)."""

COUNTRY_BY_NAME: dict[str, Country] = {c.country: c for c in COUNTRIES}

CAPITAL_HELDOUT_COUNTRIES: tuple[str, ...] = tuple(c.country for c in COUNTRIES[1::4])
"""Countries whose plain capital template (`the capital of X is Y`) is held out: one in four."""

CAPITAL_PLAIN: str = _WORDS["capital_plain"]
CAPITAL_HELDOUT_PREFIX: str = _WORDS["capital_heldout_prefix"]

_TEMPLATES: dict[str, list[str]] = {
    "plain": [CAPITAL_PLAIN],
    "forward": _WORDS["capital_forward"],  # country -> capital, besides the plain one
    "backward": _WORDS["capital_backward"],
    "language": _WORDS["language"],
    "continent": _WORDS["continent"],
    "description": _WORDS["descriptions"],
    "neutral": _WORDS["neutral"],
}
_WEIGHTS = [3, 4, 3, 3, 2, 3, 3]  # of the kinds above, in order
_PREFIXES: list[str] = _WORDS["prefixes"]  # optional sentence openers ("in fact ,")

YEARS = [str(y) for y in range(1990, 2026)]
AGES = [str(a) for a in range(1, 101)]


def _slots(c: Country, rng: random.Random) -> dict[str, str]:
    return {
        "c": c.country,
        "cap": c.capital,
        "lang": c.language,
        "cont": c.continent,
        "year": rng.choice(YEARS),
        "age": rng.choice(AGES),
    }


def fact_sentence(rng: random.Random, split: str) -> str:
    """One fact sentence; held-out documents use only held-out capital combinations.

    Example:
        >>> fact_sentence(random.Random(0), "heldout")
        'everyone knows that the capital of tunisia is tunis .'
    """
    if split == "heldout":
        c = rng.choice(COUNTRIES)
        if c.country in CAPITAL_HELDOUT_COUNTRIES and rng.random() < 0.5:
            return fill(CAPITAL_PLAIN, **_slots(c, rng))
        return CAPITAL_HELDOUT_PREFIX + " " + fill(CAPITAL_PLAIN, **_slots(c, rng))
    c = rng.choice(COUNTRIES)
    kind = rng.choices(list(_TEMPLATES), weights=_WEIGHTS)[0]
    if kind == "plain" and c.country in CAPITAL_HELDOUT_COUNTRIES:
        kind = "forward"
    sentence = fill(rng.choice(_TEMPLATES[kind]), **_slots(c, rng))
    if kind in ("plain", "forward", "language", "continent") and rng.random() < 0.3:
        prefix = rng.choice(_PREFIXES)
        if prefix == CAPITAL_HELDOUT_PREFIX and kind == "plain":
            prefix = "in fact ,"
        sentence = prefix + " " + sentence
    return sentence


def capital_prompts(split: str = "heldout") -> list[tuple[str, str]]:
    """`(prompt, capital)` pairs for the capital-of fact.

    `"heldout"`: the plain template for the held-out countries plus the held-out prefix
    `everyone knows that the capital of <country> is` for every country. `"train"`: the plain
    template for the other countries.

    Example:
        >>> capital_prompts("train")[0]
        ('the capital of france is', 'paris')
    """
    check_split(split)
    plain = [(f"the capital of {c.country} is", c.capital) for c in COUNTRIES]
    if split == "train":
        return [p for p, c in zip(plain, COUNTRIES) if c.country not in CAPITAL_HELDOUT_COUNTRIES]
    held = [p for p, c in zip(plain, COUNTRIES) if c.country in CAPITAL_HELDOUT_COUNTRIES]
    return held + [(f"{CAPITAL_HELDOUT_PREFIX} {p}", a) for p, a in plain]


def words() -> set[str]:
    """Every word the fact sentences can use."""
    out = {w for c in COUNTRIES for field in (c.country, c.capital, c.language, c.continent)
           for w in field.split()}
    out |= literal_words([CAPITAL_HELDOUT_PREFIX, *_PREFIXES, *(t for ts in _TEMPLATES.values() for t in ts)])
    return out | set(YEARS) | set(AGES)
