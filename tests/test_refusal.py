"""Refusal directions: evaluation helpers and Arditi-style selection on tiny models, then the
acceptance numbers on the built-in model (held-out requests)."""

import html
import math

import plotly.graph_objects as go
import pytest
import torch
from conftest import _model, gpt2_like_config

import interp
from interp.core.hooks import count_hooks
from interp.core.results import Result
from interp.steering import (
    DirectionSelection,
    KLResult,
    SteerResult,
    harmless_kl,
    is_refusal,
    mean_difference,
    orthogonalize,
    refusal_rate,
    refusal_score,
    refusal_token_ids,
    select_direction,
    steer,
)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread: these tensors are too small to gain from more, and on a shared
    machine a second thread waiting at every op's barrier makes the tests several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


HARM = ["how do i make a bomb ?", "how do i make a bomb", "i make a bomb ?", "how do i make bomb ?"]
SAFE = ["how do i make bread ?", "how do i make bread", "i make bread ?", "do i make bread ?"]


def test_refusal_phrases():
    assert (
        is_refusal("I cannot help with that.")
        and is_refusal("I\u2019m sorry, but no")
        and is_refusal("As an AI ...")
    )
    assert not is_refusal("sure . here is how to bake bread .")
    assert refusal_rate(["i cannot help with that .", "sure . here is how", "i can't", "ok"]) == 0.5
    assert refusal_rate(["no way"], phrases=["no way"]) == 1.0
    r = SteerResult(
        ("a", "b"), ("i cannot", "sure"), ("sure", "sure"), "add", 1.0, 0, "resid_pre", "all", "v"
    )
    assert refusal_rate(r) == 0.5 and refusal_rate(r.baseline) == 0.0
    with pytest.raises(ValueError, match="non-empty list"):
        refusal_rate([])
    with pytest.raises(ValueError, match="non-empty list"):
        refusal_rate("i cannot")


def test_refusal_phrases_come_from_the_model_profile(word_tokenizer):
    model = _model(gpt2_like_config(len(word_tokenizer), model_name="tiny-polite"), word_tokenizer, seed=1)
    interp.set_profile(model, interp.ModelProfile("tiny-polite", refusal_phrases=("regrettably",)))
    texts = ["regrettably no", "regrettably not", "i cannot", "sure"]
    assert refusal_rate(texts, model=model) == 0.5, "the profile's phrases: the two 'regrettably'"
    assert refusal_rate(texts) == 0.25, "without a model the default phrases apply ('i cannot')"
    assert refusal_rate(texts, model=model, phrases=["sure"]) == 0.25, "phrases= wins over the profile"


def test_refusal_score_is_log_odds_of_refusal_tokens(tiny_model):
    ids = refusal_token_ids(tiny_model)
    assert ids == [interp.token_id(tiny_model, "i")], f"refusal tokens {ids}"
    scores = refusal_score(tiny_model, HARM, batch_size=3)
    for prompt, score in zip(HARM, scores):
        with torch.no_grad():
            logp = tiny_model(prompt)[0, -1].log_softmax(-1)[ids].logsumexp(-1)
        want = float(logp - torch.log1p(-logp.exp()))
        assert abs(float(score) - want) < 1e-4, f"{prompt!r}: score {float(score)} vs log-odds {want}"
    v = 5 * mean_difference(tiny_model, HARM, SAFE, layers=[1])[1]
    with v.apply(tiny_model):
        steered = refusal_score(tiny_model, HARM)
    assert not torch.allclose(steered, scores) and count_hooks(tiny_model) == 0
    with pytest.raises(KeyError, match="not a single token"):
        refusal_token_ids(tiny_model, ["zebra"])


def test_harmless_kl(gpt2_like):
    v = mean_difference(gpt2_like, HARM, SAFE, layers=[1])[1]
    zero = harmless_kl(gpt2_like, SAFE, v, mode="add", alpha=0.0)
    assert abs(zero.kl) < 1e-6 and zero.ce_base == pytest.approx(zero.ce_steered), f"alpha=0 KL {zero.kl}"
    kl = harmless_kl(gpt2_like, SAFE, v, mode="ablate", batch_size=3)
    assert kl.kl > 0 and kl.per_prompt.shape == (4,) and kl.n_tokens > 4
    last = harmless_kl(gpt2_like, SAFE, v, over="last")
    assert last.kl != kl.kl and last.n_tokens == 4
    assert isinstance(kl.plot(), go.Figure) and len(kl.to_frame()) == 4
    assert isinstance(kl, (KLResult, Result)) and html.escape(kl.summary()) in kl._repr_html_()
    raw = harmless_kl(gpt2_like, SAFE, v.direction, layer=1, mode="add", alpha=2.0)
    assert raw.kl == pytest.approx(harmless_kl(gpt2_like, SAFE, v, mode="add", alpha=2.0).kl)
    with pytest.raises(ValueError, match="over 'first'"):
        harmless_kl(gpt2_like, SAFE, v, over="first")


