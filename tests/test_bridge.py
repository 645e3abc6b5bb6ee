"""The engine on a bridged Hugging Face model: the built-in model, a GPT-2 checkpoint loaded
strictly (`interp.core.bridge.load_folder`) and wrapped in transformer-lens' `TransformerBridge`,
must give what the same weights in a `HookedTransformer` give (`toy_hooked`): the same logits,
activations, lens, generated tokens, steering, rankings, patchscopes."""

import pytest
import torch
from safetensors.torch import load_file, save_file
from tolerance import assert_close

import interp
from interp.core.bridge import CheckpointError, load_folder
from interp.core.engine import is_bridge
from interp.core.generation import generate
from interp.core.hooks import count_hooks, harvest
from interp.neurons.metrics import logit_diff
from interp.toy import TOY_DIR

PROMPTS = ["the capital of france is", "user : how do i bake bread ? assistant :", "the key to the boxes"]
HARM = ["how do i make a bomb ?", "how do i hurt someone ?", "how do i steal a car ?"]
SAFE = ["how do i bake bread ?", "how do i plant a tree ?", "how do i learn french ?"]


@pytest.fixture(scope="module")
def bridge(toy_model):
    return toy_model


def _centred(logits: torch.Tensor) -> torch.Tensor:  # the export moves logits by a constant per row
    return logits - logits.mean(-1, keepdim=True)


def test_the_export_is_a_bridge_with_the_hooked_models_logits(bridge, toy_hooked):
    assert is_bridge(bridge) and not is_bridge(toy_hooked)
    tokens, mask = interp.tokenize(toy_hooked, PROMPTS)
    with torch.inference_mode():
        want, got = toy_hooked(tokens, attention_mask=mask), bridge(tokens, attention_mask=mask)
    real = mask.bool()
    assert_close(_centred(got)[real], _centred(want)[real], what="logits")


def test_harvest_reads_the_same_activations_and_stops_after_the_last_site(bridge, toy_hooked):
    tokens, mask = interp.tokenize(toy_hooked, PROMPTS)
    sites = [("resid_pre", 0), ("resid_mid", 1), ("mlp_post", 1), ("resid_post", 1), ("attn_out", 0)]
    fired = []
    later = bridge.hook_dict["blocks.2.hook_resid_pre"]
    later.add_hook(lambda act, hook: fired.append(1))
    try:
        got = harvest(bridge, tokens, sites, attention_mask=mask)
    finally:
        later.remove_hooks()
    want = harvest(toy_hooked, tokens, sites, attention_mask=mask)
    assert not fired, "block 2 ran although the deepest site is in block 1"
    real = mask.bool()
    for name in want:
        assert_close(got[name][real], want[name][real], what=name)
    assert count_hooks(bridge) == 0


def test_logit_lens_probabilities_match(bridge, toy_hooked):
    a = interp.logit_lens(toy_hooked, PROMPTS[0], targets=["paris"])
    b = interp.logit_lens(bridge, PROMPTS[0], targets=["paris"])
    assert_close(b.target_probs, a.target_probs, ulps=512, what="p(paris) per layer")  # from logits of ~20: their rounding
    assert torch.equal(a.top_ids, b.top_ids)


def test_generation_is_hugging_faces_with_the_cache_and_equals_the_hooked_model(bridge, toy_hooked):
    tokens, mask = interp.tokenize(toy_hooked, PROMPTS)
    kw = dict(attention_mask=mask, max_new_tokens=8, stop_at_eos=False)
    got = generate(bridge, tokens, **kw)
    assert torch.equal(got, generate(toy_hooked, tokens, **kw))
    # Hugging Face's generate without the cache: the key-value cache is read (transformers 5 passes
    # it as `cache=`; interp.core.engine.patch_bridge_cache lets the bridge's attention find it)
    plain = bridge.original_model.generate(tokens, attention_mask=mask, max_new_tokens=8, do_sample=False,
                                           use_cache=False, pad_token_id=0, eos_token_id=None)
    assert torch.equal(got, plain[:, tokens.shape[1]:])


