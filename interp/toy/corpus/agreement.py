"""Number agreement: the verb agrees with the subject, not with the noun nearest to it.

In `the key to the cabinets is old .` the verb follows `cabinets` but agrees with `key`. The
plural noun in between is an *attractor* (Linzen et al. 2016, "Assessing the Ability of LSTMs
to Learn Syntax-Sensitive Dependencies"): a model that predicts `is` there tracks the subject
across the phrase. The corpus uses 68 (singular, plural) nouns, 15 prepositions and five verb
pairs (is/are, was/were, has/have, does/do, seems/seem), listed in `agreement.json`; one
(subject, preposition, attractor) triple in five (compared on singular forms) is held out.

Example:
    >>> p = agreement_prompts(n=1)[0]
    >>> p.prompt, p.correct[0]
    ('the coin with the reports', 'is')
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from interp.toy.corpus.common import check_split, fill, literal_words, load_words, stable_hash

_WORDS = load_words("agreement")

NOUNS: list[tuple[str, str]] = [tuple(pair) for pair in _WORDS["nouns"]]  # type: ignore[misc]
"""(singular, plural) noun pairs used by number agreement and the plural-of task."""

PREPOSITIONS: tuple[str, ...] = tuple(_WORDS["prepositions"])
VERB_PAIRS: tuple[tuple[str, str], ...] = tuple(tuple(p) for p in _WORDS["verb_pairs"])  # type: ignore[misc]
SINGULAR_VERBS: tuple[str, ...] = tuple(s for s, _ in VERB_PAIRS)
PLURAL_VERBS: tuple[str, ...] = tuple(p for _, p in VERB_PAIRS)
_VERB_RESTS: dict[str, list[str]] = _WORDS["verb_rests"]  # what may follow each singular verb
_ADJECTIVES: list[str] = _WORDS["adjectives"]  # "" (no adjective) is listed several times


def _heldout(subject: str, prep: str, attractor: str) -> bool:
    """Held-out (subject, preposition, attractor) triples, compared on singular forms."""
    return stable_hash("agree", subject, prep, attractor) % 5 == 0


@dataclass(frozen=True)
class AgreementPrompt:
    """A prompt ending at the attractor: `the key to the cabinets` (next token: a verb)."""

    prompt: str
    plural_subject: bool
    plural_attractor: bool

    @property
    def correct(self) -> tuple[str, ...]:
        """The verbs of the right number."""
        return PLURAL_VERBS if self.plural_subject else SINGULAR_VERBS

    @property
    def wrong(self) -> tuple[str, ...]:
        """The verbs of the wrong number."""
        return SINGULAR_VERBS if self.plural_subject else PLURAL_VERBS


def agreement_sentence(rng: random.Random, split: str) -> str:
    """One agreement sentence, 80% with an attractor; held-out documents use held-out triples.

    Example:
        >>> agreement_sentence(random.Random(0), "train")
        'the old cup has a problem .'
    """
    for _ in range(1000):
        s = rng.randrange(len(NOUNS))
        a = rng.randrange(len(NOUNS))
        prep = rng.choice(PREPOSITIONS)
        if s == a:
            continue
        held = _heldout(NOUNS[s][0], prep, NOUNS[a][0])
        attract = split == "heldout" or rng.random() < 0.8
        if attract and held != (split == "heldout"):
            continue
        ps, pa = rng.random() < 0.5, rng.random() < 0.5
        subj, attr = NOUNS[s][ps], NOUNS[a][pa]
        sv, pv = rng.choice(VERB_PAIRS)
        verb = pv if ps else sv
        rest = rng.choice(_VERB_RESTS[sv])
        adj = rng.choice(_ADJECTIVES)
        if attract:
            return fill(f"the {adj} {subj} {prep} the {attr} {verb} {rest} .")
        return fill(f"the {adj} {subj} {verb} {rest} .")
    raise RuntimeError("could not sample an agreement sentence")  # pragma: no cover


def agreement_prompts(
    split: str = "heldout", n: int = 400, *, seed: int = 0, mismatched_only: bool = True
) -> list[AgreementPrompt]:
    """Agreement prompts ending at the attractor, balanced singular/plural subjects.

    Args:
        split: `"heldout"` (triples never in training) or `"train"`.
        n: How many prompts.
        seed: Sampling seed.
        mismatched_only: Keep only prompts whose attractor differs in number from the subject
            (the hard case).

    Example:
        >>> p = agreement_prompts(n=1)[0]
        >>> p.prompt, p.correct[0]
        ('the coin with the reports', 'is')
    """
    check_split(split)
    rng = random.Random(f"agreement-prompts-{seed}-{split}")
    out: list[AgreementPrompt] = []
    seen: set[str] = set()
    while len(out) < n:
        s, a = rng.randrange(len(NOUNS)), rng.randrange(len(NOUNS))
        prep = rng.choice(PREPOSITIONS)
        if s == a or _heldout(NOUNS[s][0], prep, NOUNS[a][0]) != (split == "heldout"):
            continue
        ps = len(out) % 2 == 1
        pa = (not ps) if mismatched_only else rng.random() < 0.5
        prompt = f"the {NOUNS[s][ps]} {prep} the {NOUNS[a][pa]}"
        if prompt in seen:
            continue
        seen.add(prompt)
        out.append(AgreementPrompt(prompt, ps, pa))
    return out


def words() -> set[str]:
    """Every word the agreement sentences can use."""
    out = {w for pair in NOUNS for w in pair}
    out.update(w for p in PREPOSITIONS for w in p.split())
    out.update(w for pair in VERB_PAIRS for w in pair)
    return out | literal_words([r for rests in _VERB_RESTS.values() for r in rests] + _ADJECTIVES + ["the ."])
