"""The experiments read what differs per model from its profile, never from its name.

The profile fields they read (`prompt_set`, `known_neurons`) are validated; GPT-2 small's profile
lists its published number-agreement neurons (layer 10 #2096, layer 9 #1094) and nothing else
differs from the profile it got before; and the singular/plural experiment's anchor step
computes those neurons' ablation effects on a GPT-2-small-shaped random model (12 layers,
3072 neurons each, a narrow residual stream to stay fast; no weights needed).
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from transformer_lens import HookedTransformer

import interp
from interp.core.profiles import GPT2_NUMBER_NEURONS, PROMPT_SETS, ModelProfile, derive_profile
from conftest import experiment_module, gpt2_like_config



@pytest.fixture(scope="module")
def gpt2_shaped(word_tokenizer) -> HookedTransformer:
    """Random weights in GPT-2 small's MLP shape (12 layers x 3072 neurons), named `gpt2`."""
    cfg = gpt2_like_config(
        len(word_tokenizer), model_name="gpt2", n_layers=12, d_model=32, n_heads=2, d_head=16, d_mlp=3072
    )
    torch.manual_seed(0)
    return HookedTransformer(cfg, tokenizer=word_tokenizer).eval()


# --- the fields -----------------------------------------------------------------------------------


def test_prompt_set_is_validated():
    assert ModelProfile("m").prompt_set == "english" and PROMPT_SETS == ("english", "toy")
    for bad in ("French", "", None, 3):
        with pytest.raises(ValueError, match=r"prompt_set .*allowed: 'english', 'toy'"):
            ModelProfile("m", prompt_set=bad)


@pytest.mark.parametrize(
    "bad, words",
    [
        ([(10, 2096)], ("known_neurons", "mapping")),
        ({"": ((1, 2),)}, ("known_neurons key ''", "non-empty string")),
        ({3: ((1, 2),)}, ("known_neurons key 3",)),
        ({"agreement": ()}, ("known_neurons['agreement']", "non-empty tuple")),
        ({"agreement": (10, 2096)}, ("known_neurons['agreement'] = (10, 2096)", "(layer, neuron) pairs")),
        ({"agreement": ((10, -1),)}, ("(10, -1)", "non-negative ints")),
        ({"agreement": ((10, 2.5),)}, ("2.5",)),
        ({"agreement": ((True, 1),)}, ("True",)),
        ({"agreement": ((1, 2, 3),)}, ("(1, 2, 3)",)),
        ({"agreement": "L10.2096"}, ("'L10.2096'",)),
    ],
)
def test_known_neurons_are_validated(bad, words):
    with pytest.raises(ValueError) as err:
        ModelProfile("m", known_neurons=bad)
    for word in words:
        assert word in str(err.value), (word, str(err.value))


def test_known_neurons_are_stored_read_only_as_tuples():
    profile = ModelProfile("m", known_neurons={"agreement": [[10, 2096], (9, 1094)]})
    assert dict(profile.known_neurons) == {"agreement": ((10, 2096), (9, 1094))}
    with pytest.raises(TypeError):
        profile.known_neurons["other"] = ((0, 0),)  # type: ignore[index]
    assert dict(ModelProfile("m").known_neurons) == {}


def test_builtin_profiles_say_which_prompts_their_models_read():
    profiles = interp.core.profiles.registered_profiles()
    assert profiles["toy"].prompt_set == "toy"
    assert profiles["smollm2-135m-instruct"].prompt_set == "english"
    assert dict(profiles["toy"].known_neurons) == dict(profiles["smollm2-135m-instruct"].known_neurons) == {}


# --- GPT-2 small's profile -----------------------------------------------------------------------


def test_gpt2_profile_gives_the_anchors_and_nothing_else_new(gpt2_shaped):
    profile = interp.profile_for(gpt2_shaped)
    assert profile.name == "gpt2" and profile.prompt_set == "english"
    assert dict(profile.known_neurons) == {"number agreement": ((10, 2096), (9, 1094))} == {
        "number agreement": GPT2_NUMBER_NEURONS
    }
    # everything else is what a model named gpt2 got before (derived: no chat template, the defaults)
    derived = derive_profile(gpt2_shaped)
    assert profile.processed_weights  # sae-lens' gpt2-small SAEs read transformer-lens-processed activations
    assert dataclasses.replace(profile, known_neurons={}, processed_weights=False) == derived
    assert profile.chat_template is None and profile.default_corpus is None and not profile.chat
    assert dict(profile.patchscope_presets) == dict(derived.patchscope_presets)
    assert profile.refusal_tokens == derived.refusal_tokens and profile.prepend_bos is None
    small = interp.core.profiles.registered_profiles()["gpt2-small"]  # its transformer-lens alias
    assert dataclasses.replace(small, name="gpt2") == profile and small.known_neurons == profile.known_neurons
    assert interp.default_sae(gpt2_shaped) is None  # no SAE shipped for it, as before


