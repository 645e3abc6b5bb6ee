"""Train the built-in SAE: a TopK sparse autoencoder on the built-in model's residual stream.

The model-independent work is `interp.sae.train` (sae-lens' trainer, pruning, evaluation,
saving); this module says what is particular to the built-in model. Training uses sae-lens' own training classes: a `TopKTrainingSAE` (Gao et al. 2024, "Scaling and
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
import random
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from transformer_lens import HookedTransformer

from interp.core.hooks import hook_name
from interp.sae import evaluate, train as generic
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
    return evaluate.token_rows(model, docs, append_eos=True, max_len=model.cfg.n_ctx)[0]


def evaluate_sae(model: HookedTransformer, sae, docs: list[str], *, batch_size: int = 64) -> dict[str, float]:
    """Explained variance, L0, dead features and spliced-in loss on `docs` (pad and `<bos>` excluded).

    Example:
        >>> evaluate_sae(model, interp.load_sae("toy"), list(corpus.documents(500, seed=1)))
    """
    return evaluate.evaluate_sae(model, sae, docs, batch_size=batch_size, append_eos=True)


def text_activations(
    model: HookedTransformer, hook: str, docs: list[str], batch_docs: int = 64
) -> Iterator[torch.Tensor]:
    """`[tokens, d_model]` activations at `hook` of the real text tokens of `docs` (no `<bos>`,
    no padding), in batches of documents sorted by length, the forward stopped after the hook's block."""
    return generic.text_activations(model, hook, docs, batch_size=batch_docs, max_tokens=batch_docs * model.cfg.n_ctx,
                                    append_eos=True)


def activation_batches(
    model: HookedTransformer, hook: str, *, seed: int, batch_docs: int = 64, bucket: int = 16
) -> Iterator[torch.Tensor]:
    """Endless `[tokens, d_model]` activations at `hook` of real text tokens (no `<bos>`, no padding).

    Documents come from the training corpus, `bucket` batches at a time sorted by length, so each
    right-padded batch wastes little; the forward stops after the hook's block. (The generated
    corpus is endless, so nothing is stored, unlike `interp.sae.train.harvest_activations`.)
    """
    docs = iter(corpus.documents(10**12, seed=seed, split="train"))
    while True:
        yield from text_activations(model, hook, [next(docs) for _ in range(batch_docs * bucket)], batch_docs)


def prune_dead(model: HookedTransformer, sae, docs: list[str], *, batch_size: int = 64):
    """The SAE without the features that never fire on `docs` (see `interp.sae.train.prune_dead`)."""
    return generic.prune_dead(sae, text_activations(model, sae.cfg.metadata.hook_name, docs, batch_size))


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
    model = load_toy(device="cpu") if model is None else model
    torch.manual_seed(seed)
    random.seed(seed)
    start = time.time()
    hook = hook_name(model, "resid_post", layer)
    metadata = generic.sae_metadata(model, hook, "interp.toy.corpus.documents")
    metadata.context_size = model.cfg.n_ctx
    sae = generic.fit_sae(activation_batches(model, hook, seed=seed), metadata, d_in=model.cfg.d_model, d_sae=d_sae,
                          k=k, training_tokens=training_tokens, lr=lr)
    minutes = (time.time() - start) / 60
    n_trained = sae.cfg.d_sae
    sae = prune_dead(model, sae, list(corpus.documents(prune_docs, seed=seed + 2, split="train")))
    metrics = evaluate_sae(model, sae, list(corpus.documents(eval_docs, seed=seed + 1, split="train")))
    info = {
        "features_trained": n_trained,
        "features_kept": sae.cfg.d_sae,
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
    return generic.save_sae(sae, model, metrics, info, out_dir, progress)


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
