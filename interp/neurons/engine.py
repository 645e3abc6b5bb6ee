"""The ablation engine: what an ablated unit is set to, and many ablations run as one batch.

A neuron is one unit of an MLP's post-activation (`blocks.L.mlp.hook_post`), named by its
(layer, index). Geva et al. ("Transformer Feed-Forward Layers Are Key-Value Memories", 2021)
read an MLP as a memory: each neuron's input weights are a *key* that matches a pattern in the
residual stream, its activation is how strongly the key matched, and its output weights are a
*value* written back (in vocabulary terms, the tokens it promotes: Geva et al. 2022). Removing
the activation removes that one memory's contribution, and the change in the output is what
the neuron did. A whole layer's MLP or attention output (`("mlp_out", L)`, `("attn_out", L)`)
can be removed the same way.

"Removing" needs a value to put in its place. The three ablation types, from bluntest to most
on-distribution:

- **zero**: 0 at every position (Meyes et al., "Ablation Studies in Artificial Neural
  Networks", 2019). Simple, but 0 may be a value the unit never takes, so downstream layers see
  something off-distribution;
- **mean**: its mean over a reference prompt set, all real token positions (Wang et al.,
  "Interpretability in the Wild", 2022): the rest of the network still sees a typical value.
  Cached on disk per model and reference set;
- **resample**: its value, position by position, on another reference prompt (Chan et al.,
  "Causal Scrubbing", 2022). Pairing rule: prompt `i` takes the activations of reference prompt
  `(i + 1) mod R`, skipping forward past any reference whose text is the same as prompt `i`, so
  passing the prompts themselves as the reference never gives a prompt its own activations.
  Sequences are aligned at their last token; where the reference prompt is shorter, the
  reference mean fills in.

`run_jobs` runs any number of ablations ("jobs", e.g. the clean run, one ablated set, or one
neuron each for verifying a ranking) over all prompts as rows of the same left-padded batches,
reading only the last position's logits (`interp.core.readout.last_logits`).

Example:
    >>> units = parse_neurons(model, [(1, 5), ("mlp_out", 0)])
    >>> tokens, mask = tokenize(model, prompts)
    >>> values = Values(model, "zero", units, prompts, None, batch_size=32)
    >>> out = run_jobs(model, tokens, mask, [[], units], values, lambda logits, rows: {"l": logits})
    >>> out["l"].shape  # [jobs, prompts, vocab]
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Int
from transformer_lens import HookedTransformer

from interp.core.cache import cached
from interp.core.hooks import harvest, hook_name, hooked, resolve_layer
from interp.core.readout import last_logits
from interp.core.tokens import tokenize

METHODS = ("zero", "mean", "resample")
LAYER_SITES = ("mlp_out", "attn_out")
NeuronSpec = tuple[int, int] | tuple[str, int]


@dataclass(frozen=True)
class AblatedUnits:
    """One ablated unit set: a hook and the unit indices at it (all units for a whole layer)."""

    hook: str
    units: torch.Tensor
    label: str


def parse_neurons(model: HookedTransformer, neurons: NeuronSpec | Sequence[NeuronSpec]) -> list[AblatedUnits]:
    """Check (layer, index) neuron pairs and ("mlp_out" | "attn_out", layer) whole-layer entries.

    One pair alone is accepted too; repeated entries are kept once.

    Raises:
        ValueError: no entries, a layer or neuron index out of range, an unknown whole-layer site.

    Example:
        >>> [u.label for u in parse_neurons(model, [(1, 5), (-1, 7), ("attn_out", 0)])]
        ['L1.N5', 'L2.N7', 'attn_out L0']
    """
    if neurons is None or isinstance(neurons, (str, int, float)):
        raise TypeError(f"neurons is {neurons!r}: expected (layer, index) pairs or ('mlp_out'|'attn_out', layer)")
    if isinstance(neurons, tuple) and len(neurons) == 2 and not isinstance(neurons[0], (tuple, list)):
        neurons = [neurons]
    neurons = list(neurons)
    if not neurons:
        raise ValueError("no neurons given: expected (layer, index) pairs or ('mlp_out'|'attn_out', layer)")
    found: dict[tuple[str, int], AblatedUnits] = {}
    for spec in neurons:
        if not isinstance(spec, (tuple, list)) or len(spec) != 2:
            raise ValueError(
                f"neuron {spec!r} must be a (layer, index) pair or ('mlp_out'|'attn_out', layer)"
            )
        a, b = spec
        if isinstance(a, str):
            if a not in LAYER_SITES:
                raise ValueError(f"whole-layer site {a!r} must be one of {LAYER_SITES}")
            name = hook_name(model, a, b)
            t = AblatedUnits(name, torch.arange(model.cfg.d_model), f"{a} L{resolve_layer(model, b)}")
            found[(name, -1)] = t
            continue
        layer = resolve_layer(model, a)
        d_mlp = model.cfg.d_mlp
        if not d_mlp:
            raise ValueError("this model has no MLP neurons (d_mlp is not set)")
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or not 0 <= int(b) < d_mlp:
            raise ValueError(f"neuron index {b!r} is out of range for layer {layer}: d_mlp is {d_mlp}, "
                             f"expected 0..{d_mlp - 1}")
        name = hook_name(model, "mlp_post", layer)
        found[(name, int(b))] = AblatedUnits(name, torch.tensor([int(b)]), f"L{layer}.N{int(b)}")
    return list(found.values())


def _digest(prompts: Sequence[str]) -> str:
    return hashlib.sha256("\x1e".join(prompts).encode()).hexdigest()[:24]


def _masked_mean_and_acts(
    model: HookedTransformer, tokens: torch.Tensor, mask: torch.Tensor, hooks: Sequence[str],
    keep: dict[str, torch.Tensor] | None, batch_size: int,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """One batched pass over the reference set: per hook the mean over real positions, and, for
    hooks in `keep`, the activations of those units `[R, pos, units]` (padding set to the mean)."""
    sums = {h: 0.0 for h in hooks}
    kept: dict[str, list[torch.Tensor]] = {h: [] for h in (keep or {})}
    n = mask.sum()
    for start in range(0, len(tokens), batch_size):
        t, m = tokens[start:start + batch_size], mask[start:start + batch_size]
        acts = harvest(model, t, hooks, attention_mask=m)
        for h in hooks:
            a = acts[h].float()
            sums[h] = sums[h] + (a * m[..., None]).sum((0, 1))
            if h in kept:
                kept[h].append(a[..., keep[h].to(a.device)])
    means = {h: (sums[h] / n).cpu() for h in hooks}
    out = {}
    for h, parts in kept.items():
        a = torch.cat(parts).cpu()
        pad = ~mask.bool().cpu()
        a[pad] = means[h][keep[h]].expand(int(pad.sum()), -1)
        out[h] = a
    return means, out


def reference_means(model: HookedTransformer, reference: Sequence[str], hooks: Sequence[str],
                    *, batch_size: int = 32) -> dict[str, torch.Tensor]:
    """Mean activation per unit at each hook over the reference prompts' real positions (cached).

    Example:
        >>> reference_means(model, prompts, ["blocks.1.mlp.hook_post"])["blocks.1.mlp.hook_post"]
    """
    tokens, mask = tokenize(model, list(reference))
    digest = _digest(list(reference))
    computed: dict[str, torch.Tensor] = {}

    def compute(h: str) -> dict[str, torch.Tensor]:
        if not computed:  # first miss: compute every hook in one pass
            computed.update(_masked_mean_and_acts(model, tokens, mask, list(hooks), None, batch_size)[0])
        return {"mean": computed[h]}

    return {h: cached(model, "neuron_means", {"hook": h, "reference": digest, "n": len(reference)},
                      lambda h=h: compute(h), expect={"mean": None})["mean"] for h in hooks}


def resample_pairs(prompts: Sequence[str], reference: Sequence[str]) -> torch.Tensor:
    """The reference row each prompt takes its activations from: `(i + 1) mod R`, skipping
    forward past references whose text equals prompt `i`.

    Example:
        >>> resample_pairs(["x", "b"], ["b", "b", "q"]).tolist()
        [1, 2]
    """
    r = len(reference)
    out = []
    for i, p in enumerate(prompts):
        for step in range(1, r + 1):
            j = (i + step) % r
            if reference[j] != p:
                out.append(j)
                break
        else:
            raise ValueError(f"resample ablation needs a reference prompt other than prompt {i} ({p!r}); "
                             "every reference prompt has the same text")
    return torch.tensor(out)


class Values:
    """What each ablated unit is set to, for a method: 0, the reference mean, or a resampled
    reference activation aligned at the last token.

    Example:
        >>> values = Values(model, "mean", parse_neurons(model, [(1, 5)]), prompts, reference, 32)
        >>> values.get("blocks.1.mlp.hook_post", torch.tensor([0]), torch.tensor([5]), width=6)
    """

    def __init__(self, model: HookedTransformer, method: str, ablated: Sequence[AblatedUnits],
                 prompts: Sequence[str], reference: Sequence[str] | None, batch_size: int) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown ablation method {method!r}; expected one of {METHODS}")
        self.method = method
        self.means: dict[str, torch.Tensor] = {}
        self.acts: dict[str, torch.Tensor] = {}
        self.col: dict[str, torch.Tensor] = {}
        self.pairs: torch.Tensor | None = None
        if method == "zero":
            return
        if reference is None or isinstance(reference, str) or len(reference) == 0:
            raise ValueError(f"method={method!r} needs a reference prompt set (reference=[...], non-empty); "
                             f"got {reference!r}")
        reference = list(reference)
        hooks = sorted({t.hook for t in ablated})
        if method == "mean":
            self.means = reference_means(model, reference, hooks, batch_size=batch_size)
            return
        units = {h: torch.unique(torch.cat([t.units for t in ablated if t.hook == h])) for h in hooks}
        tokens, mask = tokenize(model, reference)
        self.means, self.acts = _masked_mean_and_acts(model, tokens, mask, hooks, units, batch_size)
        for h, u in units.items():
            col = torch.full((int(u.max()) + 1,), -1, dtype=torch.long)
            col[u] = torch.arange(len(u))
            self.col[h] = col
            self.means[h] = self.means[h][u]  # indexed by column from here on
        self.pairs = resample_pairs(prompts, reference)

    def get(self, hook: str, prompt_rows: Int[torch.Tensor, "m"], units: Int[torch.Tensor, "m"],
            width: int) -> torch.Tensor:
        """Replacement values `[m, 1]` (constant over positions) or `[m, width]` for paired
        (prompt row, unit) entries."""
        if self.method == "zero":
            return torch.zeros(len(units), 1)
        if self.method == "mean":
            return self.means[hook][units][:, None]
        cols = self.col[hook][units]
        ref = self.acts[hook][self.pairs[prompt_rows], :, cols]  # [m, ref_pos]
        if ref.shape[1] >= width:
            return ref[:, ref.shape[1] - width:]
        fill = self.means[hook][cols][:, None].expand(-1, width - ref.shape[1])
        return torch.cat([fill, ref], 1)


# --- the batched engine -----------------------------------------------------------------------


def trim(
    tokens: Int[torch.Tensor, "batch pos"], mask: Int[torch.Tensor, "batch pos"]
) -> tuple[Int[torch.Tensor, "batch width"], Int[torch.Tensor, "batch width"]]:
    """Drop leading columns that are padding in every row (a slice of left-padded rows).

    Example:
        >>> trim(torch.tensor([[0, 0, 5], [0, 0, 6]]), torch.tensor([[0, 0, 1], [0, 1, 1]]))[1].tolist()
        [[0, 1], [1, 1]]
    """
    start = int((mask.sum(0) > 0).nonzero()[0])
    return tokens[:, start:], mask[:, start:]


@torch.inference_mode()
def run_jobs(
    model: HookedTransformer,
    tokens: Int[torch.Tensor, "prompts pos"],
    mask: Int[torch.Tensor, "prompts pos"],
    jobs: Sequence[Sequence[AblatedUnits]],
    values: Values,
    reduce: Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]],
    *,
    batch_size: int = 32,
    progress: bool = True,
    desc: str = "ablating",
) -> dict[str, torch.Tensor]:
    """Run every (job, prompt) row with that job's units ablated, in batches of rows, and
    return `reduce(last_logits, prompt_rows)` stacked as `[n_jobs, n_prompts, ...]`.

    A job is a list of `AblatedUnits` (an empty list is the clean run); rows of different jobs
    share a batch, each with its own hook entries.

    Example:
        >>> out = run_jobs(model, tokens, mask, [[], units], values, lambda lg, rows: {"top": lg.argmax(-1)})
        >>> out["top"].shape  # [2, n_prompts]
    """
    from tqdm.auto import tqdm

    n = len(tokens)
    rows = torch.arange(len(jobs) * n)
    chunks = rows.split(batch_size)
    out: dict[str, list[torch.Tensor]] = {}
    for chunk in tqdm(chunks, desc=desc, disable=not progress or len(chunks) < 4, leave=False):
        job, prow = chunk // n, chunk % n
        t, m = trim(tokens[prow], mask[prow])
        width = t.shape[1]
        per_hook: dict[str, tuple[list, list]] = {}
        for local, j in enumerate(job.tolist()):
            for tg in jobs[j]:
                r, u = per_hook.setdefault(tg.hook, ([], []))
                r.append(torch.full((len(tg.units),), local))
                u.append(tg.units)
        hooks = []
        for h, (r, u) in per_hook.items():
            r, u = torch.cat(r), torch.cat(u)
            vals = values.get(h, prow[r], u, width)

            def fn(act, hook, r=r.to(t.device), u=u.to(t.device), vals=vals):
                act[r, :, u] = vals.to(act.device, act.dtype)
                return act

            hooks.append((h, fn))
        with hooked(model, hooks):
            logits = last_logits(model, t, m)
        for k, v in reduce(logits, prow.to(logits.device)).items():
            out.setdefault(k, []).append(v.detach().float().cpu())
    return {k: torch.cat(v).reshape(len(jobs), n, *v[0].shape[1:]) for k, v in out.items()}
