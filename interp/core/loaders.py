"""The registry of named model loaders `interp.load_model` looks a name up in.

A package that ships a model registers its loader when it is imported (the built-in model:
`interp.toy`), so `interp.core` never imports it: adding a named model is adding an entry.
A loader takes `device=`, `dtype=` and, when given, `device_map=` / `max_memory=`.

Example:
    >>> register_loader("my-model", lambda device=None, dtype=None, **spread: ...)
    >>> loader("my-model")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_LOADERS: dict[str, Callable[..., Any]] = {}


def register_loader(name: str, load: Callable[..., Any]) -> None:
    """Make `interp.load_model(name)` call `load(device=..., dtype=..., **spread)`."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name {name!r} must be a non-empty string")
    if not callable(load):
        raise TypeError(f"load is {load!r}: expected a callable that returns a model")
    _LOADERS[name] = load


def loader(name: str) -> Callable[..., Any] | None:
    """The loader registered for `name`, or None."""
    return _LOADERS.get(name)
