"""What a unit is: its max-activating examples over a corpus, with density and a histogram.

The first question about an SAE feature (or an MLP neuron) is "where does it fire hardest?".
Reading its strongest activations over a corpus, with the tokens around each, next to what its
output direction promotes through the unembedding, is how features are labelled in practice
(Bricken et al. 2023, "Towards Monosemanticity"; Templeton et al. 2024, "Scaling
Monosemanticity"; the Neuronpedia feature dashboards). `max_activating_examples` answers it
for every unit at once in one streaming pass (`interp.sae.stream`: memory flat in the corpus
size) and also counts how often each unit fires (its density: features that fire on a large
fraction of all tokens are rarely interpretable; Cunningham et al. 2023) and a histogram of
its activations. Results are cached on disk (`interp.core.cache`), keyed by the model's and
SAE's weights, the corpus's content and the settings, so a second call is a load;
`MaxActivatingExamples.plot()` draws one unit's examples and histogram (the feature card in
`interp.sae.card` adds the output tokens).

Example:
    >>> docs = list(interp.toy.corpus.documents(2000))
    >>> top = interp.max_activating_examples(model, sae, docs, k=20)
    >>> top.to_frame(12)
    >>> top.plot(12)
    >>> interp.max_activating_examples(model, (1, 40), docs).plot()     # MLP neuron 40 of layer 1
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Float, Int
from transformer_lens import HookedTransformer

from interp.core.cache import cached
from interp.core.checks import check_corpus, check_flag, check_model, check_path
from interp.core.profiles import profile_for
from interp.core.results import Result
from interp.core.topk import HIST_EDGES, PAD
from interp.core.tokens import join_pieces
from interp.data import FOLDER as PROMPT_SETS
from interp.data.corpus import Corpus, NamedCorpus, iter_texts
from interp.sae.stream import Neuron, resolve_units, stream_topk

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go
    from sae_lens import SAE

_FORMAT = "interp-max-activating-1"
#: Most top-k cells (units x k x context width) one pass keeps: about 3 GB of values, ids and
#: context; a `k` or `context` asking for more is an error before any work, not an allocation failure.
MAX_CELLS = 2**28

_TENSORS = ("units", "values", "example", "position", "context_tokens", "context_acts", "fired", "hist")


@dataclass(frozen=True, eq=False, repr=False)
class MaxActivatingExamples(Result):
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
        self._freeze()

    @property
    def k(self) -> int:
        return self.values.shape[1]

    @property
    def density(self) -> Float[torch.Tensor, "n"]:
        """Fraction of corpus tokens on which each unit is positive."""
        return self.fired.float() / max(self.n_tokens, 1)

    def row(self, unit: int) -> int:
        """The row of `unit` (a feature or neuron index) in this result."""
        valid = isinstance(unit, numbers.Integral) and not isinstance(unit, bool)
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
        spaced = any(t.startswith(" ") for t in self.token_strs)
        out = []
        for j in range(self.k):
            if not math.isfinite(float(self.values[r, j])) or self.values[r, j] <= 0:
                break  # only tokens where the unit fires
            toks = self.strs(self.context_tokens[r, j])
            keep = [i for i, t in enumerate(toks) if self.context_tokens[r, j, i] != PAD]
            out.append({
                "activation": float(self.values[r, j]), "example": int(self.example[r, j]),
                "position": int(self.position[r, j]), "token": toks[self.before],
                "context": join_pieces([toks[i] for i in keep], spaced),
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

    def default_unit(self) -> int:
        """The unit `plot()` shows without an argument: the first tracked unit that fires."""
        fires = (self.fired > 0).nonzero().flatten()
        return int(self.units[fires[0] if fires.numel() else 0])

    def plot(self, unit: int | None = None) -> go.Figure:
        """Top examples (tokens shaded by activation), activation histogram and density of
        `unit` (default: `default_unit()`, the first tracked unit that fires)."""
        return examples_figure(self, self.default_unit() if unit is None else unit)

    def summary(self) -> str:
        """One line: how many units of what, over how much text."""
        return (f"MaxActivatingExamples({len(self.units)} {self.kind}s of {self.source}, k={self.k}, "
                f"{self.n_tokens} tokens in {self.n_examples} texts)")

    def __repr__(self) -> str:
        return self.summary()

    def save(self, path: str | Path) -> Path:
        """Write to a safetensors file (reload with `MaxActivatingExamples.load`)."""
        from interp.core.cache import save

        path = Path(check_path(path, writing=True))
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
        k: examples kept per unit (`units x k x context width` is bounded by `MAX_CELLS`).
        context: tokens of context kept, `before` or `(before, after)`.
        batch_size: texts per forward pass, at most; texts are left-padded with an attention
            mask, grouped by length, and long ones go in smaller batches so that no batch holds
            more than `batch_size * max_len / 2` tokens with padding (peak memory is set by that
            budget, not by the longest texts a corpus happens to hold).
        max_len: texts are cut to this many tokens (with `<bos>`), and to the model's context
            (a larger `max_len` is accepted by design and reads up to the context).
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
    check_model(model)
    check_corpus(corpus)
    check_flag(cache, "cache")
    if cache_key is not None and (not isinstance(cache_key, str) or not cache_key.strip()):
        raise ValueError(f"cache_key is {cache_key!r}: expected a non-empty string naming the corpus, or None")
    if not (isinstance(context, numbers.Integral) or (isinstance(context, (tuple, list)) and len(context) == 2)):
        raise ValueError(f"context is {context!r}: expected tokens before, or a (before, after) pair")
    spec = resolve_units(model, sae_or_neuron, features)
    before, after = (context, 2) if isinstance(context, numbers.Integral) else tuple(context)
    for name, value, low in (("k", k, 1), ("before", before, 0), ("after", after, 0), ("batch_size", batch_size, 1),
                             ("max_len", max_len, 2)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ValueError(f"{name}={value!r} must be an int >= {low}")
    cells = len(spec.units) * k * (before + 1 + after)
    if cells > MAX_CELLS:
        raise ValueError(
            f"k={k} with context=({before}, {after}) for {len(spec.units)} units would keep {cells:,} top-k cells "
            f"(at most {MAX_CELLS:,}); lower k or context, or track fewer units with features="
        )
    args = {"units": spec.identity, "which": _hash_list(spec.units), "k": k, "context": [before, after],
            "max_len": max_len, "skip_bos": True}

    total = len(corpus) if hasattr(corpus, "__len__") and not isinstance(corpus, (str, Path)) else None

    def compute(texts: Iterable[str], hasher: Any = None) -> dict[str, torch.Tensor]:
        return stream_topk(model, spec, texts, k, (before, after), batch_size, max_len, progress=progress,
                           total=total, hasher=hasher)

    if not cache:
        tensors = compute(iter_texts(corpus))
    elif cache_key is not None or isinstance(corpus, NamedCorpus) or _reiterable(corpus):
        key = (f"key:{cache_key}" if cache_key is not None
               else f"named:{corpus.key}" if isinstance(corpus, NamedCorpus) else _texts_hash(corpus))
        tensors = cached(model, "max_activating", {**args, "corpus": key}, lambda: compute(iter_texts(corpus)),
                         expect=_EXPECT)
    else:  # a one-shot stream: hash it on the way, then store under its content hash
        hasher = hashlib.sha256()
        result = compute(iter_texts(corpus), hasher)
        tensors = cached(model, "max_activating", {**args, "corpus": hasher.hexdigest()[:32]}, lambda: result,
                         expect=_EXPECT)
    strs = model.to_str_tokens(tensors["token_ids"]) if tensors["token_ids"].numel() else []
    meta = {"n_tokens": str(int(tensors["n_tokens"])), "n_examples": str(int(tensors["n_examples"])),
            "before": str(before), "kind": spec.kind, "source": spec.source, "token_strs": json.dumps(list(strs))}
    return _from_parts(tensors, meta)


#: what a cached top-k entry must hold (see `interp.sae.stream.stream_topk`)
_EXPECT = {name: None for name in ("units", "values", "example", "position", "context_tokens", "context_acts",
                                   "fired", "hist", "token_ids", "n_tokens", "n_examples")}


def _hash_list(values: list[int]) -> str:
    return hashlib.sha256(json.dumps(values).encode()).hexdigest()[:16] + f"-{len(values)}"


def default_corpus(model: HookedTransformer) -> tuple[list[str], str]:
    """A corpus and its cache key for when none is given (feature density, a card's examples):
    the model profile's `default_corpus` (2000 documents of the built-in corpus for the
    built-in model), else every prompt of the bundled prompt sets (`interp.data`)."""
    corpus = profile_for(model).default_corpus
    if corpus is not None:
        return corpus()
    texts = []
    for path in sorted(PROMPT_SETS.glob("*.json")):
        body = json.loads(path.read_text())
        for split in ("train", "heldout"):
            texts += [t if isinstance(t, str) else " ".join(map(str, t)) for t in body.get(split, [])]
    return texts, "bundled-prompt-sets"


def examples_figure(
    res: MaxActivatingExamples,
    unit: int,
    promoted: Sequence[tuple[str, float]] = (),
    suppressed: Sequence[tuple[str, float]] = (),
) -> go.Figure:
    """One unit's top examples (tokens shaded by activation), its activation histogram and
    density, and, when given, the output tokens it promotes and suppresses (the feature card)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    r = res.row(unit)
    tokens = bool(promoted or suppressed)
    ex = res.examples(unit)
    rows = max(len(ex), 1)
    specs = [[{"colspan": 2}, None], [{}, {}]]
    fig = make_subplots(rows=2, cols=2, specs=specs, row_heights=[0.62, 0.38], vertical_spacing=0.12,
                        subplot_titles=("top examples", "activation histogram (positive values)",
                                        "output tokens: promoted / suppressed" if tokens else ""))
    width = res.context_tokens.shape[2]
    z = res.context_acts[r, :rows].tolist() if ex else [[0.0] * width]
    text = [res.strs(res.context_tokens[r, j]) for j in range(rows)] if ex else [[""] * width]
    labels = [f"#{j + 1} {e['activation']:.2f}" for j, e in enumerate(ex)] or ["none"]
    fig.add_trace(go.Heatmap(z=z, text=text, texttemplate="%{text}", colorscale="Oranges", zmin=0,
                             x=[str(i - res.before) for i in range(width)], y=labels, showscale=False,
                             hovertemplate="%{text}: %{z:.3g}<extra></extra>", xgap=1, ygap=1), row=1, col=1)
    fig.update_yaxes(autorange="reversed", type="category", row=1, col=1)
    edges, counts = torch.cat([torch.zeros(1), HIST_EDGES]), res.hist[r]
    nz = counts.nonzero().flatten()
    if nz.numel():
        lo, hi = int(nz.min()), int(nz.max()) + 1
        mids = [f"{float(edges[i]):.2g}" for i in range(lo, hi)]
        fig.add_trace(go.Bar(x=mids, y=counts[lo:hi].tolist(), marker_color="#e6550d", showlegend=False,
                             hovertemplate="≥%{x}: %{y}<extra></extra>"), row=2, col=1)
    fig.update_xaxes(type="category", title_text="activation (bin start)", row=2, col=1)
    if tokens:
        toks = [f"{s!r}" for s, _ in promoted] + [f"{s!r}" + "\u200b" for s, _ in suppressed]
        vals = [v for _, v in promoted] + [v for _, v in suppressed]
        fig.add_trace(go.Bar(x=vals, y=toks, orientation="h", showlegend=False,
                             marker_color=["#3182bd"] * len(promoted) + ["#de2d26"] * len(suppressed),
                             hovertemplate="%{y}: %{x:.3g}<extra></extra>"), row=2, col=2)
        fig.update_yaxes(autorange="reversed", type="category", row=2, col=2)
    name = f"{res.kind} {unit}"
    fig.update_layout(title=dict(text=f"{name} · density {100 * float(res.density[r]):.3g}% of {res.n_tokens} tokens"
                                      f" · {res.source}"),
                      template="plotly_white", height=260 + 22 * rows + 260, margin=dict(l=80, r=20, t=70, b=40))
    return fig
