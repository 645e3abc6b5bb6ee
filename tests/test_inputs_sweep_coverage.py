"""The bad-input sweep covers every public function: each exported name that takes arguments
has cases in tests/test_inputs_sweep_*.py (a new public function without them fails here)."""

import inspect

import interp
import test_inputs_sweep_core
import test_inputs_sweep_readout
import test_inputs_sweep_results
import test_inputs_sweep_sae
import test_inputs_sweep_steering

MODULES = (test_inputs_sweep_core, test_inputs_sweep_readout, test_inputs_sweep_steering, test_inputs_sweep_sae,
           test_inputs_sweep_results)

#: public name -> the case-id prefixes that exercise it
PREFIXES = {
    "load_model": ("load_model-",), "model_info": ("model_info-",), "NamedCorpus": ("NamedCorpus-",),
    "ModelProfile": ("ModelProfile-",), "profile_for": ("profile_for-",), "register_profile": ("register_profile-",),
    "set_profile": ("set_profile-",), "format_chat": ("format_chat-",), "tokenize": ("tokenize-",),
    "token_id": ("token_id-",), "hooked": ("hooked-",), "record": ("record-",), "harvest": ("harvest-",),
    "hook_name": ("hook_name-",), "final_logits": ("final_logits-",), "next_tokens": ("next_tokens-",),
    "logit_lens": ("lens-",), "patchscope": ("scope-",), "ablate_neurons": ("ablate-",),
    "logit_diff": ("logit_diff-",), "token_logprob": ("token_logprob-",), "Metric": ("Metric-",),
    "neuron_activations": ("acts-neuron", "acts-corpus", "acts-k", "acts-limit", "acts-before", "acts-after"),
    "rank_neurons": ("rank-",), "separating_neurons": ("sep-",), "SteeringVector": ("vector-", "apply-", "save-", "load-", "check-"),
    "SteeringVectors": ("vectors-", "vs."), "mean_difference": ("md-",), "steer": ("steer-",),
    "steering_grid": ("grid-",), "orthogonalize": ("ortho-",), "select_direction": ("sd-",),
    "refusal_rate": ("rate-",), "refusal_score": ("score-",), "harmless_kl": ("kl-",), "load_sae": ("load_sae-",),
    "check_sae": ("check_sae-",), "default_sae": ("default_sae-",), "feature_activations": ("acts-prompt", "acts-sae", "acts-other", "acts-missing"),
    "feature_vector": ("fvec-",), "search_features": ("search-",), "feature_density": ("density-",),
    "max_activating_examples": ("tops-",), "feature_card": ("card-",), "MaxActivatingExamples": ("examples-", "ex."),
    "LogitLensResult": ("lens.",), "PatchscopeResult": ("scope.",), "FeatureActivations": ("fa.",),
    "NextTokens": ("next.",),
}

#: exported names that take no user input to sweep: exceptions, constants, the Result base class,
#: result types built only by the library (their lookups are swept above where they have any).
NOT_CALLED_BY_USERS = {"ModelNotAvailableError", "LogitMismatchError", "SUPPORTED_MODELS", "Result", "ModelInfo",
                       "AblationResult", "NeuronActivations", "NeuronRanking", "SteeringGrid", "SteerResult",
                       "DirectionSelection", "KLResult", "FeatureSearch", "FeatureCard", "NeuronSeparation",
                       "UnreliableRankingWarning"}


def _ids() -> list[str]:
    return [case.id for module in MODULES for case in module.CASES]


def test_every_public_function_has_cases():
    ids = _ids()
    missing = []
    for name in interp._EXPORTS:
        if name in NOT_CALLED_BY_USERS:
            continue
        obj = getattr(interp, name)
        takes_args = inspect.isclass(obj) or bool(inspect.signature(obj).parameters)
        if takes_args and not any(i.startswith(p) for p in PREFIXES.get(name, ()) for i in ids):
            missing.append(name)
    assert not missing, f"public names without bad-input cases: {missing}"


def test_sweep_counts():
    """Every case id is unique across the sweep, and every module checks its own weights."""
    ids = _ids()
    assert len(ids) == len(set(ids))
    for module in MODULES:
        assert hasattr(module, "test_no_weight_changed")
