"""Activation patching: patchscopes (decode a hidden state by patching it into another prompt).

`patchscope.py` holds the public function and its result; `engine.py` the batched sweep that
runs every source layer in one pass.
"""

from interp.patching.patchscope import PRESETS, PatchscopeResult, patchscope, placeholder_for, target_prompt

__all__ = ["PRESETS", "PatchscopeResult", "patchscope", "placeholder_for", "target_prompt"]
