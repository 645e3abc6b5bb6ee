"""Patchscope sweep over all source layers in one batched pass, against a loop of forwards.

Workbench: `patchscope(model, source, target="identity", max_new_tokens=1)` sweeps every source
layer; by default the source row and one target row per layer go through a single left-padded
forward. Baseline: the source states harvested in one forward, then one patched forward of the
target prompt per layer in a loop (n_layers + 1 forwards). Both end with each layer's next-token
prediction. The two are timed alternately (best of each; CPU time on a CPU, wall time on a GPU),
so machine load hits both alike.
Target: sweep time / loop time <= 0.3.
"""

from __future__ import annotations

import torch
from transformer_lens import HookedTransformer

from benchmarks.common import Row, interleaved
from interp.core.hooks import harvest, hook_name, hooked
from interp.patching import patchscope, target_prompt

TARGET = 0.3
SOURCE = "we visited france last year and my friend is from japan ."
SITE = "resid_pre"


def run(model: HookedTransformer) -> list[Row]:
    n = model.cfg.n_layers
    src = model.to_tokens(SOURCE)
    tgt = model.to_tokens(target_prompt(model, "identity"))
    placeholder = patchscope(model, SOURCE, source_layers=0, max_new_tokens=1).placeholder_position
    names = [hook_name(model, SITE, layer) for layer in range(n)]

    @torch.inference_mode()
    def loop() -> None:
        states = harvest(model, src, names, select=lambda a: a[:, -1])
        for name in names:

            def patch(act, hook, state=states[name]):
                act[:, placeholder] = state
                return act

            with hooked(model, [(name, patch)]):
                model(tgt)[:, -1].argmax(-1)

    def sweep() -> None:
        patchscope(model, SOURCE, target="identity", max_new_tokens=1)

    def shared() -> None:
        patchscope(model, SOURCE, target="identity", max_new_tokens=1, strategy="shared_prefix")

    t = interleaved({"loop": loop, "sweep": sweep, "shared": shared}, src.device, rounds=9, warmup=2)
    ratio = t["sweep"] / t["loop"]
    return [
        Row(
            "patchscope sweep, all source layers / per-layer loop",
            ratio,
            f"<= {TARGET}",
            ratio <= TARGET,
            f"{n} layers; sweep {t['sweep'] * 1e3:.2f} ms, loop {t['loop'] * 1e3:.2f} ms "
            f"(strategy='shared_prefix' would be {t['shared'] / t['loop']:.3f})",
        )
    ]
