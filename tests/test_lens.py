"""Logit lens: exactness at the last layer, per-layer normalization, views, errors, and the
built-in model's `the capital of france is` -> `paris`."""

import math

import plotly.graph_objects as go
import pytest
import torch

import interp
from interp.core.hooks import count_hooks, hooked
from interp.lens import LogitLensResult, logit_lens

PROMPT = "the capital of france is"


def _model_logprobs(model, prompt):
    with torch.inference_mode():
        return model(model.to_tokens(prompt))[0].float().log_softmax(-1)  # [pos, vocab]


def test_last_layer_equals_model_logits(tiny_model):
    lens = logit_lens(tiny_model, PROMPT, targets=["paris", "berlin", "cat"], k=7)
    logp = _model_logprobs(tiny_model, PROMPT)
    top = logp.topk(7)
    err = (lens.top_probs[-1] - top.values.exp()).abs().max().item()
    assert err < 1e-4, (
        f"last-layer lens top-k probabilities differ from the model's by {err:.2e} (tolerance 1e-4)"
    )
    assert torch.equal(lens.top_ids[-1], top.indices), "last-layer lens top-k ids differ from the model's"
    ids = list(lens.target_ids)
    err_t = (lens.target_probs[-1] - logp[:, ids].exp()).abs().max().item()
    assert err_t < 1e-4, f"target probabilities at the last layer differ by {err_t:.2e}"
    entropy = -(logp.exp() * logp).sum(-1)
    err_h = (lens.entropy[-1] - entropy).abs().max().item()
    assert err_h < 1e-4, f"last-layer entropy differs from the model's by {err_h:.2e}"
    assert lens.kl_to_final[-1].abs().max().item() < 1e-6, "KL of the final layer to itself must be 0"
    assert lens.layers == ("embed", "0", "1", "2"), lens.layers


def test_soft_cap_is_applied(word_tokenizer):
    """With a tight cap the capped and uncapped distributions differ a lot; the lens must match
    the model's (capped) output."""
    from conftest import _model, gemma2_like_config

    model = _model(
        gemma2_like_config(len(word_tokenizer), output_logits_soft_cap=0.5), word_tokenizer, seed=3
    )
    lens = logit_lens(model, PROMPT, k=3)
    logp = _model_logprobs(model, PROMPT)
    err = (lens.top_probs[-1] - logp.topk(3).values.exp()).abs().max().item()
    assert err < 1e-4, f"soft-capped lens differs from the model by {err:.2e}"
    with torch.inference_mode():
        tokens = model.to_tokens(PROMPT)
        _, cache = model.run_with_cache(tokens)
        uncapped = model.unembed(model.ln_final(cache["blocks.2.hook_resid_post"]))[0].log_softmax(-1)
    gap = (uncapped.topk(3).values.exp() - lens.top_probs[-1]).abs().max().item()
    assert gap > 1e-3, f"cap 0.5 should change the distribution; the uncapped one differs by only {gap:.2e}"


def test_shortformer_model_reads_through_hooks(word_tokenizer):
    """Shortformer blocks take the position embedding on the side: the lens falls back to hooks."""
    from conftest import _model, gpt2_like_config

    model = _model(
        gpt2_like_config(len(word_tokenizer), positional_embedding_type="shortformer"), word_tokenizer, 4
    )
    lens = logit_lens(model, PROMPT, k=3)
    logp = _model_logprobs(model, PROMPT)
    err = (lens.top_probs[-1] - logp.topk(3).values.exp()).abs().max().item()
    assert err < 1e-4, f"shortformer lens differs from the model by {err:.2e}"
    assert count_hooks(model) == 0


