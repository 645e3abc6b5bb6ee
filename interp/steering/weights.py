"""Directional ablation as a weight edit: a model that cannot write a direction at all.

Ablating a direction `r^` at runtime projects it out of the embedding and of every attention
and MLP output (`vector.apply(model, mode="ablate")`). Arditi et al. 2024 ("Refusal in language
models is mediated by a single direction") note that the same edit can be made permanent: the
residual stream is the sum of what `W_E`, `W_pos` and every block's `W_O`, `b_O`, `W_out`,
`b_out` write, so projecting each of those orthogonal to `r^` gives a model whose residual
stream never carries the direction, with no hooks. `orthogonalize` returns such a copy and
leaves the original untouched.

Example:
    >>> clean = interp.orthogonalize(model, refusal)
    >>> interp.steer(clean, harmful, refusal.bind(clean), alpha=0.0).steered
"""

from __future__ import annotations

import copy

import torch
from jaxtyping import Float
from transformer_lens import HookedTransformer

from interp.core.bridge import copy_bridge, residual_writers
from interp.core.engine import is_bridge
from interp.steering.vector import SteeringVector


def orthogonalize(
    model: HookedTransformer, direction: SteeringVector | Float[torch.Tensor, "d_model"]
) -> HookedTransformer:
    """A copy of `model` whose weights cannot write `direction` into the residual stream.

    `W_E`, `W_pos` and every block's `W_O`, `b_O`, `W_out`, `b_out` are projected orthogonal to
    the unit direction: the weight form of `vector.apply(model, mode="ablate")`. The original
    model is untouched. Models with a norm after each sublayer (Gemma-2) are refused: a norm's
    output cannot be made orthogonal by editing the matrix before it; use runtime ablation there.

    Example:
        >>> clean = interp.orthogonalize(model, refusal)
    """
    from interp.core.checks import check_model, check_vector

    check_model(model)
    if isinstance(direction, SteeringVector):
        direction.check(model)
        direction = direction.direction
    check_vector(direction, model.cfg.d_model, "direction")
    direction = direction.detach().float().cpu()
    cfg = model.cfg
    if cfg.use_normalization_before_and_after:
        raise ValueError(
            f"{cfg.model_name!r} normalises each sublayer's output; orthogonalize cannot match ablation there"
        )
    if getattr(cfg, "num_experts", None):
        raise ValueError(f"{cfg.model_name!r} is a mixture of experts; orthogonalize does not support it")
    unit = direction / direction.norm()

    @torch.no_grad()
    def project(param: torch.Tensor, axis: int = -1) -> None:
        r = unit.to(device=param.device, dtype=torch.float32)
        w = param.data.float().movedim(axis, -1)
        param.data = (w - (w @ r).unsqueeze(-1) * r).movedim(-1, axis).to(param.dtype).contiguous()

    if is_bridge(model):  # the Hugging Face modules that write into the residual stream
        new = copy_bridge(model)
        head = new.original_model.get_output_embeddings()
        if head is not None and head.weight is new.original_model.get_input_embeddings().weight:
            head.weight = torch.nn.Parameter(head.weight.detach().clone())  # untie: only the input side changes
        for tensor, axis in residual_writers(new):
            project(tensor, axis)
        return new
    new = copy.deepcopy(model, memo={id(model.tokenizer): model.tokenizer})

    project(new.embed.W_E)
    if hasattr(new, "pos_embed") and cfg.positional_embedding_type in ("standard", "shortformer"):
        project(new.pos_embed.W_pos)
    for block in new.blocks:
        project(block.attn.W_O)
        project(block.attn.b_O)
        if not cfg.attn_only:
            project(block.mlp.W_out)
            project(block.mlp.b_out)
    return new
