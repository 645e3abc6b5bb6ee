"""Steering vectors: difference of means, activation addition, directional ablation.

A *steering vector* is a direction in the residual stream that separates two kinds of prompts.
The simplest estimate is the difference of means (Arditi et al. 2024, "Refusal in language
models is mediated by a single direction"): run prompt set A (say harmful requests) and set B
(harmless ones), read the activation at one layer and position, and subtract the means,
`r = mean_A - mean_B`. Chat models are read at the positions after the instruction (the
template's trailing tokens, `assistant :` for the built-in model), where the model decides how
to answer.

A direction can be used two ways:

- **activation addition** (Turner et al. 2023, "Activation Addition: Steering Language Models
  Without Optimization"): `x' = x + alpha * r` at one layer, at every position and every
  generated token; adding the refusal direction makes a model refuse harmless requests;
- **directional ablation**: `x' = x - (x . r^) r^` wherever something writes to the residual
  stream (the embeddings and every attention and MLP block output), so no layer ever sees the
  direction; ablating the refusal direction makes a model answer harmful requests. The same
  edit can be baked into the weights (`orthogonalize`): project `W_E`, `W_pos` and every
  block's `W_O`, `W_out` (and biases) orthogonal to `r^`.

Choosing the layer and position, and measuring refusal and side effects, lives in
`interp.steering.refusal`.

Example:
    >>> vs = interp.mean_difference(model, harmful, harmless)    # one vector per layer
    >>> result = interp.steer(model, ["how do i bake bread ?"], vs[2], alpha=1.0)
    >>> result.to_frame()
    >>> with interp.steering.generate(model, vs[2], mode="ablate"):
    ...     logits = model(tokens)
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from jaxtyping import Float
from tqdm.auto import tqdm
from transformer_lens import HookedTransformer

from interp.core.cache import cached, fingerprint
from interp.core.hooks import SITES, harvest, hook_name, hooked, resolve_layer
from interp.core.tokens import format_chat, is_chat_model, post_instruction_length, tokenize

MODES = ("add", "ablate", "ablate_then_add")
POSITIONS = ("all", "prompt", "generated")
_FORMAT = "interp-steering-vector-1"
_GENERATE_OPTIONS = {
    "do_sample",
    "top_k",
    "top_p",
    "temperature",
    "freq_penalty",
    "stop_at_eos",
    "eos_token_id",
}


def _hash(*parts: object) -> str:
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
    provenance fields are filled in by `mean_difference`. An empty `model_name` / `fingerprint`
    means "unknown": only the width is checked when the vector is used.

    Example:
        >>> v = interp.SteeringVector(torch.randn(128), layer=2)
        >>> (2 * v - v).normalized().norm
        1.0
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
        d = torch.as_tensor(self.direction).detach()
        if d.ndim != 1 or d.numel() == 0:
            raise ValueError(f"direction must be a non-empty 1-D tensor [d], got shape {tuple(d.shape)}")
        d = d.to(device="cpu", dtype=torch.float32).clone()
        if not torch.isfinite(d).all():
            raise ValueError("direction has NaN or infinite entries")
        if isinstance(self.layer, bool) or not isinstance(self.layer, int):
            raise ValueError(f"layer {self.layer!r} must be an int")
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
        return dataclasses.replace(self, direction=self.direction / self.norm, label=f"unit({self._name()})")

    def bind(self, model: HookedTransformer) -> SteeringVector:
        """This vector, stamped as belonging to `model` (after checking its width)."""
        self._check_width(model)
        return dataclasses.replace(self, model_name=model.cfg.model_name, fingerprint=fingerprint(model))

    def _name(self) -> str:
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
            prompt_hash=_hash(self.prompt_hash, op, other.prompt_hash),
            n_positive=self.n_positive + other.n_positive,
            n_negative=self.n_negative + other.n_negative,
            label=f"({self._name()} {op} {other._name()})",
        )

    def __add__(self, other: SteeringVector) -> SteeringVector:
        return self._combine(other, 1.0, "+")

    def __sub__(self, other: SteeringVector) -> SteeringVector:
        return self._combine(other, -1.0, "-")

    def __mul__(self, scale: float) -> SteeringVector:
        if not isinstance(scale, (int, float)) or isinstance(scale, bool):
            return NotImplemented
        if not math.isfinite(scale):
            raise ValueError(f"scale {scale} is not finite")
        return dataclasses.replace(self, direction=self.direction * scale, label=f"{scale:g}*{self._name()}")

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
            f"SteeringVector({self._name()}, {self.site}@layer {self.layer}, "
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

    def save(self, path: str | Path) -> Path:
        """Write the direction and its provenance to a safetensors file."""
        from interp.core.cache import save

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


@dataclass(frozen=True)
class SteeringVectors:
    """Difference-of-means vectors at several layers (and positions), keyed by layer.

    `vs[layer]` when one position was read, `vs[layer, position]` otherwise.
    """

    directions: Float[torch.Tensor, "layer pos d"]
    layers: tuple[int, ...]
    positions: tuple[int, ...]
    site: str
    model_name: str
    fingerprint: str
    prompt_hash: str
    n_positive: int
    n_negative: int
    position_labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        shape = (len(self.layers), len(self.positions))
        if tuple(self.directions.shape[:2]) != shape or self.directions.ndim != 3:
            raise ValueError(
                f"directions shape {tuple(self.directions.shape)} != (layers, positions, d) {shape}"
            )
        if not self.position_labels:
            object.__setattr__(self, "position_labels", tuple(str(p) for p in self.positions))

    def __getitem__(self, key: int | tuple[int, int]) -> SteeringVector:
        layer, pos = key if isinstance(key, tuple) else (key, None)
        if layer not in self.layers:
            raise KeyError(f"layer {layer} was not computed; layers: {list(self.layers)}")
        if pos is None:
            if len(self.positions) != 1:
                raise KeyError(
                    f"these vectors cover positions {list(self.positions)}; index with vs[{layer}, position]"
                )
            pos = self.positions[0]
        if pos not in self.positions:
            raise KeyError(f"position {pos} was not computed; positions: {list(self.positions)}")
        i, j = self.layers.index(layer), self.positions.index(pos)
        return SteeringVector(
            self.directions[i, j],
            layer=layer,
            site=self.site,
            model_name=self.model_name,
            fingerprint=self.fingerprint,
            positions=str(pos),
            prompt_hash=self.prompt_hash,
            n_positive=self.n_positive,
            n_negative=self.n_negative,
            label=f"mean_diff[{layer},{self.position_labels[j]}]",
        )

    def keys(self) -> list:
        if len(self.positions) == 1:
            return list(self.layers)
        return [(layer, p) for layer in self.layers for p in self.positions]

    def __iter__(self) -> Iterator:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def items(self) -> list[tuple[object, SteeringVector]]:
        return [(k, self[k]) for k in self.keys()]

    @property
    def norms(self) -> Float[torch.Tensor, "layer pos"]:
        return self.directions.norm(dim=-1)

    def to_frame(self):
        """One row per (layer, position) with the vector's norm."""
        import pandas as pd

        rows = [
            {"layer": layer, "position": p, "token": lab, "norm": float(self.norms[i, j])}
            for i, layer in enumerate(self.layers)
            for j, (p, lab) in enumerate(zip(self.positions, self.position_labels))
        ]
        return pd.DataFrame(rows)

    def plot(self):
        """Norm of the mean difference per layer, one line per position."""
        import plotly.graph_objects as go

        fig = go.Figure()
        for j, lab in enumerate(self.position_labels):
            fig.add_scatter(
                x=list(self.layers), y=self.norms[:, j].tolist(), mode="lines+markers", name=f"pos {lab}"
            )
        fig.update_layout(
            title=f"mean difference norm ({self.site})", xaxis_title="layer", yaxis_title="norm"
        )
        return fig


