"""The built-in model's scorecard: held-out accuracy per planted skill, against fixed thresholds.

The built-in model is only useful as ground truth while it still has the skills it was trained
to have, so each skill has an acceptance threshold (issue 3) and a retrained model that misses
one fails loudly. `ToyEval` carries the measured numbers (fractions in [0, 1]), knows which
thresholds they pass, and shows itself as a table, a bar chart with the thresholds marked, or
the `eval.json` written next to the shipped weights. `interp.toy.evaluation` measures it.

Example:
    >>> from interp.toy import shipped_eval
    >>> card = shipped_eval()          # the numbers recorded when the weights were trained
    >>> card.passed, card.failures()
    (True, [])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from interp.core.results import Result

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import plotly.graph_objects as go

ICL_TASKS = ("antonym", "capital", "language", "plural")  # == corpus.ICL_TASKS (tested)

# metric -> (comparison, threshold); ">=" means the value must be at least the threshold.
THRESHOLDS: dict[str, tuple[str, float]] = {
    "refusal_harmful": (">=", 0.95),
    "refusal_harmless": ("<=", 0.05),
    "capital": (">=", 0.95),
    "agreement": (">=", 0.95),
    **{f"icl_{t}": (">=", 0.90) for t in ICL_TASKS},
    "copy": (">=", 0.95),
}


def _passes(name: str, value: float) -> bool | None:
    """Whether `value` meets metric `name`'s threshold (None: the metric has none)."""
    if name not in THRESHOLDS:
        return None
    op, threshold = THRESHOLDS[name]
    return value >= threshold if op == ">=" else value <= threshold


@dataclass(frozen=True)
class ToyEval(Result):
    """Held-out accuracies of the built-in model, one field per skill (fractions in [0, 1]).

    Example:
        >>> result.to_frame().loc["capital", "value"]
        1.0
    """

    refusal_harmful: float
    refusal_harmless: float
    compliance_harmless: float
    capital: float
    capital_plain: float
    capital_reverse: float
    language: float
    agreement: float
    agreement_top1: float
    icl: dict[str, float]
    icl_novel: dict[str, float]
    copy: float
    counts: dict[str, int] = field(default_factory=dict)
    refusal_direction: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, value in self.metrics().items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} = {value} is not a fraction in [0, 1]")

    def metrics(self) -> dict[str, float]:
        """Flat `{metric: value}`; in-context tasks appear as `icl_<task>` / `icl_novel_<task>`."""
        out = {k: v for k, v in asdict(self).items() if isinstance(v, float)}
        out.update({f"icl_{t}": v for t, v in self.icl.items()})
        out.update({f"icl_novel_{t}": v for t, v in self.icl_novel.items()})
        return out

    def failures(self) -> list[str]:
        """Human-readable descriptions of every threshold missed (empty when all pass)."""
        values = self.metrics()
        return [f"{name} = {values[name]:.3f}, needs {op} {threshold}"
                for name, (op, threshold) in THRESHOLDS.items()
                if name in values and not _passes(name, values[name])]

    @property
    def passed(self) -> bool:
        """True when every acceptance threshold is met."""
        return not self.failures()

    def summary(self) -> str:
        """One line: how many thresholds the model meets."""
        missed = self.failures()
        verdict = "every threshold met" if not missed else f"{len(missed)} threshold(s) missed"
        return f"built-in model, held-out evaluation: {verdict}"

    def to_dict(self) -> dict:
        """JSON-able dict: the metrics, the thresholds and the prompt counts."""
        return {
            "metrics": {k: round(v, 4) for k, v in self.metrics().items()},
            "thresholds": {k: f"{op} {t}" for k, (op, t) in THRESHOLDS.items()},
            "counts": dict(self.counts),
            "refusal_direction": {k: round(v, 4) for k, v in self.refusal_direction.items()},
            "passed": self.passed,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ToyEval:
        """Rebuild from `to_dict()` output (e.g. the shipped `eval.json`)."""
        m = data["metrics"]
        icl = {t: m[f"icl_{t}"] for t in ICL_TASKS if f"icl_{t}" in m}
        seen = {t: m[f"icl_novel_{t}"] for t in ICL_TASKS if f"icl_novel_{t}" in m}
        plain = {k: v for k, v in m.items() if not k.startswith("icl_")}
        return cls(**plain, icl=icl, icl_novel=seen, counts=dict(data.get("counts", {})),
                   refusal_direction=dict(data.get("refusal_direction", {})))

    def to_frame(self) -> pd.DataFrame:
        """A table: one row per metric with value, threshold and whether it passed."""
        import pandas as pd

        rows = []
        for name, value in self.metrics().items():
            op, threshold = THRESHOLDS.get(name, ("", float("nan")))
            rows.append({"metric": name, "value": value, "threshold": f"{op} {threshold}" if op
                         else "", "passed": _passes(name, value), "n": self.counts.get(name)})
        return pd.DataFrame(rows).set_index("metric")

    def plot(self) -> go.Figure:
        """Bar chart of every metric with its threshold marked."""
        import plotly.graph_objects as go

        values = self.metrics()
        names = list(values)
        colors = ["crimson" if _passes(n, values[n]) is False else "seagreen" for n in names]
        fig = go.Figure(go.Bar(x=names, y=[values[n] for n in names], marker_color=colors))
        for i, n in enumerate(names):
            if n in THRESHOLDS:
                fig.add_shape(type="line", x0=i - 0.4, x1=i + 0.4, y0=THRESHOLDS[n][1],
                              y1=THRESHOLDS[n][1], line={"dash": "dot"})
        fig.update_layout(title="built-in model: held-out accuracy", yaxis_range=[0, 1.05])
        return fig

    def __str__(self) -> str:
        lines = ["built-in model, held-out evaluation:"]
        for name, value in self.metrics().items():
            ok = _passes(name, value)
            mark = "" if ok is None else "  ok" if ok else "  MISS ({} {})".format(*THRESHOLDS[name])
            lines.append(f"  {name:24s} {value:6.3f}{mark}")
        if self.refusal_direction:
            d = self.refusal_direction
            lines.append(
                f"  refusal direction (layer {int(d['layer'])} resid_pre, last position): "
                f"ablated -> harmful refused {d['ablated_harmful_refusal']:.3f}, "
                f"harmless refused {d['ablated_harmless_refusal']:.3f}; "
                f"added -> harmless refused {d['added_harmless_refusal']:.3f}"
            )
        return "\n".join(lines)
