"""A Hugging Face model to a `HookedTransformer`, built from its own config and checked against it.

TransformerLens converts many architectures, but `HookedTransformer.from_pretrained` first
looks the name up in its list of official models (and may ask the hub for the config). A
checkpoint on disk needs neither: its `config.json` says everything. This module

1. builds the `HookedTransformerConfig` from the Hugging Face config (TransformerLens' own
   per-architecture mapping where it reads the config, this module's where TransformerLens
   hard-codes sizes by model name, as for Gemma);
2. converts the weights with TransformerLens' converter for the architecture, then folds the
   norms and centres the writing weights and the unembedding as `from_pretrained` does;
3. checks the result: both models read a short prompt and the largest difference of their
   *centred* logits (each position's logits minus their mean over the vocabulary; centring the
   unembedding shifts a position's logits by a constant, which changes no probability) must be
   at most `LOGIT_TOLERANCE`. This is the check users of TransformerLens most often ask for
   ("does the hooked model compute what the original computes?").

Example:
    >>> from transformers import AutoModelForCausalLM, AutoTokenizer
    >>> hf = AutoModelForCausalLM.from_pretrained("path/to/folder")
    >>> tok = AutoTokenizer.from_pretrained("path/to/folder")
    >>> model, gap = hooked_from_hf(hf, tok, name="my-model")
    >>> gap < LOGIT_TOLERANCE
    True
"""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

#: Largest allowed difference of centred logits between the `HookedTransformer` and the Hugging
#: Face model on `CHECK_PROMPT`, both run in float32 on the CPU.
LOGIT_TOLERANCE = 1e-2
CHECK_PROMPT = "The capital of France is Paris. The capital of Japan is"

#: Hugging Face architectures this module converts (`config.json`'s `architectures[0]`).
SUPPORTED_ARCHITECTURES: tuple[str, ...] = (
    "GPT2LMHeadModel",
    "LlamaForCausalLM",
    "MistralForCausalLM",
    "Qwen2ForCausalLM",
    "GemmaForCausalLM",
    "Gemma2ForCausalLM",
)


class LogitMismatchError(RuntimeError):
    """The converted model's logits differ from the Hugging Face model's beyond the tolerance."""


