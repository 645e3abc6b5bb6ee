"""Experiment scaffolding: config -> command line, results folder, summary and report."""

import json
from dataclasses import FrozenInstanceError, dataclass
from typing import ClassVar

import plotly.graph_objects as go
import pytest
import torch

from interp.core.report import (
    ExperimentConfig,
    Notebook,
    field_docs,
    flatten,
    jsonable,
    load_for,
    main,
    markdown_table,
    parse_config,
    script_notebook,
)


@dataclass(frozen=True)
class DemoConfig(ExperimentConfig):
    """A demo experiment."""

    n_prompts: int = 64
    """How many prompts."""
    alpha: float = 1.5
    """Steering strength (100% = 1.0)."""
    tasks: tuple[str, ...] = ("antonym", "plural")
    """Tasks to run."""
    verbose: bool = False
    """Print more."""

    QUICK: ClassVar[dict] = {"n_prompts": 8, "tasks": ("antonym",)}


def test_field_docs_reads_attribute_docstrings_of_the_class_and_its_base():
    docs = field_docs(DemoConfig)
    assert docs["n_prompts"] == "How many prompts." and docs["alpha"].startswith("Steering strength")
    assert "interp.load_model" in docs["model"] and "quick" in docs


def test_parse_config_defaults_quick_and_explicit_flags():
    assert parse_config(DemoConfig, []) == DemoConfig()
    quick = parse_config(DemoConfig, ["--quick"])
    assert quick.quick and quick.n_prompts == 8 and quick.tasks == ("antonym",)
    mixed = parse_config(
        DemoConfig,
        [
            "--quick",
            "--n-prompts",
            "3",
            "--tasks",
            "a",
            "b",
            "--verbose",
            "--alpha",
            "2",
            "--model",
            "gpt2",
            "--out",
            "/tmp/x",
        ],
    )
    assert (mixed.n_prompts, mixed.tasks, mixed.verbose, mixed.alpha) == (3, ("a", "b"), True, 2.0)
    assert (mixed.model, mixed.out, mixed.quick) == ("gpt2", "/tmp/x", True)
    with pytest.raises(FrozenInstanceError):
        mixed.n_prompts = 1  # type: ignore[misc]
    with pytest.raises(SystemExit):
        parse_config(DemoConfig, ["--n-prompts", "many"])


def test_help_shows_each_fields_docstring(capsys):
    with pytest.raises(SystemExit):
        parse_config(DemoConfig, ["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "How many prompts. (default: 64)" in out and "Steering strength (100% = 1.0)." in out


def test_quick_overrides_must_name_fields():
    @dataclass(frozen=True)
    class Bad(ExperimentConfig):
        QUICK: ClassVar[dict] = {"nope": 1}

    with pytest.raises(ValueError, match=r"QUICK names fields it does not have: \['nope'\]"):
        parse_config(Bad, ["--quick"])


def test_jsonable_and_markdown_table():
    value = {"t": torch.tensor([1.5, float("nan")]), "cfg": DemoConfig(), "tup": (1, "a"), 3: True}
    out = jsonable(value)
    assert out["t"] == [1.5, None] and out["cfg"]["tasks"] == ["antonym", "plural"] and out["3"] is True
    json.dumps(out)
    table = markdown_table([{"a": 0.123456, "b": "x"}, {"a": [1, 2], "b": None}])
    assert table.splitlines()[0] == "| a | b |" and "0.1235" in table and "[1, 2]" in table
    assert markdown_table([]) == "(no rows)"
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}


def test_notebook_writes_summary_report_and_figures(tmp_path, gpt2_like):
    cfg = DemoConfig(out=str(tmp_path / "run"), quick=True)
    model = load_for(cfg, gpt2_like)
    assert model is gpt2_like
    nb = Notebook("demo_run", cfg, model)
    nb.figure("bars", go.Figure(go.Bar(x=["a"], y=[1])), "one bar")
    nb.table("Per layer", [{"layer": 0, "value": 0.5}])
    summary = nb.finish(
        question="Q?",
        method="M.",
        claim="C.",
        criterion="x >= 1",
        reproduced=True,
        numbers={"x": torch.tensor(2.0), "zero": {"drop": 0.5}},
        controls={"random x": 0.1},
        conclusion="Concl.",
        published="Paper 2024.",
        differences="Smaller.",
    )
    folder = tmp_path / "run"
    saved = json.loads((folder / "summary.json").read_text())
    assert saved == summary and saved["finding"]["verdict"] == "reproduced" and saved["numbers"]["x"] == 2.0
    assert saved["model"]["fingerprint"] and saved["settings"]["n_prompts"] == 64
    assert saved["controls"] == {"random x": 0.1} and saved["figures"][0]["html"] == "bars.html"
    assert (folder / "bars.html").exists()
    report = (folder / "report.md").read_text()
    for part in (
        "# demo run: reproduced",
        "## Question",
        "Q?",
        "## Numbers",
        "| x | 2 |",
        "| zero.drop | 0.5 |",
        "### Controls",
        "### Per layer",
        "[bars](bars.html)",
        "Criterion: x >= 1",
        "Paper 2024.",
        "quick mode",
    ):
        assert part in report, part


def _finish_blank(nb: Notebook, reproduced: bool) -> dict:
    texts = ("question", "method", "claim", "criterion", "conclusion", "published", "differences")
    return nb.finish(**dict.fromkeys(texts, ""), reproduced=reproduced, numbers={})


def test_script_notebook_and_main(tmp_path, capsys):
    script = tmp_path / "my_experiment.py"
    nb = script_notebook(str(script), DemoConfig())
    assert nb.name == "my_experiment" and nb.folder == tmp_path / "results" / "my_experiment"

    def run(cfg):
        return _finish_blank(Notebook("demo", cfg, default_root=tmp_path), reproduced=cfg.n_prompts == 3)

    summary = main(run, DemoConfig, ["--n-prompts", "3"])
    assert summary["settings"]["n_prompts"] == 3
    assert capsys.readouterr().out.startswith("demo: reproduced (")


def test_notebook_default_folder(tmp_path):
    nb = Notebook("demo", DemoConfig(), default_root=tmp_path)
    assert nb.folder == tmp_path / "demo" and nb.folder.is_dir()
    summary = _finish_blank(nb, reproduced=False)
    assert summary["finding"]["verdict"] == "not reproduced" and summary["model"] == {}
