"""What a feature writes: its decoder direction, read through the unembedding or added as steering.

An SAE reconstructs an activation as `x ~ f W_dec + b_dec`, so feature `i` adds `f_i` times
its decoder row `W_dec[i]` to the model's activation. That row is a direction in the model's
own activation space, which answers two questions without running the model:

- **What does it promote?** Written into the residual stream (through `W_O` or `W_out` when
  the SAE reads attention or MLP internals) and read through the final norm and the
  unembedding, `W_dec W_U` says which output tokens the feature makes more likely (Templeton
  et al. 2024, "Scaling Monosemanticity"; the same read of an MLP neuron's `W_out` row is
  Geva et al. 2022). `relative_logits` reports each token's logit relative to the vocabulary's
  mean, since a constant shift of all logits changes no probability.
- **What does it do when added?** Adding `alpha * W_dec[i]` is what the residual stream would
  gain if the feature fired with activation `alpha`: activation addition with a named concept
  (Turner et al. 2023; Templeton et al. 2024's feature steering). `feature_vector` returns it
  as a `SteeringVector` for `interp.steer`.

Example:
    >>> model, sae = interp.load_model("toy"), interp.load_sae("toy")
    >>> v = interp.feature_vector(model, sae, 12)
    >>> interp.steer(model, "the capital of germany is", v, alpha=8.0).to_frame()
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Float
from transformer_lens import HookedTransformer

from interp.core.checks import no_extra
from interp.core.hooks import SITES, layer_of
from interp.core.readout import direction_logits, through_norm
from interp.sae.encode import check_feature, sae_label
from interp.sae.fit import RESIDUAL_HOOKS, check_sae

if TYPE_CHECKING:  # pragma: no cover
    from sae_lens import SAE

    from interp.steering import SteeringVector


def residual_directions(model: HookedTransformer, sae: SAE) -> Float[torch.Tensor, "d_sae d_model"]:
    """Each feature's decoder row, written into the residual stream (through `W_O` or `W_out`).

    Example:
        >>> residual_directions(model, sae).shape
        torch.Size([1701, 128])
    """
    hook = sae.cfg.metadata.hook_name
    w = sae.W_dec.detach().float().to(model.W_U.device)
    last = hook.split(".")[-1]
    if sae.cfg.metadata.hook_head_index is None and last in RESIDUAL_HOOKS:
        return w
    if sae.cfg.metadata.hook_head_index is None and last == "hook_z":
        w_o = model.blocks[layer_of(hook)].attn.W_O.detach().float()  # [heads, d_head, d_model]
        return torch.einsum("fhd,hdm->fm", w.view(w.shape[0], *w_o.shape[:2]), w_o)
    if ".mlp." in hook and last == "hook_post":
        return w @ model.blocks[layer_of(hook)].mlp.W_out.detach().float()
    raise ValueError(
        f"cannot map features of hook {hook!r} to output tokens: supported are residual-stream hooks "
        f"({', '.join(RESIDUAL_HOOKS)}), attn.hook_z and mlp.hook_post"
    )


def relative_logits(
    model: HookedTransformer,
    directions: Float[torch.Tensor, "n d_model"],
    token_ids: Sequence[int] | None = None,
) -> Float[torch.Tensor, "n tokens"]:
    """The logit each residual direction adds to each token (or to `token_ids`), minus its mean
    over the whole vocabulary: how much it promotes (> 0) or suppresses (< 0) the token.

    Example:
        >>> relative_logits(model, residual_directions(model, sae)[[12]]).topk(5)
    """
    vocab_mean = through_norm(model, directions) @ model.W_U.detach().float().mean(1, keepdim=True)
    return direction_logits(model, directions, token_ids) - vocab_mean


def _site_of(hook: str) -> tuple[str, int]:
    for site, template in SITES.items():
        prefix, suffix = template.split("{layer}")
        if hook.startswith(prefix) and hook.endswith(suffix) and hook[len(prefix) : len(hook) - len(suffix)].isdigit():
            return site, int(hook[len(prefix) : len(hook) - len(suffix)])
    raise ValueError(f"feature steering needs an SAE on one of the sites {', '.join(SITES)}; this one reads {hook!r}")


def _is_sae(value: Any) -> bool:
    return hasattr(value, "W_dec") and hasattr(getattr(value, "cfg", None), "d_sae")


def feature_vector(
    model: HookedTransformer, sae: SAE, /, feature: int | None = None, **deprecated: Any
) -> SteeringVector:
    """A feature's decoder direction as a `SteeringVector` at the SAE's (site, layer), bound to `model`.

    Adding `alpha * vector` is what the residual stream would gain if the feature fired with
    activation `alpha` (times the decoder row's norm, 1 for most trained SAEs), so `alpha` is in
    the units of the feature's activations (see its max-activating examples for a scale).

    Args:
        model: the model the SAE reads (the SAE is checked against it).
        sae: a sae-lens SAE on a site of `interp.core.hooks.SITES` (residual stream, attention
            or MLP output, or MLP neurons).
        feature: the feature index, in `[0, d_sae)`.

    The old order `feature_vector(sae, feature, model=model)` still works for one release, with
    a DeprecationWarning (without `model=` it returns an unbound vector, as before).

    Example:
        >>> v = interp.feature_vector(model, sae, 12)
        >>> interp.steer(model, "the capital of germany is", v, alpha=10.0).to_frame()
    """
    if _is_sae(model):  # the old order: feature_vector(sae, feature, *, model=None)
        warnings.warn(
            "feature_vector(sae, feature, model=model) is deprecated and will be removed in the next release; "
            "use feature_vector(model, sae, feature)", DeprecationWarning, stacklevel=2,
        )
        sae, feature, model = model, (sae if feature is None else feature), deprecated.pop("model", None)
    no_extra(deprecated, "feature_vector")
    if feature is None:
        raise TypeError("feature_vector() missing the feature index: feature_vector(model, sae, feature)")
    from interp.steering import SteeringVector

    if not _is_sae(sae):
        raise ValueError(f"expected a sae-lens SAE (with .cfg, .W_dec), got {type(sae).__name__}")
    feature = check_feature(sae, feature)
    hook = sae.cfg.metadata.hook_name
    if not hook or sae.cfg.metadata.hook_head_index is not None:
        raise ValueError(f"feature steering needs an SAE on a whole activation, not hook {hook!r} head-sliced")
    site, layer = _site_of(hook)
    vector = SteeringVector(sae.W_dec[feature].detach(), layer=layer, site=site, label=f"feature {feature} ({sae_label(sae)})")
    if model is not None:
        check_sae(model, sae)
        vector = vector.bind(model)
    return vector
