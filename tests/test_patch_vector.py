"""`patchscope(source_vector=...)`: patching a given vector equals patching the prompt state it
was read from."""

from __future__ import annotations

import pytest
import torch

import interp
from interp.core.hooks import harvest, hook_name

SOURCE = "the capital of france is"
TARGET = "cat -> cat ; dog -> dog ; key ->"


def _states(model, prompt: str, site: str) -> torch.Tensor:
    """The prompt's state at its last position at every layer of `site`: [n_layers, d_model]."""
    tokens, mask = interp.tokenize(model, prompt)
    names = [hook_name(model, site, layer) for layer in range(model.cfg.n_layers)]
    acts = harvest(model, tokens, names, attention_mask=mask)
    return torch.stack([acts[n][0, -1] for n in names])


@pytest.mark.parametrize("site", ["resid_pre", "resid_post"])
def test_vector_equals_the_prompt_it_came_from(tiny_model, site):
    states = _states(tiny_model, SOURCE, site)
    kwargs = dict(target=TARGET, placeholder="key", site=site, targets=["paris", "cat"], max_new_tokens=3)
    from_prompt = interp.patchscope(tiny_model, SOURCE, relocate_position=False, **kwargs)
    from_vector = interp.patchscope(tiny_model, source_vector=states, **kwargs)
    assert from_vector.source_layers == from_prompt.source_layers == tuple(range(tiny_model.cfg.n_layers))
    assert from_vector.generations == from_prompt.generations
    assert torch.equal(from_vector.generated_ids, from_prompt.generated_ids)
    assert torch.allclose(from_vector.target_probs, from_prompt.target_probs, atol=1e-5)
    assert torch.allclose(from_vector.first_probs, from_prompt.first_probs, atol=1e-5)
    assert from_vector.source_prompt == "<source vector>" and from_vector.target_prompt == TARGET


def test_vector_back_patching_grid_and_the_position_fix(gpt2_like):
    """A grid with back-patching (targets earlier than sources), and the learned-position fix done
    by hand: the prompt path's relocated state is the vector plus W_pos[placeholder] - W_pos[source]."""
    model = gpt2_like
    states = _states(model, SOURCE, "resid_pre")
    n_src = interp.tokenize(model, SOURCE)[0].shape[1]
    ph = interp.tokenize(model, TARGET)[0].shape[1] - 2  # the placeholder before the last ->
    shifted = states + (model.W_pos[ph] - model.W_pos[n_src - 1]).detach()
    kwargs = dict(target=TARGET, placeholder="key", target_layers=[0, 1, 2], targets="paris",
                  max_new_tokens=2)
    from_prompt = interp.patchscope(model, SOURCE, **kwargs)
    from_vector = interp.patchscope(model, source_vector=shifted, **kwargs)
    assert len(from_vector.source_layers) == 9 and from_vector.is_grid
    assert torch.equal(from_vector.generated_ids, from_prompt.generated_ids)
    assert torch.allclose(from_vector.target_probs, from_prompt.target_probs, atol=1e-5)


def test_one_vector_for_every_layer(gpt2_like):
    v = _states(gpt2_like, SOURCE, "resid_pre")[1]
    one = interp.patchscope(gpt2_like, source_vector=v, target=TARGET, placeholder="key", max_new_tokens=1)
    per_layer = interp.patchscope(gpt2_like, source_vector=v.expand(gpt2_like.cfg.n_layers, -1),
                                  target=TARGET, placeholder="key", max_new_tokens=1)
    assert one.source_layers == (0, 1, 2) and one.first_tokens == per_layer.first_tokens
    only = interp.patchscope(gpt2_like, source_vector=v, target=TARGET, placeholder="key", source_layers=1,
                             max_new_tokens=1)
    assert only.first_tokens == (one.first_tokens[1],)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, TypeError, "needs a source_prompt .* or a source_vector"),
        ({"source_prompt": SOURCE, "source_vector": torch.zeros(32)}, TypeError, "both source_prompt and"),
        ({"source_vector": torch.zeros(31)}, ValueError, r"shape \(31,\): expected \[32\]"),
        ({"source_vector": torch.zeros(2, 32)}, ValueError, r"\[3, 32\] \(one state per layer\)"),
        ({"source_vector": torch.zeros(32, dtype=torch.long)}, TypeError, "floating-point"),
        ({"source_vector": [0.0] * 32}, TypeError, "got list"),
        ({"source_vector": torch.full((32,), float("nan"))}, ValueError, "NaN"),
        ({"source_vector": torch.zeros(32), "source_position": -1}, ValueError, "has no positions"),
        ({"source_vector": torch.zeros(32), "strategy": "one_pass"}, ValueError, "needs a source prompt"),
    ],
)
def test_bad_vectors(gpt2_like, kwargs, error, match):
    with pytest.raises(error, match=match):
        interp.patchscope(gpt2_like, target=TARGET, placeholder="key", **kwargs)
