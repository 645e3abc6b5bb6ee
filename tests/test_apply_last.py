"""`apply_to="last"`: a steering vector acts only at the prompt's last position (Hendel et al.
2023's task-vector placement): earlier prompt positions and every generated position are left
alone, left-padded batches included, with and without the key-value cache."""

from __future__ import annotations

import pytest
import torch

import interp
from interp.core.hooks import hooked
from interp.steering import SteeringVector, steer

PROMPTS = ["hello", "the capital of france is", "cat -> cat ; dog -> dog ; key ->"]
SITE = "blocks.2.hook_resid_pre"


def _vector(model) -> SteeringVector:
    torch.manual_seed(0)
    return SteeringVector(8 * torch.randn(model.cfg.d_model), layer=2)


def _passes(model, v: SteeringVector | None, tokens, mask, use_cache: bool) -> list[torch.Tensor]:
    """The residual stream entering block 2 in every forward pass of a 3-token generation."""
    seen: list[torch.Tensor] = []
    keep = [(SITE, lambda a, hook: seen.append(a.clone()))]
    steering = v.apply(model, apply_to="last") if v is not None else hooked(model, [])
    with steering, hooked(model, keep):
        model.generate(tokens, max_new_tokens=3, do_sample=False, use_past_kv_cache=use_cache,
                       padding_side="left", verbose=False, return_type="tokens")
    return seen


@pytest.mark.parametrize("use_cache", [True, False])
def test_last_changes_only_the_last_prompt_position(tiny_model, use_cache):
    v = _vector(tiny_model)
    tokens, mask = interp.tokenize(tiny_model, PROMPTS)  # left-padded: rows of different lengths
    assert (mask == 0).any(), "the batch must contain padding for this test to mean anything"
    plain = _passes(tiny_model, None, tokens, mask, use_cache)
    steered = _passes(tiny_model, v, tokens, mask, use_cache)
    n = tokens.shape[1]
    first, first_plain = steered[0], plain[0]
    assert first.shape[1] == n
    # prompt pass: every row changed at the last column by exactly the vector, nothing else changed
    assert torch.allclose(first[:, :-1], first_plain[:, :-1])
    assert torch.allclose(first[:, -1] - first_plain[:, -1], v.direction.expand(len(PROMPTS), -1), atol=1e-5)
    # generation steps: the hook never adds the vector there (the steered last position still
    # changes what later positions compute through attention, so compare with an explicit patch)
    patched: list[torch.Tensor] = []

    def patch_last(a, hook, calls=[0]):  # noqa: B006  (a per-call counter)
        calls[0] += 1
        if calls[0] == 1:
            a = a.clone()
            a[:, -1] += v.direction
        elif a.shape[1] > 1:  # no key-value cache: the prompt comes again, patch it again
            a = a.clone()
            a[:, n - 1] += v.direction
        patched.append(a.clone())
        return a

    with hooked(tiny_model, [(SITE, patch_last)]):
        tiny_model.generate(tokens, max_new_tokens=3, do_sample=False, use_past_kv_cache=use_cache,
                            padding_side="left", verbose=False, return_type="tokens")
    assert len(patched) == len(steered) == 3
    for got, want in zip(steered, patched):
        assert torch.allclose(got, want, atol=1e-5)
    if use_cache:  # generation steps see one position each, and are not steered
        assert all(s.shape[1] == 1 for s in steered[1:])


def test_last_through_steer_matches_a_manual_patch(gpt2_like):
    """`steer(..., apply_to="last")` on a left-padded batch gives one-prompt-at-a-time results."""
    v = _vector(gpt2_like)
    batch = steer(gpt2_like, PROMPTS, v, apply_to="last", max_new_tokens=4, chat=False, baseline=True)
    alone = [steer(gpt2_like, p, v, apply_to="last", max_new_tokens=4, chat=False, baseline=False).steered[0]
             for p in PROMPTS]
    assert list(batch.steered) == alone
    assert batch.apply_to == "last"
    assert batch.steered != batch.baseline  # a vector this large changes some completion
    everywhere = steer(gpt2_like, PROMPTS, v, apply_to="prompt", max_new_tokens=4, chat=False, baseline=False)
    tokens, mask = interp.tokenize(gpt2_like, PROMPTS)
    with v.apply(gpt2_like, apply_to="last"):
        last_logits = gpt2_like(tokens, attention_mask=mask)[:, -1]
    with v.apply(gpt2_like, apply_to="prompt"):
        prompt_logits = gpt2_like(tokens, attention_mask=mask)[:, -1]
    assert not torch.allclose(last_logits, prompt_logits)  # "last" is not "prompt"
    assert everywhere.apply_to == "prompt"
