"""Shared plotly helpers: a labelled heatmap and lines over layers.

Every technique draws one of two pictures: a grid (layers x positions for the logit lens,
source layer x target layer for a patchscope sweep, layers x neurons, ...) or a few curves over
layers (a token's probability through the lens, a patchscope's hit rate, a steering sweep).
These helpers build those figures with readable defaults, cell text, and hover text; they only
draw, never compute, and return a `plotly.graph_objects.Figure` (never `.show()` it here).

Example:
    >>> fig = heatmap([[0.1, 0.9], [0.5, 0.2]], x_labels=["the", "cat"], y_labels=["embed", "0"],
    ...               text=[["a", "b"], ["c", "d"]], title="demo")
    >>> fig = layer_lines(["embed", "0", "1"], {"paris": [0.0, 0.2, 0.9]}, y_title="probability")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
import torch

Matrix = Sequence[Sequence[float]] | torch.Tensor
TextGrid = Sequence[Sequence[str]]
_ZWSP = "\u200b"  # an invisible suffix that keeps repeated category labels apart


def _rows(values: Matrix) -> list[list[float]]:
    if isinstance(values, torch.Tensor):
        if values.ndim != 2:
            raise ValueError(f"heatmap values must be 2-D, got shape {tuple(values.shape)}")
        return values.detach().to("cpu", torch.float32).tolist()
    return [list(map(float, row)) for row in values]


def _check_grid(name: str, grid: TextGrid | None, shape: tuple[int, int]) -> None:
    if grid is None:
        return
    got = (len(grid), len(grid[0]) if len(grid) else 0)
    if got != shape or any(len(row) != shape[1] for row in grid):
        raise ValueError(f"{name} must have shape {shape} like the values, got {got}")


def _unique(labels: Sequence[Any]) -> list[str]:
    """Category labels made unique (plotly merges repeated categories, e.g. two `the` tokens)."""
    seen: dict[str, int] = {}
    out = []
    for label in map(str, labels):
        n = seen.get(label, 0)
        seen[label] = n + 1
        out.append(label + _ZWSP * n)
    return out


def heatmap(
    values: Matrix,
    *,
    x_labels: Sequence[Any],
    y_labels: Sequence[Any],
    text: TextGrid | None = None,
    hover: TextGrid | None = None,
    title: str = "",
    x_title: str = "",
    y_title: str = "",
    colorbar_title: str = "",
    colorscale: str = "Blues",
    zmin: float | None = None,
    zmax: float | None = None,
    reverse_y: bool = True,
) -> go.Figure:
    """A heatmap with one row per `y_labels` entry, optional text in each cell and rich hover.

    Args:
        values: `[rows, cols]` numbers (nested lists or a 2-D tensor) that set the colour.
        x_labels, y_labels: column and row labels (repeats are kept apart, e.g. two `the`s).
        text: `[rows, cols]` strings written in the cells (e.g. the top token).
        hover: `[rows, cols]` strings shown on hover (may contain `<br>`).
        title, x_title, y_title, colorbar_title: labels.
        colorscale, zmin, zmax: colour mapping.
        reverse_y: draw the first row at the top (False puts it at the bottom, e.g. layer 0).

    Returns:
        The figure.

    Example:
        >>> heatmap(torch.rand(3, 4), x_labels=list("abcd"), y_labels=["embed", "0", "1"]).layout.title
    """
    rows = _rows(values)
    shape = (len(rows), len(rows[0]) if rows else 0)
    if len(y_labels) != shape[0] or len(x_labels) != shape[1]:
        raise ValueError(
            f"labels ({len(y_labels)} rows, {len(x_labels)} columns) do not match values of shape {shape}"
        )
    _check_grid("text", text, shape)
    _check_grid("hover", hover, shape)
    trace: dict[str, Any] = dict(
        z=rows,
        x=_unique(x_labels),
        y=_unique(y_labels),
        colorscale=colorscale,
        zmin=zmin,
        zmax=zmax,
        colorbar=dict(title=dict(text=colorbar_title)),
        xgap=1,
        ygap=1,
    )
    if text is not None:
        trace.update(text=[list(map(str, r)) for r in text], texttemplate="%{text}", textfont=dict(size=10))
    if hover is not None:
        trace.update(
            customdata=[list(map(str, r)) for r in hover], hovertemplate="%{customdata}<extra></extra>"
        )
    else:
        trace.update(hovertemplate="%{y} / %{x}: %{z:.3g}<extra></extra>")
    fig = go.Figure(go.Heatmap(**trace))
    fig.update_layout(
        title=dict(text=title),
        xaxis=dict(title=dict(text=x_title), type="category", tickangle=-45),
        yaxis=dict(title=dict(text=y_title), type="category", autorange="reversed" if reverse_y else True),
        template="plotly_white",
        margin=dict(l=60, r=20, t=50 if title else 20, b=60),
    )
    return fig


def layer_lines(
    x_labels: Sequence[Any],
    series: Mapping[str, Sequence[float] | torch.Tensor],
    *,
    hover: Mapping[str, Sequence[str]] | None = None,
    text: Mapping[str, Sequence[str]] | None = None,
    title: str = "",
    x_title: str = "layer",
    y_title: str = "",
    log_y: bool = False,
    y_range: tuple[float, float] | None = None,
) -> go.Figure:
    """One line per named series over the same x axis (usually layers).

    Args:
        x_labels: the x positions (layer labels), shared by every series.
        series: name -> values, each as long as `x_labels`.
        hover: name -> per-point hover strings.
        text: name -> per-point labels written next to the markers (e.g. a generation).
        title, x_title, y_title: labels.
        log_y: logarithmic y axis (ranks).
        y_range: fixed y range, e.g. `(0, 1)` for probabilities.

    Returns:
        The figure.

    Example:
        >>> layer_lines(["embed", "0", "1"], {"paris": [0.0, 0.3, 0.9]}, y_title="p").data[0].name
        'paris'
    """
    if not series:
        raise ValueError("no series to plot: expected at least one name -> values")
    xs = _unique(x_labels)
    fig = go.Figure()
    for name, ys in series.items():
        ys = ys.detach().to("cpu", torch.float32).tolist() if isinstance(ys, torch.Tensor) else list(ys)
        if len(ys) != len(xs):
            raise ValueError(f"series {name!r} has {len(ys)} values for {len(xs)} x labels")
        trace: dict[str, Any] = dict(x=xs, y=ys, name=str(name), mode="lines+markers")
        if text is not None and name in text:
            trace.update(
                text=list(map(str, text[name])), mode="lines+markers+text", textposition="top center"
            )
        if hover is not None and name in hover:
            trace.update(
                customdata=list(map(str, hover[name])),
                hovertemplate="%{customdata}<extra>%{fullData.name}</extra>",
            )
        fig.add_trace(go.Scatter(**trace))
    fig.update_layout(
        title=dict(text=title),
        xaxis=dict(title=dict(text=x_title), type="category"),
        yaxis=dict(title=dict(text=y_title), type="log" if log_y else "linear", range=y_range),
        template="plotly_white",
        hovermode="closest",
        margin=dict(l=60, r=20, t=50 if title else 20, b=50),
    )
    return fig