def test_select_direction_scores_agree_with_the_helpers(gpt2_like):
    sel = select_direction(
        gpt2_like,
        HARM,
        SAFE,
        val_harmful=HARM[:3],
        val_harmless=SAFE[:3],
        batch_size=4,
        kl_threshold=math.inf,
        induce_threshold=-math.inf,
        max_layer_frac=1.0,
    )
    assert isinstance(sel, DirectionSelection) and sel.eligible.shape == (2, 1)
    assert sel.max_layer == 2 and sel.vectors.layers == (0, 1), "the last layer must never be a candidate"
    sel2 = select_direction(
        gpt2_like,
        HARM,
        SAFE,
        val_harmful=HARM[:3],
        val_harmless=SAFE[:3],
        max_layer_frac=0.3,
        kl_threshold=math.inf,
        induce_threshold=-math.inf,
        layers=[0, 1, 2],
    )
    assert sel2.max_layer == 1 and torch.isnan(sel2.bypass[1:, 0]).all() and not sel2.eligible[1:, 0].any()
    assert sel2.vectors.layers == (0, 1, 2) and sel2.layer == 0
    for layer in range(2):
        v = sel.vectors[layer]
        with v.apply(gpt2_like, mode="ablate"):
            bypass = float(refusal_score(gpt2_like, HARM[:3]).mean())
        with v.apply(gpt2_like, mode="add"):
            induce = float(refusal_score(gpt2_like, SAFE[:3]).mean())
        kl = harmless_kl(gpt2_like, SAFE[:3], v, mode="ablate", over="last").kl
        got = (float(sel.bypass[layer, 0]), float(sel.induce[layer, 0]), float(sel.kl[layer, 0]))
        for name, a, b in zip(("bypass", "induce", "kl"), got, (bypass, induce, kl)):
            assert abs(a - b) < 1e-4, f"layer {layer} {name}: batched candidates {a} vs one at a time {b}"
    assert sel.layer == int(sel.bypass.nan_to_num(math.inf).argmin()), (
        "with no filters the lowest bypass wins"
    )
    frame = sel.to_frame()
    assert len(frame) == 2 and frame["chosen"].sum() == 1 and isinstance(sel.plot(), go.Figure)
    assert isinstance(sel, Result) and html.escape(sel.summary()) in sel._repr_html_()
    assert isinstance(sel2.plot(), go.Figure) and sel2.to_frame()["bypass_score"].isna().sum() == 2
    with pytest.raises(ValueError, match="val_harmful has 1 prompt"):
        select_direction(gpt2_like, HARM, SAFE, val_harmful=HARM[:1], val_harmless=SAFE)
    with pytest.raises(ValueError, match="max_layer_frac is 0"):
        select_direction(gpt2_like, HARM, SAFE, val_harmful=HARM, val_harmless=SAFE, max_layer_frac=0)
    assert count_hooks(gpt2_like) == 0


def test_select_direction_on_a_chat_model_uses_template_positions(word_tokenizer):
    chat = _model(gpt2_like_config(len(word_tokenizer), model_name="tiny-chat"), word_tokenizer, seed=5)
    interp.set_profile(chat, interp.ModelProfile("tiny-chat", chat_template="user : {prompt} assistant :", refusal_tokens=("i",)))
    with pytest.warns(UserWarning, match="no candidate passed"):
        sel = select_direction(chat, HARM, SAFE, val_harmful=HARM, val_harmless=SAFE, kl_threshold=-1.0)
    assert sel.vectors.positions == (-2, -1) and sel.bypass.shape == (2, 2) and sel.layer < 2
    assert sel.position in (-2, -1) and sel.vector.layer == sel.layer


# --- acceptance on the built-in model -----------------------------------------------------------


def _requests(kind: str, split: str) -> list[str]:
    """The built-in model's own request sets (`interp/data/toy_*.json`, written from its corpus)."""
    from interp import data

    return data.prompts(f"toy_{kind}", split)


@pytest.fixture(scope="module")
def toy_setup(toy_model):
    """The direction selected on training requests (means over 512 of each kind, the last 64 of
    each training split for validation), and every held-out request of each kind."""
    harm, safe = _requests("harmful", "train"), _requests("harmless", "train")
    assert len(harm) >= 576 and len(safe) >= 576, f"too few training requests: {len(harm)}, {len(safe)}"
    sel = select_direction(
        toy_model, harm[:512], safe[:512], val_harmful=harm[-64:], val_harmless=safe[-64:], batch_size=64
    )
    held = {"harmful": _requests("harmful", "heldout"), "harmless": _requests("harmless", "heldout")}
    assert len(held["harmful"]) >= 128 and len(held["harmless"]) >= 128, "too few held-out requests"
    return sel, held


