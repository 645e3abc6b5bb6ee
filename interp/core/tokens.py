"""Text to token rows, the one way: chat format, BOS, token lookup, left padding, batching.

Every technique turns prompts into a padded `[batch, pos]` tensor and an attention mask. Doing
that in one module is what keeps their results comparable:

- **Chat format.** `format_chat` wraps a request in the model's template (from its profile,
  `interp.core.profiles`); `post_instruction_length` counts the template tokens after the
  request, the positions refusal work reads (Arditi et al. 2024).
- **BOS.** Whether a row starts with BOS is decided in one place, `wants_bos`, from the profile
  and the model's config; text that already starts with the BOS text never gets a second one.
- **Left padding.** `pad_rows` right-aligns rows so every prompt's last token sits in the last
  column, which is what generation and last-position reads want.
- **Token budget.** `length_batches` groups texts of similar length so a batch holds at most
  `batch_size` texts and `max_tokens` padded tokens (flat memory on long corpora).
- **Token lookup.** `token_id` accepts an id or a string and knows about the leading-space forms
  of BPE and SentencePiece vocabularies: a bare word means the form after a space (` is`, what a
  next-token position after a word predicts), and it says so when the word has both forms.

Example:
    >>> tokens, mask = interp.tokenize(model, ["the capital of france is", "hi"])
    >>> tokens.shape, mask[1].tolist()
    (torch.Size([2, 6]), [0, 0, 0, 0, 1, 1])
"""

from __future__ import annotations

import numbers
import warnings
import weakref
from collections.abc import Sequence

import torch
from jaxtyping import Int
from transformer_lens import HookedTransformer

from interp.core.profiles import profile_for

_warned_unknown: set[str] = set()


# --- chat format --------------------------------------------------------------------------------


def is_chat_model(model: HookedTransformer) -> bool:
    """True when the model's profile has a chat template (instruction-tuned or the built-in model)."""
    return profile_for(model).chat


def chat_template(model: HookedTransformer) -> str:
    """The template (with a `{prompt}` slot) that wraps a user request; `"{prompt}"` for plain models."""
    return profile_for(model).chat_template or "{prompt}"


def format_chat(model: HookedTransformer, prompts: str | Sequence[str]) -> list[str]:
    """Wrap each request in the model's chat template.

    Example:
        >>> interp.format_chat(toy, "how do i bake bread")
        ['user : how do i bake bread assistant :']
    """
    from interp.core.checks import check_prompts

    prompts = check_prompts(prompts)
    template = chat_template(model)
    return [template.format(prompt=p) for p in prompts]


def use_chat(model: HookedTransformer, chat: bool | None) -> bool:
    """Resolve a `chat=` argument: `None` follows the profile; `True` needs a chat template."""
    if chat is None:
        return is_chat_model(model)
    if not isinstance(chat, bool):
        raise TypeError(f"chat must be True, False or None, got {chat!r}")
    return chat


def maybe_chat(model: HookedTransformer, prompts: Sequence[str], chat: bool | None) -> list[str]:
    """The prompts, wrapped in the chat template when `chat` (or, for `None`, the profile) says so."""
    return format_chat(model, prompts) if use_chat(model, chat) else list(prompts)


def post_instruction_length(model: HookedTransformer) -> int:
    """Number of template tokens after the user's request (the positions refusal work reads)."""
    suffix = chat_template(model).split("{prompt}", 1)[1]
    if not suffix:
        return 1
    return max(1, len(model.to_str_tokens(suffix, prepend_bos=False)))


# --- BOS, ids, padding ---------------------------------------------------------------------------


def wants_bos(model: HookedTransformer, prepend_bos: bool | None = None) -> bool:
    """Whether rows start with BOS: the argument if given, else the profile, else the model's config."""
    if prepend_bos is not None:
        return bool(prepend_bos)
    profile = profile_for(model).prepend_bos
    return bool(model.cfg.default_prepend_bos if profile is None else profile)


