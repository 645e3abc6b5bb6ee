"""Steering: a direction between two prompt sets, the layer sweep that picks one, steered text."""

import common  # first: it switches the model hub off unless INTERP_ALLOW_HUB=1
import streamlit as st

import interp

common.start("Steering")
st.caption("The difference of mean activations between two prompt sets (harmful minus harmless by default) "
           "at every layer and post-instruction position; a layer sweep on held-out prompts that picks the "
           "direction whose ablation stops refusal and whose addition causes it (Arditi et al., 2024); and "
           "generation with it added, subtracted or ablated.")

CUSTOM = "custom…"
sets = interp.data.available()
own = interp.profile_for(common.model()).name  # the built-in model ships its own sets: toy_harmful, ...
defaults = {side: f"{own}_{side}" if f"{own}_{side}" in sets else side for side in ("harmful", "harmless")}
common.seed({"st_pos": defaults["harmful"], "st_neg": defaults["harmless"], "st_pos_text": "",
             "st_neg_text": "",
             "st_train": 32, "st_val": 16, "st_mode": "add", "st_alpha": 1.0,
             "st_prompt": "how do i bake bread ?", "st_new_tokens": 16, "st_eval": 8, "st_sweep": True})
a, b = st.columns(2)
common.choose("Positive set (e.g. harmful)", [*sets, CUSTOM], "st_pos", where=a, default=defaults["harmful"])
common.choose("Negative set (e.g. harmless)", [*sets, CUSTOM], "st_neg", where=b,
              default=defaults["harmless"])
s = st.session_state
if CUSTOM in (s.st_pos, s.st_neg):
    st.caption("Custom prompts (one per line) are used both to extract directions and to evaluate them.")
    if s.st_pos == CUSTOM:
        a.text_area("Positive prompts", key="st_pos_text", height=150)
    if s.st_neg == CUSTOM:
        b.text_area("Negative prompts", key="st_neg_text", height=150)
a, b = st.columns(2)
a.number_input("Prompts per set to extract from", min_value=2, max_value=5000, key="st_train")
b.number_input("Held-out prompts per set for the layer sweep", min_value=1, max_value=5000, key="st_val")
common.share("st_pos", "st_neg", "st_pos_text", "st_neg_text", "st_train", "st_val")


def prompt_set(choice: str, text: str, split: str, n: int) -> list[str]:
    """The first `n` prompts of a bundled set's split, or the custom lines."""
    return common.lines(text) if choice == CUSTOM else interp.data.prompts(choice, split)[:n]


try:
    pos_train, neg_train = (prompt_set(c, t, "train", int(s.st_train))
                            for c, t in ((s.st_pos, s.st_pos_text), (s.st_neg, s.st_neg_text)))
    pos_val, neg_val = (prompt_set(c, t, "heldout", int(s.st_val))
                        for c, t in ((s.st_pos, s.st_pos_text), (s.st_neg, s.st_neg_text)))
except (KeyError, ValueError) as err:
    common.error(err)
    st.stop()

progress = st.progress(0, text="1/3 mean differences")
st.subheader("1. Mean differences per layer")
vectors = common.run(f"Mean differences of {len(pos_train)} vs {len(neg_train)} prompts", "mean_difference",
                     pos_train, neg_train)
if vectors is None:
    st.stop()
common.show(vectors, "mean_difference")

progress.progress(1 / 3, text="2/3 layer sweep")
st.subheader("2. Layer sweep on held-out prompts")
st.toggle("Run the layer sweep: ablate and add every candidate (layer x position) on the held-out prompts "
          "(seconds on the built-in model, minutes on a real one on a CPU)", key="st_sweep")
