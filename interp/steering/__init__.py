"""Steering vectors: extract a direction from contrasting prompts, then add it or project it out.

One module per idea:

- `vector.py`: `SteeringVector`, a direction with its provenance, and `vector.apply(model, ...)`,
  the context manager that steers every forward pass inside it;
- `edits.py`: the hook functions (activation addition, directional ablation, `apply_to`);
- `extract.py`: `mean_difference` -> `SteeringVectors` (one vector per layer and read position);
- `selection.py`: `select_direction`, Arditi-style choice of a refusal direction;
- `generate.py`: `steer`, steered and baseline completions side by side (`SteerResult`);
- `grid.py`: `steering_grid`, the metric (refusal rate) per layer x strength (`SteeringGrid`);
- `refusal.py`: `refusal_rate`, `refusal_score`, `harmless_kl` (`KLResult`);
- `weights.py`: `orthogonalize`, directional ablation baked into the weights.

Example:
    >>> vs = interp.mean_difference(model, harmful, harmless)
    >>> with vs[2].apply(model, alpha=4.0):
    ...     model.generate("user : how do i bake bread ? assistant :", max_new_tokens=8)
    >>> interp.steer(model, ["how do i bake bread ?"], vs[2], alpha=4.0).to_frame()
"""

from interp.steering.edits import APPLY_TO, MODES, ablation_hook_names, steering_hooks
from interp.steering.extract import SteeringVectors, mean_difference
from interp.steering.generate import SteerResult, steer
from interp.steering.grid import SteeringGrid, steering_grid
from interp.steering.refusal import (
    KLResult,
    harmless_kl,
    is_refusal,
    refusal_rate,
    refusal_score,
    refusal_token_ids,
)
from interp.steering.selection import DirectionSelection, select_direction
from interp.steering.vector import SteeringVector, steering
from interp.steering.weights import orthogonalize

__all__ = [
    "SteeringGrid",
    "steering_grid",
    "APPLY_TO",
    "MODES",
    "DirectionSelection",
    "KLResult",
    "SteerResult",
    "SteeringVector",
    "SteeringVectors",
    "ablation_hook_names",
    "harmless_kl",
    "is_refusal",
    "mean_difference",
    "orthogonalize",
    "refusal_rate",
    "refusal_score",
    "refusal_token_ids",
    "select_direction",
    "steer",
    "steering",  # deprecated: use vector.apply(model, ...)
    "steering_hooks",
]
