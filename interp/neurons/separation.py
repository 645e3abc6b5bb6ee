"""Ranking neurons by how well their activation separates two labelled groups of prompts.

Which MLP neurons know whether a subject is singular or plural? One direct answer does not need
a metric or a gradient: read every neuron's activation at the read position on prompts of one
group (singular subjects) and of the other (plural subjects), and score each neuron by how far
apart the two distributions are. This is the neuron-level version of a difference-of-means
probe, and the way Finlayson et al. ("Causal Analysis of Syntactic Agreement Mechanisms in
Neural Language Models", ACL 2021) and Gurnee et al. ("Finding Neurons in a Haystack: Case
Studies with Sparse Probing", 2023) first look for number or feature neurons before ablating
them: a neuron that separates the groups *carries* the distinction; whether the model *uses* it
is then asked by ablation (`interp.ablate_neurons`) or attribution (`interp.rank_neurons`).

Two scores per neuron, both computed from one batched pass per group that stops after the
deepest layer scored and keeps only the read positions:

- **standardized mean difference** (Cohen's d): `(mean_pos - mean_neg) / pooled_std`. Its sign
  says which group the neuron fires for; `|d| > 0.8` is a "large" effect by Cohen's convention,
  and scale-free, so neurons of different layers and magnitudes compare;
- **AUC**: the probability that the neuron's activation on a random positive prompt exceeds the
  one on a random negative prompt (the Mann-Whitney U statistic divided by n_pos x n_neg, ties
  counted half); 0.5 is chance, 1.0 or 0.0 a perfect separation. It is rank-based, so a few
  outlying activations do not dominate it.

Example:
    >>> sep = interp.separating_neurons(model, singular_prompts, plural_prompts, k=10)
    >>> sep.to_frame().head()          # rank, layer, neuron, d, auc, mean activations
    >>> interp.ablate_neurons(model, prompts, list(sep.neurons))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import plotly.graph_objects as go
import torch
from jaxtyping import Float
from transformer_lens import HookedTransformer

from interp.core.checks import check_count, check_model, check_prompts
from interp.core.hooks import harvest, hook_name
from interp.core.results import Result, check_shape
from interp.core.tokens import maybe_chat, tokenize, use_chat
from interp.neurons.attribution import mlp_layers

SEPARATION_BY = ("magnitude", "positive", "negative")
SEPARATION_SCORES = ("d", "auc")


@dataclass(frozen=True)
class NeuronSeparation(Result):
    """How well every neuron of the chosen layers separates two prompt groups, and the top k.

    `d[i, n]` is neuron `n` of `layers[i]`'s standardized mean difference (positive minus
    negative, over the pooled standard deviation), `auc[i, n]` the probability that it is higher
    on a positive prompt than on a negative one; `mean_positive` / `mean_negative` are the group
    means. `neurons` are the top k by `score` and `by`, and feed `interp.ablate_neurons` as they are.

    Example:
        >>> sep = interp.separating_neurons(model, singular, plural, k=5)
        >>> sep.neurons[0], sep.to_frame()
    """

    layers: tuple[int, ...]
    d: Float[torch.Tensor, "layers d_mlp"]
    auc: Float[torch.Tensor, "layers d_mlp"]
    mean_positive: Float[torch.Tensor, "layers d_mlp"]
    mean_negative: Float[torch.Tensor, "layers d_mlp"]
    neurons: tuple[tuple[int, int], ...]
    score: str
    by: str
    positions: tuple[int, ...]
    n_positive: int
    n_negative: int

    def __post_init__(self) -> None:
        shape = (len(self.layers), None)
        for name in ("d", "auc", "mean_positive", "mean_negative"):
            check_shape(name, getattr(self, name), shape)
        self._freeze()

    def top(self, name: str) -> torch.Tensor:
        """Field `name` (`"d"`, `"auc"`, `"mean_positive"`, `"mean_negative"`) at the top neurons."""
        values = getattr(self, name)
        index = {layer: i for i, layer in enumerate(self.layers)}
        if not self.neurons:
            return values.new_zeros(0)
        return torch.stack([values[index[a], b] for a, b in self.neurons])

    def to_frame(self) -> Any:
        """One row per top neuron: rank, layer, index, d, AUC and the two group means."""
        import pandas as pd

        return pd.DataFrame({
            "rank": range(1, len(self.neurons) + 1),
            "layer": [n[0] for n in self.neurons],
            "neuron": [n[1] for n in self.neurons],
            "d": self.top("d").numpy(),
            "auc": self.top("auc").numpy(),
            "mean_positive": self.top("mean_positive").numpy(),
            "mean_negative": self.top("mean_negative").numpy(),
        })

    def plot(self) -> go.Figure:
        """The top neurons' standardized mean differences (bars), AUC in the hover text, and per
        layer the largest |d| (a line on a second axis), so one sees where the distinction lives."""
        labels = [f"L{a}.N{b}" for a, b in self.neurons]
        fig = go.Figure(go.Bar(x=labels, y=self.top("d").numpy(), name="d (top neurons)",
                               customdata=self.top("auc").numpy(),
                               hovertemplate="%{x}: d %{y:.2f}, AUC %{customdata:.2f}"))
        fig.add_trace(go.Scatter(x=[f"L{layer}" for layer in self.layers], y=self.d.abs().amax(1).numpy(),
                                 mode="lines+markers", name="max |d| per layer", xaxis="x2", yaxis="y2"))
        fig.update_layout(
            title=f"Neurons separating {self.n_positive} positive from {self.n_negative} negative prompts "
                  f"(ranked by {self.score}, {self.by})",
            yaxis_title="standardized mean difference d",
            xaxis2=dict(overlaying="x", side="top", showgrid=False),
            yaxis2=dict(overlaying="y", side="right", title="max |d| in layer", showgrid=False),
        )
        return fig

    def summary(self) -> str:
        """The groups, the layers scored and the best neuron."""
        best = f"; best {self.neurons[0]} d {float(self.top('d')[0]):+.2f}" if self.neurons else ""
        return (f"NeuronSeparation of {self.n_positive} vs {self.n_negative} prompts over layers "
                f"{list(self.layers)} by {self.score} ({self.by}){best}")


def _group_acts(model: HookedTransformer, prompts: list[str], hooks: list[str], positions: tuple[int, ...],
                batch_size: int, desc: str, progress: bool) -> torch.Tensor:
    """Each prompt's activations `[prompts, layers, d_mlp]`, averaged over the read positions, from
    batched forwards that stop after the deepest hook."""
    from tqdm.auto import tqdm

    idx = list(positions)
    parts = []
    starts = range(0, len(prompts), batch_size)
    for start in tqdm(starts, desc=desc, disable=not progress or len(starts) < 4, leave=False):
        tokens, mask = tokenize(model, prompts[start:start + batch_size])
        short = int(mask.sum(1).min())
        if short < -min(idx):
            raise ValueError(f"a prompt in {desc} has only {short} tokens; positions {idx} need {-min(idx)}")
        acts = harvest(model, tokens, hooks, attention_mask=mask, select=lambda a: a[:, idx].float().mean(1))
        parts.append(torch.stack([acts[h] for h in hooks], 1).cpu())
    return torch.cat(parts)


def _auc(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Per column, P(pos > neg) + 0.5 P(pos == neg), by average ranks (Mann-Whitney U)."""
    from scipy.stats import rankdata

    both = torch.cat([pos, neg]).double().numpy()
    ranks = rankdata(both, axis=0, method="average")[: len(pos)].sum(0)
    n_p, n_n = len(pos), len(neg)
    return torch.from_numpy((ranks - n_p * (n_p + 1) / 2) / (n_p * n_n)).float()