# --- mean difference ---------------------------------------------------------------------------


def _check_prompts(name: str, prompts: Sequence[str]) -> list[str]:
    if isinstance(prompts, str):
        raise ValueError(f"{name} must be a list of prompts, not one string")
    prompts = list(prompts)
    if len(prompts) < 2:
        raise ValueError(f"{name} has {len(prompts)} prompt(s); a mean needs at least 2")
    return prompts


def _positions(model: HookedTransformer, positions, chat: bool) -> tuple[int, ...]:
    if positions is None:
        positions = "post_instruction" if chat else "last"
    if positions == "last":
        return (-1,)
    if positions == "post_instruction":
        return tuple(range(-post_instruction_length(model), 0))
    if isinstance(positions, int) and not isinstance(positions, bool):
        positions = [positions]
    if (
        isinstance(positions, str)
        or not all(isinstance(p, int) and p < 0 for p in positions)
        or not positions
    ):
        raise ValueError(
            f"positions {positions!r} must be 'last', 'post_instruction' or negative ints "
            "counted from the end"
        )
    return tuple(dict.fromkeys(positions))


def _format(model: HookedTransformer, prompts: list[str], chat: bool | None) -> list[str]:
    return format_chat(model, prompts) if (is_chat_model(model) if chat is None else chat) else list(prompts)


