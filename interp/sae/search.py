"""Search an SAE's features: by what fires on a text, or by what a feature writes to the output.

Two questions find features fast (Templeton et al. 2024, "Scaling Monosemanticity", search their
SAEs both ways). **What fires here?** Run a text to the SAE's hook, encode every token and rank
features by their largest activation on the chosen positions. **What promotes this output?** A
feature's decoder row is a direction in the residual stream; read through the final norm and the
unembedding (`W_dec W_U`, `interp.sae.directions`), it says which tokens the feature makes more
likely. That second search needs only the weights: no text, no corpus.

Features that fire on a large fraction of all tokens top naive searches without meaning much
(Bricken et al. 2023, "Towards Monosemanticity"), so features denser than `max_density` are left
out. Density is measured over a corpus (`feature_density`): the one you pass, or else the
model's default corpus, measured once (with a progress bar) and cached on disk. A text search
measures it when it is not cached yet; an output search (`promotes=`) never streams a corpus: it
uses the cached density when there is one and otherwise ranks every feature, and its result says
which (`FeatureSearch.density_from`).

Example:
    >>> interp.search_features(model, sae, text="user : how do i steal a car ? assistant :", k=5)
    >>> interp.search_features(model, sae, text="the capital of france is", positions="last")
    >>> interp.search_features(model, sae, promotes=["paris"]).to_frame()
"""

from __future__ import annotations

import numbers
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Float, Int
from transformer_lens import HookedTransformer

from interp.core.cache import cached
from interp.core.checks import MISSING, check_corpus, check_flag, check_model, check_number, check_prompt, no_extra, renamed
from interp.core.profiles import profile_for
from interp.core.results import Result
from interp.core.tokens import post_instruction_length, token_id
from interp.data.corpus import Corpus
from interp.sae.directions import relative_logits, residual_directions
from interp.sae.encode import FeatureActivations, feature_activations
from interp.sae.examples import MaxActivatingExamples, default_corpus, max_activating_examples
from interp.sae.fit import check_sae
from interp.sae.stream import sae_fingerprint

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go
    from sae_lens import SAE

DEFAULT_MAX_DENSITY = 0.1
Position = int | str


@dataclass(frozen=True, repr=False)
class FeatureSearch(Result):
    """The best-scoring features for a query, strongest first.

    `score` is the feature's largest activation on the chosen positions (mode `"text"`), or the
    logit its unit decoder direction adds to the promoted tokens above the vocabulary's mean
    (mode `"promotes"`). `density` is the fraction of corpus tokens the feature fires on
    (NaN where unknown); `n_dense` features were left out for being denser than `max_density`
    (None: no density filter ran). `density_from` says where the density came from: `"density="`,
    `"corpus="`, `"default corpus"`, or why there was none.
    """

    features: Int[torch.Tensor, "k"]
    scores: Float[torch.Tensor, "k"]
    density: Float[torch.Tensor, "k"]
    mode: str
    query: str
    hook_name: str
    max_density: float | None = None
    n_dense: int = 0
    density_from: str = ""

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
        self._freeze()

    def __len__(self) -> int:
        return self.features.numel()

    def __iter__(self):
        return iter(self.features.tolist())

    def __contains__(self, feature: object) -> bool:
        return feature in self.features.tolist()

    def summary(self) -> str:
        """One line: the query, the features found and how density was filtered."""
        return f"FeatureSearch({self.mode} {self.query!r}: features {self.features.tolist()}; {self._density_note()})"

    def __repr__(self) -> str:
        return self.summary()

    def _density_note(self) -> str:
        if self.max_density is None:
            return f"no density filter ({self.density_from})" if self.density_from else "no density filter"
        return f"{self.n_dense} features denser than {self.max_density:g} left out (density from {self.density_from})"

    def to_frame(self):
        """One row per feature: rank, feature, score, density."""
        import pandas as pd

        return pd.DataFrame({
            "feature": self.features.tolist(),
            "score": self.scores.tolist(),
            "density": self.density.tolist(),
        }).rename_axis("rank")

    def plot(self) -> go.Figure:
        """Bar chart of the scores, labelled with each feature's density."""
        import plotly.graph_objects as go

        what = "max activation" if self.mode == "text" else "logit added (unit direction)"
        fig = go.Figure(go.Bar(
            x=[f"f{f}" for f in self.features.tolist()], y=self.scores.tolist(),
            customdata=[[d * 100] for d in self.density.tolist()],
            hovertemplate="%{x}: %{y:.3g}<br>density %{customdata[0]:.3g}%<extra></extra>",
        ))
        fig.update_layout(
            title=dict(text=f"features for {self.mode} {self.query!r} at {self.hook_name}<br>"
                            f"<sup>{self._density_note()}</sup>"),
            xaxis=dict(title=dict(text="feature"), type="category"), yaxis=dict(title=dict(text=what)),
            template="plotly_white",
        )
        return fig


