"""Ranking neurons by attribution patching, then checking the top ones by real ablation.

Ablating every neuron one at a time costs one forward pass per neuron: 36,864 for GPT-2 small.
Attribution patching (Nanda, "Attribution Patching: Activation Patching At Industrial Scale",
2023; Syed, Rager and Conmy, "Attribution Patching Outperforms Automated Circuit Discovery",
2023) replaces that with a first-order Taylor estimate: the change in a metric M when an
activation a is replaced by a' is about (a' - a) · dM/da. One forward pass that keeps every
neuron's activation and one backward pass that gives every gradient score all neurons at once:
for zero ablation the score is (0 - a) · dM/da summed over positions (mean ablation uses the
reference mean for a', resample ablation a reference prompt's activation; the three ablation
types are in `interp.neurons.engine`), averaged over prompts, i.e. the predicted change in the
mean metric.

The estimate is exact where M is linear in the activation (a last-layer neuron read without a
final norm), and can be badly wrong where the network saturates (a neuron whose removal
crosses a GELU's knee, a softmax far from uniform). So `rank_neurons` does not stop at the
estimate: it ablates its top k for real, one neuron at a time (all k in batched passes), and
reports both numbers and their Spearman rank correlation, and a verdict: the ranking is
`reliable` when that correlation is at least `min_spearman` (0.5 by default) and at least
`min_sign_agreement` (0.7) of the top k moved the metric the way their score predicted;
otherwise it warns (`UnreliableRankingWarning`) and says so in its summary, its table and its
plot title. The verdict is only as good as its sample: it needs at least 3 verified neurons,
and with fewer (or `verify=False`) it is `None` (unknown). On the built-in model the estimate
agrees with ablation almost perfectly (Spearman about 0.99); on SmolLM2-135M it was measured at
0.22, with the top neuron predicted to lower the metric by 3.5 and raising it instead: on such
a model the attribution scores only suggest candidates, and the measured column is the result.
A neuron is an FFN key-value memory
(Geva et al. 2021): the ranking says which memories the behaviour reads; what each one stores
is then read with `interp.neuron_activations` and its output direction.

Example:
    >>> from interp.toy.corpus import agreement_prompts
    >>> ps = agreement_prompts("train", 100)
    >>> metric = interp.logit_diff(model, [p.correct[0] for p in ps], [p.wrong[0] for p in ps])
    >>> ranking = interp.rank_neurons(model, [p.prompt for p in ps], metric, k=10)
    >>> ranking.to_frame(); ranking.neurons[:3]
    >>> interp.ablate_neurons(model, [p.prompt for p in ps], list(ranking.neurons[:3]))
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import plotly.graph_objects as go
import torch
from jaxtyping import Float
from transformer_lens import HookedTransformer

from interp.core.checks import (
    check_choice,
    check_count,
    check_finite,
    check_flag,
    check_layers,
    check_model,
    check_prompts,
)
from interp.core.hooks import hook_name, hooked
from interp.core.readout import last_logits
from interp.core.results import Result, check_shape
from interp.core.tokens import maybe_chat, tokenize
from interp.neurons.engine import AblatedUnits, Values, parse_neurons, run_jobs, trim
from interp.neurons.metrics import Metric, as_metric, metric_values

RANK_BY = ("decrease", "increase", "magnitude")
#: Defaults of the reliability verdict (see the module docstring).
MIN_SPEARMAN = 0.5
MIN_SIGN_AGREEMENT = 0.7
MIN_VERIFIED = 3


class UnreliableRankingWarning(UserWarning):
    """Attribution disagreed with real ablation on the top neurons: the linear estimate failed."""


def verdict(attribution: torch.Tensor, ablation: torch.Tensor | None, spearman: float, *,
            min_spearman: float = MIN_SPEARMAN,
            min_sign_agreement: float = MIN_SIGN_AGREEMENT) -> tuple[bool | None, float, str]:
    """(reliable, sign agreement, reason): whether the linear estimate held on the verified neurons.

    Example:
        >>> verdict(torch.tensor([-3.0, -2.0, -1.0]), torch.tensor([-2.5, -1.0, -0.2]), 1.0)
        (True, 1.0, 'Spearman 1.00 >= 0.5 and 3/3 signs agree (>= 70%)')
    """
    if ablation is None:
        return None, float("nan"), "not verified (verify=False): reliability unknown"
    n = len(ablation)
    signs = float((torch.sign(attribution) == torch.sign(ablation)).float().mean()) if n else float("nan")
    agree = int(round(signs * n)) if n else 0
    if n < MIN_VERIFIED:
        return None, signs, f"only {n} neuron(s) verified (need {MIN_VERIFIED}): reliability unknown"
    rho_ok = spearman == spearman and spearman >= min_spearman  # NaN (a constant column) fails
    sign_ok = signs >= min_sign_agreement
    ok = rho_ok and sign_ok
    reason = (f"Spearman {spearman:.2f} {'>=' if rho_ok else 'below'} {min_spearman:g} and {agree}/{n} signs "
              f"agree ({'>=' if sign_ok else 'below'} {min_sign_agreement:.0%})")
    return ok, signs, reason


@dataclass(frozen=True, repr=False)
class NeuronRanking(Result):
    """Attribution scores for every neuron of the chosen layers, and the top k verified.

    `scores[i, n]` is the predicted change of the mean metric when neuron `n` of `layers[i]` is
    ablated; `attribution` and `ablation` are the predicted and the measured change for the top
    `neurons`; `spearman` is their rank correlation, `sign_agreement` the share of them whose
    measured change has the predicted sign. `reliable` is the verdict on the linear estimate
    (Spearman >= `min_spearman` and sign agreement >= `min_sign_agreement`; None when fewer than 3
    neurons were verified), and `reliability` says why.

    Example:
        >>> r = interp.rank_neurons(model, prompts, interp.token_logprob(model, "is"), k=5)
        >>> r.neurons[0], r.spearman, r.plot()
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
    reliable: bool | None = None
    sign_agreement: float = float("nan")
    reliability: str = ""

    def __post_init__(self) -> None:
        check_shape("scores", self.scores, (len(self.layers), None))
        check_shape("attribution", self.attribution, (len(self.neurons),))
        if self.ablation is not None:
            check_shape("ablation", self.ablation, (len(self.neurons),))
        self._freeze()

    @property
    def verdict(self) -> str:
        """`"reliable"`, `"UNRELIABLE"` or `"unverified"`, with the reason."""
        word = {True: "reliable", False: "UNRELIABLE", None: "unverified"}[self.reliable]
        return f"{word}: {self.reliability}" if self.reliability else word

    def to_frame(self) -> Any:
        """One row per top neuron: rank, layer, index, predicted and measured metric change, and
        whether the measured change has the predicted sign; the verdict is in `.attrs["verdict"]`."""
        import pandas as pd

        frame = pd.DataFrame({
            "rank": range(1, len(self.neurons) + 1),
            "layer": [n[0] for n in self.neurons],
            "neuron": [n[1] for n in self.neurons],
            "attribution": self.attribution.numpy(),
            "ablation": self.ablation.numpy() if self.ablation is not None else np.nan,
            "sign_agrees": (torch.sign(self.attribution) == torch.sign(self.ablation)).numpy()
            if self.ablation is not None else None,
        })
        frame.attrs["verdict"] = self.verdict
        return frame

    def __repr__(self) -> str:
        return self.summary()

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
                  f"(Spearman {self.spearman:.2f}; {self.verdict})",
            xaxis_title="attribution (predicted change in mean metric)",
            yaxis_title="ablation (measured change in mean metric)",
        )
        return fig

    def summary(self) -> str:
        """The metric, the layers scored, the clean baseline and how well attribution predicted ablation."""
        return (f"NeuronRanking for {self.metric_name} over layers {list(self.layers)} "
                f"({self.n_prompts} prompts, baseline {self.baseline:.3f}, Spearman {self.spearman:.2f}); "
                f"linear estimate {self.verdict}")


