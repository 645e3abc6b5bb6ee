"""`separating_neurons`: every MLP neuron scored by how well it separates two prompt groups."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import pytest
import torch

import interp
from interp.core.hooks import harvest, hook_name
from interp.neurons import NeuronSeparation, separating_neurons

POS = ["the cat sat on the mat", "the dog sat on the mat", "a cat is on the mat", "the cat was on a mat"]
NEG = ["the capital of france is", "the capital of germany is", "paris is in france", "berlin is in germany"]


def _last_acts(model, prompts, layer):
    tokens, mask = interp.tokenize(model, prompts)
    name = hook_name(model, "mlp_post", layer)
    return harvest(model, tokens, [name], attention_mask=mask)[name][:, -1].double()


def test_scores_match_a_direct_computation(tiny_model):
    sep = separating_neurons(tiny_model, POS, NEG, layers=[0, -1], k=5, progress=False)
    assert isinstance(sep, NeuronSeparation) and sep.layers == (0, tiny_model.cfg.n_layers - 1)
    assert sep.d.shape == sep.auc.shape == (2, tiny_model.cfg.d_mlp)
    a, b = _last_acts(tiny_model, POS, -1), _last_acts(tiny_model, NEG, -1)  # left padding: last column
    pooled = ((a.var(0) * 3 + b.var(0) * 3) / 6).sqrt()
    assert torch.allclose(sep.d[1], ((a.mean(0) - b.mean(0)) / pooled).float(), atol=1e-4)
    assert torch.allclose(sep.mean_positive[1], a.mean(0).float(), atol=1e-5)
    # AUC by brute force over all 16 (pos, neg) pairs, ties counted half
    gt = (a[:, None] > b[None]).double() + 0.5 * (a[:, None] == b[None]).double()
    assert torch.allclose(sep.auc[1], gt.mean((0, 1)).float(), atol=1e-6)
    # the top k are the largest |d|, in order
    flat = sep.d.abs().flatten()
    want = flat.sort(descending=True).indices[:5]
    d_mlp = tiny_model.cfg.d_mlp
    assert list(sep.neurons) == [(sep.layers[int(i) // d_mlp], int(i) % d_mlp) for i in want]
    assert (sep.top("d").abs().diff() <= 1e-6).all()


def test_direction_and_auc_ranking(gpt2_like):
    up = separating_neurons(gpt2_like, POS, NEG, k=4, by="positive", progress=False)
    down = separating_neurons(gpt2_like, POS, NEG, k=4, by="negative", progress=False)
    assert (up.top("d") > 0).all() and (down.top("d") < 0).all()
    swapped = separating_neurons(gpt2_like, NEG, POS, k=4, by="negative", progress=False)
    assert swapped.neurons == up.neurons  # swapping the groups flips every sign
    assert torch.allclose(swapped.d, -up.d, atol=1e-5) and torch.allclose(swapped.auc, 1 - up.auc, atol=1e-5)
    by_auc = separating_neurons(gpt2_like, POS, NEG, k=4, score="auc", progress=False)
    assert ((by_auc.top("auc") - 0.5).abs() >= (by_auc.auc - 0.5).abs().max() - 1e-6).any()


def test_a_planted_neuron_is_found_and_ablatable(toy_model):
    """On the built-in model, number neurons separate singular from plural subjects perfectly,
    and the result feeds `ablate_neurons`, which then lowers agreement more than random neurons."""
    ps = interp.toy.corpus.agreement_prompts("train", 64, seed=0)
    sing = [p.prompt for p in ps if not p.plural_subject]
    plur = [p.prompt for p in ps if p.plural_subject]
    sep = separating_neurons(toy_model, sing, plur, k=10, progress=False)
    assert (sep.top("auc") - 0.5).abs().min() >= 0.45 and sep.top("d").abs().min() > 2.0
    held = interp.toy.corpus.agreement_prompts("heldout", 48, seed=1)
    metric = interp.logit_diff(toy_model, [p.correct[0] for p in held], [p.wrong[0] for p in held])
    prompts = [p.prompt for p in held]
    top = interp.ablate_neurons(toy_model, prompts, list(sep.neurons), metric=metric, progress=False)
    from interp.core.controls import random_neurons

    rand = interp.ablate_neurons(toy_model, prompts, random_neurons(toy_model, list(sep.neurons), seed=0),
                                 metric=metric, progress=False)
    assert -top.metric_change > 3 * max(-rand.metric_change, 0.0) and -top.metric_change > 0.1


def test_result_views(gpt2_like):
    sep = separating_neurons(gpt2_like, POS, NEG, k=3, positions=[-2, -1], progress=False)
    frame = sep.to_frame()
    assert isinstance(frame, pd.DataFrame) and len(frame) == 3
    assert list(frame.columns) == ["rank", "layer", "neuron", "d", "auc", "mean_positive", "mean_negative"]
    assert isinstance(sep.plot(), go.Figure) and "NeuronSeparation of 4 vs 4" in sep.summary()
    assert sep.positions == (-2, -1) and "<table" in sep._repr_html_()
    assert interp.separating_neurons is separating_neurons and interp.NeuronSeparation is NeuronSeparation


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"negative": ["one prompt"]}, ValueError, "negative has 1 prompt"),
        ({"positive": []}, ValueError, "no prompts given in positive"),
        ({"k": 0}, ValueError, "k is 0"),
        ({"k": 10**6}, ValueError, "k is 1000000"),
        ({"layers": [7]}, ValueError, "7"),
        ({"score": "t"}, ValueError, "score is 't'"),
        ({"by": "up"}, ValueError, "by is 'up'"),
        ({"positions": "first"}, ValueError, "positions 'first'"),
        ({"batch_size": 0}, ValueError, "batch_size is 0"),
    ],
)
def test_bad_input(gpt2_like, kwargs, error, match):
    args = {"positive": POS, "negative": NEG, **kwargs}
    with pytest.raises(error, match=match):
        separating_neurons(gpt2_like, args.pop("positive"), args.pop("negative"), progress=False, **args)
