"""The built-in model: a small transformer trained on a generated corpus with planted skills.

It is the offline default and the ground truth for every technique: a Hugging Face GPT-2
checkpoint (4 layers) with a word-level tokenizer, shipped in `interp/toy/artifacts/`, trained
by `python -m interp.toy.train` and loaded like any other checkpoint folder (a
`TransformerBridge`). Its skills (refusal of
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
from pathlib import Path
from typing import TYPE_CHECKING

from interp.core.loaders import register_loader
from interp.toy import corpus  # pure Python: `interp.toy.corpus.documents(n)` is a ready corpus

if TYPE_CHECKING:
    import torch
    from transformer_lens.model_bridge import TransformerBridge

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
    **spread: object,
) -> TransformerBridge:
    """Load the built-in model (offline, well under a second once transformers is imported).

    The artifacts are a Hugging Face GPT-2 checkpoint (`interp.toy.checkpoint`), loaded strictly
    (`interp.core.bridge.load_folder`) and wrapped in transformer-lens' `TransformerBridge`.

    Args:
        device: Where to put it (default: cpu).
        dtype: Parameter dtype (default: float32).
        folder: Artifact folder (default `TOY_DIR`); for retrained copies and tests.
        spread: `device_map` / `max_memory` for accelerate (then `device` must be None).

    Returns:
        A `TransformerBridge` in eval mode with `cfg.model_name == "toy"` and its tokenizer.

    Raises:
        ToyArtifactError: An artifact is missing or corrupt (the message says how to retrain).

    Example:
        >>> model = load_toy()
        >>> model.cfg.n_layers
        4
    """
    import torch

    from interp.core.bridge import CheckpointError, load_folder

    folder = Path(folder) if folder is not None else TOY_DIR
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        if not (folder / name).is_file():
            raise _fail(folder, f"{name} is missing")
    try:
        fields = json.loads((folder / "config.json").read_text())
    except ValueError as err:
        raise _fail(folder, f"config.json is unreadable ({err})") from err
    if fields.get("model_type") != "gpt2":
        raise _fail(folder, f"config.json describes {fields.get('model_type')!r}, not a GPT-2 checkpoint")
    try:
        model = load_folder(folder, name="toy", device=None if spread else device or "cpu",
                            dtype=dtype or torch.float32, **spread)
    except CheckpointError as err:
        raise _fail(folder, str(err)) from err
    except Exception as err:  # safetensors, tokenizers and transformers raise their own types
        raise _fail(folder, f"the checkpoint is unreadable ({type(err).__name__}: {err})") from err
    if len(model.tokenizer) != model.cfg.d_vocab:
        raise _fail(folder, f"the tokenizer has {len(model.tokenizer)} tokens but config.json says "
                            f"vocab_size={model.cfg.d_vocab}")
    return model


register_loader("toy", load_toy)  # interp.load_model("toy"); interp.core never imports this package
from interp.toy import profile as _profile  # noqa: E402, F401  (registers the built-in model's profile)


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
