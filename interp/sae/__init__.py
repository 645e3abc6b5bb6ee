"""Sparse-autoencoder features: load an SAE, check it fits, encode, search, examples, cards.

- `load.py`: sae-lens releases and the built-in SAE; `check.py`: does this SAE fit this model;
- `encode.py`: features active per token, feature decoder directions as steering vectors;
- `search.py`: search features by text (what fires) or by output (what they promote);
- `examples.py`: max-activating examples over a corpus (streaming top-k, cached);
- `card.py`: a feature card (examples, histogram, density, promoted and suppressed tokens).
"""

from interp.sae.card import FeatureCard, feature_card
from interp.sae.check import check_sae
from interp.sae.encode import FeatureActivations, feature_activations, feature_vector
from interp.sae.examples import MaxActivatingExamples, max_activating_examples
from interp.sae.load import load_sae
from interp.sae.search import FeatureSearch, search_features

__all__ = ["FeatureActivations", "FeatureCard", "FeatureSearch", "MaxActivatingExamples", "check_sae",
           "feature_activations", "feature_card", "feature_vector", "load_sae", "max_activating_examples",
           "search_features"]
