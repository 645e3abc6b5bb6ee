"""Hook sites, layer indices, and scoped hooks.

TransformerLens names every activation by a hook point (`blocks.3.hook_resid_post`). The
techniques talk in (site, layer) pairs instead, and this module turns those into hook names,
checks them, and adds hooks only for the duration of a `with` block: whatever happens inside,
including an exception in a hook, the model leaves the block with no hooks of ours on it.

Example:
    >>> acts = harvest(model, tokens, [("resid_post", 1)])   # stops after block 1
    >>> acts["blocks.1.hook_resid_post"].shape
    torch.Size([batch, pos, d_model])
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from jaxtyping import Int
from transformer_lens import HookedTransformer

from interp.core.checks import check_hook_pairs, check_token_ids
from interp.core.engine import hook_points, is_bridge
from interp.core.lowmem import low_memory_activations

#: site -> hook-name template; `{layer}` is the block index.
SITES: dict[str, str] = {
    "resid_pre": "blocks.{layer}.hook_resid_pre",
    "resid_mid": "blocks.{layer}.hook_resid_mid",
    "resid_post": "blocks.{layer}.hook_resid_post",
    "attn_out": "blocks.{layer}.hook_attn_out",
    "mlp_out": "blocks.{layer}.hook_mlp_out",
    "mlp_post": "blocks.{layer}.mlp.hook_post",
}

Site = tuple[str, int]
HookFn = Callable[..., torch.Tensor | None]


def resolve_layer(model: HookedTransformer, layer: int) -> int:
    """Turn a layer index (negatives count from the end) into 0..n_layers-1.

    Raises:
        ValueError: the layer is outside [-n_layers, n_layers).
    """
    n = model.cfg.n_layers
    if isinstance(layer, bool) or not isinstance(layer, int):
        raise ValueError(f"layer {layer!r} must be an int in [-{n}, {n})")
    if not -n <= layer < n:
        raise ValueError(f"layer {layer} is out of range for a {n}-layer model: expected [-{n}, {n})")
    return layer % n


def hook_name(model: HookedTransformer, site: str, layer: int) -> str:
    """The TransformerLens hook name of `site` at `layer`.

    Example:
        >>> hook_name(model, "resid_post", -1)
        'blocks.11.hook_resid_post'
    """
    if site not in SITES:
        raise ValueError(f"unknown site {site!r}; expected one of {', '.join(SITES)}")
    name = SITES[site].format(layer=resolve_layer(model, layer))
    if name not in hook_points(model):
        raise ValueError(f"site {site!r} has no hook point {name!r} in this model")
    return name


def layer_of(name: str) -> int:
    """The block index in a hook name (`blocks.3.hook_resid_post` -> 3)."""
    parts = name.split(".")
    if len(parts) < 2 or parts[0] != "blocks" or not parts[1].isdigit():
        raise ValueError(f"{name!r} is not a per-block hook name")
    return int(parts[1])


def _names(model: HookedTransformer, sites: Iterable[Site | str]) -> list[str]:
    names = []
    for s in sites:
        if isinstance(s, str):
            if s not in hook_points(model):
                raise ValueError(f"unknown hook point {s!r}; e.g. {next(iter(SITES.values())).format(layer=0)!r}")
            names.append(s)
        else:
            site, layer = s
            names.append(hook_name(model, site, layer))
    if not names:
        raise ValueError("no sites given: expected at least one (site, layer) pair")
    return list(dict.fromkeys(names))


def count_hooks(model: HookedTransformer) -> int:
    """Number of forward and backward hooks currently on the model (0 for a clean model)."""
    return sum(len(hp.fwd_hooks) + len(hp.bwd_hooks) for hp in set(hook_points(model).values()))


_BOOKKEEPING = threading.Lock()  # guards adding/removing handles on shared hook points
_BACKWARD_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _owned(fn: HookFn, owner: int) -> HookFn:
    """`fn`, acting only on forwards run by the thread `owner`: another thread's forward through
    the same shared model sees no hook of ours."""

    def hook(act: torch.Tensor, hook) -> torch.Tensor | None:
        if threading.get_ident() != owner:
            return None
        return fn(act, hook=hook)

    hook.__name__ = getattr(fn, "__name__", "hook")
    return hook


@contextmanager
def hooked(
    model: HookedTransformer,
    fwd_hooks: Iterable[tuple[str, HookFn]] = (),
    bwd_hooks: Iterable[tuple[str, HookFn]] = (),
) -> Iterator[HookedTransformer]:
    """Add hooks for the duration of the block; they are removed on any exit.

    Hook functions follow TransformerLens: `fn(activation, hook) -> new activation or None`.

    One model may be shared by several threads (the dashboard serves every browser session
    from one model): forward hooks added here act only on forwards run by the thread that added
    them, so two threads steering the same model differently each get exactly their own
    result. Backward hooks run on autograd's threads, so a block with backward hooks holds the
    model's backward lock instead (such blocks run one at a time per model).

    Example:
        >>> def zero(act, hook): return torch.zeros_like(act)
        >>> with hooked(model, [("blocks.0.hook_mlp_out", zero)]):
        ...     logits = model(tokens)
    """
    points = hook_points(model)
    fwd = check_hook_pairs(fwd_hooks, points, "fwd_hooks")
    bwd = check_hook_pairs(bwd_hooks, points, "bwd_hooks")
    lock = nullcontext()
    if bwd:
        with _BOOKKEEPING:
            lock = _BACKWARD_LOCKS.setdefault(model, threading.RLock())
    added: list[tuple[list, object]] = []
    owner = threading.get_ident()
    with lock:
        try:
            for direction, pairs in (("fwd", fwd), ("bwd", bwd)):
                for name, fn in pairs:
                    point = points[name]
                    wrapped = _owned(fn, owner) if direction == "fwd" else fn
                    with _BOOKKEEPING:
                        point.add_hook(wrapped, dir=direction)
                        handles = point.fwd_hooks if direction == "fwd" else point.bwd_hooks
                        added.append((handles, handles[-1]))
            yield model
        finally:
            with _BOOKKEEPING:
                for handles, handle in reversed(added):
                    handle.hook.remove()
                    handles.remove(handle)


@contextmanager
def record(
    model: HookedTransformer,
    sites: Iterable[Site | str],
    *,
    select: Callable[[torch.Tensor], torch.Tensor] | None = None,
    detach: bool = True,
    stop: bool = False,
) -> Iterator[dict[str, torch.Tensor]]:
    """Record the activations at `sites` during every forward run inside the block.

    Only the requested hook points are read. `select` is applied inside the hook (for example
    to keep only the last position), so only what is needed is kept in memory. A site read
    several times (several forwards) keeps the latest. `stop=True` ends the forward (with
    `StopForward`, which `run_to` catches) as soon as every site has been read.

    Example:
        >>> with record(model, [("resid_post", 0)]) as acts:
        ...     model(tokens)
        >>> acts["blocks.0.hook_resid_post"]
    """
    if select is not None and not callable(select):
        raise TypeError(f"select is {select!r}: expected a callable on the activation, or None")
    store: dict[str, torch.Tensor] = {}
    names = _names(model, sites)

    def saver(name: str) -> HookFn:  # keyed by the name asked for (a bridge's alias names one point)
        def save(act: torch.Tensor, hook) -> None:
            kept = select(act) if select is not None else act
            store[name] = kept.detach() if detach else kept
            if stop and len(store) == len(names):  # everything asked for is read: nothing after it runs
                raise StopForward

        return save

    with hooked(model, [(name, saver(name)) for name in names]):
        yield store


def last_layer(names: Iterable[str]) -> int:
    """The deepest block index among hook names."""
    return max(layer_of(n) for n in names)


class StopForward(Exception):
    """Raised by a `record(..., stop=True)` hook once every site is read; caught by `run_to`."""


def run_to(
    model: Any,
    tokens: torch.Tensor,
    names: Sequence[str],
    *,
    attention_mask: torch.Tensor | None = None,
    select: Callable[[torch.Tensor], torch.Tensor] | None = None,
    detach: bool = True,
) -> dict[str, torch.Tensor]:
    """Record the activations at hook points `names` in one forward that stops after the last
    of them fires (nothing after it runs: no later block, no final norm, no unembedding).

    `select` is applied inside each hook (e.g. keep the last position only); `detach=False`
    keeps the autograd graph (for a backward from what is computed on them).
    """
    with record(model, names, select=select, detach=detach, stop=True) as store:
        try:
            model(tokens, attention_mask=attention_mask)
        except StopForward:
            pass
    return {name: store[name] for name in names}


@torch.inference_mode()
def harvest(
    model: HookedTransformer,
    tokens: Int[torch.Tensor, "batch pos"],
    sites: Iterable[Site | str],
    *,
    attention_mask: Int[torch.Tensor, "batch pos"] | None = None,
    select: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Run the model only as far as the deepest site and return the activations there.

    This is `run_with_cache` for a few sites: one hook each, nothing else kept, and the
    forward stops after the last block needed (`stop_at_layer`). When the deepest site is a
    block's `resid_pre`, that block does not run at all: its input is what the blocks before it
    return.

    The MLP activations run as their bitwise-equal low-memory twins during the call
    (`low_memory_activations`): the same numbers, a smaller transient peak.

    Example:
        >>> tokens, mask = interp.tokenize(model, prompts)
        >>> acts = harvest(model, tokens, [("resid_post", 2)], attention_mask=mask)
    """
    check_token_ids(tokens, model.cfg.d_vocab, n_ctx=model.cfg.n_ctx)
    if select is not None and not callable(select):
        raise TypeError(f"select is {select!r}: expected a callable on the activation, or None")
    if attention_mask is not None and tuple(attention_mask.shape) != tuple(tokens.shape):
        raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)}; tokens have {tuple(tokens.shape)}")
    names = _names(model, sites)
    if is_bridge(model):  # stops right after the last site is read
        return run_to(model, tokens, names, attention_mask=attention_mask, select=select)
    deepest = last_layer(names)
    entry = SITES["resid_pre"].format(layer=deepest)
    stop_before = all(layer_of(n) < deepest or n == entry for n in names)  # skip block `deepest` itself
    hooks = [n for n in names if not (stop_before and n == entry)]
    recorder = record(model, hooks, select=select) if hooks else nullcontext({})
    with low_memory_activations(model), recorder as store:
        out = model(tokens, attention_mask=attention_mask, stop_at_layer=deepest + (not stop_before))
    if stop_before:  # what blocks[:deepest] return is block `deepest`'s resid_pre
        store[entry] = (select(out) if select is not None else out).detach()
    return {n: store[n] for n in names}
