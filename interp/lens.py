"""The logit lens: what each layer of the residual stream "thinks" the next token is.

A decoder-only transformer adds every block's output to one residual stream and reads its
prediction from the end of it: `logits = unembed(final_norm(resid_post[-1]))`. The logit lens
(nostalgebraist, 2020, "interpreting GPT: the logit lens", LessWrong) applies that same read-out
to the stream after *every* block, as if the model stopped there. Watching the answer appear
over layers (`the capital of france is` -> `paris` from some layer on) shows where a fact or a
decision is formed; entropy and the KL divergence to the final distribution show how settled
each layer is (Belrose et al., 2023, "Eliciting Latent Predictions from Transformers with the
Tuned Lens", arXiv:2303.08112, which also discusses where the plain lens misleads).

Two details make the read-out honest:

- **Per-layer normalization.** The final norm (LayerNorm for GPT-2, RMSNorm for Gemma-2) is
  applied to each layer's *own* activations, with its own mean and scale. Reusing the scale the
  final layer computed (as cached-scale shortcuts do) divides early, small residuals by the wrong
  number and makes early layers look uniform.
- **Soft-capping.** Gemma-2 squashes its logits with `cap * tanh(logits / cap)`; the lens does
  too, so the last layer of the lens *is* the model's output distribution.

Rows of the result ("layers") are the embedding (`resid_pre` of block 0, label `"embed"`) and
then the output of each block (`resid_post` of block i, label `"i"`). Everything is computed in
one forward pass that keeps only the requested positions, then unembedded on the model's device
in chunks; only top-k tokens, entropy, KL and the chosen targets' probabilities and ranks come
back to the host, never a layers x positions x vocabulary tensor.

Example:
    >>> lens = interp.logit_lens(model, "the capital of france is", targets=["paris"])
    >>> lens.top1()[-1], lens.first_top1("paris")
    ('paris', 3)
    >>> lens.plot()                       # layers x positions heatmap, colour = top-1 probability
    >>> lens.plot("trajectory")           # p(paris) over layers
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import plotly.graph_objects as go
import torch
from jaxtyping import Float, Int
from tqdm.auto import tqdm
from transformer_lens import HookedTransformer

from interp.core.hooks import hook_name, record
from interp.core.readout import final_logits
from interp.core.tokens import token_id, tokenize
from interp.core.plotting import heatmap, layer_lines

EMBED = "embed"
#: Elements of one [layers, positions, vocab] float32 chunk unembedded at a time (plus temporaries).
_CHUNK_ELEMENTS = 2**24


def layer_labels(model: HookedTransformer) -> tuple[str, ...]:
    """Row labels of a lens: `"embed"`, then `"0"` ... `"n_layers-1"` (output of each block)."""
    return (EMBED, *(str(i) for i in range(model.cfg.n_layers)))


@dataclass(frozen=True, repr=False)
class LogitLensResult:
    """The logit lens of one prompt: per layer x position, top-k, entropy, KL, target stats.

    Rows are `layers` (`"embed"`, then the output of each block); columns are `positions`
    (absolute token positions of the prompt, BOS included at 0). Probabilities are those of the
    lens distribution; ranks are 1-based (1 = top token); entropy and KL are in nats, and
    `kl_to_final` is KL(final || layer), 0 at the last layer.
    """

    prompt: str
    tokens: tuple[str, ...]
    positions: tuple[int, ...]
    layers: tuple[str, ...]
    top_ids: Int[torch.Tensor, "layer pos k"]
    top_probs: Float[torch.Tensor, "layer pos k"]
    top_tokens: tuple[tuple[tuple[str, ...], ...], ...]
    entropy: Float[torch.Tensor, "layer pos"]
    kl_to_final: Float[torch.Tensor, "layer pos"]
    targets: tuple[str, ...] = ()
    target_ids: tuple[int, ...] = ()
    target_probs: Float[torch.Tensor, "layer pos target"] = field(
        default_factory=lambda: torch.zeros(0, 0, 0)
    )
    target_ranks: Int[torch.Tensor, "layer pos target"] = field(
        default_factory=lambda: torch.zeros(0, 0, 0, dtype=torch.long)
    )

    def __post_init__(self) -> None:
        n_l, n_p = len(self.layers), len(self.positions)
        k = self.top_ids.shape[-1] if self.top_ids.ndim == 3 else -1
        checks = {
            "top_ids": (self.top_ids, (n_l, n_p, k)),
            "top_probs": (self.top_probs, (n_l, n_p, k)),
            "entropy": (self.entropy, (n_l, n_p)),
            "kl_to_final": (self.kl_to_final, (n_l, n_p)),
            "target_probs": (self.target_probs, (n_l, n_p, len(self.targets))),
            "target_ranks": (self.target_ranks, (n_l, n_p, len(self.targets))),
        }
        for name, (t, shape) in checks.items():
            if tuple(t.shape) != shape:
                raise ValueError(
                    f"{name} has shape {tuple(t.shape)}, expected {shape} (layers, positions, ...)"
                )
            if t.device.type != "cpu" or t.requires_grad:
                raise ValueError(f"{name} must be a detached CPU tensor")
        if len(self.target_ids) != len(self.targets):
            raise ValueError("targets and target_ids differ in length")
        if len(self.top_tokens) != n_l or any(len(r) != n_p for r in self.top_tokens):
            raise ValueError("top_tokens must be nested [layer][position][k]")
        if any(not 0 <= p < len(self.tokens) for p in self.positions):
            raise ValueError(f"positions {self.positions} must index the {len(self.tokens)} prompt tokens")

    # --- lookups --------------------------------------------------------------------------

    def column(self, position: int) -> int:
        """The column of an absolute prompt position (negatives count from the end).

        Raises:
            KeyError: the position was not computed (see `positions`).
        """
        n = len(self.tokens)
        if not -n <= position < n:
            raise KeyError(f"position {position} is outside the prompt's {n} tokens: expected [-{n}, {n})")
        absolute = position % n
        if absolute not in self.positions:
            raise KeyError(
                f"position {position} was not computed; computed positions: {list(self.positions)}"
            )
        return self.positions.index(absolute)

    def layer_index(self, layer: int | str) -> int:
        """Row index of a layer given as a label (`"embed"`, `"3"`) or a row index (negatives allowed)."""
        if isinstance(layer, str):
            if layer not in self.layers:
                raise KeyError(f"layer {layer!r} is not one of {list(self.layers)}")
            return self.layers.index(layer)
        n = len(self.layers)
        if not -n <= layer < n:
            raise KeyError(f"layer row {layer} is out of range: expected [-{n}, {n})")
        return layer % n

    def _target(self, token: str | int) -> int:
        for i, (name, tid) in enumerate(zip(self.targets, self.target_ids)):
            if token == tid or (isinstance(token, str) and token.strip() == name.strip()):
                return i
        raise KeyError(
            f"{token!r} is not a target of this lens; targets: {list(self.targets)} (pass targets=[...])"
        )

    def top1(self, position: int = -1) -> tuple[str, ...]:
        """The top token of every layer at `position`, embed first."""
        c = self.column(position)
        return tuple(row[c][0] for row in self.top_tokens)

    def first_top1(
        self, token: str | int | None = None, position: int = -1, *, stays: bool = False
    ) -> int | None:
        """Row index of the first layer where `token` is the top-1 prediction at `position`.

        Args:
            token: a token string or id; None means the final layer's top-1.
            position: the prompt position (default the last).
            stays: require that it remains top-1 through the last layer.

        Returns:
            The row index into `layers` (0 is the embedding), or None if it never is.

        Example:
            >>> lens.layers[lens.first_top1("paris")]
            '2'
        """
        c = self.column(position)
        ids = self.top_ids[:, c, 0]
        if token is None:
            want = int(ids[-1])
            hit = ids == want
        elif isinstance(token, int):
            hit = ids == token
        else:
            hit = torch.tensor([row[c][0].strip() == token.strip() for row in self.top_tokens])
        if stays:
            # flip, cumulative AND from the end, flip back: true where it is top-1 from here on
            hit = torch.cummin(hit.flip(0).int(), 0).values.flip(0).bool()
        rows = torch.nonzero(hit).flatten()
        return int(rows[0]) if len(rows) else None

    def trajectory(
        self, token: str | int, position: int = -1, metric: str = "prob"
    ) -> Float[torch.Tensor, "layer"]:
        """A target token's probability (`metric="prob"`) or rank (`"rank"`) over layers."""
        i, c = self._target(token), self.column(position)
        if metric == "prob":
            return self.target_probs[:, c, i]
        if metric == "rank":
            return self.target_ranks[:, c, i]
        raise ValueError(f"metric {metric!r} must be 'prob' or 'rank'")

    # --- views ----------------------------------------------------------------------------

    def to_frame(self):
        """One row per (layer, position): top-1 token and probability, entropy, KL, targets."""
        import pandas as pd

        records = []
        for li, label in enumerate(self.layers):
            for c, pos in enumerate(self.positions):
                row = {
                    "layer": label,
                    "position": pos,
                    "token": self.tokens[pos],
                    "top1": self.top_tokens[li][c][0],
                    "top1_prob": float(self.top_probs[li, c, 0]),
                    "entropy": float(self.entropy[li, c]),
                    "kl_to_final": float(self.kl_to_final[li, c]),
                }
                for t, name in enumerate(self.targets):
                    row[f"p({name})"] = float(self.target_probs[li, c, t])
                    row[f"rank({name})"] = int(self.target_ranks[li, c, t])
                records.append(row)
        return pd.DataFrame.from_records(records)

    def plot(
        self, kind: str = "heatmap", *, color: str = "prob", metric: str = "prob", position: int = -1
    ) -> go.Figure:
        """The lens as a figure.

        Args:
            kind: `"heatmap"` (layers x positions, cell text = top token, hover = top-k) or
                `"trajectory"` (each target's probability or rank over layers at `position`).
            color: heatmap colour: `"prob"` (top-1 probability), `"entropy"` or `"kl"`.
            metric: trajectory y: `"prob"` or `"rank"`.
            position: trajectory position.
        """
        if kind == "heatmap":
            return self._heatmap(color)
        if kind == "trajectory":
            return self._trajectory(metric, position)
        raise ValueError(f"kind {kind!r} must be 'heatmap' or 'trajectory'")

    def _heatmap(self, color: str) -> go.Figure:
        values = {"prob": self.top_probs[..., 0], "entropy": self.entropy, "kl": self.kl_to_final}
        if color not in values:
            raise ValueError(f"color {color!r} must be one of {list(values)}")
        hover = [
            [
                f"layer {label}, position {pos} ({self.tokens[pos]!r})<br>"
                + "<br>".join(
                    f"{tok!r}: {float(p):.3f}"
                    for tok, p in zip(self.top_tokens[li][c], self.top_probs[li, c])
                )
                + f"<br>entropy {float(self.entropy[li, c]):.2f} nats, "
                + f"KL to final {float(self.kl_to_final[li, c]):.2f}"
                for c, pos in enumerate(self.positions)
            ]
            for li, label in enumerate(self.layers)
        ]
        text = [[row[c][0] for c in range(len(self.positions))] for row in self.top_tokens]
        scales = {
            "prob": ("Blues", 0.0, 1.0, "top-1 prob"),
            "entropy": ("Viridis", 0.0, None, "entropy"),
            "kl": ("Reds", 0.0, None, "KL to final"),
        }
        cs, zmin, zmax, title = scales[color]
        return heatmap(
            values[color],
            x_labels=[self.tokens[p] for p in self.positions],
            y_labels=self.layers,
            text=text,
            hover=hover,
            title=f"logit lens: {self.prompt!r}",
            x_title="position (input token)",
            y_title="layer (output of block)",
            colorbar_title=title,
            colorscale=cs,
            zmin=zmin,
            zmax=zmax,
            reverse_y=False,
        )

    def _trajectory(self, metric: str, position: int) -> go.Figure:
        if not self.targets:
            raise ValueError("no targets to trace: call logit_lens(..., targets=[...])")
        series = {name: self.trajectory(name, position, metric) for name in self.targets}
        c = self.column(position)
        hover = {
            name: [
                f"layer {label}: {metric} {float(v):.4g}; top-1 {row[c][0]!r}"
                for label, v, row in zip(self.layers, ys, self.top_tokens)
            ]
            for name, ys in series.items()
        }
        pos = self.positions[c]
        return layer_lines(
            self.layers,
            series,
            hover=hover,
            title=f"logit lens at position {pos} ({self.tokens[pos]!r}) of {self.prompt!r}",
            y_title="probability" if metric == "prob" else "rank (1 = top)",
            log_y=metric == "rank",
            y_range=(0, 1) if metric == "prob" else None,
        )

    def __repr__(self) -> str:
        last = self.positions[-1]
        return (
            f"LogitLensResult({self.prompt!r}: {len(self.layers)} layers x {len(self.positions)} positions, "
            f"top-1 at position {last} by layer: {' '.join(row[-1][0] for row in self.top_tokens)})"
        )


