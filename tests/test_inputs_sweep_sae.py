"""Bad-input sweep, part 4: sparse autoencoders (load, check, encode, search, examples, cards).

Each case calls one public function with one bad argument (an SAE for another model or hook
among them) and expects a `ValueError`, `TypeError` or `KeyError` naming the argument and the
bad value, before any work, with no hook left behind. The last test checks no weight of the
model or the SAE changed (harness: tests/sweep.py).
"""

import copy
from types import SimpleNamespace

import pytest

import interp
from sweep import NAN, TEXTS, Case, params, run_case, weights_digest


def acts(prompt="the cat sat on the mat .", sae="sae"):
    return lambda c: interp.feature_activations(c.m, getattr(c, sae) if sae in ("sae", "moved", "gone") else sae,
                                                prompt)


def search(**kw):
    return lambda c: interp.search_features(c.m, c.sae, **{"progress": False, **kw})


def tops(corpus=TEXTS, unit="sae", **kw):
    return lambda c: interp.max_activating_examples(c.m, c.sae if unit == "sae" else unit, corpus,
                                                    **{"cache": False, "progress": False, **kw})


def card(feature=3, **kw):
    return lambda c: interp.feature_card(c.m, c.sae, feature, **{"examples": c.ex, "progress": False, **kw})


def fvec(feature=3):
    return lambda c: interp.feature_vector(c.m, c.sae, feature)


def density(corpus=TEXTS, **kw):
    return lambda c: interp.feature_density(c.m, c.sae, corpus, **{"progress": False, **kw})


def _every_feature_ranked(result, c):
    """A k above d_sae is accepted by design (as in FeatureActivations.top_features): all features."""
    assert len(result.features) == c.sae.cfg.d_sae
    assert bool((result.scores[:-1] >= result.scores[1:]).all())


def _context_bound(result, c):
    """A max_len above the context is accepted by design (documented): texts are read up to it."""
    assert result.n_tokens == c.m.cfg.n_ctx - 1  # every position after <bos>


