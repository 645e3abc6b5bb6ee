"""The core every technique stands on: models, profiles, tokens, hooks, read-out, cache, results.

- `models`: `load_model`, `model_info`, devices and dtypes (the only hub access);
- `profiles`: what differs per model (chat template, refusal tokens, patchscope prompts, corpus);
- `tokens`: the one tokenize / BOS / left-pad / token-budget batching / `token_id` / chat format;
- `hooks`: hook sites, scoped hook contexts (thread-owned), `harvest` that stops at the last layer needed;
- `bridge` / `engine`: Hugging Face models wrapped in transformer-lens' `TransformerBridge`
  (strict loading, copies), and the seam's bridge-specific pieces (Hugging Face `generate`);
- `checkpoints` / `smollm2` / `corpus`: local Hugging Face folders and GGUF files, the
  offline SmolLM2 model and its profile, a real-text corpus from the standard library;
- `readout`: the one final norm + unembedding (soft-capping included);
- `cache`: the safetensors disk cache; `topk`: streaming top-k over a corpus;
- `results`: the base every result shares; `plotting`: the shared figures; `checks`: argument checks.

Nothing here knows about any technique.
"""
