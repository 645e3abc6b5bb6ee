"""Batched next-token prediction equals one prompt at a time and the model's own logits."""

import pytest
import torch

import interp
from interp.core.predict import NextTokens, next_tokens

PROMPTS = ["the cat sat on the", "the capital of france is", "a dog", "how do i make bread ?"]


def test_batched_equals_one_at_a_time_and_the_model(tiny_model):
    nt = next_tokens(tiny_model, PROMPTS, k=3, batch_size=3)
    assert nt.ids.shape == (4, 3) and len(nt.top1) == 4 and (nt.probs[:, :-1] >= nt.probs[:, 1:]).all()
    for i, p in enumerate(PROMPTS):
        one = next_tokens(tiny_model, p, k=3)
        assert torch.equal(one.ids[0], nt.ids[i]) and torch.allclose(one.probs[0], nt.probs[i], atol=1e-5)
        with torch.inference_mode():
            logits = tiny_model(interp.tokenize(tiny_model, p)[0])[0, -1].float()
        assert int(logits.argmax()) == int(nt.ids[i, 0])
    assert nt.correct([nt.top1[0], "zzz", nt.top1[2].upper(), "x"]).tolist() == [True, False, True, False]
    assert list(nt.to_frame().columns[:3]) == ["prompt", "top1", "p1"] and nt.plot().data


def test_chat_wraps_in_the_template(gpt2_like):
    before = interp.profile_for(gpt2_like)
    interp.set_profile(
        gpt2_like, interp.ModelProfile("tiny-chat", chat_template="user : {prompt} assistant :")
    )
    try:
        wrapped = next_tokens(gpt2_like, ["how do i make bread ?"], chat=True)
        plain = next_tokens(gpt2_like, ["user : how do i make bread ? assistant :"])
        assert torch.equal(wrapped.ids, plain.ids)
    finally:
        interp.set_profile(gpt2_like, before)  # the session fixture keeps what it had


def test_bad_input(gpt2_like):
    with pytest.raises(ValueError, match="no prompts"):
        next_tokens(gpt2_like, [])
    with pytest.raises(ValueError, match="k=0"):
        next_tokens(gpt2_like, "a", k=0)
    with pytest.raises(ValueError, match="batch_size=0"):
        next_tokens(gpt2_like, "a", batch_size=0)
    with pytest.raises(ValueError, match="ids and probs"):
        NextTokens(
            prompts=("a",), ids=torch.zeros(2, 1, dtype=torch.long), probs=torch.zeros(2, 1), tokens=(("x",),)
        )
    with pytest.raises(ValueError, match="answers for"):
        next_tokens(gpt2_like, "a").correct(["x", "y"])


def test_toy_capitals(toy_model):
    from interp.toy.corpus import COUNTRIES

    nt = next_tokens(toy_model, [f"the capital of {c.country} is" for c in COUNTRIES])
    assert float(nt.correct([c.capital for c in COUNTRIES]).float().mean()) == 1.0
