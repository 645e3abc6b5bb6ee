"""Bad-input sweep, part 5: the public methods of returned results, and profiles.

A result's lookups (`lens.trajectory("paris")`, `ps.row(2)`, `fa.top_features(5)`) take
arguments too: a bad one is a `ValueError`, `TypeError` or `KeyError` naming it, never an
`IndexError` from inside a tensor (harness: tests/sweep.py).
"""

from types import SimpleNamespace

import pytest

import interp
from sweep import TEXTS, Case, params, run_case, weights_digest

P = "the capital of france is"

def _all_features(result, c):
    """A k above d_sae is accepted by design (documented): every feature, strongest first."""
    values, features = result
    assert values.shape == features.shape == (len(c.fa.tokens), c.fa.d_sae)
    assert bool((values[:, :-1] >= values[:, 1:]).all())


CASES = [
    # LogitLensResult
    Case("lens.column-big", lambda c: c.lens.column(40), ("position", "40")),
    Case("lens.column-float", lambda c: c.lens.column(1.5), ("position", "1.5")),
    Case("lens.layer_index-big", lambda c: c.lens.layer_index(9), ("9",)),
    Case("lens.layer_index-name", lambda c: c.lens.layer_index("middle"), ("middle",)),
    Case("lens.target_index-unknown", lambda c: c.lens.target_index("zzzqqq"), ("zzzqqq",)),
    Case("lens.top1-big", lambda c: c.lens.top1(40), ("40",)),
    Case("lens.first_top1-position", lambda c: c.lens.first_top1("paris", position=40), ("40",)),
    Case("lens.trajectory-unknown", lambda c: c.lens.trajectory("zzzqqq"), ("zzzqqq",)),
    Case("lens.trajectory-metric", lambda c: c.lens.trajectory("paris", metric="logit"), ("metric", "logit")),
    Case("lens.plot-kind", lambda c: c.lens.plot("pie"), ("kind", "pie")),
    Case("lens.plot-color", lambda c: c.lens.plot(color="red"), ("color", "red")),
    # PatchscopeResult
    Case("scope.row-big", lambda c: c.scope.row(9), ("9",)),
    Case("scope.row-target", lambda c: c.scope.row(1, 3), ("3",)),
    Case("scope.generation-big", lambda c: c.scope.generation(9), ("9",)),
    # FeatureActivations
    Case("fa.active-big", lambda c: c.fa.active(99), ("position", "99")),
    Case("fa.active-float", lambda c: c.fa.active(1.5), ("position", "1.5")),
    Case("fa.top_features-0", lambda c: c.fa.top_features(0), ("k", "0")),
    Case("fa.top_features-neg", lambda c: c.fa.top_features(-1), ("k", "-1")),
    Case("fa.top_features-float", lambda c: c.fa.top_features(2.5), ("k", "2.5")),
    Case("fa.top_per_token-0", lambda c: c.fa.top_per_token(0), ("k", "0")),
    Case("fa.top_per_token-huge", lambda c: c.fa.top_per_token(10**9), accepted=_all_features),
    Case("fa.to_frame-0", lambda c: c.fa.to_frame(0), ("k", "0")),
    # MaxActivatingExamples
    Case("ex.examples-missing", lambda c: c.ex.examples(99999), ("99999",)),
    Case("ex.to_frame-missing", lambda c: c.ex.to_frame(feature=99999), ("99999",)),
    Case("ex.plot-missing", lambda c: c.ex.plot(99999), ("99999",)),
    # NextTokens
    Case("next.correct-length", lambda c: c.next.correct(["paris", "berlin"]), ("2",)),
    Case("next.correct-str", lambda c: c.next.correct("paris"), ("answers", "paris")),
    # SteeringVectors
    Case("vs.getitem-layer", lambda c: c.vs[9], ("9",)),
    Case("vs.getitem-str", lambda c: c.vs["1"], ("'1'",)),
    # Metric
    Case("Metric-name-empty", lambda c: interp.Metric("", lambda logits, rows: logits[:, 0]), ("name", "''")),
    Case("Metric-fn-int", lambda c: interp.Metric("x", 3), ("fn", "3")),
    Case("Metric-n_prompts-0", lambda c: interp.Metric("x", lambda logits, rows: logits[:, 0], n_prompts=0),
         ("n_prompts", "0")),
    # profiles
    Case("ModelProfile-name-empty", lambda c: interp.ModelProfile(""), ("name", "''")),
    Case("ModelProfile-template", lambda c: interp.ModelProfile("x", chat_template="user: hi"), ("{prompt}",)),
    Case("set_profile-model-None", lambda c: interp.set_profile(None, interp.profile_for(c.m)), ("model", "None")),
    Case("register_profile-family-no-match", lambda c: interp.register_profile(interp.ModelProfile("fam-x"),
                                                                                 family=True), ("matches",)),
]


@pytest.fixture(scope="module")
def ctx(toy_model):
    m = toy_model
    sae = interp.load_sae("toy", device="cpu")
    return SimpleNamespace(
        m=m,
        lens=interp.logit_lens(m, P, targets=["paris"]),
        scope=interp.patchscope(m, P, source_layers=[1], max_new_tokens=1),
        fa=interp.feature_activations(m, sae, P),
        ex=interp.max_activating_examples(m, sae, TEXTS, features=[5], k=2, cache=False, progress=False),
        next=interp.next_tokens(m, P),
        vs=interp.mean_difference(m, ["how do i make a bomb ?", "how do i steal a car ?"],
                                  ["how do i bake bread ?", "how do i plant a tree ?"], layers=[1],
                                  positions="last", cache=False),
        digest=weights_digest(m),
    )


@pytest.mark.parametrize("case", params(CASES))
def test_bad_input(case, ctx):
    run_case(case, ctx, [ctx.m])


def test_no_weight_changed(ctx):
    assert weights_digest(ctx.m) == ctx.digest