def test_other_gpt2_sizes_list_no_neurons(word_tokenizer):
    cfg = gpt2_like_config(len(word_tokenizer), model_name="gpt2-medium")
    model = HookedTransformer(cfg, tokenizer=word_tokenizer).eval()
    assert dict(interp.profile_for(model).known_neurons) == {}


# --- the experiments read the profile ------------------------------------------------------------


def test_singular_plural_anchor_step_ablates_the_gpt2_neurons(gpt2_shaped):
    sp = experiment_module("singular_plural_neurons")
    # a gpt2 profile reads English: the bundled nouns, cased (not the built-in corpus)
    train, held = sp.prompt_sets(gpt2_shaped, sp.Config(n_train=4, n_heldout=4))
    assert len(train) == len(held) == 4 and all(p.prompt.startswith("The ") for p in train + held)

    item = sp.Item
    held = [
        item("the key to the cabinets", False, "is", "are"),
        item("the keys to the cabinet", True, "are", "is"),
    ]
    train = [item("the cat on the mat", False, "is", "are"), held[1]]
    effects = sp.known_neurons(gpt2_shaped, held, train)
    assert set(effects) == {"L10.2096", "L9.1094"}

    # each number is the real effect of zeroing that neuron: recompute it by editing W_out
    tokens, mask = interp.tokenize(gpt2_shaped, [p.prompt for p in held])
    good = torch.tensor([interp.token_id(gpt2_shaped, p.good) for p in held])
    bad = torch.tensor([interp.token_id(gpt2_shaped, p.bad) for p in held])
    rows = torch.arange(len(held))

    def mean_diff() -> float:
        with torch.inference_mode():
            logits = gpt2_shaped(tokens, attention_mask=mask)[:, -1]
        return float((logits[rows, good] - logits[rows, bad]).mean())

    before = mean_diff()
    for layer, neuron in GPT2_NUMBER_NEURONS:
        got = effects[f"L{layer}.{neuron}"]
        w_out = gpt2_shaped.blocks[layer].mlp.W_out
        saved = w_out.data[neuron].clone()
        try:
            w_out.data[neuron] = 0.0
            drop = before - mean_diff()
        finally:
            w_out.data[neuron] = saved
        assert math.isfinite(got["logit_diff_drop"]) and got["logit_diff_drop"] != 0.0
        assert got["logit_diff_drop"] == pytest.approx(drop, abs=1e-4)
        assert 0.0 <= got["accuracy_after"] <= 1.0 and 0.0 <= got["top1_changed"] <= 1.0


def test_no_anchors_without_known_neurons(gpt2_like):
    sp = experiment_module("singular_plural_neurons")
    held = [sp.Item("the key to the cabinets", False, "is", "are")]
    assert sp.known_neurons(gpt2_like, held, held) == {}  # tiny-gpt2: its profile lists none


def test_a_shrunken_gpt2_skips_neurons_it_lacks(word_tokenizer):
    sp = experiment_module("singular_plural_neurons")
    cfg = gpt2_like_config(len(word_tokenizer), model_name="gpt2")
    model = HookedTransformer(cfg, tokenizer=word_tokenizer)
    held = [sp.Item("the key to the cabinets", False, "is", "are")]
    assert sp.known_neurons(model.eval(), held, held) == {}  # 3 layers x 64 neurons: neither exists


def test_experiments_pick_prompts_by_prompt_set(gpt2_shaped, toy_model):
    """English for a gpt2 profile, the built-in corpus for the toy profile (which the quick runs in
    test_experiments.py check end to end)."""
    names = ("logit_lens", "task_vectors", "backpatching", "refusal_direction")
    lens, tv, bp, rd = (experiment_module(n) for n in names)
    assert lens.prompt_set(toy_model, lens.Config(n_prompts=2))[0][0].startswith("the capital of ")
    english = ["antonyms", "country_capital", "english_french"]
    assert [t.name for t in tv.tasks_for(gpt2_shaped, tv.Config())] == english
    assert [t.name for t in tv.tasks_for(toy_model, tv.Config())] == list(interp.toy.corpus.ICL_TASKS)
    assert bp.queries(gpt2_shaped, bp.Config()) == interp.data.records("two_hop")
    assert rd.requests(gpt2_shaped, "train")[0] == interp.data.prompts("harmful", "train")
    assert rd.requests(toy_model, "train")[0] == interp.data.prompts("toy_harmful", "train")


def test_sae_features_asks_for_an_sae_where_none_is_shipped(gpt2_shaped, tmp_path):
    sae = experiment_module("sae_features")
    with pytest.raises(ValueError, match=r"no SAE is shipped for 'gpt2' \(shipped: toy, .*--sae RELEASE"):
        sae.run(sae.Config(out=str(tmp_path)), model=gpt2_shaped)


def test_known_neurons_take_numpy_ints_as_every_index_argument_does():
    import numpy as np

    profile = ModelProfile("numpy-ints", known_neurons={"x": ((np.int64(1), np.int32(2)),)})
    assert profile.known_neurons["x"] == ((1, 2),) and type(profile.known_neurons["x"][0][0]) is int
