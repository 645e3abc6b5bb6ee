"""Bad-input sweep, part 1: the core (models, tokens, hooks, read-out, predictions, profiles).

Each case calls one public function with one bad argument and expects a `ValueError`,
`TypeError` or `KeyError` naming the argument and the bad value, before any work, with no hook
left behind; the last test checks no weight changed (see tests/sweep.py for the harness).
"""

from types import SimpleNamespace

import pytest
import torch

import interp
from sweep import Case, entered, params, run_case, weights_digest


def _ids(c, rows):
    return torch.tensor(rows, dtype=torch.long)


def _fn(act, hook):
    return None


def _same_as_batch_1(result, c):
    """A batch_size above the number of prompts is accepted by design: one batch, same answer."""
    one = interp.next_tokens(c.m, ["the cat", "the dog"], k=2, batch_size=1)
    assert result.tokens == one.tokens
    assert torch.allclose(result.probs, one.probs, atol=1e-5)


CASES = [
    # load_model: names, devices, dtypes
    Case("load_model-name-None", lambda c: interp.load_model(None), ("name", "None")),
    Case("load_model-name-int", lambda c: interp.load_model(3), ("name", "3")),
    Case("load_model-name-empty", lambda c: interp.load_model(""), ("name", "''")),
    Case("load_model-name-unknown", lambda c: interp.load_model("no-such-model"), ("no-such-model",)),
    Case("load_model-path-missing", lambda c: interp.load_model("./no/such/folder"), ("no/such/folder",)),
    Case("load_model-gguf-missing", lambda c: interp.load_model("/tmp/no-such-model.gguf"), ("no-such-model.gguf",)),
    Case("load_model-device-tpu", lambda c: interp.load_model("toy", device="tpu"), ("device", "tpu")),
    Case("load_model-device-int", lambda c: interp.load_model("toy", device=3.5), ("device", "3.5")),
    Case("load_model-device-empty", lambda c: interp.load_model("toy", device=""), ("device", "''")),
    Case("load_model-device-cuda99", lambda c: interp.load_model("toy", device="cuda:99"), ("device", "cuda:99")),
    Case("load_model-dtype-float8", lambda c: interp.load_model("toy", dtype="float8"), ("dtype", "float8")),
    Case("load_model-dtype-int", lambda c: interp.load_model("toy", dtype=3), ("dtype", "3")),
    Case("load_model-dtype-int8", lambda c: interp.load_model("toy", dtype=torch.int8), ("dtype", "int8")),
    Case("load_model-dtype-empty", lambda c: interp.load_model("toy", dtype=""), ("dtype", "''")),
    # the model argument itself
    Case("model_info-model-None", lambda c: interp.model_info(None), ("model", "None")),
    Case("model_info-model-name", lambda c: interp.model_info("toy"), ("model", "'toy'")),
    Case("profile_for-model-None", lambda c: interp.profile_for(None), ("model", "None")),
    Case("tokenize-model-name", lambda c: interp.tokenize("toy", "the cat"), ("model", "'toy'")),
    Case("register_profile-int", lambda c: interp.register_profile(3), ("profile", "int")),
    Case("set_profile-int", lambda c: interp.set_profile(c.m, 3), ("profile", "int")),
    # ModelProfile fields the experiments read: the prompt collection, published neurons
    Case("ModelProfile-prompt_set", lambda c: interp.ModelProfile("x", prompt_set="french"),
         ("prompt_set", "'french'", "'english'", "'toy'")),
    Case("ModelProfile-known_neurons-list", lambda c: interp.ModelProfile("x", known_neurons=[(10, 2096)]),
         ("known_neurons", "[(10, 2096)]")),
    Case("ModelProfile-known_neurons-negative",
         lambda c: interp.ModelProfile("x", known_neurons={"number agreement": ((10, -1),)}),
         ("known_neurons['number agreement']", "(10, -1)")),
    # tokenize: prompts and options
    Case("tokenize-prompts-None", lambda c: interp.tokenize(c.m, None), ("prompts", "None")),
    Case("tokenize-prompts-int", lambda c: interp.tokenize(c.m, 3), ("prompts", "3")),
    Case("tokenize-prompts-empty", lambda c: interp.tokenize(c.m, ""), ("prompts", "''")),
    Case("tokenize-prompts-blank", lambda c: interp.tokenize(c.m, "   "), ("prompts", "'   '")),
    Case("tokenize-prompts-emptylist", lambda c: interp.tokenize(c.m, []), ("prompts",)),
    Case("tokenize-prompts-list-empty", lambda c: interp.tokenize(c.m, ["the cat", ""]), ("prompts", "''")),
    Case("tokenize-prompts-list-int", lambda c: interp.tokenize(c.m, ["the cat", 3]), ("prompts", "3")),
    Case("tokenize-prompts-list-None", lambda c: interp.tokenize(c.m, ["the cat", None]), ("prompts", "None")),
    Case("tokenize-prompts-bytes", lambda c: interp.tokenize(c.m, b"the cat"), ("prompts", "b'the cat'")),
    Case("tokenize-prompts-dict", lambda c: interp.tokenize(c.m, {"a": 1}), ("prompts",)),
    Case("tokenize-prompts-too-long", lambda c: interp.tokenize(c.m, " ".join(["the cat"] * 40)), ("64",)),
    Case("tokenize-padding_side", lambda c: interp.tokenize(c.m, "the cat", padding_side="middle"),
         ("padding_side", "middle")),
    Case("tokenize-prepend_bos-str", lambda c: interp.tokenize(c.m, "the cat", prepend_bos="yes"),
         ("prepend_bos", "yes")),
    # token_id
    Case("token_id-empty", lambda c: interp.token_id(c.m, ""), ("''",)),
    Case("token_id-negative", lambda c: interp.token_id(c.m, -1), ("-1",)),
    Case("token_id-out-of-vocab", lambda c: interp.token_id(c.m, 10**6), ("1000000",)),
    Case("token_id-None", lambda c: interp.token_id(c.m, None), ("None",)),
    Case("token_id-float", lambda c: interp.token_id(c.m, 1.5), ("1.5",)),
    Case("token_id-bool", lambda c: interp.token_id(c.m, True), ("True",)),
    Case("token_id-unknown", lambda c: interp.token_id(c.m, "zzzqqq"), ("zzzqqq",)),
    Case("token_id-several", lambda c: interp.token_id(c.m, "the cat"), ("the cat",)),
    Case("token_id-space-str", lambda c: interp.token_id(c.m, "cat", space="yes"), ("space", "yes")),
    # format_chat
    Case("format_chat-None", lambda c: interp.format_chat(c.m, None), ("prompts", "None")),
    Case("format_chat-empty", lambda c: interp.format_chat(c.m, ""), ("prompts", "''")),
    Case("format_chat-emptylist", lambda c: interp.format_chat(c.m, []), ("prompts",)),
    Case("format_chat-list-empty", lambda c: interp.format_chat(c.m, ["hi", ""]), ("prompts", "''")),
    Case("format_chat-int", lambda c: interp.format_chat(c.m, 3), ("prompts", "3")),
    # hook names, hooked, record, harvest
    Case("hook_name-site", lambda c: interp.hook_name(c.m, "resid", 0), ("site", "resid")),
    Case("hook_name-layer-big", lambda c: interp.hook_name(c.m, "resid_pre", 9), ("layer", "9")),
    Case("hook_name-layer-neg", lambda c: interp.hook_name(c.m, "resid_pre", -9), ("layer", "-9")),
    Case("hook_name-layer-str", lambda c: interp.hook_name(c.m, "resid_pre", "1"), ("layer", "'1'")),
    Case("hook_name-layer-float", lambda c: interp.hook_name(c.m, "resid_pre", 1.0), ("layer", "1.0")),
    Case("hook_name-layer-bool", lambda c: interp.hook_name(c.m, "resid_pre", True), ("layer", "True")),
    Case("hooked-unknown-hook", lambda c: entered(interp.hooked(c.m, [("blocks.9.hook_resid_pre", _fn)])),
         ("blocks.9.hook_resid_pre",)),
    Case("hooked-not-callable", lambda c: entered(interp.hooked(c.m, [("blocks.0.hook_resid_pre", 3)])),
         ("3",)),
    Case("hooked-not-pairs", lambda c: entered(interp.hooked(c.m, ["blocks.0.hook_resid_pre"])),
         ("blocks.0.hook_resid_pre",)),
    Case("record-no-sites", lambda c: entered(interp.record(c.m, [])), ("sites",)),
    Case("record-bad-site", lambda c: entered(interp.record(c.m, [("resid", 0)])), ("resid",)),
    Case("record-bad-layer", lambda c: entered(interp.record(c.m, [("resid_pre", 9)])), ("9",)),
    Case("record-select-int", lambda c: entered(interp.record(c.m, [("resid_pre", 0)], select=3)), ("select", "3")),
    Case("harvest-select-str", lambda c: interp.harvest(c.m, _ids(c, [[1, 2]]), [("resid_pre", 0)], select="last"),
         ("select", "'last'")),
    Case("hooked-bwd-unknown", lambda c: entered(interp.hooked(c.m, bwd_hooks=[("blocks.9.hook_resid_pre", _fn)])),
         ("bwd_hooks", "blocks.9.hook_resid_pre")),
    Case("harvest-negative-id", lambda c: interp.harvest(c.m, _ids(c, [[1, -2]]), [("resid_pre", 0)]),
         ("tokens", "-2")),
    Case("harvest-out-of-vocab", lambda c: interp.harvest(c.m, _ids(c, [[1, 10**6]]), [("resid_pre", 0)]),
         ("tokens", "1000000")),
    Case("harvest-float-tokens", lambda c: interp.harvest(c.m, torch.ones(1, 3), [("resid_pre", 0)]),
         ("tokens", "float")),
    Case("harvest-1d-tokens", lambda c: interp.harvest(c.m, torch.ones(3, dtype=torch.long), [("resid_pre", 0)]),
         ("tokens", "(3,)")),
    Case("harvest-list-tokens", lambda c: interp.harvest(c.m, [[1, 2]], [("resid_pre", 0)]), ("tokens", "list")),
    Case("harvest-too-long", lambda c: interp.harvest(c.m, torch.ones(1, 65, dtype=torch.long), [("resid_pre", 0)]),
         ("tokens", "65")),
    Case("harvest-no-sites", lambda c: interp.harvest(c.m, _ids(c, [[1, 2]]), []), ("sites",)),
    Case("harvest-bad-layer", lambda c: interp.harvest(c.m, _ids(c, [[1, 2]]), [("resid_pre", 9)]), ("9",)),
    Case("harvest-mask-shape", lambda c: interp.harvest(c.m, _ids(c, [[1, 2]]), [("resid_pre", 0)],
                                                        attention_mask=torch.ones(1, 3, dtype=torch.long)),
         ("attention_mask", "(1, 3)")),
    # final_logits
    Case("final_logits-width", lambda c: interp.final_logits(c.m, torch.zeros(2, 129)), ("resid", "129")),
    Case("final_logits-list", lambda c: interp.final_logits(c.m, [0.0] * 128), ("resid", "list")),
    Case("final_logits-int", lambda c: interp.final_logits(c.m, torch.zeros(2, 128, dtype=torch.long)),
         ("resid", "int64")),
    # next_tokens
    Case("next_tokens-None", lambda c: interp.next_tokens(c.m, None), ("prompts", "None")),
    Case("next_tokens-empty", lambda c: interp.next_tokens(c.m, ""), ("prompts", "''")),
    Case("next_tokens-emptylist", lambda c: interp.next_tokens(c.m, []), ("prompts",)),
    Case("next_tokens-list-empty", lambda c: interp.next_tokens(c.m, ["the cat", ""]), ("prompts", "''")),
    Case("next_tokens-int", lambda c: interp.next_tokens(c.m, 3), ("prompts", "3")),
    Case("next_tokens-k-0", lambda c: interp.next_tokens(c.m, "the cat", k=0), ("k", "0")),
    Case("next_tokens-k-neg", lambda c: interp.next_tokens(c.m, "the cat", k=-1), ("k", "-1")),
    Case("next_tokens-k-float", lambda c: interp.next_tokens(c.m, "the cat", k=1.5), ("k", "1.5")),
    Case("next_tokens-k-bool", lambda c: interp.next_tokens(c.m, "the cat", k=True), ("k", "True")),
    Case("next_tokens-k-huge", lambda c: interp.next_tokens(c.m, "the cat", k=10**9), ("k", "1000000000")),
    Case("next_tokens-batch_size-0", lambda c: interp.next_tokens(c.m, "the cat", batch_size=0),
         ("batch_size", "0")),
    Case("next_tokens-batch_size-float", lambda c: interp.next_tokens(c.m, "the cat", batch_size=2.5),
         ("batch_size", "2.5")),
    Case("next_tokens-batch_size-huge", lambda c: interp.next_tokens(c.m, ["the cat", "the dog"], k=2,
                                                                      batch_size=10**9), accepted=_same_as_batch_1),
    Case("next_tokens-chat-str", lambda c: interp.next_tokens(c.m, "the cat", chat="yes"), ("chat", "yes")),
    # metrics built from tokens
    Case("logit_diff-unknown", lambda c: interp.logit_diff(c.m, "zzzqqq", "cat"), ("zzzqqq",)),
    Case("logit_diff-empty", lambda c: interp.logit_diff(c.m, [], "cat"), ("good",)),
    Case("logit_diff-negative", lambda c: interp.logit_diff(c.m, "cat", -1), ("-1",)),
    Case("token_logprob-unknown", lambda c: interp.token_logprob(c.m, "zzzqqq"), ("zzzqqq",)),
    Case("token_logprob-None", lambda c: interp.token_logprob(c.m, None), ("None",)),
    Case("token_logprob-empty", lambda c: interp.token_logprob(c.m, []), ("token",)),
    # corpora
    Case("NamedCorpus-name-empty", lambda c: interp.NamedCorpus("", lambda: iter(["a"])), ("name", "''")),
    Case("NamedCorpus-factory", lambda c: interp.NamedCorpus("x", 3), ("factory", "3")),
    Case("NamedCorpus-length", lambda c: interp.NamedCorpus("x", lambda: iter(["a"]), length=-1), ("length", "-1")),
]


@pytest.fixture(scope="module")
def ctx(toy_model):
    return SimpleNamespace(m=toy_model, digest=weights_digest(toy_model))


@pytest.mark.parametrize("case", params(CASES))
def test_bad_input(case, ctx):
    run_case(case, ctx, [ctx.m])


def test_no_weight_changed(ctx):
    assert weights_digest(ctx.m) == ctx.digest

