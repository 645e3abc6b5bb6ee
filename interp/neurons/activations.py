"""Where a neuron fires: its max-activating token contexts over a corpus.

An MLP neuron is a key-value memory (Geva et al., "Transformer Feed-Forward Layers Are
Key-Value Memories", 2021): its input weights are a key, matched against the residual stream
at every token, and its activation says how well the key matched. Geva et al. read what a key
detects by collecting the text prefixes on which it fires hardest; the same reading, with a few
tokens of context and the activation shaded on each, is the first thing to look at for any unit
(Bricken et al. 2023; the Neuronpedia dashboards). What the neuron's *value* writes is the
other half: its `W_out` row read through the unembedding (`interp.core.readout.direction_logits`;
Geva et al. 2022).

There is one streaming top-k in the library: `interp.max_activating_examples`, which runs a
corpus in token-budget batches (`interp.core.tokens.length_batches`) only as far as the unit's
layer and merges each batch into a bounded `interp.core.topk.StreamingTopK`, so memory does not
grow with the corpus. `neuron_activations` is that pass for one neuron, read out as a
`NeuronActivations`: the top contexts as token strings, the activation histogram, the firing
density, and the neuron's mean activation over the corpus (summed in the same pass).

Example:
    >>> ranking = interp.rank_neurons(model, prompts, interp.logit_diff(model, "is", "are"), k=5)
    >>> acts = interp.neuron_activations(model, interp.toy.corpus.documents(2000), ranking.neurons[0])
    >>> acts.plot(); acts.to_frame()
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go
import torch
from jaxtyping import Float, Int
from transformer_lens import HookedTransformer

from interp.core.checks import MISSING, check_count, check_model, no_extra, renamed
from interp.core.hooks import hook_name, hooked, resolve_layer
from interp.core.tokens import join_pieces
from interp.core.results import Result, check_shape
from interp.core.topk import HIST_EDGES
from interp.data.corpus import Corpus, iter_texts
from interp.neurons.engine import parse_neurons
from interp.sae.examples import max_activating_examples


@dataclass(frozen=True)
class NeuronActivations(Result):
    """The top-k activating token contexts of one neuron over a corpus, with its histogram.

    `context_acts[j, before]` is the j-th strongest activation (`values[j]`) on token
    `contexts[j][before]`; `example[j]` and `position[j]` say where it was (the position counts
    from the first token after `<bos>`). `density` is the fraction of tokens where the neuron is
    positive, `mean` its mean activation over all `n_tokens` tokens read.

    Example:
        >>> acts = interp.neuron_activations(model, corpus, (1, 40), k=10)
        >>> acts.to_frame().head(); acts.plot(); acts.plot_histogram()
    """

    layer: int
    index: int
    values: Float[torch.Tensor, "k"]
    contexts: tuple[tuple[str, ...], ...]
    context_acts: Float[torch.Tensor, "k width"]
    example: Int[torch.Tensor, "k"]
    position: Int[torch.Tensor, "k"]
    before: int
    hist_edges: Float[torch.Tensor, "bins"]
    hist_counts: Int[torch.Tensor, "bins"]
    density: float
    mean: float
    n_tokens: int
    n_examples: int

    def __post_init__(self) -> None:
        k = len(self.values)
        check_shape("values", self.values, (k,))
        for name in ("example", "position"):
            check_shape(name, getattr(self, name), (k,))
        check_shape("context_acts", self.context_acts, (k, None))
        if len(self.contexts) != k or any(len(c) != self.context_acts.shape[1] for c in self.contexts):
            width = self.context_acts.shape[1]
            raise ValueError(f"contexts must be {k} rows of {width} tokens, like context_acts")
        check_shape("hist_counts", self.hist_counts, tuple(self.hist_edges.shape))
        self._freeze()

    def to_frame(self) -> Any:
        """One row per top example: activation, token, context (top token in [brackets])."""
        import pandas as pd

        spaced = any(t.startswith(" ") for c in self.contexts for t in c)

        def text(ctx: tuple[str, ...]) -> str:
            marked = [f"[{t}]" if i == self.before else t for i, t in enumerate(ctx) if t]
            return join_pieces(marked, spaced)

        return pd.DataFrame({
            "activation": self.values.numpy(),
            "token": [c[self.before] for c in self.contexts],
            "context": [text(c) for c in self.contexts],
            "example": self.example.numpy(),
            "position": self.position.numpy(),
        }, index=pd.RangeIndex(1, len(self.values) + 1, name="rank"))

    def plot(self) -> go.Figure:
        """The top contexts, tokens shaded by this neuron's activation."""
        from interp.core.plotting import heatmap

        acts = self.context_acts.clone()
        blank = torch.tensor([[t == "" for t in c] for c in self.contexts], dtype=torch.bool)
        blank = blank.reshape(acts.shape)
        acts[blank] = float("nan")
        width = acts.shape[1]
        return heatmap(
            acts, x_labels=[f"{i - self.before:+d}" if i != self.before else "top" for i in range(width)],
            y_labels=[f"#{j + 1} ({v:.2f})" for j, v in enumerate(self.values.tolist())],
            text=self.contexts, colorscale="Oranges", zmin=0.0, colorbar_title="activation",
            hover=[[f"{t}: {a:.3f}" if t else "" for t, a in zip(c, r)] for c, r in
                   zip(self.contexts, self.context_acts.tolist())],
            title=f"L{self.layer}.N{self.index}: top {len(self.values)} contexts over {self.n_tokens} tokens "
                  f"(density {self.density:.3f})", x_title="position relative to the top token",
        )

    def plot_histogram(self) -> go.Figure:
        """Counts of positive activations in log-spaced bins."""
        fig = go.Figure(go.Bar(x=self.hist_edges.numpy(), y=self.hist_counts.numpy()))
        fig.update_layout(title=f"L{self.layer}.N{self.index}: positive activations", xaxis_type="log",
                          xaxis_title="activation (bin left edge)", yaxis_title="tokens")
        return fig

    def summary(self) -> str:
        """The neuron, its density and mean activation, and how much text was read."""
        return (f"NeuronActivations L{self.layer}.N{self.index}: density {self.density:.3f}, mean "
                f"{self.mean:.3f} over {self.n_tokens} tokens in {self.n_examples} texts")


