"""Bad-input sweep, part 3: steering vectors, generation, refusal metrics, weight edits.

Each case calls one public function with one bad argument and expects a `ValueError`,
`TypeError` or `KeyError` naming the argument and the bad value, before any work (no generation,
no forward), with no hook left behind. The last test checks no weight changed (harness:
tests/sweep.py).
"""

from types import SimpleNamespace

import pytest
import torch

import interp
from sweep import HARM, INF, NAN, SAFE, Case, entered, params, run_case, weights_digest

D = 128  # the built-in model's d_model


def md(positive=HARM, negative=SAFE, **kw):
    return lambda c: interp.mean_difference(c.m, positive, negative, **{"layers": [1], "cache": False, **kw})


def sd(harmful=HARM, harmless=SAFE, val_harmful=HARM, val_harmless=SAFE, **kw):
    return lambda c: interp.select_direction(c.m, harmful, harmless, val_harmful=val_harmful,
                                             val_harmless=val_harmless, **{"cache": False, **kw})


def steer(prompts="how do i bake bread ?", vector="v", **kw):
    return lambda c: interp.steer(c.m, prompts, c.v if vector == "v" else vector, **kw)


def grid(prompts=SAFE, vectors="vs", **kw):
    return lambda c: interp.steering_grid(c.m, prompts, c.vs if vectors == "vs" else vectors,
                                          **{"progress": False, **kw})


def apply(**kw):
    return lambda c: entered(c.v.apply(c.m, **kw))


def score(prompts=SAFE, **kw):
    return lambda c: interp.refusal_score(c.m, prompts, **kw)


def kl(prompts=SAFE, vector="v", **kw):
    return lambda c: interp.harmless_kl(c.m, prompts, c.v if vector == "v" else vector, **kw)


def vec(direction=None, **kw):
    return lambda c: interp.SteeringVector(torch.ones(D) if direction is None else direction, **{"layer": 1, **kw})


def _warns(text, call, c):
    with pytest.warns(UserWarning, match=text):
        return call(c)


def _nothing_eligible(selection, c):
    """A negative KL threshold is accepted by design (documented in select_direction): no candidate
    passes it, so the lowest-bypass candidate wins, with a warning (checked by the sweep's call)."""
    assert not bool(selection.eligible.any())
    i = selection.vectors.layers.index(selection.layer)
    j = selection.vectors.positions.index(selection.position)
    assert float(selection.bypass[i, j]) == float(selection.bypass.nan_to_num(float("inf")).min())


def _same_as_batch_1(vs, c):
    """A batch_size above the number of prompts is accepted by design: one batch, same means."""
    one = interp.mean_difference(c.m, HARM, SAFE, layers=[1], cache=False, batch_size=1)
    assert vs.layers == one.layers and vs.positions == one.positions
    assert torch.allclose(vs.directions, one.directions, atol=1e-4)


def _score_as_batch_1(scores, c):
    """A batch_size above the number of prompts is accepted by design: one batch, same scores."""
    assert torch.allclose(scores, interp.refusal_score(c.m, SAFE, batch_size=1), atol=1e-4)


