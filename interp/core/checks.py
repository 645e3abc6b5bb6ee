"""Argument checks shared by every public function, run before any work is done.

A bad argument should fail at the door with a message a person can act on: the argument's
name, the value it got, and what is allowed. These helpers do that once, so each technique's
checks read as a list of calls, and so the messages say the same thing everywhere.

One check per kind of argument: prompts (`check_prompts`, `check_prompt`, `check_strings`),
the model (`check_model`), layers (`check_layers`), token ids (`check_token_ids`), counts and
sizes (`check_count`: `k`, `batch_size`, `n_tokens`, `limit`, `max_new_tokens`, ...), numbers
(`check_finite`, `check_number`), flags and names (`check_flag`, `check_choice`), vectors
(`check_vector`), hooks (`check_hook_pairs`), paths and corpora (`check_path`, `check_corpus`),
generation (`check_seed`, `check_generation`, `check_context`). tests/test_inputs_sweep_*.py
calls every public function with bad values of each kind.

Example:
    >>> check_prompts("")
    Traceback (most recent call last):
    ValueError: prompts[0] is '': expected a non-empty string
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

from interp.core.engine import is_bridge


def shown_value(value: Any) -> str:
    """How an error message shows a bad value: small scalars as written, anything else by type."""
    return repr(value) if isinstance(value, (str, numbers.Number, type(None))) else type(value).__name__


def check_prompts(prompts: Any, name: str = "prompts") -> list[str]:
    """A non-empty string or a non-empty list of non-empty strings, returned as a list."""
    if isinstance(prompts, str):
        prompts = [prompts]
    if not isinstance(prompts, Sequence) or isinstance(prompts, (bytes, bytearray)):
        raise TypeError(f"{name} is {prompts!r}: expected a string or a list of strings")
    if len(prompts) == 0:
        raise ValueError(f"no prompts given in {name}: expected a string or a non-empty list of strings")
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise TypeError(f"{name}[{i}] is {p!r}: expected a non-empty string")
        if not p.strip():
            raise ValueError(f"{name}[{i}] is {p!r}: expected a non-empty string")
    return list(prompts)


def check_prompt(prompt: Any, name: str = "prompt") -> str:
    """One non-empty string (for functions that read a single prompt)."""
    if isinstance(prompt, (list, tuple)):
        raise ValueError(f"{name} is a {type(prompt).__name__} of {len(prompt)}: expected one prompt (a string); "
                         "call once per prompt")
    if not isinstance(prompt, str):
        raise TypeError(f"{name} is {prompt!r}: expected a non-empty string")
    if not prompt.strip():
        raise ValueError(f"{name} is {prompt!r}: expected a non-empty string")
    return prompt


def check_model(model: Any, name: str = "model") -> Any:
    """A model: what `interp.load_model` returns (a `TransformerBridge`) or a `HookedTransformer`
    (anything with `.cfg` and `.hook_dict`); a model name or None is a TypeError that says how to
    get a model. A bridge's `hook_dict` is not read here: it rebuilds itself on every access."""
    if not (is_bridge(model) or (hasattr(model, "cfg") and hasattr(model, "hook_dict"))):
        shown = shown_value(model)
        raise TypeError(f"{name} is {shown}: expected a model, e.g. interp.load_model('toy')")
    return model


def check_flag(value: Any, name: str, *, none: bool = False) -> Any:
    """True or False (or None when `none`): a string such as 'yes' is not silently truthy."""
    if isinstance(value, bool) or (none and value is None):
        return value
    allowed = "True, False or None" if none else "True or False"
    raise TypeError(f"{name} is {value!r}: expected {allowed}")


