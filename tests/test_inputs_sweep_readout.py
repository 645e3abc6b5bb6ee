"""Bad-input sweep, part 2: the logit lens, patchscopes and neurons.

Each case calls one public function with one bad argument and expects a `ValueError`,
`TypeError` or `KeyError` naming the argument and the bad value, before any work, with no hook
left behind; benign cases (accepted by design, see the function's docstring) assert the right
result. The last test checks no weight changed (harness: tests/sweep.py).
"""

from types import SimpleNamespace

import pytest
import torch

import interp
from sweep import HARM, INF, NAN, SAFE, TEXTS, Case, params, run_case, weights_digest

P = "the capital of france is"


def lens(**kw):
    return lambda c: interp.logit_lens(c.m, kw.pop("prompt", P), **kw)


def scope(**kw):
    return lambda c: interp.patchscope(c.m, kw.pop("prompt", P), **kw)


def ablate(prompts=HARM, neurons=((0, 1),), **kw):
    return lambda c: interp.ablate_neurons(c.m, prompts, list(neurons), progress=False, **kw)


def rank(prompts=HARM, metric="ok", **kw):
    def call(c):
        m = c.metric if metric == "ok" else metric
        return interp.rank_neurons(c.m, prompts, m, verify=False, progress=False, **kw)
    return call


def acts(corpus=TEXTS, neuron=(0, 1), **kw):
    return lambda c: interp.neuron_activations(c.m, corpus, neuron, progress=False, **kw)


def sep(positive=HARM, negative=SAFE, **kw):
    return lambda c: interp.separating_neurons(c.m, positive, negative, **{"progress": False, **kw})


def _dedupe_positions(result, c):
    assert result.positions == (0,)


def _last_position(result, c):
    assert len(result.positions) == 1 and result.positions[0] == len(result.tokens) - 1


def _one_layer_once(result, c):
    assert list(result.source_layers) == [1]


def _layer_one_once(result, c):
    assert result.layers == (1,) and result.scores.shape[0] == 1
    assert all(layer == 1 for layer, _ in result.neurons)


def _whole_corpus(result, c):
    """A limit above the corpus size is accepted by design: the whole corpus is read."""
    full = interp.neuron_activations(c.m, TEXTS, (0, 1), progress=False)
    assert result.n_tokens == full.n_tokens and result.n_examples == full.n_examples == len(TEXTS)
    assert torch.equal(result.values, full.values)


