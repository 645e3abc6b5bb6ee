"""Logit lens: what each layer's residual stream predicts as the next token (`interp.logit_lens`)."""

import common  # first: it switches the model hub off unless INTERP_ALLOW_HUB=1
import pandas as pd
import streamlit as st

common.start("Logit lens")
st.caption("Every layer's residual stream read through the final norm and unembedding, as if the model "
           "stopped there (nostalgebraist, 2020). Rows: the embedding, then each block's output.")

common.seed({"lens_prompt": "The capital of France is", "lens_targets": "Paris", "lens_k": 5,
             "lens_color": "prob", "lens_metric": "prob"})
st.text_input("Prompt", key="lens_prompt")
left, mid, right = st.columns([2, 1, 1])
left.text_input("Target tokens (comma-separated)", key="lens_targets",
                help="Tokens whose probability and rank to follow across layers.")
mid.number_input("Top tokens per cell", min_value=1, max_value=50, key="lens_k")
common.choose("Heatmap colour", ["prob", "entropy", "kl"], "lens_color", where=right,
              help="prob: the top token's probability; entropy; kl: KL to the final layer")
common.share("lens_prompt", "lens_targets", "lens_k", "lens_color")

s = st.session_state
lens = common.run("Logit lens", "logit_lens", s.lens_prompt, targets=common.words(s.lens_targets),
                  k=int(s.lens_k))
if lens is None:
    st.stop()

common.figure(lens.plot(color=s.lens_color), "lens_heatmap")

if lens.targets:
    st.subheader("Target tokens across layers")
    tokens = {p: f"{p}: {lens.tokens[p]!r}" for p in lens.positions}
    common.seed({"lens_trace_pos": lens.positions[-1]})
    a, b = st.columns(2)
    common.choose("Position", lens.positions, "lens_trace_pos", where=a, default=lens.positions[-1],
                  format_func=tokens.get)
    common.choose("Show", ["prob", "rank"], "lens_metric", where=b)
    common.share("lens_trace_pos", "lens_metric")
    trajectory = lens.plot("trajectory", metric=s.lens_metric, position=int(s.lens_trace_pos))
    common.figure(trajectory, "lens_trajectory")

st.subheader("One cell's top tokens")
common.seed({"lens_cell_layer": lens.layers[-1], "lens_cell_pos": lens.positions[-1]})
a, b = st.columns(2)
common.choose("Layer", lens.layers, "lens_cell_layer", where=a, default=lens.layers[-1])
common.choose("Position", lens.positions, "lens_cell_pos", where=b, default=lens.positions[-1],
              format_func=lambda p: f"{p}: {lens.tokens[p]!r}")
common.share("lens_cell_layer", "lens_cell_pos")
row, col = lens.layers.index(s.lens_cell_layer), lens.positions.index(int(s.lens_cell_pos))
cell = pd.DataFrame({"token": lens.top_tokens[row][col], "probability": lens.top_probs[row, col].tolist()},
                    index=pd.RangeIndex(1, len(lens.top_tokens[row][col]) + 1, name="rank"))
common.table(cell, "lens_cell", title=f"layer {s.lens_cell_layer}, position {s.lens_cell_pos} "
                                       f"({lens.tokens[int(s.lens_cell_pos)]!r})")

st.subheader("Every cell")
common.table(lens.to_frame(), "logit_lens")
