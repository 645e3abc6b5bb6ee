"""The logit lens: what each layer of the residual stream "thinks" the next token is.

A decoder-only transformer adds every block's output to one residual stream and reads its
prediction from the end of it: `logits = unembed(final_norm(resid_post[-1]))`. The logit lens
(nostalgebraist, 2020, "interpreting GPT: the logit lens", LessWrong) applies that same read-out
to the stream after *every* block, as if the model stopped there. Watching the answer appear
over layers (`the capital of france is` -> `paris` from some layer on) shows where a fact or a
decision is formed; entropy and the KL divergence to the final distribution show how settled
each layer is (Belrose et al., 2023, "Eliciting Latent Predictions from Transformers with the
Tuned Lens", arXiv:2303.08112, which also discusses where the plain lens misleads: early layers
of some models are not in the unembedding's basis yet, which a learned per-layer translator,
the tuned lens, corrects; it would sit beside this module and return the same result).

Two details make the read-out honest, and both live in `interp.core.readout.final_logits`:

- **Per-layer normalization.** The final norm (LayerNorm for GPT-2, RMSNorm for Gemma-2) is
  applied to each layer's *own* activations, with its own mean and scale. Reusing the scale the
  final layer computed (as cached-scale shortcuts do) divides early, small residuals by the wrong
  number and makes early layers look uniform.
- **Soft-capping.** Gemma-2 squashes its logits with `cap * tanh(logits / cap)`; the lens does
  too, so the last layer of the lens *is* the model's output distribution.

Everything is computed in one forward pass that keeps only the requested positions, then
unembedded on the model's device in chunks; only top-k tokens, entropy, KL and the chosen
targets' probabilities and ranks come back to the host, never a layers x positions x vocabulary
tensor.

Example:
    >>> lens = interp.logit_lens(model, "the capital of france is", targets=["paris"])
    >>> lens.top1()[-1], lens.first_top1("paris")
    ('paris', 3)
    >>> lens.plot()                       # layers x positions heatmap, colour = top-1 probability
    >>> lens.plot("trajectory")           # p(paris) over layers
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
from jaxtyping import Int
from tqdm.auto import tqdm
from transformer_lens import HookedTransformer

from interp.core.checks import check_count, check_flag, check_model, check_prompt, check_token_ids
from interp.core.engine import is_bridge
from interp.core.hooks import hook_name, run_to
from interp.core.readout import final_logits
from interp.core.tokens import maybe_chat, post_instruction_length, target_id, tokenize, use_chat
from interp.lens.result import LogitLensResult, layer_labels

#: Elements of one [layers, positions, vocab] float32 chunk unembedded at a time (plus temporaries).
CHUNK_ELEMENTS = 2**24

Positions = int | str | Sequence[int | str] | None


def read_positions(model: HookedTransformer, positions: Positions, n: int) -> list[int]:
    """Absolute, sorted, distinct token positions of an `n`-token prompt.

    `positions` is None (all), an int (negatives count from the end), `"last"`,
    `"post_instruction"` (the chat template's tokens after the request), or a list of those.

    Example:
        >>> read_positions(model, [-1, 0, "last"], 6)
        [0, 5]
    """
    if positions is None:
        return list(range(n))
    items = list(positions) if isinstance(positions, (list, tuple, range)) else [positions]
    if not items:
        raise ValueError("positions is empty: pass None for all positions, or some ints")
    out: list[int] = []
    for p in items:
        if p == "last":
            p = -1
        elif p == "post_instruction":
            out += [i % n for i in range(-min(n, post_instruction_length(model)), 0)]
            continue
        if isinstance(p, bool) or not isinstance(p, numbers.Integral):
            raise ValueError(f"position {p!r} must be an int, 'last' or 'post_instruction'")
        if not -n <= p < n:
            raise ValueError(f"position {p} is out of range for a prompt of {n} tokens: expected [-{n}, {n})")
        out.append(p % n)
    return sorted(set(out))


def layer_residuals(model: HookedTransformer, tokens: torch.Tensor, cols: list[int]) -> torch.Tensor:
    """The embedding and every block's output at `cols` of a `[1, pos]` prompt, from one forward.

    The forward runs in stages (`stop_at_layer` / `start_at_layer`: the embedding, then one
    block at a time), keeping only the wanted positions of each stage's output: no hooks to add
    and remove, and the final norm and unembedding of the forward are skipped (the lens does its
    own, only where needed). Shortformer models, whose blocks need the position embedding on the
    side, are read with hooks instead.

    Returns:
        `[n_layers + 1, len(cols), d_model]` on the unembedding's device.
    """
    index = torch.tensor(cols, device=tokens.device)
    device = model.unembed.W_U.device  # blocks may sit on several devices
    n = model.cfg.n_layers
    if is_bridge(model) or model.cfg.positional_embedding_type == "shortformer":
        sites = [hook_name(model, "resid_pre", 0)] + [hook_name(model, "resid_post", i) for i in range(n)]
        acts = run_to(model, tokens, sites, select=lambda act: act[:, index.to(act.device)])
        return torch.stack([acts[s][0].to(device) for s in sites])
    resid = model(tokens, stop_at_layer=0)
    kept = [resid[0, index.to(resid.device)].to(device)]
    for layer in range(n):
        resid = model(resid, start_at_layer=layer, stop_at_layer=layer + 1)
        kept.append(resid[0, index.to(resid.device)].to(device))
    return torch.stack(kept)


#: Elements of one [layers, positions, vocab] slice that the statistics work on at a time: small
#: enough to stay in a CPU core's cache through the log-softmax, exp, top-k and dot products.
CACHE_ELEMENTS = 2**19


def _row_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`(a * b).sum(-1)` for `[..., v]` tensors of one shape, as batched dot products: no
    `[..., v]` temporary is written (the elementwise form writes one per operation)."""
    return torch.matmul(a.unsqueeze(-2), b.unsqueeze(-1))[..., 0, 0]


def _slice_statistics(logits: torch.Tensor, tid: torch.Tensor, k: int) -> dict[str, torch.Tensor]:
    """Top-k, entropy, KL to the last layer and the targets' probabilities and ranks of
    `[layer, p, vocab]` logits (last row = the final layer).

    Entropy `-sum p log p` and `KL(final || layer) = sum p_f log p_f - sum p_f log p_layer` are
    dot products over the vocabulary, taken as batched matrix products (no elementwise
    temporaries); the final layer's KL is the difference of two equal dot products: exactly 0."""
    tl = logits[..., tid]  # [layer, p, target]
    ranks = [(logits > tl[..., j : j + 1]).sum(-1) + 1 for j in range(len(tid))]
    logp = logits.log_softmax(-1)
    top = logp.topk(k, dim=-1)
    final_p = logp[-1].exp()  # [p, vocab]
    cross = torch.einsum("lpv,pv->lp", logp, final_p)  # sum p_f log p_layer
    if not bool(cross.isfinite().all()):  # 0 * -inf where the final layer gives a token p = 0
        cross = torch.where(final_p > 0, final_p * logp, 0.0).sum(-1)
    probs = logp.exp()
    ent = -_row_dot(probs, logp)
    if not bool(ent.isfinite().all()):  # a -inf log-probability (0 * -inf): count it as 0
        ent = -torch.where(probs > 0, probs * logp, 0.0).sum(-1)
    return {
        "ids": top.indices, "probs": top.values.exp(), "ent": ent, "kl": (cross[-1:] - cross).clamp_min(0),
        "tp": logp[..., tid].exp(), "tr": torch.stack(ranks, -1) if ranks else tl.long(),
    }


def lens_statistics(
    model: HookedTransformer, resid: torch.Tensor, target_ids: Sequence[int], k: int, step: int
) -> dict[str, torch.Tensor]:
    """Decode `[layer, pos, d_model]` residuals (last row = the final layer) a chunk of `step`
    positions at a time; return CPU tensors `ids`/`probs` (top-k), `ent`, `kl`, `tp`/`tr`
    (targets' probabilities and 1-based ranks).

    Each chunk is unembedded in one matrix product (which wants many rows), then reduced a
    cache-sized slice of positions at a time (`CACHE_ELEMENTS`): the log-softmax, exp, top-k and
    dot products then read a slice from memory once instead of the whole chunk once each. On a
    GPT-2-sized model (64 positions, one CPU thread) the elementwise passes over whole chunks
    took as long as tuned-lens' entire log-softmax and top-k."""
    tid = torch.tensor(list(target_ids), dtype=torch.long, device=resid.device)
    parts: dict[str, list[torch.Tensor]] = {key: [] for key in ("ids", "probs", "ent", "kl", "tp", "tr")}
    starts = range(0, resid.shape[1], step)
    on_cpu = resid.device.type == "cpu"
    for start in tqdm(starts, desc="logit lens", leave=False) if len(starts) >= 8 else starts:
        logits = final_logits(model, resid[:, start : start + step], copy_free=True).float()  # [layer, p, vocab]
        sub = max(1, CACHE_ELEMENTS // (logits.shape[0] * logits.shape[2])) if on_cpu else logits.shape[1]
        for s in range(0, logits.shape[1], sub):
            for key, value in _slice_statistics(logits[:, s : s + sub], tid, k).items():
                parts[key].append(value.cpu())
        del logits
    return {key: torch.cat(v, dim=1) for key, v in parts.items()}


def check_tokens(model: HookedTransformer, tokens: torch.Tensor) -> torch.Tensor:
    """Validate a pre-tokenized prompt (`[pos]` or `[1, pos]`) and return it as `[1, pos]`."""
    if tokens.ndim == 1:
        tokens = tokens[None]
    if tokens.ndim != 2 or tokens.shape[0] != 1:
        raise ValueError(f"tokens must have shape [pos] or [1, pos], got {tuple(tokens.shape)}")
    if tokens.shape[1] == 0:
        raise ValueError("tokens are empty: expected at least one token")
    check_token_ids(tokens, model.cfg.d_vocab, "prompt tokens", n_ctx=model.cfg.n_ctx)
    return tokens.to(next(model.parameters()).device)


def _one_prompt(prompt: object) -> object:
    """The lens reads one prompt: a one-element list is unwrapped, a longer one is an error."""
    if isinstance(prompt, (list, tuple)):
        if len(prompt) != 1:
            raise ValueError(
                f"logit_lens reads one prompt, but prompt is a list of {len(prompt)}: call it once per "
                "prompt ([interp.logit_lens(model, p) for p in prompts])"
            )
        return prompt[0]
    return prompt


@torch.inference_mode()
def logit_lens(
    model: HookedTransformer,
    prompt: str | Int[torch.Tensor, " pos"] | Int[torch.Tensor, "1 pos"],
    *,
    positions: Positions = None,
    targets: str | int | Sequence[str | int] = (),
    k: int = 5,
    chat: bool | None = False,
    prepend_bos: bool | None = None,
    chunk_positions: int | None = None,
) -> LogitLensResult:
    """Decode every layer's residual stream at the chosen positions of a prompt.

    One forward pass, run a block at a time so that only the requested positions of each
    block's output are kept (the forward's own final norm and unembedding are skipped), then
    per-layer normalization, unembedding and soft-capping on the model's device, a chunk of
    positions at a time.

    Args:
        model: any `HookedTransformer` with a tokenizer.
        prompt: the text to read (one prompt; a list of several is an error), or its token ids
            (`[pos]` or `[1, pos]`, used as given: BOS is not added).
        positions: read positions: absolute token positions (BOS is 0; negatives count from
            the end), `"last"`, `"post_instruction"`, a list of those, or None for all. For a
            long prompt, ask only for what you will look at.
        targets: tokens (strings or ids) whose probability and rank to track; a target of several
            tokens is tracked by its first token, with a warning.
        k: how many top tokens to keep per cell.
        chat: wrap the prompt in the model's chat template (None: the model's profile decides;
            default False: read the text as given).
        prepend_bos: prepend the BOS token; None follows the model (`interp.core.tokens.wants_bos`).
        chunk_positions: positions per unembedding chunk (default: sized to the vocabulary).

    Returns:
        A `LogitLensResult`.

    Raises:
        ValueError: empty prompt, a list of several prompts, prompt longer than the context,
            bad positions or k.
        KeyError: a target that is not a single token.

    Example:
        >>> lens = interp.logit_lens(model, "the capital of france is", positions="last", targets="paris")
        >>> lens.trajectory("paris")
    """
    check_model(model)
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= model.cfg.d_vocab:
        raise ValueError(f"k={k!r} must be an int in [1, {model.cfg.d_vocab}]")
    prompt = _one_prompt(prompt)
    if not isinstance(prompt, torch.Tensor):
        check_prompt(prompt, "prompt")
    check_flag(prepend_bos, "prepend_bos", none=True)
    if chunk_positions is not None:
        check_count(chunk_positions, "chunk_positions")
    target_list = [targets] if isinstance(targets, (str, numbers.Integral)) else list(targets)
    target_ids = [target_id(model, t) for t in target_list]
    if isinstance(prompt, torch.Tensor):
        if chat:
            raise ValueError("chat=True needs text: token ids are read as given")
        tokens = check_tokens(model, prompt)
        prompt = model.tokenizer.decode(tokens[0])
    else:
        if use_chat(model, chat):
            prompt = maybe_chat(model, [prompt], True)[0]
        tokens, _ = tokenize(model, prompt, prepend_bos=prepend_bos)
    cols = read_positions(model, positions, tokens.shape[1])
    step = chunk_positions or max(1, CHUNK_ELEMENTS // ((model.cfg.n_layers + 1) * model.cfg.d_vocab))
    resid = layer_residuals(model, tokens, cols)  # [layer, pos, d_model]
    stats = lens_statistics(model, resid, target_ids, k, step)  # W_U read as stored: no copy per chunk

    prompt_ids = tokens[0].tolist()
    unique = sorted({*prompt_ids, *target_ids, *stats["ids"].flatten().tolist()})
    names = dict(zip(unique, model.to_str_tokens(torch.tensor(unique))))  # one tokenizer call
    return LogitLensResult(
        prompt=prompt,
        tokens=tuple(names[i] for i in prompt_ids),
        positions=tuple(cols),
        layers=layer_labels(model),
        top_ids=stats["ids"],
        top_probs=stats["probs"],
        top_tokens=tuple(
            tuple(tuple(names[i] for i in cell) for cell in row) for row in stats["ids"].tolist()
        ),
        entropy=stats["ent"],
        kl_to_final=stats["kl"],
        targets=tuple(t if isinstance(t, str) else names[t] for t in target_list),
        target_ids=tuple(target_ids),
        target_probs=stats["tp"],
        target_ranks=stats["tr"],
    )
