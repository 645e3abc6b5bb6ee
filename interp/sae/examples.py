"""What a feature is: its max-activating examples over a corpus (the card is in `interp.sae.card`).

The first question about an SAE feature (or an MLP neuron) is "where does it fire hardest?".
One batched pass over a corpus answers it for every unit at once: each batch is run only as far
as the unit's layer, encoded, and merged into a streaming top-k per unit
(`interp.topk.StreamingTopK`) that keeps the `k` strongest tokens with a few tokens of context,
a firing count (density: the fraction of tokens a unit fires on) and a histogram of its
activations. Memory is `units x k x context`, flat in the corpus size. Reading the top
examples next to what the unit's output direction promotes through the unembedding is how
features are labelled in practice (Bricken et al. 2023, "Towards Monosemanticity"; the
Neuronpedia feature dashboards). Results are cached on disk (`interp.core.cache`), keyed by the
model's and SAE's weights, the corpus's content and the settings, so a second call is a load.

Example:
    >>> docs = list(interp.toy.corpus.documents(2000))
    >>> top = interp.max_activating_examples(model, sae, docs, k=20)
    >>> top.to_frame(feature=12)
    >>> interp.feature_card(model, sae, 12, examples=top).plot()
    >>> interp.max_activating_examples(model, (1, 40), docs).plot(40)     # MLP neuron 40 of layer 1
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Float, Int
from tqdm.auto import tqdm
from transformer_lens import HookedTransformer

from interp.core.cache import cached
from interp.data.corpus import Corpus, batched, iter_texts
from interp.core.tokens import encode, length_batches, pad_id, pad_rows
from interp.core.hooks import harvest, hook_name, resolve_layer
from interp.core.topk import HIST_EDGES, PAD, SparseStreamingTopK, StreamingTopK

if TYPE_CHECKING:  # pragma: no cover
    from sae_lens import SAE

Neuron = tuple[int, int]
_FORMAT = "interp-max-activating-1"
_TENSORS = ("units", "values", "example", "position", "context_tokens", "context_acts", "fired", "hist")


@dataclass(frozen=True, eq=False, repr=False)
class MaxActivatingExamples:
    """The `k` strongest activations of each tracked unit over a corpus, with context.

    Row `i` of every tensor belongs to unit `units[i]` (a feature or a neuron index). `example`
    is the text's index in the corpus (empty texts skipped), `position` the token's index in it
    (0 is the first token after `<bos>`), `context_tokens` the token ids from `before` tokens
    before to a few after (-1 outside the text) and `context_acts` the unit's activation there.
    `token_strs[token_ids.index(t)]` is how token `t` reads.
    """

    units: Int[torch.Tensor, "n"]
    values: Float[torch.Tensor, "n k"]
    example: Int[torch.Tensor, "n k"]
    position: Int[torch.Tensor, "n k"]
    context_tokens: Int[torch.Tensor, "n k width"]
    context_acts: Float[torch.Tensor, "n k width"]
    fired: Int[torch.Tensor, "n"]
    hist: Int[torch.Tensor, "n bins"]
    n_tokens: int
    n_examples: int
    before: int
    token_ids: Int[torch.Tensor, "vocab_used"]
    token_strs: tuple[str, ...]
    kind: str
    source: str

    def __post_init__(self) -> None:
        for name in (*_TENSORS, "token_ids"):
            object.__setattr__(self, name, torch.as_tensor(getattr(self, name)).detach().cpu())
        n, k = self.values.shape
        checks = {
            "units": (n,), "example": (n, k), "position": (n, k), "fired": (n,),
            "context_acts": tuple(self.context_tokens.shape), "hist": (n, len(HIST_EDGES) + 1),
        }
        for name, shape in checks.items():
            if tuple(getattr(self, name).shape) != shape:
                raise ValueError(f"{name} has shape {tuple(getattr(self, name).shape)}, expected {shape}")
        if self.context_tokens.shape[:2] != (n, k) or len(self.token_strs) != self.token_ids.numel():
            raise ValueError("context_tokens must be [n, k, width] and token_strs match token_ids")
        if self.kind not in ("feature", "neuron"):
            raise ValueError(f"kind {self.kind!r} must be 'feature' or 'neuron'")
        object.__setattr__(self, "token_strs", tuple(self.token_strs))

    @property
    def k(self) -> int:
        return self.values.shape[1]

    @property
    def density(self) -> Float[torch.Tensor, "n"]:
        """Fraction of corpus tokens on which each unit is positive."""
        return self.fired.float() / max(self.n_tokens, 1)

    def row(self, unit: int) -> int:
        """The row of `unit` (a feature or neuron index) in this result."""
        valid = isinstance(unit, int) and not isinstance(unit, bool)
        hits = (self.units == unit).nonzero().flatten() if valid else torch.zeros(0)
        if hits.numel() == 0:
            shown = self.units[:10].tolist()
            raise KeyError(f"{self.kind} {unit!r} was not tracked; tracked: {shown}{' ...' if len(self.units) > 10 else ''}")
        return int(hits[0])

    def strs(self, ids: torch.Tensor) -> list[str]:
        """Token strings of ids (`''` for -1, outside the text)."""
        where = torch.searchsorted(self.token_ids, ids.clamp_min(0))
        return ["" if int(i) == PAD else self.token_strs[int(w)] for i, w in zip(ids.flatten(), where.flatten())]

    def examples(self, unit: int) -> list[dict[str, Any]]:
        """The unit's top examples, strongest first: activation, example, position, context."""
        r = self.row(unit)
        out = []
        for j in range(self.k):
            if not math.isfinite(float(self.values[r, j])) or self.values[r, j] <= 0:
                break  # only tokens where the unit fires
            toks = self.strs(self.context_tokens[r, j])
            keep = [i for i, t in enumerate(toks) if self.context_tokens[r, j, i] != PAD]
            out.append({
                "activation": float(self.values[r, j]), "example": int(self.example[r, j]),
                "position": int(self.position[r, j]), "token": toks[self.before],
                "context": " ".join(toks[i] for i in keep),
                "tokens": [toks[i] for i in keep], "acts": [float(self.context_acts[r, j, i]) for i in keep],
            })
        return out

    def to_frame(self, unit: int | None = None, *, feature: int | None = None):
        """With a unit: its top examples. Without: one row per unit (density, max activation)."""
        import pandas as pd

        unit = feature if unit is None else unit
        if unit is None:
            top = self.values[:, 0].masked_fill(~torch.isfinite(self.values[:, 0]), float("nan"))
            return pd.DataFrame({self.kind: self.units.tolist(), "density": self.density.tolist(),
                                 "max_activation": top.tolist()})
        rows = [{k: v for k, v in e.items() if k not in ("tokens", "acts")} for e in self.examples(unit)]
        return pd.DataFrame(rows, columns=["activation", "example", "position", "token", "context"])

    def plot(self, unit: int):
        """Top examples (tokens shaded by activation), activation histogram and density."""
        from interp.sae.card import card_figure

        return card_figure(self, unit, None)

    def __repr__(self) -> str:
        return (f"MaxActivatingExamples({len(self.units)} {self.kind}s of {self.source}, k={self.k}, "
                f"{self.n_tokens} tokens in {self.n_examples} texts)")

    def _repr_html_(self) -> str:
        return f"<p>{self!r}</p>" + self.to_frame().head(20).to_html()

    def save(self, path: str | Path) -> Path:
        """Write to a safetensors file (reload with `MaxActivatingExamples.load`)."""
        from interp.core.cache import save

        path = Path(path)
        save(path, _tensors(self), {"format": _FORMAT, **_meta(self)})
        return path

    @classmethod
    def load(cls, path: str | Path) -> MaxActivatingExamples:
        """Read a result written by `save`."""
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta, tensors = f.metadata() or {}, {k: f.get_tensor(k) for k in f.keys()}
        except (SafetensorError, OSError) as err:
            raise ValueError(f"{path}: not a readable safetensors file ({err})") from err
        if meta.get("format") != _FORMAT:
            raise ValueError(f"{path}: not a max-activating-examples file (format {meta.get('format')!r})")
        return _from_parts(tensors, meta)


