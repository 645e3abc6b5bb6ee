"""Ranking neurons by attribution and reading where a neuron fires."""

import numpy as np
import pytest
import torch
from transformer_lens import HookedTransformer

import interp
from interp.core.hooks import count_hooks, harvest, hooked
from interp.neurons.ablation import ablate_neurons
from interp.neurons.activations import neuron_activations
from interp.neurons.attribution import rank_neurons
from interp.neurons.metrics import logit_diff, token_logprob

from conftest import gpt2_like_config

PROMPTS = [
    "the cat sat on the mat", "the key to the cabinets", "hello", "the capital of france is", "a dog is",
]


@pytest.fixture(autouse=True)
def _one_thread():
    """Small batches on tiny models: one thread is as fast, and far faster on a loaded machine
    (two OpenMP threads on two busy cores spend most of their time waiting for each other)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _counter(counts, key):
    def fn(act, hook):
        counts[key] = counts.get(key, 0) + 1

    return fn


@pytest.fixture(scope="module")
def linear_tail(word_tokenizer):
    """No normalisation: the last layer's neurons act linearly on the logits, so attribution
    patching of zero ablation there is exact."""
    torch.manual_seed(3)
    cfg = gpt2_like_config(len(word_tokenizer), normalization_type=None)
    model = HookedTransformer(cfg, tokenizer=word_tokenizer)
    return model.eval()


def test_attribution_is_exact_where_the_model_is_linear(linear_tail):
    model = linear_tail
    metric = logit_diff(model, "is", "are")
    r = rank_neurons(model, PROMPTS, metric, layers=[-1], k=8, by="magnitude", progress=False)
    torch.testing.assert_close(r.attribution, r.ablation, atol=1e-4, rtol=1e-3)
    assert r.spearman == pytest.approx(1.0), r.to_frame()
    assert r.layers == (2,) and r.scores.shape == (1, 64)
    # "magnitude" ranks by |score|, and each verified number is a real single-neuron ablation
    assert torch.equal(r.attribution.abs(), r.scores.abs().flatten().sort(descending=True).values[:8])
    one = ablate_neurons(model, PROMPTS, [r.neurons[0]], targets=["is"], metric=metric, progress=False)
    assert one.metric_change == pytest.approx(float(r.ablation[0]), abs=1e-4)


def test_scores_match_autograd_and_use_one_forward_and_one_backward(tiny_model):
    model = tiny_model
    metric = token_logprob(model, "is")
    counts: dict[str, int] = {}
    with hooked(model, [("hook_embed", _counter(counts, "forward"))]):
        r = rank_neurons(model, PROMPTS, metric, k=4, batch_size=64, progress=False)
    # one forward (+ its backward) for all scores, one batched forward verifying all 4 neurons
    assert counts["forward"] == 2, counts
    assert r.scores.shape == (3, 64) and r.layers == (0, 1, 2)
    # "decrease" (the default): the lowest predicted changes, in order
    assert torch.equal(r.attribution, r.scores.flatten().sort().values[:4]), r.to_frame()
    # reference: per prompt, (0 - act) * d metric / d act, summed over positions, mean over prompts
    names = [f"blocks.{i}.mlp.hook_post" for i in range(3)]
    total = torch.zeros(3, 64)
    for p in PROMPTS:
        store = {}

        def keep(act, hook):
            store[hook.name] = act
            return act

        with hooked(model, [(n, keep) for n in names]):
            logits = model(model.to_tokens(p))[:, -1]
            value = torch.log_softmax(logits, -1)[0, model.tokenizer.convert_tokens_to_ids("is")]
            grads = torch.autograd.grad(value, [store[n] for n in names])
        total += torch.stack([(-store[n] * g).sum((0, 1)).detach() for n, g in zip(names, grads)])
    torch.testing.assert_close(r.scores, total / len(PROMPTS), atol=1e-4, rtol=1e-3)
    assert count_hooks(model) == 0


def test_mean_and_resample_rankings_verify_with_the_same_ablation(gpt2_like):
    model = gpt2_like
    metric = logit_diff(model, "is", "are")
    ref = ["the keys to the cabinet are", "big cat", "how do i make bread ?"]
    for method in ("mean", "resample"):
        r = rank_neurons(model, PROMPTS, metric, layers=[0, 2], k=3, method=method, reference=ref,
                         progress=False)
        real = ablate_neurons(model, PROMPTS, [r.neurons[1]], method=method, reference=ref, targets=["is"],
                              metric=metric, progress=False)
        assert real.metric_change == pytest.approx(float(r.ablation[1]), abs=1e-4), (method, r.to_frame())
        assert {layer for layer, _ in r.neurons} <= {0, 2}
    fig = r.plot()
    assert len(fig.data) == 2 and "Spearman" in fig.layout.title.text
    assert list(r.to_frame().columns) == ["rank", "layer", "neuron", "attribution", "ablation",
                                          "sign_agrees"]
    unverified = rank_neurons(model, PROMPTS, metric, k=3, verify=False, progress=False)
    assert unverified.ablation is None and len(unverified.plot().data) == 1


def test_rank_neurons_bad_input(gpt2_like):
    model = gpt2_like
    metric = logit_diff(model, "is", "are")
    with pytest.raises(ValueError, match=r"k=0 must be an int in \[1, 192\]"):
        rank_neurons(model, PROMPTS, metric, k=0)
    with pytest.raises(ValueError, match=r"layers is \[\]"):
        rank_neurons(model, PROMPTS, metric, layers=[])
    with pytest.raises(ValueError, match="layer 5 is out of range"):
        rank_neurons(model, PROMPTS, metric, layers=[5])
    with pytest.raises(ValueError, match="by is 'up'"):
        rank_neurons(model, PROMPTS, metric, by="up")
    with pytest.raises(ValueError, match="method='mean' needs a reference"):
        rank_neurons(model, PROMPTS, metric, method="mean")
    with pytest.raises(ValueError, match=r"returned \(\)"):
        rank_neurons(model, PROMPTS, lambda logits: logits.sum(), progress=False)


def test_neuron_activations_streams_the_exact_top_k(tiny_model):
    model = tiny_model
    corpus = [f"{a} {b}" for a in PROMPTS for b in PROMPTS]  # 25 texts
    counts: dict[str, int] = {}
    hooks = [("blocks.1.mlp.hook_post", _counter(counts, "layer1")),
             ("blocks.2.hook_resid_pre", _counter(counts, "after"))]
    with hooked(model, hooks):
        res = neuron_activations(model, (t for t in corpus), (1, 6), k=5, batch_size=4, progress=False)
    assert counts == {"layer1": 7}, counts  # 7 batches of <= 4 texts, never past layer 1
    assert res.n_examples == 25
    values = []
    for text in corpus:
        acts = harvest(model, model.to_tokens(text), [("mlp_post", 1)])["blocks.1.mlp.hook_post"][0, 1:, 6]
        values.append(acts)  # the <bos> position is left out
    allv = torch.cat(values)
    torch.testing.assert_close(res.values, allv.topk(5).values, atol=1e-5, rtol=1e-5)
    assert res.n_tokens == allv.numel()
    assert res.density == pytest.approx(float((allv > 0).float().mean()))
    assert res.mean == pytest.approx(float(allv.mean()), abs=1e-5)
    assert int(res.hist_counts.sum()) == int((allv > 0).sum())
    # each context is centred on its top token, whose activation is the value
    j = 0
    ex, pos = int(res.example[j]), int(res.position[j])
    tokens = model.to_str_tokens(corpus[ex])
    assert res.contexts[j][res.before] == tokens[pos + 1]
    assert float(res.context_acts[j, res.before]) == pytest.approx(float(res.values[j]))
    frame = res.to_frame()
    assert frame["context"].iloc[0].count("[") == 1 and len(frame) == 5
    fig = res.plot()
    assert fig.data[0].type == "heatmap" and fig.data[0].text[0][res.before] == res.contexts[0][res.before]
    assert res.plot_histogram().layout.xaxis.type == "log"


def test_neuron_activations_bad_input(gpt2_like):
    with pytest.raises(ValueError, match="neuron index 99 is out of range for layer 0"):
        neuron_activations(gpt2_like, PROMPTS, (0, 99))
    with pytest.raises(ValueError, match="layer -4 is out of range"):
        neuron_activations(gpt2_like, PROMPTS, (-4, 0))
    with pytest.raises(ValueError, match="k=0 must be a positive int"):
        neuron_activations(gpt2_like, PROMPTS, (0, 1), k=0)
    with pytest.raises(ValueError, match="is empty"):
        neuron_activations(gpt2_like, ["", " "], (0, 1))


def test_neuron_activations_is_max_activating_examples_for_one_neuron(tiny_model):
    model = tiny_model
    corpus = [f"{a} {b}" for a in PROMPTS for b in PROMPTS]
    res = neuron_activations(model, corpus, (-2, 6), k=7, before=3, after=1, batch_size=4, progress=False)
    top = interp.max_activating_examples(model, (1, 6), corpus, k=7, context=(3, 1), batch_size=4,
                                         max_len=model.cfg.n_ctx, cache=False, progress=False)
    assert (res.layer, res.index) == (1, 6)
    torch.testing.assert_close(res.values, top.values[0])
    assert torch.equal(res.example, top.example[0]) and torch.equal(res.position, top.position[0])
    torch.testing.assert_close(res.context_acts, top.context_acts[0])
    assert [list(c) for c in res.contexts] == [top.strs(row) for row in top.context_tokens[0]]
    assert torch.equal(res.hist_counts, top.hist[0]) and res.density == pytest.approx(float(top.density[0]))
    assert (res.n_tokens, res.n_examples) == (top.n_tokens, top.n_examples)
    frame = top.to_frame(6)
    assert frame["activation"].tolist() == pytest.approx(res.to_frame()["activation"].tolist()[:len(frame)])
    assert isinstance(res, interp.Result) and "NeuronActivations L1.N6" in res._repr_html_()
    assert count_hooks(model) == 0


def test_neuron_activations_old_spellings_warn_and_agree(gpt2_like):
    model = gpt2_like
    new = neuron_activations(model, PROMPTS, (1, 6), k=3, progress=False)
    with pytest.warns(DeprecationWarning, match=r"pass one pair"):
        positional = neuron_activations(model, PROMPTS, 1, 6, k=3, progress=False)
    with pytest.warns(DeprecationWarning, match="use neuron="):
        keywords = neuron_activations(model, PROMPTS, layer=1, index=6, k=3, progress=False)
    with pytest.warns(DeprecationWarning, match="use corpus="):
        renamed = neuron_activations(model, prompts_or_corpus=PROMPTS, neuron=(1, 6), k=3, progress=False)
    with pytest.warns(DeprecationWarning, match="skip_bos"):
        bos = neuron_activations(model, PROMPTS, (1, 6), k=3, skip_bos=True, progress=False)
    for old in (positional, keywords, renamed, bos):
        torch.testing.assert_close(old.values, new.values)
        assert old.contexts == new.contexts and old.mean == pytest.approx(new.mean)
    with pytest.raises(ValueError, match="skip_bos=False is no longer supported"):
        neuron_activations(model, PROMPTS, (1, 6), skip_bos=False)
    with pytest.raises(TypeError, match="unexpected keyword argument 'layers'"):
        neuron_activations(model, PROMPTS, (1, 6), layers=1)
    with pytest.raises(TypeError, match=r"one \(layer, index\) pair"):
        neuron_activations(model, PROMPTS, layer=1)


def test_toy_neuron_activations_over_the_corpus(toy_model):
    from interp.toy.corpus import documents

    model = toy_model
    ranking = interp.rank_neurons(model, ["the key to the cabinets", "the keys to the cabinet"],
                                  lambda logits: logits[:, 5], k=1, verify=False, progress=False)
    layer, index = ranking.neurons[0]
    res = neuron_activations(model, documents(300, seed=3), (layer, index), k=10, progress=False)
    assert res.n_examples == 300 and res.n_tokens > 3000, (res.n_examples, res.n_tokens)
    assert torch.all(res.values[:-1] >= res.values[1:]), res.values
    text = list(documents(300, seed=3))[int(res.example[0])]
    name = f"blocks.{layer}.mlp.hook_post"
    acts = harvest(model, model.to_tokens(text), [name])[name][0, 1:, index]
    assert float(acts.max()) == pytest.approx(float(res.values[0]), abs=1e-4), (float(acts.max()), res.values)
    assert np.isfinite(res.context_acts.numpy()).all()