def separating_neurons(
    model: HookedTransformer,
    positive: str | Sequence[str],
    negative: str | Sequence[str],
    *,
    layers: int | Sequence[int] | None = None,
    positions: str | int | Sequence[int] = "last",
    k: int = 10,
    score: Literal["d", "auc"] = "d",
    by: Literal["magnitude", "positive", "negative"] = "magnitude",
    chat: bool | None = False,
    batch_size: int = 32,
    progress: bool = True,
) -> NeuronSeparation:
    """Rank every MLP neuron of `layers` by how well its activation separates two prompt groups.

    One batched pass per group (left-padded, stopped after the deepest layer scored, only the
    read positions kept) gives each prompt's activation of every neuron (`mlp_post`, averaged
    over `positions` when there are several); each neuron is then scored by its standardized
    mean difference `d` and its AUC (see the module docstring).

    Args:
        model: any `HookedTransformer` with MLPs.
        positive, negative: the two groups (at least 2 prompts each), e.g. singular- and
            plural-subject prompts.
        layers: layers to score (an int, a list, negatives from the end; default all).
        positions: read positions: `"last"` (default), `"post_instruction"` (chat prompts) or
            negative ints counted from the end (their mean activation per prompt).
        k: how many top neurons to return in `.neurons`.
        score: rank by `"d"` (default) or `"auc"` (its distance from 0.5 for `"magnitude"`).
        by: `"magnitude"` (either direction, default), `"positive"` (fires more on `positive`)
            or `"negative"`.
        chat: wrap prompts in the model's chat template (`False`: text as given; `None`: the
            model's profile decides).
        batch_size: prompts per forward pass.
        progress: show a progress bar for many batches.

    Returns:
        A `NeuronSeparation`; `.neurons` feeds `interp.ablate_neurons` directly.

    Raises:
        ValueError: fewer than 2 prompts in a group, a bad layer, position, k, score or by.

    Example:
        >>> sep = interp.separating_neurons(model, ["the key to the cabinets"] * 2,
        ...                                 ["the keys to the cabinet"] * 2, layers=[2, 3], k=3)
        >>> interp.ablate_neurons(model, prompts, list(sep.neurons), targets=["is", "are"])
    """
    check_model(model)
    groups = []
    for name, group in (("positive", positive), ("negative", negative)):
        group = check_prompts(group, name)
        if len(group) < 2:
            raise ValueError(f"{name} has {len(group)} prompt(s): a standard deviation needs at least 2")
        groups.append(group)
    if score not in SEPARATION_SCORES:
        raise ValueError(f"score is {score!r}: expected one of {SEPARATION_SCORES}")
    if by not in SEPARATION_BY:
        raise ValueError(f"by is {by!r}: expected one of {SEPARATION_BY}")
    layer_list = mlp_layers(model, layers)
    check_count(k, "k", maximum=len(layer_list) * model.cfg.d_mlp)
    check_count(batch_size, "batch_size")
    from interp.steering.extract import read_positions  # the one reader of `positions`

    pos = read_positions(model, positions, use_chat(model, chat))
    hooks = [hook_name(model, "mlp_post", layer) for layer in layer_list]
    acts = [
        _group_acts(model, maybe_chat(model, g, chat), hooks, pos, batch_size, name, progress)
        for g, name in zip(groups, ("positive", "negative"))
    ]
    a, b = (x.double() for x in acts)
    mean_a, mean_b = a.mean(0), b.mean(0)
    pooled = ((a.var(0) * (len(a) - 1) + b.var(0) * (len(b) - 1)) / (len(a) + len(b) - 2)).sqrt()
    d = torch.where(pooled > 0, (mean_a - mean_b) / pooled.clamp_min(1e-12), torch.zeros_like(pooled)).float()
    auc = _auc(acts[0].flatten(1), acts[1].flatten(1)).reshape(d.shape)
    value = d if score == "d" else auc - 0.5
    key = {"magnitude": value.abs(), "positive": value, "negative": -value}[by].flatten()
    order = key.sort(descending=True, stable=True).indices[:k]
    d_mlp = model.cfg.d_mlp
    top = tuple((layer_list[int(i) // d_mlp], int(i) % d_mlp) for i in order)
    return NeuronSeparation(
        layers=tuple(layer_list), d=d, auc=auc, mean_positive=mean_a.float(), mean_negative=mean_b.float(),
        neurons=top, score=score, by=by, positions=pos, n_positive=len(a), n_negative=len(b),
    )

