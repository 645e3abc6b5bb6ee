"""Low-memory activation twins: bitwise equal to transformer-lens' originals, inputs untouched,
swapped in only for the duration of a block (harvest's), restored on any exit, and safe for
two threads on one model."""

from __future__ import annotations

import threading

import pytest
import torch
from conftest import _model, gpt2_like_config
from transformer_lens.utilities import activation_functions as tl_acts

import interp
from interp.core import lowmem
from interp.core.hooks import count_hooks
from interp.core.lowmem import (
    TWINS,
    bitwise_equal,
    gelu_new_lowmem,
    low_memory_activations,
    mlp_forward_lowmem,
    probe,
    uses_low_memory,
)

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


def _inputs(dtype: torch.dtype) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    xs = [probe(dtype)]
    for scale in (1e-30, 1e-6, 1e-2, 0.5, 1.0, 3.0, 10.0, 1e3, 1e6):
        xs.append((torch.randn(7, 33, 96, generator=g, dtype=torch.float64) * scale).to(dtype))
    xs.append(torch.randn(5, 64, generator=g).to(dtype)[:, ::2])  # not contiguous
    return xs


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("fn", list(TWINS), ids=lambda f: f.__name__)
def test_twin_is_bitwise_equal_and_leaves_its_input_alone(fn, dtype):
    twin = TWINS[fn]
    for x in _inputs(dtype):
        before = x.clone()
        expected = fn(x)
        got = twin(x)
        assert bitwise_equal(got, expected), (fn.__name__, dtype, x.shape)
        assert bitwise_equal(x, before)
        assert got.data_ptr() != x.data_ptr()
        finite = torch.isfinite(expected)
        assert torch.equal(got[finite], expected[finite])  # the plain torch.equal too


def test_gelu_new_twin_equal_on_a_gpt2_sized_activation():
    x = torch.randn(2, 64, 3072) * 4
    assert torch.equal(gelu_new_lowmem(x), tl_acts.gelu_new(x))


@pytest.mark.parametrize("fn", list(TWINS), ids=lambda f: f.__name__)
def test_twin_runs_the_original_where_autograd_records(fn):
    x = torch.randn(4, 16, requires_grad=True)
    TWINS[fn](x).sum().backward()  # in-place operators would raise here
    y = x.detach().clone().requires_grad_()
    fn(y).sum().backward()
    assert torch.equal(x.grad, y.grad)


def test_every_installed_twin_passes_the_bitwise_check():
    for fn in TWINS:
        assert lowmem._twin_of(fn) is TWINS[fn]
    assert tl_acts.gelu_new in TWINS


def test_a_twin_that_differs_is_not_used(gpt2_like, monkeypatch):
    wrong = lambda x: tl_acts.gelu_new(x) + 1e-7  # noqa: E731
    monkeypatch.setitem(TWINS, tl_acts.gelu_new, wrong)
    monkeypatch.setattr(lowmem, "_VERIFIED", {})
    with low_memory_activations(gpt2_like):
        assert all(b.mlp.act_fn is tl_acts.gelu_new for b in gpt2_like.blocks)


def _acts(model):
    return [b.mlp.act_fn for b in model.blocks]


def _lean_forwards(model):
    """Per block: whether its MLP runs `mlp_forward_lowmem`."""
    return [
        getattr(b.mlp.__dict__.get("forward"), "__func__", None) is mlp_forward_lowmem for b in model.blocks
    ]


def _pristine(model) -> bool:
    return (
        _acts(model) == [tl_acts.gelu_new] * model.cfg.n_layers
        and not any("forward" in b.mlp.__dict__ for b in model.blocks)
        and not uses_low_memory(model)
    )


def test_swap_and_restore(gpt2_like):
    assert _pristine(gpt2_like)
    with low_memory_activations(gpt2_like):
        assert _acts(gpt2_like) == [gelu_new_lowmem] * gpt2_like.cfg.n_layers
        assert all(_lean_forwards(gpt2_like))
        assert uses_low_memory(gpt2_like)
        with low_memory_activations(gpt2_like):  # nested
            assert uses_low_memory(gpt2_like)
        assert uses_low_memory(gpt2_like)  # the outer block still holds it
        assert all(_lean_forwards(gpt2_like))
    assert _pristine(gpt2_like)


