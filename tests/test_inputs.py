"""Bad input, every public function: a clear error naming the argument and the value, before any work.

Each case calls a public function with one bad argument and checks the error type and that the
message names the bad value (or the argument). None may leave a hook on the model.
"""

import math

import pytest
import torch

import interp
from interp.core.hooks import count_hooks

HARM = ["how do i steal a car ?", "how do i make a bomb ?"]
SAFE = ["how do i bake bread ?", "how do i plant a tree ?"]


@pytest.fixture(scope="module")
def vector(toy_model):
    return interp.mean_difference(toy_model, HARM, SAFE, layers=[1], cache=False)[1, -1]


def _cases(vector):
    """(label, call, error type, text the message must contain)."""
    m = None  # filled per test with the model
    return [
        # prompts
        ("tokenize empty", lambda m: interp.tokenize(m, ""), ValueError, "''"),
        ("tokenize None", lambda m: interp.tokenize(m, None), TypeError, "None"),
        ("tokenize int", lambda m: interp.tokenize(m, 3), TypeError, "3"),
        ("tokenize empty list", lambda m: interp.tokenize(m, []), ValueError, "prompts"),
        ("tokenize list with int", lambda m: interp.tokenize(m, ["ok", 3]), TypeError, "3"),
        ("steer empty prompt", lambda m: interp.steer(m, "", vector), ValueError, "''"),
        ("steer None prompt", lambda m: interp.steer(m, None, vector), TypeError, "None"),
        ("steer int prompt", lambda m: interp.steer(m, 3, vector), TypeError, "3"),
        ("steer nan alpha", lambda m: interp.steer(m, "hi", vector, alpha=math.nan), ValueError, "nan"),
        ("steer inf alpha", lambda m: interp.steer(m, "hi", vector, alpha=math.inf), ValueError, "inf"),
        ("steer mode", lambda m: interp.steer(m, "hi", vector, mode="boost"), ValueError, "boost"),
        ("steer apply_to", lambda m: interp.steer(m, "hi", vector, apply_to="middle"), ValueError, "middle"),
        ("steer max_new_tokens 0", lambda m: interp.steer(m, "hi", vector, max_new_tokens=0), ValueError, "0"),
        ("steer batch_size 0", lambda m: interp.steer(m, "hi", vector, batch_size=0), ValueError, "batch_size"),
        ("steer layer", lambda m: interp.steer(m, "hi", vector, layer=9), ValueError, "9"),
        ("steer context", lambda m: interp.steer(m, " ".join(["the cat"] * 27), vector), ValueError, "context of 64"),
        ("mean_difference empty strings", lambda m: interp.mean_difference(m, ["", ""], SAFE), ValueError, "''"),
        ("mean_difference None", lambda m: interp.mean_difference(m, None, SAFE), TypeError, "None"),
        ("mean_difference layers", lambda m: interp.mean_difference(m, HARM, SAFE, layers=[7]), ValueError, "7"),
        ("mean_difference batch_size", lambda m: interp.mean_difference(m, HARM, SAFE, batch_size=0), ValueError,
         "batch_size"),
        ("refusal_score empty", lambda m: interp.refusal_score(m, [""]), ValueError, "''"),
        ("refusal_score none", lambda m: interp.refusal_score(m, []), ValueError, "prompts"),
        ("refusal_score batch_size", lambda m: interp.refusal_score(m, SAFE, batch_size=0), ValueError, "batch_size"),
        ("refusal_rate empty", lambda m: interp.refusal_rate([]), ValueError, "completions"),
        # logit lens
        ("lens empty", lambda m: interp.logit_lens(m, ""), ValueError, "''"),
        ("lens two prompts", lambda m: interp.logit_lens(m, ["a", "b"]), ValueError, "list of 2"),
        ("lens positions", lambda m: interp.logit_lens(m, "the cat", positions=[40]), ValueError, "40"),
        ("lens targets", lambda m: interp.logit_lens(m, "the cat", targets=["zzzqqq"]), KeyError, "zzzqqq"),
        ("lens k", lambda m: interp.logit_lens(m, "the cat", k=0), ValueError, "k"),
        # patchscopes
        ("patchscope empty", lambda m: interp.patchscope(m, ""), ValueError, "''"),
        ("patchscope position", lambda m: interp.patchscope(m, "the cat", source_position=30), ValueError, "30"),
        ("patchscope layers", lambda m: interp.patchscope(m, "the cat", source_layers=[8]), ValueError, "8"),
        ("patchscope targets", lambda m: interp.patchscope(m, "the cat", targets=["zzzqqq"]), KeyError,
         "zzzqqq"),
        ("patchscope max_new_tokens", lambda m: interp.patchscope(m, "the cat", max_new_tokens=0), ValueError,
         "max_new_tokens"),
        # neurons
        ("ablate layer", lambda m: interp.ablate_neurons(m, HARM, [(9, 0)]), ValueError, "9"),
        ("ablate index", lambda m: interp.ablate_neurons(m, HARM, [(0, 99999)]), ValueError, "99999"),
        ("ablate method", lambda m: interp.ablate_neurons(m, HARM, [(0, 1)], method="melt"), ValueError, "melt"),
        ("ablate empty prompts", lambda m: interp.ablate_neurons(m, [], [(0, 1)]), ValueError, "prompts"),
        ("ablate targets", lambda m: interp.ablate_neurons(m, HARM, [(0, 1)], targets=["zzzqqq"]), KeyError,
         "zzzqqq"),
        ("rank nan metric", lambda m: interp.rank_neurons(m, HARM, lambda logits, rows: logits[:, 0] * math.nan),
         ValueError, "nan"),
        ("neuron_activations k", lambda m: interp.neuron_activations(m, SAFE, (0, 1), k=0), ValueError, "k"),
        ("neuron_activations neuron", lambda m: interp.neuron_activations(m, SAFE, (9, 1)), ValueError, "9"),
        # models
        ("load_model name", lambda m: interp.load_model("no-such-model"), ValueError, "no-such-model"),
        ("load_model device", lambda m: interp.load_model("toy", device="tpu"), ValueError, "tpu"),
        ("load_model dtype", lambda m: interp.load_model("toy", dtype="float8"), ValueError, "float8"),
        ("token_id empty", lambda m: interp.token_id(m, ""), KeyError, "''"),
        ("token_id negative", lambda m: interp.token_id(m, -1), KeyError, "-1"),
        ("token_id None", lambda m: interp.token_id(m, None), TypeError, "None"),
    ]