def test_steering_and_ablation_give_the_hooked_models_tokens(bridge, toy_hooked):
    vectors = {m: interp.mean_difference(m, HARM, SAFE, layers=[1], positions="last", cache=False) for m in (toy_hooked, bridge)}
    a, b = vectors[toy_hooked][1].direction, vectors[bridge][1].direction
    assert torch.nn.functional.cosine_similarity(a, b, dim=0) > 1 - 1e-5
    for mode, alpha in (("add", 1.0), ("ablate", 1.0)):
        want = interp.steer(toy_hooked, SAFE + HARM, vectors[toy_hooked][1], alpha=alpha, mode=mode, max_new_tokens=6)
        got = interp.steer(bridge, SAFE + HARM, vectors[bridge][1], alpha=alpha, mode=mode, max_new_tokens=6)
        assert got.steered == want.steered and got.baseline == want.baseline, mode
    assert count_hooks(bridge) == 0


def test_a_users_own_torch_hook_on_a_block_runs_inside_steer(bridge, toy_hooked):
    v = interp.mean_difference(bridge, HARM, SAFE, layers=[1], positions="last", cache=False)[1]
    calls = []
    handle = bridge.blocks[1].register_forward_hook(lambda module, args, out: calls.append(1))
    try:
        interp.steer(bridge, SAFE[:1], v, max_new_tokens=3, baseline=False)
    finally:
        handle.remove()
    assert len(calls) >= 3  # the prompt and every step


def test_neuron_ranking_and_activations_match(bridge, toy_hooked):
    prompts = ["the key to the boxes", "the keys to the cabinet", "the key to the cabinets"]
    ranks = [interp.rank_neurons(m, prompts, logit_diff(m, "is", "are"), layers=[1], k=3, progress=False)
             for m in (toy_hooked, bridge)]
    assert_close(ranks[1].scores, ranks[0].scores, ulps=256, what="attribution scores")  # sums of many products
    docs = interp.toy.corpus.documents(40, seed=3)
    acts = [interp.neuron_activations(m, docs, (1, int(ranks[0].neurons[0][1])), k=5, progress=False)
            for m in (toy_hooked, bridge)]
    assert acts[0].n_tokens == acts[1].n_tokens
    assert abs(acts[0].mean - acts[1].mean) <= 1e-4 * max(1.0, abs(acts[0].mean))


def test_loading_is_strict_about_the_checkpoints_tensors(tmp_path):
    import shutil

    toy_folder = TOY_DIR
    state = load_file(str(toy_folder / "model.safetensors"))
    cases = {
        "missing": ({k: v for k, v in state.items() if k != "transformer.h.1.mlp.c_fc.bias"}, "missing"),
        "unexpected": ({**state, "transformer.h.9.attn.c_attn.bias": state["transformer.h.1.attn.c_attn.bias"].clone()},
                       "unexpected"),
        "shape": ({**state, "transformer.wpe.weight": state["transformer.wpe.weight"][:10]}, "shape"),
        "nan": ({**state, "transformer.h.0.ln_1.bias": torch.full_like(state["transformer.h.0.ln_1.bias"],
                                                                          float("nan"))}, "NaN"),
    }
    for case, (tensors, words) in cases.items():
        folder = tmp_path / case
        shutil.copytree(toy_folder, folder, ignore=shutil.ignore_patterns("sae", "*.html", "*.csv"))
        save_file(tensors, str(folder / "model.safetensors"))
        with pytest.raises(CheckpointError, match=words):
            load_folder(folder)


@pytest.mark.parametrize(("site", "new"), [("resid_pre", 4), ("resid_post", 4), ("resid_pre", 1)])
def test_patchscope_sweeps_give_the_hooked_models_tokens_and_probabilities(bridge, toy_hooked, site, new):
    kw = dict(source_position="paris", target="identity", targets="paris", max_new_tokens=new, site=site)
    want = interp.patching.patchscope(toy_hooked, "i want to see paris one day .", **kw)
    got = interp.patching.patchscope(bridge, "i want to see paris one day .", **kw)
    assert got.generations == want.generations
    assert_close(got.target_probs, want.target_probs, ulps=512, what="p(paris) per source layer")
    assert count_hooks(bridge) == 0


def test_orthogonalize_copies_the_bridge_and_matches_runtime_ablation(bridge, toy_hooked):
    v = interp.mean_difference(bridge, HARM, SAFE, layers=[1], positions="last", cache=False)[1]
    before = {k: p.detach().clone() for k, p in bridge.original_model.named_parameters()}
    clean = interp.orthogonalize(bridge, v)
    assert is_bridge(clean) and clean is not bridge
    for k, p in bridge.original_model.named_parameters():  # the user's model is untouched
        assert torch.equal(p, before[k]), k
    tokens, mask = interp.tokenize(bridge, HARM + SAFE)
    with torch.inference_mode(), v.apply(bridge, mode="ablate"):
        ablated = bridge(tokens, attention_mask=mask)
    with torch.inference_mode():
        edited = clean(tokens, attention_mask=mask)
    real = mask.bool()
    assert_close(_centred(edited)[real], _centred(ablated)[real], ulps=256, what="orthogonalized vs ablated logits")


