"""Patchscopes: batched sweeps equal per-layer runs, KV-cache generation equals a no-cache
reference, presets, errors, and the built-in model's identity and relation acceptance numbers."""

import plotly.graph_objects as go
import pytest
import torch

import interp
from interp.core.hooks import count_hooks, hook_name, hooked
from interp.patching.patchscope import PRESETS, PatchscopeResult, patchscope, placeholder_for, target_prompt
from interp.patching import preset_names

SOURCE = "the cat sat on the mat"
LONG_SOURCE = "the big dog sat on the mat , the small cat sat on the mat"


def _reference(model, source, src_pos, target, ph_pos, s, t, site, n_new, expected, relocate=True):
    """Plain, slow patchscope: no KV cache; every full pass re-applies the patch to the prompt.
    With learned positions, the state's source position embedding is swapped for the target's."""
    with torch.inference_mode():
        _, cache = model.run_with_cache(model.to_tokens(source))
        state = cache[hook_name(model, site, s)][0, src_pos]
        if relocate and model.cfg.positional_embedding_type == "standard":
            state = state - model.W_pos[src_pos] + model.W_pos[ph_pos]
        toks = model.to_tokens(target)

        def patch(act, hook):
            act[:, ph_pos] = state
            return act

        ids, first = [], None
        for _ in range(n_new):
            with hooked(model, [(hook_name(model, site, t), patch)]):
                logits = model(toks)[0, -1].float()
            first = logits.softmax(-1)[expected].item() if first is None else first
            nxt = int(logits.argmax())
            ids.append(nxt)
            toks = torch.cat([toks, torch.tensor([[nxt]])], 1)
    return ids, first


@pytest.mark.parametrize(
    ("source", "strategy"), [(SOURCE, "one_pass"), (LONG_SOURCE, "one_pass"), (LONG_SOURCE, "shared_prefix")]
)
def test_kv_cache_generation_equals_no_cache_reference(tiny_model, source, strategy):
    """Both strategies; one pass with a source shorter and one longer than the target (padding)."""
    target = "cat -> cat ; dog -> dog ; hello -> hello ; ? ->"
    res = patchscope(
        tiny_model,
        source,
        source_position="cat",
        target=target,
        placeholder="?",
        targets="dog",
        max_new_tokens=4,
        strategy=strategy,
    )
    for i, (s, t) in enumerate(zip(res.source_layers, res.target_layers)):
        ids, p = _reference(
            tiny_model,
            source,
            res.source_position,
            target,
            res.placeholder_position,
            s,
            t,
            "resid_pre",
            4,
            res.expected_id,
        )
        assert res.generated_ids[i].tolist() == ids, (
            f"layer {s}: cached {res.generated_ids[i].tolist()} vs reference {ids}"
        )
        assert abs(float(res.expected_probs[i]) - p) < 1e-5, (
            f"layer {s}: p(expected) {float(res.expected_probs[i])} vs {p}"
        )
    assert count_hooks(tiny_model) == 0


def test_back_patching_and_resid_post_equal_reference(tiny_model):
    """Later-into-earlier patching goes through the harvest path; resid_post is the other site."""
    target = "the capital of ? is"
    res = patchscope(
        tiny_model,
        LONG_SOURCE,
        source_position=-3,
        target=target,
        placeholder="?",
        source_layers=[1, 2],
        target_layers=0,
        site="resid_post",
        targets="paris",
        max_new_tokens=3,
    )
    assert res.target_layers == (0, 0) and res.site == "resid_post"
    for i, s in enumerate(res.source_layers):
        ids, p = _reference(
            tiny_model,
            LONG_SOURCE,
            res.source_position,
            target,
            res.placeholder_position,
            s,
            0,
            "resid_post",
            3,
            res.expected_id,
        )
        assert res.generated_ids[i].tolist() == ids, (
            f"source {s} -> 0: {res.generated_ids[i].tolist()} vs {ids}"
        )
        assert abs(float(res.expected_probs[i]) - p) < 1e-5, (float(res.expected_probs[i]), p)