@contextmanager
def _summed(model: HookedTransformer, layer: int, index: int) -> Iterator[list[float]]:
    """Sum the neuron's activation over the real, non-`<bos>` tokens of every forward run in the
    block: `[total, count]`.

    `max_activating_examples` keeps top-k, counts and histograms, not a running sum, so the
    neuron's mean is summed here, in the same pass. Which positions are real is read where the
    model applies its attention mask: a position is padding exactly when its attention score
    on itself is masked in block `layer`, which runs just before the neuron's MLP (-inf in
    transformer-lens' attention, the dtype's most negative value added in Hugging Face's).
    """
    found, out = {}, [0.0, 0]

    def real(scores: torch.Tensor, hook) -> None:
        own = scores[:, 0].diagonal(dim1=-2, dim2=-1)
        found["mask"] = torch.isfinite(own) & (own > torch.finfo(own.dtype).min / 2)

    def add(act: torch.Tensor, hook) -> None:
        mask = found.pop("mask").clone()
        if model.cfg.default_prepend_bos:  # the first real token is <bos>, left out as in the top-k
            mask[torch.arange(len(mask)), mask.long().argmax(1)] = False
        valid = act[..., index].float()[mask]
        out[0] += float(valid.sum())
        out[1] += valid.numel()

    hooks = [(f"blocks.{layer}.attn.hook_attn_scores", real), (hook_name(model, "mlp_post", layer), add)]
    with hooked(model, hooks):
        yield out


def _old_neuron_form(neuron: Any, old_index: tuple[Any, ...], old: dict[str, Any]) -> Any:
    """The `(layer, index)` pair, also from the deprecated `(..., layer, index)` and `layer=, index=`."""
    layer = renamed("layer", "neuron", old, "neuron_activations", depth=1)
    index = renamed("index", "neuron", old, "neuron_activations", depth=1)
    if old_index:
        warnings.warn("neuron_activations(model, corpus, layer, index) is deprecated and will be removed "
                      "in the next release; pass one pair: neuron_activations(model, corpus, (layer, index))",
                      DeprecationWarning, stacklevel=3)
        if len(old_index) > 1 or index is not MISSING:
            got = (neuron, *old_index)
            raise TypeError(f"neuron_activations() takes one (layer, index) neuron, got {got!r}")
        layer, index = neuron, old_index[0]
    elif index is not MISSING and layer is MISSING:  # (model, corpus, layer, index=...)
        layer = neuron
    if layer is MISSING and index is MISSING:
        return neuron
    if layer is MISSING or layer is None or index is MISSING:
        raise TypeError("neuron_activations() needs the neuron as one (layer, index) pair")
    return (layer, index)


