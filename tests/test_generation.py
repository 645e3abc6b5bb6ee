"""Our generation loop (interp.core.generation) against transformer-lens' `generate`."""

from __future__ import annotations

import threading

import pytest
import torch

from interp.core.generation import generate, linear_layout
from interp.core.hooks import count_hooks, hooked
from interp.core.tokens import tokenize
from tolerance import assert_close

PROMPTS = ["the cat sat on the mat", "hello", "the capital of france is", "how do i make bread ?"]
TOY_PROMPTS = ["the capital of france is", "user : how do i bake bread ? assistant :", "the key to the boxes"]


@pytest.fixture(params=["gpt2_like", "gemma2_like", "toy_model"])
def any_model(request):
    return request.getfixturevalue(request.param)


def _prompts(model) -> list[str]:
    return PROMPTS if model.cfg.model_name.startswith("tiny") else TOY_PROMPTS


def _tl(model, tokens, n, **kw):
    out = model.generate(
        tokens, max_new_tokens=n, do_sample=False, use_past_kv_cache=True, verbose=False, **kw
    )
    return out[:, tokens.shape[1] :]


@pytest.mark.parametrize("stop_at_eos", [False, True])
def test_same_tokens_as_transformer_lens_one_prompt_at_a_time(any_model, stop_at_eos):
    for prompt in _prompts(any_model):
        tokens, _ = tokenize(any_model, [prompt])
        ours = generate(any_model, tokens, max_new_tokens=10, stop_at_eos=stop_at_eos)
        assert torch.equal(ours, _tl(any_model, tokens, 10, stop_at_eos=stop_at_eos)), prompt


def test_left_padded_batch_equals_one_at_a_time(any_model):
    prompts = _prompts(any_model)
    tokens, mask = tokenize(any_model, prompts)
    assert not bool(mask.all())  # the batch really is padded
    batched = generate(any_model, tokens, attention_mask=mask, max_new_tokens=10, stop_at_eos=False)
    for i, prompt in enumerate(prompts):
        one, _ = tokenize(any_model, [prompt])
        alone = generate(any_model, one, max_new_tokens=10, stop_at_eos=False)[0]
        assert torch.equal(batched[i], alone), prompt


def test_eos_stops_its_row_only(gpt2_like):
    tokens, mask = tokenize(gpt2_like, PROMPTS)
    free = generate(gpt2_like, tokens, attention_mask=mask, max_new_tokens=8, stop_at_eos=False)
    eos = int(free[0, 2])  # pretend row 0's third token is the end of text
    first = [next((j for j, t in enumerate(row) if t == eos), None) for row in free.tolist()]
    out = generate(gpt2_like, tokens, attention_mask=mask, max_new_tokens=8, eos_token_id=eos)
    for i, cut in enumerate(first):
        if cut is None:
            assert torch.equal(out[i], free[i, : out.shape[1]])
        else:
            assert torch.equal(out[i, : cut + 1], free[i, : cut + 1])
            assert (out[i, cut:] == eos).all()
    assert first[0] is not None and first[0] <= 2


def test_loop_ends_when_every_row_has_stopped(gpt2_like):
    tokens, _ = tokenize(gpt2_like, [PROMPTS[0]])
    free = generate(gpt2_like, tokens, max_new_tokens=6, stop_at_eos=False)
    stop = int(free[0, 1])
    out = generate(gpt2_like, tokens, max_new_tokens=6, eos_token_id=[stop, 0])
    cut = next(j for j, t in enumerate(free[0].tolist()) if t in (stop, 0))
    assert torch.equal(out[0], free[0, : cut + 1])  # ended early: no steps after the last row stopped


def test_hooks_act_once_around_the_loop_and_leave_nothing(tiny_model):
    d = tiny_model.cfg.d_model
    push = torch.randn(d, generator=torch.Generator().manual_seed(3)) * 20
    calls = []

    def add(act, hook):
        calls.append(act.shape[1])
        return act + push

    name = "blocks.1.hook_resid_post"
    tokens, mask = tokenize(tiny_model, PROMPTS)
    plain = generate(tiny_model, tokens, attention_mask=mask, max_new_tokens=6, stop_at_eos=False)
    added = count_hooks(tiny_model)
    steered = generate(
        tiny_model, tokens, attention_mask=mask, max_new_tokens=6, hooks=[(name, add)], stop_at_eos=False
    )
    assert count_hooks(tiny_model) == added == 0
    assert not torch.equal(plain, steered)
    assert calls == [tokens.shape[1]] + [1] * 5  # the prompt once, then one position per step
    for i, prompt in enumerate(PROMPTS):  # the same as transformer-lens' generate under the same hook
        one, _ = tokenize(tiny_model, [prompt])
        with hooked(tiny_model, [(name, add)]):
            assert torch.equal(steered[i], _tl(tiny_model, one, 6, stop_at_eos=False)[0])


