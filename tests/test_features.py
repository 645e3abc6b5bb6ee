"""Max-activating examples (streaming top-k over a corpus), caching, and feature cards.

Unit tests on the tiny fixtures; the acceptance tests on the built-in model and its SAE check
exactness against a naive top-k and that memory stays flat in the corpus size.
"""

import pytest
import torch

import interp
from benchmarks.common import peak_heap_extra
from interp.sae.examples import MaxActivatingExamples
from interp.sae.stream import encode_texts
from interp.core.hooks import count_hooks
from test_sae import HOOK, make_sae
from tolerance import assert_close

CORPUS = [
    "the cat sat on the mat",
    "the dog sat",
    "paris is the capital of france",
    "hello",
    "the keys to the cabinet are on the mat",
    "user : how do i make bread ? assistant : sure",
    "berlin is the capital of germany",
] * 3


@torch.no_grad()
def naive_topk(model, unit_fn, texts, k):
    """Every text run alone (no padding), `<bos>` dropped, all tokens concatenated, exact top-k."""
    rows, where = [], []
    for i, text in enumerate(texts):
        tokens = model.to_tokens(text)
        _, cache = model.run_with_cache(tokens)
        acts = unit_fn(cache)[0, 1:]  # drop <bos>
        rows.append(acts)
        where += [(i, p) for p in range(acts.shape[0])]
    acts = torch.cat(rows)
    top = acts.topk(k, dim=0)
    return acts, top.values.T, [[where[int(j)] for j in col] for col in top.indices.T]


def test_streaming_top_k_equals_naive_top_k_with_padding_and_batches(tiny_model):
    sae = make_sae(tiny_model)
    top = interp.max_activating_examples(tiny_model, sae, CORPUS, k=4, batch_size=5, progress=False, cache=False)
    acts, values, where = naive_topk(tiny_model, lambda c: sae.encode(c[HOOK]), CORPUS, 4)
    # only positive activations are kept: a slot a feature never fired in stays -inf. Batched
    # and left-padded against one text at a time: activations of size ~18 differ by rounding, a
    # few ulps (8.6e-6 with 2 threads here, close to the fixed 1e-5 this had)
    assert_close(top.values.clamp_min(0), values.clamp_min(0), what="streaming vs naive top-k")
    torch.testing.assert_close(top.density, (acts > 0).float().mean(0))
    assert top.n_tokens == acts.shape[0] and top.n_examples == len(CORPUS)
    for f in range(0, 48, 7):  # the kept example and position point back at the right token
        if values[f, 0] > 0:
            ex, pos = int(top.example[f, 0]), int(top.position[f, 0])
            assert (ex % 7, pos) in {(e % 7, p) for e, p in where[f]}, f"feature {f}: {ex, pos} vs {where[f]}"
            assert top.examples(f)[0]["token"] == CORPUS[ex].split()[pos]
    assert count_hooks(tiny_model) == 0


