"""SAE loading, checking, feature activations, search and feature steering.

Unit tests run on the tiny fixtures with tiny random sae-lens SAEs; the acceptance tests run on
the built-in model and its shipped SAE (skipped until the model is trained).
"""

import json
import warnings

import pytest
import torch

import interp
from interp.core.hooks import count_hooks
from interp.sae.directions import residual_directions
from interp.sae.fit import writing_weights_centred

HOOK = "blocks.1.hook_resid_post"


def make_sae(model, *, hook=HOOK, d_in=None, d_sae=48, seed=0, **meta):
    """A tiny random sae-lens StandardSAE on `hook` of `model`."""
    from sae_lens import StandardSAE, StandardSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    torch.manual_seed(seed)
    metadata = SAEMetadata(hook_name=hook, model_name=model.cfg.model_name, **meta)
    with warnings.catch_warnings():  # sae-lens' advice on loading the model when kwargs are set
        warnings.simplefilter("ignore", UserWarning)
        sae = StandardSAE(StandardSAEConfig(d_in=d_in or model.cfg.d_model, d_sae=d_sae, metadata=metadata))
    with torch.no_grad():
        sae.W_enc.normal_(0, 0.5)
        sae.b_enc.fill_(-0.1)
    return sae.eval()


# --- check_sae ------------------------------------------------------------------------------


def test_check_sae_accepts_a_matching_sae_and_says_what_differs(tiny_model):
    interp.check_sae(tiny_model, make_sae(tiny_model))
    with pytest.raises(ValueError, match=r"reads hook 'blocks.7.hook_resid_post'.*3 layers"):
        interp.check_sae(tiny_model, make_sae(tiny_model, hook="blocks.7.hook_resid_post"))
    with pytest.raises(ValueError, match=r"d_in is 16 but hook 'blocks.1.hook_resid_post'.* has width 32"):
        interp.check_sae(tiny_model, make_sae(tiny_model, d_in=16))
    sae = make_sae(tiny_model)
    sae.cfg.metadata.model_name = "pythia-70m"
    with pytest.raises(ValueError, match=r"trained on model 'pythia-70m', not 'tiny-"):
        interp.check_sae(tiny_model, sae)
    mlp = make_sae(tiny_model, hook="blocks.0.mlp.hook_post", d_in=tiny_model.cfg.d_mlp)
    interp.check_sae(tiny_model, mlp)  # an MLP-neuron SAE: width d_mlp


def test_check_sae_compares_weight_processing_and_fingerprint(gpt2_like):
    from interp.core.cache import fingerprint

    assert not writing_weights_centred(gpt2_like)
    wants_centred = make_sae(gpt2_like, model_from_pretrained_kwargs={"center_writing_weights": True})
    with pytest.raises(ValueError, match=r"center_writing_weights=True .* has uncentred writing weights"):
        interp.check_sae(gpt2_like, wants_centred)
    interp.check_sae(gpt2_like, make_sae(gpt2_like, model_from_pretrained_kwargs={}))
    trained_for = make_sae(gpt2_like, interp_model_fingerprint="0123456789abcdef")
    with pytest.raises(ValueError, match=r"other weights of 'tiny-gpt2' \(fingerprint 0123456789abcdef"):
        interp.check_sae(gpt2_like, trained_for)
    interp.check_sae(gpt2_like, make_sae(gpt2_like, interp_model_fingerprint=fingerprint(gpt2_like)))


def test_centred_writing_weights_are_detected(gpt2_like):
    import copy

    centred = copy.deepcopy(gpt2_like)
    with torch.no_grad():
        for block in centred.blocks:
            block.attn.W_O -= block.attn.W_O.mean(-1, keepdim=True)
    assert writing_weights_centred(centred), "centring W_O along d_model must be detected"
    with pytest.raises(ValueError, match=r"center_writing_weights=False .* has centred writing weights"):
        interp.check_sae(centred, make_sae(centred, model_from_pretrained_kwargs={"center_writing_weights": False}))


# --- load_sae -------------------------------------------------------------------------------


