"""Experiment scaffolding: a config dataclass becomes a command line, a run becomes a lab notebook.

A scripted experiment (`experiments/<name>.py`) reruns a published finding end to end. What
every such script shares lives here, so that the scripts hold only the experiment itself:

- **Config -> command line.** An experiment's settings are one frozen dataclass that inherits
  `ExperimentConfig` (`model`, `out`, `quick`, `seed`, `threads`) and documents every field
  with an attribute docstring (a string literal under the field, as in PEP 257). `parse_config`
  turns the fields into `--flag` options whose help is that docstring; `--quick` applies the
  class's `QUICK` overrides (smaller prompt sets for tests and smoke runs), and a flag given
  explicitly wins over both.
- **Run -> results folder.** `Notebook` times the run, writes figures (plotly HTML; PNG too
  when an image exporter, kaleido, is installed), and finishes with `summary.json` (settings,
  measured numbers, the model's fingerprint, the machine, the wall time, and the finding as
  reproduced / not reproduced against a stated criterion) and `report.md`, which reads like a
  lab-notebook entry: question, method, numbers, figures, conclusion, and what differs from the
  published result.

Every intervention is reported beside a control of the same size (`interp.core.controls`), in
the spirit of Hewitt & Liang 2019 ("Designing and Interpreting Probes with Control Tasks",
EMNLP): an effect means little until a random intervention of the same size has been shown
not to have it, and on real models it often partly does.

Example:
    >>> @dataclass(frozen=True)
    ... class Config(ExperimentConfig):
    ...     n_prompts: int = 64
    ...     '''How many prompts to read.'''
    ...     QUICK: ClassVar[dict] = {"n_prompts": 8}
    >>> cfg = parse_config(Config, ["--quick"])          # Config(n_prompts=8, quick=True, ...)
    >>> nb = Notebook("logit_lens", cfg, model, default_root="experiments/results")
    >>> nb.figure("trajectory", fig, "rank of the answer over layers")
    >>> nb.finish(claim=..., criterion=..., reproduced=True, numbers={...}, ...)
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import math
import os
import platform
import textwrap
import time
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

SUMMARY = "summary.json"
REPORT = "report.md"


@dataclass(frozen=True)
class ExperimentConfig:
    """Settings every experiment has; subclass it (frozen) and document each new field."""

    model: str = "toy"
    """Model name or path, as `interp.load_model` takes it (default: the built-in model)."""
    out: str = ""
    """Results folder (default: experiments/results/<experiment name>/)."""
    quick: bool = False
    """Small settings for a fast check (the tests run every experiment this way)."""
    seed: int = 0
    """Seed of every random choice (controls, splits, shuffles)."""
    threads: int = 0
    """torch CPU threads (0 keeps torch's default; 1 is fastest on a busy two-core machine)."""

    QUICK: ClassVar[dict[str, Any]] = {}


def field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings of a dataclass and its bases: `{field: the string under it}`."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):  # defined interactively: no source to read
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for stmt, nxt in zip(body, body[1:]):
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[stmt.target.id] = " ".join(nxt.value.value.split())
    return docs


def _kind(hint: Any) -> tuple[type, bool]:
    """(element type, is a tuple) of a field's type hint; Optional[X] counts as X."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _kind(args[0])
    if origin in (tuple, Sequence, list):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return (args[0] if args else str), True
    return hint, False


def parse_config(cls: type[ExperimentConfig], argv: Sequence[str] | None = None) -> ExperimentConfig:
    """Build `cls` from command-line arguments: one `--field-name` option per field.

    Booleans get `--flag/--no-flag`; tuples take several values (`--tasks antonym plural`).
    `--quick` applies `cls.QUICK`, and any option given explicitly overrides it.

    Raises:
        SystemExit: bad arguments (argparse prints which and why).
    """
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    parser = argparse.ArgumentParser(
        description=(inspect.getdoc(inspect.getmodule(cls)) or "").split("\n\n")[0],
        argument_default=argparse.SUPPRESS,
    )
    for f in dataclasses.fields(cls):
        kind, many = _kind(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        factory = f.default_factory  # type: ignore[misc]
        default = f.default if f.default is not dataclasses.MISSING else factory()
        help_ = f"{docs.get(f.name, '')} (default: {default!r})".replace("%", "%%")
        if kind is bool:
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, help=help_)
        else:
            parser.add_argument(flag, dest=f.name, type=kind, nargs="+" if many else None, help=help_)
    given = vars(parser.parse_args(list(argv) if argv is not None else None))
    values = dict(cls.QUICK) if given.get("quick") else {}
    unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ValueError(f"{cls.__name__}.QUICK names fields it does not have: {sorted(unknown)}")
    values |= {k: tuple(v) if isinstance(v, list) else v for k, v in given.items()}
    return cls(**values)


def load_for(config: ExperimentConfig, model: Any = None) -> Any:
    """Apply the run's seed and thread count, and load `config.model` (unless `model` is given)."""
    import torch

    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    if model is not None:
        return model
    import interp

    return interp.load_model(config.model)


def script_notebook(script: str | Path, config: ExperimentConfig, model: Any = None) -> Notebook:
    """The `Notebook` of an experiment script: named after the file, results in `results/<name>/` beside it.

    Example:
        >>> nb = script_notebook(__file__, cfg, model)     # experiments/results/logit_lens/
    """
    path = Path(script).resolve()
    return Notebook(path.stem, config, model, default_root=path.parent / "results")


def main(run: Any, config_class: type[ExperimentConfig], argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run an experiment from the command line: parse its config, run it, print the verdict.

    Example:
        >>> if __name__ == "__main__":
        ...     main(run, Config)
    """
    import sys

    summary = run(parse_config(config_class, sys.argv[1:] if argv is None else argv))
    print(f"{summary['experiment']}: {summary['finding']['verdict']} ({summary['wall_seconds']:.1f} s)")
    return summary


def jsonable(value: Any) -> Any:
    """Numbers, strings, lists and dicts from tensors, numpy values, tuples and dataclasses.

    Non-finite floats become None (JSON has no NaN).
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # torch / numpy
        return jsonable(value.tolist())
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, Path):
        return str(value)
    return repr(value)


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one level, keys joined with dots: `{"zero": {"drop": 1}}` -> `{"zero.drop": 1}`."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out |= flatten(value, f"{name}.")
        else:
            out[name] = value
    return out


def _png_exporter() -> bool:
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return False
    return True


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, Mapping) for v in value):
        return f"{len(value)} rows (table below)"
    if isinstance(value, (list, tuple)):
        short = [_fmt(v) for v in value[:12]]
        return "[" + ", ".join(short) + (", ..." if len(value) > 12 else "") + "]"
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table of dict rows (columns from the first row), numbers to 4 significant digits."""
    if not rows:
        return "(no rows)"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


class Notebook:
    """One experiment run: its results folder, its figures, and its summary and report.

    Args:
        name: the experiment's name (`logit_lens`); the default folder is `default_root/name`.
        config: the run's settings (an `ExperimentConfig`); `config.out` overrides the folder.
        model: the model the experiment ran on (for its name and fingerprint), or None.
        default_root: where results go when `config.out` is empty.
    """

    def __init__(
        self,
        name: str,
        config: ExperimentConfig,
        model: Any = None,
        *,
        default_root: str | Path = "experiments/results",
    ) -> None:
        self.name, self.config, self.model = name, config, model
        self.folder = Path(config.out) if config.out else Path(default_root) / name
        self.folder.mkdir(parents=True, exist_ok=True)
        self.figures: list[dict[str, str]] = []
        self.tables: list[tuple[str, str]] = []
        self._start = time.perf_counter()

    def figure(self, name: str, fig: Any, caption: str) -> Path:
        """Write a plotly figure as `name.html` (and `name.png` with kaleido installed)."""
        html = self.folder / f"{name}.html"
        fig.write_html(html, include_plotlyjs="cdn")
        entry = {"name": name, "html": html.name, "caption": caption}
        if _png_exporter():
            try:
                fig.write_image(self.folder / f"{name}.png")
                entry["png"] = f"{name}.png"
            except Exception:  # noqa: BLE001 - an exporter that cannot run leaves the HTML
                pass
        self.figures.append(entry)
        return html

    def table(self, title: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Add a Markdown table to the report (written by `finish`)."""
        self.tables.append((title, markdown_table(rows)))

    def model_facts(self) -> dict[str, Any]:
        """The model's name, size and fingerprint (empty without a model)."""
        if self.model is None:
            return {}
        from interp.core.cache import fingerprint

        cfg = self.model.cfg
        return {
            "name": cfg.model_name,
            "fingerprint": fingerprint(self.model),
            "n_layers": cfg.n_layers,
            "d_model": cfg.d_model,
            "d_vocab": cfg.d_vocab,
            "device": str(cfg.device),
        }

    def finish(
        self,
        *,
        question: str,
        method: str,
        claim: str,
        criterion: str,
        reproduced: bool,
        numbers: Mapping[str, Any],
        conclusion: str,
        published: str,
        differences: str,
        controls: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Write `summary.json` and `report.md`; return the summary.

        Args:
            question: what the experiment asks (one or two sentences).
            method: how it was measured (prompts, layers, interventions, controls).
            claim: the published finding being tested, in one sentence.
            criterion: the numeric test that decides "reproduced", fixed before the run.
            reproduced: whether the criterion held.
            numbers: every measured number the conclusion rests on.
            conclusion: what the numbers say.
            published: the published anchor (paper, model, its numbers).
            differences: what differs from the published setting or result, and why.
            controls: the same-size control interventions' numbers, beside the real ones.
        """
        wall = time.perf_counter() - self._start
        import torch

        summary = {
            "experiment": self.name,
            "finding": {
                "claim": claim,
                "criterion": criterion,
                "reproduced": bool(reproduced),
                "verdict": "reproduced" if reproduced else "not reproduced",
            },
            "numbers": jsonable(numbers),
            "controls": jsonable(controls or {}),
            "settings": jsonable(self.config),
            "model": self.model_facts(),
            "published": published,
            "figures": self.figures,
            "machine": {
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
            },
            "wall_seconds": round(wall, 2),
        }
        path = self.folder / SUMMARY
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
        tmp.replace(path)
        (self.folder / REPORT).write_text(self._markdown(summary, question, method, conclusion, differences))
        return summary

    def _markdown(
        self, s: dict[str, Any], question: str, method: str, conclusion: str, differences: str
    ) -> str:
        model = s["model"]
        flat = [{"number": k, "value": v} for k, v in flatten(s["numbers"]).items()]
        ctrl = [{"control": k, "value": v} for k, v in flatten(s["controls"]).items()]
        parts = [
            f"# {self.name.replace('_', ' ')}: {s['finding']['verdict']}",
            f"*{time.strftime('%Y-%m-%d %H:%M')} · model `{model.get('name', '?')}` (fingerprint "
            f"`{model.get('fingerprint', '?')}`) · {s['wall_seconds']:.1f} s on {s['machine']['cpus']} CPUs"
            f"{' · quick mode' if self.config.quick else ''}*",
            "## Question",
            question,
            "## Method",
            method,
            "## Numbers",
            markdown_table(flat),
        ]
        if ctrl:
            parts += ["### Controls", markdown_table(ctrl)]
        for title, table in self.tables:
            parts += [f"### {title}", table]
        if self.figures:
            parts += ["## Figures"] + [f"- [{f['name']}]({f['html']}): {f['caption']}" for f in self.figures]
        parts += [
            "## Conclusion",
            f"**{s['finding']['verdict'].capitalize()}.** Criterion: {s['finding']['criterion']}",
            conclusion,
            "## Published result and what differs",
            s["published"],
            differences,
            "## Settings",
            "```json\n" + json.dumps(s["settings"], indent=2) + "\n```",
        ]
        return "\n\n".join(parts) + "\n"
