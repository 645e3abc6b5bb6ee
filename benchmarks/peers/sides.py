"""The sides of the steered-generation race: each one generates the same new tokens its own way.

Every side is a function `() -> [batch, new] token ids` (or, for `interp.steer`, which takes
and returns text, the completions) over the same weights (`weights.Pair`),
the same left-padded prompt batch and the same steering vector, greedy, key-value cache on:

- plain Hugging Face `generate` and plain transformer-lens `generate`: the baselines;
- our loop (`interp.core.generation.generate`) plain, with an addition hook, and with the
  directional-ablation hooks (each also with `fast=True`: lean GPT-2 blocks), built by
  `interp.steering.steering_hooks` as `interp.steer` builds
  them; and `interp.steer` itself as it is today (text in, text out);
- the peers, each as its documentation shows: steering-vectors' `SteeringVector.apply` around
  Hugging Face `generate`; nnsight's `LanguageModel.generate` with the edit inside
  `tracer.iter[...]` (every step); repeng's `ControlModel` around Hugging Face `generate`.

Addition acts on block `layer`'s output (transformer-lens `blocks.{layer}.hook_resid_post`,
Hugging Face `transformer.h[layer]`'s output). Directional ablation projects the unit direction
out of everything that writes to the residual stream: the embedding and every attention and MLP
output (nnsight edits the same places; steering-vectors and repeng act on whole blocks only, so
they have no like-for-like ablation).

A peer that is not installed is left out with a line saying so (`missing()`); `make bench-peers`
installs them.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch

from benchmarks.bench_steering import PROMPTS
from benchmarks.peers.weights import Pair
from interp.core.generation import generate
from interp.core.tokens import pad_rows

#: Peer (its PyPI name) -> the module it installs.
PEERS = {
    "steering-vectors": "steering_vectors",
    "nnsight": "nnsight",
    "repeng": "repeng",
    "tuned-lens": "tuned_lens",
}


Side = Callable[[], "torch.Tensor | tuple[str, ...]"]


def installed(peer: str) -> bool:
    return importlib.util.find_spec(PEERS[peer]) is not None


def missing() -> list[str]:
    """Peers that are not installed."""
    return [p for p in PEERS if not installed(p)]


def import_repeng():
    """repeng 0.4 still names `numpy.float_`, which NumPy 2 removed; alias it (this process only)."""
    import numpy

    if not hasattr(numpy, "float_"):
        numpy.float_ = numpy.float64
    import repeng

    return repeng


@dataclass
class Setup:
    """One race: the weights, the left-padded batch, the steering vector and where it acts."""

    pair: Pair
    prompts: list[str]
    tokens: torch.Tensor
    mask: torch.Tensor
    new_tokens: int
    layer: int
    vector: torch.Tensor

    @classmethod
    def build(
        cls, pair: Pair, batch: int, new_tokens: int = 32, *, seed: int = 0, scale: float = 4.0
    ) -> Setup:
        tok = pair.tokenizer
        prompts = [PROMPTS[i % len(PROMPTS)] for i in range(batch)]
        rows = [[tok.bos_token_id, *tok(p, add_special_tokens=False)["input_ids"]] for p in prompts]
        tokens, mask = pad_rows(rows, tok.pad_token_id, device=pair.tl.cfg.device)
        d = pair.tl.cfg.d_model
        vector = torch.randn(d, generator=torch.Generator().manual_seed(seed)) * scale
        vector = vector.to(pair.tl.cfg.device)
        return cls(pair, prompts, tokens, mask, new_tokens, pair.tl.cfg.n_layers // 2, vector)

    @property
    def unit(self) -> torch.Tensor:
        return self.vector / self.vector.norm()

    def new(self, out: torch.Tensor) -> torch.Tensor:
        """The new tokens of a full output row (prompt, then generated)."""
        return out[:, self.tokens.shape[1] :]


def baselines(s: Setup) -> dict[str, Side]:
    hf, tl = s.pair.hf, s.pair.tl

    def hf_generate() -> torch.Tensor:
        with torch.inference_mode():
            out = hf.generate(s.tokens, attention_mask=s.mask, max_new_tokens=s.new_tokens, do_sample=False)
            return s.new(out)

    def tl_generate() -> torch.Tensor:
        with torch.inference_mode():
            return s.new(
                tl.generate(
                    s.tokens, max_new_tokens=s.new_tokens, do_sample=False, use_past_kv_cache=True,
                    stop_at_eos=False, verbose=False, padding_side="left",
                )
            )

    return {"HF generate": hf_generate, "TL generate": tl_generate}


def interp_sides(s: Setup) -> dict[str, Side]:
    from interp.steering import SteeringVector, steer, steering_hooks

    tl, name = s.pair.tl, f"blocks.{s.layer}.hook_resid_post"

    def loop(hooks: Callable[[], list], fast: bool = False) -> Side:
        return lambda: generate(
            tl, s.tokens, attention_mask=s.mask, max_new_tokens=s.new_tokens, hooks=hooks(),
            stop_at_eos=False, fast=fast,
        )

    vector = SteeringVector(s.vector, layer=s.layer, site="resid_post").bind(tl)

    def steer_today(mode: str) -> Side:
        def run() -> tuple[str, ...]:
            return steer(
                tl, s.prompts, vector, mode=mode, max_new_tokens=s.new_tokens, baseline=False,
                stop_at_eos=False, chat=False, batch_size=len(s.prompts),
            ).steered

        return run

    def add() -> list:
        return steering_hooks(tl, add={name: s.vector})

    def ablate() -> list:
        return steering_hooks(tl, ablate=s.unit)

    return {
        "interp loop": loop(list),
        "interp loop + add": loop(add),
        "interp loop + ablate": loop(ablate),
        "interp loop fast": loop(list, fast=True),
        "interp loop fast + add": loop(add, fast=True),
        "interp loop fast + ablate": loop(ablate, fast=True),
        "interp.steer add (today)": steer_today("add"),
        "interp.steer ablate (today)": steer_today("ablate"),
    }


def same(s: Setup, a: torch.Tensor | tuple[str, ...], b: torch.Tensor | tuple[str, ...]) -> bool:
    """Whether two sides produced the same completions: token for token, or, where one side
    returns text, the same text as `steer` decodes it."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and bool((a.cpu() == b.cpu()).all())

    def text(x):
        if isinstance(x, torch.Tensor):
            return tuple(t.strip() for t in s.pair.tokenizer.batch_decode(x, skip_special_tokens=True))
        return tuple(x)

    return text(a) == text(b)