def test_sparse_tracker_matches_the_dense_one_and_topk_saes_skip_the_dense_matrix():
    from sae_lens import TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    from interp.sae.encode import sparse_encode
    from interp.core.topk import SparseStreamingTopK, StreamingTopK

    torch.manual_seed(0)
    dense, sparse = StreamingTopK(300, 7, before=3, after=2), SparseStreamingTopK(300, 7, before=3, after=2)
    for _ in range(6):
        acts = torch.relu(torch.randn(9, 13, 300) - 1.5)
        acts[..., :5] = 0  # dead units
        tokens, mask = torch.randint(0, 100, (9, 13)), torch.ones(9, 13, dtype=torch.long)
        mask[::2, :4] = 0
        dense.update(acts, tokens, mask)
        sparse.update(acts, tokens, mask)
    sparse.sort_()
    fired = dense.values > 0
    for name in ("values", "example", "position", "context_tokens", "context_acts"):
        assert torch.equal(getattr(dense, name)[fired], getattr(sparse, name)[fired]), name
    assert (sparse.values[~fired] == float("-inf")).all()
    assert torch.equal(dense.fired, sparse.fired) and torch.equal(dense.hist, sparse.hist)
    sae = TopKSAE(TopKSAEConfig(d_in=16, d_sae=64, k=5, rescale_acts_by_decoder_norm=True,
                                metadata=SAEMetadata(hook_name=HOOK)))
    with torch.no_grad():
        sae.W_enc.normal_()
        sae.b_enc.normal_(0, 0.1)
        sae.W_dec.normal_()
    x = torch.randn(30, 16)
    rows, feats, values = sparse_encode(sae, x)
    rebuilt = torch.zeros(30, 64)
    rebuilt[rows, feats] = values
    assert torch.equal(rebuilt, sae.encode(x)), "sae-lens' arithmetic op for op: the same winners"
    seen = []  # a hook that keeps the pre-activations must see them unscaled, as sae-lens hands them over
    handle = sae.hook_sae_acts_pre.register_forward_hook(lambda mod, inp, out: seen.append(out))
    try:
        sparse_encode(sae, x)
    finally:
        handle.remove()
    assert sae.cfg.rescale_acts_by_decoder_norm and not torch.allclose(sae.W_dec.norm(dim=-1), torch.ones(64))
    torch.testing.assert_close(seen[0], sae.process_sae_in(x) @ sae.W_enc + sae.b_enc)


def test_batches_respect_the_text_and_token_budgets():
    from interp.core.tokens import length_batches

    lengths = torch.tensor([3, 60, 7, 64, 12, 33, 2, 64, 40, 9, 5, 50])
    batches = length_batches(lengths, batch_size=4, max_tokens=128)
    assert sorted(torch.cat(batches).tolist()) == list(range(len(lengths))), "each text exactly once"
    for rows in batches:
        assert len(rows) <= 4 and len(rows) * int(lengths[rows].max()) <= 128, (rows, lengths[rows])
    assert [len(b) for b in length_batches(lengths, batch_size=100, max_tokens=10**6)] == [len(lengths)]


def test_encoding_in_small_chunks_changes_nothing(tiny_model, monkeypatch):
    from sae_lens import TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    import interp.sae.stream as stream

    sae = TopKSAE(TopKSAEConfig(d_in=tiny_model.cfg.d_model, d_sae=40, k=6,
                                metadata=SAEMetadata(hook_name=HOOK, model_name=tiny_model.cfg.model_name)))
    with torch.no_grad():
        sae.W_enc.normal_()
    def run():  # one batch of all 21 texts
        return interp.max_activating_examples(tiny_model, sae, CORPUS, k=5, batch_size=21, cache=False,
                                              progress=False)

    whole = run()
    monkeypatch.setattr(stream, "_ENCODE_ELEMENTS", {"cpu": 1, "cuda": 1})  # 64-row chunks, last one padded
    chunked = run()
    assert whole.n_tokens > 64, "the one batch of all texts must need more than one chunk"
    for name in ("values", "example", "position", "context_tokens", "context_acts", "fired", "hist"):
        assert torch.equal(getattr(whole, name), getattr(chunked, name)), name
    _, values, _ = naive_topk(tiny_model, lambda c: sae.encode(c[HOOK]), CORPUS, 5)
    # one batch against one text at a time: activations of size ~33 differ by rounding (1.5e-5
    # with 2 threads here, over the default atol of 1e-5)
    assert_close(chunked.values.clamp_min(0), values.clamp_min(0), what="chunked vs naive top-k")


