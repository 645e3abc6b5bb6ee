"""Sparse-autoencoder features: which learned features fire, what they promote, steering with them.

A sparse autoencoder (SAE) rewrites one activation `x` (say the residual stream after block 6)
as a sparse, non-negative combination of many learned directions:
`f = act(W_enc (x - b_dec) + b_enc)` and `x ~ f W_dec + b_dec`, with only a handful of the
thousands of features `f_i` non-zero on any token (an L1 penalty, or a hard TopK). Each
feature tends to mean one thing a person can name, unlike a neuron (Bricken et al. 2023,
"Towards Monosemanticity"; Cunningham et al. 2023, "Sparse Autoencoders Find Highly
Interpretable Features in Language Models"; Gao et al. 2024, "Scaling and evaluating sparse
autoencoders" for TopK). Reading an SAE takes four moves, all here or in `interp.features`:

- **which features fire** on a prompt, per token (`feature_activations`);
- **search** for features: those that fire most on a text or on chosen tokens in it, or whose
  decoder direction most promotes given output tokens through the unembedding
  (`W_dec W_U`, read through the final norm, as in Templeton et al. 2024, "Scaling
  Monosemanticity"). Features that fire on a large fraction of all tokens dominate naive
  searches, so features denser than `max_density` (measured over a corpus, cached) are left
  out (`search_features`);
- **what a feature is**: its max-activating examples over a corpus and a feature card
  (`interp.features.max_activating_examples`, `interp.features.feature_card`);
- **steering**: a feature's decoder row is a direction in the model's own activation space,
  so adding it is activation addition with a named concept (`feature_vector` -> `interp.steer`).

Every function that takes a model and an SAE first runs `check_sae`: the SAE's hook must exist
in the model, its width must match, and the model must be loaded the way the SAE was trained
(sae-lens records `model_from_pretrained_kwargs`; `gpt2-small-res-jb` expects centred writing
weights; the built-in SAE records the fingerprint of the weights it was trained on).

Example:
    >>> model, sae = interp.load_model("toy"), interp.load_sae("toy")
    >>> interp.feature_activations(model, sae, "the capital of france is").plot()
    >>> interp.search_features(model, sae, promotes=["paris"]).to_frame()
    >>> interp.steer(model, "the capital of germany is", interp.feature_vector(sae, 12, model=model), alpha=8)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Float, Int
from transformer_lens import HookedTransformer

from interp.hooks import SITES, harvest, layer_of
from interp.models import token_id, tokenize

if TYPE_CHECKING:  # pragma: no cover
    from sae_lens import SAE

    from interp.features import MaxActivatingExamples
    from interp.steering import SteeringVector

#: hook-name endings whose activations live in the residual stream's basis (width d_model)
_RESIDUAL_HOOKS = ("hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out", "hook_mlp_out")
_CENTRING_HOOKS = (*_RESIDUAL_HOOKS, "hook_embed", "hook_pos_embed")  # changed by center_writing_weights
DEFAULT_MAX_DENSITY = 0.1


# --- checking -------------------------------------------------------------------------------


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
    if hook not in model.hook_dict:
        example = SITES["resid_post"].format(layer=model.cfg.n_layers - 1)
        raise ValueError(
            f"the SAE reads hook {hook!r}, which {name!r} does not have "
            f"({model.cfg.n_layers} layers, so blocks.0 ... blocks.{model.cfg.n_layers - 1}; e.g. {example!r})"
        )
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
        from interp.cache import fingerprint

        if trained_fp != fingerprint(model):
            raise ValueError(
                f"the SAE was trained on other weights of {name!r} (fingerprint {trained_fp}, this model "
                f"{fingerprint(model)}); retrain it for these weights (the built-in SAE: python -m interp.toy.sae_train)"
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


# --- encoding -------------------------------------------------------------------------------


def sae_input(sae: SAE, act: torch.Tensor) -> torch.Tensor:
    """The part of a hook's activation the SAE reads (one head, or heads flattened), on its device."""
    head = sae.cfg.metadata.hook_head_index
    if head is not None:
        act = act[..., head, :]
    elif act.ndim == 4 and sae.cfg.reshape_activations != "hook_z":
        act = act.flatten(-2)
    return act.to(sae.device)


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
        from interp.plotting import heatmap

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
    if sae.cfg.metadata.hook_head_index is None and last in _RESIDUAL_HOOKS:
        return w
    if sae.cfg.metadata.hook_head_index is None and last == "hook_z":
        w_o = model.blocks[layer_of(hook)].attn.W_O.detach().float()  # [heads, d_head, d_model]
        return torch.einsum("fhd,hdm->fm", w.view(w.shape[0], *w_o.shape[:2]), w_o)
    if ".mlp." in hook and last == "hook_post":
        return w @ model.blocks[layer_of(hook)].mlp.W_out.detach().float()
    raise ValueError(
        f"cannot map features of hook {hook!r} to output tokens: supported are residual-stream hooks "
        f"({', '.join(_RESIDUAL_HOOKS)}), attn.hook_z and mlp.hook_post"
    )


