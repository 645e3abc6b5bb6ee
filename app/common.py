"""Widgets every page shares: the model picker and the cached model load."""

from __future__ import annotations

import streamlit as st

import interp


@st.cache_resource(show_spinner="Loading model…")
def _load(name: str):
    return interp.load_model(name)


def model_picker():
    """Sidebar model choice (the built-in model by default); returns the model, or None with an error shown."""
    name = st.sidebar.selectbox("Model", interp.SUPPORTED_MODELS, index=0, key="model_name")
    try:
        return _load(name)
    except (RuntimeError, ValueError) as err:
        st.error(str(err))
        return None
