"""The built-in model: a small transformer trained on a generated corpus with planted skills.

It is the offline default and the ground truth for every technique: a GPT-2 style
transformer-lens `HookedTransformer` (4 layers) with a word-level tokenizer, shipped in
`interp/toy/artifacts/` and trained by `python -m interp.toy.train`. Its skills (refusal of
harmful requests, country facts, number agreement with attractors, in-context tasks, identity
copying) and their held-out accuracies are described in `interp/toy/README.md`.

Importing this package is light: torch and transformer-lens are imported when a model is
loaded, and nothing is trained on import.

Example:
    >>> from interp.toy import load_toy, evaluate
    >>> model = load_toy()
    >>> model.to_str_tokens("the capital of france is")
    ['<bos>', 'the', 'capital', 'of', 'france', 'is']
"""

from __future__ import annotations

import importlib
import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from interp.toy import corpus  # pure Python: `interp.toy.corpus.documents(n)` is a ready corpus

if TYPE_CHECKING:
    import torch
    from transformer_lens import HookedTransformer

    from interp.toy.evaluation import evaluate
    from interp.toy.scorecard import THRESHOLDS, ToyEval

# Loaded on first use (they import torch): `interp.toy.evaluate` is the function, the module
# is `interp.toy.evaluation`.
_LAZY = {"evaluate": "interp.toy.evaluation", "THRESHOLDS": "interp.toy.scorecard",
         "ToyEval": "interp.toy.scorecard"}

TOY_DIR = Path(__file__).resolve().parent / "artifacts"
"""Folder of the shipped artifacts (config, weights, tokenizer, loss curve, eval.json)."""

RETRAIN_HINT = "retrain the built-in model with `python -m interp.toy.train` (about 15 minutes on CPU)"

__all__ = ["THRESHOLDS", "TOY_DIR", "ToyArtifactError", "ToyEval", "corpus", "evaluate", "load_toy",
           "shipped_eval"]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'interp.toy' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class ToyArtifactError(RuntimeError):
    """The built-in model's artifacts are missing or corrupt."""


def _fail(folder: Path, problem: str) -> ToyArtifactError:
    return ToyArtifactError(f"built-in model artifacts in {folder}: {problem}; {RETRAIN_HINT}")


def load_toy(
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    *,
    folder: str | Path | None = None,
) -> HookedTransformer:
    """Load the built-in model (offline, about a second once transformer-lens is imported).

    Args:
        device: Where to put it (default: cpu).
        dtype: Parameter dtype (default: float32).
        folder: Artifact folder (default `TOY_DIR`); for retrained copies and tests.

    Returns:
        A `HookedTransformer` in eval mode with `cfg.model_name == "toy"` and its tokenizer.

    Raises:
        ToyArtifactError: An artifact is missing or corrupt (the message says how to retrain).

    Example:
        >>> model = load_toy()
        >>> model.cfg.n_layers
        4
    """
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    from transformers import PreTrainedTokenizerFast

    folder = Path(folder) if folder is not None else TOY_DIR
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        if not (folder / name).is_file():
            raise _fail(folder, f"{name} is missing")
    try:
        fields = json.loads((folder / "config.json").read_text())
        cfg = HookedTransformerConfig(
            **fields, device=str(device) if device is not None else "cpu",
            dtype=dtype if dtype is not None else torch.float32,
        )
    except (ValueError, TypeError, AttributeError) as err:
        raise _fail(folder, f"config.json is unreadable ({err})") from err
    try:
        tokenizer = PreTrainedTokenizerFast.from_pretrained(folder)
    except Exception as err:  # tokenizers raises several exception types on bad json
        raise _fail(folder, f"the tokenizer files are unreadable ({err})") from err
    if len(tokenizer) != cfg.d_vocab:
        raise _fail(folder, f"the tokenizer has {len(tokenizer)} tokens but config.json says "
                            f"d_vocab={cfg.d_vocab}")
    try:
        state = load_file(str(folder / "model.safetensors"))
    except (SafetensorError, OSError, ValueError) as err:
        raise _fail(folder, f"model.safetensors is unreadable ({err})") from err

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*HookedTransformer is deprecated.*")
        model = HookedTransformer(cfg, tokenizer=tokenizer, move_to_device=True)
    expected = dict(model.named_parameters())
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise _fail(folder, f"model.safetensors does not match config.json (missing "
                            f"{missing[:5]}, unexpected {unexpected[:5]})")
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise _fail(folder, f"weight {name} has shape {tuple(tensor.shape)}, expected "
                                f"{tuple(expected[name].shape)}")
        if not torch.isfinite(tensor).all():
            raise _fail(folder, f"weight {name} holds non-finite values")
    model.load_state_dict(state, strict=False)  # copies into the model's device and dtype
    model.eval()
    return model


def shipped_eval(folder: str | Path | None = None) -> ToyEval:
    """The numbers measured on the shipped weights when they were trained (`eval.json`).

    Example:
        >>> shipped_eval().capital
        1.0
    """
    from interp.toy.scorecard import ToyEval

    folder = Path(folder) if folder is not None else TOY_DIR
    path = folder / "eval.json"
    if not path.is_file():
        raise _fail(folder, "eval.json is missing")
    return ToyEval.from_dict(json.loads(path.read_text()))