def _positions(positions: int | Sequence[int] | None, n: int) -> list[int]:
    if positions is None:
        return list(range(n))
    items = [positions] if isinstance(positions, int) else list(positions)
    if not items:
        raise ValueError("positions is empty: pass None for all positions, or some ints")
    out = []
    for p in items:
        if isinstance(p, bool) or not isinstance(p, int):
            raise ValueError(f"position {p!r} must be an int")
        if not -n <= p < n:
            raise ValueError(f"position {p} is out of range for a prompt of {n} tokens: expected [-{n}, {n})")
        out.append(p % n)
    return sorted(set(out))


def _layer_residuals(model: HookedTransformer, tokens: torch.Tensor, cols: list[int]) -> torch.Tensor:
    """The embedding and every block's output at `cols`, from one forward pass.

    The forward runs in stages (`stop_at_layer` / `start_at_layer`: the embedding, then one
    block at a time), keeping only the wanted positions of each stage's output: no hooks to add
    and remove, and the final norm and unembedding of the forward are skipped (the lens does its
    own, only where needed). Shortformer models, whose blocks need the position embedding on the
    side, are read with hooks instead.
    """
    index = torch.tensor(cols, device=tokens.device)
    device = model.unembed.W_U.device  # blocks may sit on several devices
    n = model.cfg.n_layers
    if model.cfg.positional_embedding_type == "shortformer":
        sites = [hook_name(model, "resid_pre", 0)] + [hook_name(model, "resid_post", i) for i in range(n)]
        with record(model, sites, select=lambda act: act[:, index.to(act.device)]) as acts:
            model(tokens, stop_at_layer=n)
        return torch.stack([acts[s][0].to(device) for s in sites])
    resid = model(tokens, stop_at_layer=0)
    kept = [resid[0, index.to(resid.device)].to(device)]
    for layer in range(n):
        resid = model(resid, start_at_layer=layer, stop_at_layer=layer + 1)
        kept.append(resid[0, index.to(resid.device)].to(device))
    return torch.stack(kept)


