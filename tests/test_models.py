import warnings

import pytest
import torch

import interp
from interp.core import models
from interp.core import tokens as core_tokens


def test_unknown_model_lists_supported_names():
    with pytest.raises(ValueError, match=r"unknown model 'gpt5'.*toy.*gpt2.*gemma-2-2b-it"):
        interp.load_model("gpt5")


def test_offline_hub_model_gives_one_clear_error():
    with pytest.raises(interp.ModelNotAvailableError) as info:
        interp.load_model("gpt2", device="cpu")
    msg = str(info.value)
    assert "'gpt2'" in msg and "hub could not be reached" in msg
    assert "HF_HOME" in msg and "load_model('toy')" in msg


@pytest.mark.parametrize("device", ["cuda:7", "tpu", "banana"])
def test_impossible_device_is_refused(device):
    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    with pytest.raises(ValueError, match=repr(device)):
        interp.load_model("toy", device=device)


def test_bad_dtype():
    with pytest.raises(ValueError, match="dtype 'float8'"):
        models.resolve_dtype("float8")
    assert models.resolve_dtype("bf16") is torch.bfloat16


def test_default_device_is_cpu_here():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert models.default_device().type in (expected, "mps")


def test_model_info(tiny_model):
    info = interp.model_info(tiny_model)
    assert (info.n_layers, info.d_model, info.d_vocab) == (3, 32, tiny_model.cfg.d_vocab)
    assert info.device == "cpu" and info.n_params > 0
    assert "n_layers" in info.to_frame().index


def test_tokenize_left_pads_with_mask(gpt2_like):
    tokens, mask = interp.tokenize(gpt2_like, ["the cat sat on the mat", "the dog"])
    assert tokens.shape == mask.shape == (2, 7)
    assert mask[1].tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert tokens[1, -3:].tolist() == gpt2_like.to_tokens("the dog")[0].tolist()
    # with the mask, the padded row's last-position logits equal the unpadded run's
    padded = gpt2_like(tokens, attention_mask=mask)[1, -1]
    alone = gpt2_like(gpt2_like.to_tokens("the dog"))[0, -1]
    torch.testing.assert_close(padded, alone, atol=1e-4, rtol=1e-4)


def test_tokenize_bad_input(gpt2_like):
    with pytest.raises(ValueError, match="no prompts"):
        interp.tokenize(gpt2_like, [])
    with pytest.raises(ValueError, match="prompt 1 is ''"):
        interp.tokenize(gpt2_like, ["the cat", ""])
    with pytest.raises(ValueError, match="context is 48 tokens"):
        interp.tokenize(gpt2_like, " ".join(["cat"] * 60))


def test_unknown_words_warn_once(gpt2_like):
    core_tokens._warned_unknown.clear()
    with pytest.warns(UserWarning, match="zebra"):
        tokens, _ = interp.tokenize(gpt2_like, "the zebra sat")
    assert gpt2_like.tokenizer.unk_token_id in tokens[0].tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        interp.tokenize(gpt2_like, "the zebra sat")


def test_token_id(gpt2_like):
    assert gpt2_like.to_str_tokens(torch.tensor([interp.token_id(gpt2_like, "paris")]))[0] == "paris"
    paris = gpt2_like.to_single_token("paris")
    assert interp.token_id(gpt2_like, " paris") == interp.token_id(gpt2_like, "paris") == paris
    with pytest.raises(KeyError, match="not a single token"):
        interp.token_id(gpt2_like, gpt2_like.tokenizer.unk_token)
    with pytest.raises(KeyError, match="'london' is not a single token"):
        interp.token_id(gpt2_like, "london")
    with pytest.raises(KeyError, match="outside the vocabulary"):
        interp.token_id(gpt2_like, 10**6)


def test_chat_templates(gpt2_like):
    assert interp.format_chat(gpt2_like, "hi") == ["hi"]
    assert core_tokens.post_instruction_length(gpt2_like) == 1


def test_import_is_cheap():
    import subprocess
    import sys

    code = ("import sys, interp; docs = list(interp.toy.corpus.documents(2)); interp.data.prompts; "
            "print('transformer_lens' in sys.modules, 'torch' in sys.modules, len(docs))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "2"], "submodules load on first use; the corpus needs no torch"
