"""The built-in model's profile: its chat format, refusal token, patchscope prompts, corpus, prompts.

The built-in model was trained on `user : <request> assistant :` turns, refuses with
`i cannot help with that .`, copies words after the few-shot prefix `cat -> cat ; dog -> dog ;
paris -> paris ;`, and reads lower-case facts (`the capital of x is`). Its word-level vocabulary
reads only prompts made from its own corpus (`prompt_set="toy"`), not the bundled English sets.
Registering that here is what lets every technique treat it like any other model (see
`interp.core.profiles`).
"""

from __future__ import annotations

from interp.core.profiles import REFUSAL_PHRASES, ModelProfile, register_profile
from interp.toy.corpus import COPY_PREFIX


def toy_corpus() -> tuple[list[str], str]:
    """2000 training documents of the built-in corpus, and their cache key."""
    from interp.toy.corpus import documents

    return list(documents(2000, seed=0, split="train")), "toy-documents-2000-seed0-train"


PROFILE = register_profile(ModelProfile(
    name="toy",
    chat_template="user : {prompt} assistant :",
    refusal_phrases=REFUSAL_PHRASES,
    refusal_tokens=("i",),
    patchscope_presets={
        "identity": COPY_PREFIX + " {x} ->",
        "description": "paris : a city in france . {x} :",
        "capital": "the capital of {x} is",
        "language": "the people of {x} speak",
        "continent": "{x} is a country in",
    },
    default_corpus=toy_corpus,
    prompt_set="toy",
))