def neuron_activations(
    model: HookedTransformer,
    corpus: Corpus = MISSING,
    neuron: tuple[int, int] | None = None,
    *old_index: int,
    k: int = 20,
    batch_size: int = 32,
    limit: int | None = None,
    before: int = 8,
    after: int = 2,
    progress: bool = True,
    **deprecated: Any,
) -> NeuronActivations:
    """Where MLP neuron `(layer, index)` fires: its top-k token contexts over a corpus.

    The corpus (a list of prompts, any iterable of strings, a text file or folder, a Hugging Face
    dataset) is streamed by `interp.max_activating_examples` in token-budget batches; each batch
    runs only up to the neuron's layer and is merged into a bounded top-k, so memory does not
    depend on corpus size. Texts longer than the context are cut; the `<bos>` position is left
    out (its activations are usually outliers).

    Args:
        model: any `HookedTransformer`.
        corpus: the texts to read (see `interp.data.corpus.iter_texts`).
        neuron: `(layer, index)` of an `mlp_post` unit; negative layers count from the end.
            (The old spelling `neuron_activations(model, corpus, layer, index)` still works with
            a `DeprecationWarning`, as do `layer=`/`index=` and `prompts_or_corpus=`.)
        k: contexts kept.
        batch_size: texts per forward pass, at most.
        limit: stop after this many texts.
        before, after: context tokens shown around each top token.
        progress: show a progress bar.

    Returns:
        A `NeuronActivations`; `.to_frame()`, `.plot()`, `.plot_histogram()`.

    Raises:
        ValueError: a layer or neuron index out of range, `k` not a positive int, an empty corpus.

    Example:
        >>> acts = interp.neuron_activations(model, interp.toy.corpus.documents(2000), (2, 17))
        >>> acts.plot()
    """
    legacy = renamed("prompts_or_corpus", "corpus", deprecated, "neuron_activations")
    corpus = legacy if legacy is not MISSING else corpus
    skip_bos = deprecated.pop("skip_bos", MISSING)
    if skip_bos is not MISSING:
        warnings.warn("neuron_activations(skip_bos=...) is deprecated and will be removed in the next "
                      "release: the <bos> position is always left out", DeprecationWarning, stacklevel=2)
        if skip_bos is not True:
            raise ValueError("skip_bos=False is no longer supported: the <bos> position is always left out, "
                             "as in interp.max_activating_examples")
    neuron = _old_neuron_form(neuron, old_index, deprecated)
    no_extra(deprecated, "neuron_activations")
    check_model(model)
    if corpus is MISSING or neuron is None:
        raise TypeError(f"neuron_activations() needs a corpus and a (layer, index) neuron; got neuron={neuron!r}")
    if limit is not None:
        check_count(limit, "limit")
    if not isinstance(neuron, (tuple, list)) or len(neuron) != 2:
        raise ValueError(f"neuron {neuron!r} must be a (layer, index) pair")
    parse_neurons(model, [tuple(neuron)])  # names a bad layer or index before any work
    layer, index = resolve_layer(model, neuron[0]), int(neuron[1])
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k={k!r} must be a positive int")
    texts = corpus if limit is None else iter_texts(corpus, limit=limit)
    with _summed(model, layer, index) as summed:
        top = max_activating_examples(model, (layer, index), texts, k=k, context=(before, after),
                                      batch_size=batch_size, max_len=model.cfg.n_ctx, cache=False,
                                      progress=progress)
    total, count = summed
    assert count == top.n_tokens, (count, top.n_tokens)  # the sum saw exactly the tokens the top-k saw
    keep = torch.isfinite(top.values[0])
    ids = top.context_tokens[0][keep]
    contexts = tuple(tuple(top.strs(row)) for row in ids)
    return NeuronActivations(
        layer=layer, index=index, values=top.values[0][keep].clone(), contexts=contexts,
        context_acts=top.context_acts[0][keep].clone(), example=top.example[0][keep].clone(),
        position=top.position[0][keep].clone(), before=before,
        hist_edges=torch.cat([torch.zeros(1), HIST_EDGES]), hist_counts=top.hist[0].clone(),
        density=float(top.density[0]), mean=total / max(count, 1), n_tokens=top.n_tokens,
        n_examples=top.n_examples,
    )
