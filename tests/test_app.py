"""Dashboard pages, run headless with Streamlit's AppTest on the built-in model.

Every page: runs with its defaults, shows a plotly figure and downloads, reruns after an input
changes, and shows a readable error (never a traceback) for a bad input. The model and results
are cached by the app for the whole process, so the module loads the built-in model once.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[1] / "app" / "Home.py"
TIMEOUT = 600  # the first run loads the model; shared 2-core machines can be slow


def open_page(page: str | None = None, **state) -> AppTest:
    """The app on `page` (e.g. "1_Logit_lens"), with widget values preset in the session."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    if page is not None:
        at.switch_page(f"pages/{page}.py").run()
    return at


def figures(at: AppTest) -> int:
    return len(at.get("plotly_chart"))


def ok(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert figures(at) >= 1
    assert len(at.get("download_button")) >= 2  # CSV and JSON of the result


def shows_error(at: AppTest, *phrases: str) -> None:
    assert not at.exception, at.exception  # a message, not a traceback
    text = " ".join(e.value for e in at.error).lower()
    assert text, "expected an error message on the page"
    assert "traceback" not in text
    for phrase in phrases:
        assert phrase in text, text


@pytest.fixture(scope="module", autouse=True)
def _weights(toy_model):
    """Skip where the built-in model has not been trained (the conftest fixture says so)."""


def test_home_says_what_each_page_is_for_and_shows_the_model_facts(toy_model):
    at = open_page()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Layers"] == str(toy_model.cfg.n_layers)
    assert metrics["d_model"] == str(toy_model.cfg.d_model)
    assert metrics["Device"] == "cpu"
    links = {link.proto.label for link in at.get("page_link")}
    assert {"Logit lens", "Patchscopes", "Neurons", "Steering", "SAE features"} <= links
    assert at.sidebar.selectbox[0].options[0] == "toy"  # the built-in model comes first


def test_a_hub_model_that_is_not_cached_is_a_readable_error():
    at = open_page()
    at.sidebar.selectbox(key="model").select("gpt2").run()
    assert not at.exception
    if not at.error:  # pragma: no cover - only where gpt2 is cached locally
        pytest.skip("gpt2 weights are cached on this machine")
    shows_error(at, "could not load the weights of 'gpt2'", "interp.load_model('toy')")
    assert at.query_params["model"] == "gpt2"


def test_a_bad_local_path_is_a_readable_error():
    at = open_page()
    at.sidebar.text_input(key="path").input("/no/such/model").run()
    shows_error(at, "/no/such/model")


def test_logit_lens(toy_model):
    at = open_page("1_Logit_lens")
    ok(at)
    assert figures(at) == 2  # the heatmap and the target's trajectory
    cell = at.dataframe
    assert cell, "the chosen cell's top tokens"
    at.text_input(key="lens_prompt").input("the capital of germany is").run()
    ok(at)
    assert at.query_params["lens_prompt"] == "the capital of germany is"
    at.selectbox(key="lens_cell_layer").select("embed").run()
    ok(at)
    at.text_input(key="lens_prompt").input("").run()
    shows_error(at, "non-empty")
    at.text_input(key="lens_prompt").input("The capital of France is").run()
    at.text_input(key="lens_targets").input("paris, zzqx").run()
    shows_error(at, "'zzqx' is not a single token")


def test_logit_lens_state_comes_from_the_url():
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params["lens_prompt"] = "the capital of spain is"
    at.query_params["lens_k"] = "3"
    at.switch_page("pages/1_Logit_lens.py").run()
    assert not at.exception, at.exception
    assert at.text_input(key="lens_prompt").value == "the capital of spain is"
    assert at.number_input(key="lens_k").value == 3


def test_patchscopes():
    at = open_page("2_Patchscopes")
    ok(at)
    table = at.dataframe[0]
    assert "generation" in table.value.columns and len(table.value) == 4  # one row per source layer
    at.selectbox(key="ps_target").select("custom…").run()
    ok(at)
    at.text_input(key="ps_source").input("").run()
    shows_error(at, "non-empty")
    at.text_input(key="ps_source").input("We visited France").run()
    at.text_input(key="ps_position").input("spain").run()
    shows_error(at, "'spain' is not a token")


def test_neurons():
    at = open_page("3_Neurons")
    ok(at)
    assert figures(at) == 3  # ranking, ablation bars, the neuron's card
    at.selectbox(key="nr_method").select("mean").run()
    ok(at)
    at.text_input(key="nr_typed").input("1:7, 2:x").run()
    shows_error(at, "layer:index")
    at.text_input(key="nr_typed").input("9:1").run()
    shows_error(at, "layer 9 is out of range")
    at.text_input(key="nr_typed").input("").run()
    at.text_area(key="nr_prompts").input("").run()
    shows_error(at)


def test_steering():
    at = open_page("4_Steering", st_train=8, st_val=4, st_eval=2, st_grid_n=2, st_grid_alphas="1, 4")
    ok(at)
    assert figures(at) == 3  # mean-difference norms, the layer sweep, the layer x strength grid
    assert any(b.proto.label.startswith("Save this vector") for b in at.get("download_button"))
    at.radio(key="st_mode").set_value("ablate").run()
    ok(at)
    at.toggle(key="st_sweep").set_value(False).run()  # the slow parts are optional
    ok(at)
    assert figures(at) == 2
    at.toggle(key="st_grid").set_value(False).run()
    ok(at)
    assert figures(at) == 1
    at.text_input(key="st_prompt").input("").run()
    shows_error(at, "non-empty")


def test_sae_features():
    at = open_page("5_SAE_features", sae_docs=200)
    ok(at)
    assert figures(at) == 3  # features on the prompt, the search, the feature card
    first = at.number_input(key="sae_feature").value
    at.button[1].click().run()  # next feature
    ok(at)
    assert at.number_input(key="sae_feature").value == first + 1
    at.radio(key="sae_mode").set_value("text").run()
    ok(at)
    at.text_input(key="sae_prompt").input("").run()
    shows_error(at, "non-empty")
    at.text_input(key="sae_release").input("no-such-release").run()
    shows_error(at, "unknown sae release")
