"""Steering vectors on tiny random models: mean difference, the vector value, steer(),
`SteeringVector.apply`, directional ablation and its weight-edit form, deprecated names, and
bad input."""

import dataclasses
import html
import math
import types

import pandas as pd
import plotly.graph_objects as go
import pytest
import torch
from conftest import _model, gpt2_like_config

import interp
from interp.core.hooks import count_hooks, hooked, record
from interp.core.results import Result
from interp.steering import (
    SteeringVector,
    SteeringVectors,
    mean_difference,
    orthogonalize,
    steer,
    steering_hooks,
)
from interp.steering import extract as extract_mod

POS = ["how do i make a bomb ?", "the cat sat on the mat", "hello", "is the key to the cabinets big ?"]
NEG = ["the dog is big", "paris is the capital of france", "up down", "cat dog cat"]
PROMPTS = ["how do i make bread ?", "hello", "the capital of france is", "cat -> cat ; dog -> dog ; key ->"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread: these tensors are too small to gain from more, and on a shared
    machine a second thread waiting at every op's barrier makes the tests several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def chat_like(word_tokenizer):
    """A GPT-2-like tiny model with the built-in model's chat format, through its own profile."""
    model = _model(gpt2_like_config(len(word_tokenizer), model_name="tiny-chat"), word_tokenizer, seed=3)
    interp.set_profile(model, interp.ModelProfile("tiny-chat", chat_template="user : {prompt} assistant :",
                                                  refusal_tokens=("i",)))
    return model


def _manual_mean(model, prompts, layer, pos):
    rows = []
    for p in prompts:
        _, cache = model.run_with_cache(p, names_filter=f"blocks.{layer}.hook_resid_pre")
        rows.append(cache[f"blocks.{layer}.hook_resid_pre"][0, pos])
    return torch.stack(rows).mean(0)


def test_mean_difference_matches_unbatched_means(tiny_model):
    vs = mean_difference(tiny_model, POS, NEG, batch_size=3)
    assert isinstance(vs, SteeringVectors)
    assert vs.layers == (0, 1, 2) and vs.positions == (-1,) and list(vs) == [0, 1, 2]
    for layer in vs.layers:
        want = _manual_mean(tiny_model, POS, layer, -1) - _manual_mean(tiny_model, NEG, layer, -1)
        err = float((vs[layer].direction - want).abs().max())
        assert err < 1e-4, f"layer {layer}: batched left-padded mean differs from one-at-a-time by {err}"
    v = vs[1]
    assert (v.layer, v.site, v.n_positive, v.n_negative) == (1, "resid_pre", 4, 4)
    assert v.model_name == tiny_model.cfg.model_name and v.fingerprint == interp.core.cache.fingerprint(tiny_model)
    assert len(v.prompt_hash) == 16 and v.prompt_hash != mean_difference(tiny_model, NEG, POS)[1].prompt_hash
    assert vs.norms.shape == (3, 1)
    assert isinstance(vs.plot(), go.Figure) and len(vs.to_frame()) == 3


def test_mean_difference_stops_at_last_layer_and_caches(gpt2_like, monkeypatch):
    deeper = []
    with hooked(gpt2_like, [("blocks.1.hook_resid_pre", lambda a, hook: deeper.append(1))]):
        vs = mean_difference(gpt2_like, POS, NEG, layers=[0])
    assert deeper == [], f"the forward ran past layer 0: {len(deeper)} call(s) reached block 1"
    assert count_hooks(gpt2_like) == 0

    def no_harvest(*args, **kwargs):
        raise AssertionError("harvest called: the cached means were not used")

    monkeypatch.setattr(extract_mod, "harvest", no_harvest)
    again = mean_difference(gpt2_like, POS, NEG, layers=[0])
    assert torch.equal(again[0].direction, vs[0].direction)


def test_chat_models_read_post_instruction_positions(chat_like):
    vs = mean_difference(chat_like, POS, NEG, layers=[-1])
    assert vs.positions == (-2, -1), f"positions {vs.positions}: expected the 2 template tokens 'assistant :'"
    assert "assistant" in vs.position_labels[0] and ":" in vs.position_labels[1]
    assert vs.layers == (2,)
    with pytest.raises(KeyError, match="vs\\[2, position\\]"):
        vs[2]
    with pytest.raises(KeyError, match="layer 0 was not computed"):
        vs[0, -1]
    formatted = interp.format_chat(chat_like, POS)
    want = _manual_mean(chat_like, formatted, 2, -2) - _manual_mean(
        chat_like, interp.format_chat(chat_like, NEG), 2, -2
    )
    err = float((vs[2, -2].direction - want).abs().max())
    assert err < 1e-4, f"post-instruction mean differs by {err}"


def test_vector_arithmetic_and_normalization():
    a = SteeringVector(torch.tensor([3.0, 4.0]), layer=1)
    b = SteeringVector(torch.tensor([1.0, 0.0]), layer=1)
    assert torch.equal((a + b).direction, torch.tensor([4.0, 4.0]))
    assert torch.equal((a - b).direction, torch.tensor([2.0, 4.0]))
    assert torch.equal((2 * a).direction, torch.tensor([6.0, 8.0])) and torch.equal(
        (a * 2).direction, (2 * a).direction
    )
    assert torch.equal((-a).direction, -a.direction) and torch.equal(
        (a / 2).direction, torch.tensor([1.5, 2.0])
    )
    assert abs(a.normalized().norm - 1.0) < 1e-6 and a.norm == 5.0
    assert "+" in (a + b).label and (a + b).layer == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.layer = 2
    with pytest.raises(ValueError, match="different layer"):
        a + SteeringVector(torch.ones(2), layer=0)
    with pytest.raises(ValueError, match="width 2 and 3"):
        a + SteeringVector(torch.ones(3), layer=1)
    with pytest.raises(ValueError, match="different model_name"):
        dataclasses.replace(a, model_name="x") + dataclasses.replace(b, model_name="y")
    with pytest.raises(ValueError, match="zero vector"):
        (a - a).normalized()
    with pytest.raises(ValueError, match="not finite"):
        a * math.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        SteeringVector(torch.tensor([1.0, float("nan")]), layer=0)
    with pytest.raises(ValueError, match="1-D"):
        SteeringVector(torch.ones(2, 2), layer=0)
    with pytest.raises(ValueError, match="unknown site"):
        SteeringVector(torch.ones(2), layer=0, site="resid")


def test_save_load_roundtrip_and_refusals(gpt2_like, gemma2_like, tmp_path):
    v = mean_difference(gpt2_like, POS, NEG, layers=[1])[1]
    path = v.save(tmp_path / "v.safetensors")
    back = SteeringVector.load(path, model=gpt2_like)
    assert torch.equal(back.direction, v.direction)
    assert {f.name: getattr(back, f.name) for f in dataclasses.fields(v) if f.name != "direction"} == {
        f.name: getattr(v, f.name) for f in dataclasses.fields(v) if f.name != "direction"
    }
    with pytest.raises(ValueError, match="refused for this model: vector was made for model 'tiny-gpt2'"):
        SteeringVector.load(path, model=gemma2_like)
    edited = gpt2_like_config(gpt2_like.cfg.d_vocab, seed=7)
    other_weights = _model(edited, gpt2_like.tokenizer, seed=7)
    with pytest.raises(ValueError, match="other weights"):
        SteeringVector.load(path, model=other_weights)
    wide = _model(gpt2_like_config(gpt2_like.cfg.d_vocab, d_model=64, d_head=16), gpt2_like.tokenizer, seed=0)
    with pytest.raises(ValueError, match="width 32 but site 'resid_pre'.* has width 64"):
        SteeringVector.load(path, model=wide)
    bad = tmp_path / "bad.safetensors"
    interp.core.cache.save(
        bad, {"direction": v.direction}, {"format": "interp-steering-vector-1", "width": "31", "layer": "1"}
    )
    with pytest.raises(ValueError, match="metadata says width 31"):
        SteeringVector.load(bad)
    interp.core.cache.save(bad, {"direction": v.direction}, {"format": "something-else"})
    with pytest.raises(ValueError, match="not a steering vector file"):
        SteeringVector.load(bad)
    bad.write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        SteeringVector.load(bad)
    assert other_weights is not None and v.bind(other_weights).fingerprint == interp.core.cache.fingerprint(
        other_weights
    )


def test_batched_generation_equals_one_at_a_time(tiny_model):
    v = 4 * mean_difference(tiny_model, POS, NEG, layers=[1])[1]
    for mode in ("add", "ablate"):
        batched = steer(tiny_model, PROMPTS, v, mode=mode, max_new_tokens=6, batch_size=4)
        single = [steer(tiny_model, p, v, mode=mode, max_new_tokens=6) for p in PROMPTS]
        assert list(batched.steered) == [s.steered[0] for s in single], (
            f"{mode}: batched steered != one at a time"
        )
        assert list(batched.baseline) == [s.baseline[0] for s in single], (
            f"{mode}: batched baseline != one at a time"
        )
    assert batched.steered != batched.baseline, "a 4x mean-difference vector changed no completion"
    assert count_hooks(tiny_model) == 0


def test_steer_result_and_alpha_zero(gpt2_like):
    v = mean_difference(gpt2_like, POS, NEG, layers=[1])[1]
    r = steer(gpt2_like, PROMPTS, v, alpha=0.0, max_new_tokens=5)
    assert r.steered == r.baseline, "alpha=0 must leave generation unchanged"
    frame = r.to_frame()
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == ["prompt", "baseline", "steered"]
    assert len(r) == 4 and isinstance(r.plot(), go.Figure) and "<table" in r._repr_html_()
    no_base = steer(gpt2_like, "hello", v, baseline=False, max_new_tokens=3)
    assert no_base.baseline is None and list(no_base.to_frame().columns) == ["prompt", "steered"]
    raw = steer(gpt2_like, PROMPTS, 5 * v.direction, layer=1, max_new_tokens=5, baseline=False)
    named = steer(gpt2_like, PROMPTS, 5 * v, max_new_tokens=5, baseline=False)
    assert raw.steered == named.steered


@pytest.mark.parametrize("apply_to", ["all", "prompt", "generated"])
def test_apply_to_agrees_with_and_without_kv_cache(tiny_model, apply_to):
    v = 6 * mean_difference(tiny_model, POS, NEG, layers=[1])[1]
    tokens, _ = interp.tokenize(tiny_model, PROMPTS)
    outs = []
    for use_cache in (True, False):
        with v.apply(tiny_model, apply_to=apply_to):
            outs.append(
                tiny_model.generate(
                    tokens,
                    max_new_tokens=5,
                    do_sample=False,
                    use_past_kv_cache=use_cache,
                    padding_side="left",
                    verbose=False,
                    return_type="tokens",
                )
            )
    assert torch.equal(outs[0], outs[1]), f"apply_to={apply_to}: KV-cache generation differs from no-cache"
    plain = tiny_model.generate(tokens, max_new_tokens=5, do_sample=False, padding_side="left", verbose=False)
    assert not torch.equal(outs[0], plain), f"apply_to={apply_to} changed nothing"


def test_prompt_and_generated_split_the_work(gpt2_like):
    v = 6 * mean_difference(gpt2_like, POS, NEG, layers=[1])[1]
    n_prompt = interp.tokenize(gpt2_like, "hello")[0].shape[1]
    seen = {}
    for apply_to in ("prompt", "generated"):
        calls = []
        keep = [("blocks.2.hook_resid_pre", lambda a, hook, calls=calls: calls.append(a.clone()))]
        with v.apply(gpt2_like, apply_to=apply_to), hooked(gpt2_like, keep):
            gpt2_like.generate("hello", max_new_tokens=3, do_sample=False, verbose=False)
        seen[apply_to] = calls
    plain = []
    with hooked(gpt2_like, [("blocks.2.hook_resid_pre", lambda a, hook: plain.append(a.clone()))]):
        gpt2_like.generate("hello", max_new_tokens=3, do_sample=False, verbose=False)
    assert plain[0].shape[1] == n_prompt and all(c.shape[1] == 1 for c in plain[1:])
    assert not torch.allclose(seen["prompt"][0], plain[0]) and torch.allclose(seen["generated"][0], plain[0])


def test_apply_leaves_nothing_also_on_error(gpt2_like):
    v = mean_difference(gpt2_like, POS, NEG, layers=[1])[1]
    tokens, mask = interp.tokenize(gpt2_like, PROMPTS)
    clean = gpt2_like(tokens, attention_mask=mask)
    with (3 * v).apply(gpt2_like) as model:
        assert model is gpt2_like and count_hooks(gpt2_like) == 1
        steered = gpt2_like(tokens, attention_mask=mask)
    with pytest.raises(RuntimeError, match="boom"), v.apply(gpt2_like, mode="ablate"):
        assert count_hooks(gpt2_like) == 2 * gpt2_like.cfg.n_layers + 1
        raise RuntimeError("boom")
    assert count_hooks(gpt2_like) == 0
    after = gpt2_like(tokens, attention_mask=mask)
    assert torch.equal(clean, after) and not torch.allclose(clean, steered)


def test_ablation_removes_direction_from_every_layer(tiny_model):
    v = 3 * mean_difference(tiny_model, POS, NEG, layers=[1])[1]
    unit = v.normalized().direction
    tokens, mask = interp.tokenize(tiny_model, PROMPTS)
    sites = [
        (s, layer)
        for layer in range(tiny_model.cfg.n_layers)
        for s in ("resid_pre", "resid_post", "attn_out", "mlp_out")
    ]
    with v.apply(tiny_model, mode="ablate"), record(tiny_model, sites) as acts:
        tiny_model(tokens, attention_mask=mask)
    worst = max(float((a @ unit).abs().max() / a.norm(dim=-1).max()) for a in acts.values())
    assert worst < 1e-5, f"relative component along the ablated direction {worst} (want < 1e-5)"
    with (
        v.apply(tiny_model, mode="ablate_then_add", alpha=2.0),
        record(tiny_model, [("resid_pre", 1)]) as acts,
    ):
        tiny_model(tokens, attention_mask=mask)
    comp = acts["blocks.1.hook_resid_pre"] @ unit
    err = float((comp - 2 * v.norm).abs().max())
    assert err < 1e-3, (
        f"ablate_then_add: component {comp.flatten()[:3]} should be alpha*|v| = {2 * v.norm} (err {err})"
    )


def test_orthogonalize_matches_runtime_ablation(gpt2_like, gemma2_like):
    v = mean_difference(gpt2_like, POS, NEG, layers=[1])[1]
    before = interp.core.cache.fingerprint(gpt2_like)
    edited = orthogonalize(gpt2_like, v)
    assert interp.core.cache.fingerprint(gpt2_like) == before, "orthogonalize changed the original model"
    assert edited is not gpt2_like and edited.tokenizer is gpt2_like.tokenizer
    tokens, mask = interp.tokenize(gpt2_like, PROMPTS)
    with torch.inference_mode():
        with v.apply(gpt2_like, mode="ablate"):
            runtime = gpt2_like(tokens, attention_mask=mask)
        weights = edited(tokens, attention_mask=mask)
    err = float((runtime - weights).abs().max())
    # tolerance: float32 rounding of the projections, well below 1e-4 on logits of size ~1
    assert err < 1e-4, f"orthogonalized logits differ from runtime ablation by {err} (tolerance 1e-4)"
    a = steer(gpt2_like, PROMPTS, v, mode="ablate", max_new_tokens=6, baseline=False).steered
    b = steer(edited, PROMPTS, v.bind(edited), alpha=0.0, max_new_tokens=6).baseline  # unsteered text
    assert a == b
    with pytest.raises(ValueError, match="normalises each sublayer"):
        orthogonalize(gemma2_like, torch.ones(32))
    with pytest.raises(ValueError, match="shape \\[32\\]"):
        orthogonalize(gpt2_like, torch.ones(31))


def test_bad_input_is_explained(gpt2_like, gemma2_like):
    v = mean_difference(gpt2_like, POS, NEG, layers=[1])[1]
    with pytest.raises(ValueError, match="positive has 0 prompt"):
        mean_difference(gpt2_like, [], NEG)
    with pytest.raises(ValueError, match="negative has 1 prompt"):
        mean_difference(gpt2_like, POS, ["hello"])
    with pytest.raises(ValueError, match="not one string"):
        mean_difference(gpt2_like, "hello", NEG)
    with pytest.raises(ValueError, match="very different sizes \\(44 vs 4"):
        mean_difference(gpt2_like, POS * 11, NEG)
    with pytest.raises(ValueError, match="layer 5 is out of range for a 3-layer model"):
        mean_difference(gpt2_like, POS, NEG, layers=[5])
    with pytest.raises(ValueError, match="positions"):
        mean_difference(gpt2_like, POS, NEG, positions=[0])
    with pytest.raises(ValueError, match="unknown site"):
        mean_difference(gpt2_like, POS, NEG, site="resid")
    with pytest.raises(ValueError, match="a prompt has only 2 tokens; positions \\[-3\\] need 3"):
        mean_difference(gpt2_like, ["hello", "the cat sat on the mat"], NEG, positions=-3)
    with pytest.raises(ValueError, match="layer 3 is out of range"):
        steer(gpt2_like, PROMPTS, v, layer=3)
    for alpha in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="alpha .* must be a finite number"):
            steer(gpt2_like, PROMPTS, v, alpha=alpha)
    with pytest.raises(ValueError, match="width 31 but site"):
        steer(gpt2_like, PROMPTS, SteeringVector(torch.ones(31), layer=0))
    with pytest.raises(ValueError, match="made for model 'tiny-gpt2', not 'tiny-gemma-2'"):
        steer(gemma2_like, PROMPTS, v)
    with pytest.raises(ValueError, match="mode 'scale' must be one of"):
        steer(gpt2_like, PROMPTS, v, mode="scale")
    with pytest.raises(ValueError, match="positions 'first' must be one of"):
        steer(gpt2_like, PROMPTS, v, positions="first")  # the deprecated name is the one named
    with pytest.raises(ValueError, match="apply_to 'first' must be one of"):
        steer(gpt2_like, PROMPTS, v, apply_to="first")
    with pytest.raises(ValueError, match="apply_to 'first' must be one of"):
        v.apply(gpt2_like, apply_to="first")
    with pytest.raises(ValueError, match="mode 'scale' must be one of"):
        v.apply(gpt2_like, mode="scale")  # raised at the call, before any hook is added
    with pytest.raises(ValueError, match="unknown generation options \\['beams'\\]"):
        steer(gpt2_like, PROMPTS, v, beams=2)
    with pytest.raises(ValueError, match="no prompts"):
        steer(gpt2_like, [], v)
    with pytest.raises(ValueError, match="zero vector"):
        steer(gpt2_like, PROMPTS, v * 0.0, mode="ablate")
    with pytest.raises(ValueError, match="needs layer"):
        steer(gpt2_like, PROMPTS, v.direction)
    assert count_hooks(gpt2_like) == 0


