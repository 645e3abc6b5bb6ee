"""Steering vectors: extract a direction from contrasting prompts, then add it or project it out.

- `generate.py`: `SteeringVector`, `mean_difference`, `steer`, `orthogonalize`;
- `refusal.py`: refusal rate and score, side-effect KL, direction selection.
"""

from interp.steering.generate import (
    SteeringVector,
    SteeringVectors,
    SteerResult,
    mean_difference,
    orthogonalize,
    steer,
    steering,
)
from interp.steering.refusal import (
    DirectionSelection,
    KLResult,
    harmless_kl,
    refusal_rate,
    refusal_score,
    select_direction,
)

__all__ = ["DirectionSelection", "KLResult", "SteerResult", "SteeringVector", "SteeringVectors", "harmless_kl",
           "mean_difference", "orthogonalize", "refusal_rate", "refusal_score", "select_direction", "steer",
           "steering"]