def _mean_acts(model, prompts, names, positions, batch_size, use_cache, desc) -> torch.Tensor:
    """Mean activation [len(names), len(positions), d] over prompts, one stopped pass per batch."""

    def compute() -> dict[str, torch.Tensor]:
        total = None
        idx = list(positions)
        for start in tqdm(
            range(0, len(prompts), batch_size), desc=desc, leave=False, disable=len(prompts) <= batch_size
        ):
            tokens, mask = tokenize(model, prompts[start : start + batch_size])
            short = int(mask.sum(1).min())
            if short < -min(idx):
                raise ValueError(f"a prompt has only {short} tokens; positions {idx} need {-min(idx)}")
            acts = harvest(model, tokens, names, attention_mask=mask, select=lambda a: a[:, idx])
            batch = torch.stack([acts[n].float().sum(0) for n in names])
            total = batch if total is None else total + batch
        return {"mean": (total / len(prompts)).cpu()}

    args = {"prompts": _hash(prompts), "n": len(prompts), "names": names, "positions": list(positions)}
    return cached(model, "mean_acts", args, compute, enabled=use_cache)["mean"]


def mean_difference(
    model: HookedTransformer,
    positive: Sequence[str],
    negative: Sequence[str],
    *,
    layers: Sequence[int] | None = None,
    site: str = "resid_pre",
    positions: str | int | Sequence[int] | None = None,
    chat: bool | None = None,
    batch_size: int = 32,
    max_imbalance: float | None = 10.0,
    cache: bool = True,
) -> SteeringVectors:
    """Mean activation on `positive` prompts minus mean on `negative` prompts, per layer and position.

    Each prompt batch is one left-padded forward that stops after the deepest layer requested,
    keeping only the requested positions. The means of each set are cached on disk.

    Args:
        model: any HookedTransformer.
        positive, negative: the two prompt sets (at least 2 each; raw requests for chat models).
        layers: layers to read (negatives count from the end); all when None.
        site: a hook site from `interp.hooks.SITES`; `resid_pre` as in Arditi et al.
        positions: `'last'`, `'post_instruction'` (the chat template's trailing tokens) or
            negative ints counted from the end; post-instruction for chat models, else last.
        chat: wrap prompts in the model's chat template; automatic when None.
        batch_size: prompts per forward pass.
        max_imbalance: refuse sets whose sizes differ by more than this factor (None: allow).
        cache: keep the means in the disk cache.

    Example:
        >>> vs = interp.mean_difference(model, harmful, harmless, layers=[1, 2])
        >>> vs[1, -1].norm
    """
    positive, negative = _check_prompts("positive", positive), _check_prompts("negative", negative)
    ratio = max(len(positive), len(negative)) / min(len(positive), len(negative))
    if max_imbalance is not None and ratio > max_imbalance:
        raise ValueError(
            f"prompt sets of very different sizes ({len(positive)} vs {len(negative)}, ratio {ratio:.1f} > "
            f"{max_imbalance}); balance them or pass max_imbalance=None"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size {batch_size} must be >= 1")
    site_width(model, site)
    n = model.cfg.n_layers
    layers = sorted({resolve_layer(model, layer) for layer in (range(n) if layers is None else layers)})
    if not layers:
        raise ValueError(f"no layers given; expected some of 0..{n - 1}")
    use_chat = is_chat_model(model) if chat is None else chat
    pos = _positions(model, positions, use_chat)
    names = [hook_name(model, site, layer) for layer in layers]
    texts = [_format(model, p, use_chat) for p in (positive, negative)]
    with torch.inference_mode():
        means = [
            _mean_acts(model, t, names, pos, batch_size, cache, d)
            for t, d in zip(texts, ("positive", "negative"))
        ]
    labels = model.to_str_tokens(texts[0][0])
    pos_labels = tuple(f"{p} {labels[p]!r}" if -p <= len(labels) else str(p) for p in pos)
    return SteeringVectors(
        directions=means[0] - means[1],
        layers=tuple(layers),
        positions=pos,
        site=site,
        model_name=model.cfg.model_name,
        fingerprint=fingerprint(model),
        prompt_hash=_hash(positive, negative),
        n_positive=len(positive),
        n_negative=len(negative),
        position_labels=pos_labels,
    )


# --- applying vectors: hooks ---------------------------------------------------------------------


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
            return slice(None) if self.which == "prompt" else None
        if n_pos == 1:  # a cached generation step
            return None if self.which == "prompt" else slice(None)
        split = self.prompt_len[name]
        return slice(None, split) if self.which == "prompt" else slice(split, None)


def _edit_hook(passes: _Passes, edit: Callable[[torch.Tensor], torch.Tensor]):
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


def _project_out(unit: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """x -> x - (x . u) u for a unit vector u of shape [d] or per row [batch, 1, d]."""
    if unit.ndim == 1:
        return lambda x: torch.addcmul(x, (x @ unit).unsqueeze(-1), unit, value=-1)
    return lambda x: torch.addcmul(x, (x * unit).sum(-1, keepdim=True), unit, value=-1)


def ablation_hook_names(model: HookedTransformer) -> list[str]:
    """Where directional ablation acts: the embedding (layer 0's resid_pre) and every block's
    attention and MLP outputs. The residual stream is their sum, so every layer's residual
    stream is then orthogonal to the direction too."""
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
    positions: str = "all",
) -> list[tuple[str, Callable]]:
    """Hook list for `hooked`: add vectors at hook points, ablate a unit direction everywhere,
    or (`set_at`) project out a unit direction and add a vector at a hook point. Tensors are
    `[d]` or per batch row `[batch, 1, d]`, on the model's device and dtype."""
    if positions not in POSITIONS:
        raise ValueError(f"positions {positions!r} must be one of {POSITIONS}")
    passes, hooks = _Passes(positions), []
    if ablate is not None:
        hooks += [(name, _edit_hook(passes, _project_out(ablate))) for name in ablation_hook_names(model)]
    for name, (unit, vec) in (set_at or {}).items():
        project = _project_out(unit)
        hooks.append((name, _edit_hook(passes, lambda x, p=project, v=vec: p(x) + v)))
    for name, vec in (add or {}).items():
        hooks.append((name, _edit_hook(passes, lambda x, v=vec: x + v)))
    return hooks


def _resolve(model, vector, layer, alpha, mode) -> tuple[SteeringVector, int]:
    if isinstance(vector, torch.Tensor):
        if layer is None:
            raise ValueError("a raw tensor needs layer=...; or pass a SteeringVector")
        vector = SteeringVector(vector, layer=layer)
    if not isinstance(vector, SteeringVector):
        raise ValueError(f"vector must be a SteeringVector or a 1-D tensor, got {type(vector).__name__}")
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} must be one of {MODES}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha):
        raise ValueError(f"alpha {alpha!r} must be a finite number")
    vector.check(model)
    if mode != "add" and vector.norm == 0:
        raise ValueError("cannot ablate a zero vector: it has no direction")
    return vector, resolve_layer(model, vector.layer if layer is None else layer)