# --- SteeringVector.apply and the names it replaces ------------------------------------------------


def _generate_tokens(model, tokens, **kw):
    options = dict(do_sample=False, use_past_kv_cache=True, stop_at_eos=False, padding_side="left", verbose=False)
    return model.generate(tokens, max_new_tokens=5, return_type="tokens", **options, **kw)


@pytest.mark.parametrize("mode", ["add", "ablate", "ablate_then_add"])
def test_apply_gives_what_steer_gives(gpt2_like, mode):
    v = 5 * mean_difference(gpt2_like, POS, NEG, layers=[1])[1]
    tokens, mask = interp.tokenize(gpt2_like, PROMPTS)
    with v.apply(gpt2_like, mode=mode, alpha=2.0, apply_to="generated"):
        rows = _generate_tokens(gpt2_like, tokens)[:, tokens.shape[1]:]
    by_apply = tuple(gpt2_like.tokenizer.decode(r, skip_special_tokens=True).strip() for r in rows.tolist())
    by_steer = steer(gpt2_like, PROMPTS, v, mode=mode, alpha=2.0, apply_to="generated", max_new_tokens=5,
                     stop_at_eos=False, baseline=False).steered
    assert by_apply == by_steer, f"{mode}: text generated inside v.apply differs from steer()"
    with v.apply(gpt2_like, mode=mode, alpha=2.0):
        inside = gpt2_like(tokens, attention_mask=mask)
    hooks = v.hooks(gpt2_like, mode=mode, alpha=2.0)
    hooked_run = gpt2_like.run_with_hooks(tokens, attention_mask=mask, fwd_hooks=hooks)
    assert torch.equal(inside, hooked_run) and count_hooks(gpt2_like) == 0
    other = v.apply(gpt2_like, mode=mode, alpha=2.0, layer=0)  # the layer override, as steer(layer=...)
    with other:
        moved = gpt2_like(tokens, attention_mask=mask)
    assert mode == "ablate" or not torch.allclose(moved, inside), "layer=0 applied at the vector's own layer"


