"""Train the built-in model on the generated corpus (CPU, a few minutes, reproducible from a seed).

The model is trained as GPT-2 style transformer-lens parameters (LayerNorm, learned positional
embeddings, GELU) and saved as a Hugging Face GPT-2 checkpoint (`interp.toy.checkpoint`). Each training row is `<bos> document <eos>`, right-padded with `<pad>`; the
loss is next-token cross-entropy on every non-pad target, so inference with transformer-lens'
prepended `<bos>` sees exactly what training saw. Rows are bucketed by length to keep padding
small. The optimiser is AdamW with linear warmup and cosine decay; the schedule is set by the
step count, so a run with `--steps N` and a seed is reproducible (`--minutes` only stops early).

Command line (writes the artifacts shipped in `interp/toy/artifacts/` by default):

    python -m interp.toy.train                # the shipped run: 1600 steps, seed 0
    python -m interp.toy.train --tiny --steps 50 --out /tmp/toy   # a quick smoke run

Outputs: `config.json`, `model.safetensors`, the tokenizer files, `loss.csv`, `loss.html`,
`training.json` (settings and time taken) and `eval.json` (held-out accuracies).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tqdm.auto import tqdm

from interp.core.tokens import pad_rows
from interp.toy import TOY_DIR, corpus
from interp.toy.checkpoint import gpt2_config, to_gpt2_state
from interp.toy.params import ToyConfig, ToyParams
from interp.toy.tokenizer import BOS, EOS, PAD, SPECIAL_TOKENS, build_tokenizer

DEFAULT_STEPS = 1600



@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings.

    Example:
        >>> TrainConfig(batch_size=32).lr
        0.002
    """

    batch_size: int = 64
    lr: float = 2e-3
    min_lr_frac: float = 0.05
    warmup_steps: int = 150
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.98)
    grad_clip: float = 1.0
    bucket_batches: int = 16  # batches drawn together and bucketed by length
    threads: int = 2


def model_config(
    d_vocab: int,
    *,
    n_layers: int = 4,
    d_model: int = 128,
    n_heads: int = 4,
    d_mlp: int | None = None,
    n_ctx: int = 64,
    seed: int = 0,
) -> ToyConfig:
    """The GPT-2 style configuration of the built-in model.

    Example:
        >>> model_config(900).n_layers
        4
    """
    if d_model % n_heads:
        raise ValueError(f"d_model {d_model} must be divisible by n_heads {n_heads}")
    return ToyConfig(
        n_layers=n_layers,
        d_model=d_model,
        n_ctx=n_ctx,
        d_head=d_model // n_heads,
        n_heads=n_heads,
        d_mlp=d_mlp if d_mlp is not None else 4 * d_model,
        d_vocab=d_vocab,
        seed=seed,
    )


def checkpoint_config(folder: str | Path, seed: int = 0) -> ToyConfig:
    """The training configuration of a saved built-in model (its GPT-2 `config.json`)."""
    c = json.loads((Path(folder) / "config.json").read_text())
    return model_config(c["vocab_size"], n_layers=c["n_layer"], d_model=c["n_embd"], n_heads=c["n_head"],
                        d_mlp=c["n_inner"], n_ctx=c["n_positions"], seed=seed)


def tiny_config(d_vocab: int, seed: int = 0) -> ToyConfig:
    """A 2-layer, d_model 32 configuration for smoke tests (trains in seconds)."""
    return model_config(d_vocab, n_layers=2, d_model=32, n_heads=2, d_mlp=64, seed=seed)


def config_to_json(cfg: ToyConfig) -> dict:
    """The fields of a config (`ToyConfig(**fields)` rebuilds it)."""
    return asdict(cfg)


class Encoder:
    """Fast word -> id encoding of corpus documents (they are already space-separated tokens).

    Equivalent to the saved tokenizer on corpus text; a test checks that.
    """

    def __init__(self, vocab: dict[str, int]):
        self.vocab = vocab
        self.bos, self.eos, self.pad = vocab[BOS], vocab[EOS], vocab[PAD]

    def row(self, document: str) -> list[int]:
        """`<bos> document <eos>` as ids."""
        return [self.bos, *(self.vocab[w] for w in document.split()), self.eos]


