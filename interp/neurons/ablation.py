"""Neuron ablation: what one MLP neuron, or a group, does to the model's next-token output.

To ask what a unit does, remove it and see what changes (Meyes et al., "Ablation Studies in
Artificial Neural Networks", 2019). An MLP neuron is one key-value memory of its layer (Geva et
al., "Transformer Feed-Forward Layers Are Key-Value Memories", 2021): its activation says how
strongly its key matched, its output weights write a value that promotes some tokens (Geva et
al. 2022). Ablating it removes that write, and the effect on chosen tokens' log-probabilities
says what it was for. The three ablation types (zero, mean, resample: what the removed value is
replaced by) and the batched engine live in `interp.neurons.engine`.

`ablate_neurons` runs the prompts once clean and once ablated (batched, left-padded, reading
only the last position's logits) and reports, per prompt and per target token, probabilities
and log-probabilities before and after, the top-1 token before and after, and across prompts
the mean change in log-probability with a 95% confidence interval and a paired test (paired
t-test, or the Wilcoxon signed-rank test). One prompt is an anecdote; the significance across
prompts is what says a neuron matters. An optional metric (`logit_diff`, `token_logprob`, or any
callable on the last-position logits; `interp.neurons.metrics`) is reported the same way.

Neurons worth ablating are found with `interp.rank_neurons` (attribution patching,
`interp.neurons.attribution`) and read with `interp.neuron_activations` (where a neuron fires,
`interp.neurons.activations`).

References: Meyes et al. 2019; Geva et al. 2021, 2022; Wang et al., "Interpretability in the
Wild" (mean ablation), 2022; Chan et al., "Causal Scrubbing" (resample ablation), 2022.

Example:
    >>> model = interp.load_model("toy")
    >>> res = interp.ablate_neurons(model, ["the key to the cabinets"], [(2, 17), (3, 5)],
    ...                             targets=["is", "are"])
    >>> res.to_frame()
    >>> res.plot()
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import plotly.graph_objects as go
import torch
from jaxtyping import Float, Int
from transformer_lens import HookedTransformer

from interp.core.checks import (MISSING, check_choice, check_count, check_flag, check_model, check_number,
                                 check_prompts, no_extra, renamed)
from interp.core.results import Result, check_shape
from interp.core.tokens import format_chat, token_id, tokenize, use_chat
from interp.neurons.engine import NeuronSpec, Values, parse_neurons, run_jobs
from interp.neurons.metrics import Metric, Token, as_metric, metric_values

TESTS = ("ttest", "wilcoxon")


def paired_stats(
    before: Float[torch.Tensor, "n t"], after: Float[torch.Tensor, "n t"], test: str
) -> tuple[torch.Tensor, ...]:
    """Per column of `[n, t]` paired samples: mean of after - before, 95% t-interval, p-value.

    `test` is `"ttest"` (paired t-test) or `"wilcoxon"` (signed-rank); a column with no change at
    all has p = 1, one that changes by the same nonzero amount everywhere p = 0 (t-test).

    Example:
        >>> mean, lo, hi, p = paired_stats(torch.zeros(4, 1), torch.ones(4, 1), "ttest")
    """
    from scipy import stats

    diff = (after - before).double().numpy()
    n = diff.shape[0]
    mean = diff.mean(0)
    lo, hi, p = (np.full(diff.shape[1], np.nan) for _ in range(3))
    if n >= 2:
        half = stats.t.ppf(0.975, n - 1) * diff.std(0, ddof=1) / np.sqrt(n)
        lo, hi = mean - half, mean + half
        for j in range(diff.shape[1]):
            d = diff[:, j]
            if np.all(d == 0):
                p[j] = 1.0
            elif test == "ttest":
                p[j] = 0.0 if np.all(d == d[0]) else stats.ttest_rel(after[:, j].double().numpy(),
                                                                      before[:, j].double().numpy()).pvalue
            else:
                p[j] = stats.wilcoxon(d).pvalue
    return tuple(torch.tensor(x, dtype=torch.float32) for x in (mean, lo, hi, p))


@dataclass(frozen=True)
class AblationResult(Result):
    """Next-token effect of an ablation, per prompt and per target token.

    `tokens` are the target tokens reported (`targets=` of `ablate_neurons`). Log-probabilities
    are `[n_prompts, n_tokens]`; `mean_change`, `ci_low`, `ci_high`, `p_value` are per token, for
    the change in log-probability (after - before) across prompts.

    Example:
        >>> res = interp.ablate_neurons(model, prompts, [(1, 7)], targets=["is", "are"])
        >>> res.mean_change, res.significant, res.to_frame(per_prompt=True)
    """

    prompts: tuple[str, ...]
    neurons: tuple[str, ...]
    method: str
    tokens: tuple[str, ...]
    token_ids: Int[torch.Tensor, "tokens"]
    logprob_before: Float[torch.Tensor, "prompts tokens"]
    logprob_after: Float[torch.Tensor, "prompts tokens"]
    top1_before: tuple[str, ...]
    top1_after: tuple[str, ...]
    mean_change: Float[torch.Tensor, "tokens"]
    ci_low: Float[torch.Tensor, "tokens"]
    ci_high: Float[torch.Tensor, "tokens"]
    p_value: Float[torch.Tensor, "tokens"]
    test: str = "ttest"
    alpha: float = 0.05
    metric_name: str | None = None
    metric_before: Float[torch.Tensor, "prompts"] | None = None
    metric_after: Float[torch.Tensor, "prompts"] | None = None
    metric_stats: tuple[float, float, float, float] | None = None  # mean change, ci low, ci high, p
    reference_pairs: Int[torch.Tensor, "prompts"] | None = None

    def __post_init__(self) -> None:
        n, t = len(self.prompts), len(self.tokens)
        for name in ("logprob_before", "logprob_after"):
            check_shape(name, getattr(self, name), (n, t))
        for name in ("token_ids", "mean_change", "ci_low", "ci_high", "p_value"):
            check_shape(name, getattr(self, name), (t,))
        if len(self.top1_before) != n or len(self.top1_after) != n:
            raise ValueError(f"top-1 tokens must have one entry per prompt ({n})")
        for name in ("metric_before", "metric_after", "reference_pairs"):
            if getattr(self, name) is not None:
                check_shape(name, getattr(self, name), (n,))
        self._freeze()

    @property
    def prob_before(self) -> Float[torch.Tensor, "prompts tokens"]:
        return self.logprob_before.exp()

    @property
    def prob_after(self) -> Float[torch.Tensor, "prompts tokens"]:
        return self.logprob_after.exp()

    @property
    def significant(self) -> torch.Tensor:
        """Per token: p < alpha / n_tokens (Bonferroni)."""
        return self.p_value < self.alpha / max(len(self.tokens), 1)

    @property
    def top1_changed(self) -> float:
        """Fraction of prompts whose top-1 token changed."""
        return float(np.mean([a != b for a, b in zip(self.top1_before, self.top1_after)]))

    @property
    def metric_change(self) -> float | None:
        """Mean change of the metric across prompts (after - before), when a metric was given."""
        return None if self.metric_stats is None else self.metric_stats[0]

    def to_frame(self, per_prompt: bool = False) -> Any:
        """Per token across prompts (default), or one row per (prompt, token) with `per_prompt`."""
        import pandas as pd

        if per_prompt:
            n, t = len(self.prompts), len(self.tokens)
            cols = {
                "prompt": np.repeat(self.prompts, t), "token": np.tile(self.tokens, n),
                "prob_before": self.prob_before.flatten().numpy(),
                "prob_after": self.prob_after.flatten().numpy(),
                "logprob_before": self.logprob_before.flatten().numpy(),
                "logprob_after": self.logprob_after.flatten().numpy(),
                "top1_before": np.repeat(self.top1_before, t), "top1_after": np.repeat(self.top1_after, t),
            }
            if self.metric_before is not None:
                cols["metric_before"] = np.repeat(self.metric_before.numpy(), t)
                cols["metric_after"] = np.repeat(self.metric_after.numpy(), t)
            return pd.DataFrame(cols)
        return pd.DataFrame({
            "token": list(self.tokens),
            "prob_before": self.prob_before.mean(0).numpy(),
            "prob_after": self.prob_after.mean(0).numpy(),
            "logprob_before": self.logprob_before.mean(0).numpy(),
            "logprob_after": self.logprob_after.mean(0).numpy(),
            "mean_change": self.mean_change.numpy(),
            "ci_low": self.ci_low.numpy(),
            "ci_high": self.ci_high.numpy(),
            "p_value": self.p_value.numpy(),
            "significant": self.significant.numpy(),
        })

    def plot(self) -> go.Figure:
        """Mean token probabilities before and after (log scale); * marks a significant change."""
        before, after = self.prob_before.mean(0).numpy(), self.prob_after.mean(0).numpy()
        labels = [repr(t) for t in self.tokens]
        stats = zip(*(x.tolist() for x in (self.mean_change, self.ci_low, self.ci_high, self.p_value)))
        hover = [f"Δlog p {m:+.3f} [{lo:+.3f}, {hi:+.3f}], p={p:.2g}" for m, lo, hi, p in stats]
        fig = go.Figure([
            go.Bar(name="before", x=labels, y=before, marker_color="#9aa5b1", hovertext=hover),
            go.Bar(name=f"after ({self.method} ablation)", x=labels, y=after, marker_color="#d9480f",
                   hovertext=hover),
        ])
        for x, sig, top in zip(labels, self.significant.tolist(), np.maximum(before, after)):
            if sig:
                fig.add_annotation(x=x, y=float(np.log10(max(top, 1e-12))), text="*", showarrow=False,
                                   yshift=12, font=dict(size=18))
        name = ", ".join(self.neurons[:6]) + (" ..." if len(self.neurons) > 6 else "")
        fig.update_layout(
            barmode="group", yaxis_type="log", yaxis_title="probability (mean over prompts)",
            title=f"Ablating {name} ({len(self.prompts)} prompts; * p < {self.alpha:g}/{len(self.tokens)}, "
                  f"{'paired t-test' if self.test == 'ttest' else 'Wilcoxon signed-rank'})",
        )
        return fig

    def summary(self) -> str:
        """What was ablated, the metric's change (if any), and how often the top-1 token moved."""
        more = " ..." if len(self.neurons) > 8 else ""
        head = f"AblationResult: {self.method} ablation of {', '.join(self.neurons[:8])}{more}"
        if self.metric_stats is not None:
            m, lo, hi, p = self.metric_stats
            head += f"; {self.metric_name}: {m:+.3f} [{lo:+.3f}, {hi:+.3f}], p={p:.2g}"
        return head + f"; top-1 changed on {self.top1_changed:.0%} of {len(self.prompts)} prompts"


