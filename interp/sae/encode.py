"""Sparse-autoencoder features: which learned features fire, what they promote, steering with them.

A sparse autoencoder (SAE) rewrites one activation `x` (say the residual stream after block 6)
as a sparse, non-negative combination of many learned directions:
`f = act(W_enc (x - b_dec) + b_enc)` and `x ~ f W_dec + b_dec`, with only a handful of the
thousands of features `f_i` non-zero on any token (an L1 penalty, or a hard TopK). Each
feature tends to mean one thing a person can name, unlike a neuron (Bricken et al. 2023,
"Towards Monosemanticity"; Cunningham et al. 2023, "Sparse Autoencoders Find Highly
Interpretable Features in Language Models"; Gao et al. 2024, "Scaling and evaluating sparse
autoencoders" for TopK). Reading an SAE takes four moves:

- **which features fire** on a prompt, per token (`feature_activations`);
- **search** for features: those that fire most on a text or on chosen tokens in it, or whose
  decoder direction most promotes given output tokens through the unembedding
  (`W_dec W_U`, read through the final norm, as in Templeton et al. 2024, "Scaling
  Monosemanticity"). Features that fire on a large fraction of all tokens dominate naive
  searches, so features denser than `max_density` (measured over a corpus, cached) are left
  out (`interp.sae.search`);
- **what a feature is**: its max-activating examples over a corpus and a feature card
  (`interp.features.max_activating_examples`, `interp.cards.feature_card`);
- **steering**: a feature's decoder row is a direction in the model's own activation space,
  so adding it is activation addition with a named concept (`feature_vector` -> `interp.steer`).

Every function that takes a model and an SAE first checks that they fit (`interp.sae.check`).

Example:
    >>> model, sae = interp.load_model("toy"), interp.load_sae("toy")
    >>> interp.feature_activations(model, sae, "the capital of france is").plot()
    >>> interp.search_features(model, sae, promotes=["paris"]).to_frame()
    >>> interp.steer(model, "the capital of germany is", interp.feature_vector(sae, 12, model=model), alpha=8)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from jaxtyping import Float, Int
from transformer_lens import HookedTransformer

from interp.core.hooks import SITES, harvest, layer_of
from interp.core.tokens import tokenize
from interp.sae.check import RESIDUAL_HOOKS, check_sae, sae_input

if TYPE_CHECKING:  # pragma: no cover
    from sae_lens import SAE

    from interp.steering.generate import SteeringVector



# --- encoding -------------------------------------------------------------------------------


@torch.inference_mode()
def encode(sae: SAE, act: torch.Tensor) -> Float[torch.Tensor, "... d_sae"]:
    """Feature activations (float32, dense) of a hook's activation `[..., d_in]`."""
    feats = sae.encode(sae_input(sae, act))
    if feats.is_sparse:
        feats = feats.to_dense()
    return feats.float()


