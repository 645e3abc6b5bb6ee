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

The preset texts come from the model's profile (`profile_for(model).patchscope_presets`), so a
model gets prompts in the format it knows (the built-in model's lower-case, word-level ones).

Conventions here:

- The site is `resid_pre` by default: layer `l` is the stream *entering* block `l`, so layer 0 is
  the token embedding itself (position embedding included) and decodes the raw token. Use
  `site="resid_post"` for block outputs. Source and target use the same site.
- The target layer defaults to the source layer; any target layer works, also one earlier than
  the source ("back-patching": Biran et al. 2024, "Hopping Too Late", arXiv:2406.12775, which
  patches a later state into an earlier layer to give the model more layers to use it), and a
  list of target layers gives a source x target grid.
- A sweep over source layers is one batched pass over the target, one row per (source layer,
  target layer), never a loop of forwards (`interp.patching.engine`: `"one_pass"` puts the
  source in the same batch as row 0, `"shared_prefix"` shares the target's tokens before the
  placeholder in one key-value cache; `"auto"` picks).
- The source can also be a vector (`source_vector=`: one `[d_model]` state, or one per layer),
  e.g. a task vector, a steering direction or a state computed elsewhere, so that what a
  vector means is read the same way as a prompt's state.
- The patch is applied on the prompt pass only. Generation then continues greedily with the
  key-value cache, which already holds the patched keys and values.
- `targets=` names output tokens to report (probability and rank as the first generated token);
  the first is the answer `correct` checks. It was called `expected=`, which still works for one
  release with a DeprecationWarning.

Example:
    >>> ps = interp.patchscope(model, "we visited france last year .", source_position="france",
    ...                        target="capital", targets="paris")
    >>> ps.to_frame()[["source_layer", "generation", "expected_prob"]]
    >>> ps.plot()
"""

from __future__ import annotations

import numbers
import weakref
from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float
from transformer_lens import HookedTransformer

from interp.core.checks import (MISSING, check_count, check_flag, check_layers, check_model, check_prompt, no_extra,
                                 renamed)
from interp.core.hooks import resolve_layer
from interp.core.profiles import GENERIC_PATCHSCOPE_PRESETS, check_presets, profile_for
from interp.core.tokens import token_ids, tokenize
from interp.patching.engine import STRATEGIES, sweep
from interp.patching.result import PatchscopeResult

PATCH_SITES = ("resid_pre", "resid_post")
#: The placeholder word of the presets (a model that does not know it gets `FALLBACK_PLACEHOLDER`).
PLACEHOLDER = "x"
FALLBACK_PLACEHOLDER = "?"

#: The preset names every built-in profile defines (generic, Gemma, the built-in model). The
#: texts, and any extra presets a registered profile adds, come from the model's profile: see
#: `preset_names(model)` and `target_prompt(model, preset)`.
PRESETS: tuple[str, ...] = tuple(GENERIC_PATCHSCOPE_PRESETS)


def preset_names(model: HookedTransformer) -> tuple[str, ...]:
    """The patchscope presets this model's profile defines.

    Example:
        >>> preset_names(model)
        ('identity', 'description', 'capital', 'language', 'continent')
    """
    return tuple(profile_for(model).patchscope_presets)


def _is_one_token(model: HookedTransformer, word: str) -> bool:
    """Whether `word` after a space (as the presets write it) tokenizes to one known token."""
    ids = model.to_tokens(" " + word, prepend_bos=False)[0]
    return len(ids) == 1 and int(ids[0]) != getattr(model.tokenizer, "unk_token_id", None)


_placeholders: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # tokenizer -> placeholder


def placeholder_for(model: HookedTransformer) -> str:
    """The placeholder the presets use for this model: the profile's, else `"x"`, or `"?"` if
    `x` is not one known token."""
    explicit = profile_for(model).placeholder
    if explicit:
        return explicit
    tok = model.tokenizer
    if tok not in _placeholders:
        _placeholders[tok] = PLACEHOLDER if _is_one_token(model, PLACEHOLDER) else FALLBACK_PLACEHOLDER
    return _placeholders[tok]


def target_prompt(model: HookedTransformer, preset: str, placeholder: str | None = None) -> str:
    """The text of a preset target prompt for this model, with its placeholder filled in.

    Presets (from the model's profile): `identity` (few-shot copying), `description` (entity
    description), and the relations `capital`, `language`, `continent`. The built-in model gets
    the formats it was trained on (`cat -> cat ; dog -> dog ; paris -> paris ; x ->`,
    `the capital of x is`).

    Raises:
        KeyError: an unknown preset.

    Example:
        >>> target_prompt(model, "capital")
        'The capital of x is'
    """
    profile = profile_for(model)
    check_presets([preset], profile)
    return profile.patchscope_presets[preset].format(x=placeholder or placeholder_for(model))


# --- input checks -----------------------------------------------------------------------------


def _find_token(
    spelled: Sequence[str], which: str | int, what: str, text: str, presets: Sequence[str]
) -> int:
    """Absolute position of `which` (an int position, or the last token spelled `which`)."""
    n = len(spelled)
    if isinstance(which, bool) or not isinstance(which, (numbers.Integral, str)):
        raise ValueError(f"{what} {which!r} must be an int position or a token string")
    if isinstance(which, numbers.Integral):
        if not -n <= which < n:
            raise ValueError(
                f"{what} {which} is out of range for {text!r} ({n} tokens with BOS): expected [-{n}, {n})"
            )
        return which % n
    hits = [i for i, s in enumerate(spelled) if s.strip() == which.strip()]
    if not hits:
        hint = (
            "write the placeholder into the target, pass placeholder=<token or position>, or use a preset "
            f"({', '.join(presets)})"
            if what == "placeholder"
            else "pass a token of the prompt or an int position"
        )
        raise ValueError(
            f"{what} {which!r} is not a token of {text!r} (tokens: {[s.strip() for s in spelled]}); {hint}"
        )
    return hits[-1]


def _in_range(model: HookedTransformer, layers: Any, name: str) -> Any:
    """`layers` unchanged, after naming the first out-of-range layer the way `resolve_layer` does."""
    for layer in [layers] if isinstance(layers, numbers.Integral) else layers if isinstance(layers, (list, tuple)) else ():
        try:
            resolve_layer(model, layer)
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
    return layers


#: What a result says its source was when a vector was patched in.
VECTOR_LABEL = "<source vector>"


def _check_vector(
    model: HookedTransformer, source_prompt: Any, vector: Any, source_position: Any, strategy: str
) -> torch.Tensor:
    """The source vector on the model's device and dtype, after checking that it comes alone
    (no prompt, no position), has the model's width, one row per layer if 2-D, and is finite."""
    if source_prompt is not None:
        raise TypeError("patchscope() got both source_prompt and source_vector: pass one of them")
    if source_position is not None:
        raise ValueError(f"source_position is {source_position!r}, but a source_vector has no positions: "
                         "leave source_position out")
    if strategy == "one_pass":
        raise ValueError("strategy 'one_pass' needs a source prompt; a source_vector runs 'shared_prefix' "
                         "(or pass strategy='auto')")
    if not isinstance(vector, torch.Tensor) or not vector.is_floating_point():
        raise TypeError(f"source_vector must be a floating-point torch tensor, got {type(vector).__name__}"
                        + (f" of dtype {vector.dtype}" if isinstance(vector, torch.Tensor) else ""))
    d, n = model.cfg.d_model, model.cfg.n_layers
    if not (vector.shape == (d,) or vector.shape == (n, d)):
        raise ValueError(f"source_vector has shape {tuple(vector.shape)}: expected [{d}] (d_model) or "
                         f"[{n}, {d}] (one state per layer)")
    if not torch.isfinite(vector).all():
        raise ValueError("source_vector contains NaN or infinite values")
    param = next(model.parameters())
    return vector.detach().to(param.device, param.dtype)


def _until_eos(ids: list[int], eos: int | None) -> list[int]:
    return ids[: ids.index(eos)] if eos is not None and eos in ids else ids


def patchscope(
    model: HookedTransformer,
    source_prompt: str | None = None,
    *,
    source_vector: Float[torch.Tensor, "d_model"] | Float[torch.Tensor, "layers d_model"] | None = None,
    source_position: int | str | None = None,
    target: str = "identity",
    placeholder: str | int | None = None,
    source_layers: int | Sequence[int] | None = None,
    target_layers: int | Sequence[int] | str | None = None,
    site: str = "resid_pre",
    targets: str | int | Sequence[str | int] | None = None,
    max_new_tokens: int = 4,
    batch_size: int = 64,
    prepend_bos: bool | None = None,
    strategy: str = "auto",
    relocate_position: bool = True,
    **deprecated: Any,
) -> PatchscopeResult:
    """Decode a source prompt's hidden state, or a given vector, by patching it into a target
    prompt and generating.

    Args:
        model: any `HookedTransformer` with a tokenizer.
        source_prompt: the prompt whose state is read (or pass `source_vector` instead).
        source_vector: a state to patch in instead of reading one from a prompt: `[d_model]`
            (the same vector for every source layer, so a sweep patches it into each layer in
            turn), or `[n_layers, d_model]` (row l is the state "from" layer l of `site`, e.g.
            a task vector per layer, or states computed elsewhere). It is written as given:
            no position embedding is swapped (`relocate_position` does not apply). Runs the
            `shared_prefix` strategy.
        source_position: the token position to read (BOS is 0, negatives from the end; default
            the last) or a token string (its last occurrence), e.g. `"france"`. Not with
            `source_vector`.
        target: a preset of the model's profile (`identity`, `description`, `capital`,
            `language`, `continent`; see `target_prompt`) or a custom target text containing
            the placeholder.
        placeholder: the placeholder token of a custom target (its last occurrence is patched),
            or an int position in the target; default `placeholder_for(model)` (`"x"`).
        source_layers: layers to read (an int, a list, negatives from the end); None sweeps
            every layer in one batch (`"all"` is deprecated: use None).
        target_layers: None patches each source layer into the same layer; an int patches
            every source layer into that layer; a list, or `"all"`, gives a source x target grid.
        site: `"resid_pre"` (layer 0 = the embedding) or `"resid_post"` (block outputs).
        targets: output tokens (strings or ids) whose probability and rank as the first
            generated token to report; the first is the answer (e.g. the source token for the
            identity prompt). Formerly `expected=`.
        max_new_tokens: greedy tokens to generate per row (KV cache on).
        batch_size: rows per batched pass (a big grid is split).
        prepend_bos: prepend BOS to source and target prompts; None follows the model (`wants_bos`).
        strategy: `"one_pass"` (source and all rows in one forward), `"shared_prefix"` (fewest
            FLOPs; needed for back-patching and grids bigger than `batch_size`) or `"auto"`
            (the cheaper of the two that applies). Both give the same result.
        relocate_position: for models with learned absolute position embeddings (GPT-2 style,
            the built-in model), swap the source position's embedding in the patched state for
            the placeholder's (`state - W_pos[source] + W_pos[placeholder]`), so the target does
            not read a second, wrong position there. No effect on rotary models (Gemma).

    Returns:
        A `PatchscopeResult` with one row per (source layer, target layer).

    Raises:
        ValueError: empty prompt, prompt (or target plus generation) longer than the context,
            a position out of range, a placeholder missing from the target, a bad layer or site.
        KeyError: an unknown preset, or a target token that is not one token.

    Example:
        >>> ps = interp.patchscope(model, "we talked about tokyo today .", source_position="tokyo",
        ...                        target="identity", source_layers=0, targets="tokyo")
        >>> ps.first_tokens
        ('tokyo',)
        >>> v = interp.mean_difference(model, few_shot, zero_shot, positions="last")[2].direction
        >>> interp.patchscope(model, source_vector=v, target="identity", source_layers=2).generations
    """
    old = renamed("expected", "targets", deprecated, "patchscope")
    no_extra(deprecated, "patchscope")
    if old is not MISSING:
        if targets is not None:
            raise TypeError("patchscope() got both targets= and its old name expected=: pass targets= only")
        targets = old
    check_model(model)
    if source_vector is None and source_prompt is None:
        raise TypeError("patchscope() needs a source_prompt (a string) or a source_vector (a tensor)")
    if source_vector is None:
        check_prompt(source_prompt, "source_prompt")
        source_position = -1 if source_position is None else source_position
    else:
        vectors = _check_vector(model, source_prompt, source_vector, source_position, strategy)
    check_flag(prepend_bos, "prepend_bos", none=True)
    check_flag(relocate_position, "relocate_position")
    if site not in PATCH_SITES:
        raise ValueError(f"site {site!r} must be one of {PATCH_SITES}")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy {strategy!r} must be one of {STRATEGIES}")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, numbers.Integral) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens!r} must be an int >= 1")
    check_count(batch_size, "batch_size")
    presets = preset_names(model)
    if not isinstance(target, str) or not target.strip():
        raise ValueError(f"target {target!r} must be a preset ({', '.join(presets)}) or a non-empty prompt")
    mark = placeholder if placeholder is not None else placeholder_for(model)
    text = target
    if target in presets:
        text = target_prompt(model, target, mark if isinstance(mark, str) else None)
    target_list = [] if targets is None else [targets] if isinstance(targets, (str, numbers.Integral)) else list(targets)
    ids_of_targets = token_ids(model, target_list)

    tgt, _ = tokenize(model, text, prepend_bos=prepend_bos)
    if source_vector is None:
        src, _ = tokenize(model, source_prompt, prepend_bos=prepend_bos)
        spelled = model.to_str_tokens(torch.cat([src[0], tgt[0]]))  # one tokenizer call
        src_spelled, tgt_spelled = tuple(spelled[: src.shape[1]]), tuple(spelled[src.shape[1] :])
        src_pos = _find_token(src_spelled, source_position, "source_position", source_prompt, presets)
    else:
        src, src_spelled, src_pos = tgt[:, :0], (VECTOR_LABEL,), 0
        tgt_spelled = tuple(model.to_str_tokens(tgt[0]))
    ph_pos = _find_token(tgt_spelled, mark, "placeholder", text, presets)
    if tgt.shape[1] + max_new_tokens - 1 > model.cfg.n_ctx:
        raise ValueError(
            f"target prompt ({tgt.shape[1]} tokens) plus {max_new_tokens} new tokens exceeds the model's "
            f"context of {model.cfg.n_ctx} tokens; shorten it or lower max_new_tokens"
        )
    sources = check_layers(model, _in_range(model, source_layers, "source_layers"), "source_layers")
    sources = list(dict.fromkeys(sources))
    if target_layers is None:
        pairs = [(s, s) for s in sources]
    else:
        grid = target_layers == "all" or not isinstance(target_layers, numbers.Integral)
        wanted = None if target_layers == "all" else _in_range(model, target_layers, "target_layers")
        layers = list(dict.fromkeys(check_layers(model, wanted, "target_layers")))
        pairs = [(s, t) for s in sources for t in layers] if grid else [(s, layers[0]) for s in sources]

    shift, states = None, None
    if source_vector is not None:
        states = {s: vectors[s] if vectors.ndim == 2 else vectors for s, _ in pairs}
    elif relocate_position and model.cfg.positional_embedding_type == "standard":
        with torch.no_grad():
            w_pos = model.pos_embed.W_pos  # the learned position table (a bridge names it on its component)
            shift = w_pos[ph_pos] - w_pos[src_pos]
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
        target_ids=ids_of_targets,
        shift=shift,
        states=states,
    )
    ids = merged["generated_ids"]
    eos = model.tokenizer.eos_token_id
    gens = [_until_eos([i for i in row if i >= 0], eos) for row in ids.tolist()]
    return PatchscopeResult(
        source_prompt=source_prompt if source_vector is None else VECTOR_LABEL,
        source_tokens=src_spelled,
        source_position=src_pos,
        target_prompt=text,
        target_tokens=tgt_spelled,
        placeholder_position=ph_pos,
        site=site,
        source_layers=tuple(s for s, _ in pairs),
        target_layers=tuple(t for _, t in pairs),
        generations=tuple(model.tokenizer.batch_decode(gens, clean_up_tokenization_spaces=False)),
        first_tokens=tuple(model.to_str_tokens(ids[:, 0])),
        generated_ids=ids,  # -1 after a row's chunk stopped at EOS
        first_probs=merged["first_probs"],
        targets=tuple(t if isinstance(t, str) else model.tokenizer.decode([t]) for t in target_list),
        target_ids=tuple(ids_of_targets),
        target_probs=merged["target_probs"],
        target_ranks=merged["target_ranks"],
    )