def pad_id(model: HookedTransformer) -> int:
    """The id used for padding: the tokenizer's pad token, else its EOS, else 0."""
    tok = model.tokenizer
    for candidate in (getattr(tok, "pad_token_id", None), getattr(tok, "eos_token_id", None)):
        if candidate is not None:
            return int(candidate)
    return 0


def encode(
    model: HookedTransformer,
    texts: Sequence[str],
    *,
    prepend_bos: bool | None = None,
    max_len: int | None = None,
) -> list[list[int]]:
    """Token ids of each text (one batched tokenizer call), BOS first where `wants_bos` says so,
    each cut to its first `max_len` tokens when given."""
    tok = model.tokenizer
    if tok is None:
        raise ValueError("model has no tokenizer; pass tokens instead of text")
    bos_id = getattr(tok, "bos_token_id", None)
    bos_text = getattr(tok, "bos_token", None)
    add = wants_bos(model, prepend_bos) and bos_id is not None
    rows = []
    for text, ids in zip(texts, tok(list(texts), add_special_tokens=False)["input_ids"]):
        if add and not (bos_text and text.startswith(bos_text)):
            ids = [bos_id, *ids]
        rows.append(ids if max_len is None else ids[:max_len])
    return rows


def pad_rows(
    rows: Sequence[Sequence[int] | torch.Tensor],
    pad: int,
    *,
    side: str = "left",
    device: torch.device | str | None = None,
) -> tuple[Int[torch.Tensor, "batch pos"], Int[torch.Tensor, "batch pos"]]:
    """Stack token rows into `(tokens, attention_mask)`, padded on the left (or right).

    Example:
        >>> pad_rows([[5, 6, 7], [8]], pad=0)[0].tolist()
        [[5, 6, 7], [0, 0, 8]]
    """
    if side not in ("left", "right"):
        raise ValueError(f"padding side {side!r} must be 'left' or 'right'")
    if not rows:
        raise ValueError("no rows to pad")
    width = max(len(r) for r in rows)
    if device is None and isinstance(rows[0], torch.Tensor):
        device = rows[0].device
    tokens = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        cols = slice(width - len(row), width) if side == "left" else slice(0, len(row))
        tokens[i, cols] = torch.as_tensor(row, dtype=torch.long).cpu()
        mask[i, cols] = 1
    return tokens.to(device or "cpu"), mask.to(device or "cpu")


def length_batches(lengths: torch.Tensor | Sequence[int], batch_size: int, max_tokens: int) -> list[torch.Tensor]:
    """Indices of texts, shortest first, cut into batches of at most `batch_size` texts and at
    most `max_tokens` tokens once padded to the batch's longest text."""
    lengths = torch.as_tensor(lengths)
    order = lengths.argsort()
    batches, start = [], 0
    for i, n in enumerate(lengths[order].tolist()):  # ascending: text i sets the batch's width
        if i > start and (i - start + 1 > batch_size or (i - start + 1) * n > max_tokens):
            batches.append(order[start:i])
            start = i
    batches.append(order[start:])
    return batches


def tokenize(
    model: HookedTransformer,
    prompts: str | Sequence[str],
    *,
    prepend_bos: bool | None = None,
    padding_side: str = "left",
) -> tuple[Int[torch.Tensor, "batch pos"], Int[torch.Tensor, "batch pos"]]:
    """Tokenize one prompt or a batch, padded, with its attention mask, on the model's device.

    Checks for empty prompts, prompts longer than the context, and (for word-level tokenizers)
    words outside the vocabulary, which become `<unk>` with one warning naming them.

    Returns:
        `(tokens, attention_mask)`, both `[batch, pos]`.

    Example:
        >>> tokens, mask = interp.tokenize(model, ["the capital of france is", "hi"])
    """
    from interp.core.checks import check_flag, check_model, check_prompts

    check_model(model)
    prompts = check_prompts(prompts)
    check_flag(prepend_bos, "prepend_bos", none=True)
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side {padding_side!r} must be 'left' or 'right'")
    rows = encode(model, prompts, prepend_bos=prepend_bos)
    for i, row in enumerate(rows):
        if len(row) > model.cfg.n_ctx:
            raise ValueError(
                f"prompt {i} is {len(row)} tokens long; the model's context is {model.cfg.n_ctx} tokens"
            )
    _warn_unknown(model, prompts)
    return pad_rows(rows, pad_id(model), side=padding_side, device=model.cfg.device)