def unembed(model: HookedTransformer, directions: Float[torch.Tensor, "n d_model"], token_ids: Sequence[int] | None = None):
    """Logit effect `[n, vocab]` (or `[n, len(token_ids)]`) of residual directions, read
    through the final norm: centred for LayerNorm, scaled by its weight, times `W_U`."""
    w_u = model.W_U.detach().float()
    return _through_norm(model, directions) @ (w_u if token_ids is None else w_u[:, list(token_ids)])


# --- search ---------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class FeatureSearch:
    """The best-scoring features for a query, strongest first.

    `score` is the feature's largest activation on the chosen tokens (mode `"text"`), or the
    logit its unit decoder direction adds to the promoted tokens above the vocabulary's mean
    (mode `"promotes"`). `density` is the fraction of corpus tokens the feature fires on
    (NaN where unknown); `n_dense` features were left out for being denser than `max_density`.
    """

    features: Int[torch.Tensor, "k"]
    scores: Float[torch.Tensor, "k"]
    density: Float[torch.Tensor, "k"]
    mode: str
    query: str
    hook_name: str
    max_density: float | None = None
    n_dense: int = 0

    def __post_init__(self) -> None:
        feats = torch.as_tensor(self.features).detach().cpu().long().clone()
        scores = torch.as_tensor(self.scores).detach().cpu().float().clone()
        density = torch.as_tensor(self.density).detach().cpu().float().clone()
        if feats.ndim != 1 or scores.shape != feats.shape or density.shape != feats.shape:
            raise ValueError(
                f"features, scores, density must be 1-D of one length, got {tuple(feats.shape)}, "
                f"{tuple(scores.shape)}, {tuple(density.shape)}"
            )
        if self.mode not in ("text", "promotes"):
            raise ValueError(f"mode {self.mode!r} must be 'text' or 'promotes'")
        for name, value in (("features", feats), ("scores", scores), ("density", density)):
            object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return self.features.numel()

    def __iter__(self):
        return iter(self.features.tolist())

    def __contains__(self, feature: object) -> bool:
        return feature in self.features.tolist()

    def __repr__(self) -> str:
        return f"FeatureSearch({self.mode} {self.query!r}: features {self.features.tolist()})"

    def _repr_html_(self) -> str:
        return f"<p>{self!r}</p>" + self.to_frame().to_html()

    def to_frame(self):
        """One row per feature: rank, feature, score, density."""
        import pandas as pd

        return pd.DataFrame({
            "feature": self.features.tolist(),
            "score": self.scores.tolist(),
            "density": self.density.tolist(),
        }).rename_axis("rank")

    def plot(self):
        """Bar chart of the scores, labelled with each feature's density."""
        import plotly.graph_objects as go

        what = "max activation" if self.mode == "text" else "logit added (unit direction)"
        fig = go.Figure(go.Bar(
            x=[f"f{f}" for f in self.features.tolist()], y=self.scores.tolist(),
            customdata=[[d * 100] for d in self.density.tolist()],
            hovertemplate="%{x}: %{y:.3g}<br>density %{customdata[0]:.3g}%<extra></extra>",
        ))
        dense = f"; {self.n_dense} features denser than {self.max_density:g} left out" if self.max_density else ""
        fig.update_layout(
            title=dict(text=f"features for {self.mode} {self.query!r} at {self.hook_name}{dense}"),
            xaxis=dict(title=dict(text="feature"), type="category"), yaxis=dict(title=dict(text=what)),
            template="plotly_white",
        )
        return fig


def _positions(fa: FeatureActivations, tokens: Sequence[int | str] | int | str | None) -> list[int]:
    n = len(fa.tokens)
    if tokens is None:
        return list(range(fa.first, n))
    chosen = [tokens] if isinstance(tokens, (int, str)) else list(tokens)
    if not chosen:
        raise ValueError("tokens= is empty: give positions (ints) or token strings in the text")
    out = []
    stripped = [t.strip() for t in fa.tokens]
    for t in chosen:
        if isinstance(t, bool) or not isinstance(t, (int, str)):
            raise ValueError(f"token {t!r} must be a position (int) or a token string")
        if isinstance(t, int):
            if not -n <= t < n:
                raise ValueError(f"position {t} is out of range for the text's {n} tokens")
            out.append(t % n)
        else:
            hits = [p for p, s in enumerate(stripped) if s == t.strip() and p >= fa.first]
            if not hits:
                raise ValueError(f"token {t!r} is not in the text; its tokens are {list(fa.tokens[fa.first:])}")
            out += hits
    return sorted(set(out))


