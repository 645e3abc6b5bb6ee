"""What every dashboard page shares: the hub switch, the model, URL state, running calls, downloads.

The app holds no logic: a page gathers inputs, calls `interp`, and shows `result.plot()` and
`result.to_frame()`. This module only wires that up:

- the model hub is off unless `INTERP_ALLOW_HUB=1` (set before transformers is imported), so a
  hub model that is not cached fails at once with `interp`'s readable error;
- models and SAEs load once per process (`st.cache_resource`), results are cached
  (`st.cache_data`) and computed inside a status box;
- every widget's value can come from, and goes to, the URL (`st.query_params`), so a view can
  be shared and reloaded;
- every error from `interp` is shown as a message on the page, never as a traceback.
"""

from __future__ import annotations

import os

if os.environ.get("INTERP_ALLOW_HUB", "") != "1":  # before anything imports transformers
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"

import json
import logging
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import streamlit as st

import interp

BUILT_IN = "toy"
REAL_MODEL = "smollm2-135m-instruct"
DEVICES = ("auto", "cpu", "cuda", "mps")
ModelKey = tuple[str, str]  # (name or path, device)
SaeKey = tuple[str, str]  # (release, sae id)

_log = logging.getLogger("interp.app")


# --- models and SAEs ---------------------------------------------------------------------------


def model_names() -> list[str]:
    """The picker's list: the built-in model, the real offline model when interp knows it, the rest."""
    names = list(interp.SUPPORTED_MODELS)
    first = [n for n in (BUILT_IN, REAL_MODEL) if n in names]
    return first + [n for n in names if n not in first]


@st.cache_resource(show_spinner=False, max_entries=4)
def load_model(name: str, device: str):
    """One model per (name, device) for the whole process, shared by every session."""
    return interp.load_model(name, device=None if device == "auto" else device)


@st.cache_resource(show_spinner=False, max_entries=4)
def load_sae(release: str, sae_id: str, device: str):
    """One SAE per (release, id, device) for the whole process."""
    return interp.load_sae(release, sae_id or None, device=None if device == "auto" else device)


def model_key() -> ModelKey:
    """The (name, device) of the model the sidebar loaded; stops the page when none is loaded."""
    key = st.session_state.get("_model_key")
    if key is None:
        st.stop()
    return key


def model():
    """The model the sidebar loaded (from the resource cache)."""
    return load_model(*model_key())


def start(title: str) -> ModelKey | None:
    """Open a page: its config and title, then the shared sidebar; returns the loaded model's key."""
    st.set_page_config(page_title=title if title == "interp" else f"{title} · interp", layout="wide")
    st.title(title)
    keep()
    return sidebar()


def sidebar() -> ModelKey | None:
    """Model picker, device and the model's facts, on every page; returns the loaded model's key.

    A model that cannot load (hub weights not cached, unknown name, bad path or device) shows
    `interp`'s message on the page and returns None.
    """
    seed({"model": BUILT_IN, "path": "", "device": "auto"})
    side = st.sidebar
    choose("Model", model_names(), "model", where=side,
           help="The built-in model works offline. Hub models load only when cached locally "
                "(or when the app runs with INTERP_ALLOW_HUB=1).")
    side.text_input("…or a local path", key="path", placeholder="a Hugging Face folder or a .gguf file",
                    help="When filled in, this is loaded instead of the model above.")
    choose("Device", DEVICES, "device", where=side, help="auto: cuda, then mps, then cpu")
    share("model", "path", "device")
    name = st.session_state["path"].strip() or st.session_state["model"]
    key = (name, st.session_state["device"])
    st.session_state["_model_key"] = None
    try:
        with st.spinner(f"Loading {name}…"):
            loaded = load_model(*key)
        facts = interp.model_info(loaded)
    except Exception as err:  # noqa: BLE001 - shown on the page, never a traceback
        error(err)
        return None
    st.session_state["_model_key"] = key
    side.caption(f"Model facts: {facts.name}")
    side.dataframe(facts.to_frame(), width="stretch", height="content")
    return key


# --- page state in the URL ---------------------------------------------------------------------


def _parse(raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        return raw.lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, (list, tuple)):
        value = json.loads(raw)
        if not isinstance(value, list):
            raise ValueError(raw)
        return value
    return raw


def _format(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value))
    return str(value).lower() if isinstance(value, bool) else str(value)


def seed(defaults: dict[str, Any]) -> None:
    """Give widget keys their value from the URL (first run of a session) or their default.

    Keys are remembered so that `keep()` can carry them over page changes.
    """
    known = st.session_state.setdefault("_defaults", {})
    for key, default in defaults.items():
        known[key] = default
        if key in st.session_state:
            continue
        raw = st.query_params.get(key)
        try:
            st.session_state[key] = default if raw is None else _parse(raw, default)
        except (ValueError, TypeError):
            st.session_state[key] = default


def keep() -> None:
    """Keep every page's inputs in the session while another page is shown."""
    for key in st.session_state.get("_defaults", {}):
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def share(*keys: str) -> None:
    """Write these keys to the URL; a value equal to its default is left out (short links)."""
    defaults = st.session_state.get("_defaults", {})
    for key in keys:
        value = st.session_state.get(key)
        if value is None or value == defaults.get(key):
            if key in st.query_params:
                del st.query_params[key]
        else:
            st.query_params[key] = _format(value)


