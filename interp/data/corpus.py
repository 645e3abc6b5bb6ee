"""Corpus readers: turn whatever a user has into a stream of text examples.

A corpus may be a list of strings, any iterable or generator of strings, a path to a text file
(one example per non-empty line), a folder of `.txt` files, or a Hugging Face dataset (its
`"text"` column). Nothing is read into memory up front.

A corpus that is generated on the fly (the built-in model's documents) is a `NamedCorpus`: it
iterates afresh every time and carries a name and parameters, so results computed over it can
be cached under that identity without reading it (a bare generator has no identity: it can be
hashed only by streaming it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

Corpus = str | Path | Iterable[str] | Any


class NamedCorpus:
    """A re-iterable corpus with an identity: `factory(**params)` yields its texts.

    Example:
        >>> docs = NamedCorpus("toy-documents", lambda n: (f"doc {i}" for i in range(n)), n=3)
        >>> list(docs), docs.key, len(docs)
        (['doc 0', 'doc 1', 'doc 2'], 'toy-documents(n=3)', 3)
    """

    def __init__(self, name: str, factory: Any, length: int | None = None, **params: Any) -> None:
        from interp.core.checks import check_count

        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"name is {name!r}: expected a non-empty string naming the corpus")
        if not callable(factory):
            raise TypeError(f"factory is {factory!r}: expected a callable returning an iterable of strings")
        if length is not None:
            check_count(length, "length", minimum=0)
        self.name, self.factory, self.params = name, factory, params
        self.length = length if length is not None else params.get("n")

    @property
    def key(self) -> str:
        """The corpus' identity: its name and parameters (what a cache entry is keyed by)."""
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in sorted(self.params.items()))})"

    def __iter__(self) -> Iterator[str]:
        return iter(self.factory(**self.params))

    def __len__(self) -> int:
        if self.length is None:
            raise TypeError(f"{self.key} does not know its length")
        return int(self.length)

    def __repr__(self) -> str:
        return f"NamedCorpus({self.key})"


def iter_texts(corpus: Corpus, *, column: str = "text", limit: int | None = None) -> Iterator[str]:
    """Yield the non-empty text examples of `corpus`, lazily.

    Raises:
        ValueError: the corpus yields no example at all, or a path does not exist.
        TypeError: an example is not a string.

    Example:
        >>> list(iter_texts(["a b", "", "c"]))
        ['a b', 'c']
    """
    count = 0
    for text in islice(_raw(corpus, column), limit):
        if not isinstance(text, str):
            raise TypeError(f"corpus example {count} is {type(text).__name__}, expected str")
        if text.strip():
            count += 1
            yield text.strip()
    if count == 0:
        raise ValueError(f"corpus {_describe(corpus)} is empty: expected at least one non-empty text")


def _raw(corpus: Corpus, column: str) -> Iterator[Any]:
    if isinstance(corpus, (str, Path)):
        path = Path(corpus)
        if not path.exists():
            raise ValueError(f"corpus path {str(path)!r} does not exist")
        files = sorted(path.glob("**/*.txt")) if path.is_dir() else [path]
        for file in files:
            with open(file, encoding="utf-8") as f:
                yield from (line.rstrip("\n") for line in f)
        return
    if hasattr(corpus, "column_names"):  # a Hugging Face dataset (streaming ones may not know their columns)
        columns = corpus.column_names
        if columns is not None and column not in columns:
            raise ValueError(f"the dataset has no {column!r} column: its columns are {list(columns)}")
        for row in corpus:
            yield row[column]
        return
    if not isinstance(corpus, Iterable):
        raise TypeError(f"corpus of type {type(corpus).__name__} is not a path, dataset or iterable of strings")
    yield from corpus


def _describe(corpus: Corpus) -> str:
    if isinstance(corpus, (str, Path)):
        return repr(str(corpus))
    return f"of type {type(corpus).__name__}"


def batched(texts: Iterable[str], size: int) -> Iterator[list[str]]:
    """Group a stream into lists of `size` (the last may be shorter)."""
    if size < 1:
        raise ValueError(f"batch size {size} must be >= 1")
    it = iter(texts)
    while batch := list(islice(it, size)):
        yield batch
