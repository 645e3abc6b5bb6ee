"""Finding and reading MLP neurons: rank them by attribution, see where they fire.

**Ranking by attribution patching.** Ablating every neuron one at a time costs one forward pass
per neuron. Attribution patching (Nanda, "Attribution Patching: Activation Patching At
Industrial Scale", 2023; Syed, Rager and Conmy, "Attribution Patching Outperforms Automated
Circuit Discovery", 2023) replaces that with a first-order Taylor estimate: the change in a
metric M when activation a is replaced by a' is about (a' - a) · dM/da. One forward pass that
keeps every neuron's activation and one backward pass that gives every gradient score all
neurons at once: for zero ablation the score is (0 - a) · dM/da summed over positions (mean
ablation uses the reference mean for a', resample ablation a reference prompt's activation),
averaged over prompts, i.e. the predicted change in the mean metric. Linear estimates can be
wrong where the network is far from linear, so `rank_neurons` then ablates its top k for real,
one neuron at a time (all k in batched passes), and reports both numbers and their Spearman rank
correlation.

**Where a neuron fires.** `neuron_activations` streams a corpus through the model in batches,
stopping after the neuron's layer, and keeps only the k strongest activations with their token
contexts (`interp.topk.StreamingTopK`), plus a histogram of activations: memory does not grow
with the corpus.

Example:
    >>> from interp.toy.corpus import agreement_prompts
    >>> ps = agreement_prompts("train", 100)
    >>> metric = interp.logit_diff(model, [p.correct[0] for p in ps], [p.wrong[0] for p in ps])
    >>> ranking = interp.rank_neurons(model, [p.prompt for p in ps], metric, k=10)
    >>> ranking.to_frame(); ranking.neurons[:3]
    >>> interp.neuron_activations(model, corpus, *ranking.neurons[0], k=20).plot()
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import plotly.graph_objects as go
import torch
from jaxtyping import Float, Int
from transformer_lens import HookedTransformer

from interp.neurons.ablation import (
    Metric,
    Target,
    Values,
    as_metric,
    metric_values,
    parse_neurons,
    run_jobs,
    trim,
)
from interp.data.corpus import batched, iter_texts
from interp.core.hooks import harvest, hook_name, hooked, resolve_layer
from interp.core.readout import last_logits
from interp.core.tokens import encode, pad_id, pad_rows, tokenize
from interp.core.topk import PAD, StreamingTopK

RANK_BY = ("decrease", "increase", "magnitude")


# --- ranking ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NeuronRanking:
    """Attribution scores for every neuron of the chosen layers, and the top k verified.

    `scores[i, n]` is the predicted change of the mean metric when neuron `n` of `layers[i]` is
    ablated; `attribution` and `ablation` are the predicted and the measured change for the top
    `neurons`; `spearman` is their rank correlation.
    """

    layers: tuple[int, ...]
    scores: Float[torch.Tensor, "layers d_mlp"]
    neurons: tuple[tuple[int, int], ...]
    attribution: Float[torch.Tensor, "k"]
    ablation: Float[torch.Tensor, "k"] | None
    spearman: float
    baseline: float
    metric_name: str
    method: str
    by: str
    n_prompts: int

    def __post_init__(self):
        if self.scores.ndim != 2 or self.scores.shape[0] != len(self.layers):
            shape = tuple(self.scores.shape)
            raise ValueError(f"scores has shape {shape}, expected ({len(self.layers)}, d_mlp)")
        k = len(self.neurons)
        if tuple(self.attribution.shape) != (k,):
            raise ValueError(f"attribution has shape {tuple(self.attribution.shape)}, expected ({k},)")
        if self.ablation is not None and tuple(self.ablation.shape) != (k,):
            raise ValueError(f"ablation has shape {tuple(self.ablation.shape)}, expected ({k},)")

    def to_frame(self):
        """One row per top neuron: rank, layer, index, predicted and measured metric change."""
        import pandas as pd

        return pd.DataFrame({
            "rank": range(1, len(self.neurons) + 1),
            "layer": [n[0] for n in self.neurons],
            "neuron": [n[1] for n in self.neurons],
            "attribution": self.attribution.numpy(),
            "ablation": self.ablation.numpy() if self.ablation is not None else np.nan,
        })

    def plot(self) -> go.Figure:
        """Predicted (attribution) vs measured (ablation) metric change for the top neurons."""
        labels = [f"L{a}.N{b}" for a, b in self.neurons]
        x = self.attribution.numpy()
        if self.ablation is None:
            fig = go.Figure(go.Bar(x=labels, y=x))
            fig.update_layout(title=f"Attribution scores for {self.metric_name}",
                              yaxis_title="predicted change")
            return fig
        y = self.ablation.numpy()
        lim = [float(min(x.min(), y.min(), 0)), float(max(x.max(), y.max(), 0))]
        fig = go.Figure([
            go.Scatter(x=lim, y=lim, mode="lines", line=dict(dash="dot", color="gray"), name="y = x"),
            go.Scatter(x=x, y=y, mode="markers+text", text=labels, textposition="top center", name="neuron"),
        ])
        fig.update_layout(
            title=f"Top {len(labels)} neurons for {self.metric_name}: attribution vs {self.method} ablation "
                  f"(Spearman {self.spearman:.2f})",
            xaxis_title="attribution (predicted change in mean metric)",
            yaxis_title="ablation (measured change in mean metric)",
        )
        return fig

    def _repr_html_(self) -> str:
        return (f"<b>NeuronRanking</b> for {self.metric_name} over layers {list(self.layers)} "
                f"(baseline {self.baseline:.3f}, Spearman {self.spearman:.2f})" + self.to_frame().to_html())


def _layers(model: HookedTransformer, layers: int | Iterable[int] | None) -> list[int]:
    if not model.cfg.d_mlp:
        raise ValueError("this model has no MLP neurons (d_mlp is not set)")
    if layers is None:
        return list(range(model.cfg.n_layers))
    layers = [layers] if isinstance(layers, int) else list(layers)
    if not layers:
        n = model.cfg.n_layers
        raise ValueError(f"layers is empty: expected layer indices in [-{n}, {n})")
    return sorted({resolve_layer(model, layer) for layer in layers})


def rank_neurons(
    model: HookedTransformer,
    prompts: str | Sequence[str],
    metric: Metric | Callable,
    *,
    layers: int | Sequence[int] | None = None,
    k: int = 10,
    method: Literal["zero", "mean", "resample"] = "zero",
    reference: Sequence[str] | None = None,
    by: Literal["decrease", "increase", "magnitude"] = "decrease",
    verify: bool = True,
    batch_size: int = 32,
    progress: bool = True,
) -> NeuronRanking:
    """Score every MLP neuron of `layers` for `metric` by attribution, then verify the top k.

    Args:
        model: any `HookedTransformer`.
        prompts: the prompts the metric is read on (its last position).
        metric: `logit_diff`, `token_logprob`, or a callable `f(logits)` / `f(logits, rows)` on the
            last-position logits `[batch, vocab]` returning one value per prompt.
        layers: layers to score (default all).
        k: how many top neurons to keep and verify by real ablation.
        method: the ablation the scores predict: `"zero"`, `"mean"` or `"resample"`.
        reference: reference prompts for mean / resample ablation.
        by: `"decrease"` (default): neurons whose ablation is predicted to lower the metric most;
            `"increase"`; or `"magnitude"` of the predicted change.
        verify: ablate the top k one at a time and report the measured change.
        batch_size: prompts per forward/backward pass (one pass each when all fit).

    Returns:
        A `NeuronRanking`; `.neurons` feeds straight into `interp.ablate_neurons`.

    Example:
        >>> r = interp.rank_neurons(model, prompts, interp.logit_diff(model, "is", "are"), k=10)
        >>> interp.ablate_neurons(model, prompts, list(r.neurons))
    """
    from tqdm.auto import tqdm

    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    if by not in RANK_BY:
        raise ValueError(f"unknown ranking {by!r}; expected one of {RANK_BY}")
    met = as_metric(metric, len(prompts))
    layer_list = _layers(model, layers)
    d_mlp = model.cfg.d_mlp
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(layer_list) * d_mlp:
        n = len(layer_list)
        raise ValueError(f"k={k!r} must be an int in [1, {n * d_mlp}] for {n} layer(s)")
    hooks = [hook_name(model, "mlp_post", layer) for layer in layer_list]
    units = torch.arange(d_mlp)
    values = Values(model, method, [Target(h, units, h) for h in hooks], prompts, reference, batch_size)
    tokens, mask = tokenize(model, prompts)
    scores = torch.zeros(len(hooks), d_mlp, dtype=torch.float64)
    base = torch.zeros(len(prompts))
    chunks = torch.arange(len(prompts)).split(batch_size)
    for rows in tqdm(chunks, desc="attribution", disable=not progress or len(chunks) < 4, leave=False):
        t, m = trim(tokens[rows], mask[rows])
        store: dict[str, torch.Tensor] = {}

        def keep(act: torch.Tensor, hook) -> torch.Tensor:
            if not act.requires_grad:  # frozen weights: make the first hooked layer a leaf
                act = act.detach().requires_grad_(True)
            store[hook.name] = act
            return act

        with torch.inference_mode(False), torch.enable_grad(), hooked(model, [(h, keep) for h in hooks]):
            vals = metric_values(met, last_logits(model, t, m), rows.to(t.device))
            grads = torch.autograd.grad(vals.sum(), [store[h] for h in hooks], allow_unused=True)
        base[rows] = vals.detach().float().cpu()
        width = t.shape[1]
        live = m[..., None]
        for i, (h, g) in enumerate(zip(hooks, grads)):
            if g is None:
                continue
            act = store[h].detach()
            if method == "zero":
                delta = -act
            else:
                repl = values.get(h, rows.repeat_interleave(d_mlp), units.repeat(len(rows)), width)
                delta = repl.to(act).reshape(len(rows), d_mlp, -1).transpose(1, 2) - act  # [rows, pos, d_mlp]
            scores[i] += (delta.float() * g.float() * live).sum((0, 1)).double().cpu()
    scores = (scores / len(prompts)).float()
    flat = {"decrease": scores, "increase": -scores, "magnitude": -scores.abs()}[by].flatten()
    order = flat.sort(stable=True).indices[:k]
    top = [(layer_list[int(i) // d_mlp], int(i) % d_mlp) for i in order]
    attribution = scores.flatten()[order].clone()
    ablation, rho = None, float("nan")
    if verify:
        jobs = [parse_neurons(model, [n]) for n in top]
        res = run_jobs(model, tokens, mask, jobs, values,
                       lambda logits, rows: {"metric": metric_values(met, logits, rows)},
                       batch_size=batch_size, progress=progress, desc="verifying")
        ablation = (res["metric"] - base).mean(1).clone()
        if k >= 2:
            from scipy.stats import spearmanr

            rho = float(spearmanr(attribution.numpy(), ablation.numpy())[0])
    return NeuronRanking(
        layers=tuple(layer_list), scores=scores, neurons=tuple(top), attribution=attribution,
        ablation=ablation, spearman=rho, baseline=float(base.mean()), metric_name=met.name,
        method=method, by=by, n_prompts=len(prompts),
    )


# --- where a neuron fires -----------------------------------------------------------------------


@dataclass(frozen=True)
class NeuronActivations:
    """The top-k activating token contexts of one neuron over a corpus, with its histogram.

    `context_acts[j, before]` is the j-th strongest activation (`values[j]`) on token
    `contexts[j][before]`; `example[j]` and `position[j]` say where it was (the position counts
    from the first token after `<bos>`).
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

    def __post_init__(self):
        k = len(self.values)
        if len(self.contexts) != k or self.context_acts.shape[0] != k or len(self.example) != k:
            raise ValueError(f"contexts, context_acts and example must have {k} rows, like values")
        if self.hist_edges.shape != self.hist_counts.shape:
            raise ValueError("hist_edges and hist_counts must have the same shape")

    def to_frame(self):
        """One row per top example: activation, token, context (top token in [brackets])."""
        import pandas as pd

        def text(ctx: tuple[str, ...]) -> str:
            return " ".join(f"[{t}]" if i == self.before else t for i, t in enumerate(ctx) if t)

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

    def _repr_html_(self) -> str:
        return (f"<b>NeuronActivations</b> L{self.layer}.N{self.index}: density {self.density:.3f}, mean "
                f"{self.mean:.3f} over {self.n_tokens} tokens" + self.to_frame().to_html())


