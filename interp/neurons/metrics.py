"""Next-token metrics: the one number per prompt that an ablation or an attribution moves.

To say what a neuron *does*, pick a behaviour and measure it as a scalar on the model's output
at the last position, then ask how removing the neuron changes that scalar. Two metrics cover
most questions:

- **logit difference** `logit(good) - logit(bad)`: the standard measure of a two-way choice
  (subject-verb agreement `is` vs `are`, the indirect object in "Interpretability in the Wild",
  Wang et al. 2022). It is invariant to anything that shifts every logit alike, and linear in
  the final residual stream, which keeps attribution patching's first-order estimate honest
  (Nanda, "Attribution Patching", 2023);
- **log-probability** of one token: what a language-modelling loss would see.

A `Metric` is a named function `fn(logits [batch, vocab], rows [batch]) -> [batch]`. `rows` are
the prompts' indices in the caller's list, so a metric built with one target per prompt picks
the right one whatever the batching. Plain callables `f(logits)` or `f(logits, rows)` are
wrapped by `as_metric`.

Example:
    >>> ps = interp.toy.corpus.agreement_prompts("train", 100)
    >>> m = interp.logit_diff(model, [p.correct[0] for p in ps], [p.wrong[0] for p in ps])
    >>> interp.rank_neurons(model, [p.prompt for p in ps], m, k=10)
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from jaxtyping import Float, Int
from transformer_lens import HookedTransformer

from interp.core.tokens import token_id

Token = str | int


@dataclass(frozen=True)
class Metric:
    """A next-token metric: one number per prompt from the last position's logits.

    `fn(logits, rows)` gets `logits` `[batch, vocab]` and `rows`, the indices of these prompts in
    the caller's prompt list (so per-prompt targets work in any batching).

    Example:
        >>> m = Metric("logit 7", lambda logits, rows: logits[:, 7])
    """

    name: str
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = field(repr=False)
    n_prompts: int | None = None  # per-prompt metrics: how many prompts they were built for

    def __post_init__(self) -> None:
        from interp.core.checks import check_count

        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"name is {self.name!r}: expected a non-empty string")
        if not callable(self.fn):
            raise TypeError(f"fn is {self.fn!r}: expected a callable fn(logits, rows) -> one value per prompt")
        if self.n_prompts is not None:
            check_count(self.n_prompts, "n_prompts")

    def __call__(self, logits: Float[torch.Tensor, "batch vocab"], rows: Int[torch.Tensor, "batch"]):
        return self.fn(logits, rows)


def _token_column(
    model: HookedTransformer, tokens: Token | Sequence[Token], what: str
) -> tuple[torch.Tensor, str]:
    if isinstance(tokens, (str, numbers.Integral)):
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
    """Wrap a plain callable `f(logits)` or `f(logits, rows)` as a `Metric`, and check its size.

    Example:
        >>> as_metric(lambda logits: logits[:, 7], n_prompts=5).name
        '<lambda>'
    """
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


def metric_values(
    metric: Metric, logits: Float[torch.Tensor, "batch vocab"], rows: Int[torch.Tensor, "batch"]
) -> Float[torch.Tensor, "batch"]:
    """Call a metric and check it returns one value per prompt.

    Example:
        >>> metric_values(interp.token_logprob(model, "is"), logits, torch.arange(len(logits)))
    """
    out = metric(logits, rows)
    if not isinstance(out, torch.Tensor) or out.shape != (len(rows),):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"metric {metric.name!r} returned {shape}; expected one value per prompt: ({len(rows)},)"
        )
    bad = ~torch.isfinite(out.detach())
    if bad.any():
        i = int(bad.nonzero()[0])
        raise ValueError(
            f"metric {metric.name!r} returned {float(out[i].detach())} for prompt {int(rows[i])}: expected finite values "
            "(a NaN or infinite metric cannot rank or compare neurons)"
        )
    return out
