"""The batched engine behind `interp.patching.patchscope`: patch source states into many target
rows in one pass, then generate greedily with the key-value cache (Ghandeharioun et al. 2024,
"Patchscopes", arXiv:2401.06102, run as one batch instead of a loop of forwards).

Each row i of a sweep is one (source layer, target layer) pair: the source prompt's state at
`source_layers[i]` (at the source position) replaces the target prompt's state at the
placeholder at `target_layers[i]`. Two strategies compute all rows at once:

- `one_pass`: the source prompt (cut after the source position: later tokens cannot change it)
  is row 0 of a left-padded batch with one target row per pair. Hooks go up the layers with the
  forward: at each layer they keep row 0's state if that layer is a source and write the kept
  states over the placeholder of the rows that target this layer, so targets must not precede
  their sources. One forward for the whole sweep.
- `shared_prefix`: one forward reads the source states (stopping at the deepest layer needed;
  for `resid_pre` that state is what the forward returns), one forward runs the target tokens
  before the placeholder into a key-value cache (causal attention: no patch can reach them),
  and one forward per batch of rows runs every row from the placeholder on, patched, on a copy
  of that cache. Fewest FLOPs, any target layer, grids of any size.

In both, the hooks exist only for the prompt pass. Generation then continues hook-free on the
key-value cache, which holds the patched keys and values: later steps see one position each and
must not be patched.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tqdm.auto import tqdm
from transformer_lens import HookedTransformer
from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

from interp.core.engine import hf_generate, is_bridge
from interp.core.hooks import harvest, hook_name, hooked
from interp.core.lean import lean_plan, prompt_logits
from interp.core.readout import last_logits
from interp.core.tokens import pad_id, pad_rows

STRATEGIES = ("auto", "one_pass", "shared_prefix")


def _fused_hooks(
    model: HookedTransformer,
    site: str,
    pairs: Sequence[tuple[int, int]],
    src_col: int,
    ph_col: int,
    shift: torch.Tensor | None,
) -> list:
    """Hooks for the one-pass sweep. Row 0 is the source, row i+1 is pair i: each layer's hook
    first keeps the source row's state (if that layer is a source), then writes the kept states
    over the placeholder of the rows whose target is this layer (targets are never earlier)."""
    stash: dict[int, torch.Tensor] = {}
    source_set = {s for s, _ in pairs}
    hooks = []
    for layer in sorted(source_set | {t for _, t in pairs}):
        rows = torch.tensor([i + 1 for i, (_, t) in enumerate(pairs) if t == layer], dtype=torch.long)
        srcs = [s for s, t in pairs if t == layer]

        def hook(act: torch.Tensor, hook, layer=layer, rows=rows, srcs=srcs) -> torch.Tensor:
            if layer in source_set:
                stash[layer] = act[0, src_col].clone() if shift is None else act[0, src_col] + shift
            if srcs:
                act[rows.to(act.device), ph_col] = torch.stack([stash[s] for s in srcs])
            return act

        hooks.append((hook_name(model, site, layer), hook))
    return hooks


def _drop_first_row(cache: TransformerLensKeyValueCache) -> None:
    for entry in cache.entries:
        entry.past_keys, entry.past_values = entry.past_keys[1:], entry.past_values[1:]
    cache.previous_attention_mask = cache.previous_attention_mask[1:]


#: The fixed cost of one forward call on a CPU (Python and per-layer overhead of TransformerLens
#: 3.9), in token positions x d_model^2: about 70 token positions of a d_model=192 model, 4 of a
#: d_model=768 one (measured in CPU time on the built-in model and a GPT-2-small-sized one).
_CPU_CALL_COST = 2.7e6


def _one_pass_is_cheaper(
    model: HookedTransformer, pairs: Sequence[tuple[int, int]], src_pos: int, ph_pos: int, n_target: int
) -> bool:
    """`auto`: one forward over (rows + 1) x width token positions, or three forwards over the
    source, the target prefix and rows x suffix positions. On an accelerator (launch-bound for
    batches this small) one call always wins; on a CPU it wins while the extra positions it
    computes cost less than the two extra calls, which holds for small models only."""
    if next(model.parameters()).device.type != "cpu":
        return True
    one = (len(pairs) + 1) * max(src_pos + 1, n_target)
    shared = (src_pos + 1) + ph_pos + len(pairs) * (n_target - ph_pos)
    return (one - shared) * model.cfg.d_model**2 <= 2 * _CPU_CALL_COST


@torch.inference_mode()
def _source_states(
    model: HookedTransformer, src: torch.Tensor, src_pos: int, site: str, layers: Sequence[int]
) -> dict[int, torch.Tensor]:
    """The source prompt's states at `src_pos` for each layer, from one forward that reads only
    the tokens up to `src_pos` (later ones cannot change it) and stops after the deepest layer
    needed (`harvest`)."""
    names = {layer: hook_name(model, site, layer) for layer in layers}
    acts = harvest(model, src[:, : src_pos + 1], list(dict.fromkeys(names.values())), select=lambda a: a[:, -1])
    return {layer: acts[name][0] for layer, name in names.items()}


@torch.inference_mode()
def _prefix_cache(model: HookedTransformer, prefix: torch.Tensor) -> TransformerLensKeyValueCache:
    """Keys and values of the target tokens before the placeholder, computed once for all rows:
    causal attention means no patch at the placeholder can change them."""
    cache = TransformerLensKeyValueCache.init_cache(model.cfg, model.cfg.device, 1)
    if prefix.shape[1]:
        model(
            prefix,
            attention_mask=torch.ones_like(prefix),
            past_kv_cache=cache,
            stop_at_layer=model.cfg.n_layers,
        )
    return cache


def _expand(
    model: HookedTransformer, cache: TransformerLensKeyValueCache, rows: int
) -> TransformerLensKeyValueCache:
    out = TransformerLensKeyValueCache.init_cache(model.cfg, model.cfg.device, rows)
    for new, old in zip(out.entries, cache.entries):
        new.past_keys = old.past_keys.expand(rows, -1, -1, -1)
        new.past_values = old.past_values.expand(rows, -1, -1, -1)
    out.previous_attention_mask = cache.previous_attention_mask.expand(rows, -1)
    return out


def _patch_hooks(
    model: HookedTransformer, site: str, pairs: Sequence[tuple[int, int]], states: dict[int, torch.Tensor],
    col: int = 0,
) -> list:
    """Per target layer, a hook that writes each row's source state over the placeholder at
    column `col` (0 in the suffix pass), in the first forward it sees only: later forwards are
    generation steps, one new position each."""
    hooks = []
    for layer in sorted({t for _, t in pairs}):
        rows = torch.tensor([i for i, (_, t) in enumerate(pairs) if t == layer], dtype=torch.long)
        values = torch.stack([states[s] for s, t in pairs if t == layer])
        seen: list[bool] = []

        def hook(act: torch.Tensor, hook, rows=rows, values=values, seen=seen) -> torch.Tensor:
            if not seen:
                seen.append(True)
                act[rows.to(act.device), col] = values.to(act.device, act.dtype)
            return act

        hooks.append((hook_name(model, site, layer), hook))
    return hooks


@torch.inference_mode()
def _run_rows(
    model: HookedTransformer,
    tokens: torch.Tensor,
    mask: torch.Tensor,
    cache: TransformerLensKeyValueCache | None,
    hooks: list,
    *,
    source_row: bool,
    max_new_tokens: int,
    target_ids: Sequence[int],
) -> dict[str, torch.Tensor]:
    """The patched prompt pass (hooks on; row 0 is dropped after it when it is the source), then
    hook-free greedy steps on the KV cache, which already holds the patched keys and values
    (`cache` may be None when only one token is generated)."""
    steps, store = cache, {}  # `store`: the lean blocks' fused weights, for this call only
    with hooked(model, hooks):
        lean = lean_plan(model)  # with the patch hooks on: they sit on block-level points
        if steps is None and lean is not None:  # lean blocks attend over a cache, even for one token
            steps = TransformerLensKeyValueCache.init_cache(model.cfg, model.cfg.device, tokens.shape[0])
        logits = prompt_logits(model, tokens, mask, steps, lean, store).float()
    if source_row:
        if cache is not None:
            _drop_first_row(cache)
        logits = logits[1:]
    out = _first_step(logits, target_ids)
    nxt = logits.argmax(-1)
    generated = [nxt]
    plan = lean_plan(model) if max_new_tokens > 1 else None  # hook-free from here
    eos = model.tokenizer.eos_token_id
    done = nxt == eos if eos is not None else torch.zeros_like(nxt, dtype=torch.bool)
    ones = torch.ones((len(nxt), 1), dtype=torch.long, device=nxt.device)
    for _ in range(max_new_tokens - 1):
        if bool(done.all()):
            break
        nxt = prompt_logits(model, nxt[:, None], ones, steps, plan, store).argmax(-1)
        generated.append(nxt)
        if eos is not None:
            done = done | (nxt == eos)
    out["generated_ids"] = torch.stack(generated, 1).cpu()
    return out


def _first_step(logits: torch.Tensor, target_ids: Sequence[int]) -> dict[str, torch.Tensor]:
    """The first generated step's probability, and the targets' probabilities and ranks."""
    logits = logits.float()
    logp = logits.log_softmax(-1)
    nxt = logits.argmax(-1)
    ids = torch.tensor(list(target_ids), dtype=torch.long, device=logits.device)
    chosen = logits[:, ids]  # [row, target]
    ranks = [(logits > chosen[:, j : j + 1]).sum(-1) + 1 for j in range(len(ids))]
    return {
        "first_probs": logp.gather(-1, nxt[:, None])[:, 0].exp().cpu(),
        "target_probs": logp[:, ids].exp().cpu(),
        "target_ranks": (torch.stack(ranks, -1) if ranks else chosen.long()).cpu(),
    }


def _bridge_rows(
    model: HookedTransformer, tgt: torch.Tensor, ph_pos: int, pairs: Sequence[tuple[int, int]],
    states: dict[int, torch.Tensor], *, site: str, max_new_tokens: int, target_ids: Sequence[int],
) -> dict[str, torch.Tensor]:
    """A bridged model's rows: every row is the whole target prompt, its placeholder state
    replaced at its target layer in the prompt pass only, then Hugging Face's `generate`
    continues greedily on the key-value cache (which holds the patched keys and values)."""
    tokens = tgt.expand(len(pairs), -1)
    eos = model.tokenizer.eos_token_id
    with hooked(model, _patch_hooks(model, site, pairs, states, col=ph_pos)):
        if max_new_tokens == 1:  # one forward: no generate loop to set up for a one-token sweep
            first = last_logits(model, tokens, torch.ones_like(tokens))
            new = first.argmax(-1, keepdim=True)
        else:
            new, first = hf_generate(model, tokens, torch.ones_like(tokens), max_new_tokens=max_new_tokens,
                                     eos_ids=[] if eos is None else [eos], scores=True)
    out = _first_step(first, target_ids)
    out["generated_ids"] = new.cpu()
    return out


def _merge(results: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    width = max(r["generated_ids"].shape[1] for r in results)
    out = {}
    for key in results[0]:
        parts = [r[key] for r in results]
        if key == "generated_ids":  # a chunk that stopped early at EOS is padded with -1 (dropped on decode)
            parts = [torch.nn.functional.pad(p, (0, width - p.shape[1]), value=-1) for p in parts]
        out[key] = torch.cat(parts)
    return out


def sweep(
    model: HookedTransformer,
    src: torch.Tensor,
    src_pos: int,
    tgt: torch.Tensor,
    ph_pos: int,
    pairs: Sequence[tuple[int, int]],
    *,
    site: str,
    strategy: str = "auto",
    batch_size: int = 64,
    max_new_tokens: int = 1,
    target_ids: Sequence[int] = (),
    shift: torch.Tensor | None = None,
    states: dict[int, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Run every (source layer, target layer) row of a patchscope and generate greedily.

    Args:
        model: the model.
        src, tgt: `[1, pos]` source and target tokens (checked by the caller).
        src_pos, ph_pos: the source position and the placeholder position (absolute).
        pairs: one (source layer, target layer) per row.
        site: `resid_pre` or `resid_post`.
        strategy: `one_pass`, `shared_prefix` or `auto` (see the module docstring).
        batch_size: rows per forward (one pass needs all rows in one batch).
        max_new_tokens: greedy tokens per row.
        target_ids: tokens whose first-step probabilities and ranks to report.
        shift: `[d_model]` added to every source state before it is written (the position fix).
        states: given source states `{source layer: [d_model]}` instead of reading them from
            `src` (which is then unused): a vector patched in (`shared_prefix` only).

    Returns:
        `generated_ids` `[row, new]` (-1 after a batch stopped early at EOS), `first_probs`
        `[row]`, and `target_probs` and `target_ranks` `[row, target]` (1 = top).

    Raises:
        ValueError: an unknown strategy, or `one_pass` where it cannot apply.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy {strategy!r} must be one of {STRATEGIES}")
    one_pass_ok = states is None and len(pairs) <= batch_size and all(t >= s for s, t in pairs)
    if strategy == "one_pass" and not one_pass_ok:
        raise ValueError(
            f"strategy 'one_pass' needs every target layer >= its source layer, at most "
            f"batch_size={batch_size} rows (got {len(pairs)}) and a source prompt (not given states); "
            "use strategy='shared_prefix' or 'auto'"
        )
    if strategy == "auto":
        strategy = (
            "one_pass"
            if one_pass_ok and _one_pass_is_cheaper(model, pairs, src_pos, ph_pos, tgt.shape[1])
            else "shared_prefix"
        )
    results: list[dict[str, torch.Tensor]] = []
    if is_bridge(model):  # Hugging Face's blocks and generate: the source states, then every row
        if states is None:
            states = _source_states(model, src, src_pos, site, sorted({s for s, _ in pairs}))
        if shift is not None:
            states = {layer: state + shift for layer, state in states.items()}
        for start in range(0, len(pairs), batch_size):
            results.append(_bridge_rows(model, tgt, ph_pos, pairs[start : start + batch_size], states,
                                        site=site, max_new_tokens=max_new_tokens, target_ids=target_ids))
        return _merge(results)
    if strategy == "one_pass":
        # One forward for everything: the source (up to its position) is row 0 of the batch, and
        # each layer's hook copies its state into the target rows as the pass goes up the layers.
        rows = [src[0, : src_pos + 1]] + [tgt[0]] * len(pairs)
        tokens, mask = pad_rows(rows, pad_id(model))
        offsets = [tokens.shape[1] - len(r) for r in rows]
        hooks = _fused_hooks(model, site, pairs, src_pos + offsets[0], ph_pos + offsets[1], shift)
        cache = (
            TransformerLensKeyValueCache.init_cache(model.cfg, model.cfg.device, len(pairs) + 1)
            if max_new_tokens > 1
            else None
        )
        results.append(
            _run_rows(
                model,
                tokens,
                mask,
                cache,
                hooks,
                source_row=True,
                max_new_tokens=max_new_tokens,
                target_ids=target_ids,
            )
        )
    else:
        # Read the source states first, run the target tokens before the placeholder once (no
        # patch can reach them), then every batch of rows from the placeholder on, patched.
        if states is None:
            states = _source_states(model, src, src_pos, site, sorted({s for s, _ in pairs}))
        if shift is not None:
            states = {layer: state + shift for layer, state in states.items()}
        prefix = _prefix_cache(model, tgt[:, :ph_pos])
        suffix = tgt[:, ph_pos:]
        chunks = range(0, len(pairs), batch_size)
        for start in tqdm(chunks, desc="patchscope", disable=len(chunks) < 4, leave=False):
            part = pairs[start : start + batch_size]
            tokens = suffix.expand(len(part), -1)
            results.append(
                _run_rows(
                    model,
                    tokens,
                    torch.ones_like(tokens),
                    _expand(model, prefix, len(part)),
                    _patch_hooks(model, site, part, states),
                    source_row=False,
                    max_new_tokens=max_new_tokens,
                    target_ids=target_ids,
                )
            )
    return _merge(results)