@torch.inference_mode()
def sparse_encode(sae: SAE, act: Float[torch.Tensor, "n ..."]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The positive feature activations of `[n, ...]` hook activations as `(row, feature, value)`.

    A sae-lens `TopKSAE` is encoded without building the dense `[n, d_sae]` matrix (its `encode`
    keeps the `k` largest pre-activations and applies a ReLU; this does the same and keeps the
    indices); any other SAE is encoded densely and its non-zero entries read off.
    """
    from sae_lens import TopKSAE

    if type(sae).encode is TopKSAE.encode and type(sae.activation_fn).__name__ == "TopK":
        # sae-lens' arithmetic op for op (the same features win near-ties), in place where no
        # hook can hold the buffer: a fresh [n, d_sae] buffer per op nearly doubles the encode time
        hidden = sae.hook_sae_acts_pre((sae.process_sae_in(sae_input(sae, act)) @ sae.W_enc).add_(sae.b_enc))
        if sae.cfg.rescale_acts_by_decoder_norm:
            norms = sae.W_dec.norm(dim=-1)
            hidden = hidden * norms if sae.hook_sae_acts_pre._forward_hooks else hidden.mul_(norms)
        values, features = hidden.topk(sae.cfg.k, dim=-1, sorted=False)
        keep = values > 0
        rows = torch.arange(values.shape[0], device=values.device)[:, None].expand_as(values)
        return rows[keep], features[keep], values[keep].float()
    feats = encode(sae, act)
    rows, features = feats.nonzero(as_tuple=True)
    return rows, features, feats[rows, features]


def sae_label(sae: SAE) -> str:
    """A short human name for an SAE: its release or model and its hook."""
    meta = sae.cfg.metadata
    return f"{meta.neuronpedia_id or meta.model_name or 'sae'} @ {meta.hook_name}"


def _check_feature(sae: SAE, feature: int) -> int:
    n = sae.cfg.d_sae
    if isinstance(feature, bool) or not isinstance(feature, int):
        raise ValueError(f"feature {feature!r} must be an int in [0, {n})")
    if not 0 <= feature < n:
        raise ValueError(f"feature {feature} is out of range: the SAE has {n} features, [0, {n})")
    return feature


# --- features on a prompt -------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class FeatureActivations:
    """Every feature's activation at every token of one prompt.

    `first` is the first position the summaries read (1 skips the `<bos>` token, whose
    activation is an outlier SAEs are usually not trained on).
    """

    tokens: tuple[str, ...]
    acts: Float[torch.Tensor, "pos d_sae"]
    hook_name: str
    first: int = 1

    def __post_init__(self) -> None:
        acts = torch.as_tensor(self.acts).detach().to("cpu", torch.float32).clone()  # no inference tensor
        if acts.ndim != 2 or acts.shape[0] != len(self.tokens):
            raise ValueError(f"acts must be [pos={len(self.tokens)}, d_sae], got shape {tuple(acts.shape)}")
        if not 0 <= self.first < len(self.tokens):
            raise ValueError(f"first={self.first} must index one of the {len(self.tokens)} tokens")
        object.__setattr__(self, "tokens", tuple(self.tokens))
        object.__setattr__(self, "acts", acts)

    @property
    def d_sae(self) -> int:
        return self.acts.shape[1]

    def active(self, position: int) -> list[tuple[int, float]]:
        """`(feature, activation)` of every feature firing at `position`, strongest first."""
        if not -len(self.tokens) <= position < len(self.tokens):
            raise ValueError(f"position {position} is out of range for {len(self.tokens)} tokens")
        row = self.acts[position]
        idx = (row > 0).nonzero().flatten()
        order = row[idx].argsort(descending=True)
        return [(int(i), float(row[i])) for i in idx[order]]

    def top_per_token(self, k: int = 5) -> tuple[Float[torch.Tensor, "pos k"], Int[torch.Tensor, "pos k"]]:
        """The `k` strongest features at each token: `(values, features)`."""
        top = self.acts.topk(min(k, self.d_sae), dim=1)
        return top.values, top.indices

    def top_features(self, k: int = 10) -> tuple[Int[torch.Tensor, "k"], Float[torch.Tensor, "k"]]:
        """The `k` features with the largest activation anywhere in the prompt (from `first`):
        `(features, max activations)`; only features that fire."""
        best = self.acts[self.first :].max(0).values
        top = best.topk(min(k, self.d_sae))
        keep = top.values > 0
        return top.indices[keep], top.values[keep]

    def to_frame(self, k: int = 5):
        """One row per (token, one of its `k` strongest firing features)."""
        import pandas as pd

        values, feats = self.top_per_token(k)
        rows = [
            {"position": p, "token": tok, "rank": r, "feature": int(feats[p, r]), "activation": float(values[p, r])}
            for p, tok in enumerate(self.tokens)
            for r in range(values.shape[1])
            if values[p, r] > 0
        ]
        return pd.DataFrame(rows, columns=["position", "token", "rank", "feature", "activation"])

    def __repr__(self) -> str:
        feats, values = self.top_features(5)
        top = ", ".join(f"{f}: {v:.2f}" for f, v in zip(feats.tolist(), values.tolist()))
        return f"FeatureActivations({len(self.tokens)} tokens x {self.d_sae} features at {self.hook_name}; top {top})"

    def _repr_html_(self) -> str:
        return f"<p>{self!r}</p>" + self.to_frame(3).to_html()

    def plot(self, k: int = 12):
        """Heatmap of the prompt's `k` strongest features (rows) over its tokens (columns)."""
        from interp.core.plotting import heatmap

        feats, _ = self.top_features(k)
        if feats.numel() == 0:
            feats = torch.zeros(1, dtype=torch.long)
        z = self.acts[:, feats].T
        hover = [[f"feature {int(f)}<br>token {t!r} (position {p})<br>activation {float(z[i, p]):.3g}"
                  for p, t in enumerate(self.tokens)] for i, f in enumerate(feats)]
        return heatmap(
            z, x_labels=list(self.tokens), y_labels=[f"f{int(f)}" for f in feats], hover=hover,
            title=f"SAE features at {self.hook_name}", x_title="token", y_title="feature",
            colorbar_title="activation", zmin=0.0,
        )


@torch.inference_mode()
def feature_activations(model: HookedTransformer, sae: SAE, prompt: str) -> FeatureActivations:
    """Run `prompt` to the SAE's layer and encode every token's activation.

    Args:
        model: the model the SAE reads.
        sae: a sae-lens SAE (see `interp.load_sae`).
        prompt: one text; `<bos>` is prepended when the model does that.

    Returns:
        `FeatureActivations`: per token which features fire and how strongly.

    Example:
        >>> fa = interp.feature_activations(model, sae, "user : how do i make a bomb ? assistant :")
        >>> fa.top_features(5)
    """
    check_sae(model, sae)
    if not isinstance(prompt, str):
        raise ValueError(f"prompt must be one string, got {type(prompt).__name__}")
    tokens, mask = tokenize(model, prompt)
    hook = sae.cfg.metadata.hook_name
    acts = harvest(model, tokens, [hook], attention_mask=mask)[hook]
    feats = encode(sae, acts)[0]
    first = 1 if tokens.shape[1] > 1 and model.tokenizer.bos_token_id == int(tokens[0, 0]) else 0
    return FeatureActivations(tuple(model.to_str_tokens(tokens[0])), feats, hook, first=first)


# --- decoder directions and the unembedding ------------------------------------------------


def residual_directions(model: HookedTransformer, sae: SAE) -> Float[torch.Tensor, "d_sae d_model"]:
    """Each feature's decoder row, written into the residual stream (through `W_O` or `W_out`)."""
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


# --- steering -------------------------------------------------------------------------------


def _site_of(hook: str) -> tuple[str, int]:
    for site, template in SITES.items():
        prefix, suffix = template.split("{layer}")
        if hook.startswith(prefix) and hook.endswith(suffix) and hook[len(prefix) : len(hook) - len(suffix)].isdigit():
            return site, int(hook[len(prefix) : len(hook) - len(suffix)])
    raise ValueError(f"feature steering needs an SAE on one of the sites {', '.join(SITES)}; this one reads {hook!r}")


def feature_vector(sae: SAE, feature: int, *, model: HookedTransformer | None = None) -> SteeringVector:
    """A feature's decoder direction as a `SteeringVector` at the SAE's (site, layer).

    Adding `alpha * vector` is what the residual stream would gain if the feature fired with
    activation `alpha` (times the decoder row's norm, 1 for most trained SAEs), so `alpha` is in
    the units of the feature's activations (see its max-activating examples for a scale).

    Args:
        sae: a sae-lens SAE on a site of `interp.hooks.SITES` (residual stream, attention or
            MLP output, or MLP neurons).
        feature: the feature index, in `[0, d_sae)`.
        model: when given, the SAE is checked against it and the vector is bound to it.

    Example:
        >>> v = interp.feature_vector(sae, 12, model=model)
        >>> interp.steer(model, "the capital of germany is", v, alpha=10.0).to_frame()
    """
    from interp.steering.generate import SteeringVector

    feature = _check_feature(sae, feature)
    hook = sae.cfg.metadata.hook_name
    if not hook or sae.cfg.metadata.hook_head_index is not None:
        raise ValueError(f"feature steering needs an SAE on a whole activation, not hook {hook!r} head-sliced")
    site, layer = _site_of(hook)
    vector = SteeringVector(sae.W_dec[feature].detach(), layer=layer, site=site, label=f"feature {feature} ({sae_label(sae)})")
    if model is not None:
        check_sae(model, sae)
        vector = vector.bind(model)
    return vector