@contextmanager
def steering(
    model: HookedTransformer,
    vector: SteeringVector | Float[torch.Tensor, "d"],
    *,
    layer: int | None = None,
    alpha: float = 1.0,
    mode: str = "add",
    positions: str = "all",
) -> Iterator[HookedTransformer]:
    """Steer every forward pass of `model` inside the block; nothing remains after it.

    Modes: `"add"` adds `alpha * vector` at `layer` (the vector's own by default);
    `"ablate"` removes the vector's direction from the embedding and every block output, so
    from every layer's residual stream (`alpha` is unused); `"ablate_then_add"` sets the
    component along the direction to `alpha * vector` at `layer` only.
    `positions`: `"all"`, or, for one `generate` call inside the block, `"prompt"` (the first
    pass) or `"generated"` (the positions after it).

    Example:
        >>> with interp.steering.generate(model, v, alpha=4.0):
        ...     model.generate("user : how do i bake bread ? assistant :", max_new_tokens=8)
    """
    vector, layer = _resolve(model, vector, layer, alpha, mode)
    with hooked(model, _hooks_for(model, vector, layer, alpha, mode, positions)):
        yield model


def _hooks_for(model, vector: SteeringVector, layer: int, alpha: float, mode: str, positions: str) -> list:
    p = next(model.parameters())
    vec = vector.direction.to(device=p.device, dtype=p.dtype)
    unit = (vector.direction / max(vector.norm, 1e-30)).to(device=p.device, dtype=p.dtype)
    name = hook_name(model, vector.site, layer)
    if mode == "add":
        return steering_hooks(model, add={name: alpha * vec}, positions=positions)
    if mode == "ablate":
        return steering_hooks(model, ablate=unit, positions=positions)
    return steering_hooks(model, set_at={name: (unit, alpha * vec)}, positions=positions)


