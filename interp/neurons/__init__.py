"""MLP neurons: ablate them, rank them by attribution, and find what makes them fire.

- `ablation.py`: zero / mean / resample ablation with significance across prompts;
- `attribution.py`: rank every neuron by a first-order estimate, verified by real ablation;
  and its max-activating contexts over a corpus.
"""

from interp.neurons.ablation import AblationResult, ablate_neurons, logit_diff, token_logprob
from interp.neurons.attribution import NeuronActivations, NeuronRanking, neuron_activations, rank_neurons

__all__ = ["AblationResult", "NeuronActivations", "NeuronRanking", "ablate_neurons", "logit_diff",
           "neuron_activations", "rank_neurons", "token_logprob"]