def test_every_bad_input_is_a_clear_error(toy_model, vector):
    failures = []
    for label, call, kind, text in _cases(vector):
        try:
            call(toy_model)
        except kind as err:
            if text not in str(err):
                failures.append(f"{label}: {type(err).__name__} without {text!r}: {err}")
        except Exception as err:  # noqa: BLE001 - a raw error is what this test hunts
            failures.append(f"{label}: raw {type(err).__name__}: {err}")
        else:
            failures.append(f"{label}: no error")
        assert count_hooks(toy_model) == 0, label
    assert not failures, "\n".join(failures)


def test_numpy_numbers_are_accepted_like_python_ones(toy_model, vector):
    """Indices from numpy (argsort, argmax) are ints to a user: they give the same answers."""
    import numpy as np

    sae = interp.load_sae("toy")
    prompt = "the capital of france is"
    lens = interp.logit_lens(toy_model, prompt, positions=[np.int64(-1)], k=np.int64(3))
    assert torch.equal(lens.top_ids, interp.logit_lens(toy_model, prompt, positions=[-1], k=3).top_ids)
    acts = interp.mean_difference(toy_model, HARM, SAFE, layers=[np.int64(1)], cache=False)
    assert torch.equal(acts[1, -1].direction, vector.direction)
    pinned = interp.SteeringVector(vector.direction, layer=np.int64(1), site=vector.site)
    assert type(pinned.layer) is int and pinned.layer == 1
    a = interp.steer(toy_model, "how do i bake bread ?", pinned, alpha=np.float32(4.0), max_new_tokens=3)
    b = interp.steer(toy_model, "how do i bake bread ?", pinned, alpha=4.0, max_new_tokens=3)
    assert a.steered == b.steered
    assert torch.equal(interp.feature_vector(toy_model, sae, np.int64(7)).direction,
                       interp.feature_vector(toy_model, sae, 7).direction)
    assert interp.token_id(toy_model, np.int64(5)) == 5
    with pytest.raises(ValueError, match="True"):
        interp.feature_vector(toy_model, sae, True)
    assert count_hooks(toy_model) == 0


def test_a_zero_vector_may_be_added_but_not_ablated(toy_model):
    """Adding a zero vector is a no-op (a control); ablating it has no direction to remove."""
    zero = torch.zeros(toy_model.cfg.d_model)
    prompt = "how do i bake bread ?"
    res = interp.steer(toy_model, prompt, zero, layer=1, alpha=3.0, max_new_tokens=4)
    assert res.steered == res.baseline
    with pytest.raises(ValueError, match="zero vector"):
        interp.steer(toy_model, prompt, zero, layer=1, mode="ablate", max_new_tokens=4)
    assert count_hooks(toy_model) == 0