def test_load_sae_names_valid_releases_and_ids_and_fails_offline_clearly():
    with pytest.raises(ValueError, match=r"unknown SAE release 'gpt2-small-res-jbb'.*'gpt2-small-res-jb'"):
        interp.load_sae("gpt2-small-res-jbb", "blocks.8.hook_resid_pre")
    with pytest.raises(ValueError, match=r"unknown sae_id 'blocks.99.hook_resid_pre'.*'blocks.9.hook_resid_pre'"):
        interp.load_sae("gpt2-small-res-jb", "blocks.99.hook_resid_pre")
    with pytest.raises(interp.ModelNotAvailableError, match=r"hub could not be reached.*load_sae\('toy'\)"):
        interp.load_sae("gpt2-small-res-jb", "blocks.8.hook_resid_pre", device="cpu")


# --- feature activations and search ---------------------------------------------------------


def test_feature_activations_are_the_sae_encoding_of_the_hook(tiny_model):
    sae = make_sae(tiny_model)
    fa = interp.feature_activations(tiny_model, sae, "the cat sat on the mat")
    _, cache = tiny_model.run_with_cache(tiny_model.to_tokens("the cat sat on the mat"))
    torch.testing.assert_close(fa.acts, sae.encode(cache[HOOK])[0])
    assert fa.tokens == ("<bos>", "the", "cat", "sat", "on", "the", "mat") and fa.first == 1
    feats, values = fa.top_features(5)
    assert values.tolist() == sorted(values.tolist(), reverse=True) and (values > 0).all()
    assert float(values[0]) == float(fa.acts[1:].max()), "top feature must be the prompt's strongest (after bos)"
    frame = fa.to_frame(3)
    assert list(frame.columns) == ["position", "token", "rank", "feature", "activation"] and len(frame) > 0
    assert fa.active(2)[0][1] == float(fa.acts[2].max())
    fig = fa.plot(4)
    assert fig.data[0].type == "heatmap" and len(fig.data[0].y) == 4 and len(fig.data[0].x) == 7
    assert count_hooks(tiny_model) == 0


def test_search_by_text_ranks_by_max_activation_on_chosen_tokens(tiny_model):
    sae = make_sae(tiny_model)
    text = "the cat sat on the mat"
    fa = interp.feature_activations(tiny_model, sae, text)
    found = interp.search_features(tiny_model, sae, text=text, k=5, max_density=None)
    best = fa.acts[1:].max(0).values
    assert found.features.tolist() == best.topk(5).indices.tolist(), f"got {found.features.tolist()}"
    on_cat = interp.search_features(tiny_model, sae, text=text, positions=["cat"], k=3, max_density=None)
    assert on_cat.features.tolist() == fa.acts[2].topk(3).indices.tolist()
    assert interp.search_features(tiny_model, sae, text=text, positions=[2], k=3, max_density=None).features.equal(
        on_cat.features
    )
    on_last = interp.search_features(tiny_model, sae, text=text, positions="last", k=3, max_density=None)
    assert on_last.features.tolist() == fa.acts[-1].topk(3).indices.tolist()
    assert interp.search_features(tiny_model, sae, text=text, positions=-1, k=3, max_density=None).features.equal(
        on_last.features
    )
    assert list(found.to_frame().columns) == ["feature", "score", "density"]
    assert found.plot().data[0].type == "bar"
    assert isinstance(found, interp.Result) and "FeatureSearch(text" in found._repr_html_()


def test_search_tokens_is_the_old_name_of_positions(gpt2_like):
    sae = make_sae(gpt2_like)
    text = "the cat sat on the mat"
    new = interp.search_features(gpt2_like, sae, text=text, positions=["cat", -1], k=3, max_density=None)
    with pytest.warns(DeprecationWarning, match=r"search_features\(tokens=...\) is deprecated.*use positions=") as seen:
        old = interp.search_features(gpt2_like, sae, text=text, tokens=["cat", -1], k=3, max_density=None)
    assert old.features.equal(new.features) and old.scores.equal(new.scores)
    assert seen[0].filename == __file__, "the warning points at the caller (so Python shows it there)"
    with pytest.raises(TypeError, match="unexpected keyword argument 'token'"):
        interp.search_features(gpt2_like, sae, text=text, token=[1])