# --- generation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SteerResult:
    """Steered (and baseline) completions of a batch of prompts."""

    prompts: tuple[str, ...]
    steered: tuple[str, ...]
    baseline: tuple[str, ...] | None
    mode: str
    alpha: float
    layer: int
    site: str
    positions: str
    vector: str

    def __post_init__(self) -> None:
        if len(self.steered) != len(self.prompts) or (
            self.baseline is not None and len(self.baseline) != len(self.prompts)
        ):
            raise ValueError("prompts, steered and baseline completions must have the same length")

    def __len__(self) -> int:
        return len(self.prompts)

    def to_frame(self):
        """Prompts with their baseline and steered completions side by side."""
        import pandas as pd

        cols = {"prompt": self.prompts}
        if self.baseline is not None:
            cols["baseline"] = self.baseline
        cols["steered"] = self.steered
        return pd.DataFrame(cols)

    def plot(self):
        """The side-by-side table as a figure."""
        import plotly.graph_objects as go

        df = self.to_frame()
        fig = go.Figure(
            go.Table(header={"values": list(df.columns)}, cells={"values": [df[c] for c in df.columns]})
        )
        fig.update_layout(
            title=f"{self.mode} {self.vector} (alpha {self.alpha:g}) at {self.site} layer {self.layer}"
        )
        return fig

    def _repr_html_(self) -> str:
        return self.to_frame().to_html()


def _decode(model: HookedTransformer, rows: torch.Tensor, stop_at_eos: bool, eos) -> list[str]:
    out, stops = [], set([eos] if isinstance(eos, int) else (eos or []))
    for row in rows.tolist():
        if stop_at_eos:
            cut = next((i for i, t in enumerate(row) if t in stops), len(row))
            row = row[:cut]
        out.append(model.tokenizer.decode(row, skip_special_tokens=True).strip())
    return out


def _generate(
    model: HookedTransformer,
    prompts: list[str],
    *,
    max_new_tokens: int = 16,
    batch_size: int = 32,
    seed: int | None = None,
    **options,
) -> list[str]:
    """Greedy (by default) left-padded batch generation with the KV cache; returns new text only.

    Hooks active around the call (e.g. `steering`) apply; a fresh pass count per batch."""
    unknown = set(options) - _GENERATE_OPTIONS
    if unknown:
        raise ValueError(
            f"unknown generation options {sorted(unknown)}; expected some of {sorted(_GENERATE_OPTIONS)}"
        )
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens {max_new_tokens} must be >= 1")
    options = {"do_sample": False, **options}
    stop = options.get("stop_at_eos", True)
    eos = options.get("eos_token_id")
    eos = model.tokenizer.eos_token_id if eos is None else eos
    out: list[str] = []
    for start in range(0, len(prompts), batch_size):
        tokens, _ = tokenize(model, prompts[start : start + batch_size])
        if seed is not None:
            torch.manual_seed(seed + start)
        with torch.inference_mode():
            full = model.generate(
                tokens,
                max_new_tokens=max_new_tokens,
                use_past_kv_cache=True,
                padding_side="left",
                return_type="tokens",
                verbose=False,
                **options,
            )
        out += _decode(model, full[:, tokens.shape[1] :], stop, eos)
    return out


