"""MLP neurons: ablate them, rank them by attribution, and see where they fire.

- `metrics.py`: next-token metrics (`logit_diff`, `token_logprob`) that ablations and rankings move;
- `engine.py`: the three ablation types (zero, mean, resample) and the batched job runner;
- `ablation.py`: `ablate_neurons`, with significance across prompts (`AblationResult`);
- `attribution.py`: `rank_neurons`, every neuron scored by attribution patching, the top ones
  verified by real ablation (`NeuronRanking`);
- `separation.py`: `separating_neurons`, every neuron scored by how well its activation
  separates two prompt groups (standardized mean difference and AUC; `NeuronSeparation`);
- `activations.py`: `neuron_activations`, a neuron's max-activating contexts over a corpus
  (`NeuronActivations`), read through the library's one streaming top-k.

Imports go down this list (`metrics` <- `engine` <- `ablation`, `attribution` <- `separation`;
`activations` needs only `engine` and `interp.sae.examples`), so there are no cycles.
"""

from interp.neurons.ablation import AblationResult, ablate_neurons
from interp.neurons.activations import NeuronActivations, neuron_activations
from interp.neurons.attribution import NeuronRanking, UnreliableRankingWarning, rank_neurons
from interp.neurons.metrics import Metric, logit_diff, token_logprob
from interp.neurons.separation import NeuronSeparation, separating_neurons

__all__ = ["AblationResult", "Metric", "NeuronActivations", "NeuronRanking", "NeuronSeparation",
           "UnreliableRankingWarning", "ablate_neurons", "logit_diff", "neuron_activations", "rank_neurons",
           "separating_neurons", "token_logprob"]
