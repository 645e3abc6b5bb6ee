"""Low-memory activation functions: the same bits from fewer temporaries.

transformer-lens writes GPT-2's GELU (`gelu_new`) as one expression,

    0.5 * x * (1.0 + tanh(sqrt(2 / pi) * (x + 0.044715 * x ** 3)))

and eager PyTorch gives every operator in it a fresh `[batch, pos, d_mlp]` tensor: three are
alive at once at its peak (`0.5 * x` waits while the bracket is built), each as large as the
MLP's input. At GPT-2-small size and 32 x 64 tokens that is 72 MB on top of the 24 MB input,
the largest transient of a whole forward, and what `harvest` (one layer read, nothing else
kept) is left paying for.

A *twin* computes the same expression with in-place operators on ONE fresh tensor and never
writes to its input (the input may be what a hook recorded at `hook_pre`). Every operator is
the same kernel on the same operands, so the result is bitwise equal; the only reordering is
the commutation of operands (exact) and moving the factor 0.5 from `x` to the bracket `y`:
`(0.5 * x) * y` and `x * (0.5 * y)` are both the exact real `x * y / 2` rounded once, as long as
the halvings are exact. Halving `y = 1 + tanh(...)` is always exact (it lies in [0, 2] and is
either 0 or at least 2**-24, far from the subnormals); halving `x` is inexact only for
subnormal-sized `x`, where `y` is exactly 1 and both sides are `round(x / 2)`.

`low_memory_activations(model)` swaps the MLP modules' `act_fn` for its twin for the duration of
a `with` block (what transformer-lens' MLPs call is the plain function stored in `act_fn`), and
a plain `MLP`'s forward for one with the same operations that lets the pre-activation go as soon
as the activation has read it (transformer-lens' keeps it alive through the output projection),
and puts the originals back on any exit. Each twin is checked bitwise against the installed
original once per process on a probe of many magnitudes (the forward on a fresh small MLP), and
is used only if equal, so a transformer-lens release that rewrote its activations would turn
the swap off rather than change a number. The swap is per model, reference-counted under a
lock: blocks nest and two threads may hold one on a shared model at once; the first to enter
swaps, the last to leave restores. A twin called where autograd records (grad enabled and an
input that requires it) runs the original, since in-place operators would break the backward
pass.

Measured (CPU heap, GPT-2-small size, one harvest batch of 32 x 64 tokens read at layer 6):
120 MB peak above the start without the swaps, 78 MB with the activation twin, 72 MB with the
MLP forward too; `benchmarks/peers/memory.py`'s harvest / `run_with_cache` peak ratio went from
0.066 to 0.047 (target 0.05).

Example:
    >>> with low_memory_activations(model):
    ...     logits = model(tokens)          # bitwise equal to model(tokens), less memory
    >>> torch.equal(gelu_new_lowmem(x), gelu_new(x))
    True
"""

from __future__ import annotations

import math
import threading
import types
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from jaxtyping import Float
from transformer_lens import HookedTransformer, HookedTransformerConfig
from transformer_lens.components.mlps.mlp import MLP
from transformer_lens.utilities import activation_functions as _tl_acts
from transformer_lens.utilities.addmm import batch_addmm

from interp.core.engine import is_bridge

Activation = Callable[[torch.Tensor], torch.Tensor]

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)  # the same double as transformer-lens' np.sqrt(2.0 / np.pi)