def test_relocate_position_swaps_the_position_embedding(gpt2_like):
    """GPT-2-style states carry their position's embedding; by default it is moved to the
    placeholder's position, and relocate_position=False patches the raw state."""
    target = "the capital of ? is"
    for relocate in (True, False):
        res = patchscope(
            gpt2_like,
            LONG_SOURCE,
            source_position="cat",
            target=target,
            placeholder="?",
            source_layers=[0, 2],
            targets="paris",
            max_new_tokens=2,
            relocate_position=relocate,
        )
        for i, s in enumerate(res.source_layers):
            ids, p = _reference(
                gpt2_like,
                LONG_SOURCE,
                res.source_position,
                target,
                res.placeholder_position,
                s,
                s,
                "resid_pre",
                2,
                res.expected_id,
                relocate=relocate,
            )
            assert res.generated_ids[i].tolist() == ids, (relocate, s, res.generated_ids[i].tolist(), ids)
            assert abs(float(res.expected_probs[i]) - p) < 1e-5, (
                relocate,
                s,
                float(res.expected_probs[i]),
                p,
            )
    moved = patchscope(
        gpt2_like,
        LONG_SOURCE,
        source_position="cat",
        target=target,
        placeholder="?",
        source_layers=0,
        targets="paris",
        max_new_tokens=1,
    )
    raw = patchscope(
        gpt2_like,
        LONG_SOURCE,
        source_position="cat",
        target=target,
        placeholder="?",
        source_layers=0,
        targets="paris",
        max_new_tokens=1,
        relocate_position=False,
    )
    gap = abs(float(moved.expected_probs[0] - raw.expected_probs[0]))
    assert gap > 1e-6, f"relocating the position should change the result; gap {gap:.2e}"


@pytest.mark.parametrize("strategy", ["one_pass", "shared_prefix"])
def test_one_batched_sweep_equals_per_layer_runs(tiny_model, strategy):
    sweep = patchscope(
        tiny_model, SOURCE, source_position="cat", target="identity", targets="cat", strategy=strategy
    )
    n = tiny_model.cfg.n_layers
    assert sweep.source_layers == tuple(range(n)) == sweep.target_layers
    for layer in range(n):
        one = patchscope(
            tiny_model,
            SOURCE,
            source_position="cat",
            target="identity",
            targets="cat",
            source_layers=layer,
            strategy=strategy,
        )
        assert one.generations == (sweep.generation(layer),), (
            f"layer {layer}: {one.generations} vs {sweep.generation(layer)!r}"
        )
        diff = abs(float(one.expected_probs[0] - sweep.expected_probs[layer]))
        assert diff < 1e-5, f"layer {layer}: p(cat) differs by {diff:.2e} between the sweep and a single run"


def _forward_shapes(model, **kwargs):
    calls = []
    with hooked(model, [("blocks.0.hook_resid_pre", lambda a, hook: calls.append(tuple(a.shape[:2])))]):
        res = patchscope(model, SOURCE, source_position="cat", target="capital", max_new_tokens=3, **kwargs)
    return res, calls


def test_sweep_is_one_batched_pass(gpt2_like):
    n = gpt2_like.cfg.n_layers
    # same-layer sweep (the default): ONE forward holding the source (up to its position) and a
    # row per layer, then single-position generation steps on the KV cache (source row dropped)
    res, calls = _forward_shapes(gpt2_like)
    width = max(res.source_position + 1, len(res.target_tokens))
    assert calls == [(n + 1, width), (n, 1), (n, 1)], f"forward shapes {calls}"
    # shared prefix (chosen for back-patching): the source up to its position (its deepest
    # resid_pre is what the forward returns), the target prefix once, then ONE pass of all rows
    # from the placeholder on
    for kwargs in ({"strategy": "shared_prefix"}, {"target_layers": 0}):
        res, calls = _forward_shapes(gpt2_like, **kwargs)
        ph, t = res.placeholder_position, len(res.target_tokens)
        expected = [(1, res.source_position + 1), (1, ph), (n, t - ph), (n, 1), (n, 1)]
        assert calls == expected, f"{kwargs}: forward shapes {calls}, expected {expected}"
    with pytest.raises(ValueError, match="strategy 'one_pass' needs every target layer >= its source"):
        _forward_shapes(gpt2_like, target_layers=0, strategy="one_pass")


