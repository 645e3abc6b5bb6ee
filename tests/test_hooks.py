import pytest
import torch

from interp.core.hooks import SITES, count_hooks, harvest, hook_name, hooked, record, resolve_layer
from interp.core.tokens import tokenize


def test_hook_names_cover_every_site_and_negative_layers(tiny_model):
    n = tiny_model.cfg.n_layers
    for site in SITES:
        assert hook_name(tiny_model, site, -1) == hook_name(tiny_model, site, n - 1)
        assert hook_name(tiny_model, site, 0) in tiny_model.hook_dict
    assert resolve_layer(tiny_model, -n) == 0


@pytest.mark.parametrize("layer", [3, -4, 100])
def test_layer_out_of_range_names_value_and_range(gpt2_like, layer):
    with pytest.raises(ValueError, match=rf"layer {layer} is out of range .*\[-3, 3\)"):
        hook_name(gpt2_like, "resid_post", layer)


def test_unknown_site_lists_options(gpt2_like):
    with pytest.raises(ValueError, match="unknown site 'resid_final'.*resid_pre"):
        hook_name(gpt2_like, "resid_final", 0)


def test_harvest_matches_run_with_cache_and_stops_early(tiny_model):
    tokens, mask = tokenize(tiny_model, ["the cat sat on the mat", "the dog"])
    _, cache = tiny_model.run_with_cache(tokens, attention_mask=mask)
    called = []
    late = hook_name(tiny_model, "resid_post", -1)
    with hooked(tiny_model, [(late, lambda act, hook: called.append(hook.name))]):
        acts = harvest(tiny_model, tokens, [("resid_post", 0), ("mlp_post", 1)], attention_mask=mask)
    assert not called, "harvest ran past the last layer it needed"
    assert set(acts) == {"blocks.0.hook_resid_post", "blocks.1.mlp.hook_post"}
    for name, act in acts.items():
        torch.testing.assert_close(act, cache[name])
    assert count_hooks(tiny_model) == 0


def test_harvest_at_resid_pre_does_not_run_that_block(tiny_model):
    model = tiny_model
    tokens, mask = tokenize(model, ["the cat sat on the mat", "the dog"])
    _, cache = model.run_with_cache(tokens, attention_mask=mask)
    for sites in ([("resid_pre", 0)], [("resid_pre", 2)], [("mlp_out", 0), ("resid_pre", 1)]):
        ran = []
        blocks = [(f"blocks.{i}.hook_resid_mid", lambda act, hook: ran.append(hook.name)) for i in range(3)]
        with hooked(model, blocks):
            acts = harvest(model, tokens, sites, attention_mask=mask, select=lambda a: a[:, -2:])
        deepest = max(layer for _, layer in sites)
        assert ran == [f"blocks.{i}.hook_resid_mid" for i in range(deepest)], f"{sites}: blocks run {ran}"
        assert list(acts) == [hook_name(model, *s) for s in sites]
        for name, act in acts.items():
            torch.testing.assert_close(act, cache[name][:, -2:])
    assert count_hooks(model) == 0


def test_record_select_keeps_only_what_is_asked(gpt2_like):
    tokens, _ = tokenize(gpt2_like, "the cat sat on the mat")
    with record(gpt2_like, [("resid_pre", 1)], select=lambda a: a[:, -1]) as acts:
        gpt2_like(tokens)
    assert acts["blocks.1.hook_resid_pre"].shape == (1, gpt2_like.cfg.d_model)


def test_no_hook_survives_an_exception_in_the_body(tiny_model):
    with pytest.raises(RuntimeError, match="boom"):
        with record(tiny_model, [("resid_post", 0), ("attn_out", 1)]):
            assert count_hooks(tiny_model) == 2
            raise RuntimeError("boom")
    assert count_hooks(tiny_model) == 0


def test_no_hook_survives_an_exception_inside_a_hook(tiny_model):
    def bad(act, hook):
        raise ZeroDivisionError("inside hook")

    tokens, _ = tokenize(tiny_model, "the cat")
    with pytest.raises(ZeroDivisionError):
        with hooked(tiny_model, [(hook_name(tiny_model, "mlp_out", 0), bad)]):
            tiny_model(tokens)
    assert count_hooks(tiny_model) == 0
    with pytest.raises(ZeroDivisionError):
        with hooked(tiny_model, [(hook_name(tiny_model, "resid_pre", 1), bad)]):
            tiny_model(tokens)
    assert count_hooks(tiny_model) == 0


def test_user_hooks_outside_our_block_are_left_alone(gpt2_like):
    name = hook_name(gpt2_like, "resid_pre", 0)
    gpt2_like.hook_dict[name].add_hook(lambda act, hook: None)
    try:
        with record(gpt2_like, [("resid_post", 0)]):
            assert count_hooks(gpt2_like) == 2
        assert count_hooks(gpt2_like) == 1
    finally:
        gpt2_like.reset_hooks()
    assert count_hooks(gpt2_like) == 0


def test_hooked_changes_output_only_inside(gpt2_like):
    tokens, _ = tokenize(gpt2_like, "the cat sat")
    before = gpt2_like(tokens)
    with hooked(gpt2_like, [(hook_name(gpt2_like, "mlp_out", 0), lambda a, hook: torch.zeros_like(a))]):
        during = gpt2_like(tokens)
    after = gpt2_like(tokens)
    assert not torch.allclose(before, during)
    torch.testing.assert_close(before, after)


def test_empty_or_unknown_hook_points_are_errors(gpt2_like):
    with pytest.raises(ValueError, match="no sites"):
        harvest(gpt2_like, torch.zeros(1, 2, dtype=torch.long), [])
    with pytest.raises(ValueError, match="unknown hook point 'blocks.9.hook_nope'"):
        with hooked(gpt2_like, [("blocks.9.hook_nope", lambda a, hook: None)]):
            pass


def test_harvest_rejects_token_ids_outside_the_vocabulary(gpt2_like):
    import pytest
    import torch

    with pytest.raises(ValueError, match="token id -1"):
        harvest(gpt2_like, torch.tensor([[1, -1, 2]]), [("resid_post", 0)])
    with pytest.raises(ValueError, match=f"token id {gpt2_like.cfg.d_vocab}"):
        harvest(gpt2_like, torch.tensor([[1, gpt2_like.cfg.d_vocab]]), [("resid_post", 0)])
    with pytest.raises(TypeError, match="integer"):
        harvest(gpt2_like, torch.tensor([[1.0, 2.0]]), [("resid_post", 0)])
