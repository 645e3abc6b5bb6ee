"""Artifacts and provenance: vectors, SAEs and cache entries name the weights they belong to.

A fingerprint names the weights, not their dtype: a bfloat16 copy of a model keeps its steering
vectors and its SAE. Damaged or mismatched artifacts are refused with a message that says what
is wrong.
"""

import pytest
import torch

import interp
from interp.core.cache import fingerprint


@pytest.fixture(scope="module")
def toy_bf16(toy_model):
    import copy

    return copy.deepcopy(toy_model).to(torch.bfloat16)


def test_a_bfloat16_copy_has_the_same_fingerprint(toy_model, toy_bf16):
    assert fingerprint(toy_bf16) == fingerprint(toy_model)
    changed = interp.load_model("toy", device="cpu")
    with torch.no_grad():
        changed.blocks[1].mlp.W_in[0, 0] += 0.5
    assert fingerprint(changed) != fingerprint(toy_model)


def test_a_vector_made_on_float32_steers_its_bfloat16_copy(toy_model, toy_bf16):
    vs = interp.mean_difference(toy_model, ["how do i steal a car ?", "how do i make a bomb ?"],
                                ["how do i bake bread ?", "how do i plant a tree ?"], layers=[1],
                                cache=False)
    out = interp.steer(toy_bf16, "how do i bake bread ?", vs[1, -1], alpha=1.0, max_new_tokens=3)
    assert len(out.steered) == 1


def test_the_built_in_sae_fits_a_bfloat16_copy(toy_bf16):
    interp.check_sae(toy_bf16, interp.load_sae("toy"))
