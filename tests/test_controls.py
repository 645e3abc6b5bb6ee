"""Same-size controls: random directions, random neurons, shuffled pairs and splits."""

from types import SimpleNamespace

import pytest
import torch

import interp
from interp.core.controls import (
    random_direction,
    random_directions,
    random_neurons,
    same_norm,
    shuffled_pairs,
    shuffled_split,
)

MODEL = SimpleNamespace(cfg=SimpleNamespace(n_layers=4, d_mlp=16))


def test_random_direction_keeps_norm_shape_and_is_seeded():
    v = torch.arange(1.0, 9.0)
    r = random_direction(v, seed=3)
    assert r.shape == v.shape and r.dtype == v.dtype
    assert torch.isclose(r.norm(), v.norm())
    assert torch.equal(r, random_direction(v, seed=3)) and not torch.equal(r, random_direction(v, seed=4))
    assert abs(float(r @ v) / float(v.norm() ** 2)) < 0.9  # not the same direction
    many = random_directions(v, 3, seed=0)
    assert len(many) == 3 and torch.equal(many[1], random_direction(v, seed=1))
    with pytest.raises(ValueError, match="n=0"):
        random_directions(v, 0)
    with pytest.raises(ValueError, match="expected a tensor or a SteeringVector"):
        random_direction([1.0, 2.0])


def test_random_direction_of_a_steering_vector():
    v = interp.SteeringVector(torch.ones(8) * 2, layer=2, label="refusal")
    r = random_direction(v, seed=0)
    assert isinstance(r, interp.SteeringVector) and r.layer == 2 and r.site == v.site
    assert abs(r.norm - v.norm) < 1e-5 and r.label == "random(refusal)"


def test_random_neurons_match_layers_and_counts_and_exclude_the_chosen():
    like = [(1, 0), (1, 1), (-1, 5)]
    picked = random_neurons(MODEL, like, seed=0)
    assert sorted(layer for layer, _ in picked) == [1, 1, 3]
    assert not {(1, 0), (1, 1), (3, 5)} & set(picked)
    assert len(set(picked)) == 3 and picked == random_neurons(MODEL, like, seed=0)
    with pytest.raises(ValueError, match="layer 7 is out of range"):
        random_neurons(MODEL, [(7, 0)])
    with pytest.raises(ValueError, match="16 neurons to pick from, 17 asked"):
        random_neurons(MODEL, [(0, i % 16) for i in range(17)], exclude=False)


def test_shuffled_pairs_is_a_derangement_of_the_outputs():
    pairs = [(str(i), f"o{i}") for i in range(10)]
    shuffled = shuffled_pairs(pairs, seed=1)
    assert [a for a, _ in shuffled] == [a for a, _ in pairs]
    assert sorted(b for _, b in shuffled) == sorted(b for _, b in pairs)
    assert all(b != f"o{a}" for a, b in shuffled)
    assert shuffled_pairs([("a", "x"), ("b", "x")]) == [("a", "x"), ("b", "x")]  # nothing to permute


def test_shuffled_split_keeps_sizes_and_items():
    a, b = shuffled_split(["h"] * 6, ["s"] * 4, seed=0)
    assert len(a) == 6 and len(b) == 4 and sorted(a + b) == ["h"] * 6 + ["s"] * 4
    assert "s" in a  # labels mixed


def test_same_norm():
    assert torch.isclose(same_norm(torch.ones(4), torch.tensor([3.0, 4.0])).norm(), torch.tensor(5.0))
    with pytest.raises(ValueError, match="zero vector"):
        same_norm(torch.zeros(3), torch.ones(3))
