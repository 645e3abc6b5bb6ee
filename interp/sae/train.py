"""Train a sparse autoencoder on any model's activations with sae-lens' own trainer.

A TopK SAE (Gao et al. 2024, "Scaling and evaluating sparse autoencoders") rewrites an
activation as its `k` largest feature activations times learned decoder directions. Training
uses sae-lens' classes unchanged: a `TopKTrainingSAE` fitted by `SAETrainer` (Adam, warm-up and
cosine learning rate, the TopK auxiliary loss that revives dead features, activation-norm
scaling folded into the weights at the end), fed through `mixing_buffer` (the shuffling buffer
of sae-lens' `ActivationsStore`). What this module adds is the part that depends on the model:

- which positions are text: rows are tokenized as the model's profile says (`interp.core.tokens`:
  BOS only where the model wants it), right-padded (each text keeps the positions it would have
  alone, so causal attention needs no mask), and padding plus the first position of every row
  are left out. The first position is BOS, or, in a model run without BOS (SmolLM2), the token
  that becomes the attention sink: its residual norm is ~100x the others' (measured 23,000 vs
  140 at SmolLM2's block 12), and one such outlier per row would dominate a squared-error loss;
- harvesting once: for a real model on a CPU the forward pass is the cost, so the activations
  are harvested once (the forward stopped after the SAE's block), stored in float16, and the
  SAE is trained for several epochs over them (`harvest_activations`, `stored_batches`);
- after training: the inference SAE is saved with `save_inference_model` and reloaded the way
  users load it, features that never fire are pruned (dropping a never-selected feature changes
  no activation), and it is evaluated on held-out texts: explained variance, L0, dead features,
  and next-token loss clean, with the SAE spliced in and with the activation zero-ablated.
  The numbers and the model's weight fingerprint go into `cfg.json` and `training.json`, so
  `interp.check_sae` refuses the SAE for other weights.

    python -m interp.sae.train --model smollm2-135m-instruct --layer 12 --out /tmp/sae

The built-in model's SAE (`python -m interp.toy.sae_train`) is trained by the same pieces.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch
from transformer_lens import HookedTransformer

from interp.core.cache import fingerprint
from interp.core.checks import check_count
from interp.core.hooks import harvest, hook_name
from interp.core.tokens import length_batches, pad_id, wants_bos
from interp.sae.evaluate import MAX_LEN, evaluate_sae, token_rows
from interp.sae.load import no_loading_advice

COMMAND = "python -m interp.sae.train"


def text_activations(
    model: HookedTransformer, hook: str, texts: Sequence[str], *, batch_size: int = 32,
    max_tokens: int = 4096, append_eos: bool = False,
) -> Iterator[torch.Tensor]:
    """`[tokens, d_in]` activations at `hook` of the kept positions of `texts` (see `token_rows`),
    in batches of texts sorted by length (little padding), the forward stopped after the hook's block.

    Example:
        >>> torch.cat(list(text_activations(model, "blocks.2.hook_resid_post", docs))).shape
    """
    tokens, keep = token_rows(model, texts, append_eos=append_eos)
    lengths = (keep.sum(1) + 1).tolist()
    device = model.cfg.device
    for idx in length_batches(lengths, batch_size, max_tokens):
        width = int(max(lengths[i] for i in idx.tolist()))
        acts = harvest(model, tokens[idx, :width].to(device), [hook])[hook]
        yield acts[keep[idx, :width].to(acts.device)].cpu()


def harvest_activations(
    model: HookedTransformer, hook: str, texts: Sequence[str], folder: str | Path, *, chunk: int = 200,
    minutes: float | None = None, progress: bool = True,
) -> torch.Tensor:
    """Activations at `hook` of `texts`, harvested once into `folder` (float16 chunks of `chunk`
    texts, resumable: chunks already there are read, not recomputed) and returned as one tensor.

    With `minutes`, harvesting stops after the first chunk that ends past that budget, and the
    SAE is trained on what was harvested (the texts are best shuffled beforehand).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    start, parts = time.time(), []
    for n, i in enumerate(range(0, len(texts), chunk)):
        path = folder / f"{hook}-{n:05d}.pt"
        if not path.exists():
            if minutes is not None and time.time() - start > 60 * minutes:
                break
            acts = torch.cat(list(text_activations(model, hook, texts[i : i + chunk]))).half()
            torch.save(acts, path)
            if progress:
                done = sum(len(p) for p in parts) + len(acts)
                took = (time.time() - start) / 60
                print(f"harvested {done} tokens from {i + chunk} texts in {took:.1f} min", flush=True)
        parts.append(torch.load(path, weights_only=True))  # tensors only, never pickled objects
    return torch.cat(parts)


