"""What a lens returns: per layer and position, the decoded distribution, summarised.

A lens (the logit lens, nostalgebraist 2020; the tuned lens, Belrose et al. 2023,
arXiv:2303.08112) turns each layer's residual stream into a next-token distribution. A full
`layers x positions x vocabulary` tensor is far too big to keep, and mostly unread, so a
`LogitLensResult` keeps what people look at: each cell's top-k tokens and probabilities, its
entropy, its KL divergence to the final layer, and the probability and rank of a few chosen
`targets`. From those it answers the usual questions (which token wins at each layer? from
which layer on does `paris` win? how does `p(paris)` grow?) and draws the two usual pictures: a
layers x positions heatmap and a token's trajectory over layers.

Rows are labelled `"embed"` (the embedding, `resid_pre` of block 0) and then `"0"`, `"1"`, ...
(the output of each block); columns are absolute token positions of the prompt (BOS is 0).

Example:
    >>> lens = interp.logit_lens(model, "the capital of france is", targets="paris")
    >>> lens.top1()[-1], lens.layers[lens.first_top1("paris")]
    ('paris', '2')
    >>> lens.plot()                  # heatmap: colour = top-1 probability, text = top-1 token
    >>> lens.plot("trajectory")      # p(paris) over layers
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import plotly.graph_objects as go
import torch
from jaxtyping import Float, Int
from transformer_lens import HookedTransformer

from interp.core.plotting import heatmap, layer_lines
from interp.core.results import Result, check_shape

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

EMBED = "embed"


def layer_labels(model: HookedTransformer) -> tuple[str, ...]:
    """Row labels of a lens: `"embed"`, then `"0"` ... `"n_layers-1"` (output of each block)."""
    return (EMBED, *(str(i) for i in range(model.cfg.n_layers)))


@dataclass(frozen=True, repr=False)
class LogitLensResult(Result):
    """The logit lens of one prompt: per layer x position, top-k, entropy, KL, target stats.

    Rows are `layers` (`"embed"`, then the output of each block); columns are `positions`
    (absolute token positions of the prompt, BOS included at 0). Probabilities are those of the
    lens distribution; ranks are 1-based (1 = top token); entropy and KL are in nats, and
    `kl_to_final` is KL(final || layer), 0 at the last layer.
    """

    prompt: str
    tokens: tuple[str, ...]
    positions: tuple[int, ...]
    layers: tuple[str, ...]
    top_ids: Int[torch.Tensor, "layer pos k"]
    top_probs: Float[torch.Tensor, "layer pos k"]
    top_tokens: tuple[tuple[tuple[str, ...], ...], ...]
    entropy: Float[torch.Tensor, "layer pos"]
    kl_to_final: Float[torch.Tensor, "layer pos"]
    targets: tuple[str, ...] = ()
    target_ids: tuple[int, ...] = ()
    target_probs: Float[torch.Tensor, "layer pos target"] = field(
        default_factory=lambda: torch.zeros(0, 0, 0)
    )
    target_ranks: Int[torch.Tensor, "layer pos target"] = field(
        default_factory=lambda: torch.zeros(0, 0, 0, dtype=torch.long)
    )

    def __post_init__(self) -> None:
        self._freeze()
        n_l, n_p, n_t = len(self.layers), len(self.positions), len(self.targets)
        k = self.top_ids.shape[-1] if self.top_ids.ndim == 3 else -1
        check_shape("top_ids", self.top_ids, (n_l, n_p, k))
        check_shape("top_probs", self.top_probs, (n_l, n_p, k))
        check_shape("entropy", self.entropy, (n_l, n_p))
        check_shape("kl_to_final", self.kl_to_final, (n_l, n_p))
        check_shape("target_probs", self.target_probs, (n_l, n_p, n_t))
        check_shape("target_ranks", self.target_ranks, (n_l, n_p, n_t))
        if len(self.target_ids) != n_t:
            raise ValueError("targets and target_ids differ in length")
        if len(self.top_tokens) != n_l or any(len(r) != n_p for r in self.top_tokens):
            raise ValueError("top_tokens must be nested [layer][position][k]")
        if any(not 0 <= p < len(self.tokens) for p in self.positions):
            raise ValueError(f"positions {self.positions} must index the {len(self.tokens)} prompt tokens")

    # --- lookups --------------------------------------------------------------------------

    def column(self, position: int) -> int:
        """The column of an absolute prompt position (negatives count from the end).

        Raises:
            KeyError: the position was not computed (see `positions`).
        """
        n = len(self.tokens)
        if not -n <= position < n:
            raise KeyError(f"position {position} is outside the prompt's {n} tokens: expected [-{n}, {n})")
        absolute = position % n
        if absolute not in self.positions:
            raise KeyError(
                f"position {position} was not computed; computed positions: {list(self.positions)}"
            )
        return self.positions.index(absolute)

    def layer_index(self, layer: int | str) -> int:
        """Row index of a layer given as a label (`"embed"`, `"3"`) or a row index (negatives allowed)."""
        if isinstance(layer, str):
            if layer not in self.layers:
                raise KeyError(f"layer {layer!r} is not one of {list(self.layers)}")
            return self.layers.index(layer)
        n = len(self.layers)
        if not -n <= layer < n:
            raise KeyError(f"layer row {layer} is out of range: expected [-{n}, {n})")
        return layer % n

    def target_index(self, token: str | int) -> int:
        """The index of a target (its string, with or without a leading space, or its id)."""
        for i, (name, tid) in enumerate(zip(self.targets, self.target_ids)):
            if token == tid or (isinstance(token, str) and token.strip() == name.strip()):
                return i
        raise KeyError(
            f"{token!r} is not a target of this lens; targets: {list(self.targets)} (pass targets=[...])"
        )

    def top1(self, position: int = -1) -> tuple[str, ...]:
        """The top token of every layer at `position`, embed first."""
        c = self.column(position)
        return tuple(row[c][0] for row in self.top_tokens)

    def first_top1(
        self, token: str | int | None = None, position: int = -1, *, stays: bool = False
    ) -> int | None:
        """Row index of the first layer where `token` is the top-1 prediction at `position`.

        Args:
            token: a token string or id; None means the final layer's top-1.
            position: the prompt position (default the last).
            stays: require that it remains top-1 through the last layer.

        Returns:
            The row index into `layers` (0 is the embedding), or None if it never is.

        Example:
            >>> lens.layers[lens.first_top1("paris")]
            '2'
        """
        c = self.column(position)
        ids = self.top_ids[:, c, 0]
        if token is None:
            hit = ids == int(ids[-1])
        elif isinstance(token, numbers.Integral):
            hit = ids == token
        else:
            hit = torch.tensor([row[c][0].strip() == token.strip() for row in self.top_tokens])
        if stays:
            # flip, cumulative AND from the end, flip back: true where it is top-1 from here on
            hit = torch.cummin(hit.flip(0).int(), 0).values.flip(0).bool()
        rows = torch.nonzero(hit).flatten()
        return int(rows[0]) if len(rows) else None

    def trajectory(
        self, token: str | int, position: int = -1, metric: str = "prob"
    ) -> Float[torch.Tensor, " layer"]:
        """A target token's probability (`metric="prob"`) or rank (`"rank"`) over layers."""
        i, c = self.target_index(token), self.column(position)
        if metric == "prob":
            return self.target_probs[:, c, i]
        if metric == "rank":
            return self.target_ranks[:, c, i]
        raise ValueError(f"metric {metric!r} must be 'prob' or 'rank'")

    # --- views ----------------------------------------------------------------------------

    def summary(self) -> str:
        last = self.positions[-1]
        return (
            f"logit lens of {self.prompt!r}: {len(self.layers)} layers x {len(self.positions)} positions; "
            f"top-1 at position {last} by layer: {' '.join(row[-1][0] for row in self.top_tokens)}"
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per (layer, position): top-1 token and probability, entropy, KL, targets."""
        import pandas as pd

        records = []
        for li, label in enumerate(self.layers):
            for c, pos in enumerate(self.positions):
                row = {
                    "layer": label,
                    "position": pos,
                    "token": self.tokens[pos],
                    "top1": self.top_tokens[li][c][0],
                    "top1_prob": float(self.top_probs[li, c, 0]),
                    "entropy": float(self.entropy[li, c]),
                    "kl_to_final": float(self.kl_to_final[li, c]),
                }
                for t, name in enumerate(self.targets):
                    row[f"p({name})"] = float(self.target_probs[li, c, t])
                    row[f"rank({name})"] = int(self.target_ranks[li, c, t])
                records.append(row)
        return pd.DataFrame.from_records(records)

    def plot(
        self, kind: str = "heatmap", *, color: str = "prob", metric: str = "prob", position: int = -1
    ) -> go.Figure:
        """The lens as a figure.

        Args:
            kind: `"heatmap"` (layers x positions, cell text = top token, hover = top-k) or
                `"trajectory"` (each target's probability or rank over layers at `position`).
            color: heatmap colour: `"prob"` (top-1 probability), `"entropy"` or `"kl"`.
            metric: trajectory y: `"prob"` or `"rank"`.
            position: trajectory position.

        Example:
            >>> lens.plot(color="entropy")
        """
        if kind == "heatmap":
            return self._heatmap(color)
        if kind == "trajectory":
            return self._trajectory(metric, position)
        raise ValueError(f"kind {kind!r} must be 'heatmap' or 'trajectory'")

    def _heatmap(self, color: str) -> go.Figure:
        values = {"prob": self.top_probs[..., 0], "entropy": self.entropy, "kl": self.kl_to_final}
        if color not in values:
            raise ValueError(f"color {color!r} must be one of {list(values)}")
        hover = [
            [
                f"layer {label}, position {pos} ({self.tokens[pos]!r})<br>"
                + "<br>".join(
                    f"{tok!r}: {float(p):.3f}"
                    for tok, p in zip(self.top_tokens[li][c], self.top_probs[li, c])
                )
                + f"<br>entropy {float(self.entropy[li, c]):.2f} nats, "
                + f"KL to final {float(self.kl_to_final[li, c]):.2f}"
                for c, pos in enumerate(self.positions)
            ]
            for li, label in enumerate(self.layers)
        ]
        text = [[row[c][0] for c in range(len(self.positions))] for row in self.top_tokens]
        scales = {
            "prob": ("Blues", 0.0, 1.0, "top-1 prob"),
            "entropy": ("Viridis", 0.0, None, "entropy"),
            "kl": ("Reds", 0.0, None, "KL to final"),
        }
        cs, zmin, zmax, title = scales[color]
        return heatmap(
            values[color],
            x_labels=[self.tokens[p] for p in self.positions],
            y_labels=self.layers,
            text=text,
            hover=hover,
            title=f"logit lens: {self.prompt!r}",
            x_title="position (input token)",
            y_title="layer (output of block)",
            colorbar_title=title,
            colorscale=cs,
            zmin=zmin,
            zmax=zmax,
            reverse_y=False,
        )

    def _trajectory(self, metric: str, position: int) -> go.Figure:
        if not self.targets:
            raise ValueError("no targets to trace: call logit_lens(..., targets=[...])")
        series = {name: self.trajectory(name, position, metric) for name in self.targets}
        c = self.column(position)
        hover = {
            name: [
                f"layer {label}: {metric} {float(v):.4g}; top-1 {row[c][0]!r}"
                for label, v, row in zip(self.layers, ys, self.top_tokens)
            ]
            for name, ys in series.items()
        }
        pos = self.positions[c]
        return layer_lines(
            self.layers,
            series,
            hover=hover,
            title=f"logit lens at position {pos} ({self.tokens[pos]!r}) of {self.prompt!r}",
            y_title="probability" if metric == "prob" else "rank (1 = top)",
            log_y=metric == "rank",
            y_range=(0, 1) if metric == "prob" else None,
        )

    def __repr__(self) -> str:
        last = self.positions[-1]
        return (
            f"LogitLensResult({self.prompt!r}: {len(self.layers)} layers x {len(self.positions)} positions, "
            f"top-1 at position {last} by layer: {' '.join(row[-1][0] for row in self.top_tokens)})"
        )
