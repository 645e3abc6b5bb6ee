"""Argument checks shared by every public function, run before any work is done.

A bad argument should fail at the door with a message a person can act on: the argument's
name, the value it got, and what is allowed. These helpers do that once, so each technique's
checks read as a list of calls, and so the messages say the same thing everywhere.

Example:
    >>> check_prompts("")
    Traceback (most recent call last):
    ValueError: prompts[0] is '': expected a non-empty string
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def check_prompts(prompts: Any, name: str = "prompts") -> list[str]:
    """A non-empty string or a non-empty list of non-empty strings, returned as a list."""
    if isinstance(prompts, str):
        prompts = [prompts]
    if not isinstance(prompts, Sequence) or isinstance(prompts, (bytes, bytearray)):
        raise TypeError(f"{name} is {prompts!r}: expected a string or a list of strings")
    if len(prompts) == 0:
        raise ValueError(f"no prompts given in {name}: expected a string or a non-empty list of strings")
    for i, p in enumerate(prompts):
        if not isinstance(p, str) or not p.strip():
            raise ValueError(f"prompt {i} is {p!r}: expected a non-empty string")
    return list(prompts)


def check_layers(model: Any, layers: Any, name: str = "layers") -> list[int]:
    """`layers` as sorted-as-given block indices: an int, a list of ints (negatives count from
    the end), or `None` for all layers."""
    n = model.cfg.n_layers
    if layers is None:
        return list(range(n))
    if isinstance(layers, str) and layers == "all":  # the old spelling of None
        import warnings

        warnings.warn(f"{name}='all' is deprecated; use {name}=None for all layers", DeprecationWarning, stacklevel=3)
        return list(range(n))
    single = isinstance(layers, int) and not isinstance(layers, bool)
    items = [layers] if single else layers
    if not isinstance(items, (list, tuple, range)) or (not single and len(items) == 0):
        raise ValueError(f"{name} is {layers!r}: expected an int, a non-empty list of ints, or None for all {n}")
    out = []
    for layer in items:
        if isinstance(layer, bool) or not isinstance(layer, int) or not -n <= layer < n:
            raise ValueError(f"{name} contains {layer!r}: expected ints in [-{n}, {n}) for a {n}-layer model")
        out.append(layer % n)
    return out


def check_count(value: Any, name: str, *, minimum: int = 1, maximum: int | None = None) -> int:
    """A whole number in [minimum, maximum] (for `k`, `batch_size`, `limit`, ...)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (maximum is not None and value > maximum):
        bound = f"[{minimum}, {maximum}]" if maximum is not None else f">= {minimum}"
        raise ValueError(f"{name} is {value!r}: expected an int {bound}")
    return value


def renamed(old: str, new: str, kwargs: dict[str, Any], func: str, current: Any = None) -> Any:
    """Pop a deprecated keyword from `kwargs`, warn that `new` replaces it, and return its value
    (`_MISSING` when absent). Pass the new keyword's value as `current` (None when not given) to
    get a TypeError when both names are used.

    Example:
        >>> def f(model, *, targets=None, **old):
        ...     legacy = renamed("tokens", "targets", old, "f")
        ...     targets = legacy if legacy is not _MISSING else targets
    """
    import warnings

    if old not in kwargs:
        return _MISSING
    if current is not None and current is not _MISSING:
        raise TypeError(f"{func}() got both {new}= and its deprecated name {old}=; pass only {new}=")
    warnings.warn(f"{func}({old}=...) is deprecated and will be removed in the next release; use {new}=...",
                  DeprecationWarning, stacklevel=3)
    return kwargs.pop(old)


def no_extra(kwargs: dict[str, Any], func: str) -> None:
    """Raise the TypeError Python raises for an unexpected keyword."""
    if kwargs:
        raise TypeError(f"{func}() got an unexpected keyword argument {next(iter(kwargs))!r}")


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()
MISSING = _MISSING


def check_token_ids(tokens: Any, d_vocab: int, name: str = "tokens") -> None:
    """A `[batch, pos]` integer tensor of ids in [0, d_vocab) (negative ids would wrap around)."""
    import torch

    if not isinstance(tokens, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor of token ids, got {type(tokens).__name__}")
    if tokens.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8):
        raise TypeError(f"{name} has dtype {tokens.dtype}: expected an integer tensor of token ids")
    if tokens.ndim != 2 or tokens.numel() == 0:
        raise ValueError(f"{name} has shape {tuple(tokens.shape)}: expected a non-empty [batch, pos] tensor")
    low, high = int(tokens.min()), int(tokens.max())
    if low < 0 or high >= d_vocab:
        bad = low if low < 0 else high
        raise ValueError(f"{name} contains token id {bad}: expected ids in [0, {d_vocab})")


def check_finite(value: Any, name: str) -> float:
    """A finite real number (strengths, thresholds)."""
    import math

    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} is {value!r}: expected a finite number")
    return float(value)


def check_context(lengths: Sequence[int], max_new_tokens: int, n_ctx: int, name: str = "prompts") -> None:
    """Each prompt's token count plus `max_new_tokens` must fit the model's context of `n_ctx`."""
    check_count(max_new_tokens, "max_new_tokens")
    longest = max(lengths)
    if longest + max_new_tokens > n_ctx:
        i = list(lengths).index(longest)
        room = n_ctx - longest
        fix = (f"use max_new_tokens <= {room}" if room >= 1 else f"shorten it below {n_ctx} tokens")
        raise ValueError(
            f"{name}[{i}] is {longest} tokens (with its chat template, if any) and max_new_tokens is "
            f"{max_new_tokens}: {longest + max_new_tokens} tokens do not fit the model's context of {n_ctx}; {fix}"
        )
