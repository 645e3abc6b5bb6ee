"""The built-in model's trainable parameters, named and initialised as transformer-lens names them.

Training needs only the weights and one fast forward (`interp.toy.train.fast_forward`); no hook
points, no `HookedTransformer` (deprecated in transformer-lens 3.9, gone in 4). `ToyParams`
holds the same tensors under the same names in the same order (`embed.W_E`, ...,
`blocks.0.attn.W_Q` ..., `unembed.b_U`) and draws its initial values the way transformer-lens'
GPT-2 initialisation does (seed, then N(0, initializer_range) for every `W_` matrix in that
order; biases 0, norm weights 1), so a run from a seed reproduces the shipped one.
`interp.toy.checkpoint` turns them into the Hugging Face GPT-2 checkpoint that ships.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ToyConfig:
    """The GPT-2 style shape of the built-in model (LayerNorm, learned positions, GELU).

    Example:
        >>> ToyConfig(n_layers=4, d_model=128, n_ctx=64, d_head=32, n_heads=4, d_mlp=512, d_vocab=842).eps
        1e-05
    """

    n_layers: int
    d_model: int
    n_ctx: int
    d_head: int
    n_heads: int
    d_mlp: int
    d_vocab: int
    act_fn: str = "gelu"
    normalization_type: str = "LN"
    positional_embedding_type: str = "standard"
    default_prepend_bos: bool = True
    model_name: str = "toy"
    seed: int | None = 0
    initializer_range: float = -1.0  # -1: 0.8 / sqrt(d_model), transformer-lens' GPT-2 default
    eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.initializer_range < 0:
            object.__setattr__(self, "initializer_range", 0.8 / math.sqrt(self.d_model))


def _holder(**params: nn.Parameter) -> nn.Module:
    module = nn.Module()
    for name, p in params.items():  # registered in this order: the order the initial values are drawn in
        module.register_parameter(name, p)
    return module


def _empty(*shape: int) -> nn.Parameter:
    return nn.Parameter(torch.empty(*shape))


class ToyParams(nn.Module):
    """The parameters of a `ToyConfig` model under transformer-lens' names (see the module docstring)."""

    def __init__(self, cfg: ToyConfig, tokenizer: object = None) -> None:
        super().__init__()
        self.cfg, self.tokenizer = cfg, tokenizer
        d, h, e, m = cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp
        self.embed = _holder(W_E=_empty(cfg.d_vocab, d))
        self.pos_embed = _holder(W_pos=_empty(cfg.n_ctx, d))
        self.blocks = nn.ModuleList()
        for _ in range(cfg.n_layers):
            block = nn.Module()
            block.ln1 = _holder(w=nn.Parameter(torch.ones(d)), b=nn.Parameter(torch.zeros(d)))
            block.ln2 = _holder(w=nn.Parameter(torch.ones(d)), b=nn.Parameter(torch.zeros(d)))
            block.attn = _holder(W_Q=_empty(h, d, e), W_O=_empty(h, e, d), b_Q=nn.Parameter(torch.zeros(h, e)),
                                 b_O=nn.Parameter(torch.zeros(d)), W_K=_empty(h, d, e), W_V=_empty(h, d, e),
                                 b_K=nn.Parameter(torch.zeros(h, e)), b_V=nn.Parameter(torch.zeros(h, e)))
            block.mlp = _holder(W_in=_empty(d, m), b_in=nn.Parameter(torch.zeros(m)), W_out=_empty(m, d),
                                b_out=nn.Parameter(torch.zeros(d)))
            self.blocks.append(block)
        self.ln_final = _holder(w=nn.Parameter(torch.ones(d)), b=nn.Parameter(torch.zeros(d)))
        self.unembed = _holder(W_U=_empty(d, cfg.d_vocab), b_U=nn.Parameter(torch.zeros(cfg.d_vocab)))
        if cfg.seed is not None:
            torch.manual_seed(cfg.seed)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if "W_" in name:
                    nn.init.normal_(p, std=cfg.initializer_range)
