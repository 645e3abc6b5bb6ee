"""The logit lens reduces each unembedded chunk a cache-sized slice of positions at a time and
lays the weights out once when it unembeds several chunks: the numbers must not change."""

from __future__ import annotations

import torch

import interp.lens.logit as lens_module
from interp.lens import logit_lens

PROMPT = "the capital of france is paris and the capital of japan is"


def test_slices_and_chunks_give_the_same_lens(tiny_model, monkeypatch):
    whole = logit_lens(tiny_model, PROMPT, targets=["paris"], k=4)
    strides = {n: p.stride() for n, p in tiny_model.named_parameters()}
    monkeypatch.setattr(lens_module, "CACHE_ELEMENTS", 1)  # one position per slice
    sliced = logit_lens(tiny_model, PROMPT, targets=["paris"], k=4, chunk_positions=2)  # several chunks
    assert len(whole.positions) > 2
    assert torch.equal(whole.top_ids, sliced.top_ids) and torch.equal(whole.target_ranks, sliced.target_ranks)
    for name in ("top_probs", "entropy", "kl_to_final", "target_probs"):
        a, b = getattr(whole, name), getattr(sliced, name)
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-6), name
    assert float(sliced.kl_to_final[-1].abs().max()) == 0.0
    assert strides == {n: p.stride() for n, p in tiny_model.named_parameters()}  # layout restored
