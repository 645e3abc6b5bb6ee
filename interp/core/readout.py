"""The read-out: residual stream -> final norm -> unembedding -> (soft-capped) logits.

Every technique that asks "what tokens does this vector or this layer predict?" does the same
thing the model does after its last block. This module is the one place that does it:

- `final_logits(model, resid)` decodes residual vectors exactly as the model decodes its last
  layer, each vector normalized with its *own* statistics (the logit lens; nostalgebraist 2020),
  with Gemma-2's output soft-cap `cap * tanh(logits / cap)` applied;
- `last_logits(model, tokens, mask)` runs the blocks and unembeds only the last position
  (left padding puts every prompt's last token there), so a batch never materialises
  `[batch, pos, vocab]`;
- `direction_logits(model, directions)` is the *linear* read of a direction, with no per-vector
  normalization: centred for LayerNorm and scaled by the final norm's weight, then times `W_U`
  (how an SAE feature's `W_dec` row, or a neuron's `W_out` row, promotes tokens: Geva et al.
  2022, "Transformer Feed-Forward Layers Build Predictions by Promoting Concepts in the
  Vocabulary Space"; Templeton et al. 2024).

Example:
    >>> acts = interp.harvest(model, tokens, [("resid_post", -1)])
    >>> torch.allclose(final_logits(model, acts["blocks.3.hook_resid_post"]), model(tokens), atol=1e-4)
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Float
from transformer_lens import HookedTransformer

from interp.core.engine import is_bridge
from interp.core.hooks import run_to


def soft_cap(model: HookedTransformer, logits: torch.Tensor) -> torch.Tensor:
    """Apply the model's output soft-cap (Gemma-2), if it has one."""
    cap = getattr(model.cfg, "output_logits_soft_cap", None)
    if cap is not None and cap > 0:
        return cap * torch.tanh(logits / cap)
    return logits


def final_logits(
    model: HookedTransformer, resid: Float[torch.Tensor, "... d_model"], *, copy_free: bool = False
) -> Float[torch.Tensor, "... d_vocab"]:
    """Decode residual-stream vectors the way the model decodes its last layer.

    `final_logits(model, resid_post[-1])` equals the model's logits bitwise. transformer-lens'
    `Unembed` gets there by copying `W_U`'s transpose (154 MB for GPT-2) on every call;
    `copy_free=True` reads `W_U` as stored instead: equal to float rounding (on a CPU bitwise
    from about 8 rows, ~1e-5 apart below), for read-outs that call it many times or on many
    rows (the lens, generation steps). A hook on the unembedding's hook points is honoured
    either way.

    Example:
        >>> final_logits(model, acts["blocks.2.hook_resid_post"]).shape
        torch.Size([1, 6, 50257])
    """
    if not isinstance(resid, torch.Tensor) or not resid.is_floating_point() or resid.shape[-1:] != (model.cfg.d_model,):
        shown = f"a {type(resid).__name__}" if not isinstance(resid, torch.Tensor) else (
            f"a {resid.dtype} tensor of shape {tuple(resid.shape)}")
        raise ValueError(f"resid is {shown}: expected a float tensor [..., {model.cfg.d_model}] (d_model)")
    x = resid
    if model.cfg.normalization_type is not None:
        x = model.ln_final(x)
    unembed = model.unembed
    if copy_free and not (unembed.hook_in._forward_hooks or unembed.hook_out._forward_hooks):
        return soft_cap(model, torch.nn.functional.linear(x, unembed.W_U.t(), unembed.b_U))
    return soft_cap(model, unembed(x))


def last_logits(
    model: HookedTransformer, tokens: torch.Tensor, mask: torch.Tensor | None = None
) -> Float[torch.Tensor, "batch vocab"]:
    """Logits at the last position only, the other positions never unembedded."""
    if is_bridge(model):
        name = f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"
        resid = run_to(model, tokens, [name], attention_mask=mask, select=lambda act: act[:, -1:], detach=False)[name]
        return final_logits(model, resid)[:, 0]
    resid = model(tokens, attention_mask=mask, stop_at_layer=model.cfg.n_layers)[:, -1:]
    return final_logits(model, resid)[:, 0]


def through_norm(model: HookedTransformer, directions: torch.Tensor) -> torch.Tensor:
    """Directions as the final norm passes them on linearly: centred for LayerNorm, times its
    scale (on a bridge, the scale the Hugging Face norm applies: `1 + weight` for Gemma's)."""
    x = directions.float().to(model.W_U.device)
    if model.cfg.normalization_type in ("LN", "LNPre"):
        x = x - x.mean(-1, keepdim=True)
    w_ln = norm_scale(model) if is_bridge(model) else getattr(model.ln_final, "w", None)
    return x * w_ln.detach().float() if w_ln is not None else x


@torch.no_grad()
def norm_scale(model: HookedTransformer) -> torch.Tensor:
    """The per-dimension scale of a bridge's final norm, measured on the Hugging Face module itself
    (no hooks): every norm maps a mean-zero probe `c s` to `s / rms(s)` times its scale, plus its
    bias (its output at 0), whatever it calls its weight (`weight`, or `1 + weight` for Gemma).
    Two probes (`s`, and `s` shifted by one) cover every dimension when d_model is odd."""
    norm = getattr(model.ln_final, "original_component", model.ln_final)
    w = model.W_U
    d = model.cfg.d_model
    s = torch.ones(d, device=w.device)
    s[1::2] = -1.0
    if d % 2:
        s[-1] = 0.0  # the probe's mean is exactly 0
    probes = torch.stack([s, s.roll(1)])
    rms = probes.pow(2).mean(-1, keepdim=True).sqrt()
    dtype = next((p.dtype for p in norm.parameters()), torch.float32)
    bias = norm(torch.zeros(1, d, device=w.device, dtype=dtype)).float()
    out = (norm((1e3 * probes).to(dtype)).float() - bias) * rms  # = scale * s
    return torch.where(s != 0, out[0] * s, out[1] * s.roll(1))


def direction_logits(
    model: HookedTransformer,
    directions: Float[torch.Tensor, "n d_model"],
    token_ids: Sequence[int] | None = None,
) -> Float[torch.Tensor, "n vocab"]:
    """Logit effect `[n, vocab]` (or `[n, len(token_ids)]`) of residual directions, read
    linearly through the final norm and `W_U`."""
    w_u = model.W_U.detach().float()
    return through_norm(model, directions) @ (w_u if token_ids is None else w_u[:, list(token_ids)])