def _read_positions(model: HookedTransformer, fa: FeatureActivations, positions: Sequence[Position] | Position | None) -> list[int]:
    """Token indices of `fa` chosen by `positions`: ints (negatives from the end), `"last"`,
    `"post_instruction"` (the chat template's trailing tokens), or token strings of the text
    (every position holding it); None: every token after `<bos>`."""
    n = len(fa.tokens)
    if positions is None:
        return list(range(fa.first, n))
    chosen = [positions] if isinstance(positions, (numbers.Integral, str)) else list(positions)
    if not chosen:
        raise ValueError("positions= is empty: give positions (ints, 'last', 'post_instruction') or token strings")
    out: list[int] = []
    stripped = [t.strip() for t in fa.tokens]
    for t in chosen:
        if isinstance(t, bool) or not isinstance(t, (numbers.Integral, str)):
            raise ValueError(f"position {t!r} must be an int, 'last', 'post_instruction' or a token string")
        if isinstance(t, numbers.Integral):
            if not -n <= t < n:
                raise ValueError(f"position {t} is out of range for the text's {n} tokens")
            out.append(t % n)
        elif t == "last":
            out.append(n - 1)
        elif t == "post_instruction":
            out += range(max(fa.first, n - post_instruction_length(model)), n)
        else:
            hits = [p for p, s in enumerate(stripped) if s == t.strip() and p >= fa.first]
            if not hits:
                raise ValueError(f"token {t!r} is not in the text; its tokens are {list(fa.tokens[fa.first:])}")
            out += hits
    return sorted(set(out))


class _NotCached(Exception):
    pass


def feature_density(
    model: HookedTransformer,
    sae: SAE,
    corpus: Corpus | None = None,
    *,
    measure: bool = True,
    progress: bool = True,
) -> Float[torch.Tensor, "d_sae"] | None:
    """The fraction of corpus tokens on which each feature fires (cached on disk).

    Args:
        model, sae: the model and an SAE on one of its hooks.
        corpus: the texts to count on; default: the model's default corpus
            (`interp.sae.examples.default_corpus`), whose density is cached per model and SAE.
        measure: False only looks the default corpus's density up: None when it is not cached
            (nothing is run).
        progress: show a progress bar while measuring.

    Example:
        >>> density = feature_density(model, sae)   # once: a pass over the default corpus
        >>> (density > 0.1).sum()
    """
    check_model(model)
    check_flag(measure, "measure")
    if corpus is not None:
        check_corpus(corpus)
        return max_activating_examples(model, sae, corpus, progress=progress).density

    def compute() -> dict[str, torch.Tensor]:
        if not measure:
            raise _NotCached
        texts, key = default_corpus(model)
        if progress:
            print(f"measuring feature density over the default corpus ({key}, {len(texts)} texts; once, then "
                  "cached)", file=sys.stderr)
        top = max_activating_examples(model, sae, texts, k=1, context=(0, 0), cache=False, progress=progress)
        return {"density": top.density}

    check_sae(model, sae)
    args = {"sae": sae_fingerprint(sae), "corpus": "default", "profile": profile_for(model).name}
    try:
        return cached(model, "feature_density", args, compute, expect={"density": (sae.cfg.d_sae,)})["density"]
    except _NotCached:
        return None


def _density(model: HookedTransformer, sae: SAE, density: Any, corpus: Any, measure: bool,
             progress: bool) -> tuple[Float[torch.Tensor, "d_sae"] | None, str]:
    """Per-feature density and where it came from (None: unknown)."""
    n = sae.cfg.d_sae
    if density is None:
        if corpus is not None:
            return feature_density(model, sae, corpus, progress=progress), "corpus="
        found = feature_density(model, sae, measure=measure, progress=progress)
        if found is None:
            return None, ("not measured: promotes= reads only the weights and no density is cached for "
                          "this SAE; pass density= or corpus=, or run feature_density(model, sae) once")
        return found, "default corpus"
    if isinstance(density, MaxActivatingExamples):
        if density.kind != "feature" or int(density.units.max()) >= n:
            raise ValueError(f"density= holds {density.kind}s of {density.source}, not this SAE's {n} features")
        full = torch.full((n,), float("nan"))
        full[density.units] = density.density
        return full, "density="
    d = torch.as_tensor(density).detach().cpu().float()
    if d.shape != (n,):
        raise ValueError(f"density has shape {tuple(d.shape)}: expected [d_sae={n}]")
    return d, "density="


