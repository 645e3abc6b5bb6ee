"""What every result shares: frozen, on the CPU, shape-checked, and able to show itself.

Functions compute; results carry. Each technique returns a frozen dataclass that holds detached
CPU tensors and the labels needed to read them (tokens, layers), in the style of tuned-lens'
prediction trajectories: the object knows how to draw itself (`.plot()` returns a plotly
figure, never shows it), how to become a table (`.to_frame()`), and how to display in a
notebook (`_repr_html_`: a one-line summary and the first rows of the table).

Subclasses are `@dataclass(frozen=True)` classes that inherit `Result`, call
`self._freeze()` from `__post_init__` to move their tensors to the CPU, and implement `plot`
and `to_frame`; `plot()` must work with no argument.

Example:
    >>> lens = interp.logit_lens(model, "the capital of france is")
    >>> lens.plot()            # a plotly Figure
    >>> lens.to_frame().head() # a pandas DataFrame
    >>> lens                   # in a notebook: summary and table
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import plotly.graph_objects as go

_HTML_ROWS = 20


class Result:
    """Base of every result dataclass (see the module docstring)."""

    def plot(self) -> go.Figure:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError(f"{type(self).__name__} has no plot()")

    def to_frame(self) -> pd.DataFrame:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError(f"{type(self).__name__} has no to_frame()")

    def summary(self) -> str:
        """One line saying what this result is (shown above the table in a notebook)."""
        return type(self).__name__

    def _repr_html_(self) -> str:
        import html

        frame = self.to_frame()
        more = f"<p>{len(frame) - _HTML_ROWS} more rows</p>" if len(frame) > _HTML_ROWS else ""
        return f"<b>{html.escape(self.summary())}</b>" + frame.head(_HTML_ROWS).to_html() + more

    def _freeze(self) -> None:
        """Detach every tensor field and move it to the CPU (frozen dataclasses allow this here)."""
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, torch.Tensor) and (value.requires_grad or value.device.type != "cpu"):
                object.__setattr__(self, f.name, value.detach().cpu())


def check_shape(name: str, tensor: torch.Tensor, shape: Sequence[int | None]) -> None:
    """Raise a ValueError unless `tensor` has `shape` (`None` matches any size)."""
    got = tuple(tensor.shape)
    if len(got) != len(shape) or any(w is not None and g != w for g, w in zip(got, shape)):
        want = tuple("*" if w is None else w for w in shape)
        raise ValueError(f"{name} has shape {got}, expected {want}")


def as_cpu(value: Any) -> Any:
    """A tensor detached and on the CPU; anything else unchanged."""
    return value.detach().cpu() if isinstance(value, torch.Tensor) else value