def test_a_failing_hook_leaves_the_model_clean(gpt2_like):
    strides = {n: p.stride() for n, p in gpt2_like.named_parameters()}

    def boom(act, hook):
        raise RuntimeError("boom")

    tokens, _ = tokenize(gpt2_like, [PROMPTS[0]])
    with pytest.raises(RuntimeError, match="boom"):
        generate(gpt2_like, tokens, hooks=[("blocks.0.hook_resid_post", boom)])
    assert count_hooks(gpt2_like) == 0
    assert strides == {n: p.stride() for n, p in gpt2_like.named_parameters()}


def test_linear_layout_is_bitwise_equal_and_restored(tiny_model):
    tokens, mask = tokenize(tiny_model, PROMPTS)
    before = {n: (p.stride(), p.detach().clone()) for n, p in tiny_model.named_parameters()}
    with torch.inference_mode():
        ref = tiny_model(tokens, attention_mask=mask)
        with linear_layout(tiny_model):
            changed = [n for n, p in tiny_model.named_parameters() if p.stride() != before[n][0]]
            with linear_layout(tiny_model):  # nested: a no-op
                inner = tiny_model(tokens, attention_mask=mask)
            still = [n for n, p in tiny_model.named_parameters() if p.stride() != before[n][0]]
        after = tiny_model(tokens, attention_mask=mask)
    assert changed and changed == still
    assert any("W_U" in n for n in changed) and any("W_Q" in n for n in changed)
    assert torch.equal(ref, inner) and torch.equal(ref, after)
    for n, p in tiny_model.named_parameters():
        assert p.stride() == before[n][0] and torch.equal(p, before[n][1]), n


def test_linear_layout_shared_by_threads(gpt2_like):
    strides = {n: p.stride() for n, p in gpt2_like.named_parameters()}
    tokens, mask = tokenize(gpt2_like, PROMPTS)
    ref = generate(gpt2_like, tokens, attention_mask=mask, max_new_tokens=6, layout=False, stop_at_eos=False)
    outs, errors = [], []

    def work():
        try:
            for _ in range(3):
                out = generate(gpt2_like, tokens, attention_mask=mask, max_new_tokens=6, stop_at_eos=False)
                outs.append(out)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(outs) == 9 and all(torch.equal(o, ref) for o in outs)
    assert strides == {n: p.stride() for n, p in gpt2_like.named_parameters()}


def test_sampling_is_seeded_without_touching_global_state(gpt2_like):
    tokens, mask = tokenize(gpt2_like, PROMPTS)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    kw = dict(attention_mask=mask, max_new_tokens=8, do_sample=True, temperature=1.5, stop_at_eos=False)
    a = generate(gpt2_like, tokens, seed=7, **kw)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, generate(gpt2_like, tokens, seed=7, **kw))
    assert not torch.equal(a, generate(gpt2_like, tokens, seed=8, **kw))
    one, _ = tokenize(gpt2_like, [PROMPTS[0]])  # transformer-lens' sampler, seeded the same way
    ours = generate(gpt2_like, one, seed=5, max_new_tokens=8, do_sample=True, top_k=10, stop_at_eos=False)
    torch.manual_seed(5)
    theirs = gpt2_like.generate(
        one, max_new_tokens=8, do_sample=True, top_k=10, stop_at_eos=False, verbose=False
    )
    assert torch.equal(ours, theirs[:, one.shape[1] :])


def test_bad_inputs_are_named(gpt2_like):
    tokens, mask = tokenize(gpt2_like, PROMPTS, padding_side="right")
    with pytest.raises(ValueError, match="pad on the left"):
        generate(gpt2_like, tokens, attention_mask=mask)
    with pytest.raises(ValueError, match="shape"):
        generate(gpt2_like, tokens, attention_mask=mask[:, 1:])
    with pytest.raises(ValueError, match="context"):
        generate(gpt2_like, tokens[:1], max_new_tokens=gpt2_like.cfg.n_ctx)
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(gpt2_like, tokens[:1], max_new_tokens=0)


def test_peers_benchmark_smoke():
    """The peers runner end to end on tiny weights, one round: every side agrees token for token."""
    from benchmarks.peers import run_peers

    rows = run_peers(size="small", rounds=1, batches=(2,), new_tokens=3, harvest_prompts=4)
    assert rows and all("NO" not in r.detail for r in rows)
    lens = [float(r.detail.split("max |dp| ")[1]) for r in rows if "max |dp|" in r.detail]
    assert lens and max(lens) < 1e-4  # the three logit lenses agree


@pytest.fixture(params=["gpt2_like", "toy_hooked"])
def gpt2_family(request):
    return request.getfixturevalue(request.param)


