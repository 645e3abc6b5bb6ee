"""Does this SAE fit this model? `check_sae`, run first by every function taking both.

An SAE applied anywhere but where it was trained still returns numbers, just meaningless ones
(Bricken et al. 2023, "Towards Monosemanticity", train one SAE per activation site). So
`check_sae` catches the mismatches up front: the hook must exist, the SAE's `d_in` must equal
the hook's width, the SAE must have been trained on this model (by name, and for SAEs trained
here by the fingerprint of the weights), and the model must be processed as the SAE expects.
sae-lens records `model_from_pretrained_kwargs`; `gpt2-small-res-jb`, for one, was trained with
`center_writing_weights=True`, which changes every residual-stream activation.

Example:
    >>> interp.check_sae(interp.load_model("toy"), interp.load_sae("toy"))   # passes silently
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import torch
from transformer_lens import HookedTransformer

from interp.core.cache import fingerprint
from interp.core.engine import hook_points
from interp.core.hooks import SITES, harvest

if TYPE_CHECKING:  # pragma: no cover
    from sae_lens import SAE

#: How to retrain the built-in SAE (on the built-in model).
TOY_SAE_RETRAIN = "python -m interp.toy.sae_train"


#: hook-name endings whose activations live in the residual stream's basis (width d_model)
RESIDUAL_HOOKS = ("hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out", "hook_mlp_out")
_CENTRING_HOOKS = (*RESIDUAL_HOOKS, "hook_embed", "hook_pos_embed")  # changed by center_writing_weights


def _official(name: str) -> str:
    from transformer_lens.loading_from_pretrained import get_official_model_name

    try:
        return get_official_model_name(name)
    except ValueError:
        return name


def _hook_width(model: HookedTransformer, sae: SAE, hook: str) -> int | None:
    """The SAE-input width at `hook`, from the hook's kind (None when the kind is unknown)."""
    cfg, last = model.cfg, hook.split(".")[-1]
    if sae.cfg.metadata.hook_head_index is not None:
        return cfg.d_head
    if last in _CENTRING_HOOKS:
        return cfg.d_model
    if ".mlp." in hook and last in ("hook_pre", "hook_post", "hook_pre_linear"):
        return cfg.d_mlp
    if last in ("hook_z", "hook_q", "hook_result"):
        return cfg.n_heads * cfg.d_head
    if last in ("hook_k", "hook_v"):
        return (cfg.n_key_value_heads or cfg.n_heads) * cfg.d_head
    return None


def writing_weights_centred(model: HookedTransformer) -> bool:
    """True when the model's writing weights are centred (`center_writing_weights=True`).

    TransformerLens does not record this in the config, so it is read off the weights: centring
    makes every output row of `W_O` have zero mean over `d_model`.
    """
    w = model.blocks[0].attn.W_O.detach().float()
    return bool(w.mean(-1).abs().max() <= 1e-3 * w.abs().mean().clamp_min(1e-12))