def _records_grad(x: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and x.requires_grad


def gelu_new_lowmem(x: Float[torch.Tensor, "*shape"]) -> Float[torch.Tensor, "*shape"]:
    """transformer-lens' `gelu_new`, bitwise, from one fresh tensor; `x` is not written to.

    Example:
        >>> x = torch.randn(4, 8, 64)
        >>> torch.equal(gelu_new_lowmem(x), gelu_new(x))
        True
    """
    if _records_grad(x):
        return _tl_acts.gelu_new(x)
    t = torch.pow(x, 3.0)          # x ** 3
    t.mul_(0.044715)               # 0.044715 * x ** 3
    t.add_(x)                      # x + 0.044715 * x ** 3
    t.mul_(_SQRT_2_OVER_PI)        # sqrt(2 / pi) * (...)
    t.tanh_()
    t.add_(1.0)                    # y = 1 + tanh(...)
    t.mul_(0.5)                    # y / 2: exact
    return t.mul_(x)               # x * (y / 2) == (0.5 * x) * y, bit for bit


def gelu_fast_lowmem(x: Float[torch.Tensor, "*shape"]) -> Float[torch.Tensor, "*shape"]:
    """transformer-lens' `gelu_fast`, bitwise, from two fresh tensors (it needs five).

    Example:
        >>> torch.equal(gelu_fast_lowmem(x), gelu_fast(x))
        True
    """
    if _records_grad(x):
        return _tl_acts.gelu_fast(x)
    a = x * 0.7978845608           # x * 0.7978845608
    t = x * 0.044715               # 0.044715 * x
    t.mul_(x)                      # 0.044715 * x * x
    t.add_(1.0)                    # 1 + 0.044715 * x * x
    t.mul_(a)                      # x * 0.7978845608 * (1 + ...)
    del a
    t.tanh_()
    t.add_(1.0)
    t.mul_(0.5)
    return t.mul_(x)


def solu_lowmem(x: Float[torch.Tensor, "*shape"]) -> Float[torch.Tensor, "*shape"]:
    """transformer-lens' `solu` (`x * softmax(x)`), bitwise, from one fresh tensor.

    Example:
        >>> torch.equal(solu_lowmem(x), solu(x))
        True
    """
    if _records_grad(x):
        return _tl_acts.solu(x)
    return F.softmax(x, dim=-1).mul_(x)


def relu2_lowmem(x: Float[torch.Tensor, "*shape"]) -> Float[torch.Tensor, "*shape"]:
    """transformer-lens' `relu2` (`relu(x) ** 2` as a product), bitwise, from one fresh tensor.

    Example:
        >>> torch.equal(relu2_lowmem(x), relu2(x))
        True
    """
    if _records_grad(x):
        return _tl_acts.relu2(x)
    r = F.relu(x)
    return r.mul_(r)


#: installed transformer-lens activation -> its low-memory twin (those this release has).
TWINS: dict[Activation, Activation] = {
    getattr(_tl_acts, name): twin
    for name, twin in (
        ("gelu_new", gelu_new_lowmem),
        ("gelu_fast", gelu_fast_lowmem),
        ("solu", solu_lowmem),
        ("relu2", relu2_lowmem),
    )
    if callable(getattr(_tl_acts, name, None))
}


def probe(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """`[8, 4096]` values of many magnitudes and both signs (1e-30 .. 1e30, zeros, the
    subnormals, the largest finite values, +-inf), fixed: the inputs twins are checked on."""
    g = torch.Generator().manual_seed(0)
    scales = torch.logspace(-30, 30, 61, dtype=torch.float64)
    x = torch.randn(8, 4096, generator=g, dtype=torch.float64)
    x *= scales[torch.randint(0, len(scales), (8, 4096), generator=g)]
    x = x.to(dtype)
    info = torch.finfo(dtype)
    special = torch.tensor(
        [0.0, -0.0, info.tiny, -info.tiny, info.tiny / 4, -info.tiny / 3, info.max, -info.max,
         info.max / 2, float("inf"), float("-inf"), 1.0, -1.0, 3.0, -3.0, 10.0, -10.0],
        dtype=dtype,
    )
    x.view(-1)[: len(special)] = special
    return x


def bitwise_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same dtype, shape and bytes (NaNs with the same bits are equal; +0.0 differs from -0.0)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    ints = {2: torch.int16, 4: torch.int32, 8: torch.int64}[a.element_size()]
    return torch.equal(a.contiguous().view(ints), b.contiguous().view(ints))


_VERIFIED: dict[Activation, bool] = {}


def _twin_of(fn: object) -> Activation | None:
    """The twin of `fn` if it has one that matches it bit for bit here (checked once)."""
    try:
        twin = TWINS.get(fn) if callable(fn) else None  # type: ignore[arg-type]
    except TypeError:  # an unhashable callable: not one of transformer-lens' functions
        return None
    if twin is None:
        return None
    if fn not in _VERIFIED:
        with torch.inference_mode():
            x = probe()
            same = bitwise_equal(twin(x), fn(x))  # type: ignore[operator]
            _VERIFIED[fn] = same and bitwise_equal(x, probe())  # and the input left alone
    return twin if _VERIFIED[fn] else None


def mlp_forward_lowmem(
    self: MLP, x: Float[torch.Tensor, "batch pos d_model"]
) -> Float[torch.Tensor, "batch pos d_model"]:
    """transformer-lens' `MLP.forward`, the same operations on the same operands, holding no
    name for the pre-activation: it is freed as soon as the activation returns (unless a hook
    kept it) instead of living through the output projection.

    Example:
        >>> torch.equal(mlp_forward_lowmem(mlp, x), mlp(x))
        True
    """
    post = self.hook_post(self.act_fn(self.hook_pre(batch_addmm(self.b_in, self.W_in, x))))
    return batch_addmm(self.b_out, self.W_out, post)


_MLP_VERIFIED: list[bool] = []


def _lean_mlp(module: torch.nn.Module) -> bool:
    """Whether `module` is a plain transformer-lens `MLP` whose forward may be swapped: exactly
    that class, not patched on the instance, no layer-norm activation (SoLU's `ln` step), and the
    installed `MLP.forward` bitwise equal to `mlp_forward_lowmem` on a fresh MLP (checked once)."""
    if type(module) is not MLP or "forward" in module.__dict__ or module.cfg.is_layer_norm_activation():
        return False
    if not _MLP_VERIFIED:
        cfg = HookedTransformerConfig(n_layers=1, d_model=16, d_head=4, d_mlp=64, n_ctx=8, act_fn="gelu_new")
        g = torch.Generator().manual_seed(0)
        fresh = MLP(cfg)
        with torch.inference_mode():
            for param in fresh.parameters():
                param.copy_(torch.randn(param.shape, generator=g))
            x = torch.randn(2, 8, 16, generator=g)
            _MLP_VERIFIED.append(bitwise_equal(MLP.forward(fresh, x), mlp_forward_lowmem(fresh, x)))
    return _MLP_VERIFIED[0]


@dataclass
class _Swap:
    users: int = 0
    #: (module, attribute, original or _MISSING, what we set)
    swapped: list[tuple[torch.nn.Module, str, object, object]] = field(default_factory=list)


_MISSING = object()
_LOCK = threading.Lock()
_SWAPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@contextmanager
def low_memory_activations(model: HookedTransformer) -> Iterator[HookedTransformer]:
    """Inside the block, the model's MLPs run as their low-memory twins.

    Two swaps, each bitwise equal (hooks see the same values): `act_fn` becomes its twin (two
    `[batch, pos, d_mlp]` temporaries fewer for `gelu_new`; activations without a twin, `gelu`,
    `silu`, `relu`, ...: one kernel each already, are left alone), and a plain `MLP`'s forward
    becomes `mlp_forward_lowmem` (the pre-activation is freed before the output projection).
    The originals are put back on any exit; an attribute that someone else replaced inside the
    block is left as they set it.

    Example:
        >>> with low_memory_activations(model):
        ...     acts = model.run_with_cache(tokens)[1]     # the same cache, bit for bit
    """
    if is_bridge(model):  # a Hugging Face model's own MLPs run as they are
        yield model
        return
    with _LOCK:
        state = _SWAPS.setdefault(model, _Swap())
        if state.users == 0:
            for module in model.modules():
                original = module.__dict__.get("act_fn")  # a plain function; XIELU is a Module
                twin = _twin_of(original)
                if twin is not None:
                    module.act_fn = twin
                    state.swapped.append((module, "act_fn", original, twin))
                if _lean_mlp(module):
                    bound = types.MethodType(mlp_forward_lowmem, module)
                    module.forward = bound
                    state.swapped.append((module, "forward", _MISSING, bound))
        state.users += 1
    try:
        yield model
    finally:
        with _LOCK:
            state.users -= 1
            if state.users == 0:
                for module, name, original, ours in reversed(state.swapped):
                    if module.__dict__.get(name) is ours:
                        if original is _MISSING:
                            del module.__dict__[name]
                        else:
                            setattr(module, name, original)
                state.swapped.clear()


def uses_low_memory(model: HookedTransformer) -> bool:
    """Whether some MLP of `model` runs a low-memory twin (activation or forward) right now.

    Example:
        >>> with low_memory_activations(gpt2):
        ...     uses_low_memory(gpt2)
        True
    """
    return any(
        module.__dict__.get("act_fn") in TWINS.values()
        or getattr(module.__dict__.get("forward"), "__func__", None) is mlp_forward_lowmem
        for module in model.modules()
    )
