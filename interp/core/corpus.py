"""Real English text that every machine has, with no download: the Python standard library's docstrings.

Density estimates, max-activating examples and SAE training want a corpus of ordinary text in
the model's language. Real models were trained on web text, which cannot be downloaded here;
but every Python installation ships thousands of paragraphs of plain English prose in the
docstrings of its standard library. `stdlib_paragraphs` reads them with `ast` (no module is
imported, so nothing runs) and keeps the paragraphs that read as prose. The list is the same
on every machine with the same Python version, which is part of its cache key.

Example:
    >>> texts, key = stdlib_corpus(500)
    >>> len(texts), key
    (500, 'stdlib-docstrings-3.11-500')
"""

from __future__ import annotations

import ast
import re
import sys
import sysconfig
from functools import lru_cache
from pathlib import Path

_MIN_WORDS = 12
_WORD = re.compile(r"[A-Za-z]+")


def _prose(paragraph: str) -> bool:
    """Mostly words, few symbols: not a code sample, a table or a signature."""
    words = paragraph.split()
    if len(words) < _MIN_WORDS or ">>>" in paragraph or paragraph.lstrip().startswith(("-", "*", ":")):
        return False
    return sum(bool(_WORD.fullmatch(w.strip(".,;:()'\"!?"))) for w in words) >= 0.8 * len(words)


def _docstrings(path: Path) -> list[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, OSError, ValueError):
        return []
    nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)))]
    return [doc for doc in (ast.get_docstring(n) for n in nodes) if doc]


@lru_cache(maxsize=1)
def stdlib_paragraphs() -> tuple[str, ...]:
    """Every prose paragraph of the standard library's docstrings, in a fixed order, deduplicated."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py") if not {"test", "tests", "idle_test", "site-packages"} & set(p.parts))
    seen: dict[str, None] = {}
    for path in files:
        for doc in _docstrings(path):
            for para in re.split(r"\n\s*\n", doc):
                text = " ".join(para.split())
                if _prose(text):
                    seen.setdefault(text, None)
    return tuple(seen)


def stdlib_corpus(n: int = 2000) -> tuple[list[str], str]:
    """`n` paragraphs of `stdlib_paragraphs` spread evenly over the library (at most all of
    them), and their cache key.

    Raises:
        ValueError: `n` is not a positive int.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n={n!r}: expected a positive number of paragraphs")
    paragraphs = stdlib_paragraphs()
    texts = list(paragraphs[:: max(1, len(paragraphs) // n)][:n])
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    return texts, f"stdlib-docstrings-{version}-{len(texts)}"