def architecture(hf_config: Any, where: str) -> str:
    """The config's architecture, checked against `SUPPORTED_ARCHITECTURES`.

    Raises:
        ValueError: naming `where` (a path), the architecture and the supported ones.
    """
    names = getattr(hf_config, "architectures", None) or []
    arch = names[0] if names else None
    if arch is None:  # configs built in code (and some GGUF ones) only name the model type
        by_type = {"gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM",
                   "qwen2": "Qwen2ForCausalLM", "gemma": "GemmaForCausalLM", "gemma2": "Gemma2ForCausalLM"}
        arch = by_type.get(getattr(hf_config, "model_type", None), getattr(hf_config, "model_type", None))
    if arch not in SUPPORTED_ARCHITECTURES:
        raise ValueError(
            f"{where}: architecture {arch!r} cannot be converted to a HookedTransformer here; "
            f"supported: {', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    return arch


def _transformer_lens_fields(hf_config: Any, arch: str) -> dict[str, Any]:
    """TransformerLens' own mapping of a config to its fields, for the architectures it reads
    from the config. It reads the config from a folder and picks branches by that folder's
    name, so the config is written to a fresh folder whose name says nothing."""
    from transformer_lens.loading_from_pretrained import convert_hf_model_config

    config = hf_config.to_dict()
    config["architectures"] = [arch]
    if arch == "GPT2LMHeadModel" and "n_ctx" not in config:  # newer GPT2Configs keep only n_positions
        config["n_ctx"] = config["n_positions"]
    with tempfile.TemporaryDirectory(prefix="interp-config-") as folder:
        (Path(folder) / "config.json").write_text(json.dumps(config))
        return convert_hf_model_config(folder)


def _gemma_fields(hf: Any, arch: str) -> dict[str, Any]:
    """Gemma and Gemma-2 fields from the config (TransformerLens hard-codes them by model name)."""
    d_head = getattr(hf, "head_dim", None) or hf.hidden_size // hf.num_attention_heads
    fields: dict[str, Any] = {
        "d_model": hf.hidden_size,
        "d_head": d_head,
        "n_heads": hf.num_attention_heads,
        "n_key_value_heads": hf.num_key_value_heads,
        "d_mlp": hf.intermediate_size,
        "n_layers": hf.num_hidden_layers,
        "n_ctx": min(hf.max_position_embeddings, 8192),
        "eps": hf.rms_norm_eps,
        "d_vocab": hf.vocab_size,
        "act_fn": getattr(hf, "hidden_activation", None) or hf.hidden_act,
        "initializer_range": hf.initializer_range,
        "normalization_type": "RMS",
        "rotary_base": float(_rope_theta(hf)),
        "rotary_dim": d_head,
        "positional_embedding_type": "rotary",
        "use_attn_scale": True,
        "gated_mlp": True,
        "final_rms": True,
        "original_architecture": arch,
    }
    if arch == "Gemma2ForCausalLM":
        layer_types = getattr(hf, "layer_types", None) or [
            "sliding_attention" if i % 2 == 0 else "full_attention" for i in range(hf.num_hidden_layers)
        ]
        fields.update(
            attn_scale=float(getattr(hf, "query_pre_attn_scalar", d_head)) ** 0.5,
            attn_scores_soft_cap=hf.attn_logit_softcapping or -1.0,
            output_logits_soft_cap=hf.final_logit_softcapping or -1.0,
            use_normalization_before_and_after=True,
            use_local_attn=True,
            window_size=hf.sliding_window,
            attn_types=["local" if t == "sliding_attention" else "global" for t in layer_types],
        )
    return fields


def _rope_theta(hf: Any) -> float:
    theta = getattr(hf, "rope_theta", None)
    if theta is None:
        theta = (getattr(hf, "rope_parameters", None) or {}).get("rope_theta", 10000.0)
    return theta


def tl_config(
    hf_config: Any,
    *,
    name: str,
    prepend_bos: bool,
    where: str = "the checkpoint",
    dtype: torch.dtype = torch.float32,
    device: str = "cpu",
) -> HookedTransformerConfig:
    """The `HookedTransformerConfig` of a Hugging Face config, with the norms folded (`*Pre`).

    Args:
        hf_config: a `transformers.PretrainedConfig`.
        name: the `model_name` the hooked model gets (its profile is found by it).
        prepend_bos: the model's `default_prepend_bos` (whether its own tokenizer adds BOS).
        where: the checkpoint's path, for error messages.

    Example:
        >>> tl_config(LlamaConfig(...), name="tiny", prepend_bos=True).normalization_type
        'RMSPre'
    """
    arch = architecture(hf_config, where)
    if arch.startswith("Gemma"):
        fields = _gemma_fields(hf_config, arch)
    else:
        fields = _transformer_lens_fields(hf_config, arch)
        fields["d_vocab"] = hf_config.vocab_size
    fields.pop("tokenizer_name", None)  # the tokenizer is handed over, never looked up by name
    fields.pop("trust_remote_code", None)
    fields["normalization_type"] = {"LN": "LNPre", "RMS": "RMSPre"}.get(
        fields["normalization_type"], fields["normalization_type"]
    )
    fields.update(
        model_name=name,
        default_prepend_bos=prepend_bos,
        init_weights=False,
        dtype=dtype,
        device=device,
    )
    return HookedTransformerConfig.from_dict(fields)


def _converter(arch: str):
    from transformer_lens.pretrained import weight_conversions as wc

    return {
        "GPT2LMHeadModel": wc.convert_gpt2_weights,
        "LlamaForCausalLM": wc.convert_llama_weights,
        "MistralForCausalLM": wc.convert_mistral_weights,
        "Qwen2ForCausalLM": wc.convert_qwen2_weights,
        "GemmaForCausalLM": wc.convert_gemma_weights,
        "Gemma2ForCausalLM": wc.convert_gemma_weights,
    }[arch]


def tokenizer_adds_bos(tokenizer: Any) -> bool:
    """Whether the tokenizer, left to itself, starts a text with its BOS token."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return False
    ids = tokenizer("a")["input_ids"]
    return bool(ids) and ids[0] == bos


def build_hooked(cfg: HookedTransformerConfig, tokenizer: Any) -> HookedTransformer:
    """An empty `HookedTransformer` for `cfg` with `tokenizer` (TransformerLens' deprecation
    notice about its v3 bridge silenced: this project pins TransformerLens < 4)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*HookedTransformer is deprecated.*")
        warnings.simplefilter("ignore", DeprecationWarning)
        model = HookedTransformer(cfg, tokenizer=tokenizer, move_to_device=False)
    model.cfg.default_prepend_bos = cfg.default_prepend_bos  # set_tokenizer may not touch it; be sure
    return model


def hooked_from_hf(
    hf_model: Any,
    tokenizer: Any,
    *,
    name: str,
    where: str = "the checkpoint",
    check: bool = True,
) -> tuple[HookedTransformer, float | None]:
    """Convert a float32 Hugging Face causal LM to a `HookedTransformer` on the CPU, and check it.

    Args:
        hf_model: a `transformers` causal LM in float32 on the CPU.
        tokenizer: its tokenizer (loaded from a local folder: TransformerLens reloads it from there).
        name: the hooked model's `model_name`.
        where: the checkpoint's path, for error messages.
        check: compare logits with `hf_model` (see `logit_gap`).

    Returns:
        `(model, gap)`: the model in eval mode, and the largest centred-logit difference (None
        without the check).

    Raises:
        ValueError: the architecture is not supported.
        LogitMismatchError: the difference is beyond `LOGIT_TOLERANCE`.
    """
    hf_config = hf_model.config
    arch = architecture(hf_config, where)
    cfg = tl_config(hf_config, name=name, prepend_bos=tokenizer_adds_bos(tokenizer), where=where)
    with torch.no_grad():
        state = {k: v.detach().clone() for k, v in _converter(arch)(hf_model, cfg).items()}
    model = build_hooked(cfg, tokenizer)
    soft_capped = (cfg.output_logits_soft_cap or 0) > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.load_and_process_state_dict(
            state, fold_ln=True, center_writing_weights=True, center_unembed=not soft_capped,
            fold_value_biases=True,
        )
    model.eval()
    gap = logit_gap(model, hf_model) if check else None
    if gap is not None and not gap <= LOGIT_TOLERANCE:
        raise LogitMismatchError(
            f"{where}: the converted model's logits differ from the Hugging Face model's by up to "
            f"{gap:.3g} (centred logits on {CHECK_PROMPT!r}); the tolerance is {LOGIT_TOLERANCE}. "
            f"The conversion of {arch} is wrong for this checkpoint."
        )
    return model, gap


def logit_gap(model: HookedTransformer, hf_model: Any, prompt: str = CHECK_PROMPT) -> float:
    """Largest |difference| of centred logits between the hooked and the Hugging Face model.

    Both read the same tokens (the hooked model's own tokenization of `prompt`).

    Example:
        >>> logit_gap(model, hf_model) < LOGIT_TOLERANCE
        True
    """
    from interp.core.tokens import encode

    tokens = torch.tensor(encode(model, [prompt]), device=model.cfg.device)
    with torch.inference_mode():
        ours = model(tokens).float()
        theirs = hf_model(tokens.to(hf_model.device)).logits.float().to(ours.device)
    ours = ours - ours.mean(-1, keepdim=True)
    theirs = theirs - theirs.mean(-1, keepdim=True)
    return float((ours - theirs).abs().max())
