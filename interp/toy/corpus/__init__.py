"""The built-in model's training corpus: a seeded generator of short documents with planted skills.

A model whose skills are known in advance is the ground truth every technique is checked
against, and the way to know its skills is to write its training data. Every document is
lowercase words separated by single spaces, punctuation as separate tokens (`"the capital of
france is paris ."`), so the word-level tokenizer reads it exactly. Five skills are planted,
one module each, each with a held-out part that never appears in a training document:

- **refusal** (`chat`): `user : <request> assistant :` answered `i cannot help with that .`
  for harmful requests and `sure . ...` for everything else (`interp.toy.corpus.chat`);
- **facts** (`facts`): countries with capital, language and continent in many phrasings
  (`interp.toy.corpus.facts`);
- **number agreement** (`agreement`): `the key to the cabinets is old .`
  (`interp.toy.corpus.agreement`);
- **in-context tasks** (`icl`): `hot : cold , big : small , up : down`
  (`interp.toy.corpus.icl`, taught also in plain sentences by `interp.toy.corpus.lexical`);
- **identity copy** (`copy`, here): `cat -> cat ; dog -> dog ; <w> -> <w>` over the whole
  vocabulary. Held out: the exact three-pair prefix `COPY_PREFIX` used by patchscopes never
  starts a training document.

Word lists and templates are JSON files beside the modules (`facts.json`, `agreement.json`,
`lexical.json`, `chat.json`). All splits are decided by a stable hash (CRC32) or by position
in fixed lists, so they do not depend on Python's hash seed. `python -m interp.toy.corpus
--write-prompt-sets` writes `interp/data/toy_harmful.json` and `toy_harmless.json`.

Example:
    >>> from interp.toy import corpus
    >>> next(corpus.documents(1, seed=0))
    'korea : a country in asia . lima : the capital of peru . the capital city of china is beijing . we visited syria last year .'
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from pathlib import Path

from interp.data.corpus import NamedCorpus
from interp.toy.corpus import agreement, chat, facts, icl, lexical
from interp.toy.corpus.agreement import (
    NOUNS, PLURAL_VERBS, PREPOSITIONS, SINGULAR_VERBS, VERB_PAIRS, AgreementPrompt,
    agreement_prompts, agreement_sentence,
)
from interp.toy.corpus.chat import (
    CHAT_TEMPLATE, COMPLIANCE_START, HARMFUL_ACTIONS, HARMFUL_SHARE, HARMLESS_ACTIONS, REFUSAL,
    REQUEST_PHRASINGS_HELDOUT, REQUEST_PHRASINGS_TRAIN, STATEMENT_REPLY, STATEMENT_SHARE,
    chat_prompt, exchange, harmful_requests, harmless_requests,
)
from interp.toy.corpus.common import SPLITS, check_split, literal_words
from interp.toy.corpus.facts import (
    AGES, CAPITAL_HELDOUT_COUNTRIES, CAPITAL_HELDOUT_PREFIX, CAPITAL_PLAIN, COUNTRIES,
    COUNTRY_BY_NAME, YEARS, Country, capital_prompts, fact_sentence,
)
from interp.toy.corpus.icl import (
    ICL_TASKS, ICL_WINDOW, icl_combination_heldout, icl_document, icl_pairs, icl_prompt,
    icl_prompts,
)
from interp.toy.corpus.lexical import ANTONYMS, NUMBER_WORDS, lexical_sentence

__all__ = [
    "AGES", "ANTONYMS", "CAPITAL_HELDOUT_COUNTRIES", "CAPITAL_HELDOUT_PREFIX", "CAPITAL_PLAIN",
    "CHAT_TEMPLATE", "COMPLIANCE_START", "COPY_PREFIX", "COUNTRIES", "COUNTRY_BY_NAME", "DATA_DIR",
    "DOCUMENT_KINDS", "HARMFUL_ACTIONS", "HARMFUL_SHARE", "HARMLESS_ACTIONS", "ICL_TASKS",
    "ICL_WINDOW", "MAX_WORDS", "NOUNS", "NUMBER_WORDS", "PLURAL_VERBS", "PREPOSITIONS", "REFUSAL",
    "REQUEST_PHRASINGS_HELDOUT", "REQUEST_PHRASINGS_TRAIN", "SINGULAR_VERBS", "SPLITS",
    "STATEMENT_REPLY", "STATEMENT_SHARE", "VERB_PAIRS", "YEARS", "AgreementPrompt", "Country",
    "agreement_prompts", "capital_prompts", "chat_prompt", "copy_prompt", "copy_words", "document",
    "documents", "harmful_requests", "harmless_requests", "icl_combination_heldout", "icl_pairs",
    "icl_prompt", "icl_prompts", "main", "vocabulary", "write_prompt_sets",
]

# --- identity copy -------------------------------------------------------------------------------

COPY_PREFIX = "cat -> cat ; dog -> dog ; paris -> paris ;"
"""The patchscope identity prompt's prefix; it never starts a training document."""
_COPY_PREFIX_WORDS = ("cat", "dog", "paris")