def test_fast_blocks_match_transformer_lens(gpt2_family):
    from interp.core.lean import lean_ok as _lean_ok, prompt_logits as _next_logits
    from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

    model = gpt2_family
    assert _lean_ok(model)
    tokens, mask = tokenize(model, _prompts(model))
    lean = [True] * model.cfg.n_layers
    with torch.inference_mode():
        slow, quick = (TransformerLensKeyValueCache.init_cache(model.cfg, "cpu", len(tokens)) for _ in "ab")
        # the lean and transformer-lens blocks round differently (fused matrices, other kernels):
        # the logits differ by rounding, a few ulps of their size (~6 ulps of 17 on the toy model)
        ref = _next_logits(model, tokens, mask, slow)  # the prompt, then one cached step
        assert_close(_next_logits(model, tokens, mask, quick, lean), ref, what="prompt logits")
        step, nxt = torch.ones_like(mask[:, :1]), ref.argmax(-1)[:, None]
        ref = _next_logits(model, nxt, step, slow)
        assert_close(_next_logits(model, nxt, step, quick, lean), ref, what="cached-step logits")
    kw = dict(attention_mask=mask, max_new_tokens=8, stop_at_eos=False)
    assert torch.equal(generate(model, tokens, fast=True, **kw), generate(model, tokens, **kw))


def test_fast_blocks_fire_block_hooks_and_fall_back_for_inner_ones(gpt2_like):
    tokens, mask = tokenize(gpt2_like, PROMPTS)
    push = torch.randn(gpt2_like.cfg.d_model, generator=torch.Generator().manual_seed(4)) * 20
    kw = dict(attention_mask=mask, max_new_tokens=6, stop_at_eos=False)
    for name in ("blocks.1.hook_resid_post", "blocks.1.ln2.hook_normalized", "blocks.0.attn.hook_z"):
        hooks = [(name, lambda act, hook: act + (push if act.shape[-1] == push.shape[0] else 1.0))]
        slow = generate(gpt2_like, tokens, hooks=hooks, **kw)
        assert not torch.equal(slow, generate(gpt2_like, tokens, **kw)), name
        assert torch.equal(generate(gpt2_like, tokens, hooks=hooks, fast=True, **kw), slow), name


def test_fast_is_ignored_where_blocks_are_not_gpt2_like(gemma2_like):
    tokens, mask = tokenize(gemma2_like, PROMPTS)
    kw = dict(attention_mask=mask, max_new_tokens=6, stop_at_eos=False)
    assert torch.equal(generate(gemma2_like, tokens, fast=True, **kw), generate(gemma2_like, tokens, **kw))


@pytest.mark.parametrize("mode", ["add", "ablate"])
def test_steer_runs_lean_without_relaying_weights_with_the_same_text(gpt2_family, mode, monkeypatch):
    import interp.core.generation as generation
    from interp.steering import SteeringVector, steer

    model = gpt2_family
    strides = {n: p.stride() for n, p in model.named_parameters()}
    vector = SteeringVector(torch.randn(model.cfg.d_model, generator=torch.Generator().manual_seed(1)) * 4,
                            layer=1).bind(model)
    kw = dict(mode=mode, max_new_tokens=6, stop_at_eos=False, batch_size=2, chat=False)
    slow = steer(model, _prompts(model), vector, fast=False, **kw)
    entries, targets = [], generation._targets
    monkeypatch.setattr(generation, "_targets", lambda m: entries.append(m) or targets(m))
    quick = steer(model, _prompts(model), vector, **kw)  # fast by default
    assert entries == [], "lean blocks read the weights as stored: nothing is re-laid out"
    steer(model, _prompts(model), vector, fast=False, **kw)
    assert len(entries) == 1, "transformer-lens blocks: the weights are re-laid out once per steer call"
    assert quick.steered == slow.steered and quick.baseline == slow.baseline
    assert quick.steered != quick.baseline, "the vector changed nothing: the comparison is empty"
    assert strides == {n: p.stride() for n, p in model.named_parameters()}


def test_lean_blocks_read_a_weight_edited_between_calls(gpt2_like):
    """The fused query/key/value matrix lives for one call: an edit made in between (even
    through `.data`, which no version counter sees) is what the next call reads."""
    tokens, mask = tokenize(gpt2_like, PROMPTS)
    kw = dict(attention_mask=mask, max_new_tokens=5, stop_at_eos=False, fast=True)
    before = generate(gpt2_like, tokens, **kw)
    w_q = gpt2_like.blocks[0].attn.W_Q
    saved = w_q.data.clone()
    try:
        w_q.data.mul_(-8.0)
        edited = generate(gpt2_like, tokens, **kw)
        assert torch.equal(edited, generate(gpt2_like, tokens, **{**kw, "fast": False}))
        assert not torch.equal(edited, before), "the edit changed nothing: the check is empty"
    finally:
        w_q.data.copy_(saved)
    assert torch.equal(generate(gpt2_like, tokens, **kw), before)
