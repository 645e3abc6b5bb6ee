"""Neuron ablation: what one MLP neuron, or a group, does to the model's next-token output.

To ask what a unit does, remove it and see what changes. A neuron here is one unit of an MLP's
post-activation (`blocks.L.mlp.hook_post`), named by its (layer, index); a whole layer's MLP or
attention output (`("mlp_out", L)`, `("attn_out", L)`) can be removed the same way. Three ways
to "remove" it, from bluntest to most on-distribution:

- **zero**: set the activation to 0 at every position;
- **mean**: set it to its mean over a reference prompt set (all real token positions), so the
  rest of the network still sees a typical value (cached on disk per model and reference set);
- **resample**: set it, position by position, to its value on another reference prompt
  (Chan et al., "Causal Scrubbing", 2022). Pairing rule: prompt `i` takes the activations of
  reference prompt `(i + 1) mod R`, skipping forward past any reference whose text is the
  same as prompt `i`, so passing the prompts themselves as the reference never gives a prompt
  its own activations. Sequences are aligned at their last token; where the reference prompt
  is shorter, the reference mean fills in.

`ablate_neurons` runs the prompts once clean and once ablated (batched, left-padded, reading
only the last position's logits) and reports, per prompt and per chosen token, probabilities and
log-probabilities before and after, the top-1 token before and after, and across prompts the
mean change in log-probability with a 95% confidence interval and a paired test (paired
t-test, or the Wilcoxon signed-rank test, with p-values). An optional metric (`logit_diff`,
`token_logprob`, or any callable on the last-position logits) is reported the same way.

Neurons worth ablating are found with `interp.rank_neurons` (attribution patching) and
inspected with `interp.neuron_activations` (where a neuron fires), both in `interp.neurons.attribution`.

References: Meyes et al., "Ablation Studies in Artificial Neural Networks", 2019; Wang et al.,
"Interpretability in the Wild" (mean ablation), 2022; Chan et al., "Causal Scrubbing", 2022.

Example:
    >>> model = interp.load_model("toy")
    >>> res = interp.ablate_neurons(model, ["the key to the cabinets"], [(2, 17), (3, 5)],
    ...                             tokens=["is", "are"])
    >>> res.to_frame()
    >>> res.plot()
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import plotly.graph_objects as go
import torch
from jaxtyping import Float, Int
from transformer_lens import HookedTransformer

from interp.core.cache import cached
from interp.core.hooks import harvest, hook_name, hooked, resolve_layer
from interp.core.readout import last_logits
from interp.core.tokens import token_id, tokenize

METHODS = ("zero", "mean", "resample")
TESTS = ("ttest", "wilcoxon")
LAYER_SITES = ("mlp_out", "attn_out")
Token = str | int
NeuronSpec = tuple[int, int] | tuple[str, int]


# --- metrics ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """A next-token metric: one number per prompt from the last position's logits.

    `fn(logits, rows)` gets `logits` `[batch, vocab]` and `rows`, the indices of these prompts in
    the caller's prompt list (so per-prompt targets work in any batching).
    """

    name: str
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = field(repr=False)
    n_prompts: int | None = None  # per-prompt metrics: how many prompts they were built for

    def __call__(self, logits: Float[torch.Tensor, "batch vocab"], rows: Int[torch.Tensor, "batch"]):
        return self.fn(logits, rows)


def _token_column(
    model: HookedTransformer, tokens: Token | Sequence[Token], what: str
) -> tuple[torch.Tensor, str]:
    if isinstance(tokens, (str, int)):
        tid = token_id(model, tokens)
        return torch.tensor([tid]), model.tokenizer.decode([tid]).strip() if model.tokenizer else str(tid)
    tokens = list(tokens)
    if not tokens:
        raise ValueError(f"{what} is an empty list: give one token, or one token per prompt")
    ids = torch.tensor([token_id(model, t) for t in tokens])
    return ids, f"{what} per prompt"


def _pick(ids: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    if len(ids) == 1:
        return ids.expand(len(rows)).to(rows.device)
    if int(rows.max()) >= len(ids):
        raise ValueError(f"metric built for {len(ids)} prompts was called on prompt {int(rows.max())}")
    return ids.to(rows.device)[rows]


def logit_diff(
    model: HookedTransformer, good: Token | Sequence[Token], bad: Token | Sequence[Token]
) -> Metric:
    """Logit of `good` minus logit of `bad` at the last position.

    Each of `good`, `bad` is one token for every prompt, or a list with one token per prompt.

    Raises:
        KeyError: a token is not in the vocabulary.

    Example:
        >>> m = interp.logit_diff(model, [p.correct[0] for p in ps], [p.wrong[0] for p in ps])
    """
    g, gname = _token_column(model, good, "good")
    b, bname = _token_column(model, bad, "bad")
    sizes = {len(x) for x in (g, b) if len(x) > 1}
    if len(sizes) > 1:
        raise ValueError(f"good has {len(g)} tokens and bad has {len(b)}: per-prompt lists must match")

    def fn(logits: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        ar = torch.arange(len(rows), device=logits.device)
        return logits[ar, _pick(g, rows).to(logits.device)] - logits[ar, _pick(b, rows).to(logits.device)]

    return Metric(f"logit({gname}) - logit({bname})", fn, sizes.pop() if sizes else None)


def token_logprob(model: HookedTransformer, token: Token | Sequence[Token]) -> Metric:
    """Log-probability of `token` (one for all prompts, or one per prompt) at the last position.

    Example:
        >>> m = interp.token_logprob(model, "paris")
    """
    t, tname = _token_column(model, token, "token")

    def fn(logits: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        lp = torch.log_softmax(logits.float(), -1)
        return lp[torch.arange(len(rows), device=lp.device), _pick(t, rows).to(lp.device)]

    return Metric(f"log p({tname})", fn, len(t) if len(t) > 1 else None)


def as_metric(metric: Metric | Callable, n_prompts: int) -> Metric:
    """Wrap a plain callable `f(logits)` or `f(logits, rows)` as a `Metric`, and check its size."""
    if not isinstance(metric, Metric):
        if not callable(metric):
            raise ValueError(f"metric {metric!r} is not callable: expected f(logits) or f(logits, rows)")
        try:
            params = [
                p for p in inspect.signature(metric).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
            ]
            two = len(params) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)
        except (TypeError, ValueError):
            two = True
        fn = metric if two else (lambda logits, rows, _f=metric: _f(logits))
        metric = Metric(getattr(metric, "__name__", "metric"), fn)
    if metric.n_prompts is not None and metric.n_prompts != n_prompts:
        raise ValueError(
            f"metric {metric.name!r} was built for {metric.n_prompts} prompts, got {n_prompts} prompts"
        )
    return metric


def metric_values(metric: Metric, logits: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Call a metric and check it returns one value per prompt."""
    out = metric(logits, rows)
    if not isinstance(out, torch.Tensor) or out.shape != (len(rows),):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"metric {metric.name!r} returned {shape}; expected one value per prompt: ({len(rows)},)"
        )
    return out