def test_last_position_placeholder_reads_the_substituted_prompt(tiny_model):
    """Source = target with the placeholder replaced: its state at any layer is what the target
    would have had there, so the first-token distribution equals the plain model's."""
    target = "cat -> cat ; dog -> dog ; ?"
    source = "cat -> cat ; dog -> dog ; hello"
    res = patchscope(tiny_model, source, target=target, placeholder="?", targets="hello", max_new_tokens=1)
    with torch.inference_mode():
        p = tiny_model(tiny_model.to_tokens(source))[0, -1].softmax(-1)
    for i, layer in enumerate(res.source_layers):
        err = abs(float(res.expected_probs[i]) - p[res.expected_id].item())
        assert err < 1e-5, (
            f"layer {layer}: p(hello) {float(res.expected_probs[i])} vs plain {p[res.expected_id].item()}"
        )
        assert res.generated_ids[i, 0].item() == int(p.argmax())


def test_grid_batches_and_views(gemma2_like):
    grid = patchscope(
        gemma2_like, SOURCE, source_position=2, target="identity", target_layers="all", targets="cat"
    )
    n = gemma2_like.cfg.n_layers
    assert grid.is_grid and len(grid.generations) == n * n
    assert set(zip(grid.source_layers, grid.target_layers)) == {(s, t) for s in range(n) for t in range(n)}
    small = patchscope(
        gemma2_like,
        SOURCE,
        source_position=2,
        target="identity",
        target_layers="all",
        targets="cat",
        batch_size=4,
    )
    assert small.generations == grid.generations
    assert torch.allclose(small.expected_probs, grid.expected_probs, atol=1e-5), (
        small.expected_probs,
        grid.expected_probs,
    )
    fig = grid.plot()
    assert isinstance(fig.data[0], go.Heatmap) and len(fig.data[0].z) == n
    frame = grid.to_frame()
    assert len(frame) == n * n and {
        "source_layer",
        "target_layer",
        "generation",
        "expected_prob",
        "correct",
    } <= set(frame.columns)
    assert grid.generation(1, 2) == grid.generations[grid.row(1, 2)]

    line = patchscope(gemma2_like, SOURCE, source_position=2, target="identity")
    assert not line.is_grid and isinstance(line.plot().data[0], go.Scatter)
    assert list(line.plot().data[0].text) == list(line.first_tokens)
    assert "PatchscopeResult" in repr(line)
    with pytest.raises(ValueError, match="no expected answer"):
        _ = line.correct
    assert count_hooks(gemma2_like) == 0


def test_presets_and_package_function(gpt2_like):
    assert set(PRESETS) == {"identity", "description", "capital", "language", "continent"}
    ph = placeholder_for(gpt2_like)
    for preset in PRESETS:
        text = target_prompt(gpt2_like, preset)
        assert ph in text.split() or f"{ph}:" in text, (preset, text)
    import interp.patching.patchscope as module  # the package exports the function under this name

    res = interp.patching.patchscope(gpt2_like, SOURCE, source_layers=0, max_new_tokens=1)
    res2 = module(gpt2_like, SOURCE, source_layers=0, max_new_tokens=1)
    assert res.generations == res2.generations


