"""Loading a sparse autoencoder: the built-in one, the shipped ones, a folder, a sae-lens release.

A sparse autoencoder (SAE) rewrites one activation of one model (say the residual stream after
block 6) as a sparse, non-negative combination of many learned directions, the "features"
(Bricken et al. 2023, "Towards Monosemanticity"; Cunningham et al. 2023, "Sparse Autoencoders
Find Highly Interpretable Features in Language Models"). sae-lens keeps a directory of
pretrained releases; the built-in SAE ships with this package, trained on the built-in model by
`python -m interp.toy.sae_train`.

Loading is half the job; the other half is checking that the SAE fits the model you hold
(`interp.sae.fit.check_sae`, which every function that takes a model and an SAE runs first).

The built-in SAE records the fingerprint of the weights it was trained on; `load_sae("toy")`
compares it with the shipped weights read straight from their safetensors file (no model is
built), so a retrained model with a stale SAE fails at load, not later.

Real models can have a shipped SAE too, trained by `python -m interp.sae.train` and kept in
`interp/sae/artifacts/<model name>/`: `load_sae("smollm2-135m-instruct")` loads SmolLM2's. Its
folder is named after the model's profile, so `load_sae(interp.profile_for(model).name)` finds
the shipped SAE of any model that has one (`shipped_saes()` lists them). Its recorded weight
fingerprint is compared with the model's by `check_sae`, which every technique runs first.

Example:
    >>> model, sae = interp.load_model("toy"), interp.load_sae("toy")
    >>> sae.cfg.metadata.hook_name
    'blocks.2.hook_resid_post'
    >>> interp.check_sae(model, sae)   # passes silently
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from transformer_lens import HookedTransformer

from interp.core.bridge import header
from interp.core.cache import fingerprint_weights
from interp.core.models import TOY, ModelNotAvailableError, from_hub, resolve_device
from interp.sae.fit import TOY_SAE_RETRAIN

if TYPE_CHECKING:  # pragma: no cover
    from sae_lens import SAE

#: Shipped SAEs of real models, one folder per model name (cfg.json, sae_weights.safetensors, training.json).
SHIPPED_DIR = Path(__file__).parent / "artifacts"


def shipped_saes() -> list[str]:
    """Names `load_sae` loads from this package with no download: the built-in SAE and one per
    model with a folder in `SHIPPED_DIR` (named after the model it was trained on).

    Example:
        >>> shipped_saes()
        ['toy', 'smollm2-135m-instruct']
    """
    found = sorted(p.name for p in SHIPPED_DIR.iterdir() if (p / "cfg.json").is_file()) if SHIPPED_DIR.is_dir() else []
    return [TOY, *found]


def default_sae(model: HookedTransformer) -> str | None:
    """The `load_sae` name of the SAE shipped for `model` (named after its profile), or None.

    Example:
        >>> default_sae(interp.load_model("smollm2-135m-instruct"))
        'smollm2-135m-instruct'
    """
    from interp.core.checks import check_model
    from interp.core.profiles import profile_for

    check_model(model)
    name = profile_for(model).name
    return name if name in shipped_saes() else None


# --- loading ----------------------------------------------------------------------------------


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
        release: `"toy"` (shipped with the package, works offline), a model name with a shipped
            SAE (`shipped_saes()`, e.g. `"smollm2-135m-instruct"`), a folder saved by sae-lens
            (`cfg.json` + `sae_weights.safetensors`, checked by `check_sae_folder` first), or a
            sae-lens release such as `"gpt2-small-res-jb"` or `"gemma-scope-2b-pt-res-canonical"`.
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
    if release in shipped_saes():
        return _load_shipped_sae(release, sae_id, dev)
    if (Path(release) / "cfg.json").exists():  # a saved SAE folder
        from sae_lens import SAE

        check_sae_folder(release)
        with no_loading_advice():
            sae = SAE.load_from_disk(release, device=str(dev))
        return sae.eval()
    from sae_lens import SAE
    from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory

    directory = get_pretrained_saes_directory()
    if release not in directory:
        raise ValueError(
            f"unknown SAE release {release!r}: "
            + _options([*shipped_saes(), *sorted(directory)], release, "releases")
            + f". Shipped with this package (offline): {', '.join(map(repr, shipped_saes()))}."
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


def shipped_fingerprint(folder: str | Path | None = None) -> str:
    """The `interp.core.cache.fingerprint` of the built-in model's shipped weights, computed from
    its `config.json` and `model.safetensors` without building the model.

    Example:
        >>> shipped_fingerprint() == fingerprint(interp.load_model("toy"))
        True
    """
    from safetensors.torch import load_file
    from transformers import AutoConfig

    from interp.toy import TOY_DIR, ToyArtifactError

    folder = Path(folder) if folder is not None else TOY_DIR
    try:
        cfg = AutoConfig.from_pretrained(folder)
        weights = load_file(str(folder / "model.safetensors"))
        top = header(json.loads((folder / "config.json").read_text())["model_name"], cfg)
    except (OSError, ValueError, KeyError) as err:
        raise ToyArtifactError(f"the built-in model's artifacts in {folder} are unreadable ({err})") from err
    return fingerprint_weights(top, weights.items())


def check_sae_folder(folder: str | Path) -> None:
    """Check a saved SAE (sae-lens' `cfg.json` + `sae_weights.safetensors`) before loading it:
    the config's keys and types, the weights' names and shapes against the config, finite values,
    and that the hook it names is the layer its metadata records. Each failure is a ValueError
    naming the file and what is wrong (the model loader checks its artifacts the same way)."""
    import json

    from safetensors import safe_open

    folder = Path(folder)
    cfg_path, weights_path = folder / "cfg.json", folder / "sae_weights.safetensors"
    try:
        cfg = json.loads(cfg_path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"SAE config {cfg_path} is unreadable: {err}") from err
    if not isinstance(cfg, dict):
        raise ValueError(f"SAE config {cfg_path} must be a JSON object, got {type(cfg).__name__}")
    meta = cfg.get("metadata")
    for key in ("d_in", "d_sae"):
        if isinstance(cfg.get(key), bool) or not isinstance(cfg.get(key), int) or cfg[key] < 1:
            raise ValueError(f"SAE config {cfg_path}: {key} is {cfg.get(key)!r}, expected a positive int")
    if not isinstance(meta, dict) or not isinstance(meta.get("hook_name"), str):
        raise ValueError(f"SAE config {cfg_path}: metadata.hook_name is missing; expected e.g. 'blocks.2.hook_resid_post'")
    hook = meta["hook_name"]
    recorded = meta.get("layer")
    named = hook.split(".")[1] if hook.startswith("blocks.") else None
    if recorded is not None and named is not None and str(recorded) != named:
        raise ValueError(f"SAE config {cfg_path}: hook {hook!r} is not layer {recorded}, the layer it was trained on")
    d_in, d_sae = cfg["d_in"], cfg["d_sae"]
    want = {"W_enc": (d_in, d_sae), "W_dec": (d_sae, d_in), "b_enc": (d_sae,), "b_dec": (d_in,)}
    try:
        with safe_open(str(weights_path), framework="pt") as f:
            names = set(f.keys())
            missing = sorted(set(want) - names)
            if missing:
                raise ValueError(f"SAE weights {weights_path} lack {missing} (have {sorted(names)})")
            for name, shape in want.items():
                tensor = f.get_tensor(name)
                if tuple(tensor.shape) != shape:
                    raise ValueError(f"SAE weights {weights_path}: {name} has shape {tuple(tensor.shape)}, but "
                                     f"cfg.json's d_in={d_in}, d_sae={d_sae} need {shape}")
                if not bool(torch.isfinite(tensor).all()):
                    bad = int((~torch.isfinite(tensor)).sum())
                    raise ValueError(f"SAE weights {weights_path}: {name} holds {bad} non-finite values")
    except ValueError:
        raise
    except Exception as err:  # safetensors raises its own error types for truncated or garbled files
        raise ValueError(f"SAE weights {weights_path} are unreadable (truncated or not safetensors): {err}") from err


def _load_toy_sae(sae_id: str | None, device: torch.device) -> SAE:
    from sae_lens import SAE

    from interp.toy import TOY_DIR

    folder = TOY_DIR / "sae"
    if not (folder / "cfg.json").exists():
        raise ModelNotAvailableError(
            f"the built-in SAE has not been trained yet (no {folder / 'cfg.json'}); run `{TOY_SAE_RETRAIN}`"
        )
    check_sae_folder(folder)
    with no_loading_advice():
        sae = SAE.load_from_disk(folder, device=str(device))
    hook = sae.cfg.metadata.hook_name
    if sae_id is not None and sae_id != hook:
        raise ValueError(f"unknown sae_id {sae_id!r} for release {TOY!r}: 1 id; valid: {hook!r} (or None)")
    trained_for = sae.cfg.metadata.get("interp_model_fingerprint")
    shipped = shipped_fingerprint(TOY_DIR)
    if trained_for != shipped:
        raise ValueError(
            f"the built-in SAE was trained for other weights of the built-in model (fingerprint "
            f"{trained_for!r}, shipped model {shipped!r}); retrain it with `{TOY_SAE_RETRAIN}`"
        )
    sae.eval()
    return sae


def _load_shipped_sae(name: str, sae_id: str | None, device: torch.device) -> SAE:
    """The SAE shipped in `SHIPPED_DIR / name`, checked to be whole and trained on model `name`
    with a recorded weight fingerprint (which `check_sae` compares with the model's)."""
    from sae_lens import SAE

    folder = SHIPPED_DIR / name
    check_sae_folder(folder)
    with no_loading_advice():
        sae = SAE.load_from_disk(folder, device=str(device))
    hook, meta = sae.cfg.metadata.hook_name, sae.cfg.metadata
    if sae_id is not None and sae_id != hook:
        raise ValueError(f"unknown sae_id {sae_id!r} for release {name!r}: 1 id; valid: {hook!r} (or None)")
    if meta.model_name != name or not meta.get("interp_model_fingerprint"):
        raise ValueError(
            f"the shipped SAE in {folder} records model {meta.model_name!r} and fingerprint "
            f"{meta.get('interp_model_fingerprint')!r}; expected model {name!r} and a fingerprint. Retrain it with "
            f"`{meta.get('command') or 'python -m interp.sae.train'}`"
        )
    return sae.eval()
