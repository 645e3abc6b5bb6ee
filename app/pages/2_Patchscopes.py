"""Patchscopes: what a hidden state means, in the model's own words (`interp.patchscope`)."""

import common  # first: it switches the model hub off unless INTERP_ALLOW_HUB=1
import streamlit as st

import interp

common.start("Patchscopes")
st.caption("Read one token's hidden state from a source prompt, patch it over the placeholder of a target "
           "prompt at the same layer, and let the model continue (Ghandeharioun et al., 2024). The identity "
           "target makes the model say which token or entity the state stands for.")

presets = dict(interp.profile_for(common.model()).patchscope_presets)
CUSTOM = "custom…"
common.seed({"ps_source": "We visited France", "ps_position": "-1", "ps_target": "identity",
             "ps_custom": "", "ps_placeholder": "", "ps_targets": "France",
             "ps_site": "resid_pre", "ps_new_tokens": 4})
st.text_input("Source prompt", key="ps_source")
a, b, c = st.columns(3)
a.text_input("Source position", key="ps_position", help="A token of the source prompt (its last occurrence) "
             "or a position: 0 is BOS, -1 the last token.")
b.text_input("Target tokens to chart (comma-separated)", key="ps_targets",
             help="Tokens whose probability as the first generated token is charted per source layer.")
common.choose("Target prompt", [*presets, CUSTOM], "ps_target", where=c, default="identity")
if st.session_state.ps_target == CUSTOM:
    if not st.session_state.ps_custom and "_ps_last" in st.session_state:  # start from the last target used
        st.session_state.ps_custom, st.session_state.ps_placeholder = st.session_state["_ps_last"]
    a, b = st.columns([3, 1])
    a.text_input("Custom target prompt", key="ps_custom", help="Must contain the placeholder token.")
    b.text_input("Placeholder", key="ps_placeholder", help="The token whose state is replaced (its last "
                 "occurrence); empty: the presets' placeholder.")
else:
    st.caption(f"Target preset `{st.session_state.ps_target}`: `{presets[st.session_state.ps_target]}` "
               "(`{x}` is the placeholder that gets the patched state)")
a, b = st.columns(2)
common.choose("Site", ["resid_pre", "resid_post"], "ps_site", where=a,
              help="resid_pre: the stream entering block l (layer 0 is the embedding); "
                   "resid_post: block outputs")
b.number_input("New tokens", min_value=1, max_value=32, key="ps_new_tokens")
common.share("ps_source", "ps_position", "ps_target", "ps_custom", "ps_placeholder", "ps_targets", "ps_site",
             "ps_new_tokens")

s = st.session_state
custom = s.ps_target == CUSTOM
result = common.run(
    "Patchscope over every source layer", "patchscope", s.ps_source,
    source_position=common.position(s.ps_position),
    target=s.ps_custom if custom else s.ps_target,
    placeholder=(s.ps_placeholder.strip() or None) if custom else None,
    targets=common.words(s.ps_targets) or None,
    site=s.ps_site,
    max_new_tokens=int(s.ps_new_tokens),
)
if result is None:
    st.stop()
st.markdown(f"Target prompt used: `{result.target_prompt}`")
placeholder = result.target_tokens[result.placeholder_position].strip()
st.session_state["_ps_last"] = (result.target_prompt, placeholder)
common.table(result.to_frame(), "patchscope", title="Decoded text per source layer")
common.figure(result.plot(), "patchscope")
