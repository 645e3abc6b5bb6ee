"""Streaming top-k: the k strongest activations per unit (neuron or SAE feature) over a corpus.

Max-activating examples are read off a corpus far bigger than memory, so each batch's
activations are merged into a running top-k per unit and then dropped. What is kept is
`units x k` values with their token contexts, plus per-unit firing counts for density and a
log-binned histogram of positive activations: memory does not grow with the
corpus. `StreamingTopK` takes dense `[batch, pos, units]` activations (neurons);
`SparseStreamingTopK` takes only the entries that fire, as an SAE's sparse code gives them, and
costs in proportion to those.

The top examples, the density and the histogram are the three panels of the feature dashboards
in Bricken et al. 2023, "Towards Monosemanticity" (and Templeton et al. 2024, "Scaling
Monosemanticity"); `interp.sae.stream` feeds these trackers from a corpus.

Example:
    >>> top = StreamingTopK(n_units=512, k=20, before=8, after=2)
    >>> top.update(acts, tokens, mask)        # once per batch: acts [batch, pos, units]
    >>> top.values[7], top.density[7]        # unit 7's 20 strongest values, its firing rate
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int

PAD = -1  # token id used for context slots outside the example
#: histogram bin edges for positive activations, log-spaced from 1e-4 to 1e4
HIST_EDGES = torch.logspace(-4, 4, 81)


class StreamingTopK:
    """Running top-k per unit, with a context window of tokens and activations around each hit.

    Args:
        n_units: number of units (neurons or features) tracked.
        k: examples kept per unit.
        before, after: context tokens kept on each side of the top token.

    Example:
        >>> top = StreamingTopK(n_units=512, k=20)
        >>> for acts, tokens, mask in batches:       # acts: [batch, pos, units]
        ...     top.update(acts, tokens, mask)
        >>> top.values.shape
        torch.Size([512, 20])
    """

    def __init__(self, n_units: int, k: int, *, before: int = 8, after: int = 2):
        if n_units < 1 or k < 1:
            raise ValueError(f"n_units={n_units} and k={k} must both be >= 1")
        self.k, self.before, self.after = k, before, after
        width = before + 1 + after
        self.values = torch.full((n_units, k), float("-inf"))
        self.example = torch.full((n_units, k), -1, dtype=torch.long)
        self.position = torch.full((n_units, k), -1, dtype=torch.long)
        self.context_tokens = torch.full((n_units, k, width), PAD, dtype=torch.long)
        self.context_acts = torch.zeros((n_units, k, width))
        self.fired = torch.zeros(n_units, dtype=torch.long)
        self.n_tokens = 0
        self.n_examples = 0
        self.hist = torch.zeros((n_units, len(HIST_EDGES) + 1), dtype=torch.long)

    def update(
        self,
        acts: Float[torch.Tensor, "batch pos units"],
        tokens: Int[torch.Tensor, "batch pos"],
        mask: Int[torch.Tensor, "batch pos"],
    ) -> None:
        """Merge one batch. Padding positions (mask 0) never enter the top-k or the counts."""
        acts, tokens, mask = acts.detach().float().cpu(), tokens.cpu(), mask.cpu().bool()
        batch, pos, units = acts.shape
        if units != self.values.shape[0]:
            raise ValueError(f"batch has {units} units, tracker has {self.values.shape[0]}")
        masked = acts.masked_fill(~mask[..., None], float("-inf")).reshape(batch * pos, units)
        n_valid = int(mask.sum())
        self.fired += (masked > 0).sum(0)
        self._histogram(acts[mask])
        k = min(self.k, batch * pos)
        new_vals, flat = masked.topk(k, dim=0)  # [k, units]
        new_vals, flat = new_vals.T, flat.T  # [units, k]
        b, p = flat // pos, flat % pos
        offsets = torch.arange(-self.before, self.after + 1)
        cols = p[..., None] + offsets  # [units, k, width]
        inside = (cols >= 0) & (cols < pos)
        cols_c = cols.clamp(0, pos - 1)
        rows = b[..., None].expand_as(cols_c)
        ctx_tok = tokens[rows, cols_c]
        inside &= mask[rows, cols_c]
        ctx_tok = ctx_tok.masked_fill(~inside, PAD)
        unit_idx = torch.arange(units)[:, None, None].expand_as(cols_c)
        ctx_act = acts[rows, cols_c, unit_idx].masked_fill(~inside, 0.0)
        # a token position of an example: count positions from the first real token
        first = (~mask).long().sum(1) * (mask[:, 0] == 0).long()
        all_vals = torch.cat([self.values, new_vals], 1)
        keep = all_vals.topk(self.k, dim=1).indices
        self.values = all_vals.gather(1, keep)
        self.example = torch.cat([self.example, b + self.n_examples], 1).gather(1, keep)
        self.position = torch.cat([self.position, p - first[b]], 1).gather(1, keep)
        w = keep[..., None].expand(-1, -1, offsets.numel())
        self.context_tokens = torch.cat([self.context_tokens, ctx_tok], 1).gather(1, w)
        self.context_acts = torch.cat([self.context_acts, ctx_act], 1).gather(1, w)
        self.n_tokens += n_valid
        self.n_examples += batch

    def _histogram(self, valid: Float[torch.Tensor, "n units"]) -> None:
        pos = valid > 0
        bins = torch.bucketize(valid[pos], HIST_EDGES).clamp(0, len(HIST_EDGES))
        units = pos.nonzero()[:, 1]
        flat = units * (len(HIST_EDGES) + 1) + bins
        self.hist.view(-1).index_add_(0, flat, torch.ones_like(flat))

    @property
    def density(self) -> Float[torch.Tensor, "units"]:
        """Fraction of tokens on which each unit is positive."""
        return self.fired.float() / max(self.n_tokens, 1)

    def histogram(self, unit: int) -> tuple[Float[torch.Tensor, "bins"], Int[torch.Tensor, "bins"]]:
        """Counts of `unit`'s positive activations in log-spaced bins: (bin left edges, counts)."""
        edges = torch.cat([torch.zeros(1), HIST_EDGES])
        return edges, self.hist[unit].clone()