def check_choice(value: Any, name: str, allowed: Sequence[str]) -> str:
    """One of the names in `allowed` (a mode, a method, a preset)."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} is {value!r}: expected one of {', '.join(map(repr, allowed))}")
    return value


def check_number(value: Any, name: str, *, minimum: float | None = None, maximum: float | None = None,
                 open_low: bool = False, open_high: bool = False) -> float:
    """A finite real number within optional bounds (thresholds, fractions, significance levels)."""
    import math

    ok = not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
    if ok and minimum is not None:
        ok = value > minimum if open_low else value >= minimum
    if ok and maximum is not None:
        ok = value < maximum if open_high else value <= maximum
    if not ok:
        low = "" if minimum is None else f"{'>' if open_low else '>='} {minimum}"
        high = "" if maximum is None else f"{'<' if open_high else '<='} {maximum}"
        bound = " and ".join(b for b in (low, high) if b)
        raise ValueError(f"{name} is {value!r}: expected a finite number{' ' + bound if bound else ''}")
    return float(value)


def check_vector(value: Any, width: int, name: str = "vector", *, nonzero: bool = True) -> None:
    """A finite float tensor of shape `[width]`, non-zero unless `nonzero=False` (a vector that is
    only added may be zero: adding it is a no-op control; one that gives a direction may not)."""
    import torch

    if not isinstance(value, torch.Tensor):
        shown = shown_value(value)
        raise TypeError(f"{name} is {shown}: expected a SteeringVector or a float tensor of shape [{width}]")
    if not value.is_floating_point():
        raise TypeError(f"{name} has dtype {value.dtype}: expected a float tensor of shape [{width}]")
    if tuple(value.shape) != (width,):
        raise ValueError(f"{name} has shape {tuple(value.shape)}: expected shape [{width}] (the model's d_model)")
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} contains NaN or inf: expected finite values")
    if nonzero and not bool(value.any()):
        raise ValueError(f"{name} is all zeros: a direction needs a non-zero vector")


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
    single = isinstance(layers, numbers.Integral) and not isinstance(layers, bool)
    items = [layers] if single else layers
    if not isinstance(items, (list, tuple, range)) or (not single and len(items) == 0):
        raise ValueError(f"{name} is {layers!r}: expected an int, a non-empty list of ints, or None for all {n}")
    out = []
    for layer in items:
        if isinstance(layer, bool) or not isinstance(layer, numbers.Integral):
            raise ValueError(f"{name} contains {layer!r}: expected ints in [-{n}, {n}) for a {n}-layer model")
        if not -n <= layer < n:
            raise ValueError(f"{name} contains {layer!r}: layer {layer} is out of range for a {n}-layer model, "
                             f"expected ints in [-{n}, {n})")
        out.append(int(layer) % n)
    return out


def check_count(value: Any, name: str, *, minimum: int = 1, maximum: int | None = None) -> int:
    """A whole number in [minimum, maximum] (for `k`, `batch_size`, `limit`, ...)."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum
            or (maximum is not None and value > maximum)):
        bound = f"[{minimum}, {maximum}]" if maximum is not None else f">= {minimum}"
        raise ValueError(f"{name} is {value!r}: expected an int {bound}")
    return int(value)


