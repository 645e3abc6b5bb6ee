"""A feature's card: everything needed to name one SAE feature (or MLP neuron) at a glance.

The card puts side by side what makes a unit fire and what it does: its strongest examples over a
corpus with the surrounding tokens shaded by activation, the histogram of its activations and its
density, and the output tokens its decoder direction promotes and suppresses through the
unembedding. This is the layout of the feature dashboards in Bricken et al. 2023, "Towards
Monosemanticity", and of Neuronpedia.

Example:
    >>> top = interp.max_activating_examples(model, sae, interp.toy.corpus.documents(3000))
    >>> interp.feature_card(model, sae, 12, examples=top).plot()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from transformer_lens import HookedTransformer

from interp.data.corpus import Corpus
from interp.sae.examples import (
    MaxActivatingExamples,
    Neuron,
    _check_units,
    default_corpus,
    max_activating_examples,
)
from interp.core.hooks import resolve_layer
from interp.core.topk import HIST_EDGES

if TYPE_CHECKING:  # pragma: no cover
    from sae_lens import SAE


@dataclass(frozen=True, eq=False, repr=False)
class FeatureCard:
    """Everything about one unit: top examples, histogram, density, promoted/suppressed tokens."""

    examples: MaxActivatingExamples
    unit: int
    promoted: tuple[tuple[str, float], ...]
    suppressed: tuple[tuple[str, float], ...]

    def __post_init__(self) -> None:
        self.examples.row(self.unit)  # raises KeyError if the unit was not tracked

    @property
    def density(self) -> float:
        return float(self.examples.density[self.examples.row(self.unit)])

    def to_frame(self):
        """The top examples, strongest first."""
        return self.examples.to_frame(self.unit)

    def plot(self):
        """Top examples shaded by activation, histogram, density, promoted and suppressed tokens."""
        return card_figure(self.examples, self.unit, self)

    def __repr__(self) -> str:
        promoted = ", ".join(t for t, _ in self.promoted[:5])
        return f"FeatureCard({self.examples.kind} {self.unit}: density {self.density:.3g}, promotes {promoted})"

    def _repr_html_(self) -> str:
        return f"<p>{self!r}</p>" + self.to_frame().to_html()


def feature_card(
    model: HookedTransformer,
    sae_or_neuron: SAE | Neuron,
    feature: int | None = None,
    *,
    examples: MaxActivatingExamples | None = None,
    corpus: Corpus | None = None,
    n_tokens: int = 10,
) -> FeatureCard:
    """A feature's (or neuron's) card: its top examples and what it writes to the output.

    Args:
        model: the model.
        sae_or_neuron: an SAE, or a neuron `(layer, index)` (then `feature` may be omitted).
        feature: the feature index.
        examples: a `MaxActivatingExamples` that tracked the unit; otherwise one is computed on
            `corpus` (default: `default_corpus(model)`) for this unit only.
        n_tokens: how many promoted and suppressed output tokens to list.

    Example:
        >>> interp.feature_card(model, sae, 12, examples=top).plot()
    """
    from interp.core.readout import direction_logits
    from interp.sae.encode import _check_feature, residual_directions
    from interp.sae.check import check_sae

    if isinstance(sae_or_neuron, tuple):
        layer, unit = resolve_layer(model, sae_or_neuron[0]), sae_or_neuron[1]
        _check_units(unit, model.cfg.d_mlp, f"neuron of layer {layer}")
        if feature not in (None, unit):
            raise ValueError(f"feature={feature} conflicts with the neuron index {unit}")
        direction = model.blocks[layer].mlp.W_out[unit].detach()[None]
        track: Any = sae_or_neuron
    else:
        check_sae(model, sae_or_neuron)
        unit = _check_feature(sae_or_neuron, feature)
        direction = residual_directions(model, sae_or_neuron)[unit][None]
        track = sae_or_neuron
    if examples is None:
        corpus, key = (corpus, None) if corpus is not None else default_corpus(model)
        feats = None if isinstance(track, tuple) else [unit]
        examples = max_activating_examples(model, track, corpus, features=feats, cache_key=key, progress=False)
    effect = direction_logits(model, direction)[0]
    effect = (effect - effect.mean()).cpu()
    top, bottom = effect.topk(n_tokens), (-effect).topk(n_tokens)
    label = lambda idx, vals: tuple((s, float(v)) for s, v in zip(model.to_str_tokens(idx), vals))  # noqa: E731
    return FeatureCard(examples, unit, label(top.indices, top.values), label(bottom.indices, -bottom.values))


def card_figure(res: MaxActivatingExamples, unit: int, card: FeatureCard | None):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    r = res.row(unit)
    ex = res.examples(unit)
    rows = max(len(ex), 1)
    specs = [[{"colspan": 2}, None], [{}, {}]]
    fig = make_subplots(rows=2, cols=2, specs=specs, row_heights=[0.62, 0.38], vertical_spacing=0.12,
                        subplot_titles=("top examples", "activation histogram (positive values)",
                                        "output tokens: promoted / suppressed" if card else ""))
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
    if card is not None:
        toks = [f"{s!r}" for s, _ in card.promoted] + [f"{s!r}" + "\u200b" for s, _ in card.suppressed]
        vals = [v for _, v in card.promoted] + [v for _, v in card.suppressed]
        fig.add_trace(go.Bar(x=vals, y=toks, orientation="h", showlegend=False,
                             marker_color=["#3182bd"] * len(card.promoted) + ["#de2d26"] * len(card.suppressed),
                             hovertemplate="%{y}: %{x:.3g}<extra></extra>"), row=2, col=2)
        fig.update_yaxes(autorange="reversed", type="category", row=2, col=2)
    name = f"{res.kind} {unit}"
    fig.update_layout(title=dict(text=f"{name} · density {100 * float(res.density[r]):.3g}% of {res.n_tokens} tokens"
                                      f" · {res.source}"),
                      template="plotly_white", height=260 + 22 * rows + 260, margin=dict(l=80, r=20, t=70, b=40))
    return fig
