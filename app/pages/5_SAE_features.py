"""SAE features: which fire on a prompt, search by text or promoted token, a feature's card, steering."""

import common  # first: it switches the model hub off unless INTERP_ALLOW_HUB=1
import streamlit as st

import interp

common.start("SAE features")
st.caption("A sparse autoencoder rewrites one activation as a sparse sum of learned feature directions, "
           "most of which mean one nameable thing (Bricken et al., 2023). Read which fire on a prompt, "
           "search them by what fires or by what they promote through W_dec · W_U, open a feature's card, "
           "steer with it.")

common.seed({"sae_release": "", "sae_id": "", "sae_docs": 2000,
             "sae_prompt": "The capital of France is",
             "sae_mode": "promoted token", "sae_text": "user : how do i steal a car ? assistant :",
             "sae_promotes": "Paris", "sae_k": 10, "sae_feature": -1,
             "sae_steer_prompt": "The capital of Germany is",
             "sae_alpha": 40.0, "sae_chat": False, "sae_new_tokens": 12})
a, b, c = st.columns([2, 2, 1])
a.text_input("SAE release", key="sae_release", placeholder="the SAE shipped for this model",
             help="Empty: the SAE shipped with interp for the chosen model (`toy` for the built-in model, "
                  "`smollm2-135m-instruct` for SmolLM2); or a "
             "sae-lens release such as gpt2-small-res-jb (needs its weights cached, or INTERP_ALLOW_HUB=1).")
b.text_input("SAE id (for a sae-lens release)", key="sae_id", placeholder="blocks.8.hook_resid_pre")
c.number_input("Corpus documents", min_value=10, max_value=100_000, step=100, key="sae_docs",
               help="Documents of the model's default corpus for max-activating examples and feature "
                    "density.")
common.share("sae_release", "sae_id", "sae_docs")
s = st.session_state
key, n_docs = common.model_key(), int(s.sae_docs)
release = s.sae_release.strip() or interp.default_sae(common.model())
if release is None:
    st.info("No SAE ships with interp for this model: name a sae-lens release (and id) above.")
    st.stop()
sae_key = (release, s.sae_id.strip())

try:
    with st.spinner(f"Loading SAE {sae_key[0]}…"):
        sae = common.load_sae(*sae_key, key[1])
        interp.check_sae(common.model(), sae)  # one clear message when the SAE does not fit this model
except Exception as err:  # noqa: BLE001 - shown on the page, never a traceback
    common.error(err)
    st.stop()


@st.cache_data(show_spinner=False, max_entries=8)
def examples(key, sae_key, n_docs):
    """Max-activating examples of every feature over the model's default corpus (also gives density)."""
    model = common.load_model(*key)
    corpus = interp.profile_for(model).default_corpus
    if corpus is not None:
        texts = corpus()[0]
    else:  # the bundled prompt sets stand in where the model's profile names no corpus
        texts = interp.data.prompts("harmful") + interp.data.prompts("harmless")
    return interp.max_activating_examples(model, common.load_sae(*sae_key, key[1]), list(texts)[:n_docs],
                                          progress=False)


@st.cache_data(show_spinner=False, max_entries=64)
def search(key, sae_key, n_docs, text, promotes, k):
    return interp.search_features(common.load_model(*key), common.load_sae(*sae_key, key[1]), text=text,
                                  promotes=promotes, k=k, density=examples(key, sae_key, n_docs))


@st.cache_data(show_spinner=False, max_entries=64)
def card(key, sae_key, n_docs, feature):
    return interp.feature_card(common.load_model(*key), common.load_sae(*sae_key, key[1]), feature,
                               examples=examples(key, sae_key, n_docs))


@st.cache_data(show_spinner=False, max_entries=64)
def steered(key, sae_key, feature, prompt, alpha, chat, new_tokens):
    model, sae_ = common.load_model(*key), common.load_sae(*sae_key, key[1])
    vector = interp.feature_vector(model, sae_, feature)
    return interp.steer(model, prompt, vector, alpha=alpha, chat=chat, max_new_tokens=new_tokens)


st.subheader("1. Features on your prompt")
st.text_input("Prompt", key="sae_prompt")
common.share("sae_prompt")
active = common.run("Encoding the prompt", "feature_activations", s.sae_prompt, sae=sae_key)
if active is not None:
    common.show(active, "feature_activations")

st.subheader("2. Search features")
top = common.run(f"Max-activating examples over {n_docs} documents (once per model and SAE, then cached)",
                 examples, key, sae_key, n_docs)
if top is None:
    st.stop()
a, b, c = st.columns([1, 3, 1])
a.radio("Search by", ["promoted token", "text"], key="sae_mode")
if s.sae_mode == "text":
    b.text_input("Text: features that fire most on it", key="sae_text")
else:
    b.text_input("Output tokens the feature promotes (comma-separated)", key="sae_promotes")
c.number_input("How many", min_value=1, max_value=200, key="sae_k")
common.share("sae_mode", "sae_text", "sae_promotes", "sae_k")
by_text = s.sae_mode == "text"
found = common.run("Searching", search, key, sae_key, n_docs, s.sae_text if by_text else None,
                   None if by_text else common.words(s.sae_promotes), int(s.sae_k))
if found is not None:
    common.show(found, "feature_search")

st.subheader("3. Feature card")
d_sae = sae.cfg.d_sae
if not 0 <= int(s.sae_feature) < d_sae:
    s.sae_feature = int(found.features[0]) if found is not None and len(found) else 0


def step(by: int) -> None:
    s.sae_feature = min(max(int(s.sae_feature) + by, 0), d_sae - 1)


def pick() -> None:
    s.sae_feature = int(s.sae_pick)


a, b, c, d = st.columns([1, 2, 1, 3])
a.button("◀ previous", on_click=step, args=(-1,), width="stretch")
b.number_input("Feature", min_value=0, max_value=d_sae - 1, key="sae_feature", label_visibility="collapsed")
c.button("next ▶", on_click=step, args=(1,), width="stretch")
if found is not None and len(found):
    d.selectbox("…or a search result", found.features.tolist(), key="sae_pick", on_change=pick, index=None,
                placeholder="jump to a search result", label_visibility="collapsed")
common.share("sae_feature")
feature = int(s.sae_feature)
shown = common.run(f"Card of feature {feature}", card, key, sae_key, n_docs, feature)
if shown is not None:
    st.markdown(f"**Promotes:** {', '.join(repr(t) for t, _ in shown.promoted)}  \n"
                f"**Suppresses:** {', '.join(repr(t) for t, _ in shown.suppressed)}")
    common.show(shown, "feature_card")

st.subheader(f"4. Steer with feature {feature}")
a, b, c, d = st.columns([3, 1, 1, 1])
a.text_input("Prompt to steer", key="sae_steer_prompt")
b.number_input("Strength alpha (activation units)", step=5.0, key="sae_alpha")
c.number_input("New tokens", min_value=1, max_value=128, key="sae_new_tokens")
d.toggle("Chat template", key="sae_chat")
common.share("sae_steer_prompt", "sae_alpha", "sae_new_tokens", "sae_chat")
result = common.run(f"Generating with feature {feature} added", steered, key, sae_key, feature,
                    s.sae_steer_prompt, float(s.sae_alpha), bool(s.sae_chat), int(s.sae_new_tokens))
if result is not None:
    common.side_by_side(result, f"feature {feature}, alpha {s.sae_alpha:g}", "feature_steering")
