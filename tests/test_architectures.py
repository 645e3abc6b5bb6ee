"""Every technique on every family: tiny random-weight Hugging Face models against plain Hugging Face.

One tiny config per family (hidden 32, 3 layers, 4 heads, grouped-query attention where the
family has it, sliding windows shorter than the prompts, the word tokenizer's vocabulary) is
built twice from one seed, with no download: one copy is booted as a `TransformerBridge`
(`interp.core.bridge.boot` rewires it in place), the twin stays plain. Each technique runs
through `interp` on the bridge, and the same quantity is computed on the twin with torch hooks
on its own modules (decoder-layer inputs, the MLP down projection's input, what attention and
MLP add to the residual stream, its final norm, head and soft-cap), each prompt alone and
unpadded. Floats agree to rounding (`tolerance.assert_close`), greedy tokens exactly.

The README's "Architectures" table is `render_table()`, from FAMILIES x TECHNIQUES and XFAIL
(`python tests/test_architectures.py` prints it); `test_readme_shows_the_table` keeps it in sync.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
import transformers as tf
from tolerance import assert_close

import interp

SMALL = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3, "num_attention_heads": 4,
         "num_key_value_heads": 2, "max_position_embeddings": 64, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}
NO_GQA = {k: v for k, v in SMALL.items() if k != "num_key_value_heads"}
WINDOW = 4  # sliding-window attention shorter than the prompts
ROPE_QUARTER = {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.25}
#: family -> (architecture, what it exercises, config for a vocabulary size)
FAMILIES = {
    "GPT-2": ("GPT2LMHeadModel", "LayerNorm, learned positions, Conv1D",
              lambda v: tf.GPT2Config(vocab_size=v, n_positions=64, n_embd=32, n_layer=3, n_head=4, n_inner=64,
                                      bos_token_id=1, eos_token_id=2, pad_token_id=0)),
    "GPT-NeoX": ("GPTNeoXForCausalLM", "parallel residual, partial rotary",
                 lambda v: tf.GPTNeoXConfig(vocab_size=v, **NO_GQA, rope_parameters=ROPE_QUARTER)),
    "Llama": ("LlamaForCausalLM", "RMSNorm, SwiGLU, GQA", lambda v: tf.LlamaConfig(vocab_size=v, **SMALL)),
    "Mistral": ("MistralForCausalLM", "sliding window",
                lambda v: tf.MistralConfig(vocab_size=v, **SMALL, sliding_window=WINDOW)),
    "Qwen2": ("Qwen2ForCausalLM", "QKV biases, no BOS", lambda v: tf.Qwen2Config(vocab_size=v, **SMALL)),
    "Qwen3": ("Qwen3ForCausalLM", "QK-norm", lambda v: tf.Qwen3Config(vocab_size=v, **SMALL, head_dim=8)),
    "Gemma-2": ("Gemma2ForCausalLM", "soft-capping, sandwich norms, (1 + w) RMSNorm",
                lambda v: tf.Gemma2Config(vocab_size=v, **SMALL, head_dim=8, final_logit_softcapping=30.0,
                                          attn_logit_softcapping=50.0, sliding_window=WINDOW)),
    "Gemma-3": ("Gemma3ForCausalLM", "QK-norm, local and global layers",
                lambda v: tf.Gemma3TextConfig(vocab_size=v, **SMALL, head_dim=8, sliding_window=WINDOW,
                                              layer_types=["sliding_attention", "full_attention", "sliding_attention"])),
    "Phi-3": ("Phi3ForCausalLM", "fused QKV and gate-up", lambda v: tf.Phi3Config(vocab_size=v, **SMALL)),
    "OLMo-2": ("Olmo2ForCausalLM", "post-norm, QK-norm", lambda v: tf.Olmo2Config(vocab_size=v, **SMALL)),
}
#: test name (test_<name>) -> column label
TECHNIQUES = {
    "logits": "logits", "logit_lens": "logit lens", "patchscope": "patchscope", "steer_add": "steer (add)",
    "steer_ablate": "steer (ablate)", "ablate_neurons": "ablate_neurons", "rank_neurons": "rank_neurons",
    "mean_difference": "mean_difference", "sae_features": "SAE features", "sae_promotes": "SAE search by output",
}
#: (family, technique) -> the exact failure of a library bug (strict: a fix turns the xfail red).
#: Empty: the two this matrix found (stop_at_eos=False still stopping at EOS on a bridge; Gemma's
#: final norm read as w instead of 1 + w) are fixed.
XFAIL: dict[tuple[str, str], str] = {}

PROMPTS = ["the cat sat on the mat", "the key to the cabinets", "how do i make bread ?", "a dog is big"]
POSITIVE = ["the cat is hot", "the dog was hot .", "a cat is hot"]
NEGATIVE = ["the cat is cold", "a dog is cold", "the dog was cold ."]
NEURONS = [(1, 3), (1, 40), (2, 5)]
N_NEW = 6


def cases(technique: str) -> list:
    return [pytest.param(f, marks=pytest.mark.xfail(strict=True, reason=XFAIL[f, technique]))
            if (f, technique) in XFAIL else f for f in FAMILIES]


@pytest.fixture(scope="module")
def twins(word_tokenizer):
    """`twins(family)`: (bridge, plain Hugging Face twin on the same weights), built once per family."""
    from interp.core.bridge import boot

    built = {}

    def get(family: str):
        if family not in built:
            arch, _, make = FAMILIES[family]
            config = make(len(word_tokenizer))
            config.architectures = [arch]
            models = []
            for _ in range(2):
                torch.manual_seed(0)
                models.append(tf.AutoModelForCausalLM.from_config(config, attn_implementation="eager").eval())
            built[family] = boot(models[1], word_tokenizer, name=f"tiny-{family}"), models[0]
        return built[family]

    return get


# --- the plain model's own modules, and torch hooks on them -----------------------------------


def layers(hf):
    return getattr(hf.base_model, "h", None) or hf.base_model.layers


def final_norm(hf):  # the norm before the unembedding
    return next(getattr(hf.base_model, n) for n in ("ln_f", "final_layer_norm", "norm") if hasattr(hf.base_model, n))


def down_proj(hf, layer: int):
    """The MLP's output projection: its input is the layer's neurons."""
    mlp = layers(hf)[layer].mlp
    return next(getattr(mlp, n) for n in ("c_proj", "dense_4h_to_h", "down_proj") if hasattr(mlp, n))


def writers(block) -> list:
    """The modules whose outputs are added to the residual stream: attention and MLP, or their post-norms."""
    if hasattr(block, "post_feedforward_layernorm"):  # Gemma, OLMo-2 (Llama's post_attention_layernorm is pre-MLP)
        return [block.post_attention_layernorm, block.post_feedforward_layernorm]
    return [next(getattr(block, n) for n in ("attn", "attention", "self_attn") if hasattr(block, n)), block.mlp]


def readout(hf, resid: torch.Tensor) -> torch.Tensor:
    """The model's own head on residual states: final norm, unembedding, logit soft-cap."""
    logits = hf.get_output_embeddings()(final_norm(hf)(resid))
    cap = getattr(hf.config, "final_logit_softcapping", None)
    return cap * torch.tanh(logits / cap) if cap else logits


