"""The built-in model as a Hugging Face GPT-2 checkpoint.

Training (`interp.toy.train`) works on transformer-lens-style parameters (`W_Q[head, d_model,
d_head]`, `W_U`, `b_U`, ...). What ships is a standard `GPT2LMHeadModel` folder
(`config.json`, `model.safetensors`, `tokenizer.json`), so the built-in model loads like any
other Hugging Face checkpoint and runs on the same engine.

GPT-2's unembedding has no bias, and training learns one (`b_U`). It is carried exactly by the
final LayerNorm instead, using the fact that LayerNorm's normalised output `n(x)` always sums
to zero across `d_model`. With `M = diag(w) W_U` (the norm's weight folded into the
unembedding), `C` the centring over `d_model` and `1` the all-ones vector, the shipped final
norm has weight 1 and bias `b / w + 1`, and the shipped unembedding is `C(M) + 1 f` with
`f = (b_U + mean(b / w) 1ᵀM) / (sum(b / w) + d_model)`. Then for every residual `x`
(every layer, not just the last):

    (n(x) + b/w + 1) (C(M) + 1 f) = n(x) M + b W_U + b_U

because `n(x) 1 = 0`, `1ᵀC(M) = 0` and `(b/w + 1)·1 = sum(b/w) + d_model`. The logits, and so
every logit-lens reading, are the trained model's to float rounding; no activation inside the
blocks changes; and a direction read linearly through the final norm (centred, times the
norm's weight, then `W_U`) gives the same logit effect as before.
"""

from __future__ import annotations

import torch

#: The GPT-2 config fields for a transformer-lens-style config of the built-in model.
_GPT2_FIELDS = {"n_layers": "n_layer", "d_model": "n_embd", "n_ctx": "n_positions", "n_heads": "n_head",
                "d_mlp": "n_inner", "d_vocab": "vocab_size"}


def gpt2_config(fields: dict, *, bos: int, eos: int, pad: int) -> dict:
    """A `GPT2Config` dict (as `config.json` holds it) for the built-in model's fields."""
    if fields.get("act_fn") != "gelu" or fields.get("normalization_type") != "LN":
        raise ValueError(f"the built-in model is GPT-2 shaped (act_fn 'gelu', LayerNorm); got {fields}")
    if fields["d_model"] != fields["n_heads"] * fields["d_head"]:
        raise ValueError(f"d_model {fields['d_model']} != n_heads x d_head {fields['n_heads']} x {fields['d_head']}")
    return {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        **{hf: fields[tl] for tl, hf in _GPT2_FIELDS.items()},
        "activation_function": "gelu", "layer_norm_epsilon": 1e-5, "tie_word_embeddings": False,
        "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0, "initializer_range": fields.get(
            "initializer_range", 0.02), "scale_attn_weights": True, "use_cache": True,
        "bos_token_id": bos, "eos_token_id": eos, "pad_token_id": pad,
        "model_name": fields.get("model_name", "toy"),
    }


def to_gpt2_state(state: dict[str, torch.Tensor], n_layers: int) -> dict[str, torch.Tensor]:
    """transformer-lens-style parameters -> a `GPT2LMHeadModel` state dict (float64 algebra,
    stored in the parameters' dtype)."""
    dtype = state["embed.W_E"].dtype
    out = {"transformer.wte.weight": state["embed.W_E"], "transformer.wpe.weight": state["pos_embed.W_pos"]}
    for layer in range(n_layers):
        tl, hf = f"blocks.{layer}.", f"transformer.h.{layer}."
        d_model = state[tl + "attn.W_Q"].shape[1]
        qkv = [state[tl + f"attn.W_{x}"].permute(1, 0, 2).reshape(d_model, -1) for x in "QKV"]
        out |= {
            hf + "ln_1.weight": state[tl + "ln1.w"], hf + "ln_1.bias": state[tl + "ln1.b"],
            hf + "ln_2.weight": state[tl + "ln2.w"], hf + "ln_2.bias": state[tl + "ln2.b"],
            hf + "attn.c_attn.weight": torch.cat(qkv, 1),
            hf + "attn.c_attn.bias": torch.cat([state[tl + f"attn.b_{x}"].reshape(-1) for x in "QKV"]),
            hf + "attn.c_proj.weight": state[tl + "attn.W_O"].reshape(-1, d_model),
            hf + "attn.c_proj.bias": state[tl + "attn.b_O"],
            hf + "mlp.c_fc.weight": state[tl + "mlp.W_in"], hf + "mlp.c_fc.bias": state[tl + "mlp.b_in"],
            hf + "mlp.c_proj.weight": state[tl + "mlp.W_out"], hf + "mlp.c_proj.bias": state[tl + "mlp.b_out"],
        }
    w, b = state["ln_final.w"].double(), state["ln_final.b"].double()
    w_u, b_u = state["unembed.W_U"].double(), state["unembed.b_U"].double()
    d_model = w.shape[0]
    m = w[:, None] * w_u
    centred = m - m.mean(0, keepdim=True)
    bias = b / w + 1.0
    f = (b_u + (b / w).mean() * m.sum(0)) / bias.sum()
    out |= {
        "transformer.ln_f.weight": torch.ones(d_model, dtype=torch.float64),
        "transformer.ln_f.bias": bias,
        "lm_head.weight": (centred + f[None]).T,
    }
    return {k: v.to(dtype).contiguous() for k, v in out.items()}