def steering_vectors_sides(s: Setup) -> dict[str, Side]:
    from steering_vectors import SteeringVector

    sv = SteeringVector(layer_activations={s.layer: s.vector}, layer_type="decoder_block")
    base = baselines(s)["HF generate"]

    def add() -> torch.Tensor:
        with sv.apply(s.pair.hf, multiplier=1.0, min_token_index=0):
            return base()

    return {"steering-vectors add": add}


def repeng_sides(s: Setup) -> dict[str, Side]:
    repeng = import_repeng()
    control = repeng.ControlVector(model_type="gpt2", directions={s.layer: s.vector.cpu().numpy()})
    base = baselines(s)["HF generate"]

    def add() -> torch.Tensor:
        model = repeng.ControlModel(s.pair.hf, [s.layer])  # wraps block `layer`; unwrapped below
        try:
            model.set_control(control, coeff=1.0)
            return base()
        finally:
            model.unwrap()

    return {"repeng add": add}


def nnsight_sides(s: Setup) -> dict[str, Side]:
    from nnsight import LanguageModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lm = LanguageModel(s.pair.hf, tokenizer=s.pair.tokenizer)
    inputs = {"input_ids": s.tokens, "attention_mask": s.mask}
    n, vec, unit, layer = s.new_tokens, s.vector, s.unit, s.layer
    blocks = range(s.pair.hf.config.n_layer)

    def add() -> torch.Tensor:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with lm.generate(inputs, max_new_tokens=n, do_sample=False) as tracer:
                for _ in tracer.iter[:n]:
                    lm.transformer.h[layer].output[:] += vec
                out = tracer.result.save()
        return s.new(out)

    def ablate() -> torch.Tensor:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with lm.generate(inputs, max_new_tokens=n, do_sample=False) as tracer:
                for _ in tracer.iter[:n]:
                    x = lm.transformer.drop.output
                    x -= (x @ unit)[..., None] * unit
                    for i in blocks:
                        a = lm.transformer.h[i].attn.output[0]
                        a -= (a @ unit)[..., None] * unit
                        m = lm.transformer.h[i].mlp.output
                        m -= (m @ unit)[..., None] * unit
                out = tracer.result.save()
        return s.new(out)

    return {"nnsight add": add, "nnsight ablate": ablate}


#: Which of our sides each peer side must agree with, token for token.
SAME_AS = {
    "HF generate": "interp loop",
    "TL generate": "interp loop",
    "interp loop fast": "interp loop",
    "interp loop fast + add": "interp loop + add",
    "interp loop fast + ablate": "interp loop + ablate",
    "interp.steer add (today)": "interp loop + add",
    "interp.steer ablate (today)": "interp loop + ablate",
    "steering-vectors add": "interp loop + add",
    "repeng add": "interp loop + add",
    "nnsight add": "interp loop + add",
    "nnsight ablate": "interp loop + ablate",
}


def all_sides(s: Setup) -> dict[str, Side]:
    """Every side whose library is installed (baselines and ours always)."""
    sides = {**baselines(s), **interp_sides(s)}
    peers = {"steering-vectors": steering_vectors_sides, "nnsight": nnsight_sides, "repeng": repeng_sides}
    for peer, build in peers.items():
        if installed(peer):
            sides.update(build(s))
    return sides
