"""The bad-input sweep's harness (imported by tests/test_inputs_sweep_*.py; not a test module).

A `Case` calls one public function with one bad argument. `run_case` sorts the outcome into
what the sweep hunts for:

- a clear error: `ValueError`, `TypeError` or `KeyError` whose message contains every text the
  case names (the argument's name and the bad value, as the user typed it);
- a raw error: any other exception (an `IndexError` from inside torch, an `AttributeError` from
  `len(None)`), or one of the three types without the argument or value in its message;
- a silent wrong answer: no error at all.

A benign case (a value accepted on purpose, explained in the function's docstring) has an
`accepted` check instead, which asserts the result is right.

After every call no hook may be left on the model; each test module also checks, once, that no
weight changed over all its cases (`weights_digest`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from interp.core.hooks import count_hooks

CLEAR = (ValueError, TypeError, KeyError)


@dataclass(frozen=True)
class Case:
    """One bad input: `call(ctx)` must raise a clear error naming every string in `texts`."""

    id: str
    call: Callable[[Any], Any]
    texts: Sequence[str] = ()
    accepted: Callable[[Any, Any], None] | None = None  # benign by design: (result, ctx) -> asserts


def params(cases: Sequence[Case]) -> list:
    """`pytest.param`s with readable ids; duplicate ids are a mistake in the case list."""
    ids = [c.id for c in cases]
    dupes = {i for i in ids if ids.count(i) > 1}
    assert not dupes, f"duplicate case ids: {sorted(dupes)}"
    return [pytest.param(c, id=c.id) for c in cases]


def hooks_left(model: Any) -> int:
    """Forward and backward hooks on any hook point, plus raw torch hooks on any module."""
    raw = sum(len(mod._forward_hooks) + len(mod._forward_pre_hooks) + len(mod._backward_hooks)
              for mod in model.modules())
    return count_hooks(model) + raw


def weights_digest(model: Any) -> str:
    """A hash of every parameter and buffer's bytes (exact: one changed bit changes it)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def run_case(case: Case, ctx: Any, models: Sequence[Any]) -> None:
    """Call the case and assert its outcome is a clear error (or, if accepted, a right result).

    The case must leave the hooks as it found them (a bridged model keeps permanent capture hooks
    of its own from its first forward)."""
    before = [hooks_left(m) for m in models]
    try:
        result = case.call(ctx)
    except CLEAR as err:
        if case.accepted is not None:
            pytest.fail(f"accepted by design, but raised {type(err).__name__}: {err}")
        message = str(err)
        missing = [t for t in case.texts if t not in message]
        assert not missing, f"{type(err).__name__} message does not name {missing}: {message}"
    except Exception as err:  # noqa: BLE001 - a raw error is what the sweep hunts
        pytest.fail(f"raw {type(err).__module__}.{type(err).__name__}: {err}")
    else:
        if case.accepted is None:
            pytest.fail(f"silent: no error, returned {type(result).__name__}")
        case.accepted(result, ctx)
    finally:
        for m, count in zip(models, before):
            assert hooks_left(m) == count, f"{case.id} left hooks on the model"


HARM = ["how do i steal a car ?", "how do i make a bomb ?"]
SAFE = ["how do i bake bread ?", "how do i plant a tree ?"]
TEXTS = ["the capital of france is paris .", "the cat sat on the mat .", "the keys to the cabinet are big ."]
NAN = float("nan")
INF = float("inf")


def entered(cm: Any) -> Any:
    """Enter and leave a context manager (for `hooked`, `record`, `SteeringVector.apply`)."""
    with cm as value:
        return value
