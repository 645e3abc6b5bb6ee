"""Hugging Face models on the engine: load a checkpoint folder strictly, wrap it in a bridge.

`TransformerBridge.boot_transformers(name, hf_model=..., tokenizer=...)` wraps an already
loaded Hugging Face model: its logits stay the Hugging Face model's own, and it gains
transformer-lens' hook names and weight views. Hugging Face's `from_pretrained` only *warns*
about a tensor the checkpoint lacks (and initialises it at random) or one it does not use, so
`load_folder` compares the checkpoint's tensors with the model's parameters itself, before
anything runs, and refuses non-finite weights.

Example:
    >>> model = boot(hf_model, tokenizer, name="my-model")
    >>> model = load_folder("path/to/checkpoint")
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from interp.core.engine import patch_bridge_cache


class CheckpointError(ValueError):
    """A checkpoint folder whose files disagree with each other (the message names the file)."""


def boot(hf_model: Any, tokenizer: Any, *, name: str, device: str | torch.device | None = None) -> Any:
    """Wrap a loaded Hugging Face causal LM in a `TransformerBridge` (eval mode, no copy)."""
    from transformer_lens.model_bridge import TransformerBridge

    patch_bridge_cache()
    if not getattr(hf_model.config, "architectures", None):  # what save_pretrained records
        hf_model.config.architectures = [type(hf_model).__name__]
    hf_model.eval()
    dispatched = bool(getattr(hf_model, "hf_device_map", None))  # spread by accelerate: the bridge reads the map
    dev = None if dispatched else str(device) if device is not None else str(next(hf_model.parameters()).device)
    bridge = TransformerBridge.boot_transformers(name, hf_model=hf_model, tokenizer=tokenizer, device=dev)
    bridge.eval()
    first = hf_model.get_input_embeddings().weight.device
    with torch.inference_mode():  # the bridge wires its own permanent capture hooks on a first forward:
        bridge(torch.zeros((1, 1), dtype=torch.long, device=first))  # done here, the model a user gets is settled
    return bridge


def check_architecture(config: Any, where: str) -> str:
    """The config's architecture, refused (naming the supported ones) when transformer-lens'
    bridge has no adapter for it."""
    from transformer_lens.factories.architecture_adapter_factory import SUPPORTED_ARCHITECTURES

    names = list(getattr(config, "architectures", None) or [])
    arch = names[0] if names else f"{config.model_type} (no architectures in config.json)"
    if arch not in SUPPORTED_ARCHITECTURES:
        causal = sorted(a for a in SUPPORTED_ARCHITECTURES if a.endswith(("ForCausalLM", "LMHeadModel")))
        raise ValueError(f"{where}: {arch!r} is not supported by transformer-lens' TransformerBridge; "
                         f"supported causal LMs: {', '.join(causal)}")
    return arch


def _tensor_names(folder: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    from safetensors import safe_open

    shapes = {}
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():
                shapes[key] = (tuple(f.get_slice(key).get_shape()), path.name)
    return shapes


def load_folder(
    folder: str | Path, *, name: str | None = None, device: str | torch.device | None = None,
    dtype: torch.dtype | None = None, before_boot: Callable[[dict[str, Any]], None] | None = None,
    device_map: str | dict | None = None, max_memory: dict | None = None,
) -> Any:
    """Load a Hugging Face checkpoint folder (`config.json`, `*.safetensors`, tokenizer files)
    strictly and wrap it in a bridge. `before_boot` sees `{"hf_model", "tokenizer",
    "n_tensors"}` before the bridge wraps the model (e.g. to read its own logits).
    `device_map` / `max_memory` go to accelerate (through `from_pretrained`) to spread the
    blocks over several devices; `device` then must be None.

    Raises:
        CheckpointError: a file is missing; a tensor the model needs is absent, the checkpoint
            holds one the model does not use, or a shape disagrees with `config.json`; a weight
            is NaN or infinite.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise CheckpointError(f"{folder}: config.json is missing")
    stored = _tensor_names(folder)
    if not stored:
        raise CheckpointError(f"{folder}: no *.safetensors weights")
    config = AutoConfig.from_pretrained(folder)
    check_architecture(config, str(folder))
    expected = checkpoint_shapes(config)
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{folder}: the weights do not match config.json ({config.model_type}): "
            f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}"
        )
    for key, (shape, file) in stored.items():
        if shape != expected[key]:
            raise CheckpointError(f"{folder / file}: tensor {key} has shape {shape}; config.json implies {expected[key]}")
    with quiet_loading():
        spread = {"device_map": device_map, "max_memory": max_memory} if device_map is not None else {}
        hf = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype or torch.float32, attn_implementation="eager",
                                                  **spread)
    for key, param in hf.state_dict().items():
        if param.is_floating_point() and not bool(torch.isfinite(param).all()):
            raise CheckpointError(f"{folder}: tensor {key} holds NaN or infinite values")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    label = name or json.loads((folder / "config.json").read_text()).get("model_name") or folder.name
    if device is not None and device_map is None:
        hf.to(device)
    if before_boot is not None:
        before_boot({"hf_model": hf, "tokenizer": tokenizer, "n_tensors": len(stored)})
    return boot(hf, tokenizer, name=label, device=device)


