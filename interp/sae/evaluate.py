"""How good is an SAE on a model's text: explained variance, L0, dead features, spliced-in loss.

The standard SAE evaluation (Bricken et al. 2023, "Towards Monosemanticity"; Gao et al. 2024,
"Scaling and evaluating sparse autoencoders"): reconstruct the activation on held-out text and
report the fraction of its variance explained, the mean number of active features per token
(L0), the features that never fire, and the model's next-token loss clean, with the SAE's
reconstruction spliced in, and with the activation zero-ablated (the fraction of the loss gap
the SAE recovers). `token_rows` lays texts out as the trainer (`interp.sae.train`) reads them.

Example:
    >>> evaluate_sae(model, interp.load_sae("smollm2-135m-instruct"), texts)["explained_variance"]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformer_lens import HookedTransformer

from interp.core.hooks import harvest, hooked
from interp.core.tokens import encode, length_batches, pad_id, pad_rows

MAX_LEN = 256  # tokens per text; longer texts are cut


def token_rows(
    model: HookedTransformer, texts: Sequence[str], *, append_eos: bool = False, max_len: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """`(tokens, keep)`: right-padded `[n, pos]` rows of `texts`, and which positions are text
    the SAE is trained and judged on (not padding, not a row's first position).

    Rows start with BOS where the model's profile wants it and end with EOS when `append_eos`
    (as the built-in model was trained); each is cut to `max_len` (the model's `n_ctx`, at most
    `MAX_LEN`, when None).

    Example:
        >>> tokens, keep = token_rows(model, ["the cat sat ."])
        >>> keep[0].tolist()  # the first position (BOS or attention sink) is left out
        [False, True, True, True]
    """
    if isinstance(texts, str) or not texts or not all(isinstance(t, str) for t in texts):
        raise ValueError(f"texts must be a non-empty list of strings, got {type(texts).__name__}")
    cap = min(model.cfg.n_ctx, MAX_LEN) if max_len is None else max_len
    eos = [model.tokenizer.eos_token_id] if append_eos else []
    rows = [[*ids, *eos][:cap] for ids in encode(model, texts)]
    tokens, mask = pad_rows(rows, pad_id(model), side="right")
    keep = mask.bool()
    keep[:, 0] = False
    return tokens, keep


@torch.inference_mode()
def evaluate_sae(model: HookedTransformer, sae, texts: Sequence[str], *, batch_size: int = 32,
                 append_eos: bool = False, ce: bool = True) -> dict[str, float]:
    """Explained variance, L0, dead features and (with `ce`) next-token loss clean, with the SAE
    spliced in at the kept positions and with the activation zero-ablated there, on `texts`.

    Example:
        >>> evaluate_sae(model, interp.load_sae("toy"), docs)["explained_variance"]
    """
    hook = sae.cfg.metadata.hook_name
    sum_x = torch.zeros(sae.cfg.d_in, dtype=torch.float64)
    sq_norm = sq_resid = 0.0
    n = l0 = n_targets = 0
    fired = torch.zeros(sae.cfg.d_sae, dtype=torch.bool)
    losses = {"clean": 0.0, "sae": 0.0, "zero": 0.0}
    all_tokens, all_keep = token_rows(model, texts, append_eos=append_eos)
    lengths = (all_keep.sum(1) + 1).tolist()
    for idx in length_batches(lengths, batch_size, batch_size * all_tokens.shape[1]):
        width = int(max(lengths[i] for i in idx.tolist()))
        rows, keep = all_tokens[idx, :width].to(model.cfg.device), all_keep[idx, :width].to(model.cfg.device)
        if ce:
            targets, valid = rows[:, 1:], keep[:, 1:]
            stash = {}

            def splice(act, hook, mode):
                stash["x"] = act
                if mode == "zero":
                    return torch.where(keep[..., None], torch.zeros_like(act), act)
                new = sae.decode(sae.encode(act.to(sae.device))).to(act)
                return torch.where(keep[..., None], new, act)

            for mode in ("clean", "sae", "zero"):
                hooks = [] if mode == "clean" else [(hook, lambda a, hook, m=mode: splice(a, hook, m))]
                with hooked(model, hooks):
                    logits = model(rows, return_type="logits")[:, :-1]
                nll = torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), targets,
                                                        reduction="none")
                losses[mode] += float(nll[valid].sum())
            n_targets += int(valid.sum())
            x = stash["x"][keep].double().cpu()
        else:
            x = harvest(model, rows, [hook])[hook][keep].double().cpu()
        feats = sae.encode(x.float().to(sae.device)).cpu()
        x_hat = sae.decode(feats.to(sae.device)).double().cpu()
        sum_x += x.sum(0)
        sq_norm += float(x.pow(2).sum())
        sq_resid += float((x - x_hat).pow(2).sum())
        n += x.shape[0]
        l0 += int((feats != 0).sum())
        fired |= (feats > 0).any(0)
    total_var = sq_norm / n - float((sum_x / n).pow(2).sum())
    out = {"explained_variance": round(1 - (sq_resid / n) / total_var, 4), "l0": round(l0 / n, 3),
           "dead_features": int((~fired).sum())}
    if ce:
        clean, spliced, zero = (losses[m] / n_targets for m in ("clean", "sae", "zero"))
        out |= {"ce_loss_clean": round(clean, 4), "ce_loss_with_sae": round(spliced, 4),
                "ce_loss_zero_ablated": round(zero, 4),
                "ce_loss_recovered": round((zero - spliced) / (zero - clean), 4)}
    return out | {"eval_tokens": n}