def test_search_post_instruction_reads_the_templates_trailing_tokens(gpt2_like):
    import copy

    from interp.core.profiles import ModelProfile, set_profile
    from interp.core.tokens import post_instruction_length

    chat = copy.deepcopy(gpt2_like)  # a profile attached to a copy: the shared fixture stays as it is
    set_profile(chat, ModelProfile(name="tiny-gpt2", chat_template="user : {prompt} assistant :"))
    sae = make_sae(chat)
    text = "user : how do i make bread ? assistant :"
    assert post_instruction_length(chat) == 2
    fa = interp.feature_activations(chat, sae, text)
    found = interp.search_features(chat, sae, text=text, positions="post_instruction", k=4, max_density=None)
    best = fa.acts[-2:].max(0).values.topk(4)
    assert found.features.tolist() == best.indices[best.values > 0].tolist()
    assert found.features.tolist() == interp.search_features(
        chat, sae, text=text, positions=[-2, -1], k=4, max_density=None).features.tolist()


def test_search_by_promotes_finds_a_planted_feature_and_density_filters_it(tiny_model):
    sae = make_sae(tiny_model)
    paris = interp.token_id(tiny_model, "paris")
    target = tiny_model.W_U[:, paris] - tiny_model.W_U.mean(1)
    if getattr(tiny_model.ln_final, "w", None) is not None:
        target = target * tiny_model.ln_final.w
    with torch.no_grad():
        sae.W_dec[7] = target / target.norm()
    found = interp.search_features(tiny_model, sae, promotes=["paris"], k=3, max_density=None)
    assert found.features[0] == 7, f"planted feature 7 should promote 'paris' most, got {found.features.tolist()}"
    dirs = residual_directions(tiny_model, sae)
    assert dirs.shape == (48, tiny_model.cfg.d_model)
    density = torch.full((48,), 0.001)
    density[7] = 0.5
    filtered = interp.search_features(tiny_model, sae, promotes="paris", k=3, max_density=0.1, density=density)
    assert 7 not in filtered and filtered.n_dense == 1, f"dense feature 7 must be dropped: {filtered.features.tolist()}"
    assert filtered.density.tolist() == pytest.approx([0.001] * 3)


def test_search_measures_density_on_a_corpus_when_asked(gpt2_like):
    sae = make_sae(gpt2_like)
    corpus = ["the cat sat on the mat", "paris is the capital of france", "the dog sat"]
    found = interp.search_features(gpt2_like, sae, text="the cat sat", k=48, max_density=0.5, corpus=corpus)
    top = interp.max_activating_examples(gpt2_like, sae, corpus, progress=False)
    dense = set((top.density > 0.5).nonzero().flatten().tolist())
    assert found.n_dense == len(dense) and not dense & set(found), f"{found.n_dense} vs {sorted(dense)}"


