"""Model profiles: everything that differs per model family, in one registry.

A technique should never ask "is this the built-in model?" or "is this Gemma?". What changes
from one model to the next (how a user turn is wrapped in the chat template, which positions
follow the instruction, which tokens start a refusal, the patchscope target prompts that suit
the tokenizer, a default corpus for density estimates, whether a BOS token is prepended, which
bundled prompt collection its vocabulary reads, published findings about its neurons) lives in a
`ModelProfile`, looked up once per call with `profile_for(model)`.

Profiles are found, in order:

1. a profile attached to the model object with `set_profile(model, profile)` (loaders do this);
2. the registry, by `model.cfg.model_name` (`register_profile(profile)`: exact name), then by
   family (`ModelProfile.matches`: a predicate over the config, e.g. "Gemma and `-it`");
3. a default built from the model itself (`derive_profile`): chat when its tokenizer has a chat
   template and its name says it is instruction-tuned, the template taken from the tokenizer.
   Checkpoints loaded from disk carry their own answer instead: `load_model(path)` attaches a
   profile that is chat exactly when the checkpoint's tokenizer has a chat template.

This mirrors SAELens' pretrained-SAE directory and TransformerLens' per-architecture config
tables: data in one place, code that reads it everywhere else.

Example:
    >>> import interp
    >>> profile = interp.profile_for(model)
    >>> profile.chat_template
    'user : {prompt} assistant :'
    >>> interp.register_profile(dataclasses.replace(profile, name="my-model"))  # your own model
"""

from __future__ import annotations

import dataclasses
import numbers
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from transformer_lens import HookedTransformer

#: Phrases that mark a refusal (Arditi et al. 2024's list).
REFUSAL_PHRASES: tuple[str, ...] = (
    "i cannot",
    "i can't",
    "i can not",
    "i am unable",
    "i'm unable",
    "i am not able",
    "i'm not able",
    "i'm sorry",
    "i am sorry",
    "i apologize",
    "as an ai",
    "as a language model",
    "as an assistant",
    "i will not",
    "i won't",
)

#: Patchscope target prompts written for a BPE tokenizer (Ghandeharioun et al. 2024); `{x}` is
#: the placeholder whose hidden state is replaced.
GENERIC_PATCHSCOPE_PRESETS: Mapping[str, str] = MappingProxyType({
    "identity": "cat -> cat ; 1135 -> 1135 ; hello -> hello ; {x} ->",
    "description": (
        "Syria: Country in the Middle East, Leonardo DiCaprio: American actor, "
        "Samsung: South Korean multinational electronics corporation, {x}:"
    ),
    "capital": "The capital of {x} is",
    "language": "The people of {x} speak",
    "continent": "{x} is a country in",
})

_CHAT_TAGS = ("-it", "chat", "instruct")

#: Prompt collections a model's vocabulary can read (`ModelProfile.prompt_set`): `"english"`, the
#: English sets bundled in `interp.data` (`harmful`, `country_capital`, `two_hop`, ...), and
#: `"toy"`, prompts generated from `interp.toy.corpus` plus its `toy_*` sets in `interp.data`.
PROMPT_SETS: tuple[str, ...] = ("english", "toy")

#: GPT-2 small's MLP neurons for subject-verb number agreement, as (layer, neuron): layer 10
#: #2096 and layer 9 #1094 (Finlayson et al. 2021, "Causal Analysis of Syntactic Agreement
#: Mechanisms in Neural Language Models"; the lecture's anchors).
GPT2_NUMBER_NEURONS: tuple[tuple[int, int], ...] = ((10, 2096), (9, 1094))


