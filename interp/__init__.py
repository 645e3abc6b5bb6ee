"""interp: a mechanistic-interpretability workbench for TransformerLens models.

A small core (`interp.core`: models, profiles, tokens, hooks, read-out, cache, results,
plotting) and one package per technique: the logit lens (`lens`), patchscopes (`patching`),
neuron ablation and attribution (`neurons`), steering vectors (`steering`) and
sparse-autoencoder features (`sae`). Every function takes a `HookedTransformer`; results are frozen dataclasses
with `.plot()` and, where a table is what people read, `.to_frame()`.

Example:
    >>> import interp
    >>> model = interp.load_model("toy")          # the built-in model, offline
    >>> interp.logit_lens(model, "the capital of france is").plot()

Importing `interp` is cheap: the names below load their module on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# The built-in model registers its loader and profile (pure Python, no torch): interp.core looks
# names up in its registries and never imports interp.toy.
from interp import toy as _toy  # noqa: E402, F401

_EXPORTS: dict[str, str] = {
    # core: models, profiles, tokens, hooks
    "load_model": "core.models",
    "model_info": "core.models",
    "ModelInfo": "core.models",
    "ModelNotAvailableError": "core.models",
    "LogitMismatchError": "core.checkpoints",
    "NamedCorpus": "data.corpus",
    "SUPPORTED_MODELS": "core.models",
    "ModelProfile": "core.profiles",
    "profile_for": "core.profiles",
    "register_profile": "core.profiles",
    "set_profile": "core.profiles",
    "format_chat": "core.tokens",
    "tokenize": "core.tokens",
    "token_id": "core.tokens",
    "hooked": "core.hooks",
    "record": "core.hooks",
    "harvest": "core.hooks",
    "hook_name": "core.hooks",
    "final_logits": "core.readout",
    "next_tokens": "core.predict",
    "NextTokens": "core.predict",
    "Result": "core.results",
    # logit lens
    "logit_lens": "lens",
    "LogitLensResult": "lens",
    # patchscopes
    "patchscope": "patching",
    "PatchscopeResult": "patching",
    # neurons
    "ablate_neurons": "neurons",
    "AblationResult": "neurons",
    "logit_diff": "neurons",
    "token_logprob": "neurons",
    "Metric": "neurons",
    "neuron_activations": "neurons",
    "NeuronActivations": "neurons",
    "rank_neurons": "neurons",
    "NeuronRanking": "neurons",
    "UnreliableRankingWarning": "neurons",
    "separating_neurons": "neurons",
    "NeuronSeparation": "neurons",
    # steering
    "SteeringVector": "steering",
    "SteeringVectors": "steering",
    "mean_difference": "steering",
    "steer": "steering",
    "steering_grid": "steering",
    "SteeringGrid": "steering",
    "SteerResult": "steering",
    "orthogonalize": "steering",
    "select_direction": "steering",
    "DirectionSelection": "steering",
    "refusal_rate": "steering",
    "refusal_score": "steering",
    "harmless_kl": "steering",
    "KLResult": "steering",
    # sparse autoencoders
    "load_sae": "sae",
    "check_sae": "sae",
    "default_sae": "sae",
    "feature_activations": "sae",
    "FeatureActivations": "sae",
    "feature_vector": "sae",
    "search_features": "sae",
    "feature_density": "sae",
    "FeatureSearch": "sae",
    "max_activating_examples": "sae",
    "MaxActivatingExamples": "sae",
    "feature_card": "sae",
    "FeatureCard": "sae",
}

__all__ = sorted(_EXPORTS)

_SUBMODULES = ("core", "data", "lens", "neurons", "patching", "sae", "steering", "toy")


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None and name in _SUBMODULES:  # `interp.toy.corpus...` works after a bare `import interp`
        return importlib.import_module(f"interp.{name}")
    if module is None:
        raise AttributeError(f"module 'interp' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"interp.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))


if TYPE_CHECKING:  # pragma: no cover  (editors and type checkers see every public name)
    from interp.core.checkpoints import LogitMismatchError
    from interp.core.hooks import harvest, hook_name, hooked, record
    from interp.core.models import ModelInfo, ModelNotAvailableError, SUPPORTED_MODELS, load_model, model_info
    from interp.core.predict import NextTokens, next_tokens
    from interp.core.profiles import ModelProfile, profile_for, register_profile, set_profile
    from interp.core.readout import final_logits
    from interp.core.results import Result
    from interp.core.tokens import format_chat, token_id, tokenize
    from interp.data.corpus import NamedCorpus
    from interp.lens import LogitLensResult, logit_lens
    from interp.neurons import (
        AblationResult,
        Metric,
        NeuronActivations,
        NeuronRanking,
        NeuronSeparation,
        ablate_neurons,
        logit_diff,
        neuron_activations,
        rank_neurons,
        separating_neurons,
        token_logprob,
    )
    from interp.patching import PatchscopeResult, patchscope
    from interp.sae import (
        FeatureActivations,
        FeatureCard,
        FeatureSearch,
        MaxActivatingExamples,
        check_sae,
        default_sae,
        feature_activations,
        feature_card,
        feature_density,
        feature_vector,
        load_sae,
        max_activating_examples,
        search_features,
    )
    from interp.steering import (
        DirectionSelection,
        KLResult,
        SteerResult,
        SteeringGrid,
        SteeringVector,
        SteeringVectors,
        harmless_kl,
        mean_difference,
        orthogonalize,
        refusal_rate,
        refusal_score,
        select_direction,
        steer,
        steering_grid,
    )
