"""Loading sparse autoencoders: a sae-lens release, or the built-in SAE.

An SAE (Bricken et al. 2023, "Towards Monosemanticity"; Cunningham et al. 2023) is trained on
one hook of one model; loading it is half the job, checking that it fits the model you hold is
the other half (`interp.check_sae`, in `interp.sae.check`). sae-lens keeps a directory of
pretrained releases; the built-in SAE ships with the package, trained on the built-in model by
`python -m interp.toy.sae_train`.

Example:
    >>> sae = interp.load_sae("toy")
    >>> sae.cfg.metadata.hook_name
    'blocks.2.hook_resid_post'
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch

from interp.core.models import TOY, ModelNotAvailableError, from_hub, resolve_device

if TYPE_CHECKING:  # pragma: no cover
    from sae_lens import SAE

#: The built-in SAE's release name (trained on the built-in model by `python -m interp.toy.sae_train`).
TOY_SAE_RETRAIN = "python -m interp.toy.sae_train"


def _options(valid: list[str], bad: str, what: str, limit: int = 12) -> str:
    import difflib

    close = difflib.get_close_matches(bad, valid, n=5, cutoff=0.5)
    shown = close or valid[:limit]
    more = "" if len(shown) == len(valid) else f" (and {len(valid) - len(shown)} more)"
    label = "closest" if close else "valid"
    return f"{len(valid)} {what}; {label}: {', '.join(map(repr, shown))}{more}"


def load_sae(
    release: str = TOY,
    sae_id: str | None = None,
    *,
    device: str | torch.device | None = None,
) -> SAE:
    """Load a sparse autoencoder: a sae-lens release, or the built-in SAE `"toy"`.

    Args:
        release: `"toy"` (shipped with the package, works offline) or a sae-lens release such
            as `"gpt2-small-res-jb"` or `"gemma-scope-2b-pt-res-canonical"`.
        sae_id: the SAE within the release, e.g. `"blocks.8.hook_resid_pre"` or
            `"layer_20/width_16k/canonical"`; for `"toy"` it may be omitted.
        device: where to put the SAE; cuda, then mps, then cpu when None.

    Returns:
        A sae-lens `SAE` in eval mode. Check it against a model with `interp.check_sae`.

    Raises:
        ValueError: unknown release or id (the message lists valid ones), or a built-in SAE
            trained for other weights of the built-in model.
        ModelNotAvailableError: the weights are neither cached nor downloadable (or the built-in
            SAE has not been trained yet).

    Example:
        >>> sae = interp.load_sae("toy")
        >>> sae.cfg.metadata.hook_name
        'blocks.2.hook_resid_post'
    """
    dev = resolve_device(device)
    if not isinstance(release, str) or not release:
        raise ValueError(f"release {release!r} must be a non-empty string such as 'toy' or 'gpt2-small-res-jb'")
    if release == TOY:
        return _load_toy_sae(sae_id, dev)
    from sae_lens import SAE
    from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory

    directory = get_pretrained_saes_directory()
    if release not in directory:
        raise ValueError(
            f"unknown SAE release {release!r}: "
            + _options([TOY, *sorted(directory)], release, "releases")
            + f". The built-in SAE is {TOY!r}."
        )
    ids = list(directory[release].saes_map)
    if sae_id is None or sae_id not in directory[release].saes_map:
        raise ValueError(f"unknown sae_id {sae_id!r} for release {release!r}: " + _options(ids, str(sae_id), "ids"))
    def load() -> SAE:
        with no_loading_advice():
            return SAE.from_pretrained(release, sae_id, device=str(dev))

    offline = f"The built-in SAE works offline: interp.load_sae({TOY!r}) with interp.load_model({TOY!r})."
    call = f"interp.load_sae({release!r}, {sae_id!r})"
    sae = from_hub(load, f"the SAE {release!r} / {sae_id!r}", call, offline)
    sae.eval()
    return sae


@contextmanager
def no_loading_advice() -> Iterator[None]:
    """Silence sae-lens' advice on how to load the model for an SAE: `interp.check_sae` checks it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"\s*This SAE has non-empty model_from_pretrained_kwargs")
        yield


def _load_toy_sae(sae_id: str | None, device: torch.device) -> SAE:
    from sae_lens import SAE

    from interp.core.cache import fingerprint
    from interp.toy import TOY_DIR, load_toy

    folder = TOY_DIR / "sae"
    if not (folder / "cfg.json").exists():
        raise ModelNotAvailableError(
            f"the built-in SAE has not been trained yet (no {folder / 'cfg.json'}); run `{TOY_SAE_RETRAIN}`"
        )
    with no_loading_advice():
        sae = SAE.load_from_disk(folder, device=str(device))
    hook = sae.cfg.metadata.hook_name
    if sae_id is not None and sae_id != hook:
        raise ValueError(f"unknown sae_id {sae_id!r} for release {TOY!r}: 1 id; valid: {hook!r} (or None)")
    trained_for = sae.cfg.metadata.get("interp_model_fingerprint")
    shipped = fingerprint(load_toy(device="cpu"))
    if trained_for != shipped:
        raise ValueError(
            f"the built-in SAE was trained for other weights of the built-in model (fingerprint "
            f"{trained_for!r}, shipped model {shipped!r}); retrain it with `{TOY_SAE_RETRAIN}`"
        )
    sae.eval()
    return sae
