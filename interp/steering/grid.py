"""A steering grid: which layer, at which strength, changes behaviour?

A steering vector works at some layers and not others, and only above some strength (Turner et
al. 2023, "Activation Addition"; Arditi et al. 2024 sweep layers the same way to pick a refusal
direction). `steering_grid` generates steered completions for every (layer, strength) cell and
scores each cell with a metric over its completions, by default the refusal rate judged with the
model profile's refusal phrases. The unsteered rate is measured once and reported beside it.

Example:
    >>> vs = interp.mean_difference(model, harmful, harmless)
    >>> grid = interp.steering_grid(model, harmless[:8], vs, alphas=[0.5, 1, 2])
    >>> grid.plot()                      # layers x strengths heatmap of the refusal rate
    >>> grid.best()                      # (layer, alpha) with the highest rate
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import plotly.graph_objects as go
import torch
from tqdm.auto import tqdm
from transformer_lens import HookedTransformer

from interp.core.checks import check_count, check_finite, check_layers, check_model, check_prompts
from interp.core.plotting import heatmap
from interp.core.results import Result, check_shape
from interp.steering.extract import SteeringVectors
from interp.steering.generate import SteerResult, steer
from interp.steering.refusal import refusal_rate
from interp.steering.vector import SteeringVector


@dataclass(frozen=True, eq=False)
class SteeringGrid(Result):
    """The metric of steered completions per (layer, strength), and of the unsteered ones.

    Attributes:
        layers: row labels (block indices).
        alphas: column labels (strengths).
        rates: `[layers, alphas]` metric per cell.
        baseline: the metric on the unsteered completions.
        mode: `"add"` or `"ablate"` (ablation has no strength: one column).
        metric: the metric's name.
        examples: the first steered completion of each cell, `[layers][alphas]`.
    """

    layers: tuple[int, ...]
    alphas: tuple[float, ...]
    rates: torch.Tensor
    baseline: float
    mode: str
    metric: str
    examples: tuple[tuple[str, ...], ...]

    def __post_init__(self) -> None:
        self._freeze()
        check_shape("rates", self.rates, (len(self.layers), len(self.alphas)))

    def best(self) -> tuple[int, float]:
        """The (layer, alpha) of the highest metric."""
        i = int(self.rates.flatten().argmax())
        return self.layers[i // len(self.alphas)], self.alphas[i % len(self.alphas)]

    def summary(self) -> str:
        layer, alpha = self.best()
        return (f"SteeringGrid ({self.mode}): {self.metric} {float(self.rates.max()):.2f} at layer {layer}, "
                f"alpha {alpha:g}; unsteered {self.baseline:.2f}")

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame([
            {"layer": layer, "alpha": alpha, self.metric: float(self.rates[i, j]), "unsteered": self.baseline,
             "example": self.examples[i][j]}
            for i, layer in enumerate(self.layers) for j, alpha in enumerate(self.alphas)
        ])

    def plot(self) -> go.Figure:
        text = [[f"{float(v):.2f}" for v in row] for row in self.rates]
        hover = [[f"layer {layer}, alpha {alpha:g}<br>{self.examples[i][j][:80]}"
                  for j, alpha in enumerate(self.alphas)] for i, layer in enumerate(self.layers)]
        return heatmap(self.rates, x_labels=[f"{a:g}" for a in self.alphas], y_labels=list(map(str, self.layers)),
                       text=text, hover=hover, zmin=0.0, zmax=max(1.0, float(self.rates.max())),
                       title=f"{self.metric} when steering ({self.mode}); unsteered {self.baseline:.2f}",
                       x_title="strength (alpha)", y_title="layer", colorbar_title=self.metric)


def steering_grid(
    model: HookedTransformer,
    prompts: str | Sequence[str],
    vectors: SteeringVectors | SteeringVector,
    *,
    layers: int | Sequence[int] | None = None,
    alphas: Sequence[float] = (0.5, 1.0, 2.0, 4.0),
    mode: str = "add",
    metric: Callable[[SteerResult], float] | None = None,
    max_new_tokens: int = 8,
    chat: bool | None = None,
    batch_size: int = 32,
    progress: bool = True,
) -> SteeringGrid:
    """Steer `prompts` at every layer and strength and score each cell's completions.

    Args:
        model: the model.
        prompts: the prompts to steer (raw requests for chat models).
        vectors: `SteeringVectors` from `mean_difference` (each layer uses its own vector, read
            at the last computed position), or one `SteeringVector` applied at every layer.
        layers: rows; `None` for every layer the vectors cover (all layers for one vector).
        alphas: columns (finite strengths); ignored for `mode="ablate"` (one column, alpha 1).
        mode: `"add"` or `"ablate"`.
        metric: `SteerResult -> float`; default the refusal rate with the profile's phrases.
        max_new_tokens, chat, batch_size: as in `steer`.
        progress: show a progress bar over the cells.

    Example:
        >>> interp.steering_grid(model, harmless, vs, layers=[1, 2], alphas=[1, 4]).to_frame()
    """
    check_model(model)
    prompts = check_prompts(prompts)
    check_count(max_new_tokens, "max_new_tokens")
    check_count(batch_size, "batch_size")
    if metric is not None and not callable(metric):
        raise TypeError(f"metric is {metric!r}: expected a callable SteerResult -> float")
    if isinstance(alphas, (str, bytes)) or not hasattr(alphas, "__iter__"):
        raise TypeError(f"alphas is {alphas!r}: expected a list of finite numbers")
    if layers is not None and len(set(check_layers(model, layers))) != len(check_layers(model, layers)):
        raise ValueError(f"layers is {layers!r}: it names a layer twice; expected distinct layers (one row each)")
    if isinstance(vectors, SteeringVectors):
        available = list(vectors.layers)
        rows = available if layers is None else check_layers(model, layers)
        missing = [layer for layer in rows if layer not in available]
        if missing:
            raise ValueError(f"layers {missing} were not computed by mean_difference; computed: {available}")
        position = vectors.positions[-1]
        pick = {layer: vectors[layer, position] for layer in rows}
    elif isinstance(vectors, SteeringVector):
        rows = check_layers(model, layers)
        pick = {layer: vectors for layer in rows}
    else:
        shown = repr(vectors) if vectors is None else type(vectors).__name__
        raise TypeError(f"vectors is {shown}: expected SteeringVectors or a SteeringVector")
    if mode not in ("add", "ablate"):
        raise ValueError(f"mode {mode!r} must be 'add' or 'ablate'")
    cols = (1.0,) if mode == "ablate" else tuple(check_finite(a, "alphas") for a in alphas)
    if not cols:
        raise ValueError("alphas is empty: expected at least one strength")
    score = metric or (lambda r: refusal_rate(r, model=model))
    name = getattr(metric, "__name__", "metric") if metric is not None else "refusal rate"
    rates = torch.zeros(len(rows), len(cols))
    examples: list[list[str]] = []
    baseline = None
    bar = tqdm(total=len(rows) * len(cols), desc="steering grid", disable=not progress, leave=False)
    for i, layer in enumerate(rows):
        examples.append([])
        for j, alpha in enumerate(cols):
            result = steer(model, prompts, pick[layer], layer=layer, alpha=alpha, mode=mode,
                           max_new_tokens=max_new_tokens, chat=chat, batch_size=batch_size,
                           baseline=baseline is None)
            if baseline is None:
                baseline = float(score(dataclasses.replace(result, steered=result.baseline)))
            rates[i, j] = float(score(result))
            examples[-1].append(result.steered[0])
            bar.update()
    bar.close()
    return SteeringGrid(layers=tuple(rows), alphas=cols, rates=rates, baseline=float(baseline), mode=mode,
                        metric=name, examples=tuple(tuple(e) for e in examples))
