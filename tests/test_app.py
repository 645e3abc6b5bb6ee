"""Dashboard pages, run headless with Streamlit's AppTest."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[1] / "app"


def test_home_shows_the_built_in_model_facts(toy_model):
    at = AppTest.from_file(str(APP / "Home.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Layers"] == str(toy_model.cfg.n_layers)
    assert metrics["d_model"] == str(toy_model.cfg.d_model)
    assert metrics["Device"] == "cpu"


def test_home_reports_an_unavailable_model_without_crashing():
    at = AppTest.from_file(str(APP / "Home.py"), default_timeout=60).run()
    at.sidebar.selectbox[0].select("gpt2").run()
    assert not at.exception
    if at.error:
        assert "could not load the weights of 'gpt2'" in at.error[0].value.lower()
    else:  # pragma: no cover - only where gpt2 is cached locally
        pytest.skip("gpt2 weights are cached on this machine")
