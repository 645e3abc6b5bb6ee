"""Checkpoints on disk: a Hugging Face model folder or a GGUF file, loaded with no hub access.

`interp.load_model(path)` comes here. A **folder** holds `config.json`, weights as
`*.safetensors` and the tokenizer files; it is loaded strictly (`interp.core.bridge.load_folder`:
every tensor checked against `config.json`, every weight finite) and wrapped in a
`TransformerBridge`. A **GGUF file** (the llama.cpp format, weights usually quantised) is
dequantised by transformers (it needs the `gguf` package), refused when its tensors do not
make the model its architecture label names, and saved once as a Hugging Face folder under
`interp.core.cache.cache_dir() / "models"`, keyed by the file's SHA-256, with a manifest of
every file's SHA-256 (weights, config, tokenizer) that is verified on every read: a damaged
entry is rebuilt, never used; an unwritable cache folder means no cache, with a warning.

Each load also compares the bridge's logits with the Hugging Face model's own on a short prompt
(`logit_gap`, measured before the bridge wraps the model), so a wrapping that computes something
else is an error. What each load checked is kept per model object (`load_report(model)`), which
`model_info` shows.

Example:
    >>> model = interp.load_model("path/to/SmolLM2-135M-Instruct.Q4_1.gguf")
    >>> interp.model_info(model).checks
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from interp.core.bridge import CheckpointError, boot, check_architecture, load_folder, quiet_loading, tied_head

_FORMAT = "interp-hf-1"
_GGUF_MAGIC = b"GGUF"
_EXPECTED = "a Hugging Face model folder (config.json, *.safetensors, tokenizer files) or a .gguf file"
_REPORTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: Largest allowed difference of centred logits between the bridge and the Hugging Face model it
#: wraps, on `CHECK_PROMPT`.
LOGIT_TOLERANCE = 1e-2
CHECK_PROMPT = "The capital of France is Paris. The capital of Japan is"
#: GGUF `general.architecture` values read here (transformers' GGUF loader and the bridge).
GGUF_ARCHITECTURES = ("llama", "mistral", "qwen2", "gemma", "gemma2", "gpt2")


class LogitMismatchError(RuntimeError):
    """The bridged model's logits differ from the Hugging Face model's beyond the tolerance."""


@dataclass(frozen=True)
class LoadReport:
    """Where a model came from and what its load checked.

    Attributes:
        source: the folder or file it was loaded from.
        logit_gap: largest difference of centred logits between the bridge and the Hugging Face
            model it wraps on `CHECK_PROMPT` (None when read from a verified cache entry).
        tolerance: the bound `logit_gap` was checked against.
        cached: True when the weights came from the cache.
        checks: what was checked against what, one line each.
    """

    source: str
    logit_gap: float | None
    tolerance: float = LOGIT_TOLERANCE
    cached: bool = False
    checks: tuple[str, ...] = ()


def load_report(model: Any) -> LoadReport | None:
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
    device: torch.device | str | None = "cpu",
    dtype: torch.dtype | None = None,
    device_map: str | dict | None = None,
    max_memory: dict | None = None,
) -> Any:
    """Load a Hugging Face folder or a GGUF file as a `TransformerBridge`.

    Args:
        path: the folder or the `.gguf` file.
        name: the model's `model_name` (its profile is found by it); the folder's or file's name
            when None.
        device: where the model goes.
        dtype: the model's dtype; float32 when None.
        device_map, max_memory: spread the blocks over devices with accelerate (`device` None).

    Raises:
        ValueError: the path is neither a model folder nor a GGUF file, the GGUF is unreadable,
            or its tensors disagree with its architecture (each message names the path).
        interp.core.bridge.CheckpointError: a folder's tensors disagree with its config.
        LogitMismatchError: the bridge computes other logits than the Hugging Face model.
    """
    where = Path(path).expanduser()
    if not where.exists():
        raise ValueError(f"model path {str(path)!r} does not exist: expected {_EXPECTED}")
    spread = {"device_map": device_map, "max_memory": max_memory} if device_map is not None else {}
    if where.is_dir():
        model, report = _load_folder(where, name or where.resolve().name, device, dtype, spread)
    elif _is_gguf(where):
        model, report = _load_gguf(where, name or where.stem, device, dtype, spread)
    else:
        raise ValueError(f"model path {str(path)!r} is a file but not a GGUF file (it does not start "
                         f"with the GGUF magic bytes): expected {_EXPECTED}")
    _REPORTS[model] = report
    ensure_profile(model)
    return model


def _is_gguf(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == _GGUF_MAGIC


def _reference(hf_model: Any, tokenizer: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The check prompt's tokens and the Hugging Face model's own logits on them."""
    tokens = torch.tensor([tokenizer(CHECK_PROMPT)["input_ids"]], device=next(hf_model.parameters()).device)
    with torch.inference_mode():
        return tokens, hf_model(tokens).logits.float()