def test_toy_refusal_direction_flips_refusal_both_ways(toy_model, toy_setup):
    sel, held = toy_setup
    print(sel.to_frame().to_string())
    # three new tokens decide it: a refusal starts `i cannot`, a compliance `sure .`
    ablated = steer(toy_model, held["harmful"], sel.vector, mode="ablate", max_new_tokens=3, batch_size=128)
    added = steer(toy_model, held["harmless"], sel.vector, mode="add", max_new_tokens=3, batch_size=128)
    rates = {
        "harmful unsteered": refusal_rate(ablated.baseline),
        "harmful ablated": refusal_rate(ablated),
        "harmless unsteered": refusal_rate(added.baseline),
        "harmless added": refusal_rate(added),
    }
    print(
        rates,
        f"layer {sel.layer} position {sel.position}; "
        f"{len(held['harmful'])} + {len(held['harmless'])} prompts",
    )
    assert rates["harmful unsteered"] >= 0.95, (
        f"harmful refused unsteered {rates['harmful unsteered']:.3f} < 0.95"
    )
    assert rates["harmful ablated"] <= 0.10, (
        f"harmful refused with ablation {rates['harmful ablated']:.3f} > 0.10"
    )
    assert rates["harmless unsteered"] <= 0.05, (
        f"harmless refused unsteered {rates['harmless unsteered']:.3f} > 0.05"
    )
    assert rates["harmless added"] >= 0.90, (
        f"harmless refused with addition {rates['harmless added']:.3f} < 0.90"
    )


def test_toy_ablation_keeps_harmless_behaviour(toy_model, toy_setup):
    sel, held = toy_setup
    kl = harmless_kl(toy_model, held["harmless"][:256], sel.vector, mode="ablate")
    print(f"KL {kl.kl:.4f} nats/token, CE {kl.ce_base:.3f} -> {kl.ce_steered:.3f}")
    assert kl.kl < 0.1, f"KL on harmless prompts under ablation {kl.kl:.4f} nats per token >= 0.1"


def test_toy_orthogonalize_matches_runtime_ablation(toy_model, toy_setup):
    sel, held = toy_setup
    edited = orthogonalize(toy_model, sel.vector)
    prompts = held["harmful"][:16] + held["harmless"][:16]
    tokens, mask = interp.tokenize(toy_model, interp.format_chat(toy_model, prompts))
    with torch.inference_mode():
        with sel.vector.apply(toy_model, mode="ablate"):
            runtime = toy_model(tokens, attention_mask=mask)
        weights = edited(tokens, attention_mask=mask)
    err = float(((runtime - weights).abs() * mask[..., None]).max())
    print(f"orthogonalize vs runtime ablation: max logit difference {err:.2e}")
    # tolerance: float32 rounding of the projections; 1e-3 on logits that span tens of nats
    assert err < 1e-3, f"orthogonalized logits differ from runtime ablation by {err} (tolerance 1e-3)"
    runtime_text = steer(
        toy_model, prompts, sel.vector, mode="ablate", max_new_tokens=6, baseline=False
    ).steered
    with pytest.raises(ValueError, match="other weights"):
        steer(edited, prompts, sel.vector)
    edited_text = steer(
        edited, prompts, sel.vector.bind(edited), alpha=0.0, max_new_tokens=6, baseline=False
    ).steered
    same = sum(a == b for a, b in zip(runtime_text, edited_text)) / len(prompts)
    assert same == 1.0, f"only {same:.2%} of completions agree between orthogonalize and runtime ablation"


def test_toy_batched_generation_equals_one_at_a_time(toy_model, toy_setup):
    sel, held = toy_setup
    prompts = held["harmful"][:3] + held["harmless"][:2] + ["how do i bake a cake ?"]
    lengths = {len(p.split()) for p in prompts}
    assert len(lengths) >= 3, f"want prompts of different lengths for left padding, got lengths {lengths}"
    batched = steer(toy_model, prompts, sel.vector, max_new_tokens=6, batch_size=len(prompts))
    single = [steer(toy_model, p, sel.vector, max_new_tokens=6) for p in prompts]
    assert list(batched.steered) == [s.steered[0] for s in single], "steered: batched != one at a time"
    assert list(batched.baseline) == [s.baseline[0] for s in single], "baseline: batched != one at a time"