# --- targets and ablation values ----------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One ablated unit set: a hook and the unit indices at it (all units for a whole layer)."""

    hook: str
    units: torch.Tensor
    label: str


def parse_neurons(model: HookedTransformer, neurons: NeuronSpec | Sequence[NeuronSpec]) -> list[Target]:
    """Check (layer, index) neuron pairs and ("mlp_out" | "attn_out", layer) whole-layer entries."""
    if isinstance(neurons, tuple) and len(neurons) == 2 and not isinstance(neurons[0], (tuple, list)):
        neurons = [neurons]
    neurons = list(neurons)
    if not neurons:
        raise ValueError("no neurons given: expected (layer, index) pairs or ('mlp_out'|'attn_out', layer)")
    targets: dict[tuple[str, int], Target] = {}
    for spec in neurons:
        if not isinstance(spec, (tuple, list)) or len(spec) != 2:
            raise ValueError(
                f"neuron {spec!r} must be a (layer, index) pair or ('mlp_out'|'attn_out', layer)"
            )
        a, b = spec
        if isinstance(a, str):
            if a not in LAYER_SITES:
                raise ValueError(f"whole-layer site {a!r} must be one of {LAYER_SITES}")
            name = hook_name(model, a, b)
            t = Target(name, torch.arange(model.cfg.d_model), f"{a} L{resolve_layer(model, b)}")
            targets[(name, -1)] = t
            continue
        layer = resolve_layer(model, a)
        d_mlp = model.cfg.d_mlp
        if not d_mlp:
            raise ValueError("this model has no MLP neurons (d_mlp is not set)")
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or not 0 <= int(b) < d_mlp:
            raise ValueError(f"neuron index {b!r} is out of range for layer {layer}: d_mlp is {d_mlp}, "
                             f"expected 0..{d_mlp - 1}")
        name = hook_name(model, "mlp_post", layer)
        targets[(name, int(b))] = Target(name, torch.tensor([int(b)]), f"L{layer}.N{int(b)}")
    return list(targets.values())


def _digest(prompts: Sequence[str]) -> str:
    return hashlib.sha256("\x1e".join(prompts).encode()).hexdigest()[:24]