def test_steer_positions_is_deprecated_for_apply_to(gpt2_like):
    v = 6 * mean_difference(gpt2_like, POS, NEG, layers=[1])[1]
    with pytest.warns(DeprecationWarning, match=r"steer\(positions=\.\.\.\) is deprecated.*use apply_to="):
        old = steer(gpt2_like, PROMPTS, v, positions="prompt", max_new_tokens=4)
    new = steer(gpt2_like, PROMPTS, v, apply_to="prompt", max_new_tokens=4)
    assert old == new and new.apply_to == "prompt"
    with pytest.warns(DeprecationWarning, match="use .apply_to"):
        assert new.positions == "prompt"
    add = {"blocks.1.hook_resid_pre": v.direction}
    with pytest.warns(DeprecationWarning, match="use apply_to="):
        old_hooks = steering_hooks(gpt2_like, add=add, positions="prompt")
    new_hooks = steering_hooks(gpt2_like, add=add, apply_to="prompt")
    tokens = interp.tokenize(gpt2_like, PROMPTS)[0]
    with hooked(gpt2_like, old_hooks):
        a = _generate_tokens(gpt2_like, tokens)
    with hooked(gpt2_like, new_hooks):
        b = _generate_tokens(gpt2_like, tokens)
    assert torch.equal(a, b)
    with pytest.raises(TypeError, match="unexpected keyword argument 'where'"):
        steering_hooks(gpt2_like, where="all")


