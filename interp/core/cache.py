"""On-disk cache of computed tensors (safetensors only, written atomically).

Mean activations, directions and feature top-k lists are worth keeping between sessions. An
entry's key is a hash of the model's identity (its name plus a fingerprint of its weights) and
the call's arguments; the arguments are also stored in the file's metadata and checked on load,
so an entry that is corrupt or does not match is recomputed and overwritten, never trusted.

What the cache promises:

- **Never wrong data.** Each entry stores a SHA-256 checksum of its tensors (names, dtypes,
  shapes, bytes) and is verified on every read; an entry whose checksum, metadata, keys,
  shapes or dtypes do not match is recomputed and rewritten, with a warning.
- **No live memory maps.** A hit is read into memory and copied into fresh tensors, so
  rewriting or truncating the file later cannot change (or crash) a result you hold.
- **Atomic writes.** A temporary file in the same folder, then a rename.
- **Never in the way.** An unwritable cache directory warns once and the result is computed
  without caching.

The directory is `$INTERP_CACHE_DIR`, else `cache/` in the project checkout, else
`~/.cache/interp`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from safetensors.torch import save_file
from transformer_lens import HookedTransformer

from interp.core.bridge import checkpoint_weights, header
from interp.core.engine import is_bridge

ENV_VAR = "INTERP_CACHE_DIR"
_FORMAT = "interp-cache-2"  # 2: entries carry a checksum of their tensors
_warned: set[str] = set()


def cache_dir() -> Path:
    """Where cache entries live (created on demand)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").exists():
        return checkout / "cache"
    return Path.home() / ".cache" / "interp"


def fingerprint(model: HookedTransformer, samples_per_tensor: int = 4096) -> str:
    """A short hash of a model's name, shape and weights.

    Every parameter contributes a strided sample of its values, so two models that differ in
    any weight matrix (a fine-tune, an orthogonalized copy) get different fingerprints, at a
    cost of a few milliseconds even for large models. The sample is rounded to bfloat16 before
    hashing, so the fingerprint names the weights, not their dtype: a bfloat16 copy of a float32
    model keeps its vectors, SAEs and cache entries (a float16 copy almost always does too; a
    value that float16 cannot represent changes it).
    """
    cfg = model.cfg
    if is_bridge(model):  # named as the Hugging Face checkpoint names them, so a file has the same one
        hf = model.original_model.config
        return fingerprint_weights(header(cfg.model_name, hf), checkpoint_weights(model), samples_per_tensor)
    return fingerprint_weights(f"{cfg.model_name}|{cfg.n_layers}|{cfg.d_model}|{cfg.d_vocab}",
                               model.named_parameters(), samples_per_tensor)


