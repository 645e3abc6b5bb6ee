"""Loading models and SAEs, picking devices, tokenizing, chat templates.

This is the only module that touches the model hub; every technique takes a
`HookedTransformer` and asks this module how to tokenize for it, so a model a user built
themselves works everywhere too. TransformerLens 4 drops `HookedTransformer`; keeping model
access here means that move touches one module.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import torch
from jaxtyping import Int
from transformer_lens import HookedTransformer

if TYPE_CHECKING:  # pragma: no cover
    from sae_lens import SAE

_T = TypeVar("_T")

TOY = "toy"
#: Names shown in errors and the app; any other TransformerLens official name loads too.
SUPPORTED_MODELS: tuple[str, ...] = (
    TOY,
    "gpt2",
    "gpt2-medium",
    "gpt2-large",
    "gpt2-xl",
    "gemma-2-2b",
    "gemma-2-2b-it",
    "gemma-2-9b",
    "gemma-2-9b-it",
)
_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


class ModelNotAvailableError(RuntimeError):
    """Weights are neither cached locally nor downloadable."""


def default_device() -> torch.device:
    """The best available device: cuda, then mps, then cpu."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """Validate a device request, or pick one with `default_device` when it is None."""
    if device is None:
        return default_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device {device!r} is not a torch device; use 'cpu', 'cuda', 'cuda:0' or 'mps'") from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available; use 'cpu' or None")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} does not exist: {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"device {device!r} requested but MPS is not available; use 'cpu' or None")
    elif dev.type != "cpu":
        raise ValueError(f"device {device!r} is not supported; use 'cpu', 'cuda' or 'mps'")
    return dev


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """Accept a torch dtype or one of 'float32', 'float16', 'bfloat16' (and short forms)."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype in _DTYPES:
        return _DTYPES[dtype]
    raise ValueError(f"dtype {dtype!r} is not supported; use one of {sorted(_DTYPES)}")


_HUB_CLIENTS = {"huggingface_hub", "requests", "httpx", "urllib3"}  # they raise their own HTTP error types


def _from_hub(load: Callable[[], _T], what: str, call: str, offline: str) -> _T:
    """`load()`, with a failure to find the weights locally or on the hub turned into one
    `ModelNotAvailableError` that says how to get them (`call`, run once online) and what works
    offline instead."""
    try:
        return load()
    except Exception as err:
        if not isinstance(err, (OSError, ConnectionError, TimeoutError)) and (
            type(err).__module__.split(".")[0] not in _HUB_CLIENTS
        ):
            raise
        raise ModelNotAvailableError(
            f"Could not load {what}: not in the local Hugging Face cache and the hub could not be "
            f"reached ({type(err).__name__}). To get them, run `{call}` once on a machine with internet "
            f"access (the weights land in the Hugging Face cache), or copy a cache that has them and "
            f"point HF_HOME at it. {offline}"
        ) from err


