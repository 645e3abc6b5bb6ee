"""Choosing a refusal direction among difference-of-means candidates, on held-out prompts.

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
there act on the output tokens directly rather than on the decision to refuse. The refusal
score is `interp.refusal_score` (log-odds of the profile's refusal tokens). Candidates share
forward passes: each is a block of batch rows with its own direction.

Example:
    >>> sel = interp.select_direction(model, harmful, harmless, val_harmful=vh, val_harmless=vb)
    >>> sel.plot()
    >>> r = interp.steer(model, heldout_harmful, sel.vector, mode="ablate")
    >>> interp.refusal_rate(r), interp.refusal_rate(r.baseline)
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from tqdm.auto import tqdm
from transformer_lens import HookedTransformer

from interp.core.hooks import hook_name, hooked
from interp.core.results import Result, check_shape
from interp.core.tokens import maybe_chat, tokenize
from interp.steering.edits import steering_hooks
from interp.steering.extract import SteeringVectors, check_prompt_set, mean_difference
from interp.steering.refusal import log_odds, next_logprobs, refusal_token_ids
from interp.steering.vector import SteeringVector


@dataclass(frozen=True, eq=False)
class DirectionSelection(Result):
    """The chosen refusal direction and every candidate's scores ([layer, position]; NaN where
    a candidate was not evaluated).

    Example:
        >>> sel = interp.select_direction(model, harm, safe, val_harmful=vh, val_harmless=vs)
        >>> sel.vector, sel.to_frame().query("eligible")
    """

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
        self._freeze()
        shape = (len(self.vectors.layers), len(self.vectors.positions))
        for name in ("bypass", "induce", "kl", "eligible"):
            check_shape(name, getattr(self, name), shape)

    def summary(self) -> str:
        j = self.vectors.positions.index(self.position)
        return (
            f"refusal direction: layer {self.layer}, position {self.vectors.position_labels[j]}; "
            f"{int(self.eligible.sum())} of {int(self.eligible.numel())} candidates eligible"
        )

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
                lp = next_logprobs(model, toks.repeat(len(cs), 1), msk.repeat(len(cs), 1))
            scores[cs, p0 : p0 + m] = log_odds(lp, ids).view(len(cs), m).cpu()
            if base_lp is not None:
                b = base_lp[p0 : p0 + m].repeat(len(cs), 1)
                kls[cs, p0 : p0 + m] = (b.exp() * (b - lp)).sum(-1).view(len(cs), m).cpu()
            bar.update(len(cs) * m)
    return scores, kls


def _batched(fn, tokens, mask, batch_size: int) -> torch.Tensor:
    starts = range(0, len(tokens), batch_size)
    return torch.cat([fn(tokens[k : k + batch_size], mask[k : k + batch_size]) for k in starts])


@torch.inference_mode()
def select_direction(
    model: HookedTransformer,
    harmful: Sequence[str],
    harmless: Sequence[str],
    *,
    val_harmful: Sequence[str],
    val_harmless: Sequence[str],
    layers: int | Sequence[int] | None = None,
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
        positions, site, chat, cache: as in `interp.mean_difference` (`positions` are read positions).
        refusal_tokens: the tokens whose log-odds is the refusal score (see `refusal_token_ids`).
        kl_threshold, induce_threshold: the eligibility filters (NaN is an error). `inf` /
            `-inf` switch one off; a threshold no candidate can pass (e.g. a negative
            `kl_threshold`) is accepted by design: the lowest bypass overall wins, with a warning.

    Example:
        >>> sel = interp.select_direction(model, harm_tr, safe_tr, val_harmful=harm_va, val_harmless=safe_va)
        >>> sel.layer, sel.position, sel.to_frame()
    """
    from interp.core.checks import check_count, check_model, check_number

    check_model(model)
    harmful = check_prompt_set("harmful", harmful)
    harmless = check_prompt_set("harmless", harmless)
    val_harmful = check_prompt_set("val_harmful", val_harmful)
    val_harmless = check_prompt_set("val_harmless", val_harmless)
    check_number(max_layer_frac, "max_layer_frac", minimum=0, maximum=1, open_low=True)
    check_count(batch_size, "batch_size")
    for name, value in (("kl_threshold", kl_threshold), ("induce_threshold", induce_threshold)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
            raise ValueError(f"{name} is {value!r}: expected a number (inf disables the filter)")

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
    sets = [tokenize(model, maybe_chat(model, s, chat)) for s in (val_harmful, val_harmless)]
    base_lp = _batched(lambda t, m: next_logprobs(model, t, m), *sets[1], batch_size)
    base_harmful = _batched(lambda t, m: log_odds(next_logprobs(model, t, m), ids), *sets[0], batch_size)
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
        warnings.warn(
            "no candidate passed the induce and KL filters; choosing the lowest bypass score", stacklevel=3
        )
        pool = grids["bypass"].nan_to_num(nan=float("inf"))
    i, j = divmod(int(pool.argmin()), shape[1])
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
        baseline_harmless=float(log_odds(base_lp, ids).mean()),
        kl_threshold=kl_threshold,
        induce_threshold=induce_threshold,
        max_layer=max_layer,
    )
