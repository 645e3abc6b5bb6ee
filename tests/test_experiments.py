"""Every scripted experiment, in --quick mode on the built-in model, reproduces its finding.

Each experiment runs in-process on the session's built-in model (one load for all of them)
into a temporary folder; its `summary.json` must say "reproduced" against the thresholds of the
technique tests and carry the numbers the finding rests on. One experiment also runs as a
script, the way people run them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import experiment_module
from interp.core.report import parse_config

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = ROOT / "experiments"


def _run(name: str, model, tmp_path: Path, *extra: str) -> dict:
    module = experiment_module(name)
    cfg = parse_config(module.Config, ["--quick", "--out", str(tmp_path), *extra])
    summary = module.run(cfg, model=model)
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved == summary
    report = (tmp_path / "report.md").read_text()
    for section in ("## Question", "## Method", "## Numbers", "## Conclusion", "## Published result"):
        assert section in report, f"{name}: report.md lacks {section!r}"
    assert summary["figures"] and all((tmp_path / f["html"]).exists() for f in summary["figures"])
    assert summary["model"]["fingerprint"] and summary["settings"]["quick"] is True
    print(f"{name}: {summary['finding']['verdict']}; {json.dumps(summary['numbers'])[:600]}")
    assert summary["finding"]["reproduced"], (
        f"{name} not reproduced: {summary['finding']['criterion']}; numbers {summary['numbers']}; "
        f"controls {summary['controls']}"
    )
    return summary


def test_logit_lens(toy_model, tmp_path):
    s = _run("logit_lens", toy_model, tmp_path)
    n = s["numbers"]
    assert n["final_accuracy"] >= 0.95 and n["answer_top1_at_embedding_of_correct"] <= 0.05
    assert n["layers"][0] == "embed" and len(n["share_top1_by_layer"]) == toy_model.cfg.n_layers + 1
    assert (
        n["share_top1_by_layer"][-1] >= 0.95
        and n["mean_entropy_by_layer_nats"][0] > n["mean_entropy_by_layer_nats"][-1]
    )
    assert s["controls"]["control_share_top1_by_layer"][-1] == 0.0


def test_patchscopes(toy_model, tmp_path):
    s = _run("patchscopes", toy_model, tmp_path)
    n, layers = s["numbers"], toy_model.cfg.n_layers
    assert len(n["patchscope_precision_at_1"]) == len(n["lens_precision_at_1"]) == layers
    assert n["mean_gain_patchscope_minus_lens"] >= 0.05
    assert max(s["controls"]["shuffled_source_precision_at_1"]) < 0.2  # another prompt's state: no
    assert n["description_share_by_layer"][0] >= 0.8  # at the embedding the entity is described


def test_singular_plural_neurons(toy_model, tmp_path):
    s = _run("singular_plural_neurons", toy_model, tmp_path)
    n, c = s["numbers"], s["controls"]
    assert len(n["top_neurons"]) == 10 and n["baseline_logit_diff"] > 0
    assert n["zero"]["logit_diff_drop"] >= 3 * max(c["random_10_zero"]["logit_diff_drop"], 0.0)
    assert n["mean"]["logit_diff_drop"] > c["random_10_mean"]["logit_diff_drop"]
    assert n["zero"]["top1_changed"] < 0.5  # the argmax verb usually survives


def test_refusal_direction(toy_model, tmp_path):
    s = _run("refusal_direction", toy_model, tmp_path)
    n, c = s["numbers"], s["controls"]
    assert n["harmful_unsteered"] >= 0.95 and n["harmful_ablated"] <= 0.10
    assert n["harmless_unsteered"] <= 0.05 and n["harmless_added"] >= 0.90
    assert n["kl_harmless_ablated"] < 0.1 and n["orthogonalize_max_logit_diff"] < 1e-3
    assert n["orthogonalize_same_completions"] == 1.0
    assert c["random_same_norm"]["harmful_ablated"] >= 0.9 and c["random_same_norm"]["harmless_added"] <= 0.1
    assert len(n["layer_sweep"]) >= 2 and {"harmful_ablated", "harmless_added"} <= set(n["layer_sweep"][0])


def test_sae_features(toy_model, tmp_path):
    s = _run("sae_features", toy_model, tmp_path)
    n, c = s["numbers"], s["controls"]
    assert n["text_feature_fires_harmful"] >= 0.5 and n["text_feature_fires_harmless"] <= 0.1
    assert n["best_steering"]["steered"] >= 0.8 and n["best_steering"]["unsteered"] == 0
    assert c["random_direction_same_norm_steered"] <= 0.2


def test_task_vectors(toy_model, tmp_path):
    s = _run("task_vectors", toy_model, tmp_path)
    n = s["numbers"]
    assert n["mean_best_accuracy"] >= 0.9 and min(n["mean_accuracy_by_layer"]) <= 0.5
    assert set(n["tasks"]) == {"antonym", "capital", "language", "plural"}
    assert n["tasks"]["language"]["best"] - n["tasks"]["language"]["random_at_best"] >= 0.2
    best = max(n["arithmetic"], key=lambda r: r["capital_answers"])
    assert best["capital_answers"] >= 0.5 and best["random_same_norm"] <= 0.1  # v(capital) - v(language)


def test_backpatching(toy_model, tmp_path):
    s = _run("backpatching", toy_model, tmp_path)
    n, c = s["numbers"], s["controls"]
    assert n["n_failures"] >= 5 and n["fixed_any_pair"] >= 0.4
    assert n["fixed_any_pair"] - c["other_query_fixed_any_pair"] >= 0.2
    assert n["best_pair"]["source"] > n["best_pair"]["target"]


def test_an_experiment_runs_as_a_script(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = tmp_path / "lens"
    proc = subprocess.run(
        [
            sys.executable,
            str(EXPERIMENTS / "logit_lens.py"),
            "--quick",
            "--threads",
            "1",
            "--n-prompts",
            "4",
            "--min-correct",
            "2",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "logit_lens: reproduced" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["n_prompts"] == 4 and summary["numbers"]["n_prompts"] == 4


def test_every_config_field_is_documented():
    from interp.core.report import field_docs

    for path in sorted(EXPERIMENTS.glob("*.py")):
        if path.name.startswith("_"):
            continue
        module = experiment_module(path.stem)
        docs = field_docs(module.Config)
        missing = [f.name for f in dataclasses.fields(module.Config) if f.name not in docs]
        assert not missing, f"{path.name}: Config fields without a docstring: {missing}"