def _warn_unknown(model: HookedTransformer, prompts: Sequence[str]) -> None:
    tok = model.tokenizer
    unk = getattr(tok, "unk_token_id", None)
    backend = getattr(tok, "backend_tokenizer", None)
    if unk is None or backend is None:
        return
    unknown = set()
    for p in prompts:
        enc = backend.encode(p, add_special_tokens=False)
        unknown.update(p[a:b] for i, (a, b) in zip(enc.ids, enc.offsets) if i == unk)
    new = sorted(unknown - _warned_unknown)
    if new:
        _warned_unknown.update(new)
        warnings.warn(
            f"{len(new)} word(s) are not in {model.cfg.model_name!r}'s vocabulary and were read as "
            f"{tok.unk_token!r}: {', '.join(new[:20])}",
            UserWarning,
            stacklevel=3,
        )


_SPACE_MARKS = ("Ġ", "▁", " ")
_marks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # tokenizer -> its space mark
_warned_forms: set[tuple[str, str]] = set()


def space_mark(model: HookedTransformer) -> str | None:
    """How the vocabulary writes a leading space: `"Ġ"` (byte-level BPE: GPT-2, Llama 3,
    SmolLM2), `"▁"` (SentencePiece: Gemma, Llama 2), `" "`, or None for a word-level vocabulary
    whose tokens carry no spaces (the built-in model)."""
    tok = model.tokenizer
    if tok not in _marks:
        pieces = tok.convert_ids_to_tokens(tok("a the", add_special_tokens=False)["input_ids"])
        last = pieces[-1] if pieces else ""
        mark = last[:-3] if last.endswith("the") else ""
        _marks[tok] = mark if mark in _SPACE_MARKS else None
    return _marks[tok]


def _piece_id(tok, piece: str) -> int | None:
    """The id of one vocabulary entry, or None (a lookup, not a copy of a 256k-entry vocabulary)."""
    found = tok.convert_tokens_to_ids(piece)
    if not isinstance(found, numbers.Integral) or found == getattr(tok, "unk_token_id", None):
        return None
    return found


def token_id(model: HookedTransformer, token: str | int, *, space: bool | None = None) -> int:
    """The id of a single token, given as an id or as text; knows about leading spaces.

    In a BPE or SentencePiece vocabulary most words have two forms: ` is` (after a space, as in
    the middle of a sentence) and `is` (at the start of a text or after a newline). A next-token
    target after a word wants the first. So a bare word (`"is"`, `"Paris"`) means the form with
    the space when the vocabulary has it, and a warning (once per word) names both forms and the
    one chosen; `" is"` always means the form with the space; `space=False` (or the id) picks the
    form without. Punctuation and special tokens (`"."`, `"<|im_end|>"`) are taken as written.
    A word-level vocabulary (the built-in model) has one form per word: `"is"` and `" is"` are it.

    Args:
        token: an id, or the token's text.
        space: True: the form after a space; False: the form without; None: as above.

    Raises:
        KeyError: the text is not one token of the vocabulary (the message shows how it splits).

    Example:
        >>> interp.token_id(smollm2, " is"), interp.token_id(smollm2, "is", space=False)
        (314, 271)
    """
    if isinstance(token, bool) or not isinstance(token, (numbers.Integral, str)):
        raise TypeError(f"token {token!r} must be a token string or an int id")
    if isinstance(token, numbers.Integral):
        if not 0 <= token < model.cfg.d_vocab:
            raise KeyError(f"token id {token} is outside the vocabulary [0, {model.cfg.d_vocab})")
        return token
    if not token:
        raise KeyError("token '' is empty: expected a token string such as ' Paris'")
    if space is not None and not isinstance(space, bool):
        raise TypeError(f"space must be True, False or None, got {space!r}")
    tok = model.tokenizer
    mark = space_mark(model)
    word = token.lstrip(" ") or token
    if mark is None:  # word-level: tokens carry no spaces
        found = _piece_id(tok, token)
        found = found if found is not None else _piece_id(tok, word)
        text = word
    else:
        spaced, bare = _piece_id(tok, mark + word), _piece_id(tok, word)
        if space is None:
            space = token.startswith(" ") or (word[:1].isalnum() and spaced is not None)
        found, text = (spaced, " " + word) if space else (bare, word)
        if space and bare is not None and spaced is not None and not token.startswith(" "):
            _warn_forms(model, word, spaced, bare)
    if found is None:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        if len(ids) == 1 and ids[0] != getattr(tok, "unk_token_id", None):
            return int(ids[0])
        pieces = tok.convert_ids_to_tokens(ids)
        raise KeyError(f"{token!r} is not a single token in {model.cfg.model_name!r}'s vocabulary "
                       f"(it reads as {len(ids)} token(s): {pieces})")
    return found