class SparseStreamingTopK(StreamingTopK):
    """`StreamingTopK` fed with only the positive activations (SAE features), as
    `(flat position, unit, value)` triples: same results on every positive activation, at a cost
    proportional to the entries that enter a top-k instead of a dozen dense passes over
    `positions x units`. Between updates a unit's k slots are unordered (a new entry overwrites
    the weakest); `sort_()` orders them. Slots a unit never filled stay -inf (the dense tracker
    fills them with zeros or negatives)."""

    def update(
        self,
        acts: Float[torch.Tensor, "batch pos units"],
        tokens: Int[torch.Tensor, "batch pos"],
        mask: Int[torch.Tensor, "batch pos"],
    ) -> None:
        """Merge one dense batch (as `StreamingTopK.update`)."""
        valid = mask.to(acts.device).bool()
        if acts.shape[-1] != self.values.shape[0]:
            raise ValueError(f"batch has {acts.shape[-1]} units, tracker has {self.values.shape[0]}")
        at = valid.view(-1).nonzero().squeeze(1)
        dense = acts.detach().reshape(-1, acts.shape[-1])[at]
        rows, units = (dense > 0).nonzero(as_tuple=True)
        self.update_sparse(at[rows], units, dense[rows, units], tokens, valid)

    def update_sparse(
        self,
        at: Int[torch.Tensor, "nnz"],
        unit: Int[torch.Tensor, "nnz"],
        value: Float[torch.Tensor, "nnz"],
        tokens: Int[torch.Tensor, "batch pos"],
        valid: Int[torch.Tensor, "batch pos"],
    ) -> None:
        """Merge one batch given its positive activations: `value` of `unit` at flat position
        `at = b * pos + p`, every one at a valid (`valid` true) position."""
        dev, units, k = value.device, self.values.shape[0], self.k
        valid = valid.to(dev).bool()
        batch, pos = valid.shape
        v, u = value.float(), unit.long()
        n_bins = len(HIST_EDGES) + 1
        bins = torch.bucketize(v, HIST_EDGES.to(dev)).clamp(0, n_bins - 1)
        self.fired.index_add_(0, u.cpu(), torch.ones(len(u), dtype=torch.long))
        self.hist.view(-1).index_add_(0, (u * n_bins + bins).cpu(), torch.ones(len(u), dtype=torch.long))
        self.n_tokens += int(valid.sum())
        first = (~valid).long().sum(1) * (~valid[:, 0]).long()
        n_ex, self.n_examples = self.n_examples, self.n_examples + batch
        beats = (v > self.values.min(1).values.to(dev)[u]).nonzero().squeeze(1)  # can enter a top-k
        if beats.numel() == 0:
            return
        # this batch's k strongest entries per unit: group by unit, strongest first within a unit
        sel = beats[torch.argsort(v[beats], descending=True, stable=True)]
        sel = sel[torch.argsort(u[sel], stable=True)]
        us = u[sel]
        counts = torch.bincount(us, minlength=units)
        rank = torch.arange(len(us), device=dev) - (counts.cumsum(0) - counts)[us]
        keep = rank < k
        sel, us, rank = sel[keep].cpu(), us[keep].cpu(), rank[keep].cpu()
        # merge on values only: which old slots are freed, which new entries take them
        rows = torch.unique(us)
        slot = torch.zeros(units, dtype=torch.long)
        slot[rows] = torch.arange(len(rows))
        new_vals = torch.full((len(rows), k), float("-inf"))
        new_vals[slot[us], rank] = v[sel.to(dev)].cpu()
        new_idx = torch.full((len(rows), k), -1, dtype=torch.long)
        new_idx[slot[us], rank] = torch.arange(len(sel))
        kept = torch.zeros((len(rows), 2 * k), dtype=torch.bool)
        kept.scatter_(1, torch.cat([self.values[rows], new_vals], 1).topk(k, dim=1).indices, True)
        free_r, free_slot = (~kept[:, :k]).nonzero(as_tuple=True)  # row-major: pairs up with `take`
        take_r, take_j = kept[:, k:].nonzero(as_tuple=True)
        cand = new_idx[take_r, take_j]
        ok = cand >= 0  # a -inf tie may pick an empty new slot: leave the old (empty) slot alone
        target = rows[free_r[ok]] * k + free_slot[ok]
        pick = sel[cand[ok]].to(dev)
        # contexts only for the entries that enter
        bb, pp, up = at[pick] // pos, at[pick] % pos, u[pick]
        cols = pp[:, None] + torch.arange(-self.before, self.after + 1, device=dev)
        inside = (cols >= 0) & (cols < pos)
        near = bb[:, None] * pos + cols.clamp(0, pos - 1)
        inside &= valid.view(-1)[near]
        keys, order = (at * units + u).sort()  # look the unit up at the neighbouring positions
        query = near * units + up[:, None]
        idx = torch.searchsorted(keys, query).clamp_max(len(keys) - 1)
        width = cols.shape[1]
        self.values.view(-1)[target] = v[pick].cpu()
        self.example.view(-1)[target] = (bb + n_ex).cpu()
        self.position.view(-1)[target] = (pp - first[bb]).cpu()
        ctx_tokens = tokens.to(dev).reshape(-1)[near].masked_fill(~inside, PAD)
        self.context_tokens.view(-1, width)[target] = ctx_tokens.cpu()
        ctx_acts = torch.where((keys[idx] == query) & inside, v[order][idx], 0.0)
        self.context_acts.view(-1, width)[target] = ctx_acts.cpu()

    def sort_(self) -> None:
        """Order every unit's slots strongest first (as `StreamingTopK` keeps them)."""
        order = self.values.argsort(1, descending=True)
        self.values, self.example, self.position = (
            t.gather(1, order) for t in (self.values, self.example, self.position)
        )
        wide = order[..., None].expand(-1, -1, self.context_tokens.shape[2])
        self.context_tokens = self.context_tokens.gather(1, wide)
        self.context_acts = self.context_acts.gather(1, wide)