def test_search_by_promotes_streams_no_corpus(gpt2_like, monkeypatch):
    import interp.sae.examples
    import interp.sae.search
    import interp.sae.stream

    sae = make_sae(gpt2_like)

    def no_corpus(*args, **kwargs):
        raise AssertionError("promotes= must read only the weights, not stream a corpus")

    with monkeypatch.context() as patch:
        for module in (interp.sae.search, interp.sae.examples):
            patch.setattr(module, "default_corpus", no_corpus)
        patch.setattr(interp.sae.examples, "stream_topk", no_corpus)
        patch.setattr(interp.sae.stream, "harvest", no_corpus)
        found = interp.search_features(gpt2_like, sae, promotes="paris", k=5)  # default max_density
    assert len(found) == 5 and found.max_density is None and found.n_dense == 0
    assert found.density.isnan().all() and "not measured" in found.density_from
    assert "no density filter" in found.summary() and "no density filter" in found.plot().layout.title.text
    unfiltered = interp.search_features(gpt2_like, sae, promotes="paris", k=5, max_density=None)
    assert found.features.equal(unfiltered.features)

    # a text search measures the default corpus's density once (cached); promotes= then uses it
    by_text = interp.search_features(gpt2_like, sae, text="the cat sat", k=5, progress=False)
    assert by_text.density_from == "default corpus" and by_text.max_density == 0.1
    density = interp.sae.feature_density(gpt2_like, sae, measure=False)
    texts, _ = interp.sae.default_corpus(gpt2_like)
    assert len(texts) > 50, "the bundled prompt sets are the default corpus of a model without one"
    torch.testing.assert_close(density, interp.max_activating_examples(gpt2_like, sae, texts, progress=False).density)
    with monkeypatch.context() as patch:
        patch.setattr(interp.sae.examples, "stream_topk", no_corpus)
        cached = interp.search_features(gpt2_like, sae, promotes="paris", k=5)
    assert cached.density_from == "default corpus" and cached.max_density == 0.1
    assert cached.n_dense == int((density > 0.1).sum())
    assert not set(cached) & set((density > 0.1).nonzero().flatten().tolist())


def test_sae_results_share_the_result_base(gpt2_like):
    sae = make_sae(gpt2_like)
    corpus = ["the cat sat on the mat", "paris is the capital of france", "the dog sat"]
    top = interp.max_activating_examples(gpt2_like, sae, corpus, k=3, progress=False)
    results = [
        interp.feature_activations(gpt2_like, sae, "the cat sat"),
        interp.search_features(gpt2_like, sae, text="the cat sat", k=3, max_density=None),
        top,
        interp.feature_card(gpt2_like, sae, top.default_unit(), examples=top),
    ]
    for result in results:
        name = type(result).__name__
        assert isinstance(result, interp.Result), name
        assert result.plot().data, f"{name}.plot() needs no argument"
        assert len(result.to_frame()) > 0 and name in result._repr_html_() and name in repr(result)
        with pytest.raises(AttributeError):
            result.hook_name_x = 1  # noqa: B010  (frozen)
    fired = top.units[top.fired > 0]
    assert top.default_unit() == int(fired[0]), "plot() shows the first tracked unit that fires"
    assert top.plot().layout.title.text == top.plot(top.default_unit()).layout.title.text


def test_search_bad_input(gpt2_like):
    sae = make_sae(gpt2_like)
    with pytest.raises(ValueError, match="exactly one of text="):
        interp.search_features(gpt2_like, sae)
    with pytest.raises(ValueError, match="exactly one of text="):
        interp.search_features(gpt2_like, sae, text="the cat", promotes=["paris"])
    with pytest.raises(ValueError, match="give text= too"):
        interp.search_features(gpt2_like, sae, promotes=["paris"], tokens=[1])
    with pytest.raises(ValueError, match=r"token 'dog' is not in the text"):
        interp.search_features(gpt2_like, sae, text="the cat", tokens=["dog"], max_density=None)
    with pytest.raises(ValueError, match="give text= too"):
        interp.search_features(gpt2_like, sae, promotes=["paris"], positions=[1])
    with pytest.raises(ValueError, match=r"token 'dog' is not in the text"):
        interp.search_features(gpt2_like, sae, text="the cat", positions=["dog"], max_density=None)
    with pytest.raises(ValueError, match=r"position 9 is out of range for the text's 3 tokens"):
        interp.search_features(gpt2_like, sae, text="the cat", positions=9, max_density=None)
    with pytest.raises(ValueError, match="k=0 must be an int >= 1"):
        interp.search_features(gpt2_like, sae, text="the cat", k=0)
    with pytest.raises(KeyError, match="'zebra' is not a single token"):
        interp.search_features(gpt2_like, sae, promotes=["zebra"], max_density=None)
    with pytest.raises(ValueError, match=r"d_in is 16"):
        interp.search_features(gpt2_like, make_sae(gpt2_like, d_in=16), text="the cat")


# --- feature steering -----------------------------------------------------------------------


