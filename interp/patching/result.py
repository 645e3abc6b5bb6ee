"""What a patchscope returns: one row per (source layer, target layer), with its generation.

A patchscope (Ghandeharioun et al. 2024, "Patchscopes", arXiv:2401.06102) reads a hidden state
of a *source* prompt by patching it into a *target* prompt and letting the model continue. A
sweep gives one continuation per source layer (and, for a grid, per target layer too), so the
result is a table: which layer's state makes the model say `paris`, from which layer on does
the identity prompt copy the source token, where does back-patching into an earlier layer
(Biran et al. 2024, "Hopping Too Late", arXiv:2406.12775) recover an answer.

Two vocabularies meet here. *Target* in `target_prompt`, `target_tokens` and `target_layers`
is the Patchscopes paper's target prompt. `targets`, `target_ids`, `target_probs` and
`target_ranks` are the library's reported output tokens (the `targets=` argument everywhere):
the first of them is the answer that `correct` and `best_source_layer` check. `expected`,
`expected_id`, `expected_probs` and `expected_ranks` are the same first target under the names
this result had before `expected=` became `targets=`.

Example:
    >>> ps = interp.patchscope(model, "we visited france last year .", source_position="france",
    ...                        target="capital", targets="paris")
    >>> ps.to_frame()[["source_layer", "generation", "expected_prob", "correct"]]
    >>> ps.plot()          # p(paris) over source layers, each point labelled with its first token
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import plotly.graph_objects as go
import torch
from jaxtyping import Float, Int

from interp.core.plotting import heatmap, layer_lines
from interp.core.results import Result, check_shape

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

_NO_TARGETS = "no targets were given: call patchscope(..., targets='...') (no expected answer)"


@dataclass(frozen=True, repr=False)
class PatchscopeResult(Result):
    """One patchscope run: a row per (source layer, target layer) with its generation.

    `generations[i]` is the greedy continuation of the target prompt when the source state at
    `source_layers[i]` was patched in at `target_layers[i]`. `first_probs[i]` is the probability
    of its first token. With `targets`, `target_probs[i, j]` and `target_ranks[i, j]` (1 = top)
    are target j's probability and rank as the first generated token of row i.
    """

    source_prompt: str
    source_tokens: tuple[str, ...]
    source_position: int
    target_prompt: str
    target_tokens: tuple[str, ...]
    placeholder_position: int
    site: str
    source_layers: tuple[int, ...]
    target_layers: tuple[int, ...]
    generations: tuple[str, ...]
    first_tokens: tuple[str, ...]
    generated_ids: Int[torch.Tensor, "row new"]
    first_probs: Float[torch.Tensor, " row"]
    targets: tuple[str, ...] = ()
    target_ids: tuple[int, ...] = ()
    target_probs: Float[torch.Tensor, "row target"] | None = None
    target_ranks: Int[torch.Tensor, "row target"] | None = None

    def __post_init__(self) -> None:
        self._freeze()
        n = len(self.source_layers)
        if n == 0:
            raise ValueError("a patchscope result needs at least one row")
        lengths = {
            "target_layers": len(self.target_layers),
            "generations": len(self.generations),
            "first_tokens": len(self.first_tokens),
        }
        for name, length in lengths.items():
            if length != n:
                raise ValueError(f"{name} has {length} entries for {n} rows")
        if len(self.target_ids) != len(self.targets):
            raise ValueError("targets and target_ids differ in length")
        for name in ("target_probs", "target_ranks"):  # absent means no targets: [row, 0]
            if getattr(self, name) is None:
                dtype = torch.float32 if name == "target_probs" else torch.long
                object.__setattr__(self, name, torch.zeros(n, 0, dtype=dtype))
        tensors = {
            "generated_ids": (self.generated_ids, (n, None)),
            "first_probs": (self.first_probs, (n,)),
            "target_probs": (self.target_probs, (n, len(self.targets))),
            "target_ranks": (self.target_ranks, (n, len(self.targets))),
        }
        for name, (t, shape) in tensors.items():
            check_shape(name, t, shape)
        if not 0 <= self.source_position < len(self.source_tokens):
            raise ValueError(f"source_position {self.source_position} is outside the source prompt")
        if not 0 <= self.placeholder_position < len(self.target_tokens):
            raise ValueError(f"placeholder_position {self.placeholder_position} is outside the target prompt")

    # --- the first target under its old names --------------------------------------------------

    @property
    def expected(self) -> str | None:
        """The answer (the first of `targets`), or None."""
        return self.targets[0] if self.targets else None

    @property
    def expected_id(self) -> int | None:
        """The answer's token id, or None."""
        return self.target_ids[0] if self.target_ids else None

    @property
    def expected_probs(self) -> Float[torch.Tensor, " row"] | None:
        """Per row, the answer's probability as the first generated token (None without targets)."""
        return self.target_probs[:, 0] if self.targets else None

    @property
    def expected_ranks(self) -> Int[torch.Tensor, " row"] | None:
        """Per row, the answer's rank (1 = top) as the first generated token (None without targets)."""
        return self.target_ranks[:, 0] if self.targets else None

    # --- lookups -------------------------------------------------------------------------------

    @property
    def is_grid(self) -> bool:
        """True for a source x target layer sweep (some source layer patched at several targets)."""
        return len(set(self.source_layers)) < len(self.source_layers)

    @property
    def correct(self) -> torch.Tensor:
        """Per row: is the answer (the first target) the first generated token?"""
        if not self.targets:
            raise ValueError(_NO_TARGETS)
        return self.target_ranks[:, 0] == 1

    def row(self, source_layer: int, target_layer: int | None = None) -> int:
        """The row index of a (source layer, target layer) pair (target defaults to the source)."""
        target = source_layer if target_layer is None else target_layer
        for i, pair in enumerate(zip(self.source_layers, self.target_layers)):
            if pair == (source_layer, target) or (
                target_layer is None and pair[0] == source_layer and not self.is_grid
            ):
                return i
        raise KeyError(
            f"no row for source layer {source_layer}, target layer {target}; "
            f"rows: {list(zip(self.source_layers, self.target_layers))}"
        )

    def generation(self, source_layer: int, target_layer: int | None = None) -> str:
        """The generated text for a source layer (and target layer, for a grid)."""
        return self.generations[self.row(source_layer, target_layer)]

    def best_source_layer(self) -> int:
        """The source layer whose row gives the answer (the first target) the highest probability."""
        if not self.targets:
            raise ValueError(_NO_TARGETS)
        return self.source_layers[int(self.target_probs[:, 0].argmax())]

    # --- views ---------------------------------------------------------------------------------

    def summary(self) -> str:
        token = self.source_tokens[self.source_position]
        answer = f"; answer {self.expected!r} correct in {int(self.correct.sum())}" if self.targets else ""
        return (
            f"patchscope of {token!r} in {self.source_prompt!r} -> {self.target_prompt!r}: "
            f"{len(self.generations)} rows ({self.site}){answer}"
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per (source layer, target layer): generation, first token, probabilities.

        The answer (first target) has the columns `expected`, `expected_prob`, `expected_rank`
        and `correct`; further targets get `p(<token>)` and `rank(<token>)`.
        """
        import pandas as pd

        data = {
            "source_layer": list(self.source_layers),
            "target_layer": list(self.target_layers),
            "generation": list(self.generations),
            "first_token": list(self.first_tokens),
            "first_prob": self.first_probs.tolist(),
        }
        if self.targets:
            data |= {
                "expected": [self.expected] * len(self.source_layers),
                "expected_prob": self.target_probs[:, 0].tolist(),
                "expected_rank": self.target_ranks[:, 0].tolist(),
                "correct": self.correct.tolist(),
            }
        for j, name in enumerate(self.targets[1:], start=1):
            data[f"p({name})"] = self.target_probs[:, j].tolist()
            data[f"rank({name})"] = self.target_ranks[:, j].tolist()
        return pd.DataFrame(data)

    def plot(self) -> go.Figure:
        """A curve over source layers, or a source x target layer heatmap for a grid.

        The value is the answer's (first target's) probability when targets were given, else the
        probability of the first generated token; the first generated token labels each point or
        cell and the whole generation shows on hover. Further targets add curves.
        """
        values = self.target_probs[:, 0] if self.targets else self.first_probs
        what = f"p({self.expected})" if self.targets else "p(first generated token)"
        token = self.source_tokens[self.source_position]
        title = f"patchscope: {token!r} of {self.source_prompt!r} -> {self.target_prompt!r}"
        hover = [
            f"source layer {s} -> target layer {t}<br>{g!r}<br>{what} = {float(v):.3f}"
            for s, t, g, v in zip(self.source_layers, self.target_layers, self.generations, values)
        ]
        if not self.is_grid:
            others = {f"p({n})": self.target_probs[:, j] for j, n in enumerate(self.targets) if j}
            return layer_lines(
                [str(s) for s in self.source_layers],
                {what: values} | others,
                text={what: list(self.first_tokens)},
                hover={what: hover},
                title=title,
                x_title=f"source layer ({self.site})",
                y_title="probability",
                y_range=(0, 1.05),
            )
        sources, targets = sorted(set(self.source_layers)), sorted(set(self.target_layers))
        grid = torch.full((len(sources), len(targets)), float("nan"))
        text = [[""] * len(targets) for _ in sources]
        hov = [[""] * len(targets) for _ in sources]
        for i, (s, t) in enumerate(zip(self.source_layers, self.target_layers)):
            a, b = sources.index(s), targets.index(t)
            grid[a, b], text[a][b], hov[a][b] = float(values[i]), self.first_tokens[i], hover[i]
        return heatmap(
            grid,
            x_labels=[str(t) for t in targets],
            y_labels=[str(s) for s in sources],
            text=text,
            hover=hov,
            title=title,
            x_title="target layer",
            y_title="source layer",
            colorbar_title=what,
            zmin=0.0,
            zmax=1.0,
            reverse_y=False,
        )

    def __repr__(self) -> str:
        rows = ", ".join(
            f"{s}->{t}: {g!r}"
            for s, t, g in list(zip(self.source_layers, self.target_layers, self.generations))[:6]
        )
        more = "" if len(self.generations) <= 6 else f", ... ({len(self.generations)} rows)"
        return f"PatchscopeResult({self.source_prompt!r} -> {self.target_prompt!r}; {rows}{more})"