def test_neurons_use_the_same_streaming_path(gpt2_like):
    top = interp.max_activating_examples(gpt2_like, (1, [3, 10]), CORPUS, k=3, batch_size=4, progress=False)
    _, values, _ = naive_topk(gpt2_like, lambda c: c["blocks.1.mlp.hook_post"][..., [3, 10]], CORPUS, 3)
    torch.testing.assert_close(top.values, values, atol=1e-5, rtol=1e-5)
    assert top.kind == "neuron" and top.units.tolist() == [3, 10]
    card = interp.feature_card(gpt2_like, (1, 10), examples=top)
    assert card.unit == 10 and len(card.promoted) == 10 and card.plot().data
    with pytest.raises(ValueError, match=r"neuron of layer 1 64 is out of range: expected an int in \[0, 64\)"):
        interp.max_activating_examples(gpt2_like, (1, 64), CORPUS)
    with pytest.raises(ValueError, match="out of range for a 3-layer model"):
        interp.max_activating_examples(gpt2_like, (5, 0), CORPUS)


def test_results_are_cached_and_reloadable(gpt2_like, tmp_path, monkeypatch):
    import interp.sae.stream as stream

    sae = make_sae(gpt2_like)
    first = interp.max_activating_examples(gpt2_like, sae, CORPUS, k=3, progress=False)
    entries = list(tmp_path.glob("interp-cache/max_activating/*.safetensors"))
    assert len(entries) == 1, f"expected one cache entry, found {entries}"
    calls = []
    real = stream.harvest
    monkeypatch.setattr(stream, "harvest", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    again = interp.max_activating_examples(gpt2_like, sae, list(CORPUS), k=3, progress=False)
    from_stream = interp.max_activating_examples(gpt2_like, sae, iter(CORPUS[:7]), k=3, progress=False)
    reread = interp.max_activating_examples(gpt2_like, sae, CORPUS[:7], k=3, progress=False)
    assert calls == [1], f"a cached result must not run the model again ({len(calls)} forward passes)"
    assert torch.equal(first.values, again.values) and torch.equal(from_stream.values, reread.values)
    path = first.save(tmp_path / "top.safetensors")
    loaded = MaxActivatingExamples.load(path)
    assert loaded.to_frame(5).equals(first.to_frame(5)) and torch.equal(loaded.hist, first.hist)
    assert loaded.token_strs == first.token_strs


def test_feature_card_shows_examples_histogram_density_and_output_tokens(tiny_model):
    sae = make_sae(tiny_model)
    top = interp.max_activating_examples(tiny_model, sae, CORPUS, k=5, progress=False)
    f = int(top.density.argmax())
    card = interp.feature_card(tiny_model, sae, f, examples=top, n_tokens=4)
    effect = interp.core.readout.direction_logits(tiny_model, interp.sae.directions.residual_directions(tiny_model, sae)[f][None])[0]
    best = tiny_model.to_str_tokens(effect.topk(4).indices)
    assert [t for t, _ in card.promoted] == best and card.promoted[0][1] > card.suppressed[0][1]
    assert card.density == pytest.approx(float(top.density[f])) and card.density > 0
    fig = card.plot()
    kinds = sorted(trace.type for trace in fig.data)
    assert kinds == ["bar", "bar", "heatmap"], f"card must draw examples, histogram and output tokens: {kinds}"
    assert fig.data[0].text[0][top.before] == top.examples(f)[0]["token"], "the top token sits at the centre"
    assert "density" in fig.layout.title.text
    assert len(top.plot(f).data) == 2 and len(card.to_frame()) == len(top.examples(f))
    assert top.plot().layout.title.text.startswith(f"feature {top.default_unit()} ")
    with pytest.raises(KeyError, match="feature 3 was not tracked"):
        interp.max_activating_examples(tiny_model, sae, CORPUS, features=[1, 2], progress=False).row(3)


def test_bad_input(gpt2_like):
    sae = make_sae(gpt2_like)
    with pytest.raises(ValueError, match="is empty: expected at least one non-empty text"):
        interp.max_activating_examples(gpt2_like, sae, ["", "  "], progress=False)
    with pytest.raises(ValueError, match="is empty"):
        interp.max_activating_examples(gpt2_like, sae, iter([]), progress=False)
    with pytest.raises(ValueError, match=r"feature 48 is out of range: expected an int in \[0, 48\)"):
        interp.max_activating_examples(gpt2_like, sae, CORPUS, features=[0, 48])
    with pytest.raises(ValueError, match=r"feature -1 is out of range"):
        interp.max_activating_examples(gpt2_like, sae, CORPUS, features=-1)
    with pytest.raises(ValueError, match="contain duplicates"):
        interp.max_activating_examples(gpt2_like, sae, CORPUS, features=[2, 2])
    with pytest.raises(ValueError, match="k=0 must be an int >= 1"):
        interp.max_activating_examples(gpt2_like, sae, CORPUS, k=0)
    with pytest.raises(ValueError, match="d_in is 16"):
        interp.max_activating_examples(gpt2_like, make_sae(gpt2_like, d_in=16), CORPUS)
    with pytest.raises(ValueError, match=r"feature 99 is out of range: the SAE has 48 features"):
        interp.feature_card(gpt2_like, sae, 99)


def test_long_texts_are_cut_to_max_len(gpt2_like):
    tokens, mask = encode_texts(gpt2_like, ["the cat " * 40, "hello"], max_len=10)
    assert tokens.shape == (2, 10) and mask.sum(1).tolist() == [10, 2]
    top = interp.max_activating_examples(gpt2_like, make_sae(gpt2_like), ["the cat " * 40], max_len=10, progress=False)
    assert top.n_tokens == 9 and int(top.position.max()) <= 8


# --- acceptance on the built-in model ---------------------------------------------------------


def test_streaming_equals_naive_and_memory_is_flat_on_the_built_in_model(toy_model):
    from interp.toy.corpus import documents

    sae = interp.load_sae("toy")
    hook = sae.cfg.metadata.hook_name
    small = list(documents(120, seed=11))
    top = interp.max_activating_examples(toy_model, sae, small, k=10, progress=False, cache=False)
    acts, values, _ = naive_topk(toy_model, lambda c: sae.encode(c[hook]), small, 10)
    err = float((top.values.clamp_min(0) - values.clamp_min(0)).abs().max())
    assert err < 1e-4, f"streaming top-10 differs from the naive exact top-10 by {err:.2e}"
    assert torch.equal(top.fired, (acts > 0).sum(0)), "densities must count exactly the same firing tokens"

    def peak(rounds):
        # the same 300 documents `rounds` times over, from a generator (the corpus is never held in
        # memory): every round has the same batch shapes, so only the corpus length differs; fresh
        # documents would let a longer corpus hold a longer text and so a wider batch
        texts = (text for _ in range(rounds) for text in documents(300, seed=12))
        run = lambda: interp.max_activating_examples(toy_model, sae, texts, k=20, progress=False, cache=False)  # noqa
        rss, (extra, result) = peak_rss(lambda: peak_heap_extra(run))
        retained = sum(getattr(result, n).nelement() * getattr(result, n).element_size() for n in (
            "values", "example", "position", "context_tokens", "context_acts", "fired", "hist"))
        return rss, extra, retained, result.n_tokens

    peak(1)  # warm-up
    rss_small, extra_small, kept_small, tokens_small = peak(1)
    rss_big, extra_big, kept_big, tokens_big = peak(10)
    assert tokens_big == 10 * tokens_small
    assert kept_big == kept_small, f"retained result memory {kept_big} vs {kept_small} bytes"
    summary = (
        f"{tokens_big} vs {tokens_small} tokens: peak RSS {rss_big / 1e6:.1f} vs {rss_small / 1e6:.1f} MB, "
        f"peak extra heap {extra_big / 1e6:.2f} vs {extra_small / 1e6:.2f} MB"
    )
    assert rss_big <= 1.10 * rss_small, f"peak RSS grew more than 10%: {summary}"
    assert extra_big <= 1.10 * extra_small, f"the pass's own peak memory grew with the corpus: {summary}"


def peak_rss(fn):
    """`(peak RSS in bytes, fn())`: the kernel's high-water mark (VmHWM), reset before `fn` runs."""
    import gc

    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS
    out = fn()
    with open("/proc/self/status") as f:
        hwm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    return hwm, out