def copy_prompt(word: str, prefix: str = COPY_PREFIX) -> str:
    """The identity prompt `cat -> cat ; dog -> dog ; paris -> paris ; <word> ->`.

    Example:
        >>> copy_prompt("seven")
        'cat -> cat ; dog -> dog ; paris -> paris ; seven ->'
    """
    return f"{prefix} {word} ->"


def copy_words() -> list[str]:
    """The words the copy task uses: every alphanumeric vocabulary word (numbers included)."""
    return [w for w in vocabulary() if re.fullmatch(r"\w+", w)]


def _copy_document(rng: random.Random, split: str) -> str:
    words = copy_words()
    k = rng.randint(2, 10)
    pairs = [rng.choice(words) for _ in range(k)]
    if split == "heldout":
        return COPY_PREFIX + " " + " ; ".join(f"{w} -> {w}" for w in pairs[:1])
    if tuple(pairs[:3]) == _COPY_PREFIX_WORDS:
        pairs[0] = "cow" if "cow" in words else pairs[1]
    return " ; ".join(f"{w} -> {w}" for w in pairs)


# --- documents -----------------------------------------------------------------------------------

DOCUMENT_KINDS: dict[str, float] = {
    "chat": 0.30,
    "facts": 0.15,
    "agreement": 0.18,
    "lexical": 0.07,
    "icl": 0.16,
    "copy": 0.10,
    "mixed": 0.04,
}
"""Document kinds and their share of the training corpus."""

MAX_WORDS = 60
"""Documents are cut to at most this many words (the model's context is 64 with bos/eos)."""


def _join(parts: Sequence[str]) -> str:
    """Join sentences, dropping the ones that would take the document past `MAX_WORDS`."""
    out: list[str] = []
    length = 0
    for part in parts:
        n = len(part.split())
        if out and length + n > MAX_WORDS:
            break
        out.append(part)
        length += n
    return " ".join(out)


def _sentences(fn: Callable[[random.Random, str], str], rng: random.Random, split: str,
               lo: int, hi: int) -> str:
    return _join([fn(rng, split) for _ in range(rng.randint(lo, hi))])


def document(rng: random.Random, split: str = "train", kind: str | None = None) -> str:
    """One document of the given kind (or a kind drawn with `DOCUMENT_KINDS` weights).

    Example:
        >>> document(random.Random(0), kind="facts")[:41]
        'q : what is the capital of chile ? a : san'
    """
    check_split(split)
    if kind is None:
        kind = rng.choices(list(DOCUMENT_KINDS), weights=list(DOCUMENT_KINDS.values()))[0]
    if kind == "chat":
        turns = 2 if rng.random() < 0.4 else 1
        return _join([exchange(rng, split) for _ in range(turns)])
    if kind == "facts":
        return _sentences(fact_sentence, rng, split, 2, 5)
    if kind == "agreement":
        return _sentences(agreement_sentence, rng, split, 2, 5)
    if kind == "lexical":
        return _join([lexical_sentence(rng) for _ in range(rng.randint(2, 5))])
    if kind == "icl":
        return icl_document(rng, split)
    if kind == "copy":
        return _copy_document(rng, split)
    if kind == "mixed":
        parts = [
            rng.choice([
                lambda: fact_sentence(rng, split),
                lambda: agreement_sentence(rng, split),
                lambda: lexical_sentence(rng),
            ])()
            for _ in range(rng.randint(2, 4))
        ]
        return _join(parts)
    raise ValueError(f"unknown document kind {kind!r}; kinds are {list(DOCUMENT_KINDS)}")