def ablate_neurons(
    model: HookedTransformer,
    prompts: str | Sequence[str],
    neurons: NeuronSpec | Sequence[NeuronSpec],
    *,
    method: Literal["zero", "mean", "resample"] = "zero",
    reference: Sequence[str] | None = None,
    targets: Token | Sequence[Token] | None = None,
    metric: Metric | Callable | None = None,
    n_tokens: int = 5,
    test: Literal["ttest", "wilcoxon"] = "ttest",
    alpha: float = 0.05,
    chat: bool | None = False,
    batch_size: int = 32,
    progress: bool = True,
    **deprecated: Any,
) -> AblationResult:
    """Ablate MLP neurons (or whole MLP / attention outputs) and measure the next-token effect.

    Args:
        model: any `HookedTransformer`.
        prompts: one prompt or a list; the next token after each is what is measured.
        neurons: `(layer, index)` pairs of `mlp_post` units, and/or `("mlp_out", layer)` /
            `("attn_out", layer)` for a whole layer's output. Negative layers count from the end.
        method: `"zero"`, `"mean"` (reference mean, cached) or `"resample"` (from another
            reference prompt; see `interp.neurons.engine` for the pairing rule).
        reference: prompts for mean/resample ablation (required by those).
        targets: output tokens to report (strings or ids); default: the `n_tokens` with the
            highest mean clean probability. (Formerly `tokens=`, which still works with a
            `DeprecationWarning`.)
        metric: optional per-prompt metric on the last logits (`logit_diff`, `token_logprob`, or
            a callable `f(logits)` / `f(logits, rows)` returning `[batch]`).
        n_tokens: how many top tokens to report when `targets` is not given.
        test: paired significance test across prompts: `"ttest"` (paired t-test, default) or
            `"wilcoxon"` (signed-rank). Confidence intervals are t-based 95% intervals.
        alpha: significance level; a token is marked significant when p < alpha / n_tokens
            (Bonferroni over the reported tokens).
        chat: wrap the prompts (and the reference) in the model's chat template; `False`
            (default) measures the text as given, `None` lets the model's profile decide.
        batch_size: rows per forward pass (clean and ablated rows share batches).
        progress: show a progress bar on long runs.

    Returns:
        An `AblationResult`; `.to_frame()`, `.to_frame(per_prompt=True)`, `.plot()`.

    Raises:
        ValueError: no neurons, an index or layer out of range, unknown method or test, missing
            reference for mean/resample ablation, a metric of the wrong shape.
        KeyError: a token not in the vocabulary.

    Example:
        >>> res = interp.ablate_neurons(model, prompts, [(1, 7)], method="mean", reference=other,
        ...                             targets=["is", "are"])
        >>> res.to_frame()
    """
    legacy = renamed("tokens", "targets", deprecated, "ablate_neurons")
    no_extra(deprecated, "ablate_neurons")
    if legacy is not MISSING and targets is not None:
        raise TypeError("ablate_neurons() got both targets= and its old name tokens=; pass targets= only")
    targets = targets if legacy is MISSING else legacy
    check_model(model)
    prompts = check_prompts(prompts)
    if reference is not None and not isinstance(reference, str):
        reference = check_prompts(reference, "reference")
    check_choice(test, "test", TESTS)
    check_number(alpha, "alpha", minimum=0, maximum=1, open_low=True, open_high=True)
    check_count(n_tokens, "n_tokens", maximum=model.cfg.d_vocab)
    check_count(batch_size, "batch_size")
    check_flag(chat, "chat", none=True)
    if use_chat(model, chat):
        prompts = format_chat(model, prompts)
        if reference is not None and not isinstance(reference, str):
            reference = format_chat(model, list(reference))
    units = parse_neurons(model, neurons)
    met = as_metric(metric, len(prompts)) if metric is not None else None
    targets = [targets] if isinstance(targets, (str, numbers.Integral)) else targets
    chosen = None if targets is None else torch.tensor([token_id(model, t) for t in targets]).long()
    if chosen is not None and len(chosen) == 0:
        raise ValueError("targets is an empty list: give at least one token, or None for the top tokens")
    toks, mask = tokenize(model, prompts)
    values = Values(model, method, units, prompts, reference, batch_size)

    def reduce_at(cols: torch.Tensor | None):  # full log-probs only for a clean pass that picks tokens
        def reduce(logits: torch.Tensor, rows: torch.Tensor) -> dict[str, torch.Tensor]:
            lp = torch.log_softmax(logits.float(), -1)
            out = {"top1": lp.argmax(-1), "lp": lp if cols is None else lp[:, cols.to(lp.device)]}
            if met is not None:
                out["metric"] = metric_values(met, logits, rows)
            return out
        return reduce

    run = dict(batch_size=batch_size, progress=progress)
    if chosen is None:  # clean pass first, to pick the top tokens; then the ablated pass
        res = run_jobs(model, toks, mask, [[]], values, reduce_at(None), **run)
        chosen = res["lp"][0].exp().mean(0).topk(min(n_tokens, res["lp"].shape[-1])).indices
        res["lp"] = res["lp"][:, :, chosen]
        ablated = run_jobs(model, toks, mask, [units], values, reduce_at(chosen), **run)
        res = {k: torch.cat([res[k], ablated[k]]) for k in ablated}
    else:  # both in the same batched run
        res = run_jobs(model, toks, mask, [[], units], values, reduce_at(chosen), **run)
    top1 = res["top1"].long()
    decode = (lambda i: model.tokenizer.decode([int(i)])) if model.tokenizer is not None else str
    before, after = res["lp"][0].clone(), res["lp"][1].clone()
    stats = paired_stats(before, after, test)
    mstats = paired_stats(res["metric"][0][:, None], res["metric"][1][:, None], test) if met else None
    return AblationResult(
        prompts=tuple(prompts), neurons=tuple(u.label for u in units), method=method,
        tokens=tuple(decode(i) for i in chosen), token_ids=chosen.clone(), logprob_before=before,
        logprob_after=after, top1_before=tuple(decode(i) for i in top1[0]),
        top1_after=tuple(decode(i) for i in top1[1]), mean_change=stats[0], ci_low=stats[1],
        ci_high=stats[2], p_value=stats[3], test=test, alpha=alpha, metric_name=met.name if met else None,
        metric_before=res["metric"][0].clone() if met else None,
        metric_after=res["metric"][1].clone() if met else None,
        metric_stats=tuple(float(s[0]) for s in mstats) if mstats else None,
        reference_pairs=values.pairs,
    )
