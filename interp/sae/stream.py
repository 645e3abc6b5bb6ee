"""The corpus pass behind max-activating examples: run, encode, merge into a streaming top-k.

Finding where each of thousands of units fires hardest means reading a corpus far bigger than
memory. One pass does it for every unit at once (Bricken et al. 2023, "Towards
Monosemanticity", and Templeton et al. 2024, "Scaling Monosemanticity", build their feature
dashboards this way): texts are tokenized `<bos>`-first, read a few batches ahead and grouped by
length so each batch is padded little and holds a bounded number of tokens
(`interp.core.tokens.length_batches`), each batch is run only as far as the units' layer
(`interp.core.hooks.harvest`), turned into unit activations (an SAE's sparse code, or MLP
neurons), and merged into a running top-k per unit with a few tokens of context, a firing count
and a histogram (`interp.core.topk`). Memory is `units x k x context`, flat in the corpus size.
The public entry point, with caching and the result type, is `interp.sae.examples`.

Example:
    >>> spec = resolve_units(model, sae, None)
    >>> tensors = stream_topk(model, spec, texts, k=20, context=(8, 2), batch_size=32, max_len=128)
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Int
from tqdm.auto import tqdm
from transformer_lens import HookedTransformer

from interp.core.cache import fingerprint_weights
from interp.core.hooks import harvest, hook_name, resolve_layer
from interp.core.tokens import encode, length_batches, pad_id, pad_rows
from interp.core.topk import PAD, SparseStreamingTopK, StreamingTopK
from interp.data.corpus import batched
from interp.sae.encode import sae_label, sparse_encode
from interp.sae.fit import check_sae

if TYPE_CHECKING:  # pragma: no cover
    from sae_lens import SAE

#: An MLP neuron: `(layer, index)`.
Neuron = tuple[int, int]


@dataclass(frozen=True)
class Units:
    """What to track: the hook to read and how to turn its activation into unit activations
    (dense `[..., units]` for neurons; `(row, unit, value)` of what fires for SAE features)."""

    hook: str
    units: list[int]
    transform: Callable[[torch.Tensor], Any]
    kind: str
    source: str
    identity: str  # for cache keys: which SAE / which neurons
    width: int  # units the transform computes before selecting (an SAE's d_sae)


def sae_fingerprint(sae: SAE) -> str:
    """A short hash of an SAE's config and weights (cache keys name the SAE by it)."""
    return fingerprint_weights(json.dumps(sae.cfg.to_dict(), sort_keys=True, default=str), sae.state_dict().items())


def check_units(requested: Iterable[int] | int | None, n: int, what: str) -> list[int]:
    """The unit indices asked for (all `n` when None), each an int in `[0, n)`, no duplicates."""
    if requested is None:
        return list(range(n))
    units = [requested] if isinstance(requested, numbers.Integral) else list(requested)
    if not units:
        raise ValueError(f"no {what}s given: expected indices in [0, {n})")
    for u in units:
        if isinstance(u, bool) or not isinstance(u, numbers.Integral) or not 0 <= u < n:
            raise ValueError(f"{what} {u!r} is out of range: expected an int in [0, {n})")
    if len(set(units)) != len(units):
        raise ValueError(f"{what}s {units} contain duplicates")
    return units


