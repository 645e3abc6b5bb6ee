"""Which features fire: encode a model's activations with a sparse autoencoder.

A sparse autoencoder (SAE) rewrites one activation `x` (say the residual stream after block 6)
as a sparse, non-negative combination of many learned directions:
`f = act(W_enc (x - b_dec) + b_enc)` and `x ~ f W_dec + b_dec`, with only a handful of the
thousands of features `f_i` non-zero on any token (an L1 penalty, or a hard TopK). Each
feature tends to mean one thing a person can name, unlike a neuron (Bricken et al. 2023,
"Towards Monosemanticity"; Cunningham et al. 2023, "Sparse Autoencoders Find Highly
Interpretable Features in Language Models"; Gao et al. 2024, "Scaling and evaluating sparse
autoencoders" for TopK). This module is the encoder side: `feature_activations` runs a prompt
to the SAE's hook and encodes every token; `encode` and `sparse_encode` are the building blocks
the corpus pass (`interp.sae.stream`) and the search (`interp.sae.search`) use. What a feature
writes (its decoder direction) is in `interp.sae.directions`.

Example:
    >>> model, sae = interp.load_model("toy"), interp.load_sae("toy")
    >>> fa = interp.feature_activations(model, sae, "the capital of france is")
    >>> fa.top_features(5)
    >>> fa.plot()
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from jaxtyping import Float, Int
from transformer_lens import HookedTransformer

from interp.core.checks import check_count, check_prompt
from interp.core.hooks import harvest
from interp.core.results import Result
from interp.core.tokens import tokenize, wants_bos
from interp.sae.fit import check_sae, sae_input

if TYPE_CHECKING:  # pragma: no cover
    from sae_lens import SAE


# --- encoding -------------------------------------------------------------------------------


@torch.inference_mode()
def dense_encode(sae: SAE, act: torch.Tensor) -> Float[torch.Tensor, "... d_sae"]:
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
    feats = dense_encode(sae, act)
    rows, features = feats.nonzero(as_tuple=True)
    return rows, features, feats[rows, features]


def sae_label(sae: SAE) -> str:
    """A short human name for an SAE: its release or model and its hook."""
    meta = sae.cfg.metadata
    return f"{meta.neuronpedia_id or meta.model_name or 'sae'} @ {meta.hook_name}"


def check_feature(sae: SAE, feature: int) -> int:
    """`feature` if it is an int in `[0, d_sae)`; a ValueError naming the valid range otherwise."""
    n = sae.cfg.d_sae
    if isinstance(feature, bool) or not isinstance(feature, numbers.Integral):
        raise ValueError(f"feature {feature!r} must be an int in [0, {n})")
    if not 0 <= feature < n:
        raise ValueError(f"feature {feature} is out of range: the SAE has {n} features, [0, {n})")
    return int(feature)


# --- features on a prompt -------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class FeatureActivations(Result):
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
        self._freeze()

    @property
    def d_sae(self) -> int:
        return self.acts.shape[1]

    def active(self, position: int) -> list[tuple[int, float]]:
        """`(feature, activation)` of every feature firing at `position`, strongest first."""
        n = len(self.tokens)
        if isinstance(position, bool) or not isinstance(position, numbers.Integral) or not -n <= position < n:
            raise ValueError(f"position {position!r} is out of range for {n} tokens: expected an int in [-{n}, {n})")
        row = self.acts[position]
        idx = (row > 0).nonzero().flatten()
        order = row[idx].argsort(descending=True)
        return [(int(i), float(row[i])) for i in idx[order]]

    def top_per_token(self, k: int = 5) -> tuple[Float[torch.Tensor, "pos k"], Int[torch.Tensor, "pos k"]]:
        """The `k` strongest features at each token: `(values, features)`; a `k` above `d_sae`
        gives all of them (accepted by design)."""
        top = self.acts.topk(min(check_count(k, "k"), self.d_sae), dim=1)
        return top.values, top.indices

    def top_features(self, k: int = 10) -> tuple[Int[torch.Tensor, "k"], Float[torch.Tensor, "k"]]:
        """The `k` features with the largest activation anywhere in the prompt (from `first`):
        `(features, max activations)`; only features that fire (a `k` above `d_sae` gives all)."""
        best = self.acts[self.first :].max(0).values
        top = best.topk(min(check_count(k, "k"), self.d_sae))
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

    def summary(self) -> str:
        """One line: tokens, features, hook and the strongest features."""
        feats, values = self.top_features(5)
        top = ", ".join(f"{f}: {v:.2f}" for f, v in zip(feats.tolist(), values.tolist()))
        return f"FeatureActivations({len(self.tokens)} tokens x {self.d_sae} features at {self.hook_name}; top {top})"

    def __repr__(self) -> str:
        return self.summary()

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
    check_prompt(prompt, "prompt")
    tokens, mask = tokenize(model, prompt)
    hook = sae.cfg.metadata.hook_name
    acts = harvest(model, tokens, [hook], attention_mask=mask)[hook]
    feats = dense_encode(sae, acts)[0]
    # skip position 0 when it is <bos>, or when the model reads text without <bos>: then the first
    # token is the attention sink, an outlier (SmolLM2: ~100x the residual norm) no SAE is trained on
    starts = model.tokenizer.bos_token_id == int(tokens[0, 0]) or not wants_bos(model)
    first = 1 if tokens.shape[1] > 1 and starts else 0
    return FeatureActivations(tuple(model.to_str_tokens(tokens[0])), feats, hook, first=first)
