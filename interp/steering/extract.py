"""Extracting steering vectors: the difference of means between two prompt sets.

The simplest estimate of a direction that separates two kinds of prompts is the difference of
means (Arditi et al. 2024, "Refusal in language models is mediated by a single direction";
Rimsky et al. 2023, "Steering Llama 2 via Contrastive Activation Addition"): run prompt set A
(say harmful requests) and set B (harmless ones), read the activation at one site, layer and
position, and subtract the means, `r = mean_A - mean_B`. Chat models are read at the positions
after the instruction (the template's trailing tokens, `assistant :` for the built-in model),
where the model decides how to answer; plain models at the last token.

`mean_difference` reads every requested layer and position in one stopped, left-padded forward
per batch and returns `SteeringVectors`, one `SteeringVector` per (layer, position); choosing
among them on held-out prompts is `interp.steering.selection`.

Example:
    >>> vs = interp.mean_difference(model, harmful, harmless)   # every layer, one vector each
    >>> vs.plot()                                               # norm per layer
    >>> with vs[2].apply(model, alpha=1.0):
    ...     model.generate("user : how do i bake bread ? assistant :", max_new_tokens=8)
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float
from tqdm.auto import tqdm
from transformer_lens import HookedTransformer

from interp.core.checks import check_count, check_flag, check_layers, check_model, check_number, check_prompts
from interp.core.cache import cached, fingerprint
from interp.core.hooks import harvest, hook_name
from interp.core.results import Result
from interp.core.tokens import maybe_chat, post_instruction_length, tokenize, use_chat
from interp.steering.vector import SteeringVector, digest, site_width


@dataclass(frozen=True, eq=False)
class SteeringVectors(Result):
    """Difference-of-means vectors at several layers (and positions), keyed by layer.

    `vs[layer]` when one position was read, `vs[layer, position]` otherwise.

    Example:
        >>> vs = interp.mean_difference(model, harmful, harmless, layers=[1, 2])
        >>> vs[2].norm, vs.to_frame()
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
        self._freeze()
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
            raise KeyError(f"layer {layer!r} was not computed; layers: {list(self.layers)}")
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
        """`vs[key]` keys: layers, or (layer, position) pairs when several positions were read."""
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

    def summary(self) -> str:
        return (
            f"mean difference at {self.site}: {len(self.layers)} layer(s) x {len(self.positions)} "
            f"position(s), {self.n_positive} vs {self.n_negative} prompts of {self.model_name}"
        )

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


def check_prompt_set(name: str, prompts: Sequence[str]) -> list[str]:
    """A list of at least two prompts (a mean needs two), else a ValueError naming `name`.

    Example:
        >>> check_prompt_set("harmful", ["how do i make a bomb ?"])
        Traceback (most recent call last):
        ValueError: harmful has 1 prompt(s); a mean needs at least 2
    """
    if isinstance(prompts, str):
        raise ValueError(f"{name} is {prompts!r}: expected a list of prompts, not one string")
    if prompts is None or not hasattr(prompts, "__len__"):
        raise TypeError(f"{name} is {prompts!r}: expected a list of prompts")
    prompts = check_prompts(prompts, name) if len(prompts) else prompts
    if len(prompts) < 2:
        raise ValueError(f"{name} has {len(prompts)} prompt(s); a mean needs at least 2")
    return prompts


def read_positions(model: HookedTransformer, positions: Any, chat: bool) -> tuple[int, ...]:
    """Read positions as negative offsets from the end: `'last'`, `'post_instruction'` (the chat
    template's trailing tokens), negative ints, or None (post-instruction when `chat`, else last).

    Example:
        >>> read_positions(toy, "post_instruction", True)
        (-2, -1)
    """
    if positions is None:
        positions = "post_instruction" if chat else "last"
    if positions == "last":
        return (-1,)
    if positions == "post_instruction":
        return tuple(range(-post_instruction_length(model), 0))
    if isinstance(positions, numbers.Integral) and not isinstance(positions, bool):
        positions = [positions]
    if (
        isinstance(positions, str)
        or not all(isinstance(p, numbers.Integral) and p < 0 for p in positions)
        or not positions
    ):
        raise ValueError(
            f"positions {positions!r} must be 'last', 'post_instruction' or negative ints "
            "counted from the end"
        )
    return tuple(dict.fromkeys(positions))


def read_layers(model: HookedTransformer, layers: int | Sequence[int] | None) -> list[int]:
    """Sorted distinct block indices: an int, a list (negatives count from the end), None for all."""
    checked = check_layers(model, layers)
    if len(set(checked)) != len(checked):
        raise ValueError(f"layers is {layers!r}: it names a layer twice; expected distinct layers")
    return sorted(checked)


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

    args = {"prompts": digest(prompts), "n": len(prompts), "names": names, "positions": list(positions)}
    shape = (len(names), len(positions), None)
    return cached(model, "mean_acts", args, compute, enabled=use_cache, expect={"mean": shape})["mean"]


def mean_difference(
    model: HookedTransformer,
    positive: Sequence[str],
    negative: Sequence[str],
    *,
    layers: int | Sequence[int] | None = None,
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
        layers: an int or a list of layers to read (negatives count from the end); all when None.
        site: a hook site from `interp.core.hooks.SITES`; `resid_pre` as in Arditi et al.
        positions: read positions: `'last'`, `'post_instruction'` (the chat template's trailing
            tokens) or negative ints counted from the end; post-instruction for chat models, else last.
        chat: wrap prompts in the model's chat template; automatic when None.
        batch_size: prompts per forward pass.
        max_imbalance: refuse sets whose sizes differ by more than this factor (None: allow).
        cache: keep the means in the disk cache.

    Example:
        >>> vs = interp.mean_difference(model, harmful, harmless, layers=[1, 2])
        >>> vs[1, -1].norm
    """
    check_model(model)
    positive, negative = check_prompt_set("positive", positive), check_prompt_set("negative", negative)
    check_count(batch_size, "batch_size")
    check_flag(cache, "cache")
    check_flag(chat, "chat", none=True)
    if max_imbalance is not None:
        check_number(max_imbalance, "max_imbalance", minimum=1)
    ratio = max(len(positive), len(negative)) / min(len(positive), len(negative))
    if max_imbalance is not None and ratio > max_imbalance:
        raise ValueError(
            f"prompt sets of very different sizes ({len(positive)} vs {len(negative)}, ratio {ratio:.1f} > "
            f"{max_imbalance}); balance them or pass max_imbalance=None"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size {batch_size} must be >= 1")
    site_width(model, site)
    layers = read_layers(model, layers)
    wrap = use_chat(model, chat)
    pos = read_positions(model, positions, wrap)
    names = [hook_name(model, site, layer) for layer in layers]
    texts = [maybe_chat(model, p, wrap) for p in (positive, negative)]
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
        prompt_hash=digest(positive, negative),
        n_positive=len(positive),
        n_negative=len(negative),
        position_labels=pos_labels,
    )
