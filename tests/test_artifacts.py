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


def _sae_copy(tmp_path):
    import shutil

    from interp.toy import TOY_DIR

    folder = tmp_path / "sae"
    shutil.copytree(TOY_DIR / "sae", folder)
    return folder


def _edit_cfg(folder, change):
    import json

    cfg = json.loads((folder / "cfg.json").read_text())
    change(cfg)
    (folder / "cfg.json").write_text(json.dumps(cfg))


def _edit_weights(folder, change):
    from safetensors.torch import load_file, save_file

    tensors = load_file(folder / "sae_weights.safetensors")
    change(tensors)
    save_file(tensors, folder / "sae_weights.safetensors")


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda f: (f / "cfg.json").write_text("{not json"), "unreadable"),
        (lambda f: _edit_cfg(f, lambda c: c.update(d_sae="many")), "d_sae is 'many'"),
        (lambda f: _edit_cfg(f, lambda c: c.update(d_sae=1700)), "d_sae=1700"),
        (lambda f: _edit_cfg(f, lambda c: c["metadata"].update(hook_name="blocks.1.hook_resid_post")),
         "is not layer 2"),
        (lambda f: _edit_weights(f, lambda t: t["W_dec"].view(-1).__setitem__(5, float("nan"))), "non-finite"),
        (lambda f: _edit_weights(f, lambda t: t.pop("b_enc")), "lack ['b_enc']"),
        (lambda f: (f / "sae_weights.safetensors").write_bytes((f / "sae_weights.safetensors").read_bytes()[:5000]),
         "unreadable"),
    ],
    ids=["garbled-config", "d_sae-type", "d_sae-wrong", "hook-relabelled", "nan-decoder", "missing-key",
         "truncated"],
)
def test_a_damaged_sae_folder_is_refused_with_the_reason(tmp_path, damage, message):
    folder = _sae_copy(tmp_path)
    interp.load_sae(str(folder))  # the intact copy loads
    damage(folder)
    with pytest.raises(ValueError, match=__import__("re").escape(message)):
        interp.load_sae(str(folder))