def resolve_units(model: HookedTransformer, sae_or_neuron: Any, features: Iterable[int] | int | None) -> Units:
    """What to track for an SAE (its features, checked against the model) or MLP neurons `(layer, index)`."""
    if isinstance(sae_or_neuron, tuple):
        if len(sae_or_neuron) != 2 or features is not None:
            raise ValueError("a neuron is given as (layer, index) or (layer, [indices]), without features=")
        layer, index = sae_or_neuron
        layer = resolve_layer(model, layer)
        units = check_units(index, model.cfg.d_mlp, f"neuron of layer {layer}")
        idx = torch.tensor(units)
        return Units(hook_name(model, "mlp_post", layer), units, lambda a: a[..., idx.to(a.device)].float(),
                     "neuron", f"MLP neurons of layer {layer}", f"neurons-{layer}", len(units))
    sae = sae_or_neuron
    check_sae(model, sae)
    units = check_units(features, sae.cfg.d_sae, "feature")
    lookup = torch.full((sae.cfg.d_sae,), -1, dtype=torch.long, device=sae.device)
    lookup[units] = torch.arange(len(units), device=sae.device)

    def transform(act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rows, feats, values = sparse_encode(sae, act)
        if features is None:
            return rows, feats, values
        mine = lookup[feats]
        keep = mine >= 0
        return rows[keep], mine[keep], values[keep]

    return Units(sae.cfg.metadata.hook_name, units, transform, "feature", f"SAE {sae_label(sae)}",
                 f"sae-{sae_fingerprint(sae)}", sae.cfg.d_sae)


def encode_texts(
    model: HookedTransformer, texts: list[str], max_len: int
) -> tuple[Int[torch.Tensor, "batch pos"], Int[torch.Tensor, "batch pos"]]:
    """Left-padded tokens and attention mask of corpus texts (`<bos>` first), each cut to `max_len`."""
    rows = encode(model, texts, max_len=min(max_len, model.cfg.n_ctx))
    return pad_rows(rows, pad_id(model), device=model.cfg.device)


#: batches read ahead and sorted by length, so each batch is padded little
WINDOW = 8
_ROWS = 64  # the SAE encodes a multiple of this many token rows at a time
_ENCODE_ELEMENTS = {"cpu": 1 << 20, "cuda": 1 << 24}  # rows x d_sae encoded at once (default: cuda's)
_PENDING = 1 << 40  # example ids of the batch being merged, remapped to corpus indices right after


def token_budget(batch_size: int, max_len: int) -> int:
    """Padded tokens one batch may hold: half of `batch_size` full-length texts (at least one)."""
    return max(max_len, batch_size * max_len // 2)


def _encode_rows(spec: Units, flat: torch.Tensor, at: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """`(position, unit, value)` of what fires at rows `at` of `flat`, encoded in chunks.

    A chunk holds `rows x d_sae` pre-activations, so the pass's peak memory is set by the chunk,
    not by the longest batch the corpus happens to hold; the last chunk is padded with copies of
    its first row to a multiple of `_ROWS`, so a long pass meets few matmul shapes (torch keeps a
    kernel plan per shape).
    """
    budget = _ENCODE_ELEMENTS.get(flat.device.type, _ENCODE_ELEMENTS["cuda"])
    chunk = max(_ROWS, budget // spec.width // _ROWS * _ROWS)
    parts = []
    for start in range(0, max(at.numel(), 1), chunk):
        rows = at[start : start + chunk]
        padded = torch.cat([rows, rows[:1].expand(-rows.numel() % _ROWS)])
        hit, unit, value = spec.transform(flat[padded])
        real = hit < rows.numel()
        parts.append((rows[hit[real]], unit[real], value[real]))
    return tuple(torch.cat(p) for p in zip(*parts))


def stream_topk(
    model: HookedTransformer,
    spec: Units,
    texts: Iterable[str],
    k: int,
    context: tuple[int, int],
    batch_size: int,
    max_len: int,
    *,
    progress: bool = False,
    total: int | None = None,
    hasher: Any = None,
) -> dict[str, torch.Tensor]:
    """One pass over `texts`: every unit's `k` strongest tokens with `context = (before, after)`
    tokens around them, firing counts and histograms, as the tensors `MaxActivatingExamples`
    holds. `hasher` (a hashlib object), when given, is fed every text on the way."""
    before, after = context
    tracker = (SparseStreamingTopK if spec.kind == "feature" else StreamingTopK)(len(spec.units), k, before=before, after=after)
    bar = tqdm(desc=f"max-activating {spec.kind}s", unit="text", total=total, disable=not progress,
               mininterval=1.0)
    seen = 0
    for window in batched(texts, batch_size * WINDOW):
        if hasher is not None:
            for text in window:
                hasher.update(text.encode() + b"\x00")
        tokens, mask = encode_texts(model, window, max_len)
        lengths = mask.sum(1)
        for rows in length_batches(lengths, batch_size, token_budget(batch_size, max_len)):
            width = int(lengths[rows].max())
            batch_tokens, batch_mask = tokens[rows, -width:], mask[rows, -width:]
            acts = harvest(model, batch_tokens, [spec.hook], attention_mask=batch_mask)[spec.hook]
            # a row's first token is an outlier, never a top example: <bos>, or without <bos> the
            # attention sink (SmolLM2: ~100x the residual norm of the other positions)
            batch_mask = batch_mask.clone()
            batch_mask[torch.arange(len(rows)), batch_mask.argmax(1)] = 0
            tracker.n_examples = _PENDING
            if isinstance(tracker, SparseStreamingTopK):  # encode only the real tokens, keep what fires
                at = batch_mask.view(-1).nonzero().squeeze(1)
                fired = _encode_rows(spec, acts.reshape(-1, *acts.shape[2:]), at)
                tracker.update_sparse(*fired, batch_tokens, batch_mask)
            else:
                tracker.update(spec.transform(acts), batch_tokens, batch_mask)
            new = tracker.example >= _PENDING
            tracker.example[new] = seen + rows.cpu()[tracker.example[new] - _PENDING]
            bar.update(len(rows))
        seen += len(window)
        tracker.n_examples = seen
    bar.close()
    if isinstance(tracker, SparseStreamingTopK):
        tracker.sort_()
    used = torch.unique(tracker.context_tokens)  # not a masked copy first: its size grows as the slots fill
    used = used[used != PAD]
    return {"units": torch.tensor(spec.units), "values": tracker.values, "example": tracker.example,
            "position": tracker.position, "context_tokens": tracker.context_tokens,
            "context_acts": tracker.context_acts, "fired": tracker.fired, "hist": tracker.hist,
            "token_ids": used, "n_tokens": torch.tensor([tracker.n_tokens]),
            "n_examples": torch.tensor([tracker.n_examples])}