def batches(
    encoder: Encoder, batch_size: int, *, seed: int, n_ctx: int, bucket: int = 16
) -> Iterator[torch.Tensor]:
    """Endless stream of right-padded `[batch, pos]` token batches, bucketed by length.

    Not `interp.core.tokens.length_batches` (a token budget): an optimiser step takes a fixed
    number of documents, stably sorted and shuffled by a seeded `random.Random` so a seed gives
    the same batches forever (the shipped run's first losses are checked against `loss.csv`).
    Right padding keeps each document at its inference positions; `<pad>` targets are ignored.
    """
    docs = iter(corpus.documents(10**12, seed=seed, split="train"))
    rng = random.Random(f"batches-{seed}")
    while True:
        rows = [encoder.row(next(docs))[:n_ctx] for _ in range(batch_size * bucket)]
        rows.sort(key=len)
        chunks = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
        rng.shuffle(chunks)
        for chunk in chunks:
            yield pad_rows(chunk, encoder.pad, side="right")[0]


def fast_forward(model: ToyParams, tokens: torch.Tensor) -> torch.Tensor:
    """Logits of the GPT-2 style model, computed without hook points.

    The same arithmetic as transformer-lens' forward for this architecture (LayerNorm, learned
    positions, GELU, causal attention), on the parameters as it names them, but with fused
    query/key/value products and `scaled_dot_product_attention`: about twice as fast on CPU for
    training. A test checks it against a `HookedTransformer` holding the same parameters.
    """
    cfg = model.cfg
    if cfg.normalization_type != "LN" or cfg.positional_embedding_type != "standard" or cfg.act_fn != "gelu":
        raise ValueError("fast_forward supports the GPT-2 style toy architecture only")
    shape = (cfg.d_model,)
    x = model.embed.W_E[tokens] + model.pos_embed.W_pos[: tokens.shape[1]]
    for block in model.blocks:
        attn = block.attn
        h = F.layer_norm(x, shape, block.ln1.w, block.ln1.b, eps=cfg.eps)
        w_qkv = torch.cat([attn.W_Q, attn.W_K, attn.W_V], 0)
        b_qkv = torch.cat([attn.b_Q, attn.b_K, attn.b_V], 0)
        qkv = torch.einsum("btd,hde->bhte", h, w_qkv) + b_qkv[None, :, None, :]
        q, k, v = qkv.split(cfg.n_heads, dim=1)
        z = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + torch.einsum("bhte,hed->btd", z, attn.W_O) + attn.b_O
        h = F.layer_norm(x, shape, block.ln2.w, block.ln2.b, eps=cfg.eps)
        x = x + F.gelu(h @ block.mlp.W_in + block.mlp.b_in) @ block.mlp.W_out + block.mlp.b_out
    x = F.layer_norm(x, shape, model.ln_final.w, model.ln_final.b, eps=cfg.eps)
    return x @ model.unembed.W_U + model.unembed.b_U


