"""Steered generation: completions of a batch of prompts with a steering vector applied.

Activation addition (Turner et al. 2023, "Activation Addition: Steering Language Models Without
Optimization") and directional ablation (Arditi et al. 2024, "Refusal in language models is
mediated by a single direction") are judged by what the model then writes. `steer` generates,
for one prompt or a batch, the steered completion beside the unsteered one: prompts are wrapped
in the chat template for chat models, left-padded and batched, and decoded greedily (unless
sampling is asked for) with the key-value cache on. The vector acts through
`SteeringVector.apply` semantics: at every generated token (`apply_to="all"`), only on the
prompt, only on the generated tokens, or only at the prompt's last position (`"last"`).

Example:
    >>> vs = interp.mean_difference(model, harmful, harmless)    # one vector per layer
    >>> result = interp.steer(model, ["how do i bake bread ?"], vs[2], alpha=1.0)
    >>> result.to_frame()                                        # prompt, baseline, steered
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float
from tqdm.auto import tqdm
from transformer_lens import HookedTransformer

from interp.core.checks import (MISSING, check_context, check_count, check_flag, check_generation, check_prompts,
                                 check_seed, renamed)
from interp.core.generation import generate, linear_layout
from interp.core.hooks import hooked
from interp.core.lean import lean_ok
from interp.core.results import Result
from interp.core.tokens import encode, maybe_chat, tokenize
from interp.steering.edits import check_apply_to
from interp.steering.vector import SteeringVector, resolve, vector_hooks
from interp.steering.vector import steering  # noqa: F401  (deprecated; the old import path keeps working)

_GENERATE_OPTIONS = {
    "do_sample",
    "top_k",
    "top_p",
    "temperature",
    "freq_penalty",
    "stop_at_eos",
    "eos_token_id",
    "fast",
}


@dataclass(frozen=True)
class SteerResult(Result):
    """Steered (and baseline) completions of a batch of prompts.

    Example:
        >>> r = interp.steer(model, ["how do i bake bread ?"], v, alpha=4.0)
        >>> r.to_frame()       # prompt, baseline, steered
    """

    prompts: tuple[str, ...]
    steered: tuple[str, ...]
    baseline: tuple[str, ...] | None
    mode: str
    alpha: float
    layer: int
    site: str
    apply_to: str
    vector: str

    def __post_init__(self) -> None:
        if len(self.steered) != len(self.prompts) or (
            self.baseline is not None and len(self.baseline) != len(self.prompts)
        ):
            raise ValueError("prompts, steered and baseline completions must have the same length")

    @property
    def positions(self) -> str:
        """Deprecated name of `apply_to`."""
        warnings.warn(
            "SteerResult.positions is deprecated and will be removed in the next release; use .apply_to",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.apply_to

    def __len__(self) -> int:
        return len(self.prompts)

    def summary(self) -> str:
        return (
            f"{len(self)} prompt(s) steered: {self.mode} {self.vector} (alpha {self.alpha:g}) "
            f"at {self.site} layer {self.layer}, applied to {self.apply_to} positions"
        )

    def to_frame(self):
        """Prompts with their baseline and steered completions side by side."""
        import pandas as pd

        cols = {"prompt": self.prompts}
        if self.baseline is not None:
            cols["baseline"] = self.baseline
        cols["steered"] = self.steered
        return pd.DataFrame(cols)

    def plot(self):
        """The side-by-side table as a figure."""
        import plotly.graph_objects as go

        df = self.to_frame()
        fig = go.Figure(
            go.Table(header={"values": list(df.columns)}, cells={"values": [df[c] for c in df.columns]})
        )
        fig.update_layout(
            title=f"{self.mode} {self.vector} (alpha {self.alpha:g}) at {self.site} layer {self.layer}"
        )
        return fig


def _decode(model: HookedTransformer, rows: torch.Tensor, stop_at_eos: bool, eos) -> list[str]:
    out, stops = [], set([eos] if isinstance(eos, int) else (eos or []))
    for row in rows.tolist():
        if stop_at_eos:
            cut = next((i for i, t in enumerate(row) if t in stops), len(row))
            row = row[:cut]
        out.append(model.tokenizer.decode(row, skip_special_tokens=True).strip())
    return out


def _generate(
    model: HookedTransformer,
    prompts: list[str],
    *,
    max_new_tokens: int = 16,
    batch_size: int = 32,
    seed: int | None = None,
    **options,
) -> list[str]:
    """Greedy (by default) left-padded batch generation with the KV cache; returns new text only.

    Hooks active around the call (e.g. `vector.apply`) apply; a fresh pass count per batch."""
    unknown = set(options) - _GENERATE_OPTIONS
    if unknown:
        raise ValueError(
            f"unknown generation options {sorted(unknown)}; expected some of {sorted(_GENERATE_OPTIONS)}"
        )
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens {max_new_tokens} must be >= 1")
    options = {"do_sample": False, "fast": True, **options}
    stop = options.get("stop_at_eos", True)
    eos = options.get("eos_token_id")
    eos = model.tokenizer.eos_token_id if eos is None else eos
    out: list[str] = []
    for start in range(0, len(prompts), batch_size):
        tokens, mask = tokenize(model, prompts[start : start + batch_size])
        new = generate(model, tokens, attention_mask=mask, max_new_tokens=max_new_tokens,
                       seed=None if seed is None else seed + start, **options)
        full = torch.cat([tokens, new.to(tokens.device)], dim=1)
        out += _decode(model, full[:, tokens.shape[1] :], stop, eos)
    return out


def steer(
    model: HookedTransformer,
    prompts: str | Sequence[str],
    vector: SteeringVector | Float[torch.Tensor, "d"],
    *,
    layer: int | None = None,
    alpha: float = 1.0,
    mode: str = "add",
    apply_to: str = "all",
    max_new_tokens: int = 16,
    baseline: bool = True,
    chat: bool | None = None,
    batch_size: int = 32,
    seed: int | None = None,
    **generation: Any,
) -> SteerResult:
    """Generate steered completions (and unsteered ones beside them) for one prompt or a batch.

    Steering applies at every generated token with the key-value cache on, exactly as inside
    `vector.apply(model, ...)` (see there for the modes). Prompts are wrapped in the chat
    template for chat models (`chat=False` to skip), batched with left padding; greedy unless
    `do_sample=True` is passed.

    Args:
        model: the model to steer.
        prompts: one prompt or a list (raw requests for chat models).
        vector: a `SteeringVector`, or a raw `[d]` tensor with `layer=`.
        layer: apply at this layer instead of the vector's own.
        alpha, mode: the strength and `"add"` / `"ablate"` / `"ablate_then_add"`.
        apply_to: `"all"`, `"prompt"` or `"generated"` positions, or `"last"`: the prompt's last
            position only, as an in-context task vector is put into a query (Hendel et al. 2023)
            (was `positions=`, deprecated).
        max_new_tokens, batch_size, seed: generation length, prompts per batch, sampling seed.
        baseline: also generate the unsteered completions.
        chat: wrap prompts in the chat template; automatic when None.
        generation: `do_sample`, `temperature`, `top_k`, `top_p`, `freq_penalty`,
            `stop_at_eos`, `eos_token_id` (as in `HookedTransformer.generate`), and `fast`
            (default True: GPT-2-family blocks run lean, `interp.core.generation.generate`'s
            `fast`; logits equal to transformer-lens' within 1e-5; `fast=False` for its forward).

    Example:
        >>> r = interp.steer(model, ["how do i bake bread ?"], refusal, alpha=1.0)
        >>> r.to_frame()
    """
    legacy = renamed("positions", "apply_to", generation, "steer")
    if legacy is not MISSING:
        apply_to = check_apply_to(legacy, "positions")
    prompts = check_prompts(prompts)
    vector, layer = resolve(model, vector, layer=layer, alpha=alpha, mode=mode)
    check_apply_to(apply_to)
    check_count(batch_size, "batch_size")
    check_flag(baseline, "baseline")
    check_flag(chat, "chat", none=True)
    check_seed(seed)
    check_generation(generation, model.cfg.d_vocab)
    texts = maybe_chat(model, prompts, chat)
    check_context([len(r) for r in encode(model, texts)], max_new_tokens, model.cfg.n_ctx)
    kwargs = dict(max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed, **generation)
    steered: list[str] = []
    batches = range(0, len(texts), batch_size)
    # transformer-lens blocks read their weights re-laid out (once for every batch, steered and
    # baseline); lean GPT-2-family blocks read them as stored
    lean = generation.get("fast", True) and lean_ok(model)
    with nullcontext() if lean else linear_layout(model):
        for start in tqdm(batches, desc="steer", leave=False, disable=len(batches) <= 1):
            hooks = vector_hooks(model, vector, layer=layer, alpha=alpha, mode=mode, apply_to=apply_to)
            with hooked(model, hooks):  # a fresh pass count per batch
                steered += _generate(model, texts[start : start + batch_size], **kwargs)
        base = _generate(model, texts, **kwargs) if baseline else None
    return SteerResult(
        prompts=tuple(prompts),
        steered=tuple(steered),
        baseline=None if base is None else tuple(base),
        mode=mode,
        alpha=float(alpha),
        layer=layer,
        site=vector.site,
        apply_to=apply_to,
        vector=vector.name,
    )
