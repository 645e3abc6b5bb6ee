"""Controls of the same size: the random intervention every real one is reported beside.

An ablation, a steering vector or an in-context vector changes the model; whether the change
says anything about *this* neuron or *this* direction depends on what a random intervention of
the same size does. On a small, well-trained model a random direction often does nothing; on a
real model it often does something (ablating random directions from SmolLM2-135M-Instruct also
removed some of its few refusals). So every experiment reports its intervention beside:

- `random_direction`: a random direction of the same norm (Gaussian, so uniformly oriented);
- `random_neurons`: random MLP neurons of the same count *in the same layers*, excluding the
  chosen ones (a layer's neurons differ in scale from another layer's);
- `shuffled_pairs`: few-shot pairs whose outputs are permuted among themselves, so the prompt
  has the same words and format but no consistent task (the control of Hendel et al. 2023,
  "In-Context Learning Creates Task Vectors", and Todd et al. 2024, "Function Vectors in Large
  Language Models", for in-context vectors);
- `shuffled_split`: two prompt sets with their labels shuffled, same sizes (the control for a
  difference-of-means direction: the "difference" of two random halves).

This follows the logic of control tasks (Hewitt & Liang 2019, "Designing and Interpreting
Probes with Control Tasks", EMNLP): a measurement is read against what a structure-free
version of the same intervention gives.

Example:
    >>> from interp.core.controls import random_direction, random_neurons
    >>> ctrl = random_direction(refusal_vector, seed=0)        # a SteeringVector, same norm
    >>> random_neurons(model, [(2, 17), (2, 40), (3, 5)], seed=0)  # two in layer 2, one in 3
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any, TypeVar

import torch
from jaxtyping import Float

_T = TypeVar("_T")


def random_direction(like: Any, *, seed: int = 0) -> Any:
    """A random direction with the norm of `like` (a tensor, or a `SteeringVector`).

    A `SteeringVector` comes back as a `SteeringVector` at the same layer and site, labelled
    `random(<name>)`; a tensor as a tensor of the same shape, dtype and device.

    Raises:
        ValueError: `like` is neither a tensor nor a vector with a `direction`.

    Example:
        >>> random_direction(torch.ones(4), seed=1).norm()
        tensor(2.)
    """
    direction = getattr(like, "direction", like)
    if not isinstance(direction, torch.Tensor):
        raise ValueError(f"expected a tensor or a SteeringVector, got {type(like).__name__}")
    gen = torch.Generator().manual_seed(seed)
    rand = torch.randn(direction.shape, generator=gen, dtype=torch.float64)
    rand = rand / rand.norm() * float(direction.detach().double().norm())
    rand = rand.to(dtype=direction.dtype, device=direction.device)
    if direction is like:
        return rand
    name = getattr(like, "label", "") or f"vector@{getattr(like, 'layer', '?')}"
    return dataclasses.replace(like, direction=rand, label=f"random({name})")


def random_directions(like: Any, n: int, *, seed: int = 0) -> list[Any]:
    """`n` independent random directions of the norm of `like` (seeds `seed`, `seed+1`, ...)."""
    if n < 1:
        raise ValueError(f"n={n} must be at least 1")
    return [random_direction(like, seed=seed + i) for i in range(n)]


def random_neurons(
    model: Any, like: Sequence[tuple[int, int]], *, seed: int = 0, exclude: bool = True
) -> list[tuple[int, int]]:
    """Random MLP neurons: as many per layer as `like` has there, none of `like` (by default).

    Args:
        model: the model (its `cfg.d_mlp` and `cfg.n_layers` bound the choice).
        like: the `(layer, index)` neurons to match; negative layers count from the end.
        seed: the random seed.
        exclude: never pick a neuron of `like`.

    Raises:
        ValueError: a layer out of range, or a layer with more neurons asked than it has.

    Example:
        >>> random_neurons(model, [(1, 7), (1, 9), (3, 2)], seed=0)   # two of layer 1, one of layer 3
    """
    n_layers, d_mlp = model.cfg.n_layers, model.cfg.d_mlp
    chosen = set()
    for layer, index in like:
        if not -n_layers <= layer < n_layers:
            raise ValueError(f"layer {layer} is out of range for a {n_layers}-layer model")
        chosen.add((layer % n_layers, index))
    counts = Counter(layer % n_layers for layer, _ in like)
    rng = random.Random(seed)
    out: list[tuple[int, int]] = []
    for layer in sorted(counts):
        pool = [i for i in range(d_mlp) if not (exclude and (layer, i) in chosen)]
        if counts[layer] > len(pool):
            raise ValueError(f"layer {layer} has {len(pool)} neurons to pick from, {counts[layer]} asked")
        out += [(layer, i) for i in rng.sample(pool, counts[layer])]
    return out


def shuffled_pairs(pairs: Sequence[tuple[_T, _T]], *, seed: int = 0) -> list[tuple[_T, _T]]:
    """The pairs with their outputs permuted so that no input keeps its own output.

    A derangement where one exists (at least two distinct outputs); the inputs stay in order.

    Example:
        >>> shuffled_pairs([("hot", "cold"), ("big", "small"), ("up", "down")], seed=0)
        [('hot', 'down'), ('big', 'cold'), ('up', 'small')]
    """
    pairs = list(pairs)
    if len({b for _, b in pairs}) < 2:
        return pairs
    rng = random.Random(seed)
    outputs = [b for _, b in pairs]
    for _ in range(1000):
        perm = outputs[:]
        rng.shuffle(perm)
        if all(p != b for p, b in zip(perm, outputs)):
            break
    return [(a, p) for (a, _), p in zip(pairs, perm)]


def shuffled_split(first: Sequence[_T], second: Sequence[_T], *, seed: int = 0) -> tuple[list[_T], list[_T]]:
    """Both sets pooled, shuffled and split again at the same sizes (labels shuffled).

    Example:
        >>> a, b = shuffled_split(harmful, harmless, seed=0)   # each a mix of both kinds
    """
    pool = list(first) + list(second)
    random.Random(seed).shuffle(pool)
    return pool[: len(first)], pool[len(first) :]


def same_norm(vector: Float[torch.Tensor, ...], like: Float[torch.Tensor, ...]) -> torch.Tensor:
    """`vector` rescaled to the norm of `like`."""
    norm = vector.norm()
    if norm == 0:
        raise ValueError("cannot rescale a zero vector")
    return vector * (like.norm() / norm)