@dataclass(frozen=True)
class ModelProfile:
    """What differs per model: chat format, refusal vocabulary, patchscope prompts, corpus, data.

    Attributes:
        name: the model name (`cfg.model_name`) this profile is registered for, or a family label.
        chat_template: how one user request is wrapped, with a `{prompt}` slot; `None` for a
            model without a chat format (then `chat=True` is an error, and `chat=None` means no).
        prepend_bos: whether tokenized text starts with BOS; `None` follows the model's
            `cfg.default_prepend_bos`. A template that already begins with the BOS text never
            gets a second one.
        refusal_phrases: lower-case phrases that mark a completion as a refusal.
        refusal_tokens: tokens that start a refusal, for the next-token refusal score: strings,
            or ids where the string is ambiguous (a BPE vocabulary has both `I` and ` I`; the
            first token after a template ending in a newline is the one without the space).
        patchscope_presets: preset name -> target prompt with a `{x}` placeholder.
        placeholder: the patchscope placeholder word (`None`: `"x"`, else `"?"`, whichever is one token).
        default_corpus: returns `(texts, cache_key)` for density estimates; `None` uses the
            bundled prompt sets.
        matches: for family profiles, a predicate over the model picking it (registered
            profiles are tried by exact name first).
        prompt_set: the prompt collection the model's vocabulary reads, one of `PROMPT_SETS`:
            `"english"` (default: the bundled English sets of `interp.data`, cased text for a
            BPE vocabulary) or `"toy"` (the built-in model's word-level lower-case vocabulary:
            prompts generated from `interp.toy.corpus` and the `toy_*` sets of `interp.data`).
            The scripted experiments pick their prompts, entities and task pairs by it.
        known_neurons: published findings about MLP neurons of these weights: a behaviour ->
            `((layer, neuron), ...)`, e.g. GPT-2 small's `{"number agreement": ((10, 2096),
            (9, 1094))}`; empty when none are known. Experiments check them where listed.
        processed_weights: the model's published SAEs (and findings) were made on
            transformer-lens-processed weights (`fold_ln`, centred writing weights and
            unembedding, as `HookedTransformer.from_pretrained` did; e.g. `gpt2-small-res-jb`),
            so `load_model` runs the bridge in compatibility mode, where the activations are the
            ones those SAEs were trained on. False: the Hugging Face model's own activations.
    """

    name: str
    chat_template: str | None = None
    prepend_bos: bool | None = None
    refusal_phrases: tuple[str, ...] = REFUSAL_PHRASES
    refusal_tokens: tuple[str | int, ...] = ("I", "As", "Sorry")
    patchscope_presets: Mapping[str, str] = field(default_factory=lambda: GENERIC_PATCHSCOPE_PRESETS)
    placeholder: str | None = None
    default_corpus: Callable[[], tuple[list[str], str]] | None = field(default=None, compare=False)
    matches: Callable[[Any], bool] | None = field(default=None, compare=False, repr=False)
    prompt_set: str = "english"
    known_neurons: Mapping[str, tuple[tuple[int, int], ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    processed_weights: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name {self.name!r} must be a non-empty string")
        if self.chat_template is not None and "{prompt}" not in self.chat_template:
            raise ValueError(f"chat_template {self.chat_template!r} must contain the slot '{{prompt}}'")
        for preset, text in self.patchscope_presets.items():
            if "{x}" not in text:
                raise ValueError(f"patchscope preset {preset!r} = {text!r} must contain the placeholder '{{x}}'")
        if self.prompt_set not in PROMPT_SETS:
            raise ValueError(
                f"prompt_set {self.prompt_set!r} is not a known prompt collection; allowed: "
                + ", ".join(map(repr, PROMPT_SETS))
            )
        object.__setattr__(self, "known_neurons", _check_known_neurons(self.known_neurons))
        if not isinstance(self.processed_weights, bool):
            raise ValueError(f"processed_weights {self.processed_weights!r} must be True or False")

    @property
    def chat(self) -> bool:
        """True when the model has a chat format (prompts are wrapped by default)."""
        return self.chat_template is not None


def _check_known_neurons(known: Any) -> Mapping[str, tuple[tuple[int, int], ...]]:
    """`known_neurons` as a read-only mapping of tuples, or a ValueError naming the bad entry."""
    allowed = "a mapping of behaviour name -> ((layer, neuron), ...) with non-negative ints"
    if not isinstance(known, Mapping):
        raise ValueError(f"known_neurons {known!r} must be {allowed}")
    out = {}
    for behaviour, neurons in known.items():
        if not isinstance(behaviour, str) or not behaviour:
            raise ValueError(f"known_neurons key {behaviour!r} must be a non-empty string ({allowed})")
        pairs = tuple(neurons) if isinstance(neurons, Sequence) and not isinstance(neurons, str) else None
        ok = bool(pairs) and all(
            isinstance(p, Sequence) and len(p) == 2
            and all(isinstance(x, numbers.Integral) and not isinstance(x, bool) and x >= 0 for x in p)
            for p in pairs
        )
        if not ok:
            raise ValueError(f"known_neurons[{behaviour!r}] = {neurons!r} must be a non-empty tuple of "
                             "(layer, neuron) pairs of non-negative ints, e.g. ((10, 2096), (9, 1094))")
        out[behaviour] = tuple((int(layer), int(i)) for layer, i in pairs)
    return MappingProxyType(out)


_REGISTRY: dict[str, ModelProfile] = {}
_FAMILIES: list[ModelProfile] = []
_ATTACHED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_DERIVED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def register_profile(profile: ModelProfile, *, family: bool = False) -> ModelProfile:
    """Register a profile: by exact model name, or (`family=True`) by its `matches` predicate.

    Registering a name again replaces the old profile, so a user can override a built-in one.

    Example:
        >>> interp.register_profile(interp.ModelProfile("my-chat-model", chat_template="Q: {prompt}\\nA:"))
    """
    if not isinstance(profile, ModelProfile):
        raise TypeError(f"profile must be a ModelProfile, got {type(profile).__name__}")
    if family:
        if profile.matches is None:
            raise ValueError(f"family profile {profile.name!r} needs a `matches` predicate")
        _FAMILIES[:] = [p for p in _FAMILIES if p.name != profile.name] + [profile]
    else:
        _REGISTRY[profile.name] = profile
    return profile


def set_profile(model: HookedTransformer, profile: ModelProfile) -> None:
    """Attach `profile` to this model object; it wins over the registry for this object only."""
    if not isinstance(profile, ModelProfile):
        raise TypeError(f"profile must be a ModelProfile, got {type(profile).__name__}")
    from interp.core.checks import check_model

    _ATTACHED[check_model(model)] = profile


def registered_profiles() -> dict[str, ModelProfile]:
    """The profiles registered by exact name (a copy)."""
    _load_builtin()
    return dict(_REGISTRY)


def profile_for(model: HookedTransformer) -> ModelProfile:
    """The profile of `model`: attached, else registered by name or family, else derived.

    Example:
        >>> interp.profile_for(interp.load_model("toy")).chat_template
        'user : {prompt} assistant :'
    """
    from interp.core.checks import check_model

    if model in _ATTACHED:
        return _ATTACHED[check_model(model)]
    check_model(model)
    _load_builtin()
    name = model.cfg.model_name
    if name in _REGISTRY:
        return _REGISTRY[name]
    for profile in reversed(_FAMILIES):
        if profile.matches(model):  # type: ignore[misc]
            return profile
    if model not in _DERIVED:
        _DERIVED[model] = derive_profile(model)
    return _DERIVED[model]


def has_profile(model: HookedTransformer) -> bool:
    """True when a profile is attached to `model` or registered for it (by name or family)."""
    if model in _ATTACHED:
        return True
    _load_builtin()
    return model.cfg.model_name in _REGISTRY or any(p.matches(model) for p in _FAMILIES)  # type: ignore[misc]


def derive_profile(model: HookedTransformer, *, chat: bool | None = None) -> ModelProfile:
    """A profile from the model itself, its chat template taken from its tokenizer.

    Args:
        chat: True: chat whenever the tokenizer has a chat template (a checkpoint whose tokenizer
            carries one says it is a chat model); None: only when the name also says so
            (`-it`, `chat`, `instruct`); False: never.

    Example:
        >>> derive_profile(model, chat=True).chat_template
        '<|im_start|>user\\n{prompt}<|im_end|>\\n<|im_start|>assistant\\n'
    """
    name = model.cfg.model_name
    tok = model.tokenizer
    if chat is None:
        chat = any(tag in name.lower() for tag in _CHAT_TAGS)
    template = None
    if chat and tok is not None and getattr(tok, "chat_template", None):
        text = tok.apply_chat_template([{"role": "user", "content": "\x00"}], tokenize=False, add_generation_prompt=True)
        template = text.replace("{", "{{").replace("}", "}}").replace("\x00", "{prompt}")
    profile = ModelProfile(name=name, chat_template=template)
    if template is not None and template[-1:].isspace():  # the reply's first token follows a newline
        profile = replace(profile, refusal_tokens=_unspaced(model, profile.refusal_tokens))
    return profile


def _unspaced(model: HookedTransformer, tokens: Sequence[str | int]) -> tuple[str | int, ...]:
    """Ids of the forms without a leading space (`I`, not ` I`) of those tokens the vocabulary has."""
    from interp.core.tokens import token_id

    ids = []
    for token in tokens:
        try:
            ids.append(token_id(model, token, space=False))
        except KeyError:
            pass
    return tuple(ids) or tuple(tokens)


def _gemma_it(model: Any) -> bool:
    name = model.cfg.model_name.lower()
    return "gemma" in name and any(tag in name for tag in _CHAT_TAGS)


_builtin_loaded = False


def _load_builtin() -> None:
    """Register the profiles that ship with the package (once, on first lookup)."""
    global _builtin_loaded
    if _builtin_loaded:
        return
    _builtin_loaded = True
    register_profile(ModelProfile(
        name="gemma-it",
        chat_template="<start_of_turn>user\n{prompt}<end_of_turn>\n<start_of_turn>model\n",
        matches=_gemma_it,
    ), family=True)
    # GPT-2 small: what derive_profile gives it (no chat template, the defaults) plus its published
    # neurons; transformer-lens names it "gpt2", "gpt2-small" is its alias
    gpt2 = ModelProfile(name="gpt2", known_neurons={"number agreement": GPT2_NUMBER_NEURONS},
                        processed_weights=True)  # sae-lens' gpt2-small SAEs read processed activations
    register_profile(gpt2)
    register_profile(replace(gpt2, name="gpt2-small"))
    import interp.core.smollm2  # noqa: F401  (registers SmolLM2-135M-Instruct's profile)
    # the built-in model registers its own profile when `interp.toy` is imported (by `interp`)


def replace(profile: ModelProfile, **changes: Any) -> ModelProfile:
    """A copy of `profile` with some fields changed (`dataclasses.replace`)."""
    return dataclasses.replace(profile, **changes)


def check_presets(presets: Sequence[str], profile: ModelProfile) -> None:
    """Raise a KeyError naming the preset and the valid ones if a preset is unknown."""
    for preset in presets:
        if preset not in profile.patchscope_presets:
            raise KeyError(f"unknown target preset {preset!r}; presets: {', '.join(profile.patchscope_presets)}")
