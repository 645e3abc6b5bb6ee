"""Lenses: decode each layer's residual stream into a next-token distribution.

`logit.py` is the logit lens (nostalgebraist 2020): every layer read through the model's own
final norm and unembedding. `result.py` holds what a lens returns (`LogitLensResult`: top-k,
entropy, KL to the final layer, target trajectories, plots). A tuned lens (Belrose et al. 2023,
arXiv:2303.08112), which learns a per-layer affine translator before the same read-out, would
sit beside `logit.py` and return the same result type.

Example:
    >>> from interp.lens import logit_lens
    >>> logit_lens(model, "the capital of france is", targets="paris").plot("trajectory")
"""

from interp.lens.logit import logit_lens, read_positions
from interp.lens.result import EMBED, LogitLensResult, layer_labels

__all__ = ["EMBED", "LogitLensResult", "layer_labels", "logit_lens", "read_positions"]
