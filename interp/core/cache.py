"""On-disk cache of computed tensors (safetensors only, written atomically).

Mean activations, directions and feature top-k lists are worth keeping between sessions. An
entry's key is a hash of the model's identity (its name plus a fingerprint of its weights) and
the call's arguments; the arguments are also stored in the file's metadata and checked on load,
so an entry that is corrupt or does not match is recomputed and overwritten, never trusted.

The directory is `$INTERP_CACHE_DIR`, else `cache/` in the project checkout, else
`~/.cache/interp`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from transformer_lens import HookedTransformer

ENV_VAR = "INTERP_CACHE_DIR"
_FORMAT = "interp-cache-1"


def cache_dir() -> Path:
    """Where cache entries live (created on demand)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").exists():
        return checkout / "cache"
    return Path.home() / ".cache" / "interp"


def fingerprint(model: HookedTransformer, samples_per_tensor: int = 4096) -> str:
    """A short hash of a model's name, shape and weights.

    Every parameter contributes a strided sample of its values, so two models that differ in
    any weight matrix (a fine-tune, an orthogonalized copy) get different fingerprints, at a
    cost of a few milliseconds even for large models.
    """
    cfg = model.cfg
    header = f"{cfg.model_name}|{cfg.n_layers}|{cfg.d_model}|{cfg.d_vocab}"
    return fingerprint_weights(header, model.named_parameters(), samples_per_tensor)


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
            sample = flat[::step].to(device="cpu", dtype=torch.float32)
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


def save(path: Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> None:
    """Write a safetensors file atomically: a temp file in the same folder, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, tmp, metadata=dict(metadata))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load(path: Path, expected: Mapping[str, str]) -> dict[str, torch.Tensor] | None:
    if not path.exists():
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if any(meta.get(k) != v for k, v in expected.items()):
            return None
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError):
        return None


def cached(
    model: HookedTransformer,
    namespace: str,
    args: Mapping[str, Any],
    compute: Callable[[], Mapping[str, torch.Tensor]],
    *,
    enabled: bool = True,
) -> dict[str, torch.Tensor]:
    """Return the cached tensors for (model, namespace, args), computing and storing them if needed.

    Args:
        model: the model whose identity keys the entry.
        namespace: a folder name per kind of result, e.g. `"mean_acts"`.
        args: everything else the result depends on (JSON-able; stored in the metadata).
        compute: produces the tensors when there is no valid entry.
        enabled: False skips the cache entirely.

    Example:
        >>> means = cached(model, "mean_acts", {"layer": 3, "prompts": h}, lambda: {"mean": m()})
    """
    if not enabled:
        return dict(compute())
    path = entry_path(model, namespace, args)
    expected = {"format": _FORMAT, "model": fingerprint(model), "namespace": namespace, "args": _canonical(args)}
    hit = _load(path, expected)
    if hit is not None:
        return hit
    result = dict(compute())
    save(path, result, expected)
    return result