def _masked_mean_and_acts(model, tokens, mask, hooks, keep: dict[str, torch.Tensor] | None, batch_size):
    """One batched pass over the reference set: per hook the mean over real positions, and, for
    hooks in `keep`, the activations of those units `[R, pos, units]` (padding set to the mean)."""
    sums = {h: 0.0 for h in hooks}
    kept: dict[str, list[torch.Tensor]] = {h: [] for h in (keep or {})}
    n = mask.sum()
    for start in range(0, len(tokens), batch_size):
        t, m = tokens[start:start + batch_size], mask[start:start + batch_size]
        acts = harvest(model, t, hooks, attention_mask=m)
        for h in hooks:
            a = acts[h].float()
            sums[h] = sums[h] + (a * m[..., None]).sum((0, 1))
            if h in kept:
                kept[h].append(a[..., keep[h].to(a.device)])
    means = {h: (sums[h] / n).cpu() for h in hooks}
    out = {}
    for h, parts in kept.items():
        a = torch.cat(parts).cpu()
        pad = ~mask.bool().cpu()
        a[pad] = means[h][keep[h]].expand(int(pad.sum()), -1)
        out[h] = a
    return means, out


def reference_means(model: HookedTransformer, reference: Sequence[str], hooks: Sequence[str],
                    *, batch_size: int = 32) -> dict[str, torch.Tensor]:
    """Mean activation per unit at each hook over the reference prompts' real positions (cached).

    Example:
        >>> reference_means(model, prompts, ["blocks.1.mlp.hook_post"])["blocks.1.mlp.hook_post"]
    """
    tokens, mask = tokenize(model, list(reference))
    digest = _digest(list(reference))
    computed: dict[str, torch.Tensor] = {}

    def compute(h: str) -> dict[str, torch.Tensor]:
        if not computed:  # first miss: compute every hook in one pass
            computed.update(_masked_mean_and_acts(model, tokens, mask, list(hooks), None, batch_size)[0])
        return {"mean": computed[h]}

    return {h: cached(model, "neuron_means", {"hook": h, "reference": digest, "n": len(reference)},
                      lambda h=h: compute(h))["mean"] for h in hooks}


def resample_pairs(prompts: Sequence[str], reference: Sequence[str]) -> torch.Tensor:
    """The reference row each prompt takes its activations from: `(i + 1) mod R`, skipping
    forward past references whose text equals prompt `i`."""
    r = len(reference)
    out = []
    for i, p in enumerate(prompts):
        for step in range(1, r + 1):
            j = (i + step) % r
            if reference[j] != p:
                out.append(j)
                break
        else:
            raise ValueError(f"resample ablation needs a reference prompt other than prompt {i} ({p!r}); "
                             "every reference prompt has the same text")
    return torch.tensor(out)


class Values:
    """What each ablated unit is set to, for a method: 0, the reference mean, or a resampled
    reference activation aligned at the last token."""

    def __init__(self, model, method: str, targets: Sequence[Target], prompts: Sequence[str],
                 reference: Sequence[str] | None, batch_size: int):
        if method not in METHODS:
            raise ValueError(f"unknown ablation method {method!r}; expected one of {METHODS}")
        self.method = method
        self.means: dict[str, torch.Tensor] = {}
        self.acts: dict[str, torch.Tensor] = {}
        self.col: dict[str, torch.Tensor] = {}
        self.pairs: torch.Tensor | None = None
        if method == "zero":
            return
        if reference is None or isinstance(reference, str) or len(reference) == 0:
            raise ValueError(f"method={method!r} needs a reference prompt set (reference=[...], non-empty); "
                             f"got {reference!r}")
        reference = list(reference)
        hooks = sorted({t.hook for t in targets})
        if method == "mean":
            self.means = reference_means(model, reference, hooks, batch_size=batch_size)
            return
        units = {h: torch.unique(torch.cat([t.units for t in targets if t.hook == h])) for h in hooks}
        tokens, mask = tokenize(model, reference)
        self.means, self.acts = _masked_mean_and_acts(model, tokens, mask, hooks, units, batch_size)
        for h, u in units.items():
            col = torch.full((int(u.max()) + 1,), -1, dtype=torch.long)
            col[u] = torch.arange(len(u))
            self.col[h] = col
            self.means[h] = self.means[h][u]  # indexed by column from here on
        self.pairs = resample_pairs(prompts, reference)

    def get(self, hook: str, prompt_rows: torch.Tensor, units: torch.Tensor, width: int) -> torch.Tensor:
        """Replacement values `[m, 1]` (constant over positions) or `[m, width]` for paired
        (prompt row, unit) entries."""
        if self.method == "zero":
            return torch.zeros(len(units), 1)
        if self.method == "mean":
            return self.means[hook][units][:, None]
        cols = self.col[hook][units]
        ref = self.acts[hook][self.pairs[prompt_rows], :, cols]  # [m, ref_pos]
        if ref.shape[1] >= width:
            return ref[:, ref.shape[1] - width:]
        fill = self.means[hook][cols][:, None].expand(-1, width - ref.shape[1])
        return torch.cat([fill, ref], 1)


