"""What every part of the corpus generator shares: the splits, stable hashes, template filling.

Held-out material is chosen by a stable hash of its words (CRC32), never by Python's `hash`,
so the same seed gives the same corpus in every process whatever `PYTHONHASHSEED` is. Word
lists and templates live in JSON files beside the modules that use them (`facts.json`,
`agreement.json`, `lexical.json`, `chat.json`) and are read once, on import.

Example:
    >>> fill("the capital of {c} is {cap} .", c="peru", cap="lima")
    'the capital of peru is lima .'
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SPLITS = ("train", "heldout")
"""Every document, request and prompt belongs to one split; held-out material is never trained on."""

FOLDER = Path(__file__).resolve().parent


def load_words(name: str) -> dict[str, Any]:
    """The word lists and templates of one skill, from `<name>.json` beside this module.

    Example:
        >>> load_words("facts")["countries"][0]
        ['france', 'paris', 'french', 'europe']
    """
    return json.loads((FOLDER / f"{name}.json").read_text(encoding="utf-8"))


def stable_hash(*parts: str) -> int:
    """A hash of some strings that does not depend on `PYTHONHASHSEED` (CRC32).

    Example:
        >>> stable_hash("agree", "key", "to", "cabinet") % 5 == 0  # is this triple held out?
        False
    """
    return zlib.crc32("\x1f".join(parts).encode())


def check_split(split: str) -> None:
    """Raise `ValueError` unless `split` is one of `SPLITS`."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r} must be one of {SPLITS}")


def fill(template: str, **slots: str) -> str:
    """Fill a template's `{slots}` and collapse runs of spaces (left by empty slots).

    Example:
        >>> fill("the {adj} key is old .", adj="")
        'the key is old .'
    """
    return " ".join(template.format(**slots).split())


def literal_words(templates: Iterable[str]) -> set[str]:
    """The words of templates, slots left out: the part of the vocabulary they bring.

    Example:
        >>> sorted(literal_words(["{c} is in {cont} ."]))
        ['.', 'in', 'is']
    """
    return {w for t in templates for w in re.sub(r"\{\w+\}", " ", t).split()}