CASES = [
    # logit_lens: prompt
    Case("lens-prompt-None", lens(prompt=None), ("prompt", "None")),
    Case("lens-prompt-int", lens(prompt=3), ("prompt", "3")),
    Case("lens-prompt-empty", lens(prompt=""), ("prompt", "''")),
    Case("lens-prompt-blank", lens(prompt="  "), ("prompt", "'  '")),
    Case("lens-prompt-emptylist", lens(prompt=[]), ("prompt", "0")),
    Case("lens-prompt-two", lens(prompt=["a", "b"]), ("prompt", "list of 2")),
    Case("lens-prompt-list-empty", lens(prompt=[""]), ("prompt", "''")),
    Case("lens-prompt-too-long", lens(prompt=" ".join(["the cat"] * 40)), ("64",)),
    Case("lens-tokens-negative", lens(prompt=torch.tensor([1, -3])), ("tokens", "-3")),
    Case("lens-tokens-out-of-vocab", lens(prompt=torch.tensor([1, 10**6])), ("tokens", "1000000")),
    Case("lens-tokens-float", lens(prompt=torch.tensor([1.0, 2.0])), ("tokens", "float")),
    Case("lens-tokens-batch", lens(prompt=torch.ones(2, 3, dtype=torch.long)), ("tokens", "(2, 3)")),
    Case("lens-tokens-empty", lens(prompt=torch.ones(0, dtype=torch.long)), ("tokens",)),
    # logit_lens: positions, targets, k and options
    Case("lens-positions-big", lens(positions=[40]), ("position", "40")),
    Case("lens-positions-neg", lens(positions=-40), ("position", "-40")),
    Case("lens-positions-name", lens(positions="first"), ("position", "first")),
    Case("lens-positions-float", lens(positions=1.5), ("position", "1.5")),
    Case("lens-positions-bool", lens(positions=True), ("position", "True")),
    Case("lens-positions-empty", lens(positions=[]), ("positions",)),
    Case("lens-positions-duplicate", lens(positions=[0, 0]), accepted=_dedupe_positions),
    Case("lens-positions-last-twice", lens(positions=["last", -1]), accepted=_last_position),
    Case("lens-targets-unknown", lens(targets=["zzzqqq"]), ("zzzqqq",)),
    Case("lens-targets-negative", lens(targets=[-1]), ("-1",)),
    Case("lens-targets-out-of-vocab", lens(targets=10**6), ("1000000",)),
    Case("lens-targets-None", lens(targets=[None]), ("None",)),
    Case("lens-targets-empty-string", lens(targets=""), ("''",)),
    Case("lens-k-0", lens(k=0), ("k", "0")),
    Case("lens-k-neg", lens(k=-1), ("k", "-1")),
    Case("lens-k-float", lens(k=2.5), ("k", "2.5")),
    Case("lens-k-bool", lens(k=True), ("k", "True")),
    Case("lens-k-huge", lens(k=10**9), ("k", "1000000000")),
    Case("lens-chat-str", lens(chat="yes"), ("chat", "yes")),
    Case("lens-prepend_bos-str", lens(prepend_bos="no"), ("prepend_bos", "no")),
    Case("lens-chunk-0", lens(chunk_positions=0), ("chunk_positions", "0")),
    Case("lens-chunk-neg", lens(chunk_positions=-2), ("chunk_positions", "-2")),
    Case("lens-chunk-float", lens(chunk_positions=1.5), ("chunk_positions", "1.5")),
    Case("lens-model-name", lambda c: interp.logit_lens("toy", P), ("model", "'toy'")),
    # patchscope
    Case("scope-prompt-None", scope(prompt=None), ("source_prompt",)),  # None: "needs a source_prompt"
    Case("scope-prompt-int", scope(prompt=3), ("source_prompt", "3")),
    Case("scope-prompt-empty", scope(prompt=""), ("source_prompt", "''")),
    Case("scope-prompt-list", scope(prompt=["a", "b"]), ("source_prompt",)),
    Case("scope-vector-width", lambda c: interp.patchscope(c.m, source_vector=torch.ones(129)),
         ("source_vector", "(129,)")),
    Case("scope-vector-nan", lambda c: interp.patchscope(c.m, source_vector=torch.full((128,), NAN)),
         ("source_vector", "NaN")),
    Case("scope-vector-str", lambda c: interp.patchscope(c.m, source_vector="paris"), ("source_vector", "str")),
    Case("scope-vector-and-prompt", lambda c: interp.patchscope(c.m, P, source_vector=torch.ones(128)),
         ("source_prompt", "source_vector")),
    Case("scope-position-big", scope(source_position=30), ("source_position", "30")),
    Case("scope-position-neg", scope(source_position=-30), ("source_position", "-30")),
    Case("scope-position-name", scope(source_position="first"), ("source_position", "first")),
    Case("scope-position-float", scope(source_position=1.5), ("source_position", "1.5")),
    Case("scope-target-preset", scope(target="nope"), ("nope",)),
    Case("scope-target-empty", scope(target=""), ("target", "''")),
    Case("scope-target-int", scope(target=3), ("target", "3")),
    Case("scope-target-no-placeholder", scope(target="the capital of france is"), ("placeholder",)),
    Case("scope-placeholder-unknown", scope(placeholder="zzzqqq"), ("zzzqqq",)),
    Case("scope-source_layers-big", scope(source_layers=[8]), ("source_layers", "8")),
    Case("scope-source_layers-neg", scope(source_layers=-9), ("source_layers", "-9")),
    Case("scope-source_layers-str", scope(source_layers="1"), ("source_layers", "'1'")),
    Case("scope-source_layers-empty", scope(source_layers=[]), ("source_layers",)),
    Case("scope-source_layers-float", scope(source_layers=[1.0]), ("source_layers", "1.0")),
    Case("scope-source_layers-duplicate", scope(source_layers=[1, 1]), accepted=_one_layer_once),
    Case("scope-target_layers-big", scope(target_layers=[9]), ("target_layers", "9")),
    Case("scope-target_layers-name", scope(target_layers="bogus"), ("target_layers", "bogus")),
    Case("scope-site", scope(site="resid"), ("site", "resid")),
    Case("scope-targets-unknown", scope(targets=["zzzqqq"]), ("zzzqqq",)),
    Case("scope-max_new_tokens-0", scope(max_new_tokens=0), ("max_new_tokens", "0")),
    Case("scope-max_new_tokens-neg", scope(max_new_tokens=-1), ("max_new_tokens", "-1")),
    Case("scope-max_new_tokens-float", scope(max_new_tokens=1.5), ("max_new_tokens", "1.5")),
    Case("scope-max_new_tokens-bool", scope(max_new_tokens=True), ("max_new_tokens", "True")),
    Case("scope-max_new_tokens-huge", scope(max_new_tokens=10**6), ("max_new_tokens", "1000000")),
    Case("scope-batch_size-0", scope(batch_size=0), ("batch_size", "0")),
    Case("scope-batch_size-float", scope(batch_size=2.5), ("batch_size", "2.5")),
    Case("scope-strategy", scope(strategy="fast"), ("strategy", "fast")),
    Case("scope-prepend_bos-str", scope(prepend_bos="yes"), ("prepend_bos", "yes")),
    Case("scope-relocate-str", scope(relocate_position="yes"), ("relocate_position", "yes")),
    # ablate_neurons
    Case("ablate-prompts-None", ablate(prompts=None), ("prompts", "None")),
    Case("ablate-prompts-empty", ablate(prompts=""), ("prompts", "''")),
    Case("ablate-prompts-emptylist", ablate(prompts=[]), ("prompts",)),
    Case("ablate-prompts-list-empty", ablate(prompts=["the cat", ""]), ("prompts", "''")),
    Case("ablate-prompts-list-int", ablate(prompts=["the cat", 3]), ("prompts", "3")),
    Case("ablate-neurons-layer", ablate(neurons=[(9, 0)]), ("9",)),
    Case("ablate-neurons-index", ablate(neurons=[(0, 99999)]), ("99999",)),
    Case("ablate-neurons-neg-index", ablate(neurons=[(0, -1)]), ("-1",)),
    Case("ablate-neurons-empty", ablate(neurons=[]), ("neurons",)),
    Case("ablate-neurons-None", lambda c: interp.ablate_neurons(c.m, HARM, None, progress=False), ("neurons", "None")),
    Case("ablate-neurons-str", lambda c: interp.ablate_neurons(c.m, HARM, "x", progress=False), ("neurons", "'x'")),
    Case("ablate-neurons-short", ablate(neurons=[(0,)]), ("(0,)",)),
    Case("ablate-neurons-float", ablate(neurons=[(0, 1.5)]), ("1.5",)),
    Case("ablate-method", ablate(method="melt"), ("method", "melt")),
    Case("ablate-reference-empty", ablate(method="mean", reference=[]), ("reference",)),
    Case("ablate-reference-list-empty", ablate(method="mean", reference=["", "x"]), ("reference", "''")),
    Case("ablate-targets-unknown", ablate(targets=["zzzqqq"]), ("zzzqqq",)),
    Case("ablate-targets-negative", ablate(targets=[-1]), ("-1",)),
    Case("ablate-metric-str", ablate(metric="x"), ("metric", "'x'")),
    Case("ablate-n_tokens-0", ablate(n_tokens=0), ("n_tokens", "0")),
    Case("ablate-n_tokens-neg", ablate(n_tokens=-1), ("n_tokens", "-1")),
    Case("ablate-n_tokens-float", ablate(n_tokens=1.5), ("n_tokens", "1.5")),
    Case("ablate-n_tokens-bool", ablate(n_tokens=True), ("n_tokens", "True")),
    Case("ablate-n_tokens-huge", ablate(n_tokens=10**9), ("n_tokens", "1000000000")),
    Case("ablate-test", ablate(test="chi2"), ("test", "chi2")),
    Case("ablate-alpha-nan", ablate(alpha=NAN), ("alpha", "nan")),
    Case("ablate-alpha-0", ablate(alpha=0), ("alpha", "0")),
    Case("ablate-alpha-big", ablate(alpha=1.5), ("alpha", "1.5")),
    Case("ablate-chat-str", ablate(chat="yes"), ("chat", "yes")),
    Case("ablate-batch_size-0", ablate(batch_size=0), ("batch_size", "0")),
    Case("ablate-batch_size-neg", ablate(batch_size=-4), ("batch_size", "-4")),
    Case("ablate-batch_size-bool", ablate(batch_size=True), ("batch_size", "True")),
    # rank_neurons
    Case("rank-prompts-None", rank(prompts=None), ("prompts", "None")),
    Case("rank-prompts-empty", rank(prompts=""), ("prompts", "''")),
    Case("rank-prompts-emptylist", rank(prompts=[]), ("prompts",)),
    Case("rank-metric-None", rank(metric=None), ("metric", "None")),
    Case("rank-metric-str", rank(metric="x"), ("metric", "'x'")),
    Case("rank-metric-nan", rank(metric=lambda logits, rows: logits[:, 0] * NAN), ("nan",)),
    Case("rank-metric-inf", rank(metric=lambda logits, rows: logits[:, 0] * INF), ("inf",)),
    Case("rank-layers-big", rank(layers=[9]), ("layers", "9")),
    Case("rank-layers-str", rank(layers="1"), ("layers", "'1'")),
    Case("rank-layers-empty", rank(layers=[]), ("layers",)),
    Case("rank-layers-duplicate", rank(layers=[1, 1]), accepted=_layer_one_once),
    Case("rank-k-0", rank(k=0), ("k", "0")),
    Case("rank-k-neg", rank(k=-1), ("k", "-1")),
    Case("rank-k-float", rank(k=1.5), ("k", "1.5")),
    Case("rank-k-bool", rank(k=True), ("k", "True")),
    Case("rank-k-huge", rank(k=10**9), ("k", "1000000000")),
    Case("rank-method", rank(method="melt"), ("method", "melt")),
    Case("rank-by", rank(by="sideways"), ("by", "sideways")),
    Case("rank-chat-str", rank(chat="yes"), ("chat", "yes")),
    Case("rank-batch_size-0", rank(batch_size=0), ("batch_size", "0")),
    # separating_neurons
    Case("sep-positive-None", sep(positive=None), ("positive", "None")),
    Case("sep-positive-emptylist", sep(positive=[]), ("positive",)),
    Case("sep-positive-list-empty", sep(positive=["how do i", ""]), ("positive", "''")),
    Case("sep-negative-int", sep(negative=3), ("negative", "3")),
    Case("sep-layers-big", sep(layers=[9]), ("layers", "9")),
    Case("sep-layers-str", sep(layers="1"), ("layers", "'1'")),
    Case("sep-positions-name", sep(positions="first"), ("positions", "first")),
    Case("sep-positions-big", sep(positions=[-99]), ("-99",)),
    Case("sep-k-0", sep(k=0), ("k", "0")),
    Case("sep-k-float", sep(k=1.5), ("k", "1.5")),
    Case("sep-k-huge", sep(k=10**9), ("k", "1000000000")),
    Case("sep-score", sep(score="t"), ("score", "'t'")),
    Case("sep-by", sep(by="sideways"), ("by", "sideways")),
    Case("sep-chat-str", sep(chat="yes"), ("chat", "yes")),
    Case("sep-batch_size-0", sep(batch_size=0), ("batch_size", "0")),
    Case("sep-batch_size-bool", sep(batch_size=True), ("batch_size", "True")),
    Case("sep-model-name", lambda c: interp.separating_neurons("toy", HARM, SAFE), ("model", "'toy'")),
    # neuron_activations
    Case("acts-corpus-None", acts(corpus=None), ("corpus", "None")),
    Case("acts-corpus-emptylist", acts(corpus=[]), ("corpus",)),
    Case("acts-corpus-empty-texts", acts(corpus=["", " "]), ("corpus",)),
    Case("acts-corpus-int", acts(corpus=3), ("corpus", "int")),
    Case("acts-corpus-list-int", acts(corpus=["the cat", 3]), ("int",)),
    Case("acts-corpus-path-missing", acts(corpus="/no/such/corpus.txt"), ("/no/such/corpus.txt",)),
    Case("acts-neuron-layer", acts(neuron=(9, 1)), ("9",)),
    Case("acts-neuron-index", acts(neuron=(0, 99999)), ("99999",)),
    Case("acts-neuron-neg-index", acts(neuron=(0, -1)), ("-1",)),
    Case("acts-neuron-None", acts(neuron=None), ("neuron", "None")),
    Case("acts-neuron-str", acts(neuron="x"), ("neuron", "'x'")),
    Case("acts-neuron-short", acts(neuron=(0,)), ("neuron", "(0,)")),
    Case("acts-k-0", acts(k=0), ("k", "0")),
    Case("acts-k-neg", acts(k=-1), ("k", "-1")),
    Case("acts-k-float", acts(k=1.5), ("k", "1.5")),
    Case("acts-batch_size-0", acts(batch_size=0), ("batch_size", "0")),
    Case("acts-batch_size-float", acts(batch_size=2.5), ("batch_size", "2.5")),
    Case("acts-limit-0", acts(limit=0), ("limit", "0")),
    Case("acts-limit-neg", acts(limit=-1), ("limit", "-1")),
    Case("acts-limit-float", acts(limit=1.5), ("limit", "1.5")),
    Case("acts-limit-huge", acts(limit=10**9), accepted=_whole_corpus),
    Case("acts-k-huge", acts(k=10**9), ("k=1000000000",)),
    Case("acts-before-huge", acts(before=10**9), ("1000000000",)),
    Case("acts-before-neg", acts(before=-1), ("before", "-1")),
    Case("acts-before-float", acts(before=1.5), ("before", "1.5")),
    Case("acts-after-neg", acts(after=-1), ("after", "-1")),
    Case("acts-after-str", acts(after="2"), ("after", "'2'")),
]


@pytest.fixture(scope="module")
def ctx(toy_model):
    return SimpleNamespace(m=toy_model, metric=interp.token_logprob(toy_model, "i"),
                           digest=weights_digest(toy_model))


@pytest.mark.parametrize("case", params(CASES))
def test_bad_input(case, ctx):
    run_case(case, ctx, [ctx.m])


def test_no_weight_changed(ctx):
    assert weights_digest(ctx.m) == ctx.digest