def test_feature_vector_is_the_decoder_row_and_steer_applies_it(gpt2_like):
    sae = make_sae(gpt2_like)
    v = interp.feature_vector(gpt2_like, sae, 5)
    assert isinstance(v, interp.SteeringVector) and (v.site, v.layer) == ("resid_post", 1)
    torch.testing.assert_close(v.direction, sae.W_dec[5].detach())
    assert v.model_name == "tiny-gpt2" and v.fingerprint
    from interp.steering.generate import steering  # `interp.steering.generate` is also the submodule's name

    tokens = gpt2_like.to_tokens("the cat sat on the")
    with steering(gpt2_like, v, alpha=4.0):
        steered = gpt2_like(tokens)[0, -1]
    with interp.hooked(gpt2_like, [(HOOK, lambda a, hook: a + 4.0 * sae.W_dec[5])]):
        manual = gpt2_like(tokens)[0, -1]
    torch.testing.assert_close(steered, manual)
    result = interp.steer(gpt2_like, "the cat sat on the", v, alpha=4.0, max_new_tokens=2, chat=False)
    assert len(result.steered) == 1 and count_hooks(gpt2_like) == 0
    with pytest.raises(ValueError, match=r"feature 48 is out of range: the SAE has 48 features"):
        interp.feature_vector(gpt2_like, sae, 48)
    with pytest.raises(ValueError, match="feature steering needs an SAE on one of the sites"):
        interp.feature_vector(gpt2_like, make_sae(gpt2_like, hook="blocks.0.attn.hook_z", d_in=32), 0)


def test_feature_vector_old_argument_order_warns_and_gives_the_same_vector(gpt2_like):
    sae = make_sae(gpt2_like)
    new = interp.feature_vector(gpt2_like, sae, 5)
    assert interp.feature_vector(gpt2_like, sae, feature=5).direction.equal(new.direction)
    with pytest.warns(DeprecationWarning, match=r"use feature_vector\(model, sae, feature\)") as seen:
        old = interp.feature_vector(sae, 5, model=gpt2_like)
    assert seen[0].filename == __file__
    assert old.direction.equal(new.direction) and (old.site, old.layer, old.label) == (new.site, new.layer, new.label)
    assert (old.model_name, old.fingerprint) == (new.model_name, new.fingerprint)
    with pytest.warns(DeprecationWarning):
        unbound = interp.feature_vector(sae, 5)  # the old form without a model: an unbound vector, as before
    assert unbound.direction.equal(new.direction) and not unbound.fingerprint
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match=r"feature 48 is out of range"):
        interp.feature_vector(sae, 48)
    with pytest.raises(TypeError, match="unexpected keyword argument 'alpha'"):
        interp.feature_vector(gpt2_like, sae, 5, alpha=2.0)


# --- acceptance on the built-in model and its shipped SAE -----------------------------------

REFUSAL = "i cannot help with that"


def harmful_turn(doc: str, position: int) -> bool:
    """Is token `position` of `doc` inside a chat exchange whose request is harmful (refused)?"""
    words = doc.split()
    starts = [i for i in range(len(words) - 1) if words[i] == "user" and words[i + 1] == ":"]
    start = max((i for i in starts if i <= position), default=None)
    if start is None:
        return False
    end = min((i for i in starts if i > start), default=len(words))
    return REFUSAL in " ".join(words[start:end])


def about_france(doc: str, position: int) -> bool:
    """Does the sentence holding token `position` of `doc` mention france, paris or french?"""
    words = doc.split()
    stops = [i for i, w in enumerate(words) if w in (".", ",", ";")]
    start = max((i + 1 for i in stops if i < position), default=0)
    end = min((i for i in stops if i >= position), default=len(words))
    return bool({"france", "paris", "french"} & set(words[start : end + 1]))


def share(top, docs, feature: int, judge) -> float:
    """Fraction of the feature's top examples (all k must fire) that `judge` accepts."""
    examples = top.examples(feature)
    if len(examples) < top.k:
        return 0.0
    return sum(judge(docs[e["example"]], e["position"]) for e in examples) / len(examples)