# --- the batched engine -----------------------------------------------------------------------


def trim(tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop leading columns that are padding in every row."""
    start = int((mask.sum(0) > 0).nonzero()[0])
    return tokens[:, start:], mask[:, start:]


@torch.inference_mode()
def run_jobs(model: HookedTransformer, tokens, mask, jobs: Sequence[Sequence[Target]], values: Values,
             reduce: Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]], *,
             batch_size: int = 32, progress: bool = True, desc: str = "ablating") -> dict[str, torch.Tensor]:
    """Run every (job, prompt) row with that job's targets ablated, in batches of rows, and
    return `reduce(last_logits, prompt_rows)` stacked as `[n_jobs, n_prompts, ...]`."""
    from tqdm.auto import tqdm

    n = len(tokens)
    rows = torch.arange(len(jobs) * n)
    chunks = rows.split(batch_size)
    out: dict[str, list[torch.Tensor]] = {}
    for chunk in tqdm(chunks, desc=desc, disable=not progress or len(chunks) < 4, leave=False):
        job, prow = chunk // n, chunk % n
        t, m = trim(tokens[prow], mask[prow])
        width = t.shape[1]
        per_hook: dict[str, tuple[list, list]] = {}
        for local, j in enumerate(job.tolist()):
            for tg in jobs[j]:
                r, u = per_hook.setdefault(tg.hook, ([], []))
                r.append(torch.full((len(tg.units),), local))
                u.append(tg.units)
        hooks = []
        for h, (r, u) in per_hook.items():
            r, u = torch.cat(r), torch.cat(u)
            vals = values.get(h, prow[r], u, width)

            def fn(act, hook, r=r.to(t.device), u=u.to(t.device), vals=vals):
                act[r, :, u] = vals.to(act.device, act.dtype)
                return act

            hooks.append((h, fn))
        with hooked(model, hooks):
            logits = last_logits(model, t, m)
        for k, v in reduce(logits, prow.to(logits.device)).items():
            out.setdefault(k, []).append(v.detach().float().cpu())
    return {k: torch.cat(v).reshape(len(jobs), n, *v[0].shape[1:]) for k, v in out.items()}


# --- results ----------------------------------------------------------------------------------


def paired_stats(before: torch.Tensor, after: torch.Tensor, test: str) -> tuple[torch.Tensor, ...]:
    """Per column of `[n, t]` paired samples: mean of after - before, 95% t-interval, p-value."""
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
class AblationResult:
    """Next-token effect of an ablation, per prompt and per reported token.

    Log-probabilities are `[n_prompts, n_tokens]`; `mean_change`, `ci_low`, `ci_high`, `p_value`
    are per token, for the change in log-probability (after - before) across prompts.
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

    def __post_init__(self):
        n, t = len(self.prompts), len(self.tokens)
        for name in ("logprob_before", "logprob_after"):
            if tuple(getattr(self, name).shape) != (n, t):
                raise ValueError(f"{name} has shape {tuple(getattr(self, name).shape)}, expected ({n}, {t})")
        for name in ("token_ids", "mean_change", "ci_low", "ci_high", "p_value"):
            if tuple(getattr(self, name).shape) != (t,):
                raise ValueError(f"{name} has shape {tuple(getattr(self, name).shape)}, expected ({t},)")
        if len(self.top1_before) != n or len(self.top1_after) != n:
            raise ValueError(f"top-1 tokens must have one entry per prompt ({n})")
        for name in ("metric_before", "metric_after"):
            v = getattr(self, name)
            if v is not None and tuple(v.shape) != (n,):
                raise ValueError(f"{name} has shape {tuple(v.shape)}, expected ({n},)")

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

    def to_frame(self, per_prompt: bool = False):
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

    def _repr_html_(self) -> str:
        head = f"<b>AblationResult</b>: {self.method} ablation of {', '.join(self.neurons[:8])}"
        if self.metric_stats is not None:
            m, lo, hi, p = self.metric_stats
            head += f"; {self.metric_name}: {m:+.3f} [{lo:+.3f}, {hi:+.3f}], p={p:.2g}"
        return head + f"; top-1 changed on {self.top1_changed:.0%} of prompts" + self.to_frame().to_html()


def ablate_neurons(
    model: HookedTransformer,
    prompts: str | Sequence[str],
    neurons: NeuronSpec | Sequence[NeuronSpec],
    *,
    method: Literal["zero", "mean", "resample"] = "zero",
    reference: Sequence[str] | None = None,
    tokens: Sequence[Token] | None = None,
    metric: Metric | Callable | None = None,
    n_tokens: int = 5,
    test: Literal["ttest", "wilcoxon"] = "ttest",
    alpha: float = 0.05,
    batch_size: int = 32,
    progress: bool = True,
) -> AblationResult:
    """Ablate MLP neurons (or whole MLP / attention outputs) and measure the next-token effect.

    Args:
        model: any `HookedTransformer`.
        prompts: one prompt or a list; the next token after each is what is measured.
        neurons: `(layer, index)` pairs of `mlp_post` units, and/or `("mlp_out", layer)` /
            `("attn_out", layer)` for a whole layer's output. Negative layers count from the end.
        method: `"zero"`, `"mean"` (reference mean, cached) or `"resample"` (from another
            reference prompt; see the module docstring for the pairing rule).
        reference: prompts for mean/resample ablation (required by those).
        tokens: tokens to report; default: the `n_tokens` with the highest mean clean probability.
        metric: optional per-prompt metric on the last logits (`logit_diff`, `token_logprob`, or
            a callable `f(logits)` / `f(logits, rows)` returning `[batch]`).
        test: paired significance test across prompts: `"ttest"` (paired t-test, default) or
            `"wilcoxon"` (signed-rank). Confidence intervals are t-based 95% intervals.
        alpha: significance level; a token is marked significant when p < alpha / n_tokens
            (Bonferroni over the reported tokens).

    Returns:
        An `AblationResult`; `.to_frame()`, `.to_frame(per_prompt=True)`, `.plot()`.

    Raises:
        ValueError: no neurons, an index or layer out of range, unknown method or test, missing
            reference for mean/resample ablation, a metric of the wrong shape.
        KeyError: a token not in the vocabulary.

    Example:
        >>> res = interp.ablate_neurons(model, prompts, [(1, 7)], method="mean", reference=other)
        >>> res.to_frame()
    """
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}; expected one of {TESTS}")
    if not 0 < alpha < 1 or n_tokens < 1:
        raise ValueError(f"alpha={alpha} must be in (0, 1) and n_tokens={n_tokens} at least 1")
    targets = parse_neurons(model, neurons)
    met = as_metric(metric, len(prompts)) if metric is not None else None
    tokens = [tokens] if isinstance(tokens, (str, int)) else tokens
    chosen = None if tokens is None else torch.tensor([token_id(model, t) for t in tokens], dtype=torch.long)
    if chosen is not None and len(chosen) == 0:
        raise ValueError("tokens is an empty list: give at least one token, or None for the top tokens")
    toks, mask = tokenize(model, prompts)
    values = Values(model, method, targets, prompts, reference, batch_size)

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
        ablated = run_jobs(model, toks, mask, [targets], values, reduce_at(chosen), **run)
        res = {k: torch.cat([res[k], ablated[k]]) for k in ablated}
    else:  # both in the same batched run
        res = run_jobs(model, toks, mask, [[], targets], values, reduce_at(chosen), **run)
    top1 = res["top1"].long()
    decode = (lambda i: model.tokenizer.decode([int(i)])) if model.tokenizer is not None else str
    before, after = res["lp"][0].clone(), res["lp"][1].clone()
    stats = paired_stats(before, after, test)
    mstats = paired_stats(res["metric"][0][:, None], res["metric"][1][:, None], test) if met else None
    return AblationResult(
        prompts=tuple(prompts), neurons=tuple(t.label for t in targets), method=method,
        tokens=tuple(decode(i) for i in chosen), token_ids=chosen.clone(), logprob_before=before,
        logprob_after=after, top1_before=tuple(decode(i) for i in top1[0]),
        top1_after=tuple(decode(i) for i in top1[1]), mean_change=stats[0], ci_low=stats[1],
        ci_high=stats[2], p_value=stats[3], test=test, alpha=alpha, metric_name=met.name if met else None,
        metric_before=res["metric"][0].clone() if met else None,
        metric_after=res["metric"][1].clone() if met else None,
        metric_stats=tuple(float(s[0]) for s in mstats) if mstats else None,
        reference_pairs=values.pairs,
    )
