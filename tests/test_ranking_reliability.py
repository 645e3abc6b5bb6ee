"""`rank_neurons` reports its own verification: a reliability verdict on the linear estimate."""

from __future__ import annotations

import warnings

import pytest
import torch

import interp
from interp.core.readout import last_logits
from interp.neurons.attribution import UnreliableRankingWarning, verdict

PROMPTS = ["the cat sat on the mat", "the capital of france is", "the dog was on a mat", "paris is in france"]


def test_reliable_on_the_built_in_model(toy_model):
    ps = interp.toy.corpus.agreement_prompts("train", 48, seed=0)
    metric = interp.logit_diff(toy_model, [p.correct[0] for p in ps], [p.wrong[0] for p in ps])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnreliableRankingWarning)  # a reliable ranking does not warn
        r = interp.rank_neurons(toy_model, [p.prompt for p in ps], metric, k=8, progress=False)
    assert r.reliable is True and r.spearman >= 0.5 and r.sign_agreement >= 0.7
    assert "reliable: Spearman" in r.summary() and "reliable" in r.plot().layout.title.text
    frame = r.to_frame()
    assert frame.attrs["verdict"].startswith("reliable") and frame["sign_agrees"].mean() == r.sign_agreement
    assert repr(r) == r.summary()


def _curved_metric(model, prompts, token: int):
    """m = x + 1000 (x - x0)^2 for x the token's logit and x0 its clean value: the gradient at the
    clean point is that of x alone, but any real change of x is dominated by the square, which is
    always positive. Neurons predicted to lower m most (most negative dx) raise it most: the
    linear estimate is wrong in sign and in order, by construction."""
    tokens, mask = interp.tokenize(model, prompts)
    with torch.inference_mode():
        x0 = last_logits(model, tokens, mask)[:, token].float().clone()

    def metric(logits, rows):
        x = logits[:, token].float()
        return x + 1000 * (x - x0.to(x.device)[rows]) ** 2

    return metric


def test_unreliable_when_the_metric_is_not_linear(gpt2_like):
    token = interp.token_id(gpt2_like, "paris")
    metric = _curved_metric(gpt2_like, PROMPTS, token)
    with pytest.warns(UnreliableRankingWarning, match="unreliable.*read .ablation"):
        r = interp.rank_neurons(gpt2_like, PROMPTS, metric, k=8, progress=False)
    assert r.reliable is False
    assert r.spearman < 0 and r.sign_agreement <= 0.3  # predicted decreases, measured increases
    assert (r.ablation > 0).all() and (r.attribution < 0).all()
    assert "UNRELIABLE" in r.summary() and "UNRELIABLE" in r.plot().layout.title.text
    assert r.to_frame().attrs["verdict"].startswith("UNRELIABLE") and not r.to_frame()["sign_agrees"].any()


def test_unverified_and_too_few(gpt2_like):
    metric = interp.token_logprob(gpt2_like, "paris")
    r = interp.rank_neurons(gpt2_like, PROMPTS, metric, k=5, verify=False, progress=False)
    assert r.reliable is None and r.verdict.startswith("unverified")
    r2 = interp.rank_neurons(gpt2_like, PROMPTS, metric, k=2, progress=False)
    assert r2.reliable is None and "only 2 neuron(s) verified" in r2.reliability


def test_thresholds_are_checked_and_used(gpt2_like):
    metric = interp.token_logprob(gpt2_like, "paris")
    with pytest.raises(ValueError, match="min_spearman is 2.0"):
        interp.rank_neurons(gpt2_like, PROMPTS, metric, min_spearman=2.0)
    with pytest.raises(ValueError, match="min_sign_agreement is nan"):
        interp.rank_neurons(gpt2_like, PROMPTS, metric, min_sign_agreement=float("nan"))
    a, m = torch.tensor([-3.0, -2.0, -1.0, -0.5]), torch.tensor([-1.0, -2.0, -0.1, 0.2])
    assert verdict(a, m, 0.4)[0] is False and verdict(a, m, 0.4, min_spearman=0.3)[0] is True
    assert verdict(a, m, 0.9, min_sign_agreement=0.8)[0] is False  # 3 of 4 signs agree
    assert verdict(a, m, float("nan"))[0] is False  # a constant column has no rank correlation
