"""One set of weights for every side: a Hugging Face GPT-2 with random weights, and the same
weights as a transformer-lens `HookedTransformer`.

A comparison between libraries is only worth something when every side computes the same
function. So the benchmarks build one `GPT2LMHeadModel` (GPT-2-small sized unless told
otherwise, random weights from a seed: no download), convert its weights with transformer-lens'
own GPT-2 converter (`convert_gpt2_weights`, without folding or centring, so the logits are
not only equivalent but equal), and check that both read a prompt to the same logits.

`HookedTransformer.from_pretrained("gpt2", hf_model=...)` would do the conversion too, but it
looks the name up on the hub first; building the `HookedTransformerConfig` here needs nothing
from outside.

The tokenizer is word-level (the built-in model's builder) with filler words up to GPT-2's
vocabulary size, so text goes in and out of every side without a download.

Example:
    >>> pair = gpt2_pair()
    >>> pair.gap < 1e-4
    True
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig
from transformer_lens.pretrained.weight_conversions import convert_gpt2_weights
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from interp.toy.tokenizer import SPECIAL_TOKENS, build_tokenizer

#: Words that make the benchmark prompts readable; filler words `w<i>` fill the vocabulary.
WORDS = (
    "how do i bake bread ? tell me to grow tomatoes . can you help learn french explain fix a "
    "bike what is the best way plan trip paint wall give steps wash car teach play chess user "
    "assistant : sure cannot with that"
).split()

#: Largest allowed |logit difference| between the two sides on the check prompt.
LOGIT_TOLERANCE = 1e-4


@dataclass
class Pair:
    """The same weights on both sides, with the tokenizer they share and the measured gap."""

    hf: GPT2LMHeadModel
    tl: HookedTransformer
    tokenizer: PreTrainedTokenizerFast
    gap: float


def word_tokenizer(d_vocab: int) -> PreTrainedTokenizerFast:
    """A word-level tokenizer of exactly `d_vocab` entries (the prompt words, then fillers)."""
    words = list(dict.fromkeys(WORDS))
    fillers = [f"w{i}" for i in range(d_vocab - len(words) - len(SPECIAL_TOKENS))]
    # the folder stays: transformer-lens reloads the tokenizer from it to add a BOS variant
    tok = build_tokenizer(words + fillers, tempfile.mkdtemp(prefix="interp-bench-tokenizer-"))
    assert len(tok) == d_vocab, (len(tok), d_vocab)
    return tok


def tl_config(hf_config: GPT2Config) -> HookedTransformerConfig:
    """transformer-lens' GPT-2 mapping of a Hugging Face config (as `from_pretrained` builds it)."""
    return HookedTransformerConfig(
        model_name="gpt2-random",
        d_model=hf_config.n_embd,
        d_head=hf_config.n_embd // hf_config.n_head,
        n_heads=hf_config.n_head,
        d_mlp=hf_config.n_inner or 4 * hf_config.n_embd,
        n_layers=hf_config.n_layer,
        n_ctx=hf_config.n_positions,
        eps=hf_config.layer_norm_epsilon,
        d_vocab=hf_config.vocab_size,
        act_fn=hf_config.activation_function,
        normalization_type="LN",
        positional_embedding_type="standard",
        original_architecture="GPT2LMHeadModel",
        default_prepend_bos=True,
        tokenizer_prepends_bos=False,
        init_weights=False,  # the Hugging Face weights are loaded over them
    )


@torch.inference_mode()
def logit_gap(pair_hf: GPT2LMHeadModel, tl: HookedTransformer, tokens: torch.Tensor) -> float:
    """Largest |logit difference| between the two sides on `tokens`."""
    return (pair_hf(tokens).logits - tl(tokens)).abs().max().item()


def gpt2_pair(
    *, n_layers: int = 12, d_model: int = 768, n_heads: int = 12, d_vocab: int = 50257, n_ctx: int = 1024,
    seed: int = 0, device: str | torch.device = "cpu",
) -> Pair:
    """A random GPT-2 (GPT-2-small sized by default) on both sides, logits checked equal.

    Raises:
        RuntimeError: the converted model's logits differ by more than `LOGIT_TOLERANCE`.
    """
    torch.manual_seed(seed)
    tokenizer = word_tokenizer(d_vocab)
    hf_config = GPT2Config(
        vocab_size=d_vocab, n_positions=n_ctx, n_embd=d_model, n_layer=n_layers, n_head=n_heads,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    hf = GPT2LMHeadModel(hf_config).to(device).eval()
    hf.generation_config.pad_token_id = tokenizer.pad_token_id
    hf.generation_config.eos_token_id = None  # every side generates the full length (no EOS stop)
    tl = HookedTransformer(tl_config(hf_config), tokenizer=tokenizer, move_to_device=False)
    tl.load_state_dict(convert_gpt2_weights(hf, tl.cfg), strict=False)
    tl = tl.to(device).eval()
    tokens = torch.tensor([tokenizer("user : how do i bake bread ? assistant :")["input_ids"]], device=device)
    gap = logit_gap(hf, tl, tokens)
    if gap > LOGIT_TOLERANCE:
        raise RuntimeError(f"converted GPT-2 logits differ by {gap:.2e} (> {LOGIT_TOLERANCE:g})")
    return Pair(hf=hf, tl=tl, tokenizer=tokenizer, gap=gap)