def test_mlp_forward_twin_is_bitwise_equal_and_hooks_still_act(gpt2_like):
    mlp = gpt2_like.blocks[1].mlp
    x = torch.randn(3, 7, gpt2_like.cfg.d_model) * 3
    with torch.inference_mode():
        assert bitwise_equal(mlp_forward_lowmem(mlp, x), mlp(x))
    tokens = _tokens(gpt2_like)

    def double(act, hook):
        return act * 2

    hooks = [("blocks.0.mlp.hook_pre", double), ("blocks.1.mlp.hook_post", double)]
    with torch.inference_mode():
        expected = gpt2_like.run_with_hooks(tokens, fwd_hooks=hooks)
        with low_memory_activations(gpt2_like):
            got = gpt2_like.run_with_hooks(tokens, fwd_hooks=hooks)
    assert bitwise_equal(got, expected)
    assert not bitwise_equal(expected, gpt2_like(tokens))  # the hooks did act


def test_a_layer_norm_activation_keeps_its_forward(word_tokenizer):
    model = _model(gpt2_like_config(len(word_tokenizer), act_fn="solu_ln"), word_tokenizer, seed=0)
    with low_memory_activations(model):
        assert not any(_lean_forwards(model))
        assert all(b.mlp.act_fn is TWINS[tl_acts.solu] for b in model.blocks)
    assert all(b.mlp.act_fn is tl_acts.solu for b in model.blocks)


def test_restored_when_the_block_raises(gpt2_like):
    with pytest.raises(RuntimeError, match="inside"):
        with low_memory_activations(gpt2_like):
            raise RuntimeError("inside")
    assert _pristine(gpt2_like)
    assert not lowmem._SWAPS[gpt2_like].users


def test_an_attribute_replaced_inside_the_block_is_kept(word_tokenizer):
    model = _model(gpt2_like_config(len(word_tokenizer)), word_tokenizer, seed=0)
    mine = torch.nn.functional.relu

    def my_forward(x):
        return x

    with low_memory_activations(model):
        model.blocks[1].mlp.act_fn = mine
        model.blocks[2].mlp.forward = my_forward
    assert model.blocks[1].mlp.act_fn is mine
    assert model.blocks[2].mlp.forward is my_forward
    assert model.blocks[0].mlp.act_fn is tl_acts.gelu_new
    assert "forward" not in model.blocks[0].mlp.__dict__
    assert "forward" not in model.blocks[1].mlp.__dict__


def test_an_mlp_whose_forward_is_patched_is_left_alone(word_tokenizer):
    model = _model(gpt2_like_config(len(word_tokenizer)), word_tokenizer, seed=0)
    patched = model.blocks[0].mlp.forward  # a bound method set on the instance
    model.blocks[0].mlp.forward = patched
    with low_memory_activations(model):
        assert model.blocks[0].mlp.__dict__["forward"] is patched
        assert _lean_forwards(model) == [False, True, True]
    assert model.blocks[0].mlp.__dict__["forward"] is patched


def test_activations_without_a_twin_are_left_alone(gemma2_like):
    before = _acts(gemma2_like)
    with low_memory_activations(gemma2_like):
        assert _acts(gemma2_like) == before
        assert not uses_low_memory(gemma2_like)