def _checked(model: Any, reference: tuple[torch.Tensor, torch.Tensor], where: str) -> float:
    tokens, theirs = reference
    with torch.inference_mode():
        ours = model(tokens).float()
    gap = float(((ours - ours.mean(-1, keepdim=True)) - (theirs - theirs.mean(-1, keepdim=True))).abs().max())
    if not gap <= LOGIT_TOLERANCE:
        raise LogitMismatchError(
            f"{where}: the bridged model's logits differ from the Hugging Face model's by up to {gap:.3g} "
            f"(centred logits on {CHECK_PROMPT!r}); the tolerance is {LOGIT_TOLERANCE}"
        )
    return gap


def _load_folder(folder: Path, name: str, device: Any, dtype: Any, spread: dict) -> tuple[Any, LoadReport]:
    from transformers import AutoConfig, AutoTokenizer

    if not (folder / "config.json").is_file():
        raise ValueError(f"model folder {str(folder)!r} has no config.json: expected {_EXPECTED}")
    if not any(folder.glob("*.safetensors")):
        raise ValueError(f"model folder {str(folder)!r} has no *.safetensors weights: expected {_EXPECTED}")
    try:
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
    except (ValueError, OSError, KeyError, json.JSONDecodeError) as err:
        raise ValueError(f"model folder {str(folder)!r}: config.json is unreadable ({err})") from err
    check_architecture(config, repr(str(folder)))  # before any weights are read
    try:
        AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (ValueError, OSError) as err:
        raise ValueError(f"model folder {str(folder)!r} has no usable tokenizer files ({err}): "
                         f"expected {_EXPECTED}") from err
    seen: dict[str, Any] = {}

    def read_reference(loaded: dict[str, Any]) -> None:
        seen["reference"] = _reference(loaded["hf_model"], loaded["tokenizer"])
        seen["n_tensors"] = loaded["n_tensors"]

    model = load_folder(folder, name=name, device=device, dtype=dtype, before_boot=read_reference, **spread)
    gap = _checked(model, seen["reference"], repr(str(folder)))
    checks = (f"tensors: names and shapes against config.json ({seen['n_tensors']} tensors)",
              "weights: all finite",
              f"logits: the bridge against the Hugging Face model on a {seen['reference'][0].shape[1]}-token prompt "
              f"(gap {gap:.2g} <= {LOGIT_TOLERANCE})")
    return model, LoadReport(source=str(folder.resolve()), logit_gap=gap, checks=checks)


# --- GGUF files -----------------------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in 8 MB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 23), b""):
            h.update(chunk)
    return h.hexdigest()


def gguf_entry(path: Path) -> Path:
    """The cache folder holding the dequantised Hugging Face checkpoint of the GGUF file at `path`."""
    from interp.core.cache import cache_dir

    return cache_dir() / "models" / f"{path.stem}-{file_sha256(path)[:16]}"


def _load_gguf(path: Path, name: str, device: Any, dtype: Any, spread: dict) -> tuple[Any, LoadReport]:
    entry = gguf_entry(path)
    label = gguf_architecture(path)
    if not _verified(entry, path) and spread:  # accelerate spreads a checkpoint folder: write the entry first
        hf_model, tokenizer = _dequantise(path)
        _write_entry(entry, hf_model, tokenizer, path)
        del hf_model
        if not _verified(entry, path):
            raise RuntimeError(f"device_map needs the dequantised {path.name} in a writable cache folder "
                               f"({entry.parent}); set INTERP_CACHE_DIR to one")
    if _verified(entry, path):
        model, report = _load_folder(entry, name, device, dtype, spread)
        checks = (f"cache: SHA-256 of every file of {entry.name} (weights, config, tokenizer) against its manifest",
                  f"GGUF: architecture {label!r} matched its tensors when the entry was written", *report.checks)
        return model, LoadReport(str(path.resolve()), report.logit_gap, cached=True, checks=checks)
    hf_model, tokenizer = _dequantise(path)
    _write_entry(entry, hf_model, tokenizer, path)
    if dtype is not None:
        hf_model.to(dtype)
    hf_model.to(device)
    reference = _reference(hf_model, tokenizer)
    model = boot(hf_model, tokenizer, name=name, device=device)
    gap = _checked(model, reference, repr(str(path)))
    checks = (f"GGUF: architecture {label!r} against its tensors (none missing, none unused)",
              "weights: all finite",
              f"logits: the bridge against the Hugging Face model (gap {gap:.2g} <= {LOGIT_TOLERANCE})")
    return model, LoadReport(str(path.resolve()), gap, checks=checks)


