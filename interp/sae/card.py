"""A feature's card: everything needed to name one SAE feature (or MLP neuron) at a glance.

The card puts side by side what makes a unit fire and what it does: its strongest examples over a
corpus with the surrounding tokens shaded by activation, the histogram of its activations and its
density (`interp.sae.examples`), and the output tokens its decoder direction promotes and
suppresses through the final norm and the unembedding (`interp.sae.directions`). This is the
layout of the feature dashboards in Bricken et al. 2023, "Towards Monosemanticity", Templeton et
al. 2024, "Scaling Monosemanticity", and Neuronpedia; reading both sides is what keeps a label
honest (a feature that fires on "paris" may promote "france", or nothing at all).

Example:
    >>> top = interp.max_activating_examples(model, sae, interp.toy.corpus.documents(3000))
    >>> interp.feature_card(model, sae, 12, examples=top).plot()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from transformer_lens import HookedTransformer

from interp.core.checks import check_count, check_model
from interp.core.hooks import resolve_layer
from interp.core.results import Result
from interp.data.corpus import Corpus
from interp.sae.directions import relative_logits, residual_directions
from interp.sae.encode import check_feature
from interp.sae.examples import MaxActivatingExamples, default_corpus, examples_figure, max_activating_examples
from interp.sae.fit import check_sae
from interp.sae.stream import Neuron, check_units

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go
    from sae_lens import SAE


@dataclass(frozen=True, eq=False, repr=False)
class FeatureCard(Result):
    """Everything about one unit: top examples, histogram, density, promoted/suppressed tokens."""

    examples: MaxActivatingExamples
    unit: int
    promoted: tuple[tuple[str, float], ...]
    suppressed: tuple[tuple[str, float], ...]

    def __post_init__(self) -> None:
        self.examples.row(self.unit)  # raises KeyError if the unit was not tracked
        object.__setattr__(self, "promoted", tuple((str(t), float(v)) for t, v in self.promoted))
        object.__setattr__(self, "suppressed", tuple((str(t), float(v)) for t, v in self.suppressed))

    @property
    def density(self) -> float:
        return float(self.examples.density[self.examples.row(self.unit)])

    def to_frame(self):
        """The top examples, strongest first."""
        return self.examples.to_frame(self.unit)

    def plot(self) -> go.Figure:
        """Top examples shaded by activation, histogram, density, promoted and suppressed tokens."""
        return examples_figure(self.examples, self.unit, self.promoted, self.suppressed)

    def summary(self) -> str:
        """One line: the unit, its density and the tokens it promotes most."""
        promoted = ", ".join(t for t, _ in self.promoted[:5])
        return f"FeatureCard({self.examples.kind} {self.unit}: density {self.density:.3g}, promotes {promoted})"

    def __repr__(self) -> str:
        return self.summary()


def feature_card(
    model: HookedTransformer,
    sae_or_neuron: SAE | Neuron,
    feature: int | None = None,
    *,
    examples: MaxActivatingExamples | None = None,
    corpus: Corpus | None = None,
    n_tokens: int = 10,
    progress: bool = True,
) -> FeatureCard:
    """A feature's (or neuron's) card: its top examples and what it writes to the output.

    Args:
        model: the model.
        sae_or_neuron: an SAE, or a neuron `(layer, index)` (then `feature` may be omitted).
        feature: the feature index.
        examples: a `MaxActivatingExamples` that tracked the unit; otherwise one is computed on
            `corpus` (default: `default_corpus(model)`) for this unit only.
        n_tokens: how many promoted and suppressed output tokens to list.
        progress: show a progress bar while the examples are computed (when not cached).

    Example:
        >>> interp.feature_card(model, sae, 12, examples=top).plot()
    """
    check_model(model)
    check_count(n_tokens, "n_tokens", maximum=model.cfg.d_vocab)
    if examples is not None and not isinstance(examples, MaxActivatingExamples):
        raise TypeError(f"examples is {examples!r}: expected a MaxActivatingExamples (or None to compute one)")
    if isinstance(sae_or_neuron, tuple):
        layer, unit = resolve_layer(model, sae_or_neuron[0]), sae_or_neuron[1]
        check_units(unit, model.cfg.d_mlp, f"neuron of layer {layer}")
        if feature not in (None, unit):
            raise ValueError(f"feature={feature} conflicts with the neuron index {unit}")
        direction = model.blocks[layer].mlp.W_out[unit].detach()[None]
        track: Any = sae_or_neuron
    else:
        check_sae(model, sae_or_neuron)
        unit = check_feature(sae_or_neuron, feature)
        direction = residual_directions(model, sae_or_neuron)[unit][None]
        track = sae_or_neuron
    if examples is None:
        corpus, key = (corpus, None) if corpus is not None else default_corpus(model)
        feats = None if isinstance(track, tuple) else [unit]
        examples = max_activating_examples(model, track, corpus, features=feats, cache_key=key,
                                           progress=progress)
    effect = relative_logits(model, direction)[0].cpu()
    top, bottom = effect.topk(n_tokens), (-effect).topk(n_tokens)
    label = lambda idx, vals: tuple((s, float(v)) for s, v in zip(model.to_str_tokens(idx), vals))  # noqa: E731
    return FeatureCard(examples, unit, label(top.indices, top.values), label(bottom.indices, -bottom.values))
