"""The lean GPT-2-family blocks (`interp.core.lean`) behind the patchscope sweep: the same
results as transformer-lens' own blocks, and a hook on an inner point sends a block back."""

import pytest
import torch

from interp.patching.patchscope import patchscope

SOURCE = "the cat sat on the mat"


@pytest.mark.parametrize("strategy", ["one_pass", "shared_prefix"])
def test_lean_blocks_give_transformer_lens_results(gpt2_like, strategy, monkeypatch):
    """The sweep runs GPT-2-family blocks lean (interp.core.lean); with transformer-lens' own
    blocks it gives the same tokens and probabilities to float rounding."""
    import interp.patching.engine as engine

    kw = dict(target="identity", max_new_tokens=3, targets=["the", "cat"], strategy=strategy)
    assert engine.lean_plan(gpt2_like) is not None
    lean = patchscope(gpt2_like, SOURCE, **kw)
    monkeypatch.setattr(engine, "lean_plan", lambda model: None)
    slow = patchscope(gpt2_like, SOURCE, **kw)
    assert torch.equal(lean.generated_ids, slow.generated_ids)
    torch.testing.assert_close(lean.target_probs, slow.target_probs, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(lean.first_probs, slow.first_probs, atol=1e-6, rtol=1e-5)


def test_a_raw_hook_on_an_inner_point_sends_the_block_back_to_transformer_lens(gpt2_like):
    from interp.core.lean import inner_hooked, lean_plan

    assert lean_plan(gpt2_like) == [True] * gpt2_like.cfg.n_layers
    handle = gpt2_like.blocks[1].attn.hook_z.register_forward_hook(lambda module, args, out: out)
    try:
        assert inner_hooked(gpt2_like.blocks[1]) and lean_plan(gpt2_like)[1] is False
        assert lean_plan(gpt2_like)[0] is True
    finally:
        handle.remove()
    assert lean_plan(gpt2_like) == [True] * gpt2_like.cfg.n_layers


def test_a_users_torch_hook_on_a_block_sends_it_back_to_transformer_lens(gpt2_like):
    """A lean block calls no module's forward: a torch hook a user put on the block (or on a
    module inside it) must still run, so that block runs transformer-lens' own forward."""
    from interp.core.generation import generate
    from interp.core.lean import lean_plan
    from interp.core.tokens import tokenize

    tokens, mask = tokenize(gpt2_like, ["the cat sat on the mat", "hello"])
    for module in (gpt2_like.blocks[1], gpt2_like.blocks[1].mlp, gpt2_like.blocks[1].attn):
        calls = []
        handle = module.register_forward_hook(lambda m, args, out: calls.append(1))
        try:
            assert lean_plan(gpt2_like) == [True, False, True]
            generate(gpt2_like, tokens, attention_mask=mask, max_new_tokens=3, stop_at_eos=False, fast=True)
        finally:
            handle.remove()
        assert len(calls) == 3, type(module).__name__  # the prompt and two steps
    assert lean_plan(gpt2_like) == [True, True, True]