def choose(label: str, options: Sequence[Any], key: str, *, where: Any = st, default: Any = None,
           **kwargs: Any) -> Any:
    """A selectbox whose remembered (or URL) value is reset to `default` (else the first option)
    when it is not one of `options` (say, a layer of the previous model)."""
    options = list(options)
    if st.session_state.get(key) not in options:
        as_text = {str(o): o for o in options}  # values that came through the URL as text
        fallback = default if default in options else options[0]
        st.session_state[key] = as_text.get(str(st.session_state.get(key)), fallback)
    return where.selectbox(label, options, key=key, **kwargs)


# --- parsing what people type ------------------------------------------------------------------


def words(text: str) -> list[str]:
    """Comma-separated entries, stripped, empties dropped: `"paris, berlin"` -> `["paris", "berlin"]`."""
    return [w.strip() for w in text.split(",") if w.strip()]


def lines(text: str) -> list[str]:
    """One entry per non-empty line."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def position(text: str) -> int | str:
    """A prompt position as typed: an int (`"-1"`, `"3"`) or a token string (`"france"`)."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        return text


def neurons(text: str) -> list[tuple[int, int]]:
    """`"2:17, 3:5"` (also `"(2, 17) (3, 5)"` or `"L2.N17"`) -> `[(2, 17), (3, 5)]`.

    Raises:
        ValueError: anything that is not layer/index number pairs.
    """
    numbers = re.findall(r"-?\d+", text)
    rest = re.sub(r"-?\d+|[\s,:;().LlNn]", "", text)
    if rest or len(numbers) % 2:
        raise ValueError(f"neurons {text!r} must be layer:index pairs, e.g. 2:17, 3:5")
    return [(int(a), int(b)) for a, b in zip(numbers[::2], numbers[1::2])]


# --- running calls -----------------------------------------------------------------------------


def message(err: BaseException) -> str:
    """The readable text of an error: interp's own message, with the type for anything unexpected."""
    if isinstance(err, KeyError) and err.args:
        return str(err.args[0])
    if isinstance(err, (ValueError, interp.ModelNotAvailableError)):
        return str(err)
    return f"{type(err).__name__}: {err}"


def error(err: BaseException) -> None:
    """Show an error on the page (its traceback goes to the server log only)."""
    _log.info("shown to the user", exc_info=err)
    st.error(message(err))


@st.cache_data(show_spinner=False, max_entries=256)
def call(function: str, key: ModelKey, args: tuple, kwargs: tuple, sae: SaeKey | None = None):
    """`interp.<function>(model, [sae,] *args, **kwargs)`, cached on its arguments."""
    model_ = load_model(*key)
    extra = () if sae is None else (load_sae(*sae, key[1]),)
    return getattr(interp, function)(model_, *extra, *args, **dict(kwargs))


def run(label: str, function: str | Callable[..., Any], *args: Any, sae: SaeKey | None = None, **kwargs: Any):
    """Compute inside a status box and return the result, or show the error and return None.

    `function` is the name of a top-level `interp` function (called on the sidebar's model,
    cached) or a page's own cached function (called with `args` and `kwargs` as given).
    """
    start = time.perf_counter()
    failure: BaseException | None = None
    with st.status(f"{label}…", expanded=False) as status:
        try:
            if callable(function):
                result = function(*args, **kwargs)
            else:
                result = call(function, model_key(), args, tuple(sorted(kwargs.items())), sae)
        except Exception as err:  # noqa: BLE001 - shown on the page, never a traceback
            failure = err
            status.update(label=f"{label}: failed", state="error")
        else:
            status.update(label=f"{label} ({time.perf_counter() - start:.1f} s)", state="complete")
    if failure is not None:
        error(failure)
        return None
    return result


# --- showing results ---------------------------------------------------------------------------


def figure(fig: Any, name: str) -> None:
    """A plotly figure, full width."""
    st.plotly_chart(fig, key=f"fig_{name}", width="stretch")


def table(frame: Any, name: str, *, title: str | None = None) -> None:
    """A result's table with CSV and JSON downloads (short tables shown whole)."""
    if title:
        st.markdown(f"**{title}**")
    st.dataframe(frame, width="stretch", height="content" if len(frame) <= 12 else "auto")
    left, right, _ = st.columns([1, 1, 4])
    left.download_button("Download CSV", frame.to_csv().encode(), f"{name}.csv", "text/csv",
                         key=f"csv_{name}")
    right.download_button("Download JSON", frame.to_json(orient="table", indent=1).encode(), f"{name}.json",
                          "application/json", key=f"json_{name}")


def show(result: Any, name: str, *, fig: Any = None, frame: Any = None) -> None:
    """`result.plot()` (or `fig`) and `result.to_frame()` (or `frame`) with downloads."""
    figure(result.plot() if fig is None else fig, name)
    table(result.to_frame() if frame is None else frame, name)


def side_by_side(result: Any, what: str, name: str) -> None:
    """A `SteerResult`'s first prompt, unsteered beside steered, then its table with downloads."""
    left, right = st.columns(2)
    left.markdown("**Unsteered**")
    left.info(result.baseline[0] or "(nothing)")
    right.markdown(f"**Steered** ({what})")
    right.warning(result.steered[0] or "(nothing)")
    table(result.to_frame(), name)


def saved_bytes(save: Callable[[Path], Any], suffix: str) -> bytes:
    """The bytes an object's own `save(path)` writes (for a download button)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"saved{suffix}"
        save(path)
        return path.read_bytes()