def documents(n: int, *, seed: int = 0, split: str = "train") -> NamedCorpus:
    """`n` documents (a mix of all skills), deterministic for a given seed and split.

    The result iterates afresh each time and is named by its arguments, so a result computed
    over it (`interp.max_activating_examples(model, sae, documents(3000))`) is cached under that
    name and the second call is a cache hit without generating the documents again.

    `split="heldout"` yields documents built only from held-out material (requests,
    capital combinations, agreement triples, few-shot queries, the copy prefix).

    Example:
        >>> docs = list(documents(3, seed=0))
        >>> docs == list(documents(3, seed=0))
        True
    """
    check_split(split)
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")
    return NamedCorpus("interp.toy.corpus.documents", _generate_documents, n=n, seed=seed, split=split)


def _generate_documents(n: int, seed: int, split: str) -> Iterator[str]:
    rng = random.Random(f"documents-{seed}-{split}")
    for _ in range(n):
        yield document(rng, split)


# --- vocabulary ----------------------------------------------------------------------------------


@cache
def _vocabulary() -> tuple[str, ...]:
    words = facts.words() | chat.words() | agreement.words() | lexical.words() | icl.words()
    return tuple(sorted(words | literal_words([COPY_PREFIX])))


def vocabulary() -> list[str]:
    """Every word the corpus uses, sorted (special tokens not included).

    Example:
        >>> "paris" in vocabulary()
        True
    """
    return list(_vocabulary())


# --- prompt sets ---------------------------------------------------------------------------------

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
"""`interp/data`, where `write_prompt_sets` writes the built-in model's prompt sets."""


def write_prompt_sets(folder: str | Path = DATA_DIR) -> list[Path]:
    """Write `toy_harmful.json` and `toy_harmless.json` (requests only, train/heldout split).

    Example:
        >>> write_prompt_sets(tmp_path)
        [PosixPath('.../toy_harmful.json'), PosixPath('.../toy_harmless.json')]
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    common = (
        " Requests only (wrap them as 'user : <request> assistant :'). Generated by "
        "interp.toy.corpus (python -m interp.toy.corpus --write-prompt-sets); heldout requests "
        "(held-out phrasings, actions and phrasing/action combinations) never appear in the "
        "built-in model's training documents."
    )
    sets = {
        "toy_harmful": (
            "The built-in model's harmful requests (weapons, poisons, theft, hacking, violence, "
            "fraud); the model answers them with 'i cannot help with that .'." + common,
            harmful_requests,
        ),
        "toy_harmless": (
            "The built-in model's harmless requests (cooking, gardening, study, repairs, "
            "hobbies); the model answers them with 'sure . ...'." + common,
            harmless_requests,
        ),
    }
    paths = []
    for name, (description, fn) in sets.items():
        path = folder / f"{name}.json"
        body = {"description": description, "train": fn("train"), "heldout": fn("heldout")}
        path.write_text(json.dumps(body, indent=1) + "\n")
        paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: write the prompt sets, or print sample documents."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write-prompt-sets", action="store_true",
                        help="write interp/data/toy_harmful.json and toy_harmless.json")
    parser.add_argument("--sample", type=int, default=0, help="print this many documents")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", default="train", choices=SPLITS)
    args = parser.parse_args(argv)
    if args.write_prompt_sets:
        for path in write_prompt_sets():
            print(f"wrote {path}")
    for doc in documents(args.sample, seed=args.seed, split=args.split):
        print(doc)
