"""Neurons: rank MLP neurons by attribution, ablate them, and read what one neuron does."""

import common  # first: it switches the model hub off unless INTERP_ALLOW_HUB=1
import streamlit as st

import interp

common.start("Neurons")
st.caption("Which MLP neurons move a next-token metric? Rank every neuron by attribution patching (one "
           "forward and backward pass), verify the top ones by real ablation, ablate a group (zero, mean or "
           "resample) with a paired test across prompts, and read a neuron's output tokens "
           "(W_out · W_U: the MLP as key-value memory) and the contexts it fires on.")

PROMPTS = """the man beside the pilots
the bag to the teachers
the mouse next to the pictures
the queen beside the trees
the player on the gardens
the window to the dishes
the key to the cabinets
the girl near the windows"""
REFERENCE = """the boys next to the story
the men beside the teacher
the churches from the farmer
the men for the coin
the tables by the tooth
the wolves by the flower
the keys to the cabinet
the girls near the window"""

common.seed({"nr_prompts": PROMPTS, "nr_reference": REFERENCE, "nr_good": "is", "nr_bad": "are",
             "nr_method": "zero", "nr_k": 10, "nr_pick": [], "nr_typed": "", "nr_inspect": "",
             "nr_default_corpus": False})
a, b = st.columns(2)
a.text_area("Prompts (one per line): the next token after each is measured", key="nr_prompts", height=200)
b.text_area("Reference prompts, for mean and resample ablation", key="nr_reference", height=200)
a, b, c, d = st.columns(4)
a.text_input("Metric: logit of…", key="nr_good")
b.text_input("…minus logit of", key="nr_bad")
common.choose("Ablation", ["zero", "mean", "resample"], "nr_method", where=c)
d.number_input("Neurons to rank and verify", min_value=1, max_value=50, key="nr_k")
common.share("nr_prompts", "nr_reference", "nr_good", "nr_bad", "nr_method", "nr_k")

s = st.session_state
prompts, reference = common.lines(s.nr_prompts), common.lines(s.nr_reference)
method = s.nr_method
reference_arg = reference if method != "zero" else None


@st.cache_data(show_spinner=False, max_entries=32)
def ranking(key, prompts, good, bad, k, method, reference):
    model = common.load_model(*key)
    metric = interp.logit_diff(model, good, bad)
    return interp.rank_neurons(model, prompts, metric, k=k, method=method, reference=reference,
                               progress=False)


st.subheader("1. Rank neurons by attribution")
ranked = common.run(f"Ranking every neuron for logit({s.nr_good}) - logit({s.nr_bad})", ranking,
                    common.model_key(), prompts, s.nr_good.strip(), s.nr_bad.strip(), int(s.nr_k), method,
                    reference_arg)
if ranked is None:
    st.stop()
st.caption(f"Predicted (attribution) vs measured ({method} ablation, one neuron at a time) change in the "
           f"mean metric; Spearman {ranked.spearman:.2f}. Linear estimate: {ranked.verdict}.")
common.show(ranked, "neuron_ranking")

st.subheader("2. Ablate a group")
labels = {f"L{layer}.N{index}": (layer, index) for layer, index in ranked.neurons}
if not s.nr_pick or any(p not in labels for p in s.nr_pick):
    s.nr_pick = list(labels)[:3]
a, b = st.columns(2)
a.multiselect("Top-ranked neurons", list(labels), key="nr_pick")
b.text_input("…or type neurons (layer:index, comma-separated; used instead when filled in)", key="nr_typed",
             placeholder="2:17, 3:5")
common.share("nr_pick", "nr_typed")
try:
    chosen = common.neurons(s.nr_typed) if s.nr_typed.strip() else [labels[p] for p in s.nr_pick]
except ValueError as err:
    common.error(err)
    st.stop()
ablation = common.run(f"{method.capitalize()} ablation of {len(chosen)} neuron(s)", "ablate_neurons", prompts,
                      chosen, method=method, reference=reference_arg,
                      targets=[s.nr_good.strip(), s.nr_bad.strip()],
                      progress=False)
if ablation is not None:
    st.caption(f"Top-1 token changed on {ablation.top1_changed:.0%} of the prompts; * marks a change with "
               f"p < {ablation.alpha:g} / {len(ablation.tokens)} ({ablation.test}).")
    common.show(ablation, "ablation")
    common.table(ablation.to_frame(per_prompt=True), "ablation_per_prompt", title="Per prompt")

st.subheader("3. One neuron: what it writes and where it fires")
options = list(dict.fromkeys([*labels, *(f"L{layer}.N{index}" for layer, index in chosen)]))
every = {**labels, **{f"L{layer}.N{index}": (layer, index) for layer, index in chosen}}
a, b = st.columns([1, 2])
common.choose("Neuron", options, "nr_inspect", where=a)
b.toggle("Examples over the model's default corpus (slower the first time) instead of the prompts above",
         key="nr_default_corpus")
common.share("nr_inspect", "nr_default_corpus")
layer, index = every[s.nr_inspect]
corpus = None if s.nr_default_corpus else prompts + reference
card = common.run(f"Card of neuron {s.nr_inspect}", "feature_card", (layer, index), corpus=corpus,
                  progress=False)
if card is not None:
    st.caption("Top examples shaded by activation, the activation histogram, and the output tokens the "
               "neuron's output weights promote and suppress through the unembedding.")
    common.figure(card.plot(), "neuron_card")
    st.markdown(f"**Promotes:** {', '.join(repr(t) for t, _ in card.promoted)}  \n"
                f"**Suppresses:** {', '.join(repr(t) for t, _ in card.suppressed)}")
acts = common.run(f"Max-activating contexts of {s.nr_inspect} in the prompts above", "neuron_activations",
                  prompts + reference, layer, index, progress=False)
if acts is not None:
    with st.expander(f"Max-activating contexts of {s.nr_inspect} in the prompts above, as a table "
                     f"(density {acts.density:.3f}, mean activation {acts.mean:.3f})"):
        common.table(acts.to_frame(), "neuron_activations")