def search_features(
    model: HookedTransformer,
    sae: SAE,
    *,
    text: str | None = None,
    positions: Sequence[Position] | Position | None = None,
    promotes: Sequence[str | int] | str | int | None = None,
    k: int = 20,
    max_density: float | None = DEFAULT_MAX_DENSITY,
    density: Float[torch.Tensor, "d_sae"] | MaxActivatingExamples | None = None,
    corpus: Corpus | None = None,
    progress: bool = True,
    **deprecated: Any,
) -> FeatureSearch:
    """Find features by what fires on a text, or by which output tokens they promote.

    Args:
        model, sae: the model and a sae-lens SAE on one of its hooks (checked with `check_sae`).
        text: rank features by their largest activation on this text (every token after
            `<bos>`, or the ones chosen by `positions`).
        positions: read positions in `text`: ints (negatives count from the end), `"last"`,
            `"post_instruction"` (the chat template's trailing tokens), or token strings of the
            text. (`tokens=` is the old name: it still works, with a DeprecationWarning.)
        promotes: rank features by the logit their unit decoder direction adds to these output
            tokens (mean over them, relative to the vocabulary's mean), through the final norm.
            Reads only the weights: no corpus is streamed (see `max_density`).
        k: how many features to return (a `k` above `d_sae` returns them all, by design).
        max_density: leave out features firing on more than this fraction of corpus tokens;
            None keeps all. The density is `density` if given, else measured on `corpus` if
            given, else the model's default corpus: a text search measures it once (progress
            bar, then cached), a `promotes` search uses it only when cached and otherwise filters
            nothing (the result's `density_from` says so).
        density: per-feature density to use (a `[d_sae]` tensor or a `MaxActivatingExamples`).
        corpus: texts to measure density on (cached on disk).
        progress: show a progress bar if density is measured.

    Returns:
        `FeatureSearch`, strongest first (for text, only features that fire).

    Raises:
        ValueError: neither or both of `text` and `promotes`; `positions` without `text` or not
            in it; `k` < 1; an output token not in the vocabulary.

    Example:
        >>> interp.search_features(model, sae, text="user : how do i make a bomb ? assistant :", k=5)
        >>> interp.search_features(model, sae, promotes=["paris"])
    """
    old = renamed("tokens", "positions", deprecated, "search_features")
    positions = positions if old is MISSING else old
    no_extra(deprecated, "search_features")
    check_sae(model, sae)
    if (text is None) == (promotes is None):
        raise ValueError("give exactly one of text= (what fires) or promotes= (what a feature outputs)")
    if positions is not None and text is None:
        raise ValueError("positions= chooses read positions in text=; give text= too")
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k={k!r} must be an int >= 1")
    if text is not None:
        check_prompt(text, "text")
    if max_density is not None:
        check_number(max_density, "max_density", minimum=0, maximum=1, open_low=True)
    if density is not None and not isinstance(density, (torch.Tensor, MaxActivatingExamples)):
        raise TypeError(f"density is {density!r}: expected a [d_sae] tensor or a MaxActivatingExamples")
    if corpus is not None:
        check_corpus(corpus)
    with torch.inference_mode():  # not a decorator: the deprecation warning points at the caller
        if text is not None:
            fa = feature_activations(model, sae, text)
            score = fa.acts[_read_positions(model, fa, positions)].max(0).values
            mode, query = "text", text if positions is None else f"{text} @ {positions}"
        else:
            wanted = [promotes] if isinstance(promotes, (str, numbers.Integral)) else list(promotes)
            if not wanted:
                raise ValueError("promotes= is empty: give one or more output tokens")
            ids = [token_id(model, t) for t in wanted]
            dirs = residual_directions(model, sae)
            dirs = dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-8)
            score = relative_logits(model, dirs, ids).mean(1).cpu()
            mode, query = "promotes", ", ".join(map(str, wanted))
        dens, source, n_dense = None, "", 0
        if max_density is not None:
            dens, source = _density(model, sae, density, corpus, measure=mode == "text", progress=progress)
        if dens is None:
            max_density, dens = None, torch.full((sae.cfg.d_sae,), float("nan"))
        else:
            dense = dens > max_density  # NaN (unknown) is kept
            n_dense = int(dense.sum())
            score = score.masked_fill(dense, float("-inf"))
        top = score.topk(min(k, sae.cfg.d_sae))
        keep = top.values > 0 if mode == "text" else torch.isfinite(top.values)
        feats = top.indices[keep]
        return FeatureSearch(feats, top.values[keep], dens[feats], mode, query, sae.cfg.metadata.hook_name,
                             max_density, n_dense, source)