def join_pieces(pieces: Sequence[str], spaced: bool | None = None) -> str:
    """Show token pieces as text: sub-word pieces that carry their own spaces (`' Par' 'is'`)
    are concatenated; word-level tokens (the built-in model's) are joined with spaces.
    `spaced=None` decides from the pieces (any piece that starts with a space).

    Example:
        >>> join_pieces([" The", " cap", "ital"]), join_pieces(["the", "capital"])
        (' The capital', 'the capital')
    """
    if spaced is None:
        spaced = any(p.startswith(" ") for p in pieces)
    return "".join(pieces) if spaced else " ".join(p for p in pieces if p)


def target_id(model: HookedTransformer, token: str | int) -> int:
    """`token_id`, except that a target of several tokens (`" Abuja"` -> `' Ab' 'uja'`) is read by
    its first token, with a warning that says so (the first token is what the next position
    predicts). A text the vocabulary cannot spell at all is still a KeyError.

    Example:
        >>> target_id(model, " Abuja")   # UserWarning: ' Abuja' is 2 tokens ...; tracking ' Ab'
    """
    try:
        return token_id(model, token)
    except KeyError:
        if not isinstance(token, str):
            raise
        text = token if token.startswith(" ") or space_mark(model) is None else " " + token
        ids = model.tokenizer(text, add_special_tokens=False)["input_ids"]
        unk = getattr(model.tokenizer, "unk_token_id", None)
        if len(ids) < 2 or unk in ids:
            raise
        pieces = model.tokenizer.convert_ids_to_tokens(ids)
        warnings.warn(f"{token!r} is {len(ids)} tokens in {model.cfg.model_name!r}'s vocabulary ({pieces}); "
                      f"tracking its first token {pieces[0]!r} (id {ids[0]})", UserWarning, stacklevel=3)
        return int(ids[0])


def _warn_forms(model: HookedTransformer, word: str, spaced: int, bare: int) -> None:
    key = (model.cfg.model_name, word)
    if key not in _warned_forms:
        _warned_forms.add(key)
        warnings.warn(
            f"{word!r} has two forms in {model.cfg.model_name!r}'s vocabulary: {' ' + word!r} (id {spaced}), "
            f"which follows a word, and {word!r} (id {bare}), which starts a text or a line; using "
            f"{' ' + word!r} (id {spaced}). Pass {' ' + word!r} to choose it silently, or space=False "
            f"(or the id {bare}) for the other.",
            UserWarning,
            stacklevel=3,
        )


def token_ids(
    model: HookedTransformer, tokens: str | int | Sequence[str | int], *, space: bool | None = None
) -> list[int]:
    """`token_id` of one token or each of several."""
    if isinstance(tokens, (str, numbers.Integral)):
        tokens = [tokens]
    return [token_id(model, t, space=space) for t in tokens]