def _decode(model: HookedTransformer, ids: list[int]) -> dict[int, str]:
    unique = sorted(set(ids))
    return dict(
        zip(unique, model.tokenizer.batch_decode([[i] for i in unique], clean_up_tokenization_spaces=False))
    )


def _token_id(model: HookedTransformer, token: str | int) -> int:
    """`interp.token_id` with a fast path: the same candidate spellings, looked up one by one
    instead of building the whole vocabulary dict (which costs milliseconds on large vocabularies)."""
    tok = model.tokenizer
    if isinstance(token, str) and hasattr(tok, "convert_tokens_to_ids"):
        unk = getattr(tok, "unk_token", None)
        for candidate in (token, " " + token.lstrip(), "\u0120" + token.lstrip(), "\u2581" + token.lstrip()):
            if candidate == unk:
                continue
            i = tok.convert_tokens_to_ids(candidate)
            if isinstance(i, int) and i != getattr(tok, "unk_token_id", None):
                return i
    return token_id(model, token)


def _check_tokens(model: HookedTransformer, tokens: torch.Tensor) -> torch.Tensor:
    """Validate a pre-tokenized prompt (`[pos]` or `[1, pos]`) and return it as `[1, pos]`."""
    if tokens.ndim == 1:
        tokens = tokens[None]
    if tokens.ndim != 2 or tokens.shape[0] != 1:
        raise ValueError(f"tokens must have shape [pos] or [1, pos], got {tuple(tokens.shape)}")
    if tokens.shape[1] == 0:
        raise ValueError("tokens are empty: expected at least one token")
    if tokens.shape[1] > model.cfg.n_ctx:
        raise ValueError(
            f"prompt is {tokens.shape[1]} tokens long; the model's context is {model.cfg.n_ctx} tokens"
        )
    if tokens.is_floating_point() or int(tokens.min()) < 0 or int(tokens.max()) >= model.cfg.d_vocab:
        raise ValueError(f"tokens must be integer ids in [0, {model.cfg.d_vocab})")
    return tokens.to(next(model.parameters()).device)


