"""Models to benchmark on: the built-in one, or random-weight models at real scale (GPU)."""

from __future__ import annotations

import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

import interp


def bench_model(name: str) -> HookedTransformer:
    """`toy`, or `gpt2-random` / `gemma-2-2b-random`: the real architectures with random weights
    (no download), sharing the built-in model's tokenizer so text inputs work."""
    if name == "toy":
        return interp.load_model("toy")
    toy = interp.load_model("toy", device="cpu")
    device = interp.core.models.default_device()
    common = dict(d_vocab=toy.cfg.d_vocab, default_prepend_bos=True, tokenizer_prepends_bos=False, init_weights=True)
    if name == "gpt2-random":
        cfg = HookedTransformerConfig(
            model_name=name, n_layers=12, d_model=768, n_heads=12, d_head=64, d_mlp=3072, n_ctx=1024,
            act_fn="gelu_new", normalization_type="LN", original_architecture="GPT2LMHeadModel", **common,
        )
    elif name == "gemma-2-2b-random":
        cfg = HookedTransformerConfig(
            model_name=name, n_layers=26, d_model=2304, n_heads=8, d_head=256, n_key_value_heads=4,
            d_mlp=9216, n_ctx=8192, act_fn="gelu_pytorch_tanh", normalization_type="RMS", gated_mlp=True,
            positional_embedding_type="rotary", rotary_dim=256, use_normalization_before_and_after=True,
            attn_scores_soft_cap=50.0, output_logits_soft_cap=30.0, original_architecture="Gemma2ForCausalLM",
            dtype=torch.bfloat16 if device.type == "cuda" else torch.float32, **common,
        )
    else:
        raise ValueError(f"unknown benchmark model {name!r}; expected toy, gpt2-random or gemma-2-2b-random")
    model = HookedTransformer(cfg, tokenizer=toy.tokenizer, move_to_device=False).to(device)
    return model.eval()