def check_sae(model: HookedTransformer, sae: SAE) -> None:
    """Check that `sae` reads an activation `model` has, of the right width, loaded the right way.

    Raises:
        ValueError: saying exactly what differs: the hook is missing, `d_in` differs from the
            hook's width, the SAE was trained on another model or on other weights of this one
            (the built-in SAE records the weights' fingerprint), or the model was loaded with
            other processing than the SAE expects (e.g. `gpt2-small-res-jb` needs
            `center_writing_weights=True`, which `HookedTransformer.from_pretrained` does and
            `from_pretrained_no_processing` does not).

    Example:
        >>> interp.check_sae(interp.load_model("toy"), interp.load_sae("toy"))   # passes silently
    """
    from interp.core.checks import check_model

    check_model(model)
    for attr in ("cfg", "encode", "W_dec"):
        if not hasattr(sae, attr):
            raise ValueError(f"expected a sae-lens SAE (with .cfg, .encode, .W_dec), got {type(sae).__name__}")
    meta, name = sae.cfg.metadata, model.cfg.model_name
    hook = meta.hook_name
    if not hook:
        raise ValueError(
            "the SAE does not say which activation it reads (sae.cfg.metadata.hook_name is empty); set it, "
            "e.g. sae.cfg.metadata.hook_name = 'blocks.2.hook_resid_post'"
        )
    if hook not in hook_points(model):
        example = SITES["resid_post"].format(layer=model.cfg.n_layers - 1)
        raise ValueError(
            f"the SAE reads hook {hook!r}, which {name!r} does not have "
            f"({model.cfg.n_layers} layers, so blocks.0 ... blocks.{model.cfg.n_layers - 1}; e.g. {example!r})"
        )
    recorded = meta.get("layer") if hasattr(meta, "get") else None
    named = hook.split(".")[1] if hook.startswith("blocks.") else None
    if isinstance(recorded, int) and named is not None and str(recorded) != named:
        raise ValueError(f"the SAE reads hook {hook!r}, but its metadata says it was trained on layer {recorded}")
    want = _hook_width(model, sae, hook)
    if want is None:  # an unusual hook: measure its width with a one-token forward
        want = _probe_width(model, sae, hook)
    if want != sae.cfg.d_in:
        raise ValueError(f"the SAE's d_in is {sae.cfg.d_in} but hook {hook!r} of {name!r} has width {want}")
    trained_on = meta.model_name
    if trained_on and _official(trained_on) != _official(name):
        if _official(name).startswith(_official(trained_on)):
            warnings.warn(
                f"the SAE was trained on {trained_on!r} and is applied to the variant {name!r}", UserWarning, stacklevel=2
            )
        else:
            raise ValueError(f"the SAE was trained on model {trained_on!r}, not {name!r}")
    trained_fp = meta.get("interp_model_fingerprint")
    if trained_fp:
        if trained_fp != fingerprint(model):
            raise ValueError(
                f"the SAE was trained on other weights of {name!r} (fingerprint {trained_fp}, this model "
                f"{fingerprint(model)}); retrain it for these weights ({meta.get('command') or TOY_SAE_RETRAIN})"
            )
    kwargs = meta.model_from_pretrained_kwargs
    if isinstance(kwargs, dict) and hook.split(".")[-1] in _CENTRING_HOOKS:
        expected, actual = bool(kwargs.get("center_writing_weights", False)), writing_weights_centred(model)
        if expected != actual:
            how = (
                "HookedTransformer.from_pretrained(...) (interp.load_model does this)"
                if expected
                else "HookedTransformer.from_pretrained_no_processing(...) or center_writing_weights=False"
            )
            raise ValueError(
                f"the SAE expects the model loaded with center_writing_weights={expected} (sae-lens "
                f"model_from_pretrained_kwargs {kwargs}), but {name!r} has "
                f"{'centred' if actual else 'uncentred'} writing weights; load it with {how}"
            )


@torch.inference_mode()
def _probe_width(model: HookedTransformer, sae: SAE, hook: str) -> int:
    bos = model.tokenizer.bos_token_id if model.tokenizer is not None else None
    tokens = torch.tensor([[bos if bos is not None else 0]], device=model.cfg.device)
    act = harvest(model, tokens, [hook])[hook] if hook.startswith("blocks.") else model.run_with_cache(tokens)[1][hook]
    return int(sae_input(sae, act).shape[-1]) if sae.cfg.reshape_activations != "hook_z" else act[0, 0].numel()


def sae_input(sae: SAE, act: torch.Tensor) -> torch.Tensor:
    """The part of a hook's activation the SAE reads (one head, or heads flattened), on its device."""
    head = sae.cfg.metadata.hook_head_index
    if head is not None:
        act = act[..., head, :]
    elif act.ndim == 4 and sae.cfg.reshape_activations != "hook_z":
        act = act.flatten(-2)
    return act.to(sae.device)