def mlp_layers(model: HookedTransformer, layers: int | Iterable[int] | None) -> list[int]:
    """Sorted, de-duplicated block indices of the MLP layers to score (`None`: all), each
    checked (negatives count from the end).

    Example:
        >>> mlp_layers(model, [-1, 0])
        [0, 2]
    """
    if not model.cfg.d_mlp:
        raise ValueError("this model has no MLP neurons (d_mlp is not set)")
    if layers is None:
        return list(range(model.cfg.n_layers))
    return sorted(set(check_layers(model, layers)))  # a layer named twice is scored once


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
    chat: bool | None = False,
    batch_size: int = 32,
    progress: bool = True,
    min_spearman: float = MIN_SPEARMAN,
    min_sign_agreement: float = MIN_SIGN_AGREEMENT,
) -> NeuronRanking:
    """Score every MLP neuron of `layers` for `metric` by attribution, then verify the top k.

    Args:
        model: any `HookedTransformer`.
        prompts: the prompts the metric is read on (its last position).
        metric: `logit_diff`, `token_logprob`, or a callable `f(logits)` / `f(logits, rows)` on the
            last-position logits `[batch, vocab]` returning one value per prompt.
        layers: layers to score (default all); a layer named twice is scored once.
        k: how many top neurons to keep and verify by real ablation.
        method: the ablation the scores predict: `"zero"`, `"mean"` or `"resample"`.
        reference: reference prompts for mean / resample ablation.
        by: `"decrease"` (default): neurons whose ablation is predicted to lower the metric most;
            `"increase"`; or `"magnitude"` of the predicted change.
        verify: ablate the top k one at a time and report the measured change.
        chat: wrap the prompts (and the reference) in the model's chat template; `False`
            (default) reads the text as given, `None` lets the model's profile decide.
        batch_size: prompts per forward/backward pass (one pass each when all fit).
        min_spearman, min_sign_agreement: the reliability verdict's thresholds: the ranking is
            `reliable` when the top k's predicted and measured changes have a Spearman rank
            correlation >= `min_spearman` (default 0.5) and at least `min_sign_agreement`
            (default 0.7) of them changed the metric in the predicted direction. Needs k >= 3
            and `verify=True`; otherwise `reliable` is None.

    Returns:
        A `NeuronRanking`; `.neurons` feeds straight into `interp.ablate_neurons`.

    Warns:
        UnreliableRankingWarning: the verified neurons contradict the linear estimate (the
            ranking is then a list of candidates, and `.ablation` is the measurement to trust).

    Example:
        >>> r = interp.rank_neurons(model, prompts, interp.logit_diff(model, "is", "are"), k=10)
        >>> interp.ablate_neurons(model, prompts, list(r.neurons))
    """
    from tqdm.auto import tqdm

    check_model(model)
    prompts = check_prompts(prompts)
    if reference is not None and not isinstance(reference, str):
        reference = check_prompts(reference, "reference")
    check_choice(by, "by", RANK_BY)
    check_count(batch_size, "batch_size")
    check_flag(chat, "chat", none=True)
    min_spearman = check_finite(min_spearman, "min_spearman")
    min_sign_agreement = check_finite(min_sign_agreement, "min_sign_agreement")
    if not -1 <= min_spearman <= 1 or not 0 <= min_sign_agreement <= 1:
        raise ValueError(f"min_spearman is {min_spearman!r} and min_sign_agreement {min_sign_agreement!r}: "
                         "expected a correlation in [-1, 1] and a share in [0, 1]")
    prompts = maybe_chat(model, prompts, chat)
    if reference is not None and not isinstance(reference, str):
        reference = maybe_chat(model, list(reference), chat)
    met = as_metric(metric, len(prompts))
    layer_list = mlp_layers(model, layers)
    d_mlp = model.cfg.d_mlp
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= len(layer_list) * d_mlp:
        n = len(layer_list)
        raise ValueError(f"k={k!r} must be an int in [1, {n * d_mlp}] for {n} layer(s)")
    hooks = [hook_name(model, "mlp_post", layer) for layer in layer_list]
    units = torch.arange(d_mlp)
    values = Values(model, method, [AblatedUnits(h, units, h) for h in hooks], prompts, reference, batch_size)
    tokens, mask = tokenize(model, prompts)
    scores = torch.zeros(len(hooks), d_mlp, dtype=torch.float64)
    base = torch.zeros(len(prompts))
    chunks = torch.arange(len(prompts)).split(batch_size)
    for rows in tqdm(chunks, desc="attribution", disable=not progress or len(chunks) < 4, leave=False):
        t, m = trim(tokens[rows], mask[rows])
        store: dict[str, torch.Tensor] = {}

        def keeper(name: str):  # keyed by the name asked for (a bridge's alias names one point)
            def keep(act: torch.Tensor, hook) -> torch.Tensor:
                if not act.requires_grad:  # frozen weights: make the first hooked layer a leaf
                    act = act.detach().requires_grad_(True)
                store[name] = act
                return act

            return keep

        with torch.inference_mode(False), torch.enable_grad(), hooked(model, [(h, keeper(h)) for h in hooks]):
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

            with warnings.catch_warnings():  # a constant column: NaN, judged unreliable below
                warnings.simplefilter("ignore")
                rho = float(spearmanr(attribution.numpy(), ablation.numpy())[0])
    reliable, signs, reason = verdict(attribution, ablation, rho, min_spearman=min_spearman,
                                      min_sign_agreement=min_sign_agreement)
    if reliable is False:
        warnings.warn(
            f"rank_neurons: the linear (attribution) estimate is unreliable for {met.name} on this model: "
            f"{reason} on the top {k} neurons verified by {method} ablation; read .ablation (measured), "
            "not .attribution", UnreliableRankingWarning, stacklevel=2,
        )
    return NeuronRanking(
        layers=tuple(layer_list), scores=scores, neurons=tuple(top), attribution=attribution,
        ablation=ablation, spearman=rho, baseline=float(base.mean()), metric_name=met.name,
        method=method, by=by, n_prompts=len(prompts), reliable=reliable, sign_agreement=signs,
        reliability=reason,
    )
