"""A steering vector: a direction in one activation site, and how to apply it to a model.

A *steering vector* is a direction at one (site, layer) of a transformer that stands for a
concept, usually estimated as a difference of means between two prompt sets (Arditi et al.
2024, "Refusal in language models is mediated by a single direction"; `interp.mean_difference`)
or taken from an SAE decoder row. `SteeringVector` is a small frozen value: the direction plus
where it came from (model, weights fingerprint, prompt sets), so that applying it to the wrong
model fails loudly. Vectors add, subtract and scale like tensors, and save to safetensors.

`vector.apply(model, ...)` is the one way to use a vector (as in the steering-vectors library):
a context manager inside which every forward pass of `model` is steered, and after which no
hook remains, also when the block raises. Three modes:

- `"add"`: activation addition (Turner et al. 2023), `x' = x + alpha * v` at the vector's layer;
- `"ablate"`: directional ablation, `x' = x - (x . v^) v^` at the embedding and every block
  output, so no layer's residual stream carries the direction (`alpha` is unused);
- `"ablate_then_add"`: the component along `v^` set to `alpha * v` at the vector's layer.

`apply_to` says which positions are steered during `generate`: `"all"`, the `"prompt"` (the
first pass), the `"generated"` tokens, or only the prompt's `"last"` position (where in-context
task vectors are added, Hendel et al. 2023). The hook functions themselves live in
`interp.steering.edits`.

Example:
    >>> v = interp.mean_difference(model, harmful, harmless)[2]
    >>> with v.apply(model, alpha=4.0, apply_to="generated"):
    ...     model.generate("user : how do i bake bread ? assistant :", max_new_tokens=8)
    >>> with v.apply(model, mode="ablate"):
    ...     logits = model(tokens)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import warnings
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from transformer_lens import HookedTransformer

from interp.core.cache import fingerprint
from interp.core.checks import MISSING, check_model, check_path, check_vector, no_extra, renamed, shown_value
from interp.core.hooks import SITES, hook_name, hooked, resolve_layer
from interp.steering.edits import MODES, check_apply_to, steering_hooks

_FORMAT = "interp-steering-vector-1"


def digest(*parts: object) -> str:
    """A short stable hash of JSON-able parts (prompt sets, provenance of combined vectors)."""
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def site_width(model: HookedTransformer, site: str) -> int:
    """Width of the activation at `site` (`d_mlp` for `mlp_post`, else `d_model`)."""
    if site not in SITES:
        raise ValueError(f"unknown site {site!r}; expected one of {', '.join(SITES)}")
    return model.cfg.d_mlp if site == "mlp_post" else model.cfg.d_model


@dataclass(frozen=True, eq=False)
class SteeringVector:
    """A direction at one (site, layer), with where it came from.

    Only `direction` and `layer` are needed (an SAE decoder row makes a fine vector); the
    provenance fields (model, weights `fingerprint`, the read `positions` and prompt sets) are
    filled in by `mean_difference`. An empty `model_name` / `fingerprint` means "unknown": only
    the width is checked when the vector is used.

    Example:
        >>> v = interp.SteeringVector(torch.randn(128), layer=2)
        >>> (2 * v - v).normalized().norm
        1.0
        >>> with v.apply(model, alpha=4.0):
        ...     logits = model(tokens)
    """

    direction: Float[torch.Tensor, "d"]
    layer: int
    site: str = "resid_pre"
    model_name: str = ""
    fingerprint: str = ""
    positions: str = ""
    prompt_hash: str = ""
    n_positive: int = 0
    n_negative: int = 0
    label: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.direction, torch.Tensor):
            try:
                torch.as_tensor(self.direction, dtype=torch.float32)
            except (TypeError, ValueError, RuntimeError):
                raise TypeError(f"direction is {self.direction!r}: expected a 1-D float tensor [d]") from None
        d = torch.as_tensor(self.direction).detach()
        if d.ndim != 1 or d.numel() == 0:
            raise ValueError(f"direction must be a non-empty 1-D tensor [d], got shape {tuple(d.shape)}")
        d = d.to(device="cpu", dtype=torch.float32).clone()
        if not torch.isfinite(d).all():
            raise ValueError("direction has NaN or infinite entries")
        if isinstance(self.layer, bool) or not isinstance(self.layer, numbers.Integral):
            raise ValueError(f"layer {self.layer!r} must be an int")
        object.__setattr__(self, "layer", int(self.layer))
        if self.site not in SITES:
            raise ValueError(f"unknown site {self.site!r}; expected one of {', '.join(SITES)}")
        object.__setattr__(self, "direction", d)

    @property
    def norm(self) -> float:
        return float(self.direction.norm())

    @property
    def width(self) -> int:
        return self.direction.numel()

    def normalized(self) -> SteeringVector:
        """The unit vector along this one."""
        if self.norm == 0:
            raise ValueError("cannot normalize a zero vector")
        return dataclasses.replace(self, direction=self.direction / self.norm, label=f"unit({self.name})")

    def bind(self, model: HookedTransformer) -> SteeringVector:
        """This vector, stamped as belonging to `model` (after checking its width)."""
        self._check_width(model)
        return dataclasses.replace(self, model_name=model.cfg.model_name, fingerprint=fingerprint(model))

    @property
    def name(self) -> str:
        """The label, or `v[site@layer]` when there is none."""
        return self.label or f"v[{self.site}@{self.layer}]"

    def _combine(self, other: SteeringVector, sign: float, op: str) -> SteeringVector:
        if not isinstance(other, SteeringVector):
            return NotImplemented
        for field in ("layer", "site", "model_name", "fingerprint"):
            a, b = getattr(self, field), getattr(other, field)
            if a != b and a and b or (field == "layer" and a != b):
                raise ValueError(f"cannot combine vectors with different {field}: {a!r} vs {b!r}")
        if self.width != other.width:
            raise ValueError(f"cannot combine vectors of width {self.width} and {other.width}")
        return dataclasses.replace(
            self,
            direction=self.direction + sign * other.direction,
            model_name=self.model_name or other.model_name,
            fingerprint=self.fingerprint or other.fingerprint,
            positions=self.positions if self.positions == other.positions else "mixed",
            prompt_hash=digest(self.prompt_hash, op, other.prompt_hash),
            n_positive=self.n_positive + other.n_positive,
            n_negative=self.n_negative + other.n_negative,
            label=f"({self.name} {op} {other.name})",
        )

    def __add__(self, other: SteeringVector) -> SteeringVector:
        return self._combine(other, 1.0, "+")

    def __sub__(self, other: SteeringVector) -> SteeringVector:
        return self._combine(other, -1.0, "-")

    def __mul__(self, scale: float) -> SteeringVector:
        if not isinstance(scale, numbers.Real) or isinstance(scale, bool):
            return NotImplemented
        if not math.isfinite(scale):
            raise ValueError(f"scale {scale} is not finite")
        return dataclasses.replace(self, direction=self.direction * scale, label=f"{scale:g}*{self.name}")

    __rmul__ = __mul__

    def __truediv__(self, scale: float) -> SteeringVector:
        if scale == 0:
            raise ValueError("cannot divide a steering vector by zero")
        return self * (1.0 / scale)

    def __neg__(self) -> SteeringVector:
        return self * -1.0

    def __repr__(self) -> str:
        src = f" from {self.model_name}" if self.model_name else ""
        return (
            f"SteeringVector({self.name}, {self.site}@layer {self.layer}, "
            f"width {self.width}, norm {self.norm:.3g}{src})"
        )

    def _check_width(self, model: HookedTransformer) -> None:
        want = site_width(model, self.site)
        if self.width != want:
            raise ValueError(
                f"vector has width {self.width} but site {self.site!r} of "
                f"{model.cfg.model_name!r} has width {want}"
            )

    def check(self, model: HookedTransformer) -> None:
        """Raise ValueError saying why this vector does not fit `model` (width, name, weights)."""
        self._check_width(model)
        if self.model_name and self.model_name != model.cfg.model_name:
            raise ValueError(f"vector was made for model {self.model_name!r}, not {model.cfg.model_name!r}")
        if self.fingerprint and self.fingerprint != fingerprint(model):
            raise ValueError(
                f"vector was made for other weights of {self.model_name!r} "
                f"(fingerprint {self.fingerprint} vs "
                f"{fingerprint(model)}); use vector.bind(model) to apply it anyway"
            )

    def hooks(
        self,
        model: HookedTransformer,
        *,
        alpha: float = 1.0,
        mode: str = "add",
        apply_to: str = "all",
        layer: int | None = None,
    ) -> list[tuple[str, Any]]:
        """The hook list that `apply` adds (for `interp.hooked` or `model.run_with_hooks`).

        The vector is checked against `model` first. Build a fresh list for each `generate` call
        when `apply_to` is not `"all"`: the hooks count the passes they have seen.

        Example:
            >>> logits = model.run_with_hooks(tokens, fwd_hooks=v.hooks(model, alpha=4.0))
        """
        vector, layer = resolve(model, self, layer=layer, alpha=alpha, mode=mode)
        return vector_hooks(model, vector, layer=layer, alpha=alpha, mode=mode, apply_to=apply_to)

    def apply(
        self,
        model: HookedTransformer,
        *,
        alpha: float = 1.0,
        mode: str = "add",
        apply_to: str = "all",
        layer: int | None = None,
    ) -> AbstractContextManager[HookedTransformer]:
        """Steer every forward pass of `model` inside the block; nothing remains after it.

        Args:
            model: the model to steer (the vector must fit it; see `check`).
            alpha: the strength (`"add"`, `"ablate_then_add"`); unused by `"ablate"`.
            mode: `"add"`, `"ablate"` or `"ablate_then_add"` (see the module docstring).
            apply_to: `"all"`, or, for one `generate` call inside the block, `"prompt"` (the
                first pass), `"generated"` (the positions after it) or `"last"` (the prompt's
                last position only).
            layer: apply at this layer instead of the vector's own.

        Raises:
            ValueError: the vector does not fit the model, or a bad mode, alpha or apply_to;
                raised here, before the block runs.

        Example:
            >>> with v.apply(model, alpha=4.0):
            ...     model.generate("user : how do i bake bread ? assistant :", max_new_tokens=8)
        """
        return hooked(model, self.hooks(model, alpha=alpha, mode=mode, apply_to=apply_to, layer=layer))

    def save(self, path: str | Path) -> Path:
        """Write the direction and its provenance to a safetensors file."""
        from interp.core.cache import save

        check_path(path, writing=True)
        meta = {f.name: str(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "direction"}
        meta.update(format=_FORMAT, width=str(self.width))
        path = Path(path)
        save(path, {"direction": self.direction}, meta)
        return path

    @classmethod
    def load(cls, path: str | Path, model: HookedTransformer | None = None) -> SteeringVector:
        """Read a vector saved with `save`; with `model`, refuse one that does not fit it."""
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
        except (SafetensorError, OSError) as err:
            raise ValueError(f"{path}: not a readable safetensors file ({err})") from err
        if meta.get("format") != _FORMAT or "direction" not in tensors:
            raise ValueError(
                f"{path}: not a steering vector file (format {meta.get('format')!r}, want {_FORMAT!r})"
            )
        direction = tensors["direction"]
        if meta.get("width") != str(direction.numel()):
            raise ValueError(
                f"{path}: metadata says width {meta.get('width')} but the direction has {direction.numel()}"
            )
        names = {f.name for f in dataclasses.fields(cls)} - {"direction"}
        try:
            kwargs = {
                k: int(v) if k in ("layer", "n_positive", "n_negative") else v
                for k, v in meta.items()
                if k in names
            }
            vector = cls(direction, **kwargs)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: bad steering-vector metadata ({err})") from err
        if model is not None:
            try:
                vector.check(model)
            except ValueError as err:
                raise ValueError(f"{path}: refused for this model: {err}") from None
        return vector


def resolve(
    model: HookedTransformer,
    vector: SteeringVector | Float[torch.Tensor, "d"],
    *,
    layer: int | None = None,
    alpha: float = 1.0,
    mode: str = "add",
) -> tuple[SteeringVector, int]:
    """Check a vector (or a raw tensor with `layer=`) and the arguments to apply it to `model`;
    return it as a `SteeringVector` with the layer it acts at (its own unless `layer` is given).

    Example:
        >>> vector, layer = resolve(model, torch.randn(128), layer=-1)
    """
    check_model(model)
    if isinstance(vector, torch.Tensor):
        if layer is None:
            raise ValueError("a raw tensor needs layer=...; or pass a SteeringVector")
        check_vector(vector, model.cfg.d_model, "vector", nonzero=False)  # zero is refused below unless added
        vector = SteeringVector(vector, layer=layer)
    if not isinstance(vector, SteeringVector):
        shown = shown_value(vector)
        raise TypeError(f"vector is {shown}: expected a SteeringVector or a 1-D tensor")
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} must be one of {MODES}")
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not math.isfinite(alpha):
        raise ValueError(f"alpha {alpha!r} must be a finite number")
    vector.check(model)
    if mode != "add" and vector.norm == 0:
        raise ValueError("cannot ablate a zero vector: it has no direction")
    return vector, resolve_layer(model, vector.layer if layer is None else layer)


def vector_hooks(
    model: HookedTransformer, vector: SteeringVector, *, layer: int, alpha: float, mode: str, apply_to: str
) -> list[tuple[str, Any]]:
    """The hooks that apply an already `resolve`d vector (no model checks: call it per batch).

    Example:
        >>> vector, layer = resolve(model, v)
        >>> with interp.hooked(model, vector_hooks(model, vector, layer=layer, alpha=4.0,
        ...                                       mode="add", apply_to="all")):
        ...     logits = model(tokens)
    """
    p = next(model.parameters())
    vec = vector.direction.to(device=p.device, dtype=p.dtype)
    unit = (vector.direction / max(vector.norm, 1e-30)).to(device=p.device, dtype=p.dtype)
    name = hook_name(model, vector.site, layer)
    if mode == "add":
        return steering_hooks(model, add={name: alpha * vec}, apply_to=apply_to)
    if mode == "ablate":
        return steering_hooks(model, ablate=unit, apply_to=apply_to)
    return steering_hooks(model, set_at={name: (unit, alpha * vec)}, apply_to=apply_to)


def steering(
    model: HookedTransformer,
    vector: SteeringVector | Float[torch.Tensor, "d"],
    *,
    layer: int | None = None,
    alpha: float = 1.0,
    mode: str = "add",
    apply_to: str = "all",
    **deprecated: Any,
) -> AbstractContextManager[HookedTransformer]:
    """Deprecated: use `vector.apply(model, ...)` (a raw tensor: `SteeringVector(t, layer=...)`).

    The function shares its name with the package `interp.steering`; it keeps working for one
    release, warning, with the old keyword `positions` (now `apply_to`).

    Example:
        >>> with v.apply(model, mode="ablate"):   # was: with steering(model, v, mode="ablate")
        ...     logits = model(tokens)
    """
    warnings.warn(
        "interp.steering.steering(model, vector, ...) is deprecated and will be removed in the next "
        "release; use vector.apply(model, ...)",
        DeprecationWarning,
        stacklevel=2,
    )
    legacy = renamed("positions", "apply_to", deprecated, "steering")
    no_extra(deprecated, "steering")
    if legacy is not MISSING:
        apply_to = check_apply_to(legacy, "positions")
    vector, layer = resolve(model, vector, layer=layer, alpha=alpha, mode=mode)
    return hooked(model, vector_hooks(model, vector, layer=layer, alpha=alpha, mode=mode, apply_to=apply_to))