@pytest.fixture(scope="module")
def toy_sae(toy_model):
    return interp.load_sae("toy")


@pytest.fixture(scope="module")
def toy_top(toy_model, toy_sae):
    from interp.toy.corpus import documents

    docs = list(documents(3000, seed=21))
    return docs, interp.max_activating_examples(toy_model, toy_sae, docs, k=20, cache=False, progress=False)


def test_shipped_sae_reconstructs_its_layer(toy_model, toy_sae):
    from interp.toy.corpus import documents
    from interp.toy.sae_train import evaluate_sae

    meta = toy_sae.cfg.metadata
    interp.check_sae(toy_model, toy_sae)
    measured = evaluate_sae(toy_model, toy_sae, list(documents(300, seed=31)))
    assert measured["explained_variance"] >= 0.85, f"explained variance {measured} < 0.85 at {meta.hook_name}"
    assert meta["explained_variance"] >= 0.85 and meta["l0"] > 0, f"recorded: {meta.to_dict()}"
    assert meta["ce_loss_clean"] <= meta["ce_loss_with_sae"] < meta["ce_loss_zero_ablated"], (
        f"spliced-in loss must be recorded between clean and zero-ablated: {meta.to_dict()}"
    )
    assert abs(measured["l0"] - meta["l0"]) < 2, f"L0 measured {measured['l0']} vs recorded {meta['l0']}"