@contextmanager
def hooks(*edits):
    """`(module, "in" | "out", fn)`: fn gets the module's first input (or output) tensor and returns
    its replacement, or None to leave it. Removed on exit."""
    def pre(fn):
        def hook(module, args, kwargs):
            new = fn(args[0] if args else kwargs["hidden_states"])
            if new is None:
                return None
            return ((new, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": new})
        return hook

    def post(fn):
        def hook(module, args, out):
            new = fn(out[0] if isinstance(out, tuple) else out)
            return None if new is None else (new, *out[1:]) if isinstance(out, tuple) else new
        return hook

    handles = [m.register_forward_pre_hook(pre(fn), with_kwargs=True) if where == "in"
               else m.register_forward_hook(post(fn)) for m, where, fn in edits]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def rows(bridge, prompts) -> list[torch.Tensor]:
    """Each prompt's tokens as interp reads them (BOS where the model wants it), unpadded."""
    tokens, mask = interp.tokenize(bridge, prompts)
    return [t[m.bool()] for t, m in zip(tokens, mask)]


def residuals(hf, row: torch.Tensor, *edits) -> tuple[torch.Tensor, torch.Tensor]:
    """The residual stream entering each decoder layer and the final norm, `[n_layers + 1, pos, d]`,
    and the logits `[pos, vocab]`, of one unpadded row (with `edits` hooked in)."""
    seen = []
    read = [(m, "in", lambda h: seen.append(h[0].detach())) for m in [*layers(hf), final_norm(hf)]]
    with hooks(*edits, *read), torch.no_grad():
        logits = hf(row[None]).logits[0]
    return torch.stack(seen), logits


def zero_neurons(hf, neurons) -> list:
    def zero(index):
        return lambda x: x.index_fill(-1, torch.tensor(index), 0.0)
    return [(down_proj(hf, layer), "in", zero([n for m, n in neurons if m == layer])) for layer in {m for m, _ in neurons}]


def greedy(hf, tokens, mask, *edits, eos=None, n=N_NEW) -> torch.Tensor:
    with hooks(*edits), torch.no_grad():
        out = hf.generate(tokens, attention_mask=mask, max_new_tokens=n, do_sample=False,
                          pad_token_id=0 if eos is None else eos, eos_token_id=eos)
    return out[:, tokens.shape[1]:]


# --- one test per technique, each on every family ---------------------------------------------


@pytest.mark.parametrize("family", cases("logits"))
def test_logits(twins, family):
    bridge, hf = twins(family)
    tokens, mask = interp.tokenize(bridge, PROMPTS)
    with torch.inference_mode():
        got = bridge(tokens, attention_mask=mask)
    for i, row in enumerate(rows(bridge, PROMPTS)):
        assert_close(got[i, -len(row):], residuals(hf, row)[1], what=f"{family} logits of prompt {i}")


@pytest.mark.parametrize("family", cases("logit_lens"))
def test_logit_lens(twins, family):
    bridge, hf = twins(family)
    lens = interp.logit_lens(bridge, PROMPTS[0], targets=["the", "cat", "mat"], k=3)
    resid, logits = residuals(hf, rows(bridge, PROMPTS[:1])[0])
    with torch.no_grad():
        probs = readout(hf, resid).softmax(-1)  # [layer, pos, vocab]
    assert_close(probs[-1], logits.softmax(-1), what="the reference's last layer is the output")
    assert_close(lens.target_probs, probs[..., list(lens.target_ids)], what=f"{family} lens p(target)")
    assert_close(lens.top_probs, probs.topk(3).values, what=f"{family} lens top-3 probabilities")


@pytest.mark.parametrize("family", cases("patchscope"))
def test_patchscope(twins, family, word_tokenizer):
    bridge, hf = twins(family)
    source, target, eos = "the cat sat on the mat", "cat -> cat ; dog -> dog ; ? ->", word_tokenizer.eos_token_id
    ps = interp.patchscope(bridge, source, source_position="cat", target=target, placeholder="?",
                           targets=["cat", "mat"], max_new_tokens=3)
    (src,), (tgt,) = rows(bridge, [source]), rows(bridge, [target])
    s, p = int((src == word_tokenizer.convert_tokens_to_ids("cat")).nonzero()[-1]), len(tgt) - 2
    assert (ps.source_position, ps.placeholder_position) == (s, p)
    resid = residuals(hf, src)[0]
    wpe = getattr(hf.base_model, "wpe", None)  # learned positions: the state moves to the placeholder's
    shift = 0 if wpe is None else (wpe.weight[p] - wpe.weight[s]).detach()
    for layer in range(hf.config.num_hidden_layers):
        def patch(h, state=resid[layer, s] + shift):  # the prompt pass only: generation steps see one position
            if h.shape[1] > p:
                h = h.clone()
                h[:, p] = state
                return h

        edit = (layers(hf)[layer], "in", patch)
        probs = residuals(hf, tgt, edit)[1][-1].softmax(-1)
        assert_close(ps.first_probs[layer], probs.max(), what=f"{family} first-token p, layer {layer}")
        assert_close(ps.target_probs[layer], probs[list(ps.target_ids)], what=f"{family} p(targets), layer {layer}")
        new = greedy(hf, tgt[None], torch.ones_like(tgt[None]), edit, eos=eos, n=3)[0].tolist()
        new = new[: new.index(eos)] if eos in new else new
        assert ps.generations[layer] == word_tokenizer.decode(new, clean_up_tokenization_spaces=False), layer


def steering_edits(hf, mode: str, vector: torch.Tensor, layer: int, alpha: float) -> list:
    """Activation addition at one layer's input, or the direction projected out of the embedding
    and of everything attention and MLP write to the residual stream."""
    if mode == "add":
        return [(layers(hf)[layer], "in", lambda h: h + alpha * vector)]
    unit = vector / vector.norm()

    def cut(h):
        return h - (h @ unit)[..., None] * unit
    return [(layers(hf)[0], "in", cut)] + [(w, "out", cut) for block in layers(hf) for w in writers(block)]


def check_steer(twins, family, mode, word_tokenizer):
    from interp.core.generation import generate

    bridge, hf = twins(family)
    vector, alpha = torch.randn(32, generator=torch.Generator().manual_seed(2)), 4.0
    if mode == "ablate":  # a direction the stream carries: the embedding of the first prompt's last token
        vector = hf.get_input_embeddings().weight[rows(bridge, PROMPTS)[0][-1]].detach() + 0.01 * vector
    res = interp.steer(bridge, PROMPTS, vector, layer=1, alpha=alpha, mode=mode, max_new_tokens=N_NEW, chat=False,
                       stop_at_eos=False)
    tokens, mask = interp.tokenize(bridge, PROMPTS)
    want, plain = greedy(hf, tokens, mask, *steering_edits(hf, mode, vector, 1, alpha)), greedy(hf, tokens, mask)

    def text(ids):
        return tuple(word_tokenizer.decode(r, skip_special_tokens=True).strip() for r in ids.tolist())
    assert res.steered == text(want), f"{family} {mode}: steered"
    hooked = interp.SteeringVector(vector, layer=1).hooks(bridge, alpha=alpha, mode=mode)
    got = generate(bridge, tokens, attention_mask=mask, max_new_tokens=N_NEW, stop_at_eos=False, hooks=hooked)
    assert torch.equal(got, want), f"{family} {mode}: steered token ids"
    assert not torch.equal(want, plain), "the edit changes nothing: the comparison would be empty"
    assert res.baseline == text(plain), f"{family} {mode}: baseline"


@pytest.mark.parametrize("family", cases("steer_add"))
def test_steer_add(twins, family, word_tokenizer):
    check_steer(twins, family, "add", word_tokenizer)


@pytest.mark.parametrize("family", cases("steer_ablate"))
def test_steer_ablate(twins, family, word_tokenizer):
    check_steer(twins, family, "ablate", word_tokenizer)


@pytest.mark.parametrize("family", cases("ablate_neurons"))
def test_ablate_neurons(twins, family):
    bridge, hf = twins(family)
    res = interp.ablate_neurons(bridge, PROMPTS, NEURONS, targets=["the", "cat", "is"], progress=False)
    before = torch.stack([residuals(hf, r)[1][-1].log_softmax(-1)[res.token_ids] for r in rows(bridge, PROMPTS)])
    after = torch.stack([residuals(hf, r, *zero_neurons(hf, NEURONS))[1][-1].log_softmax(-1)[res.token_ids]
                         for r in rows(bridge, PROMPTS)])
    assert_close(res.logprob_before, before, what=f"{family} log p before")
    assert_close(res.logprob_after, after, what=f"{family} log p with the neurons' down-projection input zeroed")
    assert (after - before).abs().max() > 1e-4, "the ablation changes nothing: the comparison would be empty"


@pytest.mark.parametrize("family", cases("rank_neurons"))
def test_rank_neurons(twins, family, word_tokenizer):
    bridge, hf = twins(family)
    good, bad = word_tokenizer.convert_tokens_to_ids(["is", "are"])
    ranking = interp.rank_neurons(bridge, PROMPTS, interp.logit_diff(bridge, "is", "are"), k=3, progress=False)
    n, acts = hf.config.num_hidden_layers, {}
    keep = [(down_proj(hf, layer), "in", lambda x, layer=layer: acts.__setitem__(layer, x)) for layer in range(n)]
    scores, measured = 0.0, torch.zeros(3)
    for row in rows(bridge, PROMPTS):
        with hooks(*keep):
            logits = hf(row[None]).logits[0, -1]
        grads = torch.autograd.grad(logits[good] - logits[bad], [acts[layer] for layer in range(n)])
        scores = scores + torch.stack([(-acts[layer] * g)[0].sum(0) for layer, g in enumerate(grads)]).detach()
        for j, neuron in enumerate(ranking.neurons):  # the top k, verified by zeroing each alone
            ablated = residuals(hf, row, *zero_neurons(hf, [neuron]))[1][-1]
            measured[j] += (ablated[good] - ablated[bad] - logits[good] + logits[bad]).item() / len(PROMPTS)
    scores = scores / len(PROMPTS)  # grad x (0 - activation), summed over positions, mean over prompts
    assert_close(ranking.scores, scores, ulps=64, what=f"{family} attribution")  # sums of products: their rounding
    assert_close(ranking.ablation, measured, ulps=64, what=f"{family} measured change")  # differences of logits
    d_mlp = scores.shape[1]
    assert ranking.neurons == tuple((int(i) // d_mlp, int(i) % d_mlp) for i in scores.flatten().argsort()[:3])


@pytest.mark.parametrize("family", cases("mean_difference"))
def test_mean_difference(twins, family):
    bridge, hf = twins(family)
    n = hf.config.num_hidden_layers
    vectors = interp.mean_difference(bridge, POSITIVE, NEGATIVE, layers=list(range(n)), positions="last", chat=False,
                                     cache=False)
    pos, neg = (torch.stack([residuals(hf, r)[0][:n, -1] for r in rows(bridge, s)]).mean(0) for s in (POSITIVE, NEGATIVE))
    for layer in range(n):
        assert_close(vectors[layer].direction, pos[layer] - neg[layer], what=f"{family} layer {layer}")


def tiny_sae(bridge, hook: str = "blocks.1.hook_resid_post"):
    """A random sae-lens StandardSAE on `hook`, scaled so that some features fire on a tiny model."""
    import warnings

    from sae_lens import StandardSAE, StandardSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    torch.manual_seed(0)
    with warnings.catch_warnings():  # sae-lens' advice on loading the model
        warnings.simplefilter("ignore", UserWarning)
        meta = SAEMetadata(hook_name=hook, model_name=bridge.cfg.model_name)
        sae = StandardSAE(StandardSAEConfig(d_in=32, d_sae=48, metadata=meta))
    with torch.no_grad():
        sae.W_enc.normal_(0, 0.5 / 32**0.5)
        sae.b_enc.fill_(-0.01)
    return sae.eval()


@pytest.mark.parametrize("family", cases("sae_features"))
def test_sae_features(twins, family):
    bridge, hf = twins(family)
    sae = tiny_sae(bridge)
    fa = interp.feature_activations(bridge, sae, PROMPTS[0])
    with torch.no_grad():
        want = sae.encode(residuals(hf, rows(bridge, PROMPTS[:1])[0])[0][2])  # entering layer 2 = leaving layer 1
    assert_close(fa.acts, want, what=f"{family} SAE features")
    assert (want > 0).any(), "no feature fires: the comparison would be empty"
    found = interp.search_features(bridge, sae, text=PROMPTS[0], k=5, max_density=None)
    top = want[1:].max(0).values.topk(5)  # every token after the first (BOS, or the attention sink)
    assert found.features.tolist() == top.indices[top.values > 0].tolist()
    assert_close(found.scores, top.values[top.values > 0], what=f"{family} search scores")


@pytest.mark.parametrize("family", cases("sae_promotes"))
def test_sae_promotes(twins, family, word_tokenizer):
    """Search by output: the unit decoder rows read linearly through the final norm and the unembedding."""
    bridge, hf = twins(family)
    sae, norm, cat = tiny_sae(bridge), final_norm(hf), word_tokenizer.convert_tokens_to_ids("cat")
    with torch.no_grad():
        dirs = sae.W_dec / sae.W_dec.norm(dim=-1, keepdim=True)
        if isinstance(norm, torch.nn.LayerNorm):
            dirs = dirs - dirs.mean(-1, keepdim=True)
        scale = norm.weight + 1 if "Gemma" in type(norm).__name__ else norm.weight  # Gemma's RMSNorm: x * (1 + w)
        logits = (dirs * scale) @ hf.get_output_embeddings().weight.T
    want = (logits[:, cat] - logits.mean(-1)).topk(5)
    found = interp.search_features(bridge, sae, promotes="cat", k=5, max_density=None)
    assert_close(found.scores, want.values, what=f"{family} logit a feature adds to 'cat'")
    assert found.features.tolist() == want.indices.tolist()


# --- the README table ---------------------------------------------------------------------------


def render_table() -> str:
    """The families x techniques table of the README: pass, or xfail with a footnote per distinct reason."""
    failing = [(f, t) for f in FAMILIES for t in TECHNIQUES if (f, t) in XFAIL]
    reasons = list(dict.fromkeys(XFAIL[k] for k in failing))
    lines = ["| family | architecture | what it exercises | " + " | ".join(TECHNIQUES.values()) + " |",
             "|---|---|---|" + "---|" * len(TECHNIQUES)]
    for family, (arch, what, _) in FAMILIES.items():
        cells = [f"xfail [{reasons.index(XFAIL[family, t]) + 1}]" if (family, t) in XFAIL else "pass"
                 for t in TECHNIQUES]
        lines.append(f"| {family} | `{arch}` | {what} | " + " | ".join(cells) + " |")
    for i, reason in enumerate(reasons, 1):
        where = "; ".join(f"{f}, {TECHNIQUES[t]}" for f, t in failing if XFAIL[f, t] == reason)
        lines += ["", f"[{i}] {where}: {reason}"]
    return "\n".join(lines) + "\n"


def test_every_technique_has_a_test():
    assert {name[5:] for name in globals() if name.startswith("test_")} >= set(TECHNIQUES)


def test_readme_shows_the_table():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert render_table() in readme, "README's Architectures table is stale: paste `python tests/test_architectures.py`"


if __name__ == "__main__":
    print(render_table(), end="")
