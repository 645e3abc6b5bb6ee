"""SAE feature search over a corpus against the plain harvest it is built on.

- `max_activating_examples` over every feature (tokenize, forward to the SAE's layer, SAE
  encode, streaming top-k with contexts, density and histogram) against `harvest` at the SAE's
  hook on the same texts in batches of the same size, tokenized the same way inside the timing,
  tokens/s: target >= 0.8. The search reads 8 batches ahead and sorts them by length, so it pads
  less than corpus-order batches; a second row gives the ratio against a harvest batched that
  way too, which isolates the cost of the SAE encode and the top-k. Timed in turns, best of 5
  (`benchmarks.common.interleaved`: CPU time on one thread on a CPU, wall time on a GPU).
- memory flat in corpus size: the same pass over a 10x larger corpus (a generator, never held
  in memory), peak extra memory relative to the small corpus: CUDA peak allocation on a GPU,
  on CPU the peak extra live malloc heap (glibc `mallinfo2`, which counts torch's CPU tensors),
  sampled by a thread; the result's retained tensors are compared exactly as well: target <= 1.10.

The SAE is the built-in one on the built-in model (a random TopK SAE of the same shape if it is
not trained yet), and a random TopK SAE (d_sae = 32 x d_model, k = 32) on the middle layer of
the random-weight real-scale models.
"""

from __future__ import annotations


import torch
from transformer_lens import HookedTransformer

from benchmarks.common import Row, interleaved, peak_cuda_extra, peak_heap_extra, sync
from interp.data.corpus import batched
from interp.core.tokens import length_batches
from interp.sae.examples import max_activating_examples
from interp.sae.stream import WINDOW, encode_texts, token_budget
from interp.core.hooks import harvest
from interp.toy.corpus import documents

BATCH = 32
MAX_LEN = 64


def _sae(model: HookedTransformer):
    from sae_lens import TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    import interp

    small = model.cfg.d_model <= 256
    if small:
        try:  # the built-in SAE when this is the model it was trained on
            sae = interp.load_sae("toy", device=model.cfg.device)
            interp.check_sae(model, sae)
            return sae
        except Exception as err:  # not trained yet, stale, or another model: a random SAE of the same shape
            print(f"bench_sae: built-in SAE unavailable ({type(err).__name__}); using a random one")
    layer = model.cfg.n_layers // 2
    d_sae = 1024 if small else 32 * model.cfg.d_model
    meta = SAEMetadata(hook_name=f"blocks.{layer}.hook_resid_post", model_name=model.cfg.model_name)
    torch.manual_seed(0)
    sae = TopKSAE(TopKSAEConfig(d_in=model.cfg.d_model, d_sae=d_sae, k=32, dtype="float32", metadata=meta))
    return sae.to(model.cfg.device).eval()


def run(model: HookedTransformer) -> list[Row]:
    sae = _sae(model)
    hook = sae.cfg.metadata.hook_name
    small = model.cfg.d_model <= 256
    texts = list(documents(2000 if small else 512, seed=3))
    n_tokens = sum(int(m.sum()) for m in (encode_texts(model, b, MAX_LEN)[1] for b in batched(texts, BATCH)))

    @torch.inference_mode()
    def harvest_only() -> None:
        for batch in batched(texts, BATCH):
            tokens, mask = encode_texts(model, batch, MAX_LEN)
            harvest(model, tokens, [hook], attention_mask=mask)

    @torch.inference_mode()
    def harvest_sorted() -> None:  # the search's batching: 8 batches read ahead, by length, token budget
        for window in batched(texts, BATCH * WINDOW):
            tokens, mask = encode_texts(model, window, MAX_LEN)
            lengths = mask.sum(1)
            for rows in length_batches(lengths, BATCH, token_budget(BATCH, MAX_LEN)):
                width = int(lengths[rows].max())
                harvest(model, tokens[rows, -width:], [hook], attention_mask=mask[rows, -width:])

    def feature_search() -> None:
        max_activating_examples(model, sae, texts, k=20, batch_size=BATCH, max_len=MAX_LEN, cache=False, progress=False)

    t = interleaved({"harvest": harvest_only, "search": feature_search}, model.cfg.device, rounds=5)
    t_base, t_search = t["harvest"], t["search"]
    ratio = t_base / t_search  # tokens/s of the search / tokens/s of the harvest
    rows = [Row("feature search (fwd + SAE encode + top-k) / harvest, tokens/s", ratio, ">= 0.8", ratio >= 0.8,
                f"{sae.cfg.d_sae} features at {hook}, {n_tokens} tokens in corpus-order batches of {BATCH}; "
                f"{n_tokens / t_search:.0f} vs {n_tokens / t_base:.0f} tokens/s")]
    t = interleaved({"harvest": harvest_sorted, "search": feature_search}, model.cfg.device, rounds=5)
    t_sorted, t_search = t["harvest"], t["search"]
    overhead = t_sorted / t_search
    rows.append(Row("  same, harvest also length-sorted (encode + top-k cost alone)", overhead, "info", True,
                    f"{n_tokens / t_search:.0f} vs {n_tokens / t_sorted:.0f} tokens/s"))

    def pass_over(n_docs: int):
        return max_activating_examples(model, sae, documents(n_docs, seed=4), k=20, batch_size=BATCH,
                                       max_len=MAX_LEN, cache=False, progress=False)

    n_small = 300 if small else 64  # at least two read-ahead windows of 8 batches
    pass_over(n_small)  # warm-up
    measure = peak_cuda_extra if torch.cuda.is_available() else (lambda fn: peak_heap_extra(fn)[0])
    how = "CUDA peak extra allocation" if torch.cuda.is_available() else (
        "peak extra malloc heap (mallinfo2, torch CPU tensors included), the larger of 2 runs")
    results = {}

    def peak(n_docs: int) -> int:  # sampling can only miss a peak, so keep the larger of two runs
        return max(measure(lambda: results.__setitem__(n_docs, pass_over(n_docs))) or 0 for _ in range(2))

    peak_small, peak_big = peak(n_small), peak(10 * n_small)
    sync()
    kept = [sum(getattr(r, n).nelement() * getattr(r, n).element_size() for n in ("values", "context_tokens",
                "context_acts", "hist")) for r in (results[n_small], results[10 * n_small])]
    mem = peak_big / max(peak_small, 1)
    rows.append(Row("feature search memory, 10x corpus / 1x corpus", mem, "<= 1.10", mem <= 1.10 and kept[0] == kept[1],
                    f"{how}: {peak_big / 1e6:.2f} vs {peak_small / 1e6:.2f} MB; result tensors {kept[1]} vs {kept[0]} B"))
    return rows
