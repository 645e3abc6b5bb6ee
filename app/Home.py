"""interp dashboard: the home page (`make app`, or `streamlit run app/Home.py`).

Every page is a file in `pages/` that draws the shared sidebar (model picker, device, the
model's facts), gathers inputs, calls `interp` and shows the result.
"""

import common  # first: it switches the model hub off unless INTERP_ALLOW_HUB=1
import streamlit as st

import interp

common.start("interp")
st.caption("A mechanistic-interpretability workbench. Every page runs on the built-in model as it opens; "
           "change the inputs to ask your own question. Pick another model in the sidebar.")

PAGES = [
    ("pages/1_Logit_lens.py", "Logit lens",
     "What each layer's residual stream predicts as the next token: a layers x positions heatmap, "
     "a target token's probability and rank across layers, and any cell's top tokens."),
    ("pages/2_Patchscopes.py", "Patchscopes",
     "What a hidden state means: patch one token's state into a target prompt (the identity prompt "
     "by default) and read what the model says, for every source layer."),
    ("pages/3_Neurons.py", "Neurons",
     "Which MLP neurons drive a behaviour: rank them by attribution, ablate them (zero, mean, resample) "
     "with significance, and read a neuron's output tokens and max-activating examples."),
    ("pages/4_Steering.py", "Steering",
     "Directions between two prompt sets (refusal by default): mean differences per layer, the layer "
     "sweep that picks one, and steered vs unsteered text in add, subtract and ablate modes."),
    ("pages/5_SAE_features.py", "SAE features",
     "Sparse-autoencoder features: which fire on your prompt, search by text or by promoted token, "
     "a feature's card, and steering with it."),
]
for path, title, what in PAGES:
    left, right = st.columns([1, 4])
    left.page_link(path, label=title)
    right.markdown(what)

info = interp.model_info(common.model())
st.subheader(f"Model: {info.name}")
cols = st.columns(5)
cols[0].metric("Layers", info.n_layers)
cols[1].metric("d_model", info.d_model)
cols[2].metric("Vocabulary", f"{info.d_vocab:,}")
cols[3].metric("Parameters", f"{info.n_params:,}")
cols[4].metric("Device", info.device)
common.table(info.to_frame(), "model_info")