CASES = [
    # default_sae
    Case("default_sae-model-None", lambda c: interp.default_sae(None), ("model", "None")),
    Case("default_sae-model-name", lambda c: interp.default_sae("toy"), ("model", "'toy'")),
    # load_sae
    Case("load_sae-release-unknown", lambda c: interp.load_sae("no-such-release"), ("no-such-release",)),
    Case("load_sae-release-empty", lambda c: interp.load_sae(""), ("release", "''")),
    Case("load_sae-release-None", lambda c: interp.load_sae(None), ("release", "None")),
    Case("load_sae-release-int", lambda c: interp.load_sae(3), ("release", "3")),
    Case("load_sae-folder-missing", lambda c: interp.load_sae(str(c.tmp / "nothing-here")), ("nothing-here",)),
    Case("load_sae-device", lambda c: interp.load_sae("toy", device="tpu"), ("device", "tpu")),
    Case("load_sae-sae_id-toy", lambda c: interp.load_sae("toy", sae_id="layer-9"), ("sae_id", "layer-9")),
    # an SAE for another model or another hook
    Case("check_sae-not-an-sae", lambda c: interp.check_sae(c.m, "sae"), ("str",)),
    Case("check_sae-None", lambda c: interp.check_sae(c.m, None), ("NoneType",)),
    Case("check_sae-other-model", lambda c: interp.check_sae(c.other, c.sae), ("d_in",)),
    Case("check_sae-missing-hook", lambda c: interp.check_sae(c.m, c.gone), ("blocks.9.hook_resid_post",)),
    Case("check_sae-relabelled-layer", lambda c: interp.check_sae(c.m, c.moved), ("blocks.1.hook_resid_post", "2")),
    Case("acts-relabelled-layer", acts(sae="moved"), ("blocks.1.hook_resid_post",)),
    Case("check_sae-model-name", lambda c: interp.check_sae("toy", c.sae), ("model", "'toy'")),
    Case("acts-other-model", lambda c: interp.feature_activations(c.other, c.sae, "the cat"), ("d_in",)),
    Case("acts-missing-hook", acts(sae="gone"), ("blocks.9.hook_resid_post",)),
    # feature_activations
    Case("acts-prompt-None", acts(prompt=None), ("prompt", "None")),
    Case("acts-prompt-empty", acts(prompt=""), ("prompt", "''")),
    Case("acts-prompt-blank", acts(prompt="  "), ("prompt", "'  '")),
    Case("acts-prompt-int", acts(prompt=3), ("prompt", "3")),
    Case("acts-prompt-list", acts(prompt=["a", "b"]), ("prompt", "list")),
    Case("acts-prompt-too-long", acts(prompt=" ".join(["the cat"] * 40)), ("64",)),
    Case("acts-sae-str", acts(sae="toy"), ("str",)),
    # search_features
    Case("search-nothing", search(), ("text", "promotes")),
    Case("search-both", search(text="the cat", promotes="cat"), ("text", "promotes")),
    Case("search-text-empty", search(text=""), ("text", "''")),
    Case("search-text-int", search(text=3), ("text", "3")),
    Case("search-text-list", search(text=["the cat", "a dog"]), ("text", "list")),
    Case("search-positions-big", search(text="the cat", positions=[40]), ("40",)),
    Case("search-positions-unknown-token", search(text="the cat", positions=["dog"]), ("dog",)),
    Case("search-positions-no-text", search(promotes="cat", positions=[-1]), ("positions",)),
    Case("search-promotes-unknown", search(promotes="zzzqqq"), ("zzzqqq",)),
    Case("search-promotes-negative", search(promotes=-1), ("-1",)),
    Case("search-promotes-empty", search(promotes=[]), ("promotes",)),
    Case("search-k-huge", search(promotes="paris", k=10**9, max_density=None), accepted=_every_feature_ranked),
    Case("search-k-0", search(promotes="cat", k=0), ("k", "0")),
    Case("search-k-neg", search(promotes="cat", k=-2), ("k", "-2")),
    Case("search-k-float", search(promotes="cat", k=2.5), ("k", "2.5")),
    Case("search-k-bool", search(promotes="cat", k=True), ("k", "True")),
    Case("search-max_density-nan", search(promotes="cat", max_density=NAN), ("max_density", "nan")),
    Case("search-max_density-neg", search(promotes="cat", max_density=-0.1), ("max_density", "-0.1")),
    Case("search-max_density-big", search(promotes="cat", max_density=1.5), ("max_density", "1.5")),
    Case("search-density-shape", lambda c: interp.search_features(c.m, c.sae, promotes="cat", density=c.short),
         ("density", "(3,)")),
    Case("search-density-str", search(promotes="cat", density="low"), ("density", "'low'")),
    Case("search-corpus-empty", search(text="the cat", corpus=[]), ("corpus",)),
    # max_activating_examples
    Case("tops-corpus-None", tops(corpus=None), ("corpus", "None")),
    Case("tops-corpus-empty", tops(corpus=[]), ("corpus",)),
    Case("tops-corpus-empty-texts", tops(corpus=["", " "]), ("corpus",)),
    Case("tops-corpus-int", tops(corpus=3), ("corpus", "int")),
    Case("tops-corpus-list-int", tops(corpus=["the cat", 3]), ("int",)),
    Case("tops-corpus-path-missing", tops(corpus="/no/such/corpus.txt"), ("/no/such/corpus.txt",)),
    Case("tops-features-big", tops(features=[99999]), ("feature", "99999")),
    Case("tops-features-neg", tops(features=-1), ("feature", "-1")),
    Case("tops-features-str", tops(features="x"), ("feature", "'x'")),
    Case("tops-features-empty", tops(features=[]), ("feature",)),
    Case("tops-features-duplicate", tops(features=[1, 1]), ("[1, 1]",)),
    Case("tops-k-huge", tops(k=10**9), ("k=1000000000",)),
    Case("tops-context-huge", tops(context=(10**8, 2)), ("100000000",)),
    Case("tops-max_len-huge", tops(corpus=[" ".join(["the cat"] * 50)], max_len=10**6), accepted=_context_bound),
    Case("tops-k-0", tops(k=0), ("k", "0")),
    Case("tops-k-neg", tops(k=-1), ("k", "-1")),
    Case("tops-k-float", tops(k=1.5), ("k", "1.5")),
    Case("tops-context-neg", tops(context=(-1, 2)), ("before", "-1")),
    Case("tops-context-str", tops(context="x"), ("context", "'x'")),
    Case("tops-context-triple", tops(context=(1, 2, 3)), ("context", "(1, 2, 3)")),
    Case("tops-batch_size-0", tops(batch_size=0), ("batch_size", "0")),
    Case("tops-max_len-0", tops(max_len=0), ("max_len", "0")),
    Case("tops-max_len-neg", tops(max_len=-5), ("max_len", "-5")),
    Case("tops-cache-str", tops(cache="no"), ("cache", "no")),
    Case("tops-cache_key-int", tops(cache_key=3), ("cache_key", "3")),
    Case("tops-cache_key-empty", tops(cache_key=""), ("cache_key", "''")),
    Case("tops-unit-str", tops(unit="x"), ("x",)),
    Case("tops-unit-None", tops(unit=None), ("None",)),
    Case("tops-neuron-layer", tops(unit=(9, 1)), ("9",)),
    Case("tops-neuron-index", tops(unit=(0, 99999)), ("99999",)),
    Case("tops-neuron-with-features", tops(unit=(0, 1), features=[2]), ("features",)),
    Case("tops-other-model", lambda c: interp.max_activating_examples(c.other, c.sae, TEXTS, cache=False,
                                                                       progress=False), ("d_in",)),
    # feature_density
    Case("density-corpus-empty", density(corpus=[]), ("corpus",)),
    Case("density-corpus-int", density(corpus=3), ("corpus", "int")),
    Case("density-measure-str", density(corpus=None, measure="no"), ("measure", "no")),
    # feature_card
    Case("card-feature-None", card(feature=None), ("feature", "None")),
    Case("card-feature-big", card(feature=99999), ("feature", "99999")),
    Case("card-feature-neg", card(feature=-1), ("feature", "-1")),
    Case("card-feature-str", card(feature="x"), ("feature", "'x'")),
    Case("card-feature-not-tracked", lambda c: interp.feature_card(c.m, c.sae, 3, examples=c.ex_one,
                                                                    progress=False), ("3",)),
    Case("card-n_tokens-0", card(n_tokens=0), ("n_tokens", "0")),
    Case("card-n_tokens-neg", card(n_tokens=-1), ("n_tokens", "-1")),
    Case("card-n_tokens-float", card(n_tokens=1.5), ("n_tokens", "1.5")),
    Case("card-n_tokens-huge", card(n_tokens=10**6), ("n_tokens", "1000000")),
    Case("card-examples-str", card(examples="top"), ("examples", "'top'")),
    Case("card-neuron-conflict", lambda c: interp.feature_card(c.m, (0, 1), 2, progress=False), ("2",)),
    Case("card-neuron-big", lambda c: interp.feature_card(c.m, (0, 99999), progress=False), ("99999",)),
    # feature_vector
    Case("fvec-feature-None", fvec(feature=None), ("feature",)),
    Case("fvec-feature-big", fvec(feature=99999), ("feature", "99999")),
    Case("fvec-feature-neg", fvec(feature=-1), ("feature", "-1")),
    Case("fvec-feature-float", fvec(feature=1.5), ("feature", "1.5")),
    Case("fvec-feature-bool", fvec(feature=True), ("feature", "True")),
    Case("fvec-other-model", lambda c: interp.feature_vector(c.other, c.sae, 3), ("d_in",)),
    Case("fvec-sae-str", lambda c: interp.feature_vector(c.m, "sae", 3), ("str",)),
    # the examples result's own lookups
    Case("examples-row-missing", lambda c: c.ex_one.row(3), ("3",)),
    Case("examples-load-missing", lambda c: interp.MaxActivatingExamples.load(c.tmp / "missing.safetensors"),
         ("missing",)),
    Case("examples-save-None", lambda c: c.ex.save(None), ("path", "None")),
]


