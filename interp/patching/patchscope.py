"""Patchscopes: ask the model itself what a hidden state means.

Take the residual-stream state of a *source* prompt at some (layer, position), overwrite the
state of a placeholder token in a *target* prompt with it, and let the model continue the target
(Ghandeharioun et al., 2024, "Patchscopes: A Unifying Framework for Inspecting Hidden
Representations of Language Models", arXiv:2401.06102). The target prompt decides the question:

- **identity** (`cat -> cat ; 1135 -> 1135 ; hello -> hello ; x ->`): the model copies whatever
  the patched state stands for, so the generation names the token or entity it encodes;
- **description** (`paris : a city in france . x :`): the model describes the entity;
- **relations** (`the capital of x is`): the model extracts one attribute from the state, which
  shows at which layers an entity's attributes have been gathered at its last token;
- any **custom** target that contains the placeholder.

Conventions here:

- The site is `resid_pre` by default: layer `l` is the stream *entering* block `l`, so layer 0 is
  the token embedding itself (position embedding included) and decodes the raw token. Use
  `site="resid_post"` for block outputs. Source and target use the same site.
- The target layer defaults to the source layer; any target layer works (also earlier than the
  source: "back-patching"), and a list of target layers gives a source x target grid.
- A sweep over source layers is one batched pass over the target, one row per (source layer,
  target layer), never a loop of forwards (`interp/patchscope_engine.py`). With
  `strategy="one_pass"` the source rides in the same batch as row 0 and the whole sweep is ONE
  forward; `"shared_prefix"` reads the source, runs the target tokens before the placeholder
  once into a shared key-value cache, then all rows from the placeholder on (fewest FLOPs; also
  back-patching and big grids). `"auto"` picks one pass on an accelerator and the cheaper of the
  two on a CPU (one pass for small models such as the built-in one, shared prefix for large).
- The patch is applied on the prompt pass only. Generation then continues greedily with the
  key-value cache, which already holds the patched keys and values; the hooks are gone by then,
  so later steps (which see one position each) cannot be patched by mistake.

Example:
    >>> ps = interp.patching.patchscope(model, "we visited france last year .", source_position="france",
    ...                        target="capital", expected="paris")
    >>> ps.to_frame()[["source_layer", "generation", "expected_prob"]]
    >>> ps.plot()
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go
import torch
from jaxtyping import Float, Int
from transformer_lens import HookedTransformer

from interp.core.hooks import resolve_layer
from interp.core.profiles import GENERIC_PATCHSCOPE_PRESETS, profile_for
from interp.core.tokens import token_id, tokenize
from interp.patching.engine import STRATEGIES, sweep
from interp.core.plotting import heatmap, layer_lines

PATCH_SITES = ("resid_pre", "resid_post")
#: The placeholder word of the presets (a model that does not know it gets `FALLBACK_PLACEHOLDER`).
PLACEHOLDER = "x"
FALLBACK_PLACEHOLDER = "?"

PRESETS: tuple[str, ...] = tuple(GENERIC_PATCHSCOPE_PRESETS)


def _single_token(model: HookedTransformer, word: str) -> bool:
    ids = model.to_tokens(" " + word, prepend_bos=False)[0]
    return len(ids) == 1 and int(ids[0]) != getattr(model.tokenizer, "unk_token_id", None)


_placeholders: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # tokenizer -> placeholder


def placeholder_for(model: HookedTransformer) -> str:
    """The placeholder the presets use for this model: `"x"`, or `"?"` if `x` is not one known token."""
    explicit = profile_for(model).placeholder
    if explicit:
        return explicit
    tok = model.tokenizer
    if tok not in _placeholders:
        _placeholders[tok] = PLACEHOLDER if _single_token(model, PLACEHOLDER) else FALLBACK_PLACEHOLDER
    return _placeholders[tok]


def target_prompt(model: HookedTransformer, preset: str, placeholder: str | None = None) -> str:
    """The text of a preset target prompt for this model, with its placeholder filled in.

    Presets: `identity` (few-shot copying), `description` (entity description), and the
    relations `capital`, `language`, `continent`. The built-in model gets the formats it was
    trained on (`cat -> cat ; dog -> dog ; paris -> paris ; x ->`, `the capital of x is`).

    Raises:
        KeyError: an unknown preset.

    Example:
        >>> target_prompt(model, "capital")
        'The capital of x is'
    """
    placeholder = placeholder or placeholder_for(model)
    presets = profile_for(model).patchscope_presets
    if preset not in presets:
        raise KeyError(f"unknown target preset {preset!r}; presets: {', '.join(presets)}")
    return presets[preset].format(x=placeholder)


@dataclass(frozen=True, repr=False)
class PatchscopeResult:
    """One patchscope run: a row per (source layer, target layer) with its generation.

    `generations[i]` is the greedy continuation of the target prompt when the source state at
    `source_layers[i]` was patched in at `target_layers[i]`. `first_probs[i]` is the probability
    of its first token; with an `expected` answer, `expected_probs`/`expected_ranks` (1 = top)
    are that token's probability and rank as the first generated token.
    """

    source_prompt: str
    source_tokens: tuple[str, ...]
    source_position: int
    target_prompt: str
    target_tokens: tuple[str, ...]
    placeholder_position: int
    site: str
    source_layers: tuple[int, ...]
    target_layers: tuple[int, ...]
    generations: tuple[str, ...]
    first_tokens: tuple[str, ...]
    generated_ids: Int[torch.Tensor, "row new"]
    first_probs: Float[torch.Tensor, " row"]
    expected: str | None = None
    expected_id: int | None = None
    expected_probs: Float[torch.Tensor, " row"] | None = None
    expected_ranks: Int[torch.Tensor, " row"] | None = None

    def __post_init__(self) -> None:
        n = len(self.source_layers)
        if n == 0:
            raise ValueError("a patchscope result needs at least one row")
        lengths = {
            "target_layers": len(self.target_layers),
            "generations": len(self.generations),
            "first_tokens": len(self.first_tokens),
        }
        for name, length in lengths.items():
            if length != n:
                raise ValueError(f"{name} has {length} entries for {n} rows")
        tensors = {"generated_ids": (self.generated_ids, 2), "first_probs": (self.first_probs, 1)}
        if self.expected is not None:
            if self.expected_probs is None or self.expected_ranks is None:
                raise ValueError("expected is set but expected_probs/expected_ranks are missing")
            tensors |= {
                "expected_probs": (self.expected_probs, 1),
                "expected_ranks": (self.expected_ranks, 1),
            }
        for name, (t, ndim) in tensors.items():
            if t.ndim != ndim or t.shape[0] != n:
                raise ValueError(f"{name} has shape {tuple(t.shape)}; expected {n} rows and {ndim} dims")
            if t.device.type != "cpu" or t.requires_grad:
                raise ValueError(f"{name} must be a detached CPU tensor")
        if not 0 <= self.source_position < len(self.source_tokens):
            raise ValueError(f"source_position {self.source_position} is outside the source prompt")
        if not 0 <= self.placeholder_position < len(self.target_tokens):
            raise ValueError(f"placeholder_position {self.placeholder_position} is outside the target prompt")

    @property
    def is_grid(self) -> bool:
        """True for a source x target layer sweep (some source layer patched at several targets)."""
        return len(set(self.source_layers)) < len(self.source_layers)

    @property
    def correct(self) -> torch.Tensor:
        """Per row: is the expected answer the first generated token?"""
        if self.expected_ranks is None:
            raise ValueError("no expected answer was given: call patchscope(..., expected='...')")
        return self.expected_ranks == 1

    def row(self, source_layer: int, target_layer: int | None = None) -> int:
        """The row index of a (source layer, target layer) pair (target defaults to the source)."""
        target = source_layer if target_layer is None else target_layer
        for i, pair in enumerate(zip(self.source_layers, self.target_layers)):
            if pair == (source_layer, target) or (
                target_layer is None and pair[0] == source_layer and not self.is_grid
            ):
                return i
        raise KeyError(
            f"no row for source layer {source_layer}, target layer {target}; "
            f"rows: {list(zip(self.source_layers, self.target_layers))}"
        )

    def generation(self, source_layer: int, target_layer: int | None = None) -> str:
        """The generated text for a source layer (and target layer, for a grid)."""
        return self.generations[self.row(source_layer, target_layer)]

    def best_source_layer(self) -> int:
        """The source layer whose row gives the expected answer the highest probability."""
        if self.expected_probs is None:
            raise ValueError("no expected answer was given: call patchscope(..., expected='...')")
        return self.source_layers[int(self.expected_probs.argmax())]

    def to_frame(self):
        """One row per (source layer, target layer): generation, first token, probabilities."""
        import pandas as pd

        data = {
            "source_layer": list(self.source_layers),
            "target_layer": list(self.target_layers),
            "generation": list(self.generations),
            "first_token": list(self.first_tokens),
            "first_prob": self.first_probs.tolist(),
        }
        if self.expected is not None:
            data |= {
                "expected": [self.expected] * len(self.source_layers),
                "expected_prob": self.expected_probs.tolist(),
                "expected_rank": self.expected_ranks.tolist(),
                "correct": self.correct.tolist(),
            }
        return pd.DataFrame(data)

    def plot(self) -> go.Figure:
        """A curve over source layers, or a source x target layer heatmap for a grid.

        The value is the expected answer's probability when one was given, else the probability
        of the first generated token; the first generated token labels each point or cell and
        the whole generation shows on hover.
        """
        values = self.expected_probs if self.expected_probs is not None else self.first_probs
        what = f"p({self.expected})" if self.expected is not None else "p(first generated token)"
        token = self.source_tokens[self.source_position]
        title = f"patchscope: {token!r} of {self.source_prompt!r} -> {self.target_prompt!r}"
        hover = [
            f"source layer {s} -> target layer {t}<br>{g!r}<br>{what} = {float(v):.3f}"
            for s, t, g, v in zip(self.source_layers, self.target_layers, self.generations, values)
        ]
        if not self.is_grid:
            return layer_lines(
                [str(s) for s in self.source_layers],
                {what: values},
                text={what: list(self.first_tokens)},
                hover={what: hover},
                title=title,
                x_title=f"source layer ({self.site})",
                y_title="probability",
                y_range=(0, 1.05),
            )
        sources, targets = sorted(set(self.source_layers)), sorted(set(self.target_layers))
        grid = torch.full((len(sources), len(targets)), float("nan"))
        text = [[""] * len(targets) for _ in sources]
        hov = [[""] * len(targets) for _ in sources]
        for i, (s, t) in enumerate(zip(self.source_layers, self.target_layers)):
            a, b = sources.index(s), targets.index(t)
            grid[a, b], text[a][b], hov[a][b] = float(values[i]), self.first_tokens[i], hover[i]
        return heatmap(
            grid,
            x_labels=[str(t) for t in targets],
            y_labels=[str(s) for s in sources],
            text=text,
            hover=hov,
            title=title,
            x_title="target layer",
            y_title="source layer",
            colorbar_title=what,
            zmin=0.0,
            zmax=1.0,
            reverse_y=False,
        )

    def __repr__(self) -> str:
        rows = ", ".join(
            f"{s}->{t}: {g!r}"
            for s, t, g in list(zip(self.source_layers, self.target_layers, self.generations))[:6]
        )
        more = "" if len(self.generations) <= 6 else f", ... ({len(self.generations)} rows)"
        return f"PatchscopeResult({self.source_prompt!r} -> {self.target_prompt!r}; {rows}{more})"


# --- input checks -----------------------------------------------------------------------------


def _spell(model: HookedTransformer, ids: list[int]) -> list[str]:
    """Each token id decoded on its own (one tokenizer call)."""
    return model.tokenizer.batch_decode([[i] for i in ids], clean_up_tokenization_spaces=False)


def _find_token(spelled: Sequence[str], which: str | int, what: str, text: str) -> int:
    """Absolute position of `which` (an int position, or the last token spelled `which`)."""
    n = len(spelled)
    if isinstance(which, bool) or not isinstance(which, (int, str)):
        raise ValueError(f"{what} {which!r} must be an int position or a token string")
    if isinstance(which, int):
        if not -n <= which < n:
            raise ValueError(
                f"{what} {which} is out of range for {text!r} ({n} tokens with BOS): expected [-{n}, {n})"
            )
        return which % n
    hits = [i for i, s in enumerate(spelled) if s.strip() == which.strip()]
    if not hits:
        hint = (
            f"write the placeholder into the target, pass placeholder=<token or position>, or use a preset "
            f"({', '.join(PRESETS)})"
            if what == "placeholder"
            else "pass a token of the prompt or an int position"
        )
        raise ValueError(
            f"{what} {which!r} is not a token of {text!r} (tokens: {[s.strip() for s in spelled]}); {hint}"
        )
    return hits[-1]


def _until_eos(ids: list[int], eos: int | None) -> list[int]:
    return ids[: ids.index(eos)] if eos is not None and eos in ids else ids


def _layers(model: HookedTransformer, layers: int | Sequence[int] | str | None, what: str) -> list[int]:
    if layers is None or layers == "all":
        return list(range(model.cfg.n_layers))
    items = [layers] if isinstance(layers, int) else list(layers)
    if not items:
        raise ValueError(f"{what} is empty: pass None (all layers) or some layer indices")
    try:
        return list(dict.fromkeys(resolve_layer(model, layer) for layer in items))
    except ValueError as err:
        raise ValueError(f"{what}: {err}") from None


def patchscope(
    model: HookedTransformer,
    source_prompt: str,
    *,
    source_position: int | str = -1,
    target: str = "identity",
    placeholder: str | int | None = None,
    source_layers: int | Sequence[int] | str | None = None,
    target_layers: int | Sequence[int] | str | None = None,
    site: str = "resid_pre",
    expected: str | int | None = None,
    max_new_tokens: int = 4,
    batch_size: int = 64,
    prepend_bos: bool = True,
    strategy: str = "auto",
    relocate_position: bool = True,
) -> PatchscopeResult:
    """Decode a source prompt's hidden state by patching it into a target prompt and generating.

    Args:
        model: any `HookedTransformer` with a tokenizer.
        source_prompt: the prompt whose state is read.
        source_position: the token position to read (BOS is 0, negatives from the end) or a
            token string (its last occurrence), e.g. `"france"`.
        target: a preset (`identity`, `description`, `capital`, `language`, `continent`; see
            `target_prompt`) or a custom target text containing the placeholder.
        placeholder: the placeholder token of a custom target (its last occurrence is patched),
            or an int position in the target; default `placeholder_for(model)` (`"x"`).
        source_layers: layers to read; None or `"all"` sweeps every layer in one batch.
        target_layers: None patches each source layer into the same layer; an int patches
            every source layer into that layer; a list (or `"all"`) gives a source x target grid.
        site: `"resid_pre"` (layer 0 = the embedding) or `"resid_post"` (block outputs).
        expected: an answer token whose probability and rank as the first generated token to
            report (e.g. the source token for the identity prompt).
        max_new_tokens: greedy tokens to generate per row (KV cache on).
        batch_size: rows per batched pass (a big grid is split).
        prepend_bos: prepend BOS to source and target prompts.
        strategy: `"one_pass"` (source and all rows in one forward), `"shared_prefix"` (fewest
            FLOPs; needed for back-patching and grids bigger than `batch_size`) or `"auto"`
            (the cheaper of the two that applies; see the module docstring). Both give the
            same result.
        relocate_position: for models with learned absolute position embeddings (GPT-2 style,
            the built-in model), swap the source position's embedding in the patched state for
            the placeholder's (`state - W_pos[source] + W_pos[placeholder]`), so the target does
            not read a second, wrong position there. No effect on rotary models (Gemma).

    Returns:
        A `PatchscopeResult` with one row per (source layer, target layer).

    Raises:
        ValueError: empty prompt, prompt (or target plus generation) longer than the context,
            a position out of range, a placeholder missing from the target, a bad layer or site.
        KeyError: an unknown preset, or an `expected` that is not one token.

    Example:
        >>> ps = interp.patching.patchscope(model, "we talked about tokyo today .", source_position="tokyo",
        ...                        target="identity", source_layers=0, expected="tokyo")
        >>> ps.first_tokens
        ('tokyo',)
    """
    if site not in PATCH_SITES:
        raise ValueError(f"site {site!r} must be one of {PATCH_SITES}")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy {strategy!r} must be one of {STRATEGIES}")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens!r} must be an int >= 1")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be an int >= 1")
    if not isinstance(target, str) or not target.strip():
        raise ValueError(f"target {target!r} must be a preset ({', '.join(PRESETS)}) or a non-empty prompt")
    mark = placeholder if placeholder is not None else placeholder_for(model)
    text = (
        target_prompt(model, target, mark if isinstance(mark, str) else None) if target in PRESETS else target
    )
    expected_id = token_id(model, expected) if expected is not None else None

    src, _ = tokenize(model, source_prompt, prepend_bos=prepend_bos)
    tgt, _ = tokenize(model, text, prepend_bos=prepend_bos)
    spelled = _spell(model, src[0].tolist() + tgt[0].tolist())
    src_spelled, tgt_spelled = tuple(spelled[: src.shape[1]]), tuple(spelled[src.shape[1] :])
    src_pos = _find_token(src_spelled, source_position, "source_position", source_prompt)
    ph_pos = _find_token(tgt_spelled, mark, "placeholder", text)
    if tgt.shape[1] + max_new_tokens - 1 > model.cfg.n_ctx:
        raise ValueError(
            f"target prompt ({tgt.shape[1]} tokens) plus {max_new_tokens} new tokens exceeds the model's "
            f"context of {model.cfg.n_ctx} tokens; shorten it or lower max_new_tokens"
        )
    sources = _layers(model, source_layers, "source_layers")
    if target_layers is None:
        pairs = [(s, s) for s in sources]
    elif isinstance(target_layers, int):
        t = _layers(model, target_layers, "target_layers")[0]
        pairs = [(s, t) for s in sources]
    else:
        pairs = [(s, t) for s in sources for t in _layers(model, target_layers, "target_layers")]

    shift = None
    if relocate_position and model.cfg.positional_embedding_type == "standard":
        with torch.no_grad():
            shift = model.W_pos[ph_pos] - model.W_pos[src_pos]
    merged = sweep(
        model,
        src,
        src_pos,
        tgt,
        ph_pos,
        pairs,
        site=site,
        strategy=strategy,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        expected_id=expected_id,
        shift=shift,
    )
    ids = merged["generated_ids"]
    decode = model.tokenizer.batch_decode
    eos = model.tokenizer.eos_token_id
    gens = [_until_eos([i for i in row if i >= 0], eos) for row in ids.tolist()]
    return PatchscopeResult(
        source_prompt=source_prompt,
        source_tokens=src_spelled,
        source_position=src_pos,
        target_prompt=text,
        target_tokens=tgt_spelled,
        placeholder_position=ph_pos,
        site=site,
        source_layers=tuple(s for s, _ in pairs),
        target_layers=tuple(t for _, t in pairs),
        generations=tuple(decode(gens, clean_up_tokenization_spaces=False)),
        first_tokens=tuple(_spell(model, ids[:, 0].tolist())),
        generated_ids=ids,  # -1 after a row's chunk stopped at EOS
        first_probs=merged["first_probs"],
        expected=None
        if expected is None
        else (expected if isinstance(expected, str) else model.tokenizer.decode([expected])),
        expected_id=expected_id,
        expected_probs=merged.get("expected_probs"),
        expected_ranks=merged.get("expected_ranks"),
    )