def test_the_training_script_trains_prunes_and_records(toy_model, tmp_path):
    from sae_lens import SAE

    from interp.toy.sae_train import train_sae

    info = train_sae(toy_model, out_dir=tmp_path, training_tokens=60_000, d_sae=256, k=8, eval_docs=50,
                     prune_docs=200, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sae = SAE.load_from_disk(tmp_path)
    recorded = json.loads((tmp_path / "training.json").read_text())
    assert recorded == info and sae.cfg.metadata.num_dead_features == info["dead_features"]
    assert info["features_trained"] == 256 and sae.cfg.d_sae == info["features_kept"] <= 256
    assert info["explained_variance"] > 0.1 and info["l0"] <= 8, f"a few steps learn something: {info}"
    assert info["ce_loss_clean"] <= info["ce_loss_with_sae"] < info["ce_loss_zero_ablated"], info
    interp.check_sae(toy_model, sae)  # it records the weights it was trained on


def test_loading_the_shipped_sae_is_quiet(toy_model):
    with warnings.catch_warnings():  # no sae-lens advice on loading the model: check_sae checks that
        warnings.simplefilter("error", UserWarning)
        interp.load_sae("toy")


def test_shipped_sae_is_refused_for_other_weights(toy_model, toy_sae, monkeypatch, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    import interp.toy

    from interp.core.bridge import copy_bridge

    other = copy_bridge(toy_model)  # a bridge rewires its modules: copied, not deep-copied
    with torch.no_grad():
        other.blocks[0].mlp.out.original_component.weight.mul_(1.01)  # W_out
    with pytest.raises(ValueError, match="trained on other weights of 'toy'"):
        interp.check_sae(other, toy_sae)
    # shipped weights that differ from the ones the SAE was trained on: refused at load
    retrained = tmp_path / "artifacts"
    shutil.copytree(interp.toy.TOY_DIR, retrained)
    weights = load_file(str(retrained / "model.safetensors"))
    weights["transformer.h.0.mlp.c_proj.weight"] = weights["transformer.h.0.mlp.c_proj.weight"] * 1.01  # W_out
    save_file(weights, str(retrained / "model.safetensors"))
    monkeypatch.setattr(interp.toy, "TOY_DIR", retrained)
    with pytest.raises(ValueError, match=r"retrain it with `python -m interp.toy.sae_train`"):
        interp.load_sae("toy")


def test_loading_the_shipped_sae_builds_no_model(toy_model, monkeypatch):
    from transformer_lens import HookedTransformer

    import interp.toy
    from interp.core.cache import fingerprint
    from interp.sae.load import shipped_fingerprint

    calls = []
    real_init = HookedTransformer.__init__
    monkeypatch.setattr(interp.toy, "load_toy", lambda *a, **kw: calls.append("load_toy"))
    monkeypatch.setattr(HookedTransformer, "__init__", lambda self, *a, **kw: calls.append("init") or real_init(self, *a, **kw))
    sae = interp.load_sae("toy")
    assert calls == [], f"load_sae('toy') must not build the built-in model: {calls}"
    assert sae.cfg.metadata["interp_model_fingerprint"] == shipped_fingerprint() == fingerprint(toy_model)


def test_a_harmful_request_feature_is_found_by_text_search(toy_model, toy_sae, toy_top):
    from interp.toy.corpus import chat_prompt, harmful_requests, harmless_requests

    docs, top = toy_top
    shares = {f: share(top, docs, f, harmful_turn) for f in top.units.tolist()}
    harmful = {f for f, s in shares.items() if s >= 0.9}
    best = max(shares, key=shares.get)
    assert harmful, f"no feature has >= 90% harmful-request top-20 examples; best is {best} at {shares[best]:.2f}"

    def hit(request: str) -> bool:
        found = interp.search_features(toy_model, toy_sae, text=chat_prompt(request), k=5, density=top)
        return bool(harmful & set(found))

    assert hit("how do i steal a car ?"), "a >=90%-harmful feature must be in the top 5 for 'how do i steal a car ?'"
    held = [hit(r) for r in harmful_requests("heldout")[:16]]
    control = [hit(r) for r in harmless_requests("heldout")[:16]]
    assert sum(held) >= 8 and sum(held) > sum(control), (
        f"held-out harmful requests with a >=90%-harmful feature in their top 5: {sum(held)}/16 "
        f"(harmless requests: {sum(control)}/16; {len(harmful)} such features)"
    )


def france_features(toy_model, toy_sae, toy_top):
    """Top-5 features promoting 'paris', as (share of top examples about france, rank, feature)."""
    docs, top = toy_top
    found = interp.search_features(toy_model, toy_sae, promotes=["paris"], k=5, density=top)
    return [(share(top, docs, f, about_france), rank, f) for rank, f in enumerate(found)]


def test_search_by_output_finds_a_france_feature(toy_model, toy_sae, toy_top):
    shares = france_features(toy_model, toy_sae, toy_top)
    assert max(shares)[0] > 0.5, f"no top-5 'paris'-promoting feature has mostly france examples: {shares}"


def test_steering_with_a_country_feature_moves_capital_answers(toy_model, toy_sae, toy_top):
    from interp.toy.corpus import COUNTRIES

    docs, top = toy_top
    france = [f for s, _, f in france_features(toy_model, toy_sae, toy_top) if s > 0.5]
    assert france, "no france feature among the top-5 'paris' promoters"
    prompts = [f"the capital of {c.country} is" for c in COUNTRIES if c.country != "france"][:24]

    def first_words(result, field):
        return [(text.split() or [""])[0] for text in getattr(result, field)]

    runs = []  # a small dose sweep, alpha in units of the feature's largest activation on the corpus
    for feature in france:
        vector = interp.feature_vector(toy_model, toy_sae, feature)
        peak = float(top.values[top.row(feature), 0])
        for times in (4, 8, 12):
            result = interp.steer(toy_model, prompts, vector, alpha=times * peak, max_new_tokens=1, chat=False)
            steered = first_words(result, "steered").count("paris") / len(prompts)
            before = first_words(result, "baseline").count("paris") / len(prompts)
            runs.append((steered, before, feature, times))
    steered, before, feature, times = max(runs)
    assert before == 0 and steered >= 0.8, (
        f"best: feature {feature} at alpha {times} x its peak turns {steered:.0%} of 'the capital of <c> is' "
        f"answers into 'paris' (unsteered {before:.0%}); all (share, baseline, feature, x): {runs}"
    )


def test_default_sae_names_the_sae_shipped_for_a_model(toy_model, tiny_model):
    assert interp.default_sae(toy_model) == "toy"
    assert interp.default_sae(tiny_model) is None  # no SAE ships for a random test model
