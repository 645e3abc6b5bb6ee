"""Checkpoints on disk: a Hugging Face model folder or a GGUF file, loaded with no hub access.

`interp.load_model(path)` comes here. A **folder** holds `config.json`, weights as
`*.safetensors` and the tokenizer files; it loads in float32 with `local_files_only`, converts
(`interp.core.convert`) and is checked against the Hugging Face model. A **GGUF file** (the
llama.cpp format, weights usually quantised) is dequantised by transformers (it needs the `gguf`
package); that, and rebuilding the tokenizer from the GGUF's vocabulary, takes tens of seconds,
so the converted weights, the config and the tokenizer are cached under
`interp.core.cache.cache_dir() / "models"`, keyed by the file's SHA-256, and later loads read
that entry (about a second). The logit difference measured at conversion is stored with it.

What each load did is kept per model object (`load_report(model)`), which `model_info` shows.

Example:
    >>> model = interp.load_model("path/to/SmolLM2-135M-Instruct.Q4_1.gguf")
    >>> interp.model_info(model).logit_gap < 1e-2
    True
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformer_lens import HookedTransformer

from interp.core.convert import LOGIT_TOLERANCE, build_hooked, hooked_from_hf, tl_config, tokenizer_adds_bos

_FORMAT = "interp-gguf-1"
_GGUF_MAGIC = b"GGUF"
_EXPECTED = "a Hugging Face model folder (config.json, *.safetensors, tokenizer files) or a .gguf file"
_REPORTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class LoadReport:
    """Where a model came from and how well its conversion matched the original.

    Attributes:
        source: the folder or file it was loaded from.
        logit_gap: largest difference of centred logits against the Hugging Face model
            (`interp.core.convert.logit_gap`), measured when the checkpoint was converted.
        tolerance: the bound `logit_gap` was checked against.
        cached: True when the weights came from the conversion cache.
    """

    source: str
    logit_gap: float | None
    tolerance: float = LOGIT_TOLERANCE
    cached: bool = False


def load_report(model: HookedTransformer) -> LoadReport | None:
    """How `model` was loaded from a checkpoint, or None for other models."""
    return _REPORTS.get(model)


def looks_like_path(name: str) -> bool:
    """True when `name` should be read as a path rather than a model name."""
    return (
        Path(name).expanduser().exists()
        or name.lower().endswith(".gguf")
        or name.startswith(("/", "./", "../", "~", "\\"))
        or (len(name) > 1 and name[1] == ":")
    )


def load_checkpoint(
    path: str | os.PathLike,
    *,
    name: str | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
) -> HookedTransformer:
    """Load a Hugging Face folder or a GGUF file as a `HookedTransformer`.

    Args:
        path: the folder or the `.gguf` file.
        name: the model's `model_name` (its profile is found by it); the folder's or file's name
            when None.
        device: where the model goes (conversion runs on the CPU).
        dtype: the model's dtype after the check (which runs in float32); float32 when None.

    Raises:
        ValueError: the path is neither a model folder nor a GGUF file, the GGUF is unreadable,
            or the architecture cannot be converted (each message names the path).
        interp.core.convert.LogitMismatchError: the converted model disagrees with the original.
    """
    where = Path(path).expanduser()
    if not where.exists():
        raise ValueError(f"model path {str(path)!r} does not exist: expected {_EXPECTED}")
    if where.is_dir():
        model, report = _load_folder(where, name or where.resolve().name)
    elif _is_gguf(where):
        model, report = _load_gguf(where, name or where.stem)
    else:
        raise ValueError(f"model path {str(path)!r} is a file but not a GGUF file (it does not start "
                         f"with the GGUF magic bytes): expected {_EXPECTED}")
    if torch.device(device) != torch.device(str(model.cfg.device)):
        model = model.to(device)
    if dtype is not None and dtype != torch.float32:
        model = model.to(dtype)
    model.eval()
    _REPORTS[model] = report
    _ensure_profile(model)
    return model


def _is_gguf(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == _GGUF_MAGIC


def _load_folder(folder: Path, name: str) -> tuple[HookedTransformer, LoadReport]:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from interp.core.convert import architecture

    if not (folder / "config.json").is_file():
        raise ValueError(f"model folder {str(folder)!r} has no config.json: expected {_EXPECTED}")
    if not any(folder.glob("*.safetensors")):
        raise ValueError(f"model folder {str(folder)!r} has no *.safetensors weights: expected {_EXPECTED}")
    try:
        hf_config = AutoConfig.from_pretrained(folder, local_files_only=True)
    except (ValueError, OSError, json.JSONDecodeError) as err:
        raise ValueError(f"model folder {str(folder)!r}: config.json is unreadable ({err})") from err
    architecture(hf_config, repr(str(folder)))  # fail before reading any weights
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (ValueError, OSError) as err:
        raise ValueError(f"model folder {str(folder)!r} has no usable tokenizer files ({err}): "
                         f"expected {_EXPECTED}") from err
    hf_model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, local_files_only=True)
    hf_model.eval()
    model, gap = hooked_from_hf(hf_model, tokenizer, name=name, where=repr(str(folder)))
    return model, LoadReport(source=str(folder.resolve()), logit_gap=gap)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in 8 MB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 23), b""):
            h.update(chunk)
    return h.hexdigest()


def gguf_entry(path: Path) -> Path:
    """The cache folder holding the conversion of the GGUF file at `path`."""
    from interp.core.cache import cache_dir

    return cache_dir() / "models" / f"{path.stem}-{file_sha256(path)[:16]}"


def _load_gguf(path: Path, name: str) -> tuple[HookedTransformer, LoadReport]:
    from transformers import AutoTokenizer

    entry = gguf_entry(path)
    cached = _read_entry(entry, name, path)
    if cached is not None:
        return cached
    hf_model, tokenizer = _dequantise(path)
    # The tokenizer and config go to the entry first: TransformerLens reloads the tokenizer from
    # its folder, which must outlive this call. The entry counts only once its weights are written.
    staging = Path(tempfile.mkdtemp(dir=_mkdir(entry.parent), prefix=f".{entry.name}."))
    try:
        tokenizer.save_pretrained(staging)
        hf_model.config.save_pretrained(staging)
        shutil.rmtree(entry, ignore_errors=True)
        os.replace(staging, entry)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    tokenizer = AutoTokenizer.from_pretrained(entry, local_files_only=True)
    model, gap = hooked_from_hf(hf_model, tokenizer, name=name, where=repr(str(path)))
    _save_weights(entry, model, gap, path)
    return model, LoadReport(str(path.resolve()), gap)


def _mkdir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


#: GGUF `general.architecture` values of the architectures `interp.core.convert` supports.
GGUF_ARCHITECTURES = ("llama", "mistral", "qwen2", "gemma", "gemma2", "gpt2")


_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


def gguf_architecture(path: Path) -> str:
    """A GGUF file's `general.architecture`, read from its header (the key-value pairs that open
    the file) without parsing the rest, checked against `GGUF_ARCHITECTURES`.

    Raises:
        ValueError: the header is damaged, or the architecture is not supported.
    """
    import struct

    def fail(why: str) -> ValueError:
        return ValueError(f"GGUF file {str(path)!r} is corrupt or truncated ({why}); expected an intact GGUF file")

    with open(path, "rb") as f:
        def read(fmt: str):
            size = struct.calcsize("<" + fmt)
            raw = f.read(size)
            if len(raw) != size:
                raise fail("the header ends early")
            return struct.unpack("<" + fmt, raw)[0]

        def text() -> str:
            return f.read(read("Q")).decode("utf-8", errors="replace")

        def value(kind: int):
            if kind in _SCALARS:
                return read(_SCALARS[kind])
            if kind == 8:
                return text()
            if kind == 9:
                item, count = read("I"), read("Q")
                return [value(item) for _ in range(count)]
            raise fail(f"unknown value type {kind}")

        if f.read(4) != _GGUF_MAGIC or read("I") not in (2, 3):
            raise fail("not GGUF version 2 or 3")
        read("Q")
        for _ in range(read("Q")):
            key, found = text(), value(read("I"))
            if key == "general.architecture":
                break
        else:
            raise fail("no general.architecture in its header")
    if found not in GGUF_ARCHITECTURES:
        raise ValueError(f"GGUF file {str(path)!r} holds a {found!r} model, which cannot be converted to a "
                         f"HookedTransformer here; supported: {', '.join(GGUF_ARCHITECTURES)}")
    return found


def _dequantise(path: Path) -> tuple[Any, Any]:
    """The float32 Hugging Face model and tokenizer of a GGUF file."""
    gguf_architecture(path)
    try:
        import gguf  # noqa: F401
    except ImportError as err:
        raise ImportError(f"reading {str(path)!r} needs the gguf package: pip install gguf") from err
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where = dict(pretrained_model_name_or_path=path.parent, gguf_file=path.name, local_files_only=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(**where)
        hf_model = AutoModelForCausalLM.from_pretrained(**where, dtype=torch.float32)
    except Exception as err:  # the GGUF reader raises ValueError, KeyError, struct.error, ... on damage
        raise ValueError(
            f"GGUF file {str(path)!r} could not be read as a model ({type(err).__name__}: {err}); "
            f"expected an intact GGUF file"
        ) from err
    hf_model.eval()
    return hf_model, tokenizer


def _save_weights(folder: Path, model: HookedTransformer, gap: float | None, source: Path) -> None:
    """Write the converted weights into the entry, atomically (`interp.core.cache.save`)."""
    from interp.core.cache import save

    meta = {"format": _FORMAT, "source": str(source.resolve()), "logit_gap": repr(gap),
            "tolerance": repr(LOGIT_TOLERANCE), "default_prepend_bos": str(model.cfg.default_prepend_bos)}
    save(folder / "model.safetensors", dict(model.named_parameters()), meta)  # buffers are rebuilt


def _read_entry(entry: Path, name: str, source: Path) -> tuple[HookedTransformer, LoadReport] | None:
    """The cached conversion, or None when it is missing, corrupt or from another format."""
    weights = entry / "model.safetensors"
    if not weights.is_file():
        return None
    try:
        from safetensors import safe_open
        from safetensors.torch import load_file
        from transformers import AutoConfig, AutoTokenizer

        with safe_open(str(weights), framework="pt") as f:
            meta = f.metadata() or {}
        if meta.get("format") != _FORMAT:
            return None
        tokenizer = AutoTokenizer.from_pretrained(entry, local_files_only=True)
        hf_config = AutoConfig.from_pretrained(entry, local_files_only=True)
        cfg = tl_config(hf_config, name=name, prepend_bos=tokenizer_adds_bos(tokenizer), where=repr(str(source)))
        model = build_hooked(cfg, tokenizer)
        params = load_file(str(weights))
        if set(params) != {name for name, _ in model.named_parameters()}:
            return None
        model.load_state_dict(params, strict=False)
    except Exception:  # a corrupt or mismatched entry is rebuilt, never trusted
        return None
    gap = None if meta.get("logit_gap") in (None, "None") else float(meta["logit_gap"])
    return model, LoadReport(str(source.resolve()), gap, float(meta.get("tolerance", LOGIT_TOLERANCE)), cached=True)


def _ensure_profile(model: HookedTransformer) -> None:
    """Give a checkpoint with no registered profile one derived from its own tokenizer: chat when
    the tokenizer carries a chat template (the checkpoint says it is a chat model)."""
    from interp.core.profiles import derive_profile, has_profile, set_profile

    if not has_profile(model):
        tok = model.tokenizer
        set_profile(model, derive_profile(model, chat=bool(getattr(tok, "chat_template", None))))