@pytest.mark.parametrize("act_fn", ["gelu_new", "gelu_fast", "solu_ln", "relu2"])
def test_model_outputs_and_cache_are_bitwise_equal_inside(word_tokenizer, act_fn):
    model = _model(gpt2_like_config(len(word_tokenizer), act_fn=act_fn), word_tokenizer, seed=2)
    tokens = torch.randint(0, model.cfg.d_vocab, (3, 20), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        logits, cache = model.run_with_cache(tokens)
        with low_memory_activations(model):
            assert uses_low_memory(model)
            logits2, cache2 = model.run_with_cache(tokens)
    assert bitwise_equal(logits, logits2)
    assert cache.keys() == cache2.keys()
    for name in cache:
        assert bitwise_equal(cache[name], cache2[name]), name


def _tokens(model, batch=4, pos=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, model.cfg.d_vocab, (batch, pos), generator=g)


def test_harvest_is_bitwise_equal_to_run_with_cache(tiny_model):
    tokens = _tokens(tiny_model)
    n = tiny_model.cfg.n_layers
    names = [f"blocks.{i}.mlp.hook_pre" for i in range(n)]  # what the twin reads, recorded unmutated
    names += [f"blocks.{i}.mlp.hook_post" for i in range(n)]
    names += [f"blocks.{i}.hook_{s}" for i in range(n) for s in ("resid_post", "mlp_out", "resid_mid")]
    with torch.inference_mode():
        _, cache = tiny_model.run_with_cache(tokens)
    got = interp.harvest(tiny_model, tokens, names)
    for name in names:
        assert torch.equal(got[name], cache[name]), name
        assert bitwise_equal(got[name], cache[name]), name
    one = interp.harvest(tiny_model, tokens, [("resid_post", 1)])
    assert bitwise_equal(one["blocks.1.hook_resid_post"], cache["blocks.1.hook_resid_post"])


def test_harvest_with_a_mask_is_bitwise_equal_to_run_with_cache(gpt2_like):
    tokens = _tokens(gpt2_like, seed=3)
    mask = torch.ones_like(tokens)
    mask[0, :5] = 0
    with torch.inference_mode():
        _, cache = gpt2_like.run_with_cache(tokens, attention_mask=mask)
    got = interp.harvest(gpt2_like, tokens, [("mlp_post", 2), ("resid_post", 2)], attention_mask=mask)
    for name, value in got.items():
        assert bitwise_equal(value, cache[name]), name


def test_harvest_uses_the_low_memory_path_and_restores(gpt2_like):
    seen = []

    def select(act):
        seen.append((uses_low_memory(gpt2_like), _acts(gpt2_like)))
        return act

    interp.harvest(gpt2_like, _tokens(gpt2_like), [("mlp_post", 2)], select=select)
    assert seen == [(True, [gelu_new_lowmem] * gpt2_like.cfg.n_layers)]
    assert _pristine(gpt2_like)


def test_harvest_that_raises_inside_restores_act_fn_and_hooks(gpt2_like):
    def select(act):
        raise RuntimeError("select failed")

    with pytest.raises(RuntimeError, match="select failed"):
        interp.harvest(gpt2_like, _tokens(gpt2_like), [("resid_post", 1)], select=select)
    assert _pristine(gpt2_like)
    assert count_hooks(gpt2_like) == 0
    assert not lowmem._SWAPS[gpt2_like].users


def test_a_block_held_by_one_thread_outlives_another_threads_exit(gpt2_like):
    entered, release = threading.Event(), threading.Event()

    def hold():
        with low_memory_activations(gpt2_like):
            entered.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    assert entered.wait(10)
    with low_memory_activations(gpt2_like):
        assert uses_low_memory(gpt2_like)
    assert uses_low_memory(gpt2_like)  # the other thread is still inside
    release.set()
    t.join(10)
    assert _pristine(gpt2_like)


def test_two_threads_harvesting_one_model_get_bitwise_run_with_cache(gpt2_like):
    inputs = [_tokens(gpt2_like, batch=3, pos=12, seed=s) for s in (10, 11)]
    sites = [("mlp_post", 1), ("resid_post", 2), ("mlp_out", 0)]
    with torch.inference_mode():
        refs = [gpt2_like.run_with_cache(t)[1] for t in inputs]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def work(i):
        try:
            start.wait(10)
            for _ in range(15):
                got = interp.harvest(gpt2_like, inputs[i], sites)
                for name, value in got.items():
                    assert bitwise_equal(value, refs[i][name]), (i, name)
                with torch.inference_mode():  # a plain forward between harvests, the act_fn maybe swapped
                    assert bitwise_equal(gpt2_like(inputs[i]), gpt2_like(inputs[i]))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert _pristine(gpt2_like)
    assert not lowmem._SWAPS[gpt2_like].users
    assert count_hooks(gpt2_like) == 0


def test_a_backward_through_a_swapped_model_gives_the_original_gradients(word_tokenizer):
    model = _model(gpt2_like_config(len(word_tokenizer)), word_tokenizer, seed=4)
    tokens = _tokens(model, batch=2, pos=8)
    model(tokens).sum().backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    with low_memory_activations(model):
        model(tokens).sum().backward()
    for n, p in model.named_parameters():
        if n in expected:
            assert torch.equal(p.grad, expected[n]), n


def test_an_mlp_forward_that_fails_its_check_is_not_swapped(word_tokenizer, monkeypatch):
    model = _model(gpt2_like_config(len(word_tokenizer)), word_tokenizer, seed=0)
    monkeypatch.setattr(lowmem, "_MLP_VERIFIED", [False])
    with low_memory_activations(model):
        assert not any(_lean_forwards(model))
        assert _acts(model) == [gelu_new_lowmem] * model.cfg.n_layers
    assert _pristine(model)
