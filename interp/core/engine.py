"""The engine seam: what every technique asks of a model, for both kinds of model it may be.

interp runs Hugging Face models wrapped by transformer-lens' `TransformerBridge`: the logits
are the Hugging Face model's own, the hook names and weight views are transformer-lens'
(`blocks.N.hook_resid_pre`, `W_U`, ...), and generation is Hugging Face's `generate`. A
`HookedTransformer` a user built (transformer-lens < 4) is accepted too. The few operations in
which the two differ live here, so no technique asks which one it has:

- `is_bridge(model)`;
- a forward that stops early: `interp.core.hooks.harvest` ends a bridge's forward from the
  hook that reads the last site (a bridge cannot stop after its last block with
  `stop_at_layer`), a `HookedTransformer`'s with `stop_at_layer`;
- `hf_generate(model, tokens, ...)`: Hugging Face's `generate` (key-value cache, left padding,
  attention mask) on a bridged model, with transformer-lens hooks firing inside it.

Example:
    >>> is_bridge(interp.load_model("toy"))
    True
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch loads on first use: `is_bridge` is imported by modules that need no torch
    import torch


__all__ = ["hf_generate", "hook_points", "is_bridge"]


def is_bridge(model: Any) -> bool:
    """True for a transformer-lens `TransformerBridge` (a Hugging Face model inside)."""
    return hasattr(model, "original_model") and hasattr(model, "adapter")


_POINTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def hook_points(model: Any) -> dict[str, Any]:
    """`model.hook_dict`, read once per model: a bridge rebuilds that dict, aliases included, on
    every access (about 1.4 ms on the built-in model, 70% of a patchscope call when read per
    hook). Kept per model and per compatibility mode, which re-registers the hook points."""
    if not is_bridge(model):
        return model.hook_dict
    mode = bool(getattr(model, "compatibility_mode", False))
    cached = _POINTS.get(model)
    if cached is None or cached[0] != mode:
        cached = _POINTS[model] = (mode, dict(model.hook_dict))
    return cached[1]


def hf_generate(
    model: Any,
    tokens: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    max_new_tokens: int,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    freq_penalty: float = 0.0,
    eos_ids: Sequence[int] = (),
    scores: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Hugging Face `generate` on a bridged model: `[batch, new]` new tokens, and the first
    step's logits `[batch, vocab]` when `scores`.

    Rows that reach an id in `eos_ids` are filled with the first of them after it, and the
    loop ends once every row has (no EOS ids: always `max_new_tokens`). Forward hooks already
    on the bridge's hook points fire in every forward: the prompt first, then one position per
    step.
    """
    import torch
    from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList

    class _FrequencyPenalty(LogitsProcessor):  # transformer-lens' freq_penalty, as a processor
        def __call__(self, input_ids: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
            counts = torch.zeros_like(logits).scatter_add_(1, input_ids, torch.ones_like(input_ids, dtype=logits.dtype))
            return logits - freq_penalty * counts

    eos = list(eos_ids)
    config = GenerationConfig(
        max_new_tokens=max_new_tokens, min_new_tokens=0, do_sample=do_sample, num_beams=1,
        temperature=temperature if do_sample else None, top_k=top_k if do_sample else None,
        top_p=top_p if do_sample else None, eos_token_id=eos or None,
        pad_token_id=eos[0] if eos else _pad(model), use_cache=True,
        return_dict_in_generate=True, output_scores=scores,
    )
    processors = LogitsProcessorList([_FrequencyPenalty()] if freq_penalty > 0 else [])
    # eos_token_id also as a keyword: a None in the config alone is filled in from the model's own
    # generation config, and the rows would stop at its EOS (generate runs without gradients)
    out = model.original_model.generate(input_ids=tokens, attention_mask=attention_mask, generation_config=config,
                                        logits_processor=processors, eos_token_id=eos or None)
    new = out.sequences[:, tokens.shape[1]:]
    return new, (out.scores[0] if scores else None)


def _pad(model: Any) -> int:
    tokenizer = model.tokenizer
    for value in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if value is not None:
            return int(value)
    return 0


def patch_bridge_cache() -> None:
    """Let transformer-lens 3.9's attention bridges find Hugging Face's key-value cache.

    transformers >= 5.2x passes a layer its cache as `cache=`; transformer-lens 3.9's
    `AttentionBridge._update_kv_cache` looks only for `past_key_values` / `layer_past`, so with a
    cache every decoding step attended to itself alone and `generate` ignored the prompt (on the
    built-in model: "sure can walk walk walk" instead of "sure . here is how you can bake").
    Idempotent; a version whose bridge already reads `cache` is left alone.
    """
    from transformer_lens.model_bridge.generalized_components.attention import AttentionBridge

    original = AttentionBridge._update_kv_cache
    if getattr(original, "_interp_reads_cache", False):
        return

    def _update_kv_cache(self, k: torch.Tensor, v: torch.Tensor, **kwargs: Any):
        if kwargs.get("past_key_values") is None and kwargs.get("layer_past") is None and "cache" in kwargs:
            kwargs["past_key_values"] = kwargs["cache"]
        return original(self, k, v, **kwargs)

    _update_kv_cache._interp_reads_cache = True
    AttentionBridge._update_kv_cache = _update_kv_cache
