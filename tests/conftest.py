"""Shared fixtures: tiny random-weight models of two families, offline tokenizers.

The hub is switched off before anything imports transformer-lens, so no test can download.
"""

import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("WANDB_MODE", "disabled")

import pytest  # noqa: E402
import torch  # noqa: E402
from transformer_lens import HookedTransformer, HookedTransformerConfig  # noqa: E402

from interp.toy.tokenizer import build_tokenizer  # noqa: E402

# On 2 shared cores one thread runs the suite several times faster. INTERP_TEST_THREADS=2 runs it
# with two, where some float results round differently (other work splits): tests/tolerance.py.
torch.set_num_threads(int(os.environ.get("INTERP_TEST_THREADS", "1")))


def pytest_report_header(config):
    return f"torch threads: {torch.get_num_threads()} (INTERP_TEST_THREADS)"


WORDS = (
    "the a cat dog mat sat on is are was were key keys to cabinet cabinets capital of france "
    "paris germany berlin hot cold big small up down user assistant i cannot help with that sure "
    "how do make bread bomb -> ; , . : ? hello 1135 in language french"
).split()


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test writes its disk cache to its own temporary folder."""
    monkeypatch.setenv("INTERP_CACHE_DIR", str(tmp_path / "interp-cache"))


@pytest.fixture(scope="session")
def word_tokenizer(tmp_path_factory):
    """A word-level tokenizer saved to a temp folder and loaded with from_pretrained."""
    return build_tokenizer(WORDS, tmp_path_factory.mktemp("tokenizer"))


def _model(cfg: HookedTransformerConfig, tokenizer, seed: int) -> HookedTransformer:
    torch.manual_seed(seed)
    model = HookedTransformer(cfg, tokenizer=tokenizer)
    model.eval()
    return model


def gpt2_like_config(d_vocab: int, **overrides) -> HookedTransformerConfig:
    """GPT-2 architecture in miniature: LayerNorm, learned positions, GELU MLP."""
    kwargs = dict(
        model_name="tiny-gpt2",
        n_layers=3,
        d_model=32,
        n_heads=4,
        d_head=8,
        d_mlp=64,
        n_ctx=48,
        d_vocab=d_vocab,
        act_fn="gelu_new",
        normalization_type="LN",
        positional_embedding_type="standard",
        original_architecture="GPT2LMHeadModel",
        default_prepend_bos=True,
        tokenizer_prepends_bos=False,
        seed=0,
        init_weights=True,
    )
    kwargs.update(overrides)
    return HookedTransformerConfig(**kwargs)


def gemma2_like_config(d_vocab: int, **overrides) -> HookedTransformerConfig:
    """Gemma-2 architecture in miniature: RMSNorm before and after each sublayer, gated MLP,
    grouped-query attention, rotary positions, attention and final-logit soft-capping."""
    kwargs = dict(
        model_name="tiny-gemma-2",
        n_layers=3,
        d_model=32,
        n_heads=4,
        d_head=8,
        n_key_value_heads=2,
        d_mlp=64,
        n_ctx=48,
        d_vocab=d_vocab,
        act_fn="gelu_pytorch_tanh",
        normalization_type="RMS",
        gated_mlp=True,
        positional_embedding_type="rotary",
        rotary_dim=8,
        use_normalization_before_and_after=True,
        attn_scores_soft_cap=50.0,
        output_logits_soft_cap=30.0,
        original_architecture="Gemma2ForCausalLM",
        default_prepend_bos=True,
        tokenizer_prepends_bos=False,
        seed=0,
        init_weights=True,
    )
    kwargs.update(overrides)
    return HookedTransformerConfig(**kwargs)


@pytest.fixture(scope="session")
def gpt2_like(word_tokenizer) -> HookedTransformer:
    return _model(gpt2_like_config(len(word_tokenizer)), word_tokenizer, seed=0)


@pytest.fixture(scope="session")
def gemma2_like(word_tokenizer) -> HookedTransformer:
    return _model(gemma2_like_config(len(word_tokenizer)), word_tokenizer, seed=1)


@pytest.fixture(params=["gpt2_like", "gemma2_like"])
def tiny_model(request) -> HookedTransformer:
    """Each test using this runs once per architecture family."""
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="session")
def toy_model():
    """The built-in model (skips when its weights have not been trained yet)."""
    import interp

    if not (Path(interp.__file__).parent / "toy" / "artifacts" / "model.safetensors").exists():
        pytest.skip("built-in model weights not trained yet")

    return interp.load_model("toy", device="cpu")


@pytest.fixture(scope="session")
def toy_hooked(toy_model):
    """The built-in model's weights in a `HookedTransformer` (transformer-lens' GPT-2 weight
    conversion of the shipped checkpoint): the engine's path for a model a user built, on
    trained weights."""
    from transformer_lens.pretrained.weight_conversions.gpt2 import convert_gpt2_weights
    from transformers import GPT2LMHeadModel

    from interp.toy import TOY_DIR

    hf = GPT2LMHeadModel.from_pretrained(TOY_DIR)
    c = hf.config
    cfg = HookedTransformerConfig(
        model_name="toy", n_layers=c.n_layer, d_model=c.n_embd, n_ctx=c.n_positions, d_head=c.n_embd // c.n_head,
        n_heads=c.n_head, d_mlp=c.n_inner, d_vocab=c.vocab_size, act_fn="gelu", normalization_type="LN",
        positional_embedding_type="standard", original_architecture="GPT2LMHeadModel", default_prepend_bos=True,
        tokenizer_prepends_bos=False,
    )
    model = HookedTransformer(cfg, tokenizer=toy_model.tokenizer)
    model.load_state_dict(convert_gpt2_weights(hf, cfg), strict=False)
    return model.eval()


def experiment_module(name: str):
    """`experiments/<name>.py` imported as a module (the scripts are not a package)."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "experiments" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"experiment_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve string annotations through sys.modules
    spec.loader.exec_module(module)
    return module