@torch.inference_mode()
def logit_lens(
    model: HookedTransformer,
    prompt: str | Int[torch.Tensor, "pos"] | Int[torch.Tensor, "1 pos"],
    *,
    positions: int | Sequence[int] | None = None,
    targets: str | int | Sequence[str | int] = (),
    k: int = 5,
    prepend_bos: bool = True,
    chunk_positions: int | None = None,
) -> LogitLensResult:
    """Decode every layer's residual stream at the chosen positions of a prompt.

    One forward pass, run a block at a time so that only the requested positions of each
    block's output are kept (the forward's own final norm and unembedding are skipped), then
    per-layer normalization, unembedding and soft-capping on the model's device, a chunk of
    positions at a time.

    Args:
        model: any `HookedTransformer` with a tokenizer.
        prompt: the text to read, or its token ids (`[pos]` or `[1, pos]`, used as given: BOS
            is not added).
        positions: absolute token positions (BOS is 0; negatives count from the end), or None
            for all. For a long prompt, ask only for what you will look at.
        targets: tokens (strings or ids) whose probability and rank to track.
        k: how many top tokens to keep per cell.
        prepend_bos: prepend the BOS token (as the model was trained).
        chunk_positions: positions per unembedding chunk (default: sized to the vocabulary).

    Returns:
        A `LogitLensResult`.

    Raises:
        ValueError: empty prompt, prompt longer than the context, bad positions or k.
        KeyError: a target that is not a single token.

    Example:
        >>> lens = interp.logit_lens(model, "the capital of france is", positions=-1, targets="paris")
        >>> lens.trajectory("paris")
    """
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= model.cfg.d_vocab:
        raise ValueError(f"k={k!r} must be an int in [1, {model.cfg.d_vocab}]")
    target_list = [targets] if isinstance(targets, (str, int)) else list(targets)
    target_ids = [_token_id(model, t) for t in target_list]
    if isinstance(prompt, torch.Tensor):
        tokens = _check_tokens(model, prompt)
        prompt = model.tokenizer.decode(tokens[0])
    else:
        tokens, _ = tokenize(model, prompt, prepend_bos=prepend_bos)
    n_tok = tokens.shape[1]
    cols = _positions(positions, n_tok)
    n = model.cfg.n_layers
    resid = _layer_residuals(model, tokens, cols)  # [layer, pos, d_model]

    n_rows, d_vocab = n + 1, model.cfg.d_vocab
    step = chunk_positions or max(1, _CHUNK_ELEMENTS // (n_rows * d_vocab))
    tid = torch.tensor(target_ids, dtype=torch.long, device=resid.device)
    parts: dict[str, list[torch.Tensor]] = {k_: [] for k_ in ("ids", "probs", "ent", "kl", "tp", "tr")}
    starts = range(0, len(cols), step)
    for start in tqdm(starts, desc="logit lens", leave=False) if len(starts) >= 8 else starts:
        logits = final_logits(model, resid[:, start : start + step]).float()  # [layer, p, vocab]
        logp = logits.log_softmax(-1)
        probs = logp.exp()
        parts["ent"].append(-torch.where(probs > 0, probs * logp, 0.0).sum(-1).cpu())
        final_p, final_logp = probs[-1:], logp[-1:]
        parts["kl"].append(
            torch.where(final_p > 0, final_p * (final_logp - logp), 0.0).sum(-1).clamp_min(0).cpu()
        )
        top = logp.topk(k, dim=-1)
        parts["ids"].append(top.indices.cpu())
        parts["probs"].append(top.values.exp().cpu())
        tl = logits[..., tid]  # [layer, p, target]
        parts["tp"].append(logp[..., tid].exp().cpu())
        ranks = [(logits > tl[..., j : j + 1]).sum(-1) + 1 for j in range(len(target_ids))]
        parts["tr"].append((torch.stack(ranks, -1) if ranks else tl.long()).cpu())
        del logits, logp, probs
    cat = {key: torch.cat(v, dim=1) for key, v in parts.items()}

    prompt_ids = tokens[0].tolist()
    names = _decode(model, [*prompt_ids, *cat["ids"].flatten().tolist()])  # one tokenizer call
    top_tokens = tuple(tuple(tuple(names[i] for i in cell) for cell in row) for row in cat["ids"].tolist())
    str_tokens = tuple(names[i] for i in prompt_ids)
    return LogitLensResult(
        prompt=prompt,
        tokens=str_tokens,
        positions=tuple(cols),
        layers=layer_labels(model),
        top_ids=cat["ids"],
        top_probs=cat["probs"],
        top_tokens=top_tokens,
        entropy=cat["ent"],
        kl_to_final=cat["kl"],
        targets=tuple(
            t if isinstance(t, str) else names.get(t) or model.tokenizer.decode([t]) for t in target_list
        ),
        target_ids=tuple(target_ids),
        target_probs=cat["tp"],
        target_ranks=cat["tr"],
    )
