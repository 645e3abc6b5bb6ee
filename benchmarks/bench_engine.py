"""The engine against plain Hugging Face: `interp.steer` on a bridged model ÷ Hugging Face
`generate` with torch hooks on an identical plain model (how steering-vectors, repeng and
nnsight steer), text in and text out, greedy, key-value cache, the same tokens; and the logit
lens and a stopped harvest ÷ one forward, on the same bridge.

    python -m benchmarks engine        # SmolLM2 (when installed) and GPT-2-small-sized random weights

Targets (DESIGN.md): steer add and ablate ÷ HF generate + hook >= 0.97 at batch 1 and 8; lens
at the last position over all layers ÷ one forward <= 1.3; harvest at layer L ÷ a full forward
(tokens/s) >= 0.8 x n_layers / (L + 1). Each row also says whether both sides produced the same
tokens. SmolLM2's load time is printed beside transformers' own load of the same GGUF.
"""

from __future__ import annotations

import time

import torch

import interp
from benchmarks.common import Row, interleaved
from interp.core.bridge import boot
from interp.core.hooks import harvest

PROMPTS = ["How do I bake bread?", "Tell me how to grow tomatoes.", "Can you help me learn French?",
           "Explain how to fix a bike.", "What is the best way to plan a trip?", "How can I paint a wall?",
           "Give me steps to wash a car.", "Teach me to play chess."]
NEW = 24


def _twins(kind: str):
    """(bridged model, plain Hugging Face model with the same weights, tokenizer)."""
    from transformers import AutoModelForCausalLM, GPT2Config

    from interp.core import checkpoints, smollm2

    smol = interp.load_model("smollm2-135m-instruct")
    tok = smol.tokenizer
    if kind == "smollm2":
        plain = AutoModelForCausalLM.from_pretrained(checkpoints.gguf_entry(smollm2.gguf_path()),
                                                     attn_implementation="eager").eval()
        return smol, plain, tok
    config = GPT2Config(vocab_size=len(tok), n_positions=1024, n_embd=768, n_layer=12, n_head=12,
                        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    config.architectures = ["GPT2LMHeadModel"]
    made = []
    for _ in range(2):
        torch.manual_seed(0)
        made.append(AutoModelForCausalLM.from_config(config, attn_implementation="eager").eval())
    return boot(made[0], tok, name="gpt2-small-random"), made[1], tok


def _layers(plain):
    return plain.transformer.h if hasattr(plain, "transformer") else plain.model.layers


def _hf_steer(plain, tok, texts, vector, layer, mode, model):
    """Hugging Face generate with torch hooks: a pre-hook adding `vector` at block `layer`'s input,
    or forward hooks projecting it out of the embedding and every attention and MLP output. The
    prompts are the token rows interp reads (its BOS rule, left padding)."""
    unit = vector / vector.norm()

    def add(module, args, kwargs):
        if args:
            return (args[0] + vector, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": kwargs["hidden_states"] + vector}

    def project(module, args, out):
        x = out[0] if isinstance(out, tuple) else out
        x = x - (x @ unit)[..., None] * unit
        return (x, *out[1:]) if isinstance(out, tuple) else x

    handles = []
    if mode == "add":
        handles.append(_layers(plain)[layer].register_forward_pre_hook(add, with_kwargs=True))
    else:
        handles.append(plain.get_input_embeddings().register_forward_hook(project))
        for block in _layers(plain):
            for sub in (getattr(block, "attn", None) or block.self_attn, block.mlp):
                handles.append(sub.register_forward_hook(project))
    try:
        ids, mask = interp.tokenize(model, texts)
        with torch.inference_mode():
            out = plain.generate(input_ids=ids, attention_mask=mask, max_new_tokens=NEW, do_sample=False,
                                 pad_token_id=tok.eos_token_id, eos_token_id=None)
        return [tok.decode(row, skip_special_tokens=False) for row in out[:, ids.shape[1]:]]
    finally:
        for h in handles:
            h.remove()


def _steer_rows(kind: str, model, plain, tok) -> list[Row]:
    rows = []
    layer = model.cfg.n_layers // 2
    torch.manual_seed(1)
    vector = torch.randn(model.cfg.d_model) * (2.0 if kind == "smollm2" else 0.5)
    v = interp.SteeringVector(vector, layer=layer).bind(model)
    for batch in (1, 8):
        prompts = PROMPTS[:batch]
        texts = interp.format_chat(model, prompts) if kind == "smollm2" else prompts
        for mode in ("add", "ablate"):
            ours = lambda: interp.steer(model, prompts, v, mode=mode, max_new_tokens=NEW, baseline=False,  # noqa: E731
                                        stop_at_eos=False, chat=kind == "smollm2", batch_size=batch).steered
            theirs = lambda: _hf_steer(plain, tok, texts, vector, layer, mode, model)  # noqa: E731
            same = [a.strip() == b.strip() for a, b in zip(ours(), theirs())]
            t = interleaved({"ours": ours, "theirs": theirs}, rounds=5)
            rows.append(Row(f"{kind}: steer {mode} b{batch} ÷ HF generate + hook (same text: {sum(same)}/{len(same)})",
                            t["theirs"] / t["ours"], ">= 0.97", t["theirs"] / t["ours"] >= 0.97))
    return rows


def _readout_rows(kind: str, model, tok) -> list[Row]:
    tokens, mask = interp.tokenize(model, [" ".join(PROMPTS)])
    n = model.cfg.n_layers
    layer = n // 4
    site = f"blocks.{layer}.hook_resid_post"
    t = interleaved({
        "forward": lambda: model(tokens, attention_mask=mask),
        "lens": lambda: interp.logit_lens(model, " ".join(PROMPTS), positions="last", chat=False),
        "harvest": lambda: harvest(model, tokens, [site], attention_mask=mask),
    }, rounds=5)
    target = 0.8 * n / (layer + 1)
    return [
        Row(f"{kind}: logit lens, all layers, last position ÷ one forward", t["lens"] / t["forward"], "<= 1.3",
            t["lens"] / t["forward"] <= 1.3),
        Row(f"{kind}: harvest at layer {layer} ÷ full forward, tokens/s", t["forward"] / t["harvest"],
            f">= {target:.2f}", t["forward"] / t["harvest"] >= target),
    ]


def _load_rows() -> list[Row]:
    from transformers import AutoModelForCausalLM

    from interp.core import smollm2

    path = smollm2.gguf_path()
    start = time.perf_counter()
    interp.load_model("smollm2-135m-instruct")
    warm = time.perf_counter() - start
    start = time.perf_counter()
    AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
    hf = time.perf_counter() - start
    print(f"SmolLM2 load: interp warm (verified cache) {warm:.1f} s; transformers from the GGUF {hf:.1f} s")
    return [Row("smollm2: warm load_model ÷ transformers' GGUF load, seconds", warm / hf, "(reported)", True)]


def run(model=None) -> list[Row]:
    from interp.core import smollm2

    rows = []
    kinds = ["smollm2", "gpt2-small-random"] if smollm2.available() else []
    for kind in kinds:
        bridged, plain, tok = _twins(kind)
        rows += _steer_rows(kind, bridged, plain, tok) + _readout_rows(kind, bridged, tok)
    if smollm2.available():
        rows += _load_rows()
    return rows