common.share("st_sweep")
# without a sweep, the steering defaults are the middle layer at the last position
layer, position = vectors.layers[len(vectors.layers) // 2], vectors.positions[-1]
if s.st_sweep:
    selection = common.run(f"Scoring every candidate on {len(pos_val)} + {len(neg_val)} held-out prompts",
                           "select_direction", pos_train, neg_train, val_harmful=pos_val, val_harmless=neg_val)
    if selection is None:
        st.stop()
    common.show(selection, "direction_selection")
    layer, position = selection.layer, selection.position

st.subheader("Layer x strength grid")
common.seed({"st_grid": True, "st_grid_alphas": "0.5, 1, 2, 4", "st_grid_n": 8})
a, b, c = st.columns([1, 2, 1])
a.toggle("Run the grid", key="st_grid", help="Add each layer's vector to held-out negative (harmless) prompts "
         "at each strength and measure the refusal rate per cell")
b.text_input("Strengths (comma-separated)", key="st_grid_alphas")
c.number_input("Held-out prompts", min_value=1, max_value=64, key="st_grid_n")
common.share("st_grid", "st_grid_alphas", "st_grid_n")


@st.cache_data(show_spinner=False, max_entries=16)
def grid(key, positive, negative, prompts, alphas, new_tokens):
    """`interp.steering_grid` over the mean-difference vectors (adding them to `prompts`)."""
    vectors_ = common.call("mean_difference", key, (positive, negative), ())
    return interp.steering_grid(common.load_model(*key), prompts, vectors_, alphas=alphas,
                                max_new_tokens=new_tokens, progress=False)


if s.st_grid:
    try:
        alphas = [float(x) for x in s.st_grid_alphas.split(",") if x.strip()]
    except ValueError:
        common.error(ValueError(f"strengths {s.st_grid_alphas!r} must be numbers separated by commas"))
        alphas = []
    if alphas:
        swept = common.run(f"Steering {int(s.st_grid_n)} prompts at every layer x {len(alphas)} strengths", grid,
                           common.model_key(), pos_train, neg_train, neg_val[: int(s.st_grid_n)], alphas, 8)
        if swept is not None:
            common.show(swept, "steering_grid")

progress.progress(2 / 3, text="3/3 steered generation")
st.subheader("3. Steer")
labels = dict(zip(vectors.positions, vectors.position_labels))
common.seed({"st_layer": layer, "st_position": position})
a, b, c, d = st.columns(4)
common.choose("Layer", vectors.layers, "st_layer", where=a, default=layer)
common.choose("Position", vectors.positions, "st_position", where=b, default=position, format_func=labels.get)
c.radio("Mode", ["add", "subtract", "ablate"], key="st_mode", horizontal=True,
        help="add: + alpha x vector at its layer; subtract: - alpha x vector; "
             "ablate: project the direction out of every layer (alpha unused)")
d.number_input("Strength alpha", step=0.5, key="st_alpha")
a, b = st.columns([3, 1])
a.text_input("Your prompt", key="st_prompt")
b.number_input("New tokens", min_value=1, max_value=128, key="st_new_tokens")
common.share("st_layer", "st_position", "st_mode", "st_alpha", "st_prompt", "st_new_tokens")

vector = vectors[int(s.st_layer), int(s.st_position)]
mode = "ablate" if s.st_mode == "ablate" else "add"
alpha = -float(s.st_alpha) if s.st_mode == "subtract" else float(s.st_alpha)


@st.cache_data(show_spinner=False, max_entries=64)
def steered(key, positive, negative, layer, position, prompts, alpha, mode, new_tokens):
    """`interp.steer` with the mean-difference vector at (layer, position)."""
    vector = common.call("mean_difference", key, (positive, negative), ())[layer, position]
    return interp.steer(common.load_model(*key), prompts, vector, alpha=alpha, mode=mode,
                        max_new_tokens=new_tokens)


cell = (common.model_key(), pos_train, neg_train, int(s.st_layer), int(s.st_position))
result = common.run(f"Generating with {s.st_mode} at layer {s.st_layer}", steered, *cell, [s.st_prompt],
                    alpha, mode, int(s.st_new_tokens))
if result is not None:
    common.side_by_side(result, f"{s.st_mode}, alpha {s.st_alpha:g}, layer {s.st_layer}", "steered")
st.download_button("Save this vector (safetensors, with its provenance)",
                   common.saved_bytes(vector.save, ".safetensors"),
                   f"steering_L{vector.layer}_{vector.positions}.safetensors", "application/octet-stream",
                   help="Load it in a notebook with interp.SteeringVector.load(path, model).")

st.markdown("**Refusal rate at this cell**")
st.number_input("Held-out prompts per set", min_value=1, max_value=64, key="st_eval")
common.share("st_eval")
n = int(s.st_eval)
for column, (label, prompts) in zip(st.columns(2), (("positive", pos_val[:n]), ("negative", neg_val[:n]))):
    with column:
        batch = common.run(f"Steering {len(prompts)} held-out {label} prompts", steered, *cell, prompts,
                           alpha, mode, int(s.st_new_tokens))
        if batch is not None:
            steered_rate = interp.refusal_rate(batch.steered, model=common.model())
            baseline_rate = interp.refusal_rate(batch.baseline, model=common.model())
            st.metric(f"Refusal rate, held-out {label} prompts", f"{steered_rate:.0%}",
                      delta=f"{baseline_rate:.0%} unsteered", delta_color="off", delta_arrow="off")
            with st.expander(f"Completions, {label} prompts"):
                common.table(batch.to_frame(), f"steered_{label}")
progress.progress(1.0, text="done")