@pytest.fixture(scope="module")
def ctx(toy_model, gpt2_like, tmp_path_factory):
    import torch

    sae = interp.load_sae("toy", device="cpu")
    gone = copy.deepcopy(sae)
    gone.cfg.metadata.hook_name = "blocks.9.hook_resid_post"
    moved = copy.deepcopy(sae)
    moved.cfg.metadata.hook_name = "blocks.1.hook_resid_post"  # trained on layer 2 (its metadata says so)
    ex = interp.max_activating_examples(toy_model, sae, TEXTS, k=3, cache=False, progress=False)
    ex_one = interp.max_activating_examples(toy_model, sae, TEXTS, features=[5], k=3, cache=False, progress=False)
    return SimpleNamespace(m=toy_model, other=gpt2_like, sae=sae, gone=gone, moved=moved, ex=ex, ex_one=ex_one,
                           short=torch.zeros(3), tmp=tmp_path_factory.mktemp("interp-sweep-sae"),
                           digest=weights_digest(toy_model), sae_digest=weights_digest(sae),
                           other_digest=weights_digest(gpt2_like))


@pytest.mark.parametrize("case", params(CASES))
def test_bad_input(case, ctx):
    run_case(case, ctx, [ctx.m, ctx.other])


def test_no_weight_changed(ctx):
    assert weights_digest(ctx.m) == ctx.digest
    assert weights_digest(ctx.sae) == ctx.sae_digest
    assert weights_digest(ctx.other) == ctx.other_digest