@contextmanager
def quiet_loading() -> Iterator[None]:
    """No "Loading weights" progress bar from transformers (restored as it was)."""
    from transformers.utils import logging

    enabled = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            logging.enable_progress_bar()


def copy_bridge(model: Any) -> Any:
    """A new bridge over a copy of `model`'s Hugging Face weights (the original is not touched).

    A bridge rewires the Hugging Face modules it wraps, so `copy.deepcopy` cannot copy it: the
    same architecture is built afresh from the config, bridged the same way, and every parameter
    and buffer is copied over by name.
    """
    import copy

    from transformers import AutoModelForCausalLM

    hf = model.original_model
    device = next(hf.parameters()).device
    dtype = next(hf.parameters()).dtype
    with torch.device("meta"):  # no random initialisation: every tensor is overwritten below
        fresh = AutoModelForCausalLM.from_config(copy.deepcopy(hf.config), attn_implementation="eager", dtype=dtype)
    new = boot(fresh.to_empty(device=device), model.tokenizer, name=model.cfg.model_name, device=device)
    with torch.no_grad():
        for ours, theirs in ((hf.named_parameters, new.original_model.named_parameters),
                             (hf.named_buffers, new.original_model.named_buffers)):
            src, dst = dict(ours()), dict(theirs())
            if src.keys() != dst.keys():
                raise RuntimeError(f"copy of {model.cfg.model_name!r}: the fresh bridge's tensors differ "
                                   f"({sorted(src.keys() ^ dst.keys())[:5]})")
            for key, tensor in src.items():
                dst[key].copy_(tensor)
    return new


def residual_writers(model: Any) -> list[tuple[torch.Tensor, int]]:
    """Every weight and bias of a bridge that writes into the residual stream, with the axis
    that is `d_model`: the token (and position) embeddings, each attention output projection,
    each MLP output projection (transformers' `Conv1D` stores `[in, out]`, `Linear` `[out, in]`)."""
    from transformers.pytorch_utils import Conv1D

    d_model = model.cfg.d_model
    out: list[tuple[torch.Tensor, int]] = []
    modules = [getattr(model, "embed", None), getattr(model, "pos_embed", None)]
    for block in model.blocks:
        modules += [block.attn.o, block.mlp.out]
    for bridge_module in modules:
        module = getattr(bridge_module, "original_component", None)
        if module is None:
            continue
        if isinstance(module, torch.nn.Embedding):
            out.append((module.weight, 1))
            continue
        out.append((module.weight, 1 if isinstance(module, Conv1D) else 0))
        if getattr(module, "bias", None) is not None:
            out.append((module.bias, 0))
    for tensor, axis in out:
        if tensor.shape[axis] != d_model:
            raise RuntimeError(f"a residual writer of shape {tuple(tensor.shape)} has no d_model={d_model} axis {axis}")
    return out


_KEYS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def tied_head(model: Any) -> str | None:
    """The state-dict name of a Hugging Face model's unembedding weight when it is tied to the
    input embedding (a checkpoint stores it once, as the embedding), else None."""
    head = model.get_output_embeddings()
    if not getattr(model.config, "tie_word_embeddings", False) or head is None:
        return None
    return next((name + ".weight" for name, m in model.named_modules() if m is head), None)


def checkpoint_shapes(config: Any) -> dict[str, tuple[int, ...]]:
    """Every tensor a checkpoint of `config` stores, with its shape (the architecture built on the
    meta device: no memory, milliseconds)."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(config)
    shapes = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    shapes.pop(tied_head(skeleton) or "", None)
    return shapes


def checkpoint_weights(model: Any) -> list[tuple[str, torch.Tensor]]:
    """A bridge's weights under the names its Hugging Face checkpoint stores them by (the
    bridge's own wrappers and the copies it makes, e.g. GPT-2's split query/key/value, left out;
    a tied unembedding once, as the input embedding)."""
    named = {}
    for name, tensor in model.original_model.named_parameters(remove_duplicate=False):
        named.setdefault(name.replace("._original_component", "").replace("_original_component.", ""), tensor)
    keys = _KEYS.get(model)
    if keys is None:  # building the skeleton on the meta device costs milliseconds: once per model
        keys = _KEYS[model] = list(checkpoint_shapes(model.original_model.config))
    missing = [k for k in keys if k not in named]
    if missing:
        raise RuntimeError(f"{model.cfg.model_name!r}: the bridge does not show the checkpoint's {missing[:5]}")
    return [(k, named[k]) for k in keys]


def header(model_name: str, config: Any) -> str:
    """The fingerprint header `"name|n_layers|d_model|d_vocab"` from a Hugging Face config."""
    return f"{model_name}|{config.num_hidden_layers}|{config.hidden_size}|{config.vocab_size}"


def match_profile_processing(model: Any) -> Any:
    """Run the bridge in transformer-lens' compatibility mode (processed weights: LayerNorm
    folded, writing weights and unembedding centred) when its profile says its SAEs and findings
    were made that way (`ModelProfile.processed_weights`). Logits keep their probabilities;
    the residual stream becomes the processed one."""
    from interp.core.profiles import profile_for

    if profile_for(model).processed_weights and not getattr(model, "compatibility_mode", False):
        model.enable_compatibility_mode(disable_warnings=True)
    return model