def test_bad_input_gives_clear_errors(gpt2_like):
    with pytest.raises(ValueError, match="non-empty"):
        patchscope(gpt2_like, "")
    with pytest.raises(ValueError, match="context is 48 tokens"):
        patchscope(gpt2_like, " ".join(["cat"] * 60))
    with pytest.raises(ValueError, match="non-empty prompt"):
        patchscope(gpt2_like, SOURCE, target=" ")
    with pytest.raises(
        ValueError, match=r"placeholder '\?' is not a token of 'the capital of france is'.*preset \(identity"
    ):
        patchscope(gpt2_like, SOURCE, target="the capital of france is")
    with pytest.raises(ValueError, match=r"source_position 7 is out of range .*expected \[-7, 7\)"):
        patchscope(gpt2_like, SOURCE, source_position=7)
    with pytest.raises(ValueError, match="source_position 'dog' is not a token"):
        patchscope(gpt2_like, SOURCE, source_position="dog")
    with pytest.raises(ValueError, match=r"placeholder 9 is out of range"):
        patchscope(gpt2_like, SOURCE, target="the capital of ? is", placeholder=9)
    with pytest.raises(ValueError, match="exceeds the model's context of 48"):
        patchscope(gpt2_like, SOURCE, target=" ".join(["cat"] * 40) + " ?", max_new_tokens=10)
    with pytest.raises(ValueError, match=r"source_layers: layer 3 is out of range"):
        patchscope(gpt2_like, SOURCE, source_layers=[0, 3])
    with pytest.raises(ValueError, match=r"target_layers: layer -4 is out of range"):
        patchscope(gpt2_like, SOURCE, target_layers=-4)
    with pytest.raises(ValueError, match="strategy 'fast' must be one of"):
        patchscope(gpt2_like, SOURCE, strategy="fast")
    with pytest.raises(ValueError, match="site 'mlp_out'"):
        patchscope(gpt2_like, SOURCE, site="mlp_out")
    with pytest.raises(ValueError, match="max_new_tokens=0"):
        patchscope(gpt2_like, SOURCE, max_new_tokens=0)
    with pytest.raises(KeyError, match="zebra"):
        patchscope(gpt2_like, SOURCE, targets="zebra")
    with pytest.raises(KeyError, match="unknown target preset 'identty'"):
        target_prompt(gpt2_like, "identty")
    res = patchscope(gpt2_like, SOURCE, source_layers=0, max_new_tokens=1)
    with pytest.raises(ValueError, match="target_layers has 2 entries for 1 rows"):
        PatchscopeResult(**{**res.__dict__, "target_layers": (0, 1)})
    assert count_hooks(gpt2_like) == 0


def test_expected_is_renamed_targets_and_warns(tiny_model):
    new = patchscope(tiny_model, SOURCE, source_position="cat", targets="cat", max_new_tokens=2)
    with pytest.warns(DeprecationWarning, match=r"patchscope\(expected=\.\.\.\) is deprecated.*use targets="):
        old = patchscope(tiny_model, SOURCE, source_position="cat", expected="cat", max_new_tokens=2)
    assert old.generations == new.generations and old.targets == new.targets == ("cat",)
    assert torch.equal(old.target_probs, new.target_probs)
    assert torch.equal(old.expected_ranks, new.expected_ranks)
    assert old.expected == "cat" and old.expected_id == new.target_ids[0]
    assert torch.equal(new.expected_probs, new.target_probs[:, 0])
    with pytest.raises(TypeError, match="both targets= and its old name expected="):
        patchscope(tiny_model, SOURCE, targets="cat", expected="cat")
    with pytest.raises(TypeError, match="unexpected keyword argument 'expectd'"):
        patchscope(tiny_model, SOURCE, expectd="cat")


def test_source_layers_all_is_deprecated_for_none(tiny_model):
    new = patchscope(tiny_model, SOURCE, source_layers=None, max_new_tokens=1)
    with pytest.warns(DeprecationWarning, match=r"source_layers='all' is deprecated; use source_layers=None"):
        old = patchscope(tiny_model, SOURCE, source_layers="all", max_new_tokens=1)
    assert old.source_layers == new.source_layers and old.generations == new.generations
    assert patchscope(tiny_model, SOURCE, source_layers=[-1, 2, 0], max_new_tokens=1).source_layers == (2, 0)


