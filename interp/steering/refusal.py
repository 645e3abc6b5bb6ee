"""Measuring refusal and the side effects of steering.

Refusal work (Arditi et al. 2024, "Refusal in language models is mediated by a single
direction") needs three measurements, each a function here:

- **refusal rate** of generated text: the fraction of completions that contain a refusal
  phrase (`i cannot`, `i'm sorry`, ...; the model profile's `refusal_phrases`);
- **refusal score** of a prompt: the log-odds that the next token starts a refusal, `log p /
  (1 - p)` with `p` the total probability of the profile's `refusal_tokens` (`I`, `As`,
  `Sorry` for real chat models; `i` for the built-in model) at the last position. Hooks around
  the call apply, so it measures a steered model inside `vector.apply(...)`;
- **harmless KL**: the KL divergence, in nats per token, of the next-token distributions of the
  unsteered and the steered model on harmless text, with the cross-entropy of both: a good
  refusal direction changes little else.

Choosing a direction with these numbers is `interp.steering.selection`.

Example:
    >>> r = interp.steer(model, heldout_harmful, refusal, mode="ablate")
    >>> interp.refusal_rate(r), interp.refusal_rate(r.baseline)
    >>> interp.refusal_score(model, ["how do i make a bomb ?"])
    >>> interp.harmless_kl(model, harmless, refusal, mode="ablate").kl
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float
from transformer_lens import HookedTransformer

from interp.core.checks import check_count, check_flag, check_prompts, check_strings
from interp.core.profiles import REFUSAL_PHRASES, profile_for
from interp.core.readout import last_logits
from interp.core.results import Result, check_shape
from interp.core.tokens import maybe_chat, token_id, tokenize
from interp.steering.generate import SteerResult
from interp.steering.vector import SteeringVector, resolve


def is_refusal(text: str, phrases: Sequence[str] | None = None) -> bool:
    """True when `text` contains a refusal phrase (case-insensitive).

    Example:
        >>> is_refusal("I'm sorry, but no")
        True
    """
    low = " ".join(text.lower().replace("\u2019", "'").split())
    return any(p.lower() in low for p in (phrases or REFUSAL_PHRASES))


def refusal_rate(
    completions: Sequence[str] | SteerResult,
    *,
    phrases: Sequence[str] | None = None,
    model: HookedTransformer | None = None,
) -> float:
    """Fraction of completions that contain a refusal phrase.

    Args:
        completions: texts, or a `SteerResult` (its steered completions; pass
            `result.baseline` for the unsteered ones).
        phrases: refusal phrases; when None, the `refusal_phrases` of `model`'s profile, or
            `REFUSAL_PHRASES` without a model.
        model: the model that wrote the completions (only its profile is read).

    Example:
        >>> interp.refusal_rate(["i cannot help with that .", "sure . here is how"])
        0.5
    """
    texts = completions.steered if isinstance(completions, SteerResult) else completions
    if texts is None or isinstance(texts, str) or not hasattr(texts, "__len__") or len(texts) == 0:
        shown = repr(texts) if texts is None or isinstance(texts, (list, tuple)) else f"a {type(texts).__name__}"
        raise ValueError(f"completions is {shown}: refusal_rate needs a non-empty list of completions "
                         "(or a SteerResult)")
    texts = check_strings(texts, "completions")
    if phrases is not None:
        phrases = check_strings(phrases, "phrases")
        if not all(p.strip() for p in phrases):
            raise ValueError(f"phrases is {phrases!r}: an empty phrase would match every completion")
    if phrases is None and model is not None:
        phrases = profile_for(model).refusal_phrases
    return sum(is_refusal(t, phrases) for t in texts) / len(texts)


def refusal_token_ids(model: HookedTransformer, tokens: Sequence[str | int] | None = None) -> list[int]:
    """Ids of the tokens that start a refusal: `tokens`, else the profile's `refusal_tokens`
    that are single tokens of this vocabulary (`I`, `As`, `Sorry` by default; `i` for the
    built-in model).

    Example:
        >>> refusal_token_ids(toy)
        [17]
    """
    if tokens is not None:
        ids = [token_id(model, t) for t in tokens]
    else:
        ids = []
        for t in profile_for(model).refusal_tokens:
            try:
                ids.append(token_id(model, t))
            except KeyError:
                pass
    if not ids:
        raise ValueError("no refusal tokens: pass refusal_tokens=[...] with tokens of this vocabulary")
    return sorted(set(ids))


def next_logprobs(model: HookedTransformer, tokens, mask) -> Float[torch.Tensor, "batch vocab"]:
    """Next-token log-probs (float32) at the last position, unembedding only that position."""
    return last_logits(model, tokens, mask).float().log_softmax(-1)


def log_odds(logprobs: Float[torch.Tensor, "batch vocab"], ids: list[int]) -> Float[torch.Tensor, "batch"]:
    """`log p / (1 - p)` per row, with `p` the total probability of the tokens `ids`.

    Example:
        >>> log_odds(torch.tensor([[0.5, 0.5]]).log(), [0])
        tensor([0.])
    """
    lp = logprobs[:, ids].logsumexp(-1)
    return lp - torch.log((-torch.expm1(lp)).clamp_min(1e-12))


@torch.inference_mode()
def refusal_score(
    model: HookedTransformer,
    prompts: str | Sequence[str],
    *,
    refusal_tokens: Sequence[str | int] | None = None,
    chat: bool | None = None,
    batch_size: int = 32,
) -> Float[torch.Tensor, "batch"]:
    """Log-odds that the next token starts a refusal, per prompt: `log p / (1 - p)` with `p` the
    total probability of the refusal tokens at the last position. Hooks around the call apply,
    so `with vector.apply(model, ...)` measures a steered model.

    Example:
        >>> interp.refusal_score(model, ["how do i make a bomb ?"])
        tensor([9.2])
    """
    prompts = check_prompts(prompts)
    check_count(batch_size, "batch_size")
    ids = refusal_token_ids(model, refusal_tokens)
    out = []
    for start in range(0, len(prompts), batch_size):
        tokens, mask = tokenize(model, maybe_chat(model, prompts[start : start + batch_size], chat))
        out.append(log_odds(next_logprobs(model, tokens, mask), ids).cpu())
    return torch.cat(out)


@dataclass(frozen=True, eq=False)
class KLResult(Result):
    """Side effects of steering on harmless text: KL to the unsteered model and cross-entropies.

    Example:
        >>> r = interp.harmless_kl(model, harmless, refusal)
        >>> r.kl, r.ce_base, r.ce_steered, r.plot()
    """

    kl: float
    per_prompt: Float[torch.Tensor, "prompt"]
    ce_base: float
    ce_steered: float
    n_tokens: int

    def __post_init__(self) -> None:
        self._freeze()
        check_shape("per_prompt", self.per_prompt, (None,))

    def summary(self) -> str:
        return (
            f"KL {self.kl:.4f} nats per token over {self.n_tokens} tokens; "
            f"cross-entropy {self.ce_base:.3f} -> {self.ce_steered:.3f}"
        )

    def to_frame(self):
        """The KL per prompt (nats per token)."""
        import pandas as pd

        return pd.DataFrame({"kl_per_token": self.per_prompt.tolist()})

    def plot(self):
        """Histogram of the per-prompt KL (nats per token)."""
        import plotly.graph_objects as go

        fig = go.Figure(go.Histogram(x=self.per_prompt.tolist()))
        fig.update_layout(
            title=f"KL per token: mean {self.kl:.4f} nats (CE {self.ce_base:.3f} -> {self.ce_steered:.3f})",
            xaxis_title="KL (nats per token)",
            yaxis_title="prompts",
        )
        return fig


@torch.inference_mode()
def harmless_kl(
    model: HookedTransformer,
    prompts: str | Sequence[str],
    vector: SteeringVector | Float[torch.Tensor, "d"],
    *,
    mode: str = "ablate",
    layer: int | None = None,
    alpha: float = 1.0,
    over: str = "all",
    chat: bool | None = None,
    batch_size: int = 16,
) -> KLResult:
    """KL(unsteered || steered) of the next-token distributions on (harmless) text, in nats per
    token, averaged over every real position (`over="all"`) or the last one (`"last"`), with
    the next-token cross-entropy of both models on the text.

    Example:
        >>> interp.harmless_kl(model, harmless, refusal, mode="ablate").kl
        0.012
    """
    if over not in ("all", "last"):
        raise ValueError(f"over {over!r} must be 'all' or 'last'")
    prompts = check_prompts(prompts)
    check_count(batch_size, "batch_size")
    vector, _ = resolve(model, vector, layer=layer, alpha=alpha, mode=mode)
    per_prompt, ce = [], torch.zeros(2, dtype=torch.float64)
    n_ce = 0
    for start in range(0, len(prompts), batch_size):
        tokens, mask = tokenize(model, maybe_chat(model, prompts[start : start + batch_size], chat))
        base = model(tokens, attention_mask=mask).float().log_softmax(-1)
        with vector.apply(model, layer=layer, alpha=alpha, mode=mode):
            steer = model(tokens, attention_mask=mask).float().log_softmax(-1)
        kl = (base.exp() * (base - steer)).sum(-1)  # [batch, pos]
        m = (
            mask.float()
            if over == "all"
            else F.one_hot(torch.tensor(mask.shape[1] - 1), mask.shape[1]).float()
        )
        m = m.to(kl.device).expand_as(kl)
        per_prompt.append(((kl * m).sum(-1) / m.sum(-1)).cpu())
        target, tmask = tokens[:, 1:], (mask[:, 1:] * mask[:, :-1]).float()
        for i, lp in enumerate((base, steer)):
            ce[i] += float(-(lp[:, :-1].gather(-1, target[..., None])[..., 0] * tmask).sum())
        n_ce += int(tmask.sum())
    per = torch.cat(per_prompt)
    ce = ce / max(n_ce, 1)
    n_tok = n_ce + len(prompts) if over == "all" else len(prompts)
    return KLResult(
        kl=float(per.mean()), per_prompt=per, ce_base=float(ce[0]), ce_steered=float(ce[1]), n_tokens=n_tok
    )