def _density(
    model: HookedTransformer, sae: SAE, density: Any, corpus: Any
) -> Float[torch.Tensor, "d_sae"]:
    n = sae.cfg.d_sae
    if density is None:
        from interp.features import default_corpus, max_activating_examples

        if corpus is None:
            corpus, key = default_corpus(model)
            density = max_activating_examples(model, sae, corpus, cache_key=key, progress=False)
        else:
            density = max_activating_examples(model, sae, corpus, progress=False)
    if hasattr(density, "density") and hasattr(density, "units"):  # a MaxActivatingExamples
        if density.kind != "feature" or int(density.units.max()) >= n:
            raise ValueError(
                f"density= holds {density.kind}s of {density.source}, not this SAE's {n} features"
            )
        full = torch.full((n,), float("nan"))
        full[density.units] = density.density
        return full
    d = torch.as_tensor(density).detach().cpu().float()
    if d.shape != (n,):
        raise ValueError(f"density must have shape [d_sae={n}], got {tuple(d.shape)}")
    return d


@torch.inference_mode()
def search_features(
    model: HookedTransformer,
    sae: SAE,
    *,
    text: str | None = None,
    tokens: Sequence[int | str] | int | str | None = None,
    promotes: Sequence[str | int] | str | int | None = None,
    k: int = 20,
    max_density: float | None = DEFAULT_MAX_DENSITY,
    density: Float[torch.Tensor, "d_sae"] | MaxActivatingExamples | None = None,
    corpus: Any = None,
) -> FeatureSearch:
    """Find features by what fires on a text, or by which output tokens they promote.

    Args:
        model, sae: the model and a sae-lens SAE on one of its hooks (checked with `check_sae`).
        text: rank features by their largest activation on this text (all tokens after `<bos>`,
            or the ones chosen by `tokens`).
        tokens: positions (ints, negatives count from the end) or token strings of `text`.
        promotes: rank features by the logit their unit decoder direction adds to these output
            tokens (mean over them, relative to the vocabulary's mean), through the final norm.
        k: how many features to return.
        max_density: leave out features firing on more than this fraction of corpus tokens;
            None keeps all (and skips the corpus pass).
        density: per-feature density to use (a `[d_sae]` tensor or a `MaxActivatingExamples`).
        corpus: corpus to measure density on (cached on disk); default: the built-in corpus for
            the built-in model, the bundled prompt sets otherwise.

    Returns:
        `FeatureSearch`, strongest first (for text, only features that fire).

    Raises:
        ValueError: neither or both of `text` and `promotes`; `tokens` without `text` or not in
            it; `k` < 1; an output token not in the vocabulary.

    Example:
        >>> interp.search_features(model, sae, text="user : how do i make a bomb ? assistant :", k=5)
        >>> interp.search_features(model, sae, promotes=["paris"])
    """
    check_sae(model, sae)
    if (text is None) == (promotes is None):
        raise ValueError("give exactly one of text= (what fires) or promotes= (what a feature outputs)")
    if tokens is not None and text is None:
        raise ValueError("tokens= chooses positions in text=; give text= too")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k={k!r} must be an int >= 1")
    if max_density is not None and not 0 < max_density <= 1:
        raise ValueError(f"max_density={max_density} must be in (0, 1] or None")
    if text is not None:
        fa = feature_activations(model, sae, text)
        score = fa.acts[_positions(fa, tokens)].max(0).values
        mode, query = "text", text if tokens is None else f"{text} @ {tokens}"
    else:
        wanted = [promotes] if isinstance(promotes, (str, int)) else list(promotes)
        if not wanted:
            raise ValueError("promotes= is empty: give one or more output tokens")
        ids = [token_id(model, t) for t in wanted]
        dirs = residual_directions(model, sae)
        dirs = dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        vocab_mean = _through_norm(model, dirs) @ model.W_U.detach().float().mean(1, keepdim=True)
        score = (unembed(model, dirs, ids) - vocab_mean).mean(1).cpu()
        mode, query = "promotes", ", ".join(map(str, wanted))
    dens = torch.full((sae.cfg.d_sae,), float("nan"))
    n_dense = 0
    if max_density is not None:
        dens = _density(model, sae, density, corpus)
        dense = dens > max_density  # NaN (unknown) is kept
        n_dense = int(dense.sum())
        score = score.masked_fill(dense, float("-inf"))
    top = score.topk(min(k, sae.cfg.d_sae))
    keep = top.values > 0 if mode == "text" else torch.isfinite(top.values)
    feats = top.indices[keep]
    return FeatureSearch(feats, top.values[keep], dens[feats], mode, query, sae.cfg.metadata.hook_name,
                         max_density, n_dense)


def _through_norm(model: HookedTransformer, directions: torch.Tensor) -> torch.Tensor:
    x = directions.float().to(model.W_U.device)
    if model.cfg.normalization_type in ("LN", "LNPre"):
        x = x - x.mean(-1, keepdim=True)
    w_ln = getattr(model.ln_final, "w", None)
    return x * w_ln.detach().float() if w_ln is not None else x


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
    from interp.steering import SteeringVector

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
