"""Neuron ablation: exact against hand-written hooks, statistics, scoping, errors, and the
number-agreement acceptance test on the built-in model."""

import random

import numpy as np
import pytest
import torch
from scipy import stats

import interp
from interp.neurons import engine
from interp.neurons.ablation import AblationResult, ablate_neurons, paired_stats
from interp.neurons.engine import resample_pairs
from interp.neurons.metrics import logit_diff, token_logprob
from interp.core.hooks import count_hooks, harvest, hooked

PROMPTS = [
    "the cat sat on the mat", "the key to the cabinets", "hello", "the capital of france is", "a dog is",
]
REFERENCE = ["the keys to the cabinet are", "how do i make bread ?", "big cat", "the dog sat"]


@pytest.fixture(autouse=True)
def _one_thread():
    """Small batches on tiny models: one thread is as fast, and far faster on a loaded machine
    (two OpenMP threads on two busy cores spend most of their time waiting for each other)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _manual_logprobs(model, prompt, hooks):
    """Last-position log-probs of one unpadded prompt with hand-written hooks."""
    tokens = model.to_tokens(prompt)
    with torch.inference_mode(), hooked(model, hooks):
        return torch.log_softmax(model(tokens)[0, -1].float(), -1)


def _set(index, value):
    def fn(act, hook):
        act[..., index] = value
        return act

    return fn


def _snapshot(model):
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    grads = {k: None if p.grad is None else p.grad.clone() for k, p in model.named_parameters()}
    return weights, grads


def _assert_unchanged(model, snapshot):
    weights, grads = snapshot
    after = model.state_dict()
    changed = [k for k, v in weights.items() if not torch.equal(v, after[k])]
    assert not changed, f"weights changed: {changed[:5]}"
    assert count_hooks(model) == 0, f"{count_hooks(model)} hooks left on the model"
    def same(g, h):
        return (g is None and h is None) or (g is not None and h is not None and torch.equal(g, h))

    touched = [k for k, p in model.named_parameters() if not same(p.grad, grads[k])]
    assert not touched, f"parameter gradients changed: {touched[:5]}"


def test_zero_ablation_matches_hand_written_hooks_and_batching(tiny_model):
    model = tiny_model
    res = ablate_neurons(model, PROMPTS, [(1, 5), (-1, 7)], targets=["is", "are", "the"], progress=False)
    single = ablate_neurons(model, PROMPTS, (1, 5), targets="is", progress=False)
    assert single.tokens == ("is",) and single.neurons == ("L1.N5",)
    for i, p in enumerate(PROMPTS):
        clean = _manual_logprobs(model, p, [])
        hooks = [("blocks.1.mlp.hook_post", _set(5, 0.0)), ("blocks.2.mlp.hook_post", _set(7, 0.0))]
        ablated = _manual_logprobs(model, p, hooks)
        torch.testing.assert_close(res.logprob_before[i], clean[res.token_ids], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(res.logprob_after[i], ablated[res.token_ids], atol=1e-4, rtol=1e-4)
        assert res.top1_after[i] == model.tokenizer.decode([int(ablated.argmax())])
    assert res.neurons == ("L1.N5", "L2.N7") and res.tokens == ("is", "are", "the")
    assert res.to_frame().shape[0] == 3 and res.to_frame(per_prompt=True).shape[0] == 15


def test_whole_layer_ablation_and_default_tokens(tiny_model):
    model = tiny_model
    res = ablate_neurons(model, PROMPTS, [("mlp_out", 0), ("attn_out", -1)], n_tokens=4, progress=False)
    zero = lambda act, hook: torch.zeros_like(act)  # noqa: E731
    for i, p in enumerate(PROMPTS):
        hooks = [("blocks.0.hook_mlp_out", zero), ("blocks.2.hook_attn_out", zero)]
        ablated = _manual_logprobs(model, p, hooks)
        torch.testing.assert_close(res.logprob_after[i], ablated[res.token_ids], atol=1e-4, rtol=1e-4)
    # default tokens: the 4 with the highest mean clean probability
    clean = torch.stack([_manual_logprobs(model, p, []).exp() for p in PROMPTS]).mean(0)
    assert set(res.token_ids.tolist()) == set(clean.topk(4).indices.tolist()), res.tokens
    assert res.neurons == ("mlp_out L0", "attn_out L2")


def test_mean_ablation_uses_the_cached_reference_mean(gpt2_like, monkeypatch, tmp_path):
    model = gpt2_like
    name = "blocks.1.mlp.hook_post"
    acts = [harvest(model, model.to_tokens(r), [name])[name][0] for r in REFERENCE]
    mean = torch.cat(acts).mean(0)  # over every real position of every reference prompt
    res = ablate_neurons(model, PROMPTS, [(1, 3), (1, 9)], method="mean", reference=REFERENCE,
                         targets=["is"], progress=False)
    for i, p in enumerate(PROMPTS):
        ablated = _manual_logprobs(model, p, [("blocks.1.mlp.hook_post", _set([3, 9], mean[[3, 9]]))])
        torch.testing.assert_close(res.logprob_after[i], ablated[res.token_ids], atol=1e-4, rtol=1e-4)
    files = list((tmp_path / "interp-cache" / "neuron_means").glob("*.safetensors"))
    assert len(files) == 1, f"expected one cache entry, found {files}"

    def boom(*a, **k):
        raise AssertionError("reference means were recomputed instead of read from the cache")

    monkeypatch.setattr(engine, "_masked_mean_and_acts", boom)
    again = ablate_neurons(model, PROMPTS, [(1, 3), (1, 9)], method="mean", reference=REFERENCE,
                           targets=["is"], progress=False)
    torch.testing.assert_close(again.logprob_after, res.logprob_after)


def test_resample_pairing_rule_and_values(gemma2_like):
    model = gemma2_like
    assert resample_pairs(["a", "b", "c"], ["a", "b", "c"]).tolist() == [1, 2, 0]
    assert resample_pairs(["x", "b"], ["b", "b", "q"]).tolist() == [1, 2]  # skips an identical text
    with pytest.raises(ValueError, match="other than prompt 0"):
        resample_pairs(["a"], ["a", "a"])
    res = ablate_neurons(model, PROMPTS, [(0, 11), (2, 4)], method="resample", reference=REFERENCE,
                         targets=["is", "cat"], progress=False)
    pairs = res.reference_pairs.tolist()
    assert pairs == [(i + 1) % len(REFERENCE) for i in range(len(PROMPTS))]
    names = ["blocks.0.mlp.hook_post", "blocks.2.mlp.hook_post"]
    ref = [harvest(model, model.to_tokens(r), names) for r in REFERENCE]
    means = {h: torch.cat([r[h][0] for r in ref]).mean(0) for h in names}
    for i, p in enumerate(PROMPTS):
        length = model.to_tokens(p).shape[1]
        hooks = []
        for h, unit in zip(names, (11, 4)):
            src = ref[pairs[i]][h][0, :, unit]
            if len(src) >= length:
                vals = src[-length:]
            else:  # the reference is shorter: its mean fills the first positions
                vals = torch.cat([means[h][unit].expand(length - len(src)), src])
            hooks.append((h, _set(unit, vals[None])))
        ablated = _manual_logprobs(model, p, hooks)
        torch.testing.assert_close(res.logprob_after[i], ablated[res.token_ids], atol=1e-4, rtol=1e-4)


def test_metric_helpers_and_statistics(gpt2_like):
    model = gpt2_like
    met = logit_diff(model, ["is", "are", "is", "are", "is"], "was")
    res = ablate_neurons(model, PROMPTS, [(0, 1), (0, 2), (1, 3)], targets=["is", "are"], metric=met,
                         test="ttest", progress=False)
    lp = torch.stack([_manual_logprobs(model, p, []) for p in PROMPTS])
    tok = [model.tokenizer.convert_tokens_to_ids(w) for w in ("is", "are", "is", "are", "is")]
    was = model.tokenizer.convert_tokens_to_ids("was")
    # log-softmax differences equal logit differences
    torch.testing.assert_close(res.metric_before, lp[range(5), tok] - lp[:, was], atol=1e-4, rtol=1e-4)
    mean, lo, hi, p = paired_stats(res.logprob_before, res.logprob_after, "ttest")
    d = (res.logprob_after - res.logprob_before).double().numpy()
    assert np.allclose(mean.numpy(), d.mean(0), atol=1e-6)
    expected = stats.ttest_rel(res.logprob_after.numpy(), res.logprob_before.numpy()).pvalue
    assert np.allclose(p.numpy(), expected, atol=1e-5), (p, expected)
    assert (lo <= mean).all() and (mean <= hi).all(), (lo, mean, hi)
    pw = paired_stats(res.logprob_before, res.logprob_after, "wilcoxon")[3]
    assert np.allclose(pw.numpy(), [stats.wilcoxon(d[:, j]).pvalue for j in range(2)])
    assert paired_stats(torch.ones(4, 1), torch.ones(4, 1), "ttest")[3].item() == 1.0  # no change at all
    lp_met = token_logprob(model, "is")
    res2 = ablate_neurons(model, PROMPTS, [(0, 1)], targets=["is"], metric=lp_met, progress=False)
    torch.testing.assert_close(res2.metric_after, res2.logprob_after[:, 0])
    plain = ablate_neurons(model, PROMPTS, [(0, 1)], targets=["is"], metric=lambda logits: logits[:, 7],
                           progress=False)
    assert plain.metric_stats is not None and plain.metric_name == "<lambda>"


def test_result_plot_marks_significant_changes():
    n, t = 6, 3
    before = torch.log(torch.full((n, t), 0.2))
    after = before.clone()
    after[:, 0] -= torch.linspace(1.0, 1.5, n)  # a large, consistent drop for token 0 only
    after[:, 1] += torch.tensor([0.1, -0.1, 0.05, -0.05, 0.02, -0.02])
    m, lo, hi, p = paired_stats(before, after, "ttest")
    res = AblationResult(
        prompts=tuple(f"p{i}" for i in range(n)), neurons=("L0.N1",), method="zero", tokens=("a", "b", "c"),
        token_ids=torch.arange(t), logprob_before=before, logprob_after=after, top1_before=("a",) * n,
        top1_after=("b",) * n, mean_change=m, ci_low=lo, ci_high=hi, p_value=p,
    )
    assert res.significant.tolist() == [True, False, False], res.p_value
    assert res.top1_changed == 1.0
    fig = res.plot()
    assert fig.layout.yaxis.type == "log" and len(fig.data) == 2
    assert [a.text for a in fig.layout.annotations] == ["*"], fig.layout.annotations
    assert "AblationResult" in res._repr_html_()
    with pytest.raises(ValueError, match="logprob_after has shape"):
        AblationResult(**{**res.__dict__, "logprob_after": after[:, :2]})


def test_model_is_unchanged_after_every_call_and_every_failure(tiny_model, monkeypatch):
    model = tiny_model
    snap = _snapshot(model)
    ablate_neurons(model, PROMPTS, [(0, 1), ("mlp_out", 1)], progress=False)
    ablate_neurons(model, PROMPTS, [(2, 3)], method="mean", reference=REFERENCE, progress=False)
    ablate_neurons(model, PROMPTS, [(2, 3)], method="resample", reference=REFERENCE, progress=False)
    interp.rank_neurons(model, PROMPTS, token_logprob(model, "is"), k=3, progress=False)
    _assert_unchanged(model, snap)

    def bad_metric(logits, rows):
        raise RuntimeError("metric failed")

    with pytest.raises(RuntimeError, match="metric failed"):
        ablate_neurons(model, PROMPTS, [(0, 1)], metric=bad_metric, progress=False)
    with pytest.raises(RuntimeError, match="metric failed"):
        interp.rank_neurons(model, PROMPTS, bad_metric, k=3, progress=False)
    _assert_unchanged(model, snap)
    # a hook that raises inside the forward pass (replacement values of the wrong shape)
    monkeypatch.setattr(engine.Values, "get", lambda self, *a: torch.zeros(3, 1, 7))
    with pytest.raises(RuntimeError):
        ablate_neurons(model, PROMPTS, [(1, 1)], progress=False)
    _assert_unchanged(model, snap)


def test_bad_input_names_the_value(gpt2_like):
    model = gpt2_like
    with pytest.raises(ValueError, match=r"neuron index 64 is out of range for layer 1: d_mlp is 64"):
        ablate_neurons(model, PROMPTS, [(1, 64)])
    with pytest.raises(ValueError, match=r"neuron index -1 is out of range"):
        ablate_neurons(model, PROMPTS, [(1, -1)])
    with pytest.raises(ValueError, match=r"layer 3 is out of range for a 3-layer model"):
        ablate_neurons(model, PROMPTS, [(3, 0)])
    with pytest.raises(ValueError, match="no neurons given"):
        ablate_neurons(model, PROMPTS, [])
    with pytest.raises(ValueError, match="whole-layer site 'resid_post'"):
        ablate_neurons(model, PROMPTS, [("resid_post", 0)])
    for method in ("mean", "resample"):
        with pytest.raises(ValueError, match=f"method='{method}' needs a reference prompt set"):
            ablate_neurons(model, PROMPTS, [(0, 1)], method=method)
    with pytest.raises(ValueError, match="unknown ablation method 'half'"):
        ablate_neurons(model, PROMPTS, [(0, 1)], method="half")
    with pytest.raises(ValueError, match="test is 'z'"):
        ablate_neurons(model, PROMPTS, [(0, 1)], test="z")
    with pytest.raises(KeyError, match="'zebra' is not a single token"):
        ablate_neurons(model, PROMPTS, [(0, 1)], targets=["is", "zebra"])
    with pytest.raises(KeyError, match="'zebra'"):
        logit_diff(model, "zebra", "is")
    with pytest.raises(KeyError, match="'unicorn'"):
        token_logprob(model, ["is", "unicorn"])
    with pytest.raises(ValueError, match=r"built for 2 prompts, got 5 prompts"):
        ablate_neurons(model, PROMPTS, [(0, 1)], metric=logit_diff(model, ["is", "are"], "the"))
    with pytest.raises(ValueError, match=r"returned \(5, 2\); expected one value per prompt: \(5,\)"):
        ablate_neurons(model, PROMPTS, [(0, 1)], metric=lambda logits: logits[:, :2], progress=False)


def test_old_tokens_keyword_warns_and_gives_the_same_result(gpt2_like):
    model = gpt2_like
    new = ablate_neurons(model, PROMPTS, [(0, 1), (1, 3)], targets=["is", "are"], progress=False)
    with pytest.warns(DeprecationWarning, match="use targets="):
        old = ablate_neurons(model, PROMPTS, [(0, 1), (1, 3)], tokens=["is", "are"], progress=False)
    assert old.tokens == new.tokens == ("is", "are")
    torch.testing.assert_close(old.logprob_after, new.logprob_after)
    torch.testing.assert_close(old.p_value, new.p_value)
    with pytest.raises(TypeError, match="both targets= and its old name tokens="):
        ablate_neurons(model, PROMPTS, [(0, 1)], targets=["is"], tokens=["is"])
    with pytest.raises(TypeError, match="unexpected keyword argument 'token'"):
        ablate_neurons(model, PROMPTS, [(0, 1)], token=["is"])


def test_results_share_the_result_base(gpt2_like):
    model = gpt2_like
    res = ablate_neurons(model, PROMPTS, [(0, 1)], targets=["is"], metric=token_logprob(model, "is"),
                         progress=False)
    assert isinstance(res, interp.Result)
    assert res.summary().startswith("AblationResult: zero ablation of L0.N1; log p(is)")
    assert "top-1 changed" in res._repr_html_() and "<table" in res._repr_html_()
    with pytest.raises(AttributeError):
        res.method = "mean"  # frozen
    ranking = interp.rank_neurons(model, PROMPTS, token_logprob(model, "is"), k=2, progress=False)
    assert isinstance(ranking, interp.Result) and ranking.summary().startswith("NeuronRanking for log p(is)")
    assert ranking.plot() is not None and "<table" in ranking._repr_html_()


def test_chat_wraps_prompts_and_reference(gpt2_like):
    import dataclasses

    from interp.core.profiles import profile_for, set_profile

    model = gpt2_like
    template = "user : {prompt} assistant :"
    wrapped = [template.format(prompt=p) for p in PROMPTS]
    plain = ablate_neurons(model, wrapped, [(1, 3)], method="mean", targets=["is"], progress=False,
                           reference=[template.format(prompt=r) for r in REFERENCE])
    original = profile_for(model)
    set_profile(model, dataclasses.replace(original, chat_template=template))
    try:
        chat = ablate_neurons(model, PROMPTS, [(1, 3)], method="mean", reference=REFERENCE, targets=["is"],
                              chat=True, progress=False)
        default = ablate_neurons(model, PROMPTS, [(1, 3)], targets=["is"], progress=False)
    finally:
        set_profile(model, original)
    assert chat.prompts == tuple(wrapped)
    torch.testing.assert_close(chat.logprob_after, plain.logprob_after)
    assert default.prompts == tuple(PROMPTS)  # chat=False by default: the text as given


# --- acceptance on the built-in model ------------------------------------------------------------


def test_toy_top_ranked_neurons_cut_agreement_far_more_than_random(toy_model):
    from interp.toy.corpus import agreement_prompts

    model = toy_model
    snap = _snapshot(model)

    def metric_for(ps):
        return logit_diff(model, [p.correct[0] for p in ps], [p.wrong[0] for p in ps])

    train = agreement_prompts("train", 160, seed=0)
    held = agreement_prompts("heldout", 160, seed=1)
    ranking = interp.rank_neurons(model, [p.prompt for p in train], metric_for(train), k=10, progress=False)
    assert len(ranking.neurons) == 10 and np.isfinite(ranking.spearman), ranking.to_frame()

    def effect(neurons):
        res = ablate_neurons(model, [p.prompt for p in held], list(neurons), targets=["is", "are"],
                             metric=metric_for(held), progress=False)
        return -res.metric_change, float((res.metric_before > 0).float().mean()), \
            float((res.metric_after > 0).float().mean())

    top_drop, acc_before, acc_top = effect(ranking.neurons)
    per_layer = {}
    for layer, _ in ranking.neurons:
        per_layer[layer] = per_layer.get(layer, 0) + 1
    random_drops, random_accs = [], []
    for seed in range(5):
        rng = random.Random(seed)
        chosen = []
        for layer, count in per_layer.items():
            pool = [i for i in range(model.cfg.d_mlp) if (layer, i) not in ranking.neurons]
            chosen += [(layer, i) for i in rng.sample(pool, count)]
        drop, _, acc = effect(chosen)
        random_drops.append(drop)
        random_accs.append(acc)
    random_drop = float(np.mean(random_drops))
    report = (f"logit-diff drop: top-10 {top_drop:.3f} vs random-10 {random_drop:.3f} "
              f"(seeds {np.round(random_drops, 3)}); "
              f"accuracy {acc_before:.3f} -> top {acc_top:.3f}, random {np.mean(random_accs):.3f}; "
              f"spearman {ranking.spearman:.2f}; top {ranking.neurons}")
    print(report)
    assert ranking.baseline > 0, report  # the model does agreement in the first place
    assert top_drop > 0, report
    assert top_drop >= 3 * max(random_drop, 0.0), report
    _assert_unchanged(model, snap)
