"""Train the built-in SAE: a TopK sparse autoencoder on the built-in model's residual stream.

Training uses sae-lens' own training classes: a `TopKTrainingSAE` (Gao et al. 2024, "Scaling and
evaluating sparse autoencoders") fitted by sae-lens' `SAETrainer` (Adam, warm-up and cosine
learning rate, the TopK auxiliary loss for dead features, activation-norm scaling folded in at
the end). Its data provider is sae-lens' `mixing_buffer` (the shuffling buffer its
`ActivationsStore` uses) fed with activations harvested from the generated corpus: each
document exactly as the model was trained on it (`<bos> doc <eos>`, right-padded), batched by
length so little is padding, the forward stopped after the SAE's block, and only real text
tokens kept (no `<bos>`, no padding). On CPU this takes a few minutes.

After training, the inference SAE is saved with `SAE.save_inference_model`, reloaded (as
`sae_lens.SAE.load_from_disk` or `interp.load_sae("toy")` load it), stripped of the features
that never fire on 5000 fresh documents (dead latents: dropping them changes no activation and
makes encoding cheaper), and evaluated on other fresh documents: explained variance, L0, dead
features, and the model's next-token loss clean, with the SAE spliced in (at every position but
`<bos>`) and with the activation zero-ablated. Those
numbers and the fingerprint of the model weights it was trained on go into the SAE's metadata
(`cfg.json`) and `training.json`; `interp.load_sae("toy")` refuses an SAE whose fingerprint
does not match the shipped model, so retraining the model means rerunning this script:

    python -m interp.toy.sae_train                       # writes interp/toy/artifacts/sae/
    python -m interp.toy.sae_train --tokens 300000 --out /tmp/sae   # a quick run elsewhere
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from sae_lens.saes.sae import SAEMetadata
from transformer_lens import HookedTransformer

from interp.core.cache import fingerprint
from interp.core.hooks import harvest, hook_name, hooked
from interp.core.tokens import encode, length_batches, pad_rows
from interp.sae.load import no_loading_advice
from interp.toy import TOY_DIR, corpus, load_toy

SAE_DIR = TOY_DIR / "sae"
LAYER = 2  # blocks.2.hook_resid_post: after three of the four blocks
D_SAE = 4096
K = 16
TOKENS = 1_500_000
COMMAND = "python -m interp.toy.sae_train"


def token_rows(model: HookedTransformer, docs: list[str]) -> torch.Tensor:
    """`[n, pos]` rows `<bos> doc <eos> <pad> ...` (cut to `n_ctx`), as the built-in model was trained.

    Right-padded, unlike the left padding of `interp.tokenize`: these rows are read at every
    position (activations, next-token loss), not at the last one, and right padding keeps each
    document at the positions it was trained at, so causal attention needs no mask.

    Example:
        >>> token_rows(model, ["the cat sat ."])[0].tolist()[:2]  # <bos>, then "the"
        [1, 757]
    """
    tok = model.tokenizer
    rows = [[*ids, tok.eos_token_id][: model.cfg.n_ctx] for ids in encode(model, docs, prepend_bos=True)]
    return pad_rows(rows, tok.pad_token_id, side="right")[0]


@torch.inference_mode()
def evaluate_sae(model: HookedTransformer, sae, docs: list[str], *, batch_size: int = 64) -> dict[str, float]:
    """Explained variance, L0, dead features and spliced-in loss on `docs` (pad and `<bos>` excluded).

    Example:
        >>> evaluate_sae(model, interp.load_sae("toy"), list(corpus.documents(500, seed=1)))
    """
    hook = sae.cfg.metadata.hook_name
    tok = model.tokenizer
    sum_x = torch.zeros(sae.cfg.d_in, dtype=torch.float64)
    sq_norm = sq_resid = 0.0
    n = l0 = 0
    fired = torch.zeros(sae.cfg.d_sae, dtype=torch.bool)
    losses = {"clean": 0.0, "sae": 0.0, "zero": 0.0}
    n_targets = 0
    for i in range(0, len(docs), batch_size):
        rows = token_rows(model, docs[i : i + batch_size])
        keep = (rows != tok.pad_token_id) & (rows != tok.bos_token_id)  # positions the SAE is judged on
        stash = {}

        def splice(act, hook, mode="sae"):
            stash["x"] = act
            new = sae.decode(sae.encode(act)) if mode == "sae" else torch.zeros_like(act)
            return torch.where(keep[..., None], new.to(act.dtype), act)

        targets = rows[:, 1:]
        valid = targets != tok.pad_token_id
        for mode in ("clean", "sae", "zero"):
            hooks = [] if mode == "clean" else [(hook, lambda a, hook, m=mode: splice(a, hook, m))]
            with hooked(model, hooks):
                logits = model(rows, return_type="logits")[:, :-1]
            nll = torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none")
            losses[mode] += float(nll[valid].sum())
        n_targets += int(valid.sum())
        x = stash["x"][keep].double()
        feats = sae.encode(x.float())
        x_hat = sae.decode(feats).double()
        sum_x += x.sum(0)
        sq_norm += float(x.pow(2).sum())
        sq_resid += float((x - x_hat).pow(2).sum())
        n += x.shape[0]
        l0 += int((feats != 0).sum())
        fired |= (feats > 0).any(0)
    total_var = sq_norm / n - float((sum_x / n).pow(2).sum())
    clean, spliced, zero = (losses[m] / n_targets for m in ("clean", "sae", "zero"))
    return {
        "explained_variance": round(1 - (sq_resid / n) / total_var, 4),
        "l0": round(l0 / n, 3),
        "dead_features": int((~fired).sum()),
        "ce_loss_clean": round(clean, 4),
        "ce_loss_with_sae": round(spliced, 4),
        "ce_loss_zero_ablated": round(zero, 4),
        "ce_loss_recovered": round((zero - spliced) / (zero - clean), 4),
        "eval_tokens": n,
    }


def activation_batches(
    model: HookedTransformer, hook: str, *, seed: int, batch_docs: int = 64, bucket: int = 16
) -> Iterator[torch.Tensor]:
    """Endless `[tokens, d_model]` activations at `hook` of real text tokens (no `<bos>`, no padding).

    Documents come from the training corpus, `bucket` batches at a time sorted by length, so each
    right-padded batch wastes little; the forward stops after the hook's block.
    """
    docs = iter(corpus.documents(10**12, seed=seed, split="train"))
    while True:
        yield from text_activations(model, hook, [next(docs) for _ in range(batch_docs * bucket)], batch_docs)


def text_activations(
    model: HookedTransformer, hook: str, docs: list[str], batch_docs: int = 64
) -> Iterator[torch.Tensor]:
    """`[tokens, d_model]` activations at `hook` of the real text tokens of `docs`, in batches of
    documents sorted by length (so little is padding), the forward stopped after the hook's block."""
    tok = model.tokenizer
    rows = token_rows(model, docs)
    lengths = (rows != tok.pad_token_id).sum(1)
    for idx in length_batches(lengths, batch_docs, batch_docs * rows.shape[1]):  # only the count binds
        tokens = rows[idx, : int(lengths[idx].max())]
        acts = harvest(model, tokens, [hook])[hook]
        yield acts[(tokens != tok.pad_token_id) & (tokens != tok.bos_token_id)]