def _write_entry(entry: Path, hf_model: Any, tokenizer: Any, source: Path) -> None:
    """Save the checkpoint, then its manifest, into a staging folder swapped in whole; an
    unwritable cache folder warns once and leaves no entry."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=entry.parent, prefix=f".{entry.name}."))
    except OSError as err:
        warnings.warn(f"cache folder {entry.parent} is not writable ({err}); {source.name} is not cached "
                      "and will be dequantised again next time", RuntimeWarning, stacklevel=4)
        return
    try:
        _save_checkpoint(hf_model, staging)
        tokenizer.save_pretrained(staging)
        files = {p.name: file_sha256(p) for p in sorted(staging.iterdir()) if p.is_file()}
        (staging / "manifest.json").write_text(json.dumps(
            {"format": _FORMAT, "source": str(source.resolve()), "files": files}, indent=1))
        shutil.rmtree(entry, ignore_errors=True)
        os.replace(staging, entry)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        warnings.warn(f"could not write the cache entry {entry} ({err}); {source.name} is not cached",
                      RuntimeWarning, stacklevel=4)


def _save_checkpoint(hf_model: Any, folder: Path) -> None:
    """`config.json` + `model.safetensors` of a dequantised model (transformers will not
    `save_pretrained` a model it read from GGUF); a tied unembedding is stored once."""
    from safetensors.torch import save_file

    config = hf_model.config
    config.architectures = config.architectures or [type(hf_model).__name__]
    skip = tied_head(hf_model)
    state = {k: v.detach().contiguous() for k, v in hf_model.state_dict().items() if k != skip}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(folder)
    raw = json.loads((folder / "config.json").read_text())
    if raw.pop("quantization_config", None) is not None:  # the entry holds plain float weights
        (folder / "config.json").write_text(json.dumps(raw, indent=2))


def _verified(entry: Path, source: Path) -> bool:
    """Whether the entry is whole: its manifest lists every file, with the SHA-256 it has now."""
    try:
        manifest = json.loads((entry / "manifest.json").read_text())
        files = manifest["files"]
        present = {p.name for p in entry.iterdir() if p.is_file()} - {"manifest.json"}
        if manifest.get("format") != _FORMAT or set(files) != present or not files:
            raise ValueError("the manifest does not list the entry's files")
        for file, digest in files.items():
            if file_sha256(entry / file) != digest:
                raise ValueError(f"{file} has changed since it was written")
    except FileNotFoundError:
        return False
    except (OSError, ValueError, KeyError, TypeError) as err:
        warnings.warn(f"the cache entry {entry} for {source.name} is damaged ({err}); rebuilding it",
                      RuntimeWarning, stacklevel=4)
        return False
    return True


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
        raise ValueError(f"GGUF file {str(path)!r} holds a {found!r} model, which cannot be read here; "
                         f"supported: {', '.join(GGUF_ARCHITECTURES)}")
    return found


def _dequantise(path: Path) -> tuple[Any, Any]:
    """The float32 Hugging Face model and tokenizer of a GGUF file, refused when the tensors do
    not make the model its architecture label names (transformers only warns, then initialises
    what is missing at random)."""
    label = gguf_architecture(path)
    try:
        import gguf  # noqa: F401
    except ImportError as err:
        raise ImportError(f"reading {str(path)!r} needs the gguf package: pip install gguf") from err
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where = dict(pretrained_model_name_or_path=path.parent, gguf_file=path.name, local_files_only=True)
    try:
        with quiet_loading():
            tokenizer = AutoTokenizer.from_pretrained(**where)
            hf_model, info = AutoModelForCausalLM.from_pretrained(
                **where, dtype=torch.float32, attn_implementation="eager", output_loading_info=True)
    except Exception as err:  # the GGUF reader raises ValueError, KeyError, struct.error, ... on damage
        raise ValueError(
            f"GGUF file {str(path)!r} could not be read as a model ({type(err).__name__}: {err}); "
            f"expected an intact GGUF file"
        ) from err
    missing = [k for k in info.get("missing_keys", []) if k != tied_head(hf_model)]
    unused = list(info.get("unexpected_keys", [])) + list(info.get("mismatched_keys", []))
    if missing or unused:
        raise ValueError(f"GGUF file {str(path)!r} says it holds a {label!r} model, but its tensors do not make "
                         f"one: missing {missing[:5]}, unused or mis-shaped {unused[:5]}")
    for key, param in hf_model.state_dict().items():
        if param.is_floating_point() and not bool(torch.isfinite(param).all()):
            raise CheckpointError(f"GGUF file {str(path)!r}: tensor {key} holds NaN or infinite values")
    return hf_model.eval(), tokenizer


def ensure_profile(model: Any) -> None:
    """Give a checkpoint with no registered profile one derived from its own tokenizer: chat when
    the tokenizer carries a chat template (the checkpoint says it is a chat model)."""
    from interp.core.profiles import derive_profile, has_profile, set_profile

    if not has_profile(model):
        tok = model.tokenizer
        set_profile(model, derive_profile(model, chat=bool(getattr(tok, "chat_template", None))))
