"""Text generation of our own: a batched greedy (or seeded sampling) loop over the key-value cache.

Generating n tokens with a key-value cache is one forward over the prompt (the *prefill*, which
stores every layer's keys and values) and then n - 1 forwards of a single token each, which
attend to the stored keys and values instead of recomputing them. A single-token forward does
little arithmetic per weight it reads, so its speed is set by how many bytes it moves, and by
how much Python runs around it.

Profiling transformer-lens' `HookedTransformer.generate` on a GPT-2-small-sized model (batch 1,
32 new tokens, one CPU thread) showed where its time goes, and it is not the arithmetic:

- about 43% in `Unembed.forward` copying `W_U.T` into a fresh contiguous `[d_vocab, d_model]`
  matrix (154 MB for GPT-2) on *every* forward, before the one matrix product it needs;
- about 16% in `simple_attn_linear` re-laying `W_Q`, `W_K`, `W_V` out as `[heads*d_head,
  d_model]` (an einops rearrange that copies), and 5% more copying `W_O`; the gated MLPs of
  Llama and Gemma copy `W_in`, `W_gate` and `W_out` the same way.

A Hugging Face model stores each weight in the layout its matrix product reads, so it copies
nothing. `linear_layout(model)` gives a transformer-lens model the same: for the duration of a
`with` block each of those parameters holds the *same values* in the memory layout that
transformer-lens' own re-layout produces, so the re-layout becomes a free view instead of a
copy, the same kernels run on the same bytes, and every logit is bitwise unchanged. Every hook
point fires as before, because transformer-lens' own forward still runs. On exit the original
tensors are put back. With `fast=True` GPT-2-family blocks run lean (`interp.core.lean`: fused
kernels, only the block-level hook points) and read every weight as stored, so then nothing is
re-laid out at all.

`generate(model, tokens, ...)` then runs the loop with nothing per step but the forward and
one argmax (or one sample): the prompt batch is left-padded with an attention mask (positions
count from each row's first real token, pads are never attended to), each row stops at EOS
(later steps write EOS in it, as transformer-lens does) and the loop ends when every row has;
the forward hooks are added once around the whole loop with `hooked`; everything runs under
`torch.inference_mode()`. The prompt's forward reads out only its last position (as Hugging
Face's `generate` does), so no `[batch, pos, d_vocab]` logits are made. Greedy decoding gives
exactly `model.generate(..., do_sample=False, use_past_kv_cache=True)`'s tokens; sampling uses
transformer-lens' own `sample_logits`, with a `seed` that touches no global random state.

Example:
    >>> tokens, mask = interp.tokenize(model, ["the capital of france is", "hello"])
    >>> new = generate(model, tokens, attention_mask=mask, max_new_tokens=8)
    >>> model.tokenizer.batch_decode(new)
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field

import torch
from jaxtyping import Int
from transformer_lens import HookedTransformer
from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache
from transformer_lens.components import GroupedQueryAttention, Unembed
from transformer_lens.components.abstract_attention import AbstractAttention
from transformer_lens.components.mlps.gated_mlp import GatedMLP
from transformer_lens.utilities.logits_utils import sample_logits

from interp.core.checks import check_count, check_token_ids
from interp.core.engine import hf_generate, is_bridge
from interp.core.hooks import HookFn, hooked
from interp.core.lean import lean_plan, prompt_logits

# ---------------------------------------------------------------------------------------------
# The weight layout


def _rows(w: torch.Tensor) -> torch.Tensor:
    """A `[in, out]` matrix read as `F.linear(x, w.T.contiguous())`: store `w.T` contiguous."""
    return w.t().contiguous().t()


def _heads_in(w: torch.Tensor) -> torch.Tensor:
    """`W_Q`/`W_K`/`W_V` `[heads, d_model, d_head]`, read as `[heads*d_head, d_model]`."""
    return w.permute(0, 2, 1).contiguous().permute(0, 2, 1)


def _heads_out(w: torch.Tensor) -> torch.Tensor:
    """`W_O` `[heads, d_head, d_model]`, read as `[d_model, heads*d_head]`."""
    return w.permute(2, 0, 1).contiguous().permute(1, 2, 0)


_IS_LAID_OUT: dict[Callable, Callable[[torch.Tensor], bool]] = {
    _rows: lambda w: w.t().is_contiguous(),
    _heads_in: lambda w: w.permute(0, 2, 1).is_contiguous(),
    _heads_out: lambda w: w.permute(2, 0, 1).is_contiguous(),
}


def _targets(model: HookedTransformer) -> Iterator[tuple[torch.nn.Parameter, Callable]]:
    """Every parameter that transformer-lens re-lays out on each forward, with its layout."""
    cfg = model.cfg
    for module in model.modules():
        names: tuple[tuple[str, Callable], ...] = ()
        if isinstance(module, Unembed):
            names = (("W_U", _rows),)
        elif isinstance(module, GatedMLP):
            names = (("W_gate", _rows), ("W_in", _rows), ("W_out", _rows))
        elif isinstance(module, AbstractAttention) and not (
            cfg.use_split_qkv_input or cfg.use_attn_in or cfg.load_in_4bit
        ):
            kv = ("_W_K", "_W_V") if isinstance(module, GroupedQueryAttention) else ("W_K", "W_V")
            names = tuple((n, _heads_in) for n in ("W_Q", *kv))
            if not cfg.use_attn_result:
                names += (("W_O", _heads_out),)
        for name, layout in names:
            param = module._parameters.get(name)
            if isinstance(param, torch.nn.Parameter) and param.dim() == (2 if layout is _rows else 3):
                yield param, layout


@dataclass
class _Layout:
    users: int = 0
    swapped: list[tuple[torch.nn.Parameter, torch.Tensor, torch.Tensor]] = field(default_factory=list)


_LAYOUT_LOCK = threading.Lock()
_LAYOUTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@contextmanager
def linear_layout(model: HookedTransformer) -> Iterator[HookedTransformer]:
    """Inside the block, the model's projection weights are stored the way its forward reads them.

    Same values, other strides: transformer-lens' per-forward `W.T.contiguous()` and einops
    re-layouts become views, the same matrix products run on the same bytes, so outputs are
    bitwise equal and hooks fire as before. Re-laying out costs one copy of those weights on
    entry (about what transformer-lens copies in every forward); the originals are put back on
    exit. Blocks may nest and several threads may hold one at once on a shared model: the first
    to enter re-lays out, the last to leave restores.

    A bridged Hugging Face model stores its weights as its matrix products read them already:
    there the block changes nothing.

    Caveat: a weight edited *in place* (`param.data[...] = ...`) inside the block is edited in
    the re-laid-out copy and lost on exit; replacing `param.data` is kept. Weight edits in this
    project return a new model, so they are unaffected.

    Example:
        >>> with linear_layout(model):
        ...     logits = model(tokens)      # bitwise equal to model(tokens) outside
    """
    if is_bridge(model):
        yield model
        return
    with _LAYOUT_LOCK:
        state = _LAYOUTS.setdefault(model, _Layout())
        if state.users == 0:
            with torch.no_grad():
                for param, layout in _targets(model):
                    if not _IS_LAID_OUT[layout](param):
                        original, laid = param.data, layout(param.data)
                        param.data = laid
                        state.swapped.append((param, original, laid))
        state.users += 1
    try:
        yield model
    finally:
        with _LAYOUT_LOCK:
            state.users -= 1
            if state.users == 0:
                for param, original, laid in state.swapped:
                    if param.data_ptr() == laid.data_ptr() and param.stride() == laid.stride():
                        param.data = original
                state.swapped.clear()


# ---------------------------------------------------------------------------------------------
# The loop


def _eos_ids(model: HookedTransformer, eos_token_id: int | Sequence[int] | None) -> list[int]:
    if eos_token_id is None:
        eos = getattr(model.tokenizer, "eos_token_id", None)
        if eos is None:
            raise ValueError("stop_at_eos needs an eos_token_id: the model's tokenizer has none")
        return [int(eos)]
    ids = [int(eos_token_id)] if isinstance(eos_token_id, int) else [int(i) for i in eos_token_id]
    if not ids:
        raise ValueError("eos_token_id is an empty list: give at least one id, or stop_at_eos=False")
    return ids


def _check_inputs(
    model: HookedTransformer, tokens: torch.Tensor, mask: torch.Tensor | None, max_new_tokens: int
) -> None:
    check_token_ids(tokens, model.cfg.d_vocab)
    if tokens.shape[1] == 0:
        raise ValueError("tokens have no positions: give at least one token per row")
    if mask is not None:
        if tuple(mask.shape) != tuple(tokens.shape):
            raise ValueError(
                f"attention_mask has shape {tuple(mask.shape)}; tokens have {tuple(tokens.shape)}"
            )
        if not bool(mask[:, -1].all()):
            raise ValueError("every row's last position must be a real token: pad on the left")
    total = tokens.shape[1] + max_new_tokens
    if model.cfg.positional_embedding_type in ("standard", "shortformer") and total > model.cfg.n_ctx:
        raise ValueError(
            f"{tokens.shape[1]} prompt tokens + max_new_tokens {max_new_tokens} = {total} exceed the "
            f"model's context of {model.cfg.n_ctx} positions"
        )


def generate(
    model: HookedTransformer,
    tokens: Int[torch.Tensor, "batch pos"],
    *,
    attention_mask: Int[torch.Tensor, "batch pos"] | None = None,
    max_new_tokens: int = 16,
    hooks: Iterable[tuple[str, HookFn]] = (),
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    freq_penalty: float = 0.0,
    seed: int | None = None,
    stop_at_eos: bool = True,
    eos_token_id: int | Sequence[int] | None = None,
    layout: bool = True,
    fast: bool = False,
) -> Int[torch.Tensor, "batch new"]:
    """Continue a left-padded batch of token rows; return the new tokens only.

    Args:
        model: the model (any `HookedTransformer`).
        tokens: `[batch, pos]` prompt ids, left-padded (as `interp.tokenize` returns them).
        attention_mask: `[batch, pos]`, 1 for real tokens, 0 for padding; None means no padding.
        max_new_tokens: how many tokens to generate at most (>= 1).
        hooks: `(hook name, fn)` forward hooks, added once around the whole loop (prefill and
            every step) with `interp.core.hooks.hooked`; a hook sees the prompt on the first
            forward and one new position per forward after it.
        do_sample, temperature, top_k, top_p, freq_penalty: as `HookedTransformer.generate`
            (greedy unless `do_sample`).
        seed: seeds the sampling without touching the global random state (None: the global
            generator, as transformer-lens does).
        stop_at_eos, eos_token_id: stop each row at EOS (the tokenizer's unless given; a list
            of ids stops at any of them). A stopped row is filled with EOS (the first id given),
            and the loop ends early once every row has stopped.
        layout: run inside `linear_layout(model)` (bitwise-equal logits, faster), unless every
            block runs lean (`fast`), which reads the weights as stored.
        fast: run GPT-2-family blocks as `interp.core.lean.lean_block` (fused layer norm, PyTorch's
            `scaled_dot_product_attention`): about 15% less time per step at batch 1 on a CPU,
            logits equal to transformer-lens' within float rounding (~1e-6) but not bitwise, so
            near-ties may pick another token. Blocks with hooks on their inner hook points (or
            another architecture) run transformer-lens' own forward.

    Returns:
        `[batch, steps]` new token ids, `steps <= max_new_tokens`, on the model's device.

    Example:
        >>> tokens, mask = interp.tokenize(model, prompts)
        >>> new = generate(model, tokens, attention_mask=mask, max_new_tokens=32, hooks=vector_hooks(...))
    """
    max_new_tokens = check_count(max_new_tokens, "max_new_tokens")
    device = model.cfg.device
    tokens = tokens.to(device)
    if attention_mask is not None:
        attention_mask = attention_mask.to(device)
    _check_inputs(model, tokens, attention_mask, max_new_tokens)
    if attention_mask is None:  # the cache needs a mask to place positions
        attention_mask = torch.ones_like(tokens)
    stops = torch.tensor(_eos_ids(model, eos_token_id), device=device) if stop_at_eos else None
    batch = tokens.shape[0]
    rng = nullcontext()
    if do_sample and seed is not None:
        rng = torch.random.fork_rng(devices=[device] if torch.device(device).type == "cuda" else [])
    if is_bridge(model):  # Hugging Face's own generate, with the hooks firing inside it
        with torch.inference_mode(), rng, hooked(model, hooks):
            if do_sample and seed is not None:
                torch.manual_seed(seed)
            new, _ = hf_generate(
                model, tokens, attention_mask, max_new_tokens=max_new_tokens, do_sample=do_sample,
                temperature=temperature, top_k=top_k, top_p=top_p, freq_penalty=freq_penalty,
                eos_ids=[] if stops is None else stops.tolist(),
            )
        return new

    with torch.inference_mode(), rng, hooked(model, hooks), ExitStack() as stack:
        lean = lean_plan(model) if fast else None
        if layout and not (lean is not None and all(lean)):  # lean blocks copy no weights
            stack.enter_context(linear_layout(model))
        if do_sample and seed is not None:
            torch.manual_seed(seed)
        cache = TransformerLensKeyValueCache.init_cache(model.cfg, device, batch)
        one = torch.ones((batch, 1), dtype=attention_mask.dtype, device=device)
        finished = torch.zeros(batch, dtype=torch.bool, device=device)
        new: list[torch.Tensor] = []
        store: dict = {}  # the lean blocks' fused weights, for this call only
        logits = prompt_logits(model, tokens, attention_mask, cache, lean, store)
        for step in range(max_new_tokens):
            if do_sample:
                seen = torch.cat([tokens, *new], dim=1) if freq_penalty > 0 else None
                token = sample_logits(
                    logits, top_k=top_k, top_p=top_p, temperature=temperature,
                    freq_penalty=freq_penalty, tokens=seen,
                )
            else:
                token = logits.argmax(-1)
            if stops is not None:
                token = torch.where(finished, stops[0], token)
                finished |= torch.isin(token, stops)
            new.append(token[:, None])
            if step + 1 == max_new_tokens or (stops is not None and bool(finished.all())):
                break
            logits = prompt_logits(model, token[:, None], one, cache, lean, store)
    return torch.cat(new, dim=1)