def stored_batches(acts: torch.Tensor, *, seed: int, rows: int = 8192) -> Iterator[torch.Tensor]:
    """Endless float32 batches of `rows` stored activations, each epoch in a fresh random order."""
    gen = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(len(acts), generator=gen)
        for i in range(0, len(acts), rows):
            yield acts[order[i : i + rows]].float()


@no_loading_advice()
def fit_sae(activations: Iterator[torch.Tensor], metadata, *, d_in: int, d_sae: int, k: int,
            training_tokens: int, lr: float = 1e-3, batch_tokens: int = 2048, device: str = "cpu"):
    """A TopK SAE trained by sae-lens' `SAETrainer` on `training_tokens` activations drawn from
    `activations` through `mixing_buffer`, saved as an inference SAE and reloaded (eval mode).

    Args:
        activations: an endless iterator of `[tokens, d_in]` float tensors.
        metadata: the `SAEMetadata` recorded in `cfg.json` (hook, model, context, ...).
        d_in, d_sae, k: input width, number of features, active features per token.
        training_tokens, lr, batch_tokens: samples seen, Adam learning rate (warm-up, cosine to
            a tenth), samples per step.
    """
    from sae_lens import SAE, LoggingConfig
    from sae_lens.config import SAETrainerConfig
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.training.mixing_buffer import mixing_buffer
    from sae_lens.training.sae_trainer import SAETrainer

    steps = training_tokens // batch_tokens
    sae = TopKTrainingSAE(TopKTrainingSAEConfig(
        d_in=d_in, d_sae=d_sae, k=k, normalize_activations="expected_average_only_in", metadata=metadata,
    ))
    cfg = SAETrainerConfig(
        total_training_samples=training_tokens, train_batch_size_samples=batch_tokens, lr=lr, lr_end=lr / 10,
        lr_scheduler_name="cosineannealing", lr_warm_up_steps=max(1, steps // 20), device=device,
        dead_feature_window=max(50, steps // 10), n_batches_for_norm_estimate=20,
        logger=LoggingConfig(log_to_wandb=False),
    )
    provider = mixing_buffer(buffer_size=16 * batch_tokens, batch_size=batch_tokens,
                             activations_loader=activations)
    trained = SAETrainer(cfg=cfg, sae=sae, data_provider=provider).fit()
    with tempfile.TemporaryDirectory() as tmp:  # the inference SAE, reloaded the way users load it
        trained.save_inference_model(tmp)
        return SAE.load_from_disk(tmp).eval()


@torch.inference_mode()
def prune_dead(sae, activations: Iterable[torch.Tensor]):
    """The SAE without the features that never fire on `activations` (dead latents).

    A feature that never fires is never in a token's top k, so dropping its encoder column and
    decoder row changes no activation on such text and makes every encode cheaper. Features are
    renumbered in order.
    """
    fired = torch.zeros(sae.cfg.d_sae, dtype=torch.bool)
    for acts in activations:
        fired |= (sae.encode(acts.float().to(sae.device)) > 0).any(0).cpu()
    keep = fired.nonzero().squeeze(1)
    if getattr(sae.cfg, "k", 0) > len(keep):
        raise RuntimeError(f"only {len(keep)} features fire, fewer than k={sae.cfg.k}: train longer")
    state = {name: p.detach().clone() for name, p in sae.state_dict().items()}
    state["W_enc"], state["b_enc"] = state["W_enc"][:, keep], state["b_enc"][keep]
    state["W_dec"] = state["W_dec"][keep]
    pruned = type(sae).from_dict(sae.cfg.to_dict() | {"d_sae": len(keep)})
    pruned.load_state_dict(state)
    return pruned.eval()


def sae_metadata(model: HookedTransformer, hook: str, dataset: str):
    """sae-lens `SAEMetadata` for an SAE of `model` at `hook` trained here on `dataset`."""
    from sae_lens.saes.sae import SAEMetadata

    tok = model.tokenizer
    special = sorted({pad_id(model), *([tok.bos_token_id] if tok.bos_token_id is not None else [])})
    return SAEMetadata(
        model_name=model.cfg.model_name, hook_name=hook, hook_head_index=None,
        model_class_name="HookedTransformer", context_size=min(model.cfg.n_ctx, MAX_LEN),
        prepend_bos=wants_bos(model), exclude_special_tokens=special,
        dataset_path=dataset, model_from_pretrained_kwargs={"center_writing_weights": False},
    )


def save_sae(sae, model: HookedTransformer, metrics: dict, info: dict, out_dir: str | Path,
             progress: bool = True) -> dict:
    """Record `metrics`, `info` and the model's fingerprint in `sae`'s metadata and write
    `cfg.json`, `sae_weights.safetensors` and `training.json` to `out_dir`; returns the record."""
    record = {**metrics, "interp_model_fingerprint": fingerprint(model), **info}
    for key, value in record.items():
        sae.cfg.metadata[key] = value
    sae.cfg.metadata.num_dead_features = metrics["dead_features"]  # sae-lens' count was of the unpruned SAE
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sae.save_model(out)
    (out / "training.json").write_text(json.dumps(record, indent=1) + "\n")
    if progress:
        print(json.dumps(record, indent=1), flush=True)
    return record


def stdlib_split(every: int = 10) -> tuple[list[str], list[str]]:
    """The standard library's prose paragraphs (`interp.core.corpus`) split into training texts
    and held-out texts (paragraph `i` is held out when `i % every == every - 1`).

    Example:
        >>> train, held_out = stdlib_split()
        >>> len(held_out) * 10 <= len(train) + len(held_out)
        True
    """
    from interp.core.corpus import stdlib_paragraphs

    paragraphs = stdlib_paragraphs()
    return ([p for i, p in enumerate(paragraphs) if i % every != every - 1],
            [p for i, p in enumerate(paragraphs) if i % every == every - 1])


@no_loading_advice()  # sae-lens' advice on loading the model, for every SAE built here
def train_sae(
    model: HookedTransformer, texts: Sequence[str], eval_texts: Sequence[str], *, layer: int,
    out_dir: str | Path,
    d_sae: int = 1024, k: int = 32, epochs: float = 4.0, lr: float = 1e-3, seed: int = 0,
    activations_dir: str | Path | None = None, harvest_minutes: float | None = None,
    dataset: str = "interp.core.corpus.stdlib_paragraphs", command: str = COMMAND, progress: bool = True,
) -> dict:
    """Harvest `model`'s `hook_resid_post` at `layer` on `texts` once, train a TopK SAE on it for
    `epochs` passes, prune dead features, evaluate on `eval_texts`, save; returns the record.

    Args:
        model: any `HookedTransformer` with a tokenizer.
        texts: training texts (shuffled with `seed` before harvesting).
        eval_texts: held-out texts for the evaluation.
        layer: the block whose `hook_resid_post` the SAE reads.
        out_dir: folder for `cfg.json`, `sae_weights.safetensors` and `training.json`.
        d_sae, k: number of features and active features per token (TopK).
        epochs: passes over the harvested activations.
        lr: Adam learning rate.
        seed: seeds the text order, the initialisation and the shuffling.
        activations_dir: where harvested activations are kept (a temporary folder when None);
            reusing one skips the forward passes already done.
        harvest_minutes: stop harvesting after about this long and train on what was harvested.

    Example:
        >>> train, held_out = stdlib_split()
        >>> train_sae(model, train[:500], held_out[:50], layer=2, out_dir="/tmp/sae", d_sae=256, k=8)
    """
    check_count(layer, "layer", minimum=0, maximum=model.cfg.n_layers - 1)
    check_count(d_sae, "d_sae")
    check_count(k, "k")
    if k > d_sae:
        raise ValueError(f"k={k} must be at most d_sae={d_sae}")
    if not isinstance(epochs, (int, float)) or isinstance(epochs, bool) or epochs <= 0:
        raise ValueError(f"epochs={epochs!r}: expected a positive number")
    torch.manual_seed(seed)
    random.seed(seed)
    start = time.time()
    hook = hook_name(model, "resid_post", layer)
    order = list(texts)
    random.Random(seed).shuffle(order)
    with tempfile.TemporaryDirectory() as tmp:
        acts = harvest_activations(model, hook, order, activations_dir or tmp, minutes=harvest_minutes,
                                   progress=progress)
    harvest_min = (time.time() - start) / 60
    tokens = int(len(acts) * epochs)
    metadata = sae_metadata(model, hook, dataset)
    sae = fit_sae(stored_batches(acts, seed=seed), metadata, d_in=acts.shape[1], d_sae=d_sae, k=k,
                  training_tokens=tokens, lr=lr)
    train_min = (time.time() - start) / 60 - harvest_min
    n_trained = sae.cfg.d_sae
    sae = prune_dead(sae, acts.split(8192))
    metrics = evaluate_sae(model, sae, list(eval_texts))
    info = {
        "features_trained": n_trained, "features_kept": sae.cfg.d_sae, "harvested_tokens": len(acts),
        "training_tokens": tokens, "epochs": epochs, "layer": layer, "d_sae": d_sae, "k": k, "lr": lr,
        "seed": seed, "eval_texts": len(eval_texts), "minutes_harvest": round(harvest_min, 2),
        "minutes_train": round(train_min, 2),
        "minutes": round((time.time() - start) / 60, 2), "torch": torch.__version__,
        "trainer": "sae_lens SAETrainer + TopKTrainingSAE", "positions": "text tokens; padding and each row's "
        "first position (BOS, or the attention sink when there is no BOS) excluded", "command": command,
    }
    return save_sae(sae, model, metrics, info, out_dir, progress)


def main(argv: list[str] | None = None) -> None:
    """Command line entry point (`python -m interp.sae.train`): an SAE for any model on the
    standard library's prose (every tenth paragraph held out for the evaluation)."""
    import interp

    parser = argparse.ArgumentParser(description="Train a TopK SAE on a model's residual stream "
                                                 "(sae-lens trainer).")
    parser.add_argument("--model", required=True, help="a name interp.load_model accepts")
    parser.add_argument("--layer", type=int, required=True, help="block whose hook_resid_post is read")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--d-sae", type=int, default=1024)
    parser.add_argument("--k", type=int, default=32, help="active features per token (TopK)")
    parser.add_argument("--epochs", type=float, default=4.0)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--texts", type=int, default=None, help="use only this many training texts")
    parser.add_argument("--eval-texts", type=int, default=300, help="held-out texts for the evaluation")
    parser.add_argument("--activations", default=None,
                        help="folder that keeps harvested activations (resumable)")
    parser.add_argument("--harvest-minutes", type=float, default=None, help="stop harvesting after this long")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = interp.load_model(args.model, device="cpu")
    train, held_out = stdlib_split()
    command = " ".join([COMMAND, *(argv if argv is not None else __import__("sys").argv[1:])])
    train_sae(model, train[: args.texts], held_out[: args.eval_texts], layer=args.layer, out_dir=args.out,
              d_sae=args.d_sae, k=args.k, epochs=args.epochs, lr=args.lr, seed=args.seed,
              activations_dir=args.activations, harvest_minutes=args.harvest_minutes, command=command)


if __name__ == "__main__":
    main()