def _family_config(family: str, vocab: int):
    from transformers import Gemma2Config, GPT2Config, LlamaConfig, Qwen2Config

    small = dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    config = {
        "gpt2": lambda: GPT2Config(vocab_size=vocab, n_positions=64, n_embd=32, n_layer=3, n_head=4),
        "llama": lambda: LlamaConfig(**small),
        "qwen2": lambda: Qwen2Config(**small),
        "gemma2": lambda: Gemma2Config(**small, head_dim=8, final_logit_softcapping=30.0,
                                       attn_logit_softcapping=50.0, sliding_window=64),
    }[family]()
    config.architectures = [{"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM",
                             "gemma2": "Gemma2ForCausalLM"}[family]]
    return config


@pytest.mark.parametrize("family", ["gpt2", "llama", "qwen2", "gemma2"])
def test_tiny_families_equal_plain_hugging_face_with_a_torch_hook(family, word_tokenizer):
    """Logits, and steered greedy tokens against Hugging Face's generate with a forward pre-hook
    on the same weights (how steering-vectors, repeng and nnsight steer)."""
    from transformers import AutoModelForCausalLM

    from interp.core.bridge import boot

    config = _family_config(family, len(word_tokenizer))
    models = []
    for _ in range(2):  # the same weights twice: one is bridged (in place), one stays plain
        torch.manual_seed(0)
        models.append(AutoModelForCausalLM.from_config(config, attn_implementation="eager").eval())
    plain, bridged = models[0], boot(models[1], word_tokenizer, name=f"tiny-{family}")
    tokens = torch.randint(4, len(word_tokenizer), (2, 7), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        assert_close(bridged(tokens), plain(tokens).logits, what=f"{family} logits")
    push = torch.randn(32, generator=torch.Generator().manual_seed(2)) * 4
    layers = plain.transformer.h if family == "gpt2" else plain.model.layers
    handle = layers[1].register_forward_pre_hook(lambda module, args, kwargs: ((args[0] + push, *args[1:]), kwargs)
                                                 if args else (args, {**kwargs, "hidden_states": kwargs["hidden_states"] + push}),
                                                 with_kwargs=True)
    try:
        want = plain.generate(tokens, attention_mask=torch.ones_like(tokens), max_new_tokens=6, do_sample=False,
                              pad_token_id=0, eos_token_id=None)[:, tokens.shape[1]:]
    finally:
        handle.remove()
    got = generate(bridged, tokens, max_new_tokens=6, stop_at_eos=False,
                   hooks=[("blocks.1.hook_resid_pre", lambda act, hook: act + push)])
    assert torch.equal(got, want), family
    lens = interp.logit_lens(bridged, "the cat sat on the mat")
    assert lens.kl_to_final[-1].abs().max().item() < 1e-6


def test_a_trained_model_saves_as_a_gpt2_checkpoint_with_its_unembedding_bias(word_tokenizer, tmp_path):
    """`interp.toy.train.save_model`: GPT-2 has no unembedding bias; the final norm carries it
    exactly (`interp.toy.checkpoint`), at every layer's read-out, not just the last."""
    from dataclasses import asdict

    from transformer_lens import HookedTransformer, HookedTransformerConfig

    from interp.core.readout import final_logits
    from interp.toy import load_toy
    from interp.toy.params import ToyParams
    from interp.toy.train import save_model, tiny_config

    cfg = tiny_config(len(word_tokenizer))
    params = ToyParams(cfg, tokenizer=word_tokenizer)
    with torch.no_grad():  # a trained model's norm and bias are far from their initial values
        params.unembed.b_U.normal_(0, 1.0)
        params.ln_final.w.uniform_(0.5, 1.5)
        params.ln_final.b.normal_(0, 0.2)
    save_model(params, tmp_path)
    trained = HookedTransformer(HookedTransformerConfig(**asdict(cfg)), tokenizer=word_tokenizer).eval()
    trained.load_state_dict(params.state_dict(), strict=False)  # the parameters as transformer-lens runs them
    word_tokenizer.save_pretrained(tmp_path)
    loaded = load_toy(folder=tmp_path)
    tokens = torch.tensor([[1, 7, 9, 12, 5, 30]])
    with torch.inference_mode():
        want = trained.run_with_cache(tokens)[1]
        for layer in range(trained.cfg.n_layers):
            name = f"blocks.{layer}.hook_resid_post"
            got = harvest(loaded, tokens, [name])[name]
            assert_close(got, want[name], what=name)
            assert_close(_centred(final_logits(loaded, got)), _centred(final_logits(trained, want[name])),
                         what=f"read-out of layer {layer}")


def test_a_profile_with_processed_weights_gives_an_sae_the_activations_it_was_trained_on(word_tokenizer, tmp_path):
    """sae-lens' GPT-2 SAEs were trained on `HookedTransformer.from_pretrained`'s processed weights
    (LayerNorm folded, writing weights centred): a profile with `processed_weights=True` makes
    `load_model` run the bridge in compatibility mode, whose residual stream is that one."""
    from sae_lens import TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    from transformer_lens.pretrained.weight_conversions.gpt2 import convert_gpt2_weights
    from transformers import GPT2Config, GPT2LMHeadModel

    from interp.core.profiles import ModelProfile, register_profile

    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=len(word_tokenizer), n_positions=32, n_embd=32, n_layer=2, n_head=4,
                                    bos_token_id=word_tokenizer.bos_token_id)).eval()
    with torch.no_grad():  # a trained model's norms are far from the identity; folding them then matters
        for name, p in hf.named_parameters():
            if "ln" in name:
                p.add_(torch.randn_like(p) * 0.3)
    folder = tmp_path / "tiny-processed"
    hf.save_pretrained(folder)
    word_tokenizer.save_pretrained(folder)
    register_profile(ModelProfile(name="tiny-processed", processed_weights=True))
    processed, raw = interp.load_model(str(folder)), load_folder(folder)
    assert processed.compatibility_mode and not getattr(raw, "compatibility_mode", False)
    c = hf.config
    cfg = HookedTransformerConfig(n_layers=c.n_layer, d_model=c.n_embd, n_ctx=c.n_positions, d_head=c.n_embd // c.n_head,
                                  n_heads=c.n_head, d_mlp=4 * c.n_embd, d_vocab=c.vocab_size, act_fn="gelu_new",
                                  normalization_type="LN", positional_embedding_type="standard",
                                  original_architecture="GPT2LMHeadModel")
    trained_on = HookedTransformer(cfg)  # what sae-lens read: from_pretrained's processing of these weights
    trained_on.load_and_process_state_dict(convert_gpt2_weights(hf, cfg), fold_ln=True, center_writing_weights=True,
                                           center_unembed=True)
    hook = "blocks.1.hook_resid_pre"
    tokens, _ = interp.tokenize(processed, ["the cat sat on the mat"])
    want = trained_on.run_with_cache(tokens)[1][hook]
    assert_close(harvest(processed, tokens, [hook])[hook], want, ulps=64, what="processed residual")
    assert (harvest(raw, tokens, [hook])[hook] - want).abs().max() > 1e-2, "processing must matter here"
    sae = TopKSAE(TopKSAEConfig(d_in=32, d_sae=24, k=4, metadata=SAEMetadata(hook_name=hook, model_name="tiny-processed")))
    with torch.no_grad():
        sae.W_enc.normal_()
    acts = interp.feature_activations(processed, sae, "the cat sat on the mat").acts
    assert_close(acts, sae.encode(want[0])[-len(acts):], ulps=256, what="SAE features")


def test_load_model_wraps_a_users_own_hugging_face_model(word_tokenizer):
    from transformers import AutoModelForCausalLM

    config = _family_config("llama", len(word_tokenizer))
    torch.manual_seed(0)
    hf = AutoModelForCausalLM.from_config(config, attn_implementation="eager").eval()
    tokens = torch.tensor([[4, 9, 12, 7]])
    with torch.inference_mode():
        want = hf(tokens).logits
    model = interp.load_model(hf, tokenizer=word_tokenizer)
    assert is_bridge(model) and model.original_model is hf  # wrapped as it is, no copy
    with torch.inference_mode():
        assert_close(model(tokens), want, what="logits")
    assert interp.logit_lens(model, "the cat sat").kl_to_final[-1].abs().max() < 1e-6
    with pytest.raises(ValueError, match="needs its tokenizer"):
        interp.load_model(hf)
    with pytest.raises(ValueError, match="tokenizer= is for a Hugging Face model"):
        interp.load_model("toy", tokenizer=word_tokenizer)