def test_matches_transformer_lens_accumulated_resid(tiny_model):
    """TransformerLens recomputes the final norm per layer for `accumulated_resid(apply_ln=True)`
    at the unembed: every layer of the lens must agree with it, not only the last."""
    lens = logit_lens(tiny_model, PROMPT, targets=["paris"], k=5)
    with torch.inference_mode():
        _, cache = tiny_model.run_with_cache(tiny_model.to_tokens(PROMPT))
        stack, labels = cache.accumulated_resid(apply_ln=True, return_labels=True)  # [layer, 1, pos, d]
        logits = tiny_model.unembed(stack[:, 0])
        cap = tiny_model.cfg.output_logits_soft_cap
        if cap and cap > 0:
            logits = cap * torch.tanh(logits / cap)
        logp = logits.float().log_softmax(-1)
    assert len(labels) == len(lens.layers), (labels, lens.layers)
    err = (lens.top_probs - logp.topk(5).values.exp()).abs().max().item()
    assert err < 1e-4, f"lens differs from accumulated_resid(apply_ln=True) by {err:.2e} at some layer"
    ent = -(logp.exp() * logp).sum(-1)
    err_h = (lens.entropy - ent).abs().max().item()
    assert err_h < 1e-4, f"entropy differs from accumulated_resid's by {err_h:.2e}"
    kl = (logp[-1:].exp() * (logp[-1:] - logp)).sum(-1)
    err_kl = (lens.kl_to_final - kl).abs().max().item()
    assert err_kl < 1e-4, f"KL(final || layer) differs by {err_kl:.2e}"


def test_each_layer_is_normalized_with_its_own_statistics(gpt2_like):
    """The embedding row is LayerNorm(embed) with the embedding's own mean and std."""
    lens = logit_lens(gpt2_like, PROMPT, positions=-1, k=3)
    with torch.inference_mode():
        _, cache = gpt2_like.run_with_cache(gpt2_like.to_tokens(PROMPT))
        x = cache["blocks.0.hook_resid_pre"][0, -1]
        ln = gpt2_like.ln_final
        normed = (x - x.mean()) / (x.var(unbiased=False) + ln.eps).sqrt() * ln.w + ln.b
        probs = (normed @ gpt2_like.W_U + gpt2_like.b_U).softmax(-1)
        stale = cache["ln_final.hook_scale"][0, -1]  # the final layer's scale: the known bug
        wrong = ((x - x.mean()) / stale * ln.w + ln.b) @ gpt2_like.W_U + gpt2_like.b_U
    err = (lens.top_probs[0, 0] - probs.topk(3).values).abs().max().item()
    assert err < 1e-5, f"embedding row differs from LayerNorm of its own activations by {err:.2e}"
    gap = (wrong.softmax(-1).topk(3).values - lens.top_probs[0, 0]).abs().max().item()
    assert gap > 1e-3, f"reusing the final scale should give a different embedding row; gap {gap:.2e}"


def test_selected_positions_match_full_run_and_one_forward(tiny_model):
    full = logit_lens(tiny_model, PROMPT, targets="paris")
    calls, shapes = [], []
    with hooked(
        tiny_model,
        [
            ("blocks.0.hook_resid_pre", lambda a, hook: calls.append(a.shape[1])),
            ("ln_final.hook_normalized", lambda a, hook: shapes.append(tuple(a.shape))),
        ],
    ):
        part = logit_lens(tiny_model, PROMPT, positions=[-1, 1], targets="paris", chunk_positions=1)
    assert calls == [6], f"expected one forward over the 6 prompt tokens, saw {calls}"
    assert all(s[1] == 1 for s in shapes), (
        f"the final norm must only see the requested positions, saw {shapes}"
    )
    assert part.positions == (1, 5)
    err = (part.top_probs - full.top_probs[:, [1, 5]]).abs().max().item()
    assert err < 1e-5, f"selected positions differ from the full lens by {err:.2e}"
    assert torch.equal(part.target_ranks, full.target_ranks[:, [1, 5]])
    assert count_hooks(tiny_model) == 0