def neuron_activations(
    model: HookedTransformer,
    prompts_or_corpus,
    layer: int,
    index: int,
    *,
    k: int = 20,
    batch_size: int = 32,
    limit: int | None = None,
    before: int = 8,
    after: int = 2,
    skip_bos: bool = True,
    progress: bool = True,
) -> NeuronActivations:
    """Where MLP neuron (layer, index) fires: its top-k token contexts over a corpus.

    The corpus (a list of prompts, any iterable of strings, a text file or folder, a Hugging Face
    dataset) is streamed in batches; each batch runs only up to `layer` and only the neuron's
    activation is kept, merged into a bounded top-k, so memory does not depend on corpus size.
    Texts longer than the context are cut.

    Args:
        layer, index: the neuron (`mlp_post` unit); negative layers count from the end.
        k: contexts kept. limit: stop after this many texts.
        before, after: context tokens shown around each top token.
        skip_bos: leave the `<bos>` position out (its activations are usually outliers).

    Example:
        >>> acts = interp.neuron_activations(model, interp.toy.corpus.documents(2000), 2, 17)
        >>> acts.plot()
    """
    from tqdm.auto import tqdm

    (target,) = parse_neurons(model, [(layer, index)])
    layer, index = resolve_layer(model, layer), int(index)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k={k!r} must be a positive int")
    top = StreamingTopK(1, k, before=before, after=after)
    total, count = 0.0, 0
    stream = batched(iter_texts(prompts_or_corpus, limit=limit), batch_size)
    for texts in tqdm(stream, desc=f"L{layer}.N{index}", disable=not progress, leave=False):
        tokens, mask = pad_rows(encode(model, texts, max_len=model.cfg.n_ctx), pad_id(model), device=model.cfg.device)
        acts = harvest(model, tokens, [target.hook], attention_mask=mask,
                       select=lambda a: a[..., index:index + 1])[target.hook]
        if skip_bos and model.cfg.default_prepend_bos:
            mask = mask.clone()
            mask[torch.arange(len(mask), device=mask.device), (mask == 0).sum(1)] = 0
        top.update(acts, tokens, mask)
        valid = acts[..., 0].float()[mask.bool()]
        total, count = total + float(valid.sum()), count + valid.numel()
    keep = torch.isfinite(top.values[0])
    ids = top.context_tokens[0][keep]
    decode = model.tokenizer.decode
    contexts = tuple(tuple("" if i == PAD else decode([i]) for i in row.tolist()) for row in ids)
    edges, counts = top.histogram(0)
    return NeuronActivations(
        layer=layer, index=index, values=top.values[0][keep].clone(), contexts=contexts,
        context_acts=top.context_acts[0][keep].clone(), example=top.example[0][keep].clone(),
        position=top.position[0][keep].clone(), before=before, hist_edges=edges, hist_counts=counts,
        density=float(top.density[0]), mean=total / max(count, 1), n_tokens=top.n_tokens,
        n_examples=top.n_examples,
    )
