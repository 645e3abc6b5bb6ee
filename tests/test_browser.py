"""The running dashboard in a real headless browser (Debian's chromium, driven by Playwright).

`streamlit run app/Home.py` is started on a free localhost port; every page is visited with its
defaults (a few query parameters keep the slow pages small), its figures must render, no error
or exception may show, and a full-page screenshot of each lands in `tests/screenshots/`
(git-ignored) for a person to look at.

Playwright never downloads a browser here: it drives the system chromium at /usr/bin/chromium
(`apt-get install -y chromium`; `.ci/run` installs it in CI). Where it is missing the test skips.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[1]
SHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SLOW = 600_000  # ms: the first page loads the model; the SAE page makes one corpus pass

# (url path, query string that keeps the page small, figures it draws, text it must show)
PAGES = [
    ("", "", 0, "Model: toy"),
    ("Logit_lens", "", 2, "One cell's top tokens"),
    ("Patchscopes", "", 1, "Decoded text per source layer"),
    ("Neurons", "", 3, "Ablate a group"),
    ("Steering", "st_train=16&st_val=8&st_eval=4", 2, "Refusal rate at this cell"),
    ("SAE_features", "sae_docs=300", 3, "Steer with feature"),
]

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed: `apt-get install -y chromium` (Debian/Ubuntu, as root) enables "
           "this test",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(toy_model, tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               INTERP_CACHE_DIR=str(tmp_path_factory.mktemp("interp-cache")))
    env.pop("INTERP_ALLOW_HUB", None)
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "Home.py"),
             "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("streamlit did not start within 120 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("chromium is not installed: `apt-get install -y chromium` enables this test")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def _settle(page) -> None:
    """Wait until the script run is over (Streamlit's running indicator is gone) and stays over."""
    quiet = 0
    deadline = time.monotonic() + SLOW / 1000
    while quiet < 3 and time.monotonic() < deadline:
        running = page.locator('[data-testid="stStatusWidget"]').count() > 0
        quiet = 0 if running else quiet + 1
        page.wait_for_timeout(500)


@needs_chromium
@pytest.mark.parametrize(("path", "query", "n_figures", "text"), PAGES, ids=[p[0] or "Home" for p in PAGES])
def test_page_renders_in_a_browser(app_url, browser, path, query, n_figures, text):
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    try:
        page.goto(f"{app_url}/{path}" + (f"?{query}" if query else ""))
        page.get_by_text(text).first.wait_for(timeout=SLOW)
        if n_figures:
            page.locator(".js-plotly-plot").nth(n_figures - 1).wait_for(timeout=SLOW)
        _settle(page)
        assert page.locator(".js-plotly-plot").count() >= n_figures
        assert page.locator('[data-testid="stException"]').count() == 0
        errors = page.locator('[data-testid="stAlertContentError"]')
        assert errors.count() == 0, errors.all_inner_texts()
        assert "Traceback" not in page.inner_text("body")
        # Streamlit scrolls inside its main block, so grow the window to the content for the shot
        height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
        page.set_viewport_size({"width": 1500, "height": min(max(int(height), 1000), 12_000)})
        _settle(page)
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{path or 'Home'}.png"), full_page=True)
    finally:
        page.close()


@needs_chromium
def test_page_state_comes_from_and_goes_to_the_url(app_url, browser):
    from urllib.parse import parse_qs, urlparse

    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    try:
        page.goto(f"{app_url}/Logit_lens?lens_prompt=The+capital+of+Germany+is&lens_targets=Berlin")
        prompt = page.get_by_label("Prompt", exact=True)
        prompt.wait_for(timeout=SLOW)
        assert prompt.input_value() == "The capital of Germany is"
        page.locator(".js-plotly-plot").nth(1).wait_for(timeout=SLOW)
        _settle(page)
        prompt.fill("The capital of Spain is")
        prompt.press("Enter")
        page.wait_for_url(lambda url: "Spain" in url, timeout=SLOW)
        _settle(page)
        query = parse_qs(urlparse(page.url).query)
        assert query["lens_prompt"] == ["The capital of Spain is"]
        assert query["lens_targets"] == ["Berlin"]
        assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    finally:
        page.close()