def test_token_input_equals_text_input(tiny_model):
    text = logit_lens(tiny_model, PROMPT, targets=["paris", 7])
    ids = tiny_model.to_tokens(PROMPT)
    for tokens in (ids, ids[0]):
        lens = logit_lens(tiny_model, tokens, targets=["paris", 7])
        assert torch.equal(lens.top_ids, text.top_ids) and torch.allclose(lens.top_probs, text.top_probs)
        assert torch.equal(lens.target_ranks, text.target_ranks) and lens.tokens == text.tokens
    assert lens.target_ids[1] == 7 and lens.targets[0] == "paris"
    with pytest.raises(ValueError, match=r"shape \[pos\] or \[1, pos\]"):
        logit_lens(tiny_model, ids.expand(2, -1))
    with pytest.raises(ValueError, match="integer ids in"):
        logit_lens(tiny_model, ids + tiny_model.cfg.d_vocab)
    with pytest.raises(ValueError, match="context is 48 tokens"):
        logit_lens(tiny_model, ids.repeat(1, 10))
    with pytest.raises(ValueError, match="tokens are empty"):
        logit_lens(tiny_model, ids[:, :0])


def test_lookups_views_and_plots(gemma2_like):
    lens = logit_lens(gemma2_like, PROMPT, targets=["paris", "berlin"], k=4)
    top1 = lens.top1()
    assert len(top1) == 4 and top1[-1] == lens.top_tokens[-1][-1][0]
    first = lens.first_top1()
    assert first is not None and top1[first] == top1[-1] and all(t != top1[-1] for t in top1[:first]), (
        top1,
        first,
    )
    settled = lens.first_top1(stays=True)
    assert settled >= first and all(t == top1[-1] for t in top1[settled:]), (top1, settled)
    assert lens.first_top1(lens.top_ids[-1, -1, 0].item()) == first
    ranks = lens.trajectory("paris", metric="rank")
    assert ranks.shape == (4,) and int(ranks.min()) >= 1
    assert torch.allclose(lens.trajectory(" paris"), lens.target_probs[:, -1, 0])

    frame = lens.to_frame()
    assert len(frame) == 4 * 6, len(frame)
    assert {
        "layer",
        "position",
        "token",
        "top1",
        "top1_prob",
        "entropy",
        "kl_to_final",
        "p(paris)",
        "rank(berlin)",
    } <= set(frame.columns)

    fig = lens.plot()
    assert isinstance(fig, go.Figure) and isinstance(fig.data[0], go.Heatmap)
    assert [list(r) for r in fig.data[0].text] == [[c[0] for c in row] for row in lens.top_tokens]
    assert "entropy" in fig.data[0].customdata[0][0]
    for color in ("entropy", "kl"):
        assert isinstance(lens.plot(color=color).data[0], go.Heatmap)
    traj = lens.plot("trajectory")
    assert [t.name for t in traj.data] == ["paris", "berlin"]
    assert lens.plot("trajectory", metric="rank").layout.yaxis.type == "log"
    assert "LogitLensResult" in repr(lens)


def test_entropy_bounds(tiny_model):
    lens = logit_lens(tiny_model, "the cat sat on the mat")
    top = math.log(tiny_model.cfg.d_vocab) + 1e-4
    assert float(lens.entropy.min()) >= 0 and float(lens.entropy.max()) <= top, (
        lens.entropy.min(),
        lens.entropy.max(),
    )
    assert float(lens.kl_to_final.min()) >= 0


def test_bad_input_gives_clear_errors(gpt2_like):
    with pytest.raises(ValueError, match="non-empty"):
        logit_lens(gpt2_like, "")
    with pytest.raises(ValueError, match="context is 48 tokens"):
        logit_lens(gpt2_like, " ".join(["cat"] * 60))
    with pytest.raises(ValueError, match=r"position 6 is out of range .* 6 tokens: expected \[-6, 6\)"):
        logit_lens(gpt2_like, PROMPT, positions=6)
    with pytest.raises(ValueError, match="positions is empty"):
        logit_lens(gpt2_like, PROMPT, positions=[])
    with pytest.raises(ValueError, match="k=0"):
        logit_lens(gpt2_like, PROMPT, k=0)
    with pytest.raises(KeyError, match="zebra"):
        logit_lens(gpt2_like, PROMPT, targets=["zebra"])
    lens = logit_lens(gpt2_like, PROMPT, positions=-1, targets="paris")
    with pytest.raises(KeyError, match=r"computed positions: \[5\]"):
        lens.column(2)
    with pytest.raises(KeyError, match="targets: \\['paris'\\]"):
        lens.trajectory("berlin")
    with pytest.raises(ValueError, match="kind 'bars'"):
        lens.plot("bars")
    with pytest.raises(ValueError, match="color 'rank'"):
        lens.plot(color="rank")
    with pytest.raises(ValueError, match="top_ids has shape"):
        LogitLensResult(**{**lens.__dict__, "top_ids": lens.top_ids[:2]})
    assert count_hooks(gpt2_like) == 0


