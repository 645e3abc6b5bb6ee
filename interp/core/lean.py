"""A GPT-2-family transformer block in as few operations as it takes, and the prompt pass over a
key-value cache that the generation loop and the patchscope engine share.

transformer-lens' block forward is written to be read and hooked: about 40 hook points, einops
re-layouts of the attention weights and a hand-written layer norm and attention per layer. On a
CPU that fixed cost is most of a small model's forward (on the built-in 4-layer model a
13-token forward is ~11 ms, ~9 ms of which does not grow with the tokens). A lean block computes
the same function with one fused `layer_norm` per sublayer, PyTorch's
`scaled_dot_product_attention` over the cache and one GELU, and fires only the block-level hook
points (`hook_resid_pre`, `hook_attn_out`, `hook_resid_mid`, `hook_mlp_out`,
`hook_resid_post`), which is where interp's interventions act. Its logits equal transformer-lens'
to float rounding (~1e-6), not bitwise.

A block is run lean only when the model is GPT-2-family (LayerNorm, learned positions, one GELU
MLP, plain causal attention: `lean_ok`) and no hook sits on one of its inner hook points (then
transformer-lens' own forward runs it, so every hook still fires).

Example:
    >>> cache = TransformerLensKeyValueCache.init_cache(model.cfg, model.cfg.device, len(tokens))
    >>> with hooked(model, hooks):
    ...     logits = prompt_logits(model, tokens, mask, cache, lean_plan(model))  # [batch, vocab]
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import torch
from transformer_lens import HookedTransformer
from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache
from transformer_lens.hook_points import HookPoint

from interp.core.engine import is_bridge
from interp.core.readout import final_logits

#: The hook points a lean block still fires; any other hook in a block sends it back to
#: transformer-lens' own forward.
BLOCK_HOOKS = ("hook_resid_pre", "hook_attn_out", "hook_resid_mid", "hook_mlp_out", "hook_resid_post")

#: transformer-lens activation -> `F.gelu`'s `approximate` (the tanh forms are one function).
_GELU = {"gelu": "none", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu_fast": "tanh"}


def lean_ok(model: HookedTransformer) -> bool:
    """GPT-2-family blocks (LayerNorm, learned positions, one GELU MLP, plain causal attention)
    of a `HookedTransformer` (a bridged Hugging Face model runs its own blocks)."""
    if is_bridge(model):
        return False
    cfg = model.cfg
    off = (
        "gated_mlp", "use_local_attn", "n_key_value_heads", "use_attn_result", "use_split_qkv_input",
        "use_attn_in", "use_hook_mlp_in", "parallel_attn_mlp", "attn_only", "load_in_4bit",
        "use_normalization_before_and_after", "use_qk_norm", "clip_qkv", "use_attention_sinks",
        "use_logn_attn", "attn_scores_soft_cap", "output_logits_soft_cap",
    )
    return (
        cfg.normalization_type == "LN"
        and cfg.positional_embedding_type == "standard"
        and cfg.act_fn in _GELU
        and getattr(cfg, "attention_dir", "causal") == "causal"
        and cfg.original_architecture not in ("OlmoeForCausalLM", "Olmo2ForCausalLM", "Olmo3ForCausalLM")
        and not any(getattr(cfg, name, None) not in (None, False, 0, -1.0) for name in off)
    )


_INNER: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def inner_hooked(block: torch.nn.Module) -> bool:
    """Whether a hook inside `block` would be skipped by a lean block: a forward hook on any hook
    point other than `BLOCK_HOOKS`, or a user's own torch hook on any module that is not a hook
    point (the block itself, its attention, its MLP, ...): a lean block calls none of them."""
    points = _INNER.get(block)
    if points is None:  # walking the modules costs ~0.4 ms a block: once per block
        points = _INNER[block] = [
            (m, isinstance(m, HookPoint) and name in BLOCK_HOOKS)
            for name, m in block.named_modules() if not (isinstance(m, HookPoint) and name in BLOCK_HOOKS)
        ]
    return any(m._forward_hooks or m._forward_pre_hooks for m, _ in points)


def lean_plan(model: HookedTransformer) -> list[bool] | None:
    """Which blocks may run lean now (hooks already added), or None when the model is not
    GPT-2-family. Decide it inside the `hooked` block, after the hooks are on."""
    return [not inner_hooked(b) for b in model.blocks] if lean_ok(model) else None


def _layer_norm(ln: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    dtype = x.dtype
    y = torch.nn.functional.layer_norm(x.float(), x.shape[-1:], ln.w.float(), ln.b.float(), ln.eps)
    return y.to(dtype)


def _fused_qkv(attn: torch.nn.Module, store: dict | None) -> tuple[torch.Tensor, torch.Tensor]:
    """`W_Q`, `W_K`, `W_V` `[heads, d_model, d_head]` as one `[3 * heads * d_head, d_model]`
    matrix and its bias, so the three projections are one matrix product. Built once per call
    (`store` is that call's; d_model x 3 d_model floats, 7 MB a GPT-2-small layer), never kept
    across calls: a weight edited in between is always read fresh."""
    if store is not None and attn in store:
        return store[attn]
    with torch.no_grad():  # [3, heads, d_model, d_head] -> [3 * heads * d_head, d_model]: one copy
        w = torch.stack((attn.W_Q, attn.W_K, attn.W_V)).transpose(-1, -2).reshape(-1, attn.W_Q.shape[1])
        b = torch.stack((attn.b_Q, attn.b_K, attn.b_V)).reshape(-1)
    if store is not None:
        store[attn] = (w, b)
    return w, b


def lean_block(
    block: torch.nn.Module, resid: torch.Tensor, entry, mask: torch.Tensor, store: dict | None = None
) -> torch.Tensor:
    """One GPT-2-family block over `resid` `[batch, pos, d_model]`, extending the cache `entry`;
    `mask` is the full `[batch, cached + pos]` attention mask. Only `BLOCK_HOOKS` fire. The
    query/key/value projection is one fused matrix, built once per `store` (a dict the caller
    keeps for one generation); `W_O`, `W_in` and `W_out` are read as stored, uncopied."""
    f = torch.nn.functional
    resid = block.hook_resid_pre(resid)
    attn, x = block.attn, _layer_norm(block.ln1, resid)
    b, p, _ = x.shape
    heads, d_head = attn.cfg.n_heads, attn.cfg.d_head
    w_qkv, b_qkv = _fused_qkv(attn, store)
    q, k, v = f.linear(x, w_qkv, b_qkv).view(b, p, 3, heads, d_head).unbind(2)
    offset = entry.past_keys.size(1)
    k, v = entry.append(k, v)
    keys = torch.arange(k.shape[1], device=x.device)
    causal = keys[None, :] <= torch.arange(offset, offset + p, device=x.device)[:, None]
    allowed = causal[None, None] & mask.bool()[:, None, None, :]
    q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    z = f.scaled_dot_product_attention(q, k, v, attn_mask=allowed, scale=1.0 / attn.attn_scale)
    z = torch.nan_to_num(z, nan=0.0).transpose(1, 2).reshape(b, p, heads * d_head)  # all-pad rows: 0
    w_o = attn.W_O.reshape(heads * d_head, -1)  # a view, read transposed by `linear`
    resid = block.hook_resid_mid(resid + block.hook_attn_out(f.linear(z, w_o.t(), attn.b_O)))
    mlp, h = block.mlp, _layer_norm(block.ln2, resid).view(b * p, -1)
    h = f.gelu(torch.addmm(mlp.b_in, h, mlp.W_in), approximate=_GELU[block.cfg.act_fn])
    mlp_out = block.hook_mlp_out(torch.addmm(mlp.b_out, h, mlp.W_out).view(b, p, -1))
    return block.hook_resid_post(resid + mlp_out)


def prompt_logits(
    model: HookedTransformer,
    tokens: torch.Tensor,
    mask: torch.Tensor,
    cache: TransformerLensKeyValueCache,
    lean: Sequence[bool] | None = None,
    store: dict | None = None,
) -> torch.Tensor:
    """Run `tokens` `[batch, pos]` through every block (extending `cache`), then read out the
    last position only `[batch, vocab]`: the prompt's other positions are never unembedded.
    `lean[i]` runs block i as `lean_block` instead of transformer-lens' forward (see `lean_plan`);
    pass one `store` dict to every call of a generation so the lean blocks build their fused
    weights once."""
    if lean is None:
        resid = model(tokens, attention_mask=mask, past_kv_cache=cache, stop_at_layer=model.cfg.n_layers)
    else:
        resid, _, _, full_mask = model.input_to_embed(tokens, attention_mask=mask, past_kv_cache=cache)
        for i, block in enumerate(model.blocks):
            if lean[i]:
                resid = lean_block(block, resid, cache[i], full_mask, store)
            else:
                resid = block(resid, past_kv_cache_entry=cache[i], attention_mask=full_mask)
        return final_logits(model, resid[:, -1:], copy_free=True)[:, 0]
    return final_logits(model, resid[:, -1:])[:, 0]
