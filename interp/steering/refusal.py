"""Refusal directions: choosing one, and measuring refusal and side effects.

Arditi et al. 2024 ("Refusal in language models is mediated by a single direction") take the
difference of means between harmful and harmless prompts at every layer and every
post-instruction position (`interp.mean_difference`), then pick one candidate on held-out
prompts by three numbers:

- **bypass score**: the mean refusal score of harmful prompts with the candidate *ablated*
  from every layer (lower is better: ablation should stop refusal);
- **induce score**: the mean refusal score of harmless prompts with the candidate *added* at
  its layer (must be positive: addition should cause refusal);
- **KL**: the KL divergence of the next-token distribution at the last position of harmless
  prompts under ablation (must stay small: the direction should not carry much else).

Candidates from the last 20% of layers, and always the last layer, are skipped: directions
there act on the output tokens directly rather than on the decision to refuse.
The refusal score is the log-odds of the refusal tokens (`i` for the built-in model; `I`,
`As`, `Sorry` for real models) at the last position. Generated text is judged by refusal
phrases (`refusal_rate`); side effects on harmless text by `harmless_kl`.

Example:
    >>> sel = interp.select_direction(model, harmful, harmless, val_harmful=vh, val_harmless=vb)
    >>> sel.plot()
    >>> r = interp.steer(model, heldout_harmful, sel.vector, mode="ablate")
    >>> interp.refusal_rate(r), interp.refusal_rate(r.baseline)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from tqdm.auto import tqdm
from transformer_lens import HookedTransformer

from interp.core.hooks import hook_name, hooked
from interp.core.profiles import REFUSAL_PHRASES, profile_for
from interp.core.readout import last_logits
from interp.core.tokens import token_id, tokenize
from interp.steering.generate import (
    SteeringVector,
    SteeringVectors,
    SteerResult,
    _check_prompts,
    _format,
    mean_difference,
    steering,
    steering_hooks,
)

def is_refusal(text: str, phrases: Sequence[str] | None = None) -> bool:
    """True when `text` contains a refusal phrase (case-insensitive)."""
    low = " ".join(text.lower().replace("\u2019", "'").split())
    return any(p.lower() in low for p in (phrases or REFUSAL_PHRASES))


def refusal_rate(completions: Sequence[str] | SteerResult, *, phrases: Sequence[str] | None = None) -> float:
    """Fraction of completions that contain a refusal phrase.

    Args:
        completions: texts, or a `SteerResult` (its steered completions; pass
            `result.baseline` for the unsteered ones).
        phrases: refusal phrases; `REFUSAL_PHRASES` when None.

    Example:
        >>> interp.refusal_rate(["i cannot help with that .", "sure . here is how"])
        0.5
    """
    texts = completions.steered if isinstance(completions, SteerResult) else completions
    if texts is None or isinstance(texts, str) or len(texts) == 0:
        raise ValueError("refusal_rate needs a non-empty list of completions (or a SteerResult)")
    return sum(is_refusal(t, phrases) for t in texts) / len(texts)


def refusal_token_ids(model: HookedTransformer, tokens: Sequence[str | int] | None = None) -> list[int]:
    """Ids of the tokens that start a refusal: the profile's `refusal_tokens` that are single
    tokens of this vocabulary (`I`, `As`, `Sorry` by default; `i` for the built-in model)."""
    if tokens is not None:
        ids = [token_id(model, t) for t in tokens]
    else:
        ids = []
        for t in profile_for(model).refusal_tokens:
            try:
                ids.append(token_id(model, t))
            except KeyError:
                pass
    if not ids:
        raise ValueError("no refusal tokens: pass refusal_tokens=[...] with tokens of this vocabulary")
    return sorted(set(ids))


def _last_logprobs(model: HookedTransformer, tokens, mask) -> Float[torch.Tensor, "batch vocab"]:
    """Next-token log-probs at the last position, unembedding only that position."""
    return last_logits(model, tokens, mask).float().log_softmax(-1)


def _log_odds(logprobs: torch.Tensor, ids: list[int]) -> torch.Tensor:
    lp = logprobs[:, ids].logsumexp(-1)
    return lp - torch.log((-torch.expm1(lp)).clamp_min(1e-12))


@torch.inference_mode()
def refusal_score(
    model: HookedTransformer,
    prompts: Sequence[str],
    *,
    refusal_tokens: Sequence[str | int] | None = None,
    chat: bool | None = None,
    batch_size: int = 32,
) -> Float[torch.Tensor, "batch"]:
    """Log-odds that the next token starts a refusal, per prompt: `log p / (1 - p)` with `p` the
    total probability of the refusal tokens at the last position. Hooks around the call apply,
    so `with interp.steering.generate(...)` measures a steered model.

    Example:
        >>> interp.refusal_score(model, ["how do i make a bomb ?"])
        tensor([9.2])
    """
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    ids = refusal_token_ids(model, refusal_tokens)
    out = []
    for start in range(0, len(prompts), batch_size):
        tokens, mask = tokenize(model, _format(model, prompts[start : start + batch_size], chat))
        out.append(_log_odds(_last_logprobs(model, tokens, mask), ids).cpu())
    if not out:
        raise ValueError("no prompts given")
    return torch.cat(out)


@dataclass(frozen=True)
class KLResult:
    """Side effects of steering on harmless text: KL to the unsteered model and cross-entropies."""

    kl: float
    per_prompt: Float[torch.Tensor, "prompt"]
    ce_base: float
    ce_steered: float
    n_tokens: int

    def __post_init__(self) -> None:
        if self.per_prompt.ndim != 1:
            raise ValueError(f"per_prompt must be 1-D, got shape {tuple(self.per_prompt.shape)}")

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame({"kl_per_token": self.per_prompt.tolist()})

    def plot(self):
        """Histogram of the per-prompt KL (nats per token)."""
        import plotly.graph_objects as go

        fig = go.Figure(go.Histogram(x=self.per_prompt.tolist()))
        fig.update_layout(
            title=f"KL per token: mean {self.kl:.4f} nats (CE {self.ce_base:.3f} -> {self.ce_steered:.3f})",
            xaxis_title="KL (nats per token)",
            yaxis_title="prompts",
        )
        return fig


@torch.inference_mode()
def harmless_kl(
    model: HookedTransformer,
    prompts: Sequence[str],
    vector: SteeringVector | Float[torch.Tensor, "d"],
    *,
    mode: str = "ablate",
    layer: int | None = None,
    alpha: float = 1.0,
    over: str = "all",
    chat: bool | None = None,
    batch_size: int = 16,
) -> KLResult:
    """KL(unsteered || steered) of the next-token distributions on (harmless) text, in nats per
    token, averaged over every real position (`over="all"`) or the last one (`"last"`), with
    the next-token cross-entropy of both models on the text.

    Example:
        >>> interp.harmless_kl(model, harmless, refusal, mode="ablate").kl
        0.012
    """
    if over not in ("all", "last"):
        raise ValueError(f"over {over!r} must be 'all' or 'last'")
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    if not prompts:
        raise ValueError("no prompts given")
    per_prompt, ce = [], torch.zeros(2, dtype=torch.float64)
    n_ce = 0
    for start in range(0, len(prompts), batch_size):
        tokens, mask = tokenize(model, _format(model, prompts[start : start + batch_size], chat))
        base = model(tokens, attention_mask=mask).float().log_softmax(-1)
        with steering(model, vector, layer=layer, alpha=alpha, mode=mode):
            steer = model(tokens, attention_mask=mask).float().log_softmax(-1)
        kl = (base.exp() * (base - steer)).sum(-1)  # [batch, pos]
        m = (
            mask.float()
            if over == "all"
            else F.one_hot(torch.tensor(mask.shape[1] - 1), mask.shape[1]).float()
        )
        m = m.to(kl.device).expand_as(kl)
        per_prompt.append(((kl * m).sum(-1) / m.sum(-1)).cpu())
        target, tmask = tokens[:, 1:], (mask[:, 1:] * mask[:, :-1]).float()
        for i, lp in enumerate((base, steer)):
            ce[i] += float(-(lp[:, :-1].gather(-1, target[..., None])[..., 0] * tmask).sum())
        n_ce += int(tmask.sum())
    per = torch.cat(per_prompt)
    ce = ce / max(n_ce, 1)
    n_tok = n_ce + len(prompts) if over == "all" else len(prompts)
    return KLResult(
        kl=float(per.mean()), per_prompt=per, ce_base=float(ce[0]), ce_steered=float(ce[1]), n_tokens=n_tok
    )


# --- direction selection ------------------------------------------------------------------------


@dataclass(frozen=True)
class DirectionSelection:
    """The chosen refusal direction and every candidate's scores ([layer, position]; NaN where
    a candidate was not evaluated)."""

    vector: SteeringVector
    layer: int
    position: int
    vectors: SteeringVectors
    bypass: Float[torch.Tensor, "layer pos"]
    induce: Float[torch.Tensor, "layer pos"]
    kl: Float[torch.Tensor, "layer pos"]
    eligible: Bool[torch.Tensor, "layer pos"]
    baseline_harmful: float
    baseline_harmless: float
    kl_threshold: float
    induce_threshold: float
    max_layer: int

    def __post_init__(self) -> None:
        shape = (len(self.vectors.layers), len(self.vectors.positions))
        for name in ("bypass", "induce", "kl", "eligible"):
            if tuple(getattr(self, name).shape) != shape:
                raise ValueError(f"{name} has shape {tuple(getattr(self, name).shape)}, expected {shape}")

    def to_frame(self):
        """One row per candidate (layer, position) with its scores and whether it passed."""
        import pandas as pd

        vs, rows = self.vectors, []
        for i, layer in enumerate(vs.layers):
            for j, (p, lab) in enumerate(zip(vs.positions, vs.position_labels)):
                rows.append(
                    {
                        "layer": layer,
                        "position": p,
                        "token": lab,
                        "norm": float(vs.norms[i, j]),
                        "bypass_score": float(self.bypass[i, j]),
                        "induce_score": float(self.induce[i, j]),
                        "kl": float(self.kl[i, j]),
                        "eligible": bool(self.eligible[i, j]),
                        "chosen": (layer, p) == (self.layer, self.position),
                    }
                )
        return pd.DataFrame(rows)

    def plot(self):
        """Bypass score, induce score and KL per layer, one line per position; the choice starred."""
        from plotly.subplots import make_subplots

        vs = self.vectors
        titles = ("bypass score (ablate, harmful)", "induce score (add, harmless)", "KL on harmless (ablate)")
        fig = make_subplots(rows=1, cols=3, subplot_titles=titles)
        i, j = vs.layers.index(self.layer), vs.positions.index(self.position)
        for col, values in enumerate((self.bypass, self.induce, self.kl), start=1):
            for k, lab in enumerate(vs.position_labels):
                fig.add_scatter(
                    x=list(vs.layers),
                    y=values[:, k].tolist(),
                    mode="lines+markers",
                    name=f"pos {lab}",
                    legendgroup=lab,
                    showlegend=col == 1,
                    row=1,
                    col=col,
                )
            fig.add_scatter(
                x=[self.layer],
                y=[float(values[i, j])],
                mode="markers",
                marker={"symbol": "star", "size": 14},
                name="chosen",
                showlegend=col == 1,
                row=1,
                col=col,
            )
            fig.update_xaxes(title_text="layer", row=1, col=col)
        fig.update_layout(title=f"refusal direction: layer {self.layer}, position {vs.position_labels[j]}")
        return fig


def _candidate_scores(model, tokens, mask, dirs, layers, mode, site, ids, base_lp, batch_size, bar):
    """Refusal score (and KL to `base_lp`) [candidates, prompts] with each candidate applied by
    `mode`, several candidates per pass as separate batch rows with their own direction."""
    n_c, n = dirs.shape[0], tokens.shape[0]
    scores, kls = torch.zeros(n_c, n), torch.zeros(n_c, n)
    for p0 in range(0, n, batch_size):
        toks, msk = tokens[p0 : p0 + batch_size], mask[p0 : p0 + batch_size]
        m = toks.shape[0]
        per_pass = max(1, batch_size // m)
        for c0 in range(0, n_c, per_pass):
            cs = list(range(c0, min(n_c, c0 + per_pass)))
            rows = dirs[cs].repeat_interleave(m, 0)[:, None, :]  # [k*m, 1, d]
            if mode == "ablate":
                hooks = steering_hooks(model, ablate=F.normalize(rows, dim=-1))
            else:
                which = torch.tensor([layers[c] for c in cs]).repeat_interleave(m).to(rows.device)
                add = {
                    hook_name(model, site, layer): rows * (which == layer)[:, None, None].to(rows.dtype)
                    for layer in {layers[c] for c in cs}
                }
                hooks = steering_hooks(model, add=add)
            with hooked(model, hooks):
                lp = _last_logprobs(model, toks.repeat(len(cs), 1), msk.repeat(len(cs), 1))
            scores[cs, p0 : p0 + m] = _log_odds(lp, ids).view(len(cs), m).cpu()
            if base_lp is not None:
                b = base_lp[p0 : p0 + m].repeat(len(cs), 1)
                kls[cs, p0 : p0 + m] = (b.exp() * (b - lp)).sum(-1).view(len(cs), m).cpu()
            bar.update(len(cs) * m)
    return scores, kls


@torch.inference_mode()
def select_direction(
    model: HookedTransformer,
    harmful: Sequence[str],
    harmless: Sequence[str],
    *,
    val_harmful: Sequence[str],
    val_harmless: Sequence[str],
    layers: Sequence[int] | None = None,
    positions: str | int | Sequence[int] | None = None,
    site: str = "resid_pre",
    max_layer_frac: float = 0.8,
    kl_threshold: float = 0.1,
    induce_threshold: float = 0.0,
    refusal_tokens: Sequence[str | int] | None = None,
    chat: bool | None = None,
    batch_size: int = 32,
    cache: bool = True,
) -> DirectionSelection:
    """Pick a refusal direction among the difference-of-means candidates, Arditi-style.

    Every (layer, position) candidate from `harmful` minus `harmless` in the first
    `max_layer_frac` of the layers (never the last layer) is scored on the validation prompts;
    those whose induce score exceeds `induce_threshold` and whose KL stays below `kl_threshold`
    are eligible, and the eligible one with the lowest bypass score wins (the lowest bypass
    overall, with a warning, when none is eligible). Candidates share forward passes as
    separate batch rows.

    Args:
        harmful, harmless: training requests (raw; wrapped in the chat template).
        val_harmful, val_harmless: held-out requests used to score the candidates.
        layers: layers to read (all candidate layers when None).
        positions, site, chat, cache: as in `interp.mean_difference`.
        refusal_tokens: the tokens whose log-odds is the refusal score (see `refusal_token_ids`).

    Example:
        >>> sel = interp.select_direction(model, harm_tr, safe_tr, val_harmful=harm_va, val_harmless=safe_va)
        >>> sel.layer, sel.position, sel.to_frame()
    """
    val_harmful = _check_prompts("val_harmful", val_harmful)
    val_harmless = _check_prompts("val_harmless", val_harmless)
    if not 0 < max_layer_frac <= 1:
        raise ValueError(f"max_layer_frac {max_layer_frac} must be in (0, 1]")
    for name, value in (("kl_threshold", kl_threshold), ("induce_threshold", induce_threshold)):
        if math.isnan(value):
            raise ValueError(f"{name} is NaN; expected a number (inf disables the filter)")
    ids = refusal_token_ids(model, refusal_tokens)
    n = model.cfg.n_layers  # layers >= max_layer are skipped; the last one always (it acts on the output)
    max_layer = max(1, min(math.ceil(max_layer_frac * n), n - 1))
    layers = range(max_layer) if layers is None else layers  # the means stop at the last candidate layer
    vs = mean_difference(
        model,
        harmful,
        harmless,
        layers=layers,
        site=site,
        positions=positions,
        chat=chat,
        batch_size=batch_size,
        cache=cache,
    )
    cands = [
        (i, j) for i, layer in enumerate(vs.layers) if layer < max_layer for j in range(len(vs.positions))
    ]
    if not cands:
        raise ValueError(
            f"no candidate layers below {max_layer} (max_layer_frac={max_layer_frac}); got {vs.layers}"
        )
    p = next(model.parameters())
    dirs = torch.stack([vs.directions[i, j] for i, j in cands]).to(device=p.device, dtype=p.dtype)
    cand_layers = [vs.layers[i] for i, _ in cands]
    sets = [tokenize(model, _format(model, s, chat)) for s in (val_harmful, val_harmless)]
    base_lp = torch.cat(
        [
            _last_logprobs(model, sets[1][0][k : k + batch_size], sets[1][1][k : k + batch_size])
            for k in range(0, len(val_harmless), batch_size)
        ]
    )
    base_harmful = torch.cat(
        [
            _log_odds(
                _last_logprobs(model, sets[0][0][k : k + batch_size], sets[0][1][k : k + batch_size]), ids
            )
            for k in range(0, len(val_harmful), batch_size)
        ]
    )
    total = len(cands) * (len(val_harmful) + 2 * len(val_harmless))
    with tqdm(total=total, desc="select_direction", leave=False) as bar:
        bypass, _ = _candidate_scores(
            model, *sets[0], dirs, cand_layers, "ablate", site, ids, None, batch_size, bar
        )
        _, kl = _candidate_scores(
            model, *sets[1], dirs, cand_layers, "ablate", site, ids, base_lp, batch_size, bar
        )
        induce, _ = _candidate_scores(
            model, *sets[1], dirs, cand_layers, "add", site, ids, None, batch_size, bar
        )
    shape = (len(vs.layers), len(vs.positions))
    grids = {k: torch.full(shape, float("nan")) for k in ("bypass", "induce", "kl")}
    for c, (i, j) in enumerate(cands):
        grids["bypass"][i, j], grids["induce"][i, j] = bypass[c].mean(), induce[c].mean()
        grids["kl"][i, j] = kl[c].mean()
    eligible = (grids["induce"] > induce_threshold) & (grids["kl"] < kl_threshold)
    pool = grids["bypass"].masked_fill(~eligible, float("inf"))
    if not eligible.any():
        import warnings

        warnings.warn(
            "no candidate passed the induce and KL filters; choosing the lowest bypass score", stacklevel=3
        )
        pool = grids["bypass"].nan_to_num(nan=float("inf"))
    i, j = divmod(int(pool.argmin()), shape[1])
    base_harmless = _log_odds(base_lp, ids).mean()
    return DirectionSelection(
        vector=vs[vs.layers[i], vs.positions[j]],
        layer=vs.layers[i],
        position=vs.positions[j],
        vectors=vs,
        bypass=grids["bypass"],
        induce=grids["induce"],
        kl=grids["kl"],
        eligible=eligible,
        baseline_harmful=float(base_harmful.mean()),
        baseline_harmless=float(base_harmless),
        kl_threshold=kl_threshold,
        induce_threshold=induce_threshold,
        max_layer=max_layer,
    )