# --- the built-in model ------------------------------------------------------------------------


def test_toy_capital_of_france_ends_in_paris(toy_model):
    lens = interp.logit_lens(toy_model, PROMPT, targets=["paris"])
    final = lens.top1()[-1]
    assert final == "paris", (
        f"final top-1 for {PROMPT!r} is {final!r}, expected 'paris' (by layer: {lens.top1()})"
    )
    first = lens.first_top1("paris")
    assert first is not None, f"first layer where 'paris' is top-1 not reported: {lens.top1()}"
    assert lens.top1()[first] == "paris" and all(t != "paris" for t in lens.top1()[:first]), (
        lens.top1(),
        first,
    )
    trajectory = [round(p, 4) for p in lens.trajectory("paris").tolist()]
    print(f"toy: 'paris' first top-1 at layer {lens.layers[first]!r}; p(paris) by layer {trajectory}")
    logp = _model_logprobs(toy_model, PROMPT)
    err = (lens.target_probs[-1, :, 0] - logp[:, lens.target_ids[0]].exp()).abs().max().item()
    err_k = (lens.top_probs[-1] - logp.topk(lens.top_probs.shape[-1]).values.exp()).abs().max().item()
    assert max(err, err_k) < 1e-4, (
        f"toy last-layer lens differs from its logits by {max(err, err_k):.2e} (tolerance 1e-4)"
    )


# --- the shared vocabulary and result base -------------------------------------------------------


def test_a_list_of_several_prompts_is_an_error_not_the_first_only(tiny_model):
    with pytest.raises(ValueError, match=r"logit_lens reads one prompt, but prompt is a list of 2"):
        logit_lens(tiny_model, [PROMPT, "the cat sat on the mat"])
    one = logit_lens(tiny_model, [PROMPT], positions=-1)
    plain = logit_lens(tiny_model, PROMPT, positions=-1)
    assert one.prompt == plain.prompt and torch.equal(one.top_ids, plain.top_ids)


def test_read_positions_accept_last_and_post_instruction(tiny_model):
    by_int = logit_lens(tiny_model, PROMPT, positions=-1, targets="paris")
    by_name = logit_lens(tiny_model, PROMPT, positions="last", targets="paris")
    assert by_name.positions == by_int.positions == (5,)
    assert torch.equal(by_name.top_ids, by_int.top_ids)
    assert logit_lens(tiny_model, PROMPT, positions=[0, "last"]).positions == (0, 5)
    with pytest.raises(ValueError, match="position 'first' must be an int, 'last'"):
        logit_lens(tiny_model, PROMPT, positions="first")
    from conftest import _model, gpt2_like_config

    chat_model = _model(gpt2_like_config(tiny_model.cfg.d_vocab), tiny_model.tokenizer, 0)
    profile = interp.ModelProfile("tiny-chat", chat_template="user : {prompt} assistant :")
    interp.set_profile(chat_model, profile)
    wrapped = logit_lens(chat_model, PROMPT, chat=True, positions="post_instruction")
    assert wrapped.prompt == f"user : {PROMPT} assistant :"
    n = len(wrapped.tokens)
    assert wrapped.positions == (n - 2, n - 1) and wrapped.tokens[-2:] == ("assistant", ":"), wrapped.tokens
    assert logit_lens(chat_model, PROMPT).prompt == PROMPT, "the lens reads text as given unless chat=True"


def test_result_shares_the_base(tiny_model):
    lens = logit_lens(tiny_model, PROMPT, targets="paris")
    assert isinstance(lens, interp.Result)
    assert isinstance(lens.plot(), go.Figure)
    html = lens._repr_html_()
    assert "logit lens of" in html and "<table" in html
    with pytest.raises(Exception):
        lens.prompt = "changed"  # frozen
