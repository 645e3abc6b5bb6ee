"""interp dashboard: home page. Run with `make app`."""

import streamlit as st

import interp
from common import model_picker

st.set_page_config(page_title="interp", layout="wide")
st.title("interp")
st.caption("A mechanistic-interpretability workbench: neuron ablation, steering vectors, logit lens, patchscopes, SAE features.")

model = model_picker()
if model is not None:
    info = interp.model_info(model)
    st.subheader(f"Model: {info.name}")
    cols = st.columns(5)
    cols[0].metric("Layers", info.n_layers)
    cols[1].metric("d_model", info.d_model)
    cols[2].metric("Vocabulary", f"{info.d_vocab:,}")
    cols[3].metric("Parameters", f"{info.n_params:,}")
    cols[4].metric("Device", info.device)
    st.dataframe(info.to_frame(), width="stretch")
