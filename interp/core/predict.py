"""What does the model predict next? Batched top-k next tokens for many prompts at once.

The simplest behavioural read-out, and the one every experiment starts from: before asking
*where* a model computes an answer (logit lens, patching) one checks *whether* it gives it.
Prompts are left-padded into batches with their attention mask, run up to the last block, and
only the last position is unembedded (`interp.core.readout.last_logits`), so a few hundred short
prompts take one or two forward passes. Screening prompts this way, keeping those a model gets
right on one hop and wrong on two, is how Biran et al. (2024, "Hopping Too Late: Exploring the
Limitations of Large Language Models on Multi-Hop Queries", arXiv:2406.12775) select the cases
their back-patching then tries to fix.

Example:
    >>> nt = next_tokens(model, ["the capital of france is", "the capital of peru is"], k=3)
    >>> nt.top1
    ('paris', 'lima')
    >>> nt.to_frame()
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go
import torch
from jaxtyping import Float, Int
from transformer_lens import HookedTransformer

from interp.core.checks import check_flag, check_model, check_prompts
from interp.core.readout import last_logits
from interp.core.results import Result
from interp.core.tokens import format_chat, tokenize


@dataclass(frozen=True, repr=False)
class NextTokens(Result):
    """The `k` most likely next tokens of each prompt, most likely first."""

    prompts: tuple[str, ...]
    ids: Int[torch.Tensor, "prompt k"]
    probs: Float[torch.Tensor, "prompt k"]
    tokens: tuple[tuple[str, ...], ...]

    def __post_init__(self) -> None:
        n = len(self.prompts)
        if self.ids.ndim != 2 or self.ids.shape[0] != n or self.probs.shape != self.ids.shape:
            raise ValueError(
                f"ids and probs must be [prompts={n}, k] of one shape, got "
                f"{tuple(self.ids.shape)} and {tuple(self.probs.shape)}"
            )
        if len(self.tokens) != n or any(len(t) != self.ids.shape[1] for t in self.tokens):
            raise ValueError("tokens must be nested [prompt][k]")

    @property
    def top1(self) -> tuple[str, ...]:
        """The most likely next token of each prompt (as the tokenizer spells it)."""
        return tuple(t[0] for t in self.tokens)

    def correct(self, answers: Sequence[str]) -> torch.Tensor:
        """Per prompt: is the top-1 token the answer (compared stripped and lowercased)?

        Raises:
            ValueError: a different number of answers than prompts.
        """
        if isinstance(answers, str):
            raise TypeError(f"answers is {answers!r}: expected a list of strings, one per prompt")
        if len(answers) != len(self.prompts):
            raise ValueError(f"{len(answers)} answers for {len(self.prompts)} prompts")
        return torch.tensor([t.strip().lower() == a.strip().lower() for t, a in zip(self.top1, answers)])

    def to_frame(self):
        """One row per prompt: the prompt and its top-k tokens with probabilities."""
        import pandas as pd

        rows = []
        for p, toks, probs in zip(self.prompts, self.tokens, self.probs.tolist()):
            row = {"prompt": p}
            for j, (t, q) in enumerate(zip(toks, probs)):
                row[f"top{j + 1}"], row[f"p{j + 1}"] = t, q
            rows.append(row)
        return pd.DataFrame(rows)

    def plot(self) -> go.Figure:
        """Top-1 probability per prompt, labelled with the token."""
        fig = go.Figure(
            go.Bar(
                x=list(range(len(self.prompts))),
                y=self.probs[:, 0].tolist(),
                text=list(self.top1),
                hovertext=list(self.prompts),
            )
        )
        fig.update_layout(
            title="Most likely next token per prompt",
            xaxis_title="prompt",
            yaxis_title="probability",
            yaxis_range=[0, 1],
        )
        return fig


@torch.inference_mode()
def next_tokens(
    model: HookedTransformer,
    prompts: str | Sequence[str],
    *,
    k: int = 1,
    chat: bool = False,
    batch_size: int = 64,
) -> NextTokens:
    """The `k` most likely next tokens after each prompt, batched (left-padded, masked).

    Args:
        model: any `HookedTransformer` with a tokenizer.
        prompts: one prompt or a list.
        k: how many tokens per prompt.
        chat: wrap each prompt in the model's chat template first.
        batch_size: prompts per forward pass.

    Raises:
        ValueError: no prompts, an empty or too-long prompt, a bad `k` or `batch_size`.

    Example:
        >>> next_tokens(model, "the capital of france is").top1
        ('paris',)
    """
    check_model(model)
    prompts = check_prompts(prompts)
    check_flag(chat, "chat", none=True)
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= model.cfg.d_vocab:
        raise ValueError(f"k={k!r} must be an int in [1, {model.cfg.d_vocab}]")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be an int >= 1")
    texts = format_chat(model, prompts) if chat else prompts
    ids, probs = [], []
    for start in range(0, len(texts), batch_size):
        tokens, mask = tokenize(model, texts[start : start + batch_size])
        top = last_logits(model, tokens, mask).float().softmax(-1).topk(k, dim=-1)
        ids.append(top.indices.cpu())
        probs.append(top.values.cpu())
    id_t = torch.cat(ids)
    spelled = tuple(tuple(model.tokenizer.decode([int(i)]) for i in row) for row in id_t)
    return NextTokens(prompts=tuple(prompts), ids=id_t, probs=torch.cat(probs), tokens=spelled)
