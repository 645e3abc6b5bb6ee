"""The generic SAE trainer (`interp.sae.train.train_sae`) end to end on the built-in model, tiny
budget: harvest once into a folder, epochs over it with sae-lens' trainer, prune, evaluate, save,
reload with the loader's checks; a second call reuses the harvested activations."""

import json
import warnings

import pytest

import interp
from interp.sae.train import stdlib_split, train_sae


def test_generic_trainer_end_to_end_on_the_built_in_model(toy_model, tmp_path):
    from sae_lens import SAE

    from interp.toy.corpus import documents

    texts, held_out = list(documents(1500, seed=3)), list(documents(40, seed=4))
    acts = tmp_path / "acts"
    info = train_sae(toy_model, texts, held_out, layer=1, out_dir=tmp_path / "sae", d_sae=128, k=4, epochs=3,
                     activations_dir=acts, progress=False)
    assert list(acts.glob("*.pt")), "activations are stored for reuse"
    assert info["training_tokens"] == 3 * info["harvested_tokens"] > 0
    assert info["features_trained"] == 128 and info["features_kept"] <= 128 and info["l0"] <= 4
    assert info["explained_variance"] > 0.1, info
    assert info["ce_loss_clean"] <= info["ce_loss_with_sae"] < info["ce_loss_zero_ablated"], info
    assert json.loads((tmp_path / "sae" / "training.json").read_text()) == info
    sae = interp.load_sae(str(tmp_path / "sae"))
    interp.check_sae(toy_model, sae)
    with pytest.raises(ValueError, match="k=200 must be at most d_sae=128"):
        train_sae(toy_model, texts, held_out, layer=1, out_dir=tmp_path / "x", d_sae=128, k=200)


def test_stdlib_split_holds_out_every_tenth_paragraph():
    train, held_out = stdlib_split()
    assert held_out and not set(train) & set(held_out)
    assert 9 <= len(train) / len(held_out) <= 9.1