@torch.inference_mode()
def prune_dead(model: HookedTransformer, sae, docs: list[str], *, batch_size: int = 64):
    """The SAE without the features that never fire on `docs` (dead latents of the training).

    A feature that never fires is never in a token's top k, so dropping its encoder column and
    decoder row changes no activation on such text and makes every encode cheaper. Features are
    renumbered in order.
    """
    fired = torch.zeros(sae.cfg.d_sae, dtype=torch.bool)
    for acts in text_activations(model, sae.cfg.metadata.hook_name, docs, batch_size):
        fired |= (sae.encode(acts) > 0).any(0)
    keep = fired.nonzero().squeeze(1)
    if getattr(sae.cfg, "k", 0) > len(keep):
        raise RuntimeError(f"only {len(keep)} features fire, fewer than k={sae.cfg.k}: train longer")
    state = {name: p.detach().clone() for name, p in sae.state_dict().items()}
    state["W_enc"], state["b_enc"] = state["W_enc"][:, keep], state["b_enc"][keep]
    state["W_dec"] = state["W_dec"][keep]
    cfg = sae.cfg.to_dict() | {"d_sae": len(keep)}
    pruned = type(sae).from_dict(cfg)
    pruned.load_state_dict(state)
    return pruned.eval()


@no_loading_advice()  # sae-lens' advice on loading the model, for every SAE built here
def train_sae(
    model: HookedTransformer | None = None,
    *,
    out_dir: str | Path = SAE_DIR,
    layer: int = LAYER,
    d_sae: int = D_SAE,
    k: int = K,
    training_tokens: int = TOKENS,
    lr: float = 1e-3,
    seed: int = 0,
    eval_docs: int = 1000,
    prune_docs: int = 5000,
    progress: bool = True,
) -> dict:
    """Train, save, reload and evaluate the built-in SAE; returns the recorded metrics.

    Args:
        model: the built-in model (the shipped one, on CPU, when None).
        out_dir: folder for `cfg.json`, `sae_weights.safetensors` and `training.json`.
        layer: the block whose `hook_resid_post` the SAE reads.
        d_sae, k: number of features and active features per token (TopK).
        training_tokens: activations (real text tokens) the SAE is trained on.
        lr: Adam learning rate (warm-up, then cosine decay to a tenth).
        seed: seeds the corpus, the initialisation and the shuffling.
        eval_docs: fresh documents for the evaluation.
        prune_docs: fresh documents on which a feature must fire at least once to be kept.

    Example:
        >>> train_sae(training_tokens=200_000, out_dir="/tmp/sae")["explained_variance"]
    """
    from sae_lens import SAE, LoggingConfig
    from sae_lens.config import SAETrainerConfig
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.training.mixing_buffer import mixing_buffer
    from sae_lens.training.sae_trainer import SAETrainer

    model = load_toy(device="cpu") if model is None else model
    torch.manual_seed(seed)
    random.seed(seed)
    start = time.time()
    hook = hook_name(model, "resid_post", layer)
    tok = model.tokenizer
    batch_tokens = 2048
    steps = training_tokens // batch_tokens
    metadata = SAEMetadata(
        model_name=model.cfg.model_name, hook_name=hook, hook_head_index=None, model_class_name="HookedTransformer",
        context_size=model.cfg.n_ctx, prepend_bos=True, exclude_special_tokens=[tok.pad_token_id, tok.bos_token_id],
        dataset_path="interp.toy.corpus.documents", model_from_pretrained_kwargs={"center_writing_weights": False},
    )
    sae = TopKTrainingSAE(TopKTrainingSAEConfig(
        d_in=model.cfg.d_model, d_sae=d_sae, k=k, normalize_activations="expected_average_only_in", metadata=metadata,
    ))
    cfg = SAETrainerConfig(
        total_training_samples=training_tokens, train_batch_size_samples=batch_tokens, lr=lr, lr_end=lr / 10,
        lr_scheduler_name="cosineannealing", lr_warm_up_steps=max(1, steps // 20), device="cpu",
        dead_feature_window=max(50, steps // 10), n_batches_for_norm_estimate=20,
        logger=LoggingConfig(log_to_wandb=False),
    )
    provider = mixing_buffer(buffer_size=16 * batch_tokens, batch_size=batch_tokens,
                             activations_loader=activation_batches(model, hook, seed=seed))
    trained = SAETrainer(cfg=cfg, sae=sae, data_provider=provider).fit()
    minutes = (time.time() - start) / 60
    with tempfile.TemporaryDirectory() as tmp:  # the inference SAE, reloaded the way users load it
        trained.save_inference_model(tmp)
        sae = SAE.load_from_disk(tmp)
    n_trained = sae.cfg.d_sae
    sae = prune_dead(model, sae, list(corpus.documents(prune_docs, seed=seed + 2, split="train")))
    metrics = evaluate_sae(model, sae, list(corpus.documents(eval_docs, seed=seed + 1, split="train")))
    info = {
        **metrics,
        "features_trained": n_trained,
        "features_kept": sae.cfg.d_sae,
        "interp_model_fingerprint": fingerprint(model),
        "training_tokens": training_tokens,
        "layer": layer,
        "d_sae": d_sae,
        "k": k,
        "lr": lr,
        "seed": seed,
        "minutes": round(minutes, 2),
        "torch": torch.__version__,
        "trainer": "sae_lens SAETrainer + TopKTrainingSAE",
        "command": f"{COMMAND} --tokens {training_tokens} --layer {layer} --d-sae {d_sae} --k {k} --seed {seed}",
    }
    for key, value in info.items():
        sae.cfg.metadata[key] = value
    sae.cfg.metadata.num_dead_features = metrics["dead_features"]  # sae-lens' count was of the unpruned SAE
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sae.save_model(out)
    (out / "training.json").write_text(json.dumps(info, indent=1) + "\n")
    if progress:
        print(json.dumps(info, indent=1))
    return info


def main(argv: list[str] | None = None) -> None:
    """Command line entry point (`python -m interp.toy.sae_train`)."""
    parser = argparse.ArgumentParser(description="Train the built-in SAE on the built-in model (CPU).")
    parser.add_argument("--out", default=str(SAE_DIR), help=f"output folder (default {SAE_DIR})")
    parser.add_argument("--tokens", type=int, default=TOKENS, help=f"training tokens (default {TOKENS})")
    parser.add_argument("--layer", type=int, default=LAYER, help=f"block whose resid_post is read (default {LAYER})")
    parser.add_argument("--d-sae", type=int, default=D_SAE)
    parser.add_argument("--k", type=int, default=K, help="active features per token (TopK)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model-dir", default=None, help="train for a built-in model copy in this folder")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    model = load_toy(device="cpu", folder=args.model_dir)
    train_sae(model, out_dir=args.out, layer=args.layer, d_sae=args.d_sae, k=args.k, training_tokens=args.tokens,
              lr=args.lr, seed=args.seed)


if __name__ == "__main__":
    main()