def load_model(
    name: str = TOY,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> HookedTransformer:
    """Load a model by TransformerLens name, or the built-in model `"toy"`.

    Args:
        name: `"toy"` (shipped with the package, works offline) or a TransformerLens name
            such as `"gpt2"`, `"gpt2-medium"`, `"gemma-2-2b"`, `"gemma-2-2b-it"`.
        device: where to put the model; cuda, then mps, then cpu when None.
        dtype: e.g. `torch.bfloat16` or `"bfloat16"`; the checkpoint's default when None.

    Returns:
        A `HookedTransformer` in eval mode.

    Raises:
        ValueError: unknown name, device or dtype.
        ModelNotAvailableError: hub weights are neither cached nor downloadable.

    Example:
        >>> model = interp.load_model("toy")
        >>> model.cfg.n_layers
        4
    """
    dev = resolve_device(device)
    dt = resolve_dtype(dtype)
    if name == TOY:
        from interp.toy import load_toy

        return load_toy(device=dev, dtype=dt)
    from transformer_lens.loading_from_pretrained import get_official_model_name

    try:
        get_official_model_name(name)
    except ValueError:
        raise ValueError(
            f"unknown model {name!r}; supported: {', '.join(SUPPORTED_MODELS)} "
            "(or any TransformerLens official model name)"
        ) from None
    kwargs = {"device": str(dev)}
    if dt is not None:
        kwargs["dtype"] = dt
    def load() -> HookedTransformer:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return HookedTransformer.from_pretrained(name, **kwargs)

    model = _from_hub(load, f"the weights of {name!r}", f"interp.load_model({name!r})",
                      f"The built-in model works offline: interp.load_model({TOY!r}).")
    model.eval()
    return model


@dataclass(frozen=True)
class ModelInfo:
    """The facts about a model that people check first."""

    name: str
    n_layers: int
    d_model: int
    d_mlp: int | None
    n_heads: int
    d_vocab: int
    n_ctx: int
    n_params: int
    device: str
    dtype: str
    chat: bool

    def to_frame(self):
        """One row per fact, for display."""
        import pandas as pd

        return pd.DataFrame({"value": [str(v) for v in self.__dict__.values()]}, index=list(self.__dict__))


def model_info(model: HookedTransformer) -> ModelInfo:
    """Summarise a model: name, layers, widths, vocabulary, context, parameters, device.

    Example:
        >>> interp.model_info(interp.load_model("toy")).n_layers
        4
    """
    cfg = model.cfg
    return ModelInfo(
        name=cfg.model_name,
        n_layers=cfg.n_layers,
        d_model=cfg.d_model,
        d_mlp=cfg.d_mlp,
        n_heads=cfg.n_heads,
        d_vocab=cfg.d_vocab,
        n_ctx=cfg.n_ctx,
        n_params=sum(p.numel() for p in model.parameters()),
        device=str(next(model.parameters()).device),
        dtype=str(cfg.dtype).removeprefix("torch."),
        chat=is_chat_model(model),
    )


# --- chat templates ---------------------------------------------------------------------------

_GEMMA_TEMPLATE = "<start_of_turn>user\n{prompt}<end_of_turn>\n<start_of_turn>model\n"
_TOY_TEMPLATE = "user : {prompt} assistant :"


def is_chat_model(model: HookedTransformer) -> bool:
    """True for instruction-tuned models (`-it`, `-chat`, `-instruct`) and the built-in model."""
    name = model.cfg.model_name.lower()
    return name == TOY or any(tag in name for tag in ("-it", "chat", "instruct"))


def chat_template(model: HookedTransformer) -> str:
    """The template (with a `{prompt}` slot) that wraps a user request for this model.

    Plain models get `"{prompt}"`. The built-in model is trained on `user : ... assistant :`.
    """
    name = model.cfg.model_name.lower()
    if name == TOY:
        return _TOY_TEMPLATE
    if "gemma" in name and is_chat_model(model):
        return _GEMMA_TEMPLATE
    if is_chat_model(model) and model.tokenizer is not None and getattr(model.tokenizer, "chat_template", None):
        text = model.tokenizer.apply_chat_template(
            [{"role": "user", "content": "\x00"}], tokenize=False, add_generation_prompt=True
        )
        return text.replace("{", "{{").replace("}", "}}").replace("\x00", "{prompt}")
    return "{prompt}"


def format_chat(model: HookedTransformer, prompts: str | list[str]) -> list[str]:
    """Wrap each request in the model's chat template.

    Example:
        >>> interp.format_chat(toy, "how do i bake bread")
        ['user : how do i bake bread assistant :']
    """
    if isinstance(prompts, str):
        prompts = [prompts]
    template = chat_template(model)
    return [template.format(prompt=p) for p in prompts]


def post_instruction_length(model: HookedTransformer) -> int:
    """Number of template tokens after the user's request (the positions refusal work reads)."""
    template = chat_template(model)
    suffix = template.split("{prompt}", 1)[1]
    if not suffix:
        return 1
    return max(1, len(model.to_str_tokens(suffix, prepend_bos=False)))


# --- tokenizing -------------------------------------------------------------------------------

_warned_unknown: set[str] = set()


def tokenize(
    model: HookedTransformer,
    prompts: str | list[str],
    *,
    prepend_bos: bool = True,
    padding_side: str = "left",
) -> tuple[Int[torch.Tensor, "batch pos"], Int[torch.Tensor, "batch pos"]]:
    """Tokenize one prompt or a batch, padded, with its attention mask, on the model's device.

    Left padding puts every prompt's last token in the last column, which is what
    generation and last-position reads want. Checks for empty prompts, prompts longer than
    the context, and (for word-level tokenizers) words outside the vocabulary, which become
    `<unk>` with one warning naming them.

    Returns:
        `(tokens, attention_mask)`, both `[batch, pos]`.

    Example:
        >>> tokens, mask = interp.tokenize(model, ["the capital of france is", "hi"])
    """
    if isinstance(prompts, str):
        prompts = [prompts]
    if len(prompts) == 0:
        raise ValueError("no prompts given: expected a string or a non-empty list of strings")
    for i, p in enumerate(prompts):
        if not isinstance(p, str) or not p.strip():
            raise ValueError(f"prompt {i} is {p!r}: expected a non-empty string")
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side {padding_side!r} must be 'left' or 'right'")
    if model.tokenizer is None:
        raise ValueError("model has no tokenizer; pass tokens instead of text")
    rows = [model.to_tokens(p, prepend_bos=prepend_bos, truncate=False)[0] for p in prompts]
    for i, row in enumerate(rows):
        if len(row) > model.cfg.n_ctx:
            raise ValueError(
                f"prompt {i} is {len(row)} tokens long; the model's context is {model.cfg.n_ctx} tokens"
            )
    width = max(len(r) for r in rows)
    pad = model.tokenizer.pad_token_id
    pad = model.tokenizer.eos_token_id if pad is None else pad
    tokens = torch.full((len(rows), width), pad if pad is not None else 0, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        cols = slice(width - len(row), width) if padding_side == "left" else slice(0, len(row))
        tokens[i, cols] = row
        mask[i, cols] = 1
    _warn_unknown(model, prompts)
    return tokens.to(rows[0].device), mask.to(rows[0].device)


def _warn_unknown(model: HookedTransformer, prompts: list[str]) -> None:
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


def token_id(model: HookedTransformer, token: str | int) -> int:
    """The id of a single token, accepting an id or a string (with or without a leading space).

    Raises:
        KeyError: the string is not one token of the vocabulary.

    Example:
        >>> interp.token_id(model, "paris")
    """
    if isinstance(token, int):
        if not 0 <= token < model.cfg.d_vocab:
            raise KeyError(f"token id {token} is outside the vocabulary [0, {model.cfg.d_vocab})")
        return token
    tok = model.tokenizer
    unk = getattr(tok, "unk_token_id", None)
    for candidate in (token, " " + token.lstrip(), "Ġ" + token.lstrip(), "▁" + token.lstrip()):
        found = tok.convert_tokens_to_ids(candidate)  # a lookup, not a copy of a 256k-entry vocabulary
        if isinstance(found, int) and found != unk:
            return found
    ids = model.to_tokens(token, prepend_bos=False)[0]
    if len(ids) == 1 and int(ids[0]) != unk:
        return int(ids[0])
    raise KeyError(f"{token!r} is not a single token in {model.cfg.model_name!r}'s vocabulary")


def offline() -> bool:
    """True when the Hugging Face hub is switched off by environment variable."""
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")


# --- sparse autoencoders ----------------------------------------------------------------------

#: The built-in SAE's release name (trained on the built-in model by `python -m interp.toy.sae_train`).
TOY_SAE_RETRAIN = "python -m interp.toy.sae_train"


def _options(valid: list[str], bad: str, what: str, limit: int = 12) -> str:
    import difflib

    close = difflib.get_close_matches(bad, valid, n=5, cutoff=0.5)
    shown = close or valid[:limit]
    more = "" if len(shown) == len(valid) else f" (and {len(valid) - len(shown)} more)"
    label = "closest" if close else "valid"
    return f"{len(valid)} {what}; {label}: {', '.join(map(repr, shown))}{more}"


def load_sae(
    release: str = TOY,
    sae_id: str | None = None,
    *,
    device: str | torch.device | None = None,
) -> SAE:
    """Load a sparse autoencoder: a sae-lens release, or the built-in SAE `"toy"`.

    Args:
        release: `"toy"` (shipped with the package, works offline) or a sae-lens release such
            as `"gpt2-small-res-jb"` or `"gemma-scope-2b-pt-res-canonical"`.
        sae_id: the SAE within the release, e.g. `"blocks.8.hook_resid_pre"` or
            `"layer_20/width_16k/canonical"`; for `"toy"` it may be omitted.
        device: where to put the SAE; cuda, then mps, then cpu when None.

    Returns:
        A sae-lens `SAE` in eval mode. Check it against a model with `interp.check_sae`.

    Raises:
        ValueError: unknown release or id (the message lists valid ones), or a built-in SAE
            trained for other weights of the built-in model.
        ModelNotAvailableError: the weights are neither cached nor downloadable (or the built-in
            SAE has not been trained yet).

    Example:
        >>> sae = interp.load_sae("toy")
        >>> sae.cfg.metadata.hook_name
        'blocks.2.hook_resid_post'
    """
    dev = resolve_device(device)
    if not isinstance(release, str) or not release:
        raise ValueError(f"release {release!r} must be a non-empty string such as 'toy' or 'gpt2-small-res-jb'")
    if release == TOY:
        return _load_toy_sae(sae_id, dev)
    from sae_lens import SAE
    from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory

    directory = get_pretrained_saes_directory()
    if release not in directory:
        raise ValueError(
            f"unknown SAE release {release!r}: "
            + _options([TOY, *sorted(directory)], release, "releases")
            + f". The built-in SAE is {TOY!r}."
        )
    ids = list(directory[release].saes_map)
    if sae_id is None or sae_id not in directory[release].saes_map:
        raise ValueError(f"unknown sae_id {sae_id!r} for release {release!r}: " + _options(ids, str(sae_id), "ids"))
    def load() -> SAE:
        with no_loading_advice():
            return SAE.from_pretrained(release, sae_id, device=str(dev))

    offline = f"The built-in SAE works offline: interp.load_sae({TOY!r}) with interp.load_model({TOY!r})."
    call = f"interp.load_sae({release!r}, {sae_id!r})"
    sae = _from_hub(load, f"the SAE {release!r} / {sae_id!r}", call, offline)
    sae.eval()
    return sae


@contextmanager
def no_loading_advice() -> Iterator[None]:
    """Silence sae-lens' advice on how to load the model for an SAE: `interp.check_sae` checks it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"\s*This SAE has non-empty model_from_pretrained_kwargs")
        yield


def _load_toy_sae(sae_id: str | None, device: torch.device) -> SAE:
    from sae_lens import SAE

    from interp.cache import fingerprint
    from interp.toy import TOY_DIR, load_toy

    folder = TOY_DIR / "sae"
    if not (folder / "cfg.json").exists():
        raise ModelNotAvailableError(
            f"the built-in SAE has not been trained yet (no {folder / 'cfg.json'}); run `{TOY_SAE_RETRAIN}`"
        )
    with no_loading_advice():
        sae = SAE.load_from_disk(folder, device=str(device))
    hook = sae.cfg.metadata.hook_name
    if sae_id is not None and sae_id != hook:
        raise ValueError(f"unknown sae_id {sae_id!r} for release {TOY!r}: 1 id; valid: {hook!r} (or None)")
    trained_for = sae.cfg.metadata.get("interp_model_fingerprint")
    shipped = fingerprint(load_toy(device="cpu"))
    if trained_for != shipped:
        raise ValueError(
            f"the built-in SAE was trained for other weights of the built-in model (fingerprint "
            f"{trained_for!r}, shipped model {shipped!r}); retrain it with `{TOY_SAE_RETRAIN}`"
        )
    sae.eval()
    return sae
