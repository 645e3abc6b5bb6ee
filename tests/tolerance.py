"""Tolerances for one float result computed two ways: a number of ulps at the values' magnitude.

Two ways of computing a float result agree only up to rounding, and the rounding differs from one
CPU to another: the instruction set (AVX2, AVX-512), the BLAS kernel and the number of torch
threads each choose their own blocking and summation order. A fixed absolute tolerance is a
different number of ulps at every magnitude: 1e-5 is about 5 float32 ulps of a logit of 17, which
one machine meets and another misses. These tolerances scale with the dtype and the magnitude.
"""

from __future__ import annotations

import torch

# The comparisons first moved here (tests/test_generation.py, tests/test_features.py) differ by up
# to 6 ulps of their magnitude on an AMD EPYC with 1 and 2 torch threads; 16 leaves room for other
# CPUs and stays far below any change in behaviour.
ULPS = 16


def tolerance(expected: torch.Tensor, ulps: float = ULPS) -> tuple[float, float]:
    """(atol, rtol): atol = ulps * eps * max(1, max |expected|), rtol = ulps * eps, where eps is
    the machine epsilon of expected's dtype (one ulp of 1.0)."""
    eps = torch.finfo(expected.dtype).eps
    finite = expected.detach()[expected.detach().isfinite()]
    magnitude = float(finite.abs().max()) if finite.numel() else 0.0
    return ulps * eps * max(1.0, magnitude), ulps * eps


def assert_close(actual: torch.Tensor, expected: torch.Tensor, *, ulps: float = ULPS, what: str = "") -> None:
    """torch.testing.assert_close with `tolerance(expected, ulps)`; `what` names the comparison."""
    atol, rtol = tolerance(expected, ulps)
    torch.testing.assert_close(
        actual, expected, atol=atol, rtol=rtol,
        msg=lambda m: f"{what + ': ' if what else ''}{m}\n(tolerance {ulps} ulps of {expected.dtype}: "
                      f"atol {atol:.2e}, rtol {rtol:.2e})",
    )