def steer(
    model: HookedTransformer,
    prompts: str | Sequence[str],
    vector: SteeringVector | Float[torch.Tensor, "d"],
    *,
    layer: int | None = None,
    alpha: float = 1.0,
    mode: str = "add",
    positions: str = "all",
    max_new_tokens: int = 16,
    baseline: bool = True,
    chat: bool | None = None,
    batch_size: int = 32,
    seed: int | None = None,
    **generation,
) -> SteerResult:
    """Generate steered completions (and unsteered ones beside them) for one prompt or a batch.

    Steering applies at every generated token with the key-value cache on; see `steering` for
    the modes. Prompts are wrapped in the chat template for chat models (`chat=False` to skip),
    batched with left padding; greedy unless `do_sample=True` is passed.

    Args:
        generation: `do_sample`, `temperature`, `top_k`, `top_p`, `freq_penalty`,
            `stop_at_eos`, `eos_token_id` (as in `HookedTransformer.generate`).

    Example:
        >>> r = interp.steer(model, ["how do i bake bread ?"], refusal, alpha=1.0)
        >>> r.to_frame()
    """
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    if not prompts:
        raise ValueError("no prompts given: expected a string or a non-empty list of strings")
    vector, layer = _resolve(model, vector, layer, alpha, mode)
    texts = _format(model, prompts, chat)
    kwargs = dict(max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed, **generation)
    steered: list[str] = []
    batches = range(0, len(texts), batch_size)
    for start in tqdm(batches, desc="steer", leave=False, disable=len(batches) <= 1):
        with hooked(model, _hooks_for(model, vector, layer, alpha, mode, positions)):  # fresh pass count
            steered += _generate(model, texts[start : start + batch_size], **kwargs)
    base = _generate(model, texts, **kwargs) if baseline else None
    return SteerResult(
        prompts=tuple(prompts),
        steered=tuple(steered),
        baseline=None if base is None else tuple(base),
        mode=mode,
        alpha=float(alpha),
        layer=layer,
        site=vector.site,
        positions=positions,
        vector=vector._name(),
    )


# --- weight orthogonalization ------------------------------------------------------------------


def orthogonalize(
    model: HookedTransformer, direction: SteeringVector | Float[torch.Tensor, "d_model"]
) -> HookedTransformer:
    """A copy of `model` whose weights cannot write `direction` into the residual stream.

    `W_E`, `W_pos` and every block's `W_O`, `b_O`, `W_out`, `b_out` are projected orthogonal to
    the unit direction: the weight form of `steering(mode="ablate")`. The original model is
    untouched. Models with a norm after each sublayer (Gemma-2) are refused: a norm's output
    cannot be made orthogonal by editing the matrix before it; use runtime ablation there.

    Example:
        >>> clean = interp.orthogonalize(model, refusal)
    """
    if isinstance(direction, SteeringVector):
        direction.check(model)
        direction = direction.direction
    direction = torch.as_tensor(direction).detach().float().cpu()
    if direction.ndim != 1 or direction.numel() != model.cfg.d_model:
        raise ValueError(
            f"direction must have shape [{model.cfg.d_model}] (d_model), got {tuple(direction.shape)}"
        )
    if not torch.isfinite(direction).all() or direction.norm() == 0:
        raise ValueError("direction must be finite and non-zero")
    cfg = model.cfg
    if cfg.use_normalization_before_and_after:
        raise ValueError(
            f"{cfg.model_name!r} normalises each sublayer's output; orthogonalize cannot match ablation there"
        )
    if getattr(cfg, "num_experts", None):
        raise ValueError(f"{cfg.model_name!r} is a mixture of experts; orthogonalize does not support it")
    new = copy.deepcopy(model, memo={id(model.tokenizer): model.tokenizer})

    @torch.no_grad()
    def project(param: torch.nn.Parameter) -> None:
        r = (direction / direction.norm()).to(device=param.device, dtype=torch.float32)
        w = param.data.float()
        param.data = (w - (w @ r).unsqueeze(-1) * r).to(param.dtype)

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