def test_steering_function_is_deprecated_for_vector_apply(gpt2_like):
    assert isinstance(interp.steering, types.ModuleType), "interp.steering is the package, not a function"
    from interp.steering.generate import steering as old_path  # the old import path still works

    assert old_path is interp.steering.steering
    v = mean_difference(gpt2_like, POS, NEG, layers=[1])[1]
    tokens, mask = interp.tokenize(gpt2_like, PROMPTS)
    with pytest.warns(DeprecationWarning, match=r"use vector\.apply\(model, \.\.\.\)"):
        old = interp.steering.steering(gpt2_like, v, mode="ablate")
    with old:
        assert count_hooks(gpt2_like) == 2 * gpt2_like.cfg.n_layers + 1
        a = gpt2_like(tokens, attention_mask=mask)
    assert count_hooks(gpt2_like) == 0
    with v.apply(gpt2_like, mode="ablate"):
        b = gpt2_like(tokens, attention_mask=mask)
    assert torch.equal(a, b)
    with pytest.warns(DeprecationWarning, match="use apply_to="), \
            interp.steering.steering(gpt2_like, 3 * v.direction, layer=1, positions="generated"):
        c = _generate_tokens(gpt2_like, tokens)
    with (3 * v).apply(gpt2_like, apply_to="generated"):
        d = _generate_tokens(gpt2_like, tokens)
    assert torch.equal(c, d) and count_hooks(gpt2_like) == 0
    with pytest.raises(TypeError, match="unexpected keyword argument 'strength'"):
        interp.steering.steering(gpt2_like, v, strength=2.0)


def test_results_share_the_base_and_layers_take_an_int(gpt2_like):
    vs = mean_difference(gpt2_like, POS, NEG, layers=1)
    listed = mean_difference(gpt2_like, POS, NEG, layers=[1])
    assert vs.layers == (1,) and torch.equal(vs[1].direction, listed[1].direction)
    assert mean_difference(gpt2_like, POS, NEG, layers=-1).layers == (2,)
    r = steer(gpt2_like, "hello", vs[1], max_new_tokens=2)
    for result in (vs, r):
        assert isinstance(result, Result) and isinstance(result.plot(), go.Figure)
        assert html.escape(result.summary()) in result._repr_html_() and "<table" in result._repr_html_()
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.alpha = 2.0