def test_several_targets_and_the_result_base(tiny_model):
    res = patchscope(tiny_model, SOURCE, source_position="cat", targets=["cat", "dog", 5], max_new_tokens=1)
    n = tiny_model.cfg.n_layers
    assert res.target_probs.shape == res.target_ranks.shape == (n, 3)
    one = patchscope(tiny_model, SOURCE, source_position="cat", targets="dog", max_new_tokens=1)
    assert torch.allclose(res.target_probs[:, 1], one.target_probs[:, 0], atol=1e-6)
    assert torch.equal(res.target_ranks[:, 1], one.target_ranks[:, 0])
    assert res.target_ids[2] == 5 and res.expected == "cat"
    frame = res.to_frame()
    assert {"expected_prob", "correct", "p(dog)", f"rank({res.targets[2]})"} <= set(frame.columns)
    assert len(res.plot().data) == 3
    assert isinstance(res, interp.Result) and res.summary().startswith("patchscope of 'cat'")
    assert "<table" in res._repr_html_()
    bare = patchscope(tiny_model, SOURCE, max_new_tokens=1)
    assert bare.targets == () and bare.target_probs.shape == (n, 0) and bare.expected_probs is None
    assert preset_names(tiny_model) == PRESETS


# --- the built-in model ------------------------------------------------------------------------


def test_toy_identity_decodes_the_source_token_at_layer_0(toy_model):
    from interp.toy.corpus import COUNTRIES, copy_words

    words = copy_words()
    sample = sorted({*words[:: max(1, len(words) // 40)], *(c.capital for c in COUNTRIES[::4])})
    hits = []
    for word in sample:
        res = interp.patching.patchscope(
            toy_model,
            f"i want to see {word} one day .",
            source_position=word,
            target="identity",
            source_layers=0,
            targets=word,
            max_new_tokens=1,
        )
        hits.append(res.first_tokens[0].strip() == word)
    rate = sum(hits) / len(hits)
    missed = [w for w, h in zip(sample, hits) if not h]
    print(f"toy identity patchscope at layer 0: {rate:.3f} of {len(sample)} words (missed {missed[:10]})")
    assert rate >= 0.95, (
        f"identity patchscope decoded {rate:.3f} of {len(sample)} source tokens at layer 0 (need >= 0.95); "
        f"missed {missed}"
    )


def test_toy_relation_patchscope_finds_capitals(toy_model):
    from interp.toy.corpus import COUNTRIES

    n = toy_model.cfg.n_layers
    correct = torch.zeros(len(COUNTRIES), n, dtype=torch.bool)
    for i, c in enumerate(COUNTRIES):
        res = interp.patching.patchscope(
            toy_model,
            f"we visited {c.country} last year .",
            source_position=c.country,
            target="capital",
            targets=c.capital,
            max_new_tokens=1,
        )
        correct[i] = res.correct
    by_layer = correct.float().mean(0)
    best = int(by_layer.argmax())
    print(f"toy relation patchscope accuracy by source layer: {[round(v, 3) for v in by_layer.tolist()]}")
    assert by_layer[best] >= 0.8, (
        f"capital from a neutral sentence: best source layer {best} gets {by_layer[best]:.3f} of "
        f"{len(COUNTRIES)} countries (need >= 0.8); by layer {by_layer.tolist()}"
    )


def test_toy_batched_sweep_equals_per_layer_runs(toy_model):
    source, word = "my friend is from japan .", "japan"
    for target in ("identity", "capital"):
        sweep = interp.patching.patchscope(
            toy_model, source, source_position=word, target=target, max_new_tokens=3
        )
        per = [
            interp.patching.patchscope(
                toy_model, source, source_position=word, target=target, source_layers=layer, max_new_tokens=3
            ).generations[0]
            for layer in range(toy_model.cfg.n_layers)
        ]
        assert list(sweep.generations) == per, f"{target}: sweep {sweep.generations} vs per-layer {per}"