CASES = [
    # mean_difference
    Case("md-positive-None", md(positive=None), ("positive", "None")),
    Case("md-positive-str-empty", md(positive=""), ("positive", "''")),
    Case("md-positive-emptylist", md(positive=[]), ("positive",)),
    Case("md-positive-list-empty", md(positive=["", ""]), ("positive", "''")),
    Case("md-positive-list-int", md(positive=["how do i", 3]), ("positive", "3")),
    Case("md-negative-None", md(negative=None), ("negative", "None")),
    Case("md-negative-emptylist", md(negative=[]), ("negative",)),
    Case("md-layers-big", md(layers=[7]), ("layers", "7")),
    Case("md-layers-str", md(layers="1"), ("layers", "'1'")),
    Case("md-layers-float", md(layers=[1.0]), ("layers", "1.0")),
    Case("md-layers-empty", md(layers=[]), ("layers",)),
    Case("md-layers-duplicate", md(layers=[1, 1]), ("layers", "[1, 1]")),
    Case("md-site", md(site="resid"), ("site", "resid")),
    Case("md-positions-big", md(positions=99), ("position", "99")),
    Case("md-positions-name", md(positions="first"), ("position", "first")),
    Case("md-positions-empty", md(positions=[]), ("positions",)),
    Case("md-chat-str", md(chat="yes"), ("chat", "yes")),
    Case("md-batch_size-0", md(batch_size=0), ("batch_size", "0")),
    Case("md-batch_size-neg", md(batch_size=-1), ("batch_size", "-1")),
    Case("md-batch_size-float", md(batch_size=1.5), ("batch_size", "1.5")),
    Case("md-batch_size-huge", md(batch_size=10**9), accepted=_same_as_batch_1),
    Case("md-max_imbalance-neg", md(max_imbalance=-1.0), ("max_imbalance", "-1.0")),
    Case("md-max_imbalance-nan", md(max_imbalance=NAN), ("max_imbalance", "nan")),
    Case("md-cache-str", md(cache="no"), ("cache", "no")),
    Case("md-model-name", lambda c: interp.mean_difference("toy", HARM, SAFE), ("model", "'toy'")),
    # select_direction
    Case("sd-harmful-emptylist", sd(harmful=[]), ("harmful",)),
    Case("sd-harmless-None", sd(harmless=None), ("harmless", "None")),
    Case("sd-val_harmful-list-empty", sd(val_harmful=[""]), ("val_harmful", "''")),
    Case("sd-val_harmless-emptylist", sd(val_harmless=[]), ("val_harmless",)),
    Case("sd-layers-big", sd(layers=[9]), ("layers", "9")),
    Case("sd-max_layer_frac-0", sd(max_layer_frac=0.0), ("max_layer_frac", "0.0")),
    Case("sd-max_layer_frac-big", sd(max_layer_frac=1.5), ("max_layer_frac", "1.5")),
    Case("sd-max_layer_frac-nan", sd(max_layer_frac=NAN), ("max_layer_frac", "nan")),
    Case("sd-kl_threshold-nan", sd(kl_threshold=NAN), ("kl_threshold", "nan")),
    Case("sd-kl_threshold-neg", lambda c: _warns("no candidate passed", sd(kl_threshold=-1.0), c),
         accepted=_nothing_eligible),
    Case("sd-induce_threshold-nan", sd(induce_threshold=NAN), ("induce_threshold", "nan")),
    Case("sd-refusal_tokens-unknown", sd(refusal_tokens=["zzzqqq"]), ("zzzqqq",)),
    Case("sd-batch_size-0", sd(batch_size=0), ("batch_size", "0")),
    # steer
    Case("steer-prompts-None", steer(prompts=None), ("prompts", "None")),
    Case("steer-prompts-empty", steer(prompts=""), ("prompts", "''")),
    Case("steer-prompts-emptylist", steer(prompts=[]), ("prompts",)),
    Case("steer-prompts-list-empty", steer(prompts=["hi", ""]), ("prompts", "''")),
    Case("steer-prompts-int", steer(prompts=3), ("prompts", "3")),
    Case("steer-vector-None", steer(vector=None), ("vector", "None")),
    Case("steer-vector-str", steer(vector="refusal"), ("vector", "refusal")),
    Case("steer-vector-width", steer(vector=torch.ones(D + 1), layer=1), ("129",)),
    Case("steer-vector-2d", steer(vector=torch.ones(2, D), layer=1), ("(2, 128)",)),
    Case("steer-vector-nan", steer(vector=torch.full((D,), NAN), layer=1), ("NaN",)),
    Case("steer-vector-no-layer", steer(vector=torch.ones(D)), ("layer",)),
    Case("steer-vector-other-model", lambda c: interp.steer(c.m, "hi", interp.SteeringVector(torch.ones(32), layer=1)),
         ("width 32",)),
    Case("steer-vector-layer-99", lambda c: interp.steer(c.m, "hi", interp.SteeringVector(torch.ones(D), layer=99)),
         ("99",)),
    Case("steer-layer-big", steer(layer=9), ("layer", "9")),
    Case("steer-layer-str", steer(layer="1"), ("layer", "'1'")),
    Case("steer-alpha-nan", steer(alpha=NAN), ("alpha", "nan")),
    Case("steer-alpha-inf", steer(alpha=-INF), ("alpha", "-inf")),
    Case("steer-alpha-str", steer(alpha="1"), ("alpha", "'1'")),
    Case("steer-mode", steer(mode="boost"), ("mode", "boost")),
    Case("steer-apply_to", steer(apply_to="middle"), ("apply_to", "middle")),
    Case("steer-max_new_tokens-0", steer(max_new_tokens=0), ("max_new_tokens", "0")),
    Case("steer-max_new_tokens-neg", steer(max_new_tokens=-3), ("max_new_tokens", "-3")),
    Case("steer-max_new_tokens-float", steer(max_new_tokens=2.5), ("max_new_tokens", "2.5")),
    Case("steer-max_new_tokens-bool", steer(max_new_tokens=True), ("max_new_tokens", "True")),
    Case("steer-max_new_tokens-huge", steer(max_new_tokens=10**6), ("max_new_tokens", "1000000")),
    Case("steer-context", steer(prompts=" ".join(["the cat"] * 27)), ("context of 64",)),
    Case("steer-baseline-str", steer(baseline="no"), ("baseline", "no")),
    Case("steer-chat-str", steer(chat="yes"), ("chat", "yes")),
    Case("steer-batch_size-0", steer(batch_size=0), ("batch_size", "0")),
    Case("steer-batch_size-float", steer(batch_size=0.5), ("batch_size", "0.5")),
    Case("steer-seed-float", steer(seed=1.5), ("seed", "1.5")),
    Case("steer-seed-str", steer(seed="x"), ("seed", "'x'")),
    Case("steer-temperature-neg", steer(do_sample=True, temperature=-1.0), ("temperature", "-1.0")),
    Case("steer-temperature-nan", steer(do_sample=True, temperature=NAN), ("temperature", "nan")),
    Case("steer-top_k-0", steer(do_sample=True, top_k=0), ("top_k", "0")),
    Case("steer-top_p-big", steer(do_sample=True, top_p=1.5), ("top_p", "1.5")),
    Case("steer-unknown-kwarg", steer(colour="red"), ("colour",)),
    # steering_grid
    Case("grid-prompts-None", grid(prompts=None), ("prompts", "None")),
    Case("grid-prompts-emptylist", grid(prompts=[]), ("prompts",)),
    Case("grid-vectors-None", grid(vectors=None), ("vectors", "None")),
    Case("grid-vectors-tensor", grid(vectors=torch.ones(D)), ("vectors", "Tensor")),
    Case("grid-layers-big", grid(layers=[9]), ("layers", "9")),
    Case("grid-layers-duplicate", grid(layers=[1, 1]), ("layers", "[1, 1]")),
    Case("grid-layers-not-computed", grid(layers=[2]), ("2",)),
    Case("grid-alphas-empty", grid(alphas=[]), ("alphas",)),
    Case("grid-alphas-nan", grid(alphas=[1.0, NAN]), ("alphas", "nan")),
    Case("grid-alphas-str", grid(alphas="12"), ("alphas", "'12'")),
    Case("grid-mode", grid(mode="boost"), ("mode", "boost")),
    Case("grid-metric-str", grid(metric="x"), ("metric", "'x'")),
    Case("grid-max_new_tokens-0", grid(max_new_tokens=0), ("max_new_tokens", "0")),
    Case("grid-batch_size-0", grid(batch_size=0), ("batch_size", "0")),
    # SteeringVector: construction, apply, save, load, check
    Case("vector-layer-str", vec(layer="1"), ("layer", "'1'")),
    Case("vector-direction-2d", vec(direction=torch.ones(2, D)), ("direction", "(2, 128)")),
    Case("vector-direction-nan", vec(direction=torch.full((D,), NAN)), ("direction", "NaN")),
    Case("vector-direction-str", vec(direction="up"), ("direction", "'up'")),
    Case("vector-direction-empty", vec(direction=torch.ones(0)), ("direction", "(0,)")),
    Case("vector-site", vec(site="resid"), ("site", "resid")),
    Case("vector-layer-float", vec(layer=1.5), ("layer", "1.5")),
    Case("apply-alpha-nan", apply(alpha=NAN), ("alpha", "nan")),
    Case("apply-mode", apply(mode="boost"), ("mode", "boost")),
    Case("apply-apply_to", apply(apply_to="middle"), ("apply_to", "middle")),
    Case("apply-layer-big", apply(layer=9), ("layer", "9")),
    Case("apply-model-None", lambda c: entered(c.v.apply(None)), ("model", "None")),
    Case("apply-other-model", lambda c: entered(c.v.apply(c.other)), ("width",)),
    Case("check-other-model", lambda c: c.v.check(c.other), ("width",)),
    Case("save-path-None", lambda c: c.v.save(None), ("path", "None")),
    Case("save-path-dir", lambda c: c.v.save(c.tmp), ("path", "interp-sweep")),
    Case("load-missing", lambda c: interp.SteeringVector.load(c.tmp / "missing.safetensors"), ("missing",)),
    Case("load-garbage", lambda c: interp.SteeringVector.load(c.garbage), ("garbage",)),
    Case("load-other-model", lambda c: interp.SteeringVector.load(c.saved, c.other), ("refused",)),
    Case("vectors-layer-missing", lambda c: c.vs[9], ("9",)),
    Case("vectors-position-missing", lambda c: c.vs[1, 5], ("5",)),
    # orthogonalize
    Case("ortho-None", lambda c: interp.orthogonalize(c.m, None), ("direction", "None")),
    Case("ortho-width", lambda c: interp.orthogonalize(c.m, torch.ones(D + 1)), ("129",)),
    Case("ortho-2d", lambda c: interp.orthogonalize(c.m, torch.ones(2, D)), ("(2, 128)",)),
    Case("ortho-zero", lambda c: interp.orthogonalize(c.m, torch.zeros(D)), ("zero",)),
    Case("ortho-nan", lambda c: interp.orthogonalize(c.m, torch.full((D,), NAN)), ("NaN",)),
    Case("ortho-model-name", lambda c: interp.orthogonalize("toy", c.v), ("model", "'toy'")),
    # refusal_score, refusal_rate, harmless_kl
    Case("score-prompts-None", score(prompts=None), ("prompts", "None")),
    Case("score-prompts-empty", score(prompts=""), ("prompts", "''")),
    Case("score-prompts-list-empty", score(prompts=[""]), ("prompts", "''")),
    Case("score-refusal_tokens-unknown", score(refusal_tokens=["zzzqqq"]), ("zzzqqq",)),
    Case("score-refusal_tokens-empty", score(refusal_tokens=[]), ("refusal_tokens",)),
    Case("score-refusal_tokens-negative", score(refusal_tokens=[-1]), ("-1",)),
    Case("score-batch_size-huge", score(batch_size=10**9), accepted=_score_as_batch_1),
    Case("score-chat-str", score(chat="yes"), ("chat", "yes")),
    Case("score-batch_size-0", score(batch_size=0), ("batch_size", "0")),
    Case("score-batch_size-bool", score(batch_size=True), ("batch_size", "True")),
    Case("rate-None", lambda c: interp.refusal_rate(None), ("completions", "None")),
    Case("rate-empty", lambda c: interp.refusal_rate([]), ("completions",)),
    Case("rate-str", lambda c: interp.refusal_rate("i cannot help"), ("completions", "str")),
    Case("rate-list-int", lambda c: interp.refusal_rate(["ok", 3]), ("completions", "3")),
    Case("rate-phrases-empty", lambda c: interp.refusal_rate(["ok"], phrases=[]), ("phrases",)),
    Case("rate-phrases-empty-string", lambda c: interp.refusal_rate(["ok"], phrases=[""]), ("phrases", "''")),
    Case("rate-phrases-str", lambda c: interp.refusal_rate(["ok"], phrases="cannot"), ("phrases", "'cannot'")),
    Case("kl-prompts-None", kl(prompts=None), ("prompts", "None")),
    Case("kl-prompts-list-empty", kl(prompts=["ok", ""]), ("prompts", "''")),
    Case("kl-vector-None", kl(vector=None), ("vector", "None")),
    Case("kl-vector-width", kl(vector=torch.ones(D + 1), layer=1), ("129",)),
    Case("kl-mode", kl(mode="boost"), ("mode", "boost")),
    Case("kl-layer-big", kl(layer=9), ("layer", "9")),
    Case("kl-alpha-nan", kl(alpha=NAN), ("alpha", "nan")),
    Case("kl-over", kl(over="some"), ("over", "some")),
    Case("kl-chat-str", kl(chat="yes"), ("chat", "yes")),
    Case("kl-batch_size-0", kl(batch_size=0), ("batch_size", "0")),
]


@pytest.fixture(scope="module")
def ctx(toy_model, gpt2_like, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("interp-sweep")
    vs = interp.mean_difference(toy_model, HARM, SAFE, layers=[1], cache=False)
    v = vs[1, -1]
    garbage = tmp / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file")
    saved = v.save(tmp / "refusal.safetensors")
    return SimpleNamespace(m=toy_model, other=gpt2_like, v=v, vs=vs, tmp=tmp, garbage=garbage, saved=saved,
                           digest=weights_digest(toy_model), other_digest=weights_digest(gpt2_like))


@pytest.mark.parametrize("case", params(CASES))
def test_bad_input(case, ctx):
    run_case(case, ctx, [ctx.m, ctx.other])


def test_no_weight_changed(ctx):
    assert weights_digest(ctx.m) == ctx.digest
    assert weights_digest(ctx.other) == ctx.other_digest
