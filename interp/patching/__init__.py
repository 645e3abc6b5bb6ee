"""Activation patching: read a hidden state by patching it into another prompt (patchscopes).

`patchscope.py` holds the public function, its presets and placeholder (Ghandeharioun et al.
2024, arXiv:2401.06102); `result.py` what it returns (`PatchscopeResult`); `engine.py` the
batched sweep that runs every (source layer, target layer) row in one pass, back-patching
(Biran et al. 2024) included.

`interp.patching.patchscope` is the function (the package exports it under its module's name);
import the module's other names from `interp.patching` too.

Example:
    >>> from interp.patching import patchscope
    >>> patchscope(model, "my friend is from japan .", source_position="japan", target="capital").plot()
"""

from interp.patching.patchscope import (
    PATCH_SITES,
    PRESETS,
    patchscope,
    placeholder_for,
    preset_names,
    target_prompt,
)
from interp.patching.result import PatchscopeResult

__all__ = [
    "PATCH_SITES",
    "PRESETS",
    "PatchscopeResult",
    "patchscope",
    "placeholder_for",
    "preset_names",
    "target_prompt",
]
