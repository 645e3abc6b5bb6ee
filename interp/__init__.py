"""interp: a mechanistic-interpretability workbench for TransformerLens models.

Five techniques, one module each: neuron ablation (`ablation`), steering vectors
(`steering`), the logit lens (`lens`), patchscopes (`patchscope`) and sparse-autoencoder
features (`sae`). Every function takes a `HookedTransformer`; results are frozen dataclasses
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

_EXPORTS: dict[str, str] = {
    # models
    "load_model": "models",
    "load_sae": "models",
    "model_info": "models",
    "ModelInfo": "models",
    "ModelNotAvailableError": "models",
    "SUPPORTED_MODELS": "models",
    "format_chat": "models",
    "tokenize": "models",
    "token_id": "models",
    # hooks and cache
    "hooked": "hooks",
    "record": "hooks",
    "harvest": "hooks",
    "hook_name": "hooks",
    # logit lens
    "logit_lens": "lens",
    "LogitLensResult": "lens",
    # patchscopes
    "patchscope": "patchscope",
    "PatchscopeResult": "patchscope",
    # neuron ablation
    "ablate_neurons": "ablation",
    "AblationResult": "ablation",
    "neuron_activations": "neurons",
    "NeuronActivations": "neurons",
    "rank_neurons": "neurons",
    "NeuronRanking": "neurons",
    "logit_diff": "ablation",
    "token_logprob": "ablation",
    # steering
    "SteeringVector": "steering",
    "mean_difference": "steering",
    "select_direction": "refusal",
    "DirectionSelection": "refusal",
    "steer": "steering",
    "steering": "steering",
    "SteerResult": "steering",
    "orthogonalize": "steering",
    "refusal_rate": "refusal",
    "refusal_score": "refusal",
    "harmless_kl": "refusal",
    # sparse autoencoders
    "check_sae": "sae_check",
    "feature_activations": "sae",
    "FeatureActivations": "sae",
    "search_features": "feature_search",
    "FeatureSearch": "feature_search",
    "max_activating_examples": "features",
    "MaxActivatingExamples": "features",
    "feature_card": "cards",
    "FeatureCard": "cards",
    "feature_vector": "sae",
}

__all__ = sorted(_EXPORTS)


_SUBMODULES = ("ablation", "cache", "cards", "data", "feature_search", "features", "hooks", "lens", "models",
               "neurons", "patchscope", "plotting", "refusal", "sae", "sae_check", "steering", "topk", "toy")


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


if TYPE_CHECKING:  # pragma: no cover
    from interp.hooks import harvest, hook_name, hooked, record
    from interp.models import (
        SUPPORTED_MODELS,
        ModelInfo,
        ModelNotAvailableError,
        format_chat,
        load_model,
        model_info,
        token_id,
        tokenize,
    )
