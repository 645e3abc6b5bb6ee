"""Sparse-autoencoder features: load an SAE and check it fits, encode, search, examples, cards.

- `load.py`: the built-in SAE, the shipped ones (`default_sae`), a folder, a sae-lens release;
- `fit.py`: `check_sae` (does this SAE fit this model), run first by every function below;
- `train.py`: train an SAE on any model with sae-lens' trainer (how the shipped ones were made);
- `evaluate.py`: explained variance, L0, dead features and spliced-in loss of an SAE on text;
- `encode.py`: which features fire on a prompt, per token (the encoder side);
- `directions.py`: what a feature writes: its decoder direction through the unembedding, and as a
  steering vector (the decoder side);
- `search.py`: search features by text (what fires) or by output (what they promote), and density;
- `stream.py`: the corpus pass (forward, encode, streaming top-k) behind `examples.py`;
- `examples.py`: max-activating examples over a corpus (cached), and their figure;
- `card.py`: a feature card (examples, histogram, density, promoted and suppressed tokens).

Imports only go down this list (`fit` <- `load`, `fit` <- `encode` <- `directions`, `stream` <- `examples` <-
`search`, `card`), so there are no cycles.
"""

from interp.sae.card import FeatureCard, feature_card
from interp.sae.directions import feature_vector, relative_logits, residual_directions
from interp.sae.encode import FeatureActivations, feature_activations
from interp.sae.examples import MaxActivatingExamples, default_corpus, max_activating_examples
from interp.sae.fit import check_sae
from interp.sae.load import default_sae, load_sae, shipped_saes
from interp.sae.search import FeatureSearch, feature_density, search_features

__all__ = ["FeatureActivations", "FeatureCard", "FeatureSearch", "MaxActivatingExamples", "check_sae",
           "default_corpus", "default_sae", "feature_activations", "feature_card", "feature_density", "feature_vector",
           "load_sae", "max_activating_examples", "relative_logits", "residual_directions", "search_features",
           "shipped_saes"]
