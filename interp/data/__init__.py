"""Bundled prompt sets, written for this project, loadable by name.

Each set is a JSON file in this folder: either `{"description", "train", "heldout"}` (prompt
sets with a held-out split), `{"description", "prompts"}`, `{"description", "pairs"}`
(few-shot task pairs), or `{"description", "fields", "items"}` (records with named fields,
read with `records`). Real-model sets: `harmful`, `harmless`, the task pairs `antonyms`,
`country_capital`, `singular_plural`, `present_past`, `english_french`, and the records
`two_hop` (composed questions with their one-hop facts). The built-in model's own sets are
`toy_harmful` and `toy_harmless`.

Example:
    >>> from interp import data
    >>> data.prompts("harmful", split="train")[:2]
    >>> data.pairs("antonyms")[:3]
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

FOLDER = Path(__file__).parent
SPLITS = ("train", "heldout", "all")


def available() -> list[str]:
    """Names of the bundled sets."""
    return sorted(p.stem for p in FOLDER.glob("*.json"))


@cache
def _read(name: str) -> dict:
    path = FOLDER / f"{name}.json"
    if not path.exists():
        raise KeyError(f"no prompt set {name!r}; available: {', '.join(available())}")
    return json.loads(path.read_text())


def prompts(name: str, split: str = "all") -> list[str]:
    """The prompts of set `name`: its `"train"` or `"heldout"` split, or `"all"` of them."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r} must be one of {SPLITS}")
    data = _read(name)
    if "prompts" in data:
        if split != "all":
            raise ValueError(f"set {name!r} has no splits; use split='all'")
        return list(data["prompts"])
    if "train" not in data:
        raise KeyError(f"set {name!r} holds pairs, not prompts; use interp.data.pairs({name!r})")
    if split == "all":
        return list(data["train"]) + list(data["heldout"])
    return list(data[split])


def pairs(name: str) -> list[tuple[str, str]]:
    """The (input, output) pairs of a few-shot task set, e.g. `("hot", "cold")`."""
    data = _read(name)
    if "pairs" not in data:
        raise KeyError(f"set {name!r} holds prompts, not pairs; use interp.data.prompts({name!r})")
    return [(a, b) for a, b in data["pairs"]]


def records(name: str) -> list[dict[str, str]]:
    """The items of a record set (each a dict of the fields its JSON documents), e.g. `two_hop`.

    Example:
        >>> data.records("two_hop")[0]["two"]
        'The capital of the country where the Eiffel Tower is located is'
    """
    data = _read(name)
    if "items" not in data:
        raise KeyError(f"set {name!r} holds no records; use interp.data.pairs or interp.data.prompts")
    return [dict(item) for item in data["items"]]


def description(name: str) -> str:
    """What a set is and where it comes from."""
    return _read(name).get("description", "")