def _tensors(r: MaxActivatingExamples) -> dict[str, torch.Tensor]:
    return {name: getattr(r, name).contiguous() for name in (*_TENSORS, "token_ids")}


def _meta(r: MaxActivatingExamples) -> dict[str, str]:
    return {"n_tokens": str(r.n_tokens), "n_examples": str(r.n_examples), "before": str(r.before),
            "kind": r.kind, "source": r.source, "token_strs": json.dumps(r.token_strs)}


def _from_parts(tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> MaxActivatingExamples:
    kwargs = {name: tensors[name] for name in (*_TENSORS, "token_ids")}
    return MaxActivatingExamples(
        **kwargs, n_tokens=int(meta["n_tokens"]), n_examples=int(meta["n_examples"]), before=int(meta["before"]),
        token_strs=tuple(json.loads(meta["token_strs"])), kind=meta["kind"], source=meta["source"],
    )


# --- the streaming pass ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Units:
    """What to track: the hook to read and how to turn its activation into unit activations."""

    hook: str
    units: list[int]
    transform: Callable[[torch.Tensor], torch.Tensor]
    kind: str
    source: str
    identity: str  # for cache keys: which SAE / which neurons
    width: int  # units the transform computes before selecting (an SAE's d_sae)


def _sae_fingerprint(sae: SAE) -> str:
    h = hashlib.sha256(json.dumps(sae.cfg.to_dict(), sort_keys=True, default=str).encode())
    with torch.no_grad():
        for name, p in sorted(sae.state_dict().items()):
            flat = p.detach().reshape(-1)
            h.update(name.encode() + flat[:: max(1, flat.numel() // 4096)].float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def _check_units(requested: Iterable[int] | None, n: int, what: str) -> list[int]:
    if requested is None:
        return list(range(n))
    units = [requested] if isinstance(requested, int) else list(requested)
    if not units:
        raise ValueError(f"no {what}s given: expected indices in [0, {n})")
    for u in units:
        if isinstance(u, bool) or not isinstance(u, int) or not 0 <= u < n:
            raise ValueError(f"{what} {u!r} is out of range: expected an int in [0, {n})")
    if len(set(units)) != len(units):
        raise ValueError(f"{what}s {units} contain duplicates")
    return units


def _resolve_units(model: HookedTransformer, sae_or_neuron: Any, features: Iterable[int] | int | None) -> _Units:
    if isinstance(sae_or_neuron, tuple):
        if len(sae_or_neuron) != 2 or features is not None:
            raise ValueError("a neuron is given as (layer, index) or (layer, [indices]), without features=")
        layer, index = sae_or_neuron
        layer = resolve_layer(model, layer)
        units = _check_units(index, model.cfg.d_mlp, f"neuron of layer {layer}")
        idx = torch.tensor(units)
        return _Units(hook_name(model, "mlp_post", layer), units, lambda a: a[..., idx.to(a.device)].float(),
                      "neuron", f"MLP neurons of layer {layer}", f"neurons-{layer}", len(units))
    from interp.sae.encode import sae_label, sparse_encode
    from interp.sae.check import check_sae

    sae = sae_or_neuron
    check_sae(model, sae)
    units = _check_units(features, sae.cfg.d_sae, "feature")
    lookup = torch.full((sae.cfg.d_sae,), -1, dtype=torch.long, device=sae.device)
    lookup[units] = torch.arange(len(units), device=sae.device)

    def transform(act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rows, feats, values = sparse_encode(sae, act)
        if features is None:
            return rows, feats, values
        mine = lookup[feats]
        keep = mine >= 0
        return rows[keep], mine[keep], values[keep]

    return _Units(sae.cfg.metadata.hook_name, units, transform, "feature", f"SAE {sae_label(sae)}",
                  f"sae-{_sae_fingerprint(sae)}", sae.cfg.d_sae)


def encode_texts(
    model: HookedTransformer, texts: list[str], max_len: int
) -> tuple[Int[torch.Tensor, "batch pos"], Int[torch.Tensor, "batch pos"]]:
    """Left-padded tokens and attention mask of corpus texts (`<bos>` first), each cut to `max_len`."""
    rows = encode(model, texts, max_len=min(max_len, model.cfg.n_ctx))
    return pad_rows(rows, pad_id(model), device=model.cfg.device)


def _texts_hash(corpus: Corpus) -> str:
    h = hashlib.sha256()
    for text in iter_texts(corpus):
        h.update(text.encode() + b"\x00")
    return h.hexdigest()[:32]


def _reiterable(corpus: Corpus) -> bool:
    return isinstance(corpus, (str, Path, list, tuple)) or hasattr(corpus, "column_names") or iter(corpus) is not corpus


@torch.no_grad()  # not inference_mode: the result's tensors stay ordinary tensors
def max_activating_examples(
    model: HookedTransformer,
    sae_or_neuron: SAE | Neuron | tuple[int, list[int]],
    corpus: Corpus,
    *,
    features: Iterable[int] | int | None = None,
    k: int = 20,
    context: int | tuple[int, int] = (8, 2),
    batch_size: int = 32,
    max_len: int = 128,
    cache: bool = True,
    cache_key: str | None = None,
    progress: bool = True,
) -> MaxActivatingExamples:
    """One batched pass over a corpus keeping every unit's `k` strongest tokens, with context.

    Args:
        model: the model.
        sae_or_neuron: a sae-lens SAE (its features are the units), or an MLP neuron as
            `(layer, index)` (or `(layer, [indices])`), read at `mlp.hook_post`.
        corpus: a list of strings, a generator, a text file or folder, or a Hugging Face dataset
            (see `interp.data.corpus.iter_texts`); the built-in corpus generator works too.
        features: SAE features to track (default all).
        k: examples kept per unit.
        context: tokens of context kept, `before` or `(before, after)`.
        batch_size: texts per forward pass, at most; texts are left-padded with an attention
            mask, grouped by length, and long ones go in smaller batches so that no batch holds
            more than `batch_size * max_len / 2` tokens with padding (peak memory is set by that
            budget, not by the longest texts a corpus happens to hold).
        max_len: texts are cut to this many tokens (with `<bos>`).
        cache: read and write the on-disk cache. A list, file or dataset is keyed by its
            content; a one-shot generator is keyed by its content after the pass (so the same
            texts as a list hit the entry) or by `cache_key` (then it is not even read on a hit).
        cache_key: a name for the corpus that replaces its content hash in the key.
        progress: show a progress bar.

    Returns:
        `MaxActivatingExamples` (also holding every unit's density and activation histogram).

    Raises:
        ValueError: an empty corpus, features or neuron out of range, bad `k`/`context`/`max_len`,
            or an SAE that does not match the model (see `interp.check_sae`).

    Example:
        >>> top = interp.max_activating_examples(model, sae, interp.toy.corpus.documents(5000), k=20)
        >>> top.to_frame(feature=7)
    """
    spec = _resolve_units(model, sae_or_neuron, features)
    before, after = (context, 2) if isinstance(context, int) else tuple(context)
    for name, value, low in (("k", k, 1), ("before", before, 0), ("after", after, 0), ("batch_size", batch_size, 1),
                             ("max_len", max_len, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name}={value!r} must be an int >= {low}")
    args = {"units": spec.identity, "which": _hash_list(spec.units), "k": k, "context": [before, after],
            "max_len": max_len, "skip_bos": True}

    total = len(corpus) if hasattr(corpus, "__len__") and not isinstance(corpus, (str, Path)) else None

    def compute(texts: Iterable[str], hasher: Any = None) -> dict[str, torch.Tensor]:
        return _stream(model, spec, texts, k, (before, after), batch_size, max_len, (progress, total), hasher)

    if not cache:
        tensors = compute(iter_texts(corpus))
    elif cache_key is not None or _reiterable(corpus):
        key = f"key:{cache_key}" if cache_key is not None else _texts_hash(corpus)
        tensors = cached(model, "max_activating", {**args, "corpus": key}, lambda: compute(iter_texts(corpus)))
    else:  # a one-shot stream: hash it on the way, then store under its content hash
        hasher = hashlib.sha256()
        result = compute(iter_texts(corpus), hasher)
        tensors = cached(model, "max_activating", {**args, "corpus": hasher.hexdigest()[:32]}, lambda: result)
    strs = model.to_str_tokens(tensors["token_ids"]) if tensors["token_ids"].numel() else []
    meta = {"n_tokens": str(int(tensors["n_tokens"])), "n_examples": str(int(tensors["n_examples"])),
            "before": str(before), "kind": spec.kind, "source": spec.source, "token_strs": json.dumps(list(strs))}
    return _from_parts(tensors, meta)


def _hash_list(values: list[int]) -> str:
    return hashlib.sha256(json.dumps(values).encode()).hexdigest()[:16] + f"-{len(values)}"


_WINDOW = 8  # batches read ahead and sorted by length, so each batch is padded little
_ROWS = 64  # the SAE encodes a multiple of this many token rows at a time
_ENCODE_ELEMENTS = {"cpu": 1 << 20, "cuda": 1 << 24}  # rows x d_sae encoded at once (default: cuda's)
_PENDING = 1 << 40  # example ids of the batch being merged, remapped to corpus indices right after


def _encode_rows(spec: _Units, flat: torch.Tensor, at: torch.Tensor) -> tuple[torch.Tensor, ...]:
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


def _stream(model, spec: _Units, texts, k, context, batch_size, max_len, bar_opts, hasher) -> dict:
    (before, after), (progress, total) = context, bar_opts
    tracker = (SparseStreamingTopK if spec.kind == "feature" else StreamingTopK)(len(spec.units), k, before=before, after=after)
    bar = tqdm(desc=f"max-activating {spec.kind}s", unit="text", total=total, disable=not progress,
               mininterval=1.0)
    seen = 0
    for window in batched(texts, batch_size * _WINDOW):
        if hasher is not None:
            for text in window:
                hasher.update(text.encode() + b"\x00")
        tokens, mask = encode_texts(model, window, max_len)
        lengths = mask.sum(1)
        for rows in length_batches(lengths, batch_size, max(max_len, batch_size * max_len // 2)):
            width = int(lengths[rows].max())
            batch_tokens, batch_mask = tokens[rows, -width:], mask[rows, -width:]
            acts = harvest(model, batch_tokens, [spec.hook], attention_mask=batch_mask)[spec.hook]
            if model.cfg.default_prepend_bos:  # <bos> is an outlier position: never a top example
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


def default_corpus(model: HookedTransformer) -> tuple[list[str], str]:
    """A corpus (and its cache key) for measuring feature density when none is given: 2000
    the profile's default corpus (2000 documents of the built-in corpus for the built-in model),
    else the bundled prompt sets."""
    from interp.core.profiles import profile_for

    corpus = profile_for(model).default_corpus
    if corpus is not None:
        return corpus()
    folder = Path(__file__).parent / "data"
    texts = []
    for path in sorted(folder.glob("*.json")):
        body = json.loads(path.read_text())
        for split in ("train", "heldout"):
            texts += [t if isinstance(t, str) else " ".join(map(str, t)) for t in body.get(split, [])]
    return texts, "bundled-prompt-sets"