def fingerprint_weights(
    header: str, weights: Iterable[tuple[str, torch.Tensor]], samples_per_tensor: int = 4096
) -> str:
    """`fingerprint` of named weights without a model: `header` is `"name|n_layers|d_model|d_vocab"`.

    Example (a shipped checkpoint, read without building the model):
        >>> fingerprint_weights("toy|4|128|842", load_file("model.safetensors").items())
    """
    h = hashlib.sha256()
    h.update(header.encode())
    with torch.no_grad():
        for name, p in sorted(weights, key=lambda item: item[0]):
            flat = p.detach().reshape(-1)
            step = max(1, flat.numel() // samples_per_tensor)
            # rounded to bfloat16: a float32 model and its bfloat16 copy share a fingerprint
            sample = flat[::step].to(device="cpu").to(torch.bfloat16).to(torch.float32)
            h.update(name.encode())
            h.update(sample.numpy().tobytes())
    return h.hexdigest()[:16]


def _canonical(args: Mapping[str, Any]) -> str:
    return json.dumps(args, sort_keys=True, default=str, separators=(",", ":"))


def entry_path(model: HookedTransformer, namespace: str, args: Mapping[str, Any]) -> Path:
    """The file an entry for (model, namespace, args) is stored in."""
    if not namespace or "/" in namespace or namespace.startswith("."):
        raise ValueError(f"cache namespace {namespace!r} must be a plain non-empty name")
    key = hashlib.sha256(f"{fingerprint(model)}|{namespace}|{_canonical(args)}".encode()).hexdigest()[:32]
    return cache_dir() / namespace / f"{key}.safetensors"


def checksum(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over the tensors' names, dtypes, shapes and bytes (in name order)."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save(path: Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> None:
    """Write a safetensors file atomically (a temp file in the same folder, then a rename), with a
    checksum of its tensors in the metadata that `read` verifies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
        save_file(cpu, tmp, metadata={**metadata, "checksum": checksum(cpu)})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class CorruptEntry(ValueError):
    """A cache or artifact file that cannot be trusted (unreadable, tampered, or not what was asked)."""


def read(path: str | Path, expected: Mapping[str, str] | None = None) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a file written by `save` into memory (no memory map) and verify it.

    Returns:
        `(tensors, metadata)`.

    Raises:
        CorruptEntry: unreadable, no or wrong checksum, or metadata other than `expected`.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
        header_meta = _metadata(data)
        tensors = {k: v.clone() for k, v in load_bytes(data).items()}
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as err:
        raise CorruptEntry(f"{path} is unreadable: {err}") from err
    want = header_meta.get("checksum")
    if want is None:
        raise CorruptEntry(f"{path} has no checksum (written by an older version or by hand)")
    if want != checksum(tensors):
        raise CorruptEntry(f"{path} fails its checksum: its tensor bytes were changed after it was written")
    for key, value in (expected or {}).items():
        if header_meta.get(key) != value:
            raise CorruptEntry(f"{path} was written for {key}={header_meta.get(key)!r}, not {value!r}")
    return tensors, header_meta


def _metadata(data: bytes) -> dict[str, str]:
    n = int.from_bytes(data[:8], "little")
    if n <= 0 or n > len(data) - 8:
        raise ValueError("bad safetensors header length")
    return dict(json.loads(data[8 : 8 + n]).get("__metadata__") or {})


def _check_expect(tensors: Mapping[str, torch.Tensor], expect: Mapping[str, Any]) -> None:
    for name, shape in expect.items():
        if name not in tensors:
            raise CorruptEntry(f"entry has no tensor {name!r} (has {sorted(tensors)})")
        if shape is not None:
            got = tuple(tensors[name].shape)
            if len(got) != len(shape) or any(w is not None and g != w for g, w in zip(got, shape)):
                raise CorruptEntry(f"entry tensor {name!r} has shape {got}, expected {tuple(shape)}")


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, UserWarning, stacklevel=4)


def cached(
    model: HookedTransformer,
    namespace: str,
    args: Mapping[str, Any],
    compute: Callable[[], Mapping[str, torch.Tensor]],
    *,
    enabled: bool = True,
    expect: Mapping[str, Sequence[int | None] | None] | None = None,
) -> dict[str, torch.Tensor]:
    """Return the cached tensors for (model, namespace, args), computing and storing them if needed.

    Args:
        model: the model whose identity keys the entry.
        namespace: a folder name per kind of result, e.g. `"mean_acts"`.
        args: everything else the result depends on (JSON-able; stored in the metadata).
        compute: produces the tensors when there is no valid entry.
        enabled: False skips the cache entirely.
        expect: tensor names the caller reads, each with its shape (`None` for any size or any
            shape): a hit without them is recomputed, never a raw KeyError later.

    Example:
        >>> means = cached(model, "mean_acts", {"layer": 3, "prompts": h}, lambda: {"mean": m()})
    """
    if not enabled:
        return dict(compute())
    path = entry_path(model, namespace, args)
    expected = {"format": _FORMAT, "model": fingerprint(model), "namespace": namespace, "args": _canonical(args)}
    if path.exists():
        try:
            hit, _ = read(path, expected)
            _check_expect(hit, expect or {})
            return hit
        except CorruptEntry as err:
            warnings.warn(f"cache entry not trusted, recomputing: {err}", UserWarning, stacklevel=2)
    result = dict(compute())
    try:
        save(path, result, expected)
    except OSError as err:
        _warn_once(str(path.parent), f"cache directory {path.parent} is not writable ({err.strerror or err}); "
                   f"computing without the cache (set ${ENV_VAR} to a writable folder)")
    return result
