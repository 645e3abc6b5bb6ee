"""Search an SAE's features: by what fires on a text, or by what a feature writes to the output.

Two questions find features fast. **What fires here?** Run a text to the SAE's hook, encode
every token and rank features by their largest activation on the chosen tokens. **What
promotes this output?** A feature's decoder row is a direction in the residual stream; read
through the final norm and the unembedding (`W_dec W_U`, as in Templeton et al. 2024, "Scaling
Monosemanticity"), it says which tokens the feature makes more likely. Features that fire on a
large fraction of all tokens top naive searches without meaning much, so features denser than
`max_density` (measured once over a corpus by `max_activating_examples`, cached on disk) are
left out.

Example:
    >>> interp.search_features(model, sae, text="user : how do i steal a car ? assistant :", k=5)
    >>> interp.search_features(model, sae, promotes=["paris"]).to_frame()
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Float, Int
from transformer_lens import HookedTransformer

from interp.core.tokens import token_id
from interp.core.readout import direction_logits, through_norm
from interp.sae.encode import FeatureActivations, feature_activations, residual_directions
from interp.sae.check import check_sae

if TYPE_CHECKING:  # pragma: no cover
    from sae_lens import SAE

    from interp.sae.examples import MaxActivatingExamples

DEFAULT_MAX_DENSITY = 0.1


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
        from interp.sae.examples import default_corpus, max_activating_examples

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
        vocab_mean = through_norm(model, dirs) @ model.W_U.detach().float().mean(1, keepdim=True)
        score = (direction_logits(model, dirs, ids) - vocab_mean).mean(1).cpu()
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
