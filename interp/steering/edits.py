"""The hook functions that steer: add a vector, or project a direction out of the residual stream.

Two edits cover the steering literature this package implements:

- **activation addition** (Turner et al. 2023, "Activation Addition: Steering Language Models
  Without Optimization"): `x' = x + alpha * r` at one hook point;
- **directional ablation** (Arditi et al. 2024, "Refusal in language models is mediated by a
  single direction"): `x' = x - (x . r^) r^` wherever something writes to the residual stream
  (the embedding and every attention and MLP output), so no layer ever sees the direction.

Both are TransformerLens hook functions, built here once and used by `SteeringVector.apply`,
`steer` and the batched candidate scoring of `select_direction`. During generation the edit can
act on every forward pass (`apply_to="all"`), only on the prompt (`"prompt"`), or only on the
generated tokens (`"generated"`), or only at the prompt's last position (`"last"`: the way an
in-context task vector is put into a zero-shot query, Hendel et al. 2023, "In-Context Learning
Creates Task Vectors"; prompts are left-padded, so the last column is every row's last token).
The first pass a hook sees is the prompt, later ones are generation steps (one position with
the key-value cache, the whole sequence without it).

Example:
    >>> hooks = steering_hooks(model, add={"blocks.2.hook_resid_pre": 4.0 * v}, apply_to="generated")
    >>> with interp.hooked(model, hooks):
    ...     model.generate("hello", max_new_tokens=5)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from transformer_lens import HookedTransformer

from interp.core.checks import MISSING, no_extra, renamed
from interp.core.hooks import hook_name

MODES = ("add", "ablate", "ablate_then_add")
APPLY_TO = ("all", "prompt", "generated", "last")

Edit = Callable[[torch.Tensor], torch.Tensor]


def check_apply_to(apply_to: Any, name: str = "apply_to") -> str:
    """`apply_to` if it is one of `APPLY_TO`, else a ValueError naming the argument `name`."""
    if not isinstance(apply_to, str) or apply_to not in APPLY_TO:
        raise ValueError(f"{name} {apply_to!r} must be one of {APPLY_TO}")
    return apply_to


class _Passes:
    """Which positions of a forward pass to steer, counting passes per hook point.

    The first pass a hook sees is the prompt; later ones are generation steps, which see one
    position with the key-value cache, or the whole sequence so far without it.
    """

    def __init__(self, which: str) -> None:
        self.which, self.calls, self.prompt_len = which, {}, {}

    def select(self, name: str, n_pos: int) -> slice | None:
        """A slice of positions to steer, or None to leave this pass alone."""
        if self.which == "all":
            return slice(None)
        k = self.calls.get(name, 0)
        self.calls[name] = k + 1
        if k == 0:
            self.prompt_len[name] = n_pos
            return {"prompt": slice(None), "last": slice(n_pos - 1, n_pos)}.get(self.which)
        if n_pos == 1:  # a cached generation step
            return slice(None) if self.which == "generated" else None
        split = self.prompt_len[name]
        return {"prompt": slice(None, split), "last": slice(split - 1, split)}.get(
            self.which, slice(split, None)
        )


def _edit_hook(passes: _Passes, edit: Edit) -> Callable:
    if passes.which == "all":  # the common case, kept cheap: it runs at every generated token
        return lambda act, hook: edit(act)

    def hook(act: torch.Tensor, hook) -> torch.Tensor | None:
        sel = passes.select(hook.name, act.shape[1])
        if sel is None:
            return None
        if sel == slice(None):
            return edit(act)
        out = act.clone()
        out[:, sel] = edit(act[:, sel])
        return out

    return hook


def project_out(unit: torch.Tensor) -> Edit:
    """x -> x - (x . u) u for a unit vector u of shape [d] or per row [batch, 1, d].

    Example:
        >>> project_out(torch.tensor([1.0, 0.0]))(torch.tensor([[3.0, 4.0]]))
        tensor([[0., 4.]])
    """
    if unit.ndim == 1:
        def edit(x: torch.Tensor) -> torch.Tensor:
            u = unit.to(x.device)  # a block's own device when the model is spread (a no-op otherwise)
            return torch.addcmul(x, (x @ u).unsqueeze(-1), u, value=-1)
        return edit
    return lambda x: torch.addcmul(x, (x * unit.to(x.device)).sum(-1, keepdim=True), unit.to(x.device), value=-1)


def ablation_hook_names(model: HookedTransformer) -> list[str]:
    """Where directional ablation acts: the embedding (layer 0's resid_pre) and every block's
    attention and MLP outputs. The residual stream is their sum, so every layer's residual
    stream is then orthogonal to the direction too.

    Example:
        >>> ablation_hook_names(model)[:2]
        ['blocks.0.hook_resid_pre', 'blocks.0.hook_attn_out']
    """
    names = [hook_name(model, "resid_pre", 0)]
    for layer in range(model.cfg.n_layers):
        names.append(hook_name(model, "attn_out", layer))
        if not model.cfg.attn_only:
            names.append(hook_name(model, "mlp_out", layer))
    return names


def steering_hooks(
    model: HookedTransformer,
    *,
    add: dict[str, torch.Tensor] | None = None,
    ablate: torch.Tensor | None = None,
    set_at: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    apply_to: str = "all",
    **deprecated: Any,
) -> list[tuple[str, Callable]]:
    """Hook list for `interp.hooked`: add vectors at hook points, ablate a unit direction
    everywhere, or (`set_at`) project out a unit direction and add a vector at a hook point.

    Tensors are `[d]` or per batch row `[batch, 1, d]`, in the model's dtype; each hook moves
    them to its block's device (a model spread by `device_map` has several). The
    hooks of one call share one pass count, so build a fresh list for each `generate` call when
    `apply_to` is not `"all"`.

    Args:
        add: hook name -> vector added there.
        ablate: a unit direction projected out at every `ablation_hook_names` point.
        set_at: hook name -> (unit direction, vector): project out, then add.
        apply_to: `"all"`, `"prompt"`, `"generated"` or `"last"` (the prompt's last position
            only; see the module docstring).

    Example:
        >>> hooks = steering_hooks(model, ablate=unit)
        >>> with interp.hooked(model, hooks):
        ...     logits = model(tokens)
    """
    legacy = renamed("positions", "apply_to", deprecated, "steering_hooks")
    no_extra(deprecated, "steering_hooks")
    if legacy is not MISSING:
        apply_to = check_apply_to(legacy, "positions")
    passes, hooks = _Passes(check_apply_to(apply_to)), []
    if ablate is not None:
        hooks += [(name, _edit_hook(passes, project_out(ablate))) for name in ablation_hook_names(model)]
    for name, (unit, vec) in (set_at or {}).items():
        project = project_out(unit)
        hooks.append((name, _edit_hook(passes, lambda x, p=project, v=vec: p(x) + v.to(x.device))))
    for name, vec in (add or {}).items():  # .to: a block's own device when the model is spread
        hooks.append((name, _edit_hook(passes, lambda x, v=vec: x + v.to(x.device))))
    return hooks