def lm_loss(model: ToyParams, tokens: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Mean next-token cross-entropy over non-pad targets."""
    logits = fast_forward(model, tokens[:, :-1])
    targets = tokens[:, 1:]
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=pad_id
    )


def _lr_factor(step: int, total: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps))
    return cfg.min_lr_frac + (1 - cfg.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * progress))


def _optimizer(model: ToyParams, cfg: TrainConfig) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.ndim >= 2 and "W_pos" not in name else no_decay).append(p)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=cfg.betas,
    )


def save_model(model: ToyParams, out_dir: str | Path) -> None:
    """Write the trained parameters as a Hugging Face GPT-2 checkpoint (`config.json`,
    `model.safetensors`; `interp.toy.checkpoint` says how the unembedding bias is carried)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok = model.tokenizer
    config = gpt2_config(config_to_json(model.cfg), bos=tok.bos_token_id, eos=tok.eos_token_id, pad=tok.pad_token_id)
    state = {k: v.detach().to("cpu", torch.float32) for k, v in model.named_parameters()}
    save_file(to_gpt2_state(state, model.cfg.n_layers), str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    (out_dir / "config.json").write_text(json.dumps(config, indent=1) + "\n")


def _write_loss(out_dir: Path, rows: list[tuple[int, float, float, float]]) -> None:
    with open(out_dir / "loss.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "loss", "lr", "seconds"])
        w.writerows((s, f"{l:.5f}", f"{lr:.6g}", f"{t:.1f}") for s, l, lr, t in rows)
    try:
        import plotly.graph_objects as go

        steps = [r[0] for r in rows]
        losses = [r[1] for r in rows]
        k = 25  # moving average
        smooth = [sum(losses[max(0, i - k + 1) : i + 1]) / len(losses[max(0, i - k + 1) : i + 1])
                  for i in range(len(losses))]
        fig = go.Figure([
            go.Scatter(x=steps, y=losses, name="loss", opacity=0.35),
            go.Scatter(x=steps, y=smooth, name=f"mean of {k}"),
        ])
        fig.update_layout(title="built-in model: training loss", xaxis_title="step",
                          yaxis_title="cross-entropy (nats)", yaxis_type="log")
        fig.write_html(out_dir / "loss.html", include_plotlyjs="cdn")
    except Exception as err:  # the plot is a convenience; the CSV is the record
        print(f"could not write loss.html: {err}")


def train(
    cfg: ToyConfig | None = None,
    train_cfg: TrainConfig | None = None,
    *,
    out_dir: str | Path | None = None,
    max_steps: int = DEFAULT_STEPS,
    max_minutes: float | None = None,
    seed: int = 0,
    tiny: bool = False,
    progress: bool = True,
    evaluate_after: bool | None = None,
    stop_after: int | None = None,
) -> list[float]:
    """Train the built-in model and (if `out_dir` is given) write its artifacts there.

    Args:
        cfg: Model configuration; default `model_config(...)` (or `tiny_config` if `tiny`).
            Its `d_vocab` is replaced by the tokenizer's size.
        train_cfg: Optimisation settings; default `TrainConfig()`.
        out_dir: Where to write artifacts; `None` writes nothing.
        max_steps: Number of optimiser steps (sets the learning-rate schedule).
        max_minutes: Stop early after this much wall time (the schedule is not rescaled).
        seed: Seeds the initialisation and the corpus.
        tiny: Use the tiny configuration.
        progress: Show a tqdm progress bar.
        evaluate_after: Run the held-out evaluation and write `eval.json` (default: when
            writing artifacts of a non-tiny model).
        stop_after: Stop after this many steps without changing the schedule (to check that
            a run reproduces the start of a longer one).

    Returns:
        The loss of every step.

    Example:
        >>> losses = train(tiny=True, max_steps=30, progress=False)
        >>> losses[-1] < losses[0]
        True
    """
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    train_cfg = train_cfg or TrainConfig()
    torch.set_num_threads(train_cfg.threads)
    torch.manual_seed(seed)
    random.seed(seed)

    if out_dir is None:  # the tokenizer still needs a folder while the model is built
        import tempfile

        with tempfile.TemporaryDirectory(prefix="toy-tokenizer-") as tmp:
            return _train(cfg, train_cfg, Path(tmp), None, max_steps, max_minutes, seed, tiny,
                          progress, False, stop_after)
    return _train(cfg, train_cfg, Path(out_dir), Path(out_dir), max_steps, max_minutes, seed,
                  tiny, progress, evaluate_after, stop_after)


def _train(
    cfg: ToyConfig | None, train_cfg: TrainConfig, tok_dir: Path, out_dir: Path | None,
    max_steps: int, max_minutes: float | None, seed: int, tiny: bool, progress: bool,
    evaluate_after: bool | None, stop_after: int | None,
) -> list[float]:
    tokenizer = build_tokenizer(corpus.vocabulary(), tok_dir)
    vocab = tokenizer.get_vocab()
    if [vocab[t] for t in SPECIAL_TOKENS] != list(range(len(SPECIAL_TOKENS))):
        raise RuntimeError("tokenizer special tokens are not at ids 0-3")
    d_vocab = len(vocab)
    if cfg is None:
        cfg = tiny_config(d_vocab, seed) if tiny else model_config(d_vocab, seed=seed)
    else:
        cfg = replace(cfg, d_vocab=d_vocab, seed=seed)
    model = ToyParams(cfg, tokenizer=tokenizer)
    model.train()
    encoder = Encoder(vocab)
    opt = _optimizer(model, train_cfg)
    stream = batches(encoder, train_cfg.batch_size, seed=seed, n_ctx=cfg.n_ctx,
                     bucket=train_cfg.bucket_batches)

    losses: list[float] = []
    rows: list[tuple[int, float, float, float]] = []
    start = time.time()
    bar = tqdm(range(max_steps), desc="training toy model", disable=not progress,
               dynamic_ncols=True, mininterval=2.0)
    for step in bar:
        if stop_after is not None and step >= stop_after:
            break
        lr = train_cfg.lr * _lr_factor(step, max_steps, train_cfg)
        for group in opt.param_groups:
            group["lr"] = lr
        tokens = next(stream)
        loss = lm_loss(model, tokens, encoder.pad)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train_cfg.grad_clip)
        opt.step()
        value = float(loss.detach())
        losses.append(value)
        elapsed = time.time() - start
        rows.append((step, value, lr, elapsed))
        if step % 10 == 0:
            bar.set_postfix(loss=f"{sum(losses[-50:]) / len(losses[-50:]):.3f}", lr=f"{lr:.2e}")
        if max_minutes is not None and elapsed > 60 * max_minutes:
            bar.write(f"stopping after {elapsed / 60:.1f} minutes at step {step + 1}")
            break
    bar.close()
    minutes = (time.time() - start) / 60
    model.eval()

    if out_dir is not None:
        out = Path(out_dir)
        save_model(model, out)
        _write_loss(out, rows)
        info = {
            "seed": seed,
            "steps_planned": max_steps,
            "steps_done": len(losses),
            "minutes": round(minutes, 2),
            "final_loss_mean_of_100": round(sum(losses[-100:]) / len(losses[-100:]), 4),
            "train_config": asdict(train_cfg),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "command": f"python -m interp.toy.train --steps {max_steps} --seed {seed}"
            + (f" --minutes {max_minutes:g}" if max_minutes else "") + (" --tiny" if tiny else ""),
        }
        (out / "training.json").write_text(json.dumps(info, indent=1) + "\n")
        if evaluate_after if evaluate_after is not None else not tiny:
            from interp.toy import load_toy
            from interp.toy.evaluation import evaluate

            result = evaluate(load_toy(folder=out), progress=progress)  # the checkpoint as shipped
            (out / "eval.json").write_text(json.dumps(result.to_dict(), indent=1) + "\n")
            print(result)
    return losses


def main(argv: list[str] | None = None) -> None:
    """Command line entry point (`python -m interp.toy.train`)."""
    parser = argparse.ArgumentParser(description="Train the built-in toy model on CPU.")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                        help=f"optimiser steps (default {DEFAULT_STEPS})")
    parser.add_argument("--minutes", type=float, default=None, help="stop early after M minutes")
    parser.add_argument("--out", default=str(TOY_DIR), help=f"artifact folder (default {TOY_DIR})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true", help="tiny model for a smoke run")
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--lr", type=float, default=TrainConfig.lr)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--no-eval", action="store_true", help="skip the held-out evaluation")
    args = parser.parse_args(argv)
    train_cfg = replace(TrainConfig(), batch_size=args.batch_size, lr=args.lr)
    cfg = None
    if not args.tiny:
        cfg = model_config(1, n_layers=args.layers, d_model=args.d_model, n_heads=args.heads,
                           seed=args.seed)
    train(cfg, train_cfg, out_dir=args.out, max_steps=args.steps, max_minutes=args.minutes,
          seed=args.seed, tiny=args.tiny, evaluate_after=not args.no_eval and not args.tiny)


if __name__ == "__main__":
    main()