def renamed(old: str, new: str, kwargs: dict[str, Any], func: str, current: Any = None, *, depth: int = 0) -> Any:
    """Pop a deprecated keyword from `kwargs`, warn that `new` replaces it, and return its value
    (`_MISSING` when absent). Pass the new keyword's value as `current` (None when not given) to
    get a TypeError when both names are used; `depth`: how many helper frames sit between the
    public function and this call (the warning points at the user's line).

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
                  DeprecationWarning, stacklevel=3 + depth)
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


def check_token_ids(tokens: Any, d_vocab: int, name: str = "tokens", n_ctx: int | None = None) -> None:
    """A `[batch, pos]` integer tensor of ids in [0, d_vocab) (negative ids would wrap around),
    at most `n_ctx` positions long when given."""
    import torch

    if not isinstance(tokens, torch.Tensor):
        raise TypeError(f"{name} is a {type(tokens).__name__}: expected a torch tensor of token ids")
    if tokens.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8):
        raise TypeError(f"{name} has dtype {tokens.dtype}: expected an integer tensor of token ids")
    if tokens.ndim != 2 or tokens.numel() == 0:
        raise ValueError(f"{name} has shape {tuple(tokens.shape)}: expected a non-empty [batch, pos] tensor")
    low, high = int(tokens.min()), int(tokens.max())
    if low < 0 or high >= d_vocab:
        bad = low if low < 0 else high
        raise ValueError(f"{name} contains token id {bad}: expected integer ids in [0, {d_vocab})")
    if n_ctx is not None and tokens.shape[1] > n_ctx:
        raise ValueError(f"{name} has {tokens.shape[1]} positions: the model's context is {n_ctx} tokens")


def check_hook_pairs(pairs: Any, hook_dict: Any, name: str = "fwd_hooks") -> list:
    """A list of `(hook point name, callable)` pairs, each name a hook point of the model."""
    items = list(pairs)
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise ValueError(f"{name} contains {item!r}: expected (hook point name, hook function) pairs")
        point, fn = item
        if point not in hook_dict:
            raise ValueError(f"{name} names unknown hook point {point!r}: expected e.g. 'blocks.0.hook_resid_pre'")
        if not callable(fn):
            raise TypeError(f"{name} gives {point!r} the hook {fn!r}: expected a callable fn(activation, hook)")
    return items


def check_strings(value: Any, name: str) -> list[str]:
    """A non-empty list of non-empty strings that is not one string (phrases, completions):
    iterating a lone string would silently read its characters."""
    if isinstance(value, str) or not isinstance(value, Sequence) or isinstance(value, (bytes, bytearray)):
        shown = shown_value(value)
        raise TypeError(f"{name} is {shown} ({type(value).__name__}): expected a list of strings")
    if len(value) == 0:
        raise ValueError(f"{name} is empty: expected a non-empty list of strings")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise TypeError(f"{name}[{i}] is {item!r}: expected a string")
    return list(value)


def check_seed(seed: Any, name: str = "seed") -> int | None:
    """None or a non-negative int (a random seed)."""
    if seed is None:
        return None
    return check_count(seed, name, minimum=0)


def check_generation(options: dict[str, Any], d_vocab: int) -> None:
    """Sampling options as `HookedTransformer.generate` takes them, checked before generating:
    `temperature` >= 0, `top_k` >= 1, `top_p` in (0, 1], `freq_penalty` finite, flags bool,
    `eos_token_id` an id in the vocabulary."""
    if options.get("temperature") is not None:
        check_number(options["temperature"], "temperature", minimum=0)
    if options.get("top_k") is not None:
        check_count(options["top_k"], "top_k", maximum=d_vocab)
    if options.get("top_p") is not None:
        check_number(options["top_p"], "top_p", minimum=0, maximum=1, open_low=True)
    if options.get("freq_penalty") is not None:
        check_number(options["freq_penalty"], "freq_penalty")
    for flag in ("do_sample", "stop_at_eos", "fast"):
        if flag in options:
            check_flag(options[flag], flag)
    eos = options.get("eos_token_id")
    for token in ([] if eos is None else eos if isinstance(eos, (list, tuple)) else [eos]):
        check_count(token, "eos_token_id", minimum=0, maximum=d_vocab - 1)


def check_path(path: Any, name: str = "path", *, writing: bool = False) -> Any:
    """A file path (str or os.PathLike); when `writing`, not an existing directory."""
    import os

    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise TypeError(f"{name} is {path!r}: expected a file path")
    if writing and os.path.isdir(path):
        raise ValueError(f"{name} {str(path)!r} is a directory: expected a file path such as 'result.safetensors'")
    return path


def check_corpus(corpus: Any, name: str = "corpus") -> Any:
    """Something `interp.data.corpus.iter_texts` can read: a list of strings, a generator, a text
    file or folder, or a dataset (emptiness is found while reading, for streams)."""
    import os

    if isinstance(corpus, (bool, int, float, bytes)) or corpus is None or not (
        isinstance(corpus, (str, os.PathLike)) or hasattr(corpus, "__iter__")
    ):
        raise TypeError(f"{name} is {corpus!r} ({type(corpus).__name__}): expected a list of strings, a generator, "
                        "a text file or folder, or a dataset")
    if isinstance(corpus, (list, tuple)) and not corpus:
        raise ValueError(f"{name} is empty: expected at least one non-empty text")
    return corpus


def check_finite(value: Any, name: str) -> float:
    """A finite real number (strengths, thresholds)."""
    import math

    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
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
