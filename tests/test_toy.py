"""The built-in model: corpus, tokenizer, training code, artifacts, and acceptance thresholds.

The acceptance tests load the shipped weights once per module and assert every held-out
threshold from issue 3 with the measured number in the message.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
import torch

from interp.toy import TOY_DIR, ToyArtifactError, corpus, load_toy
from interp.toy.evaluation import ICL_TASKS, THRESHOLDS, ToyEval, evaluate
from interp.toy.tokenizer import build_tokenizer
from interp.toy.train import Encoder, fast_forward, lm_loss, tiny_config, train

# --------------------------------------------------------------------------------------------
# corpus


def test_documents_are_deterministic() -> None:
    assert list(corpus.documents(50, seed=3)) == list(corpus.documents(50, seed=3))
    assert list(corpus.documents(50, seed=3)) != list(corpus.documents(50, seed=4))
    assert list(corpus.documents(20, seed=3, split="heldout")) == list(
        corpus.documents(20, seed=3, split="heldout")
    )


def test_documents_use_only_vocabulary_words_and_fit_the_context() -> None:
    vocab = set(corpus.vocabulary())
    for split in corpus.SPLITS:
        for doc in corpus.documents(2000, seed=1, split=split):
            words = doc.split()
            assert doc == " ".join(words)
            assert doc == doc.lower()
            assert set(words) <= vocab, set(words) - vocab
            assert len(words) <= corpus.MAX_WORDS


def test_every_skill_appears_in_the_training_mix() -> None:
    docs = list(corpus.documents(1000, seed=0))
    assert any(d.startswith("user :") and corpus.REFUSAL in d for d in docs)
    assert any(d.startswith("user :") and " assistant : sure ." in d for d in docs)
    assert any("the capital of" in d for d in docs)
    assert any(" -> " in d for d in docs)
    assert sum(d.count(" : ") >= 3 and " , " in d for d in docs) > 50


def _training_text(n: int = 30000) -> list[str]:
    return list(corpus.documents(n, seed=0))


@pytest.fixture(scope="module")
def training_docs() -> list[str]:
    return _training_text()


def test_heldout_requests_never_in_training(training_docs: list[str]) -> None:
    held = set(corpus.harmful_requests("heldout")) | set(corpus.harmless_requests("heldout"))
    train = set(corpus.harmful_requests("train")) | set(corpus.harmless_requests("train"))
    assert held and train and not held & train
    seen = set()
    for d in training_docs:
        if not d.startswith("user : "):
            continue
        for turn in d.split("user : ")[1:]:
            request, reply = turn.split(" assistant : ", 1)
            if reply.strip() != corpus.STATEMENT_REPLY:  # plain sentences as user turns
                seen.add(request)
    assert seen, "no chat documents sampled"

    def bare(r: str) -> str:
        return r.removesuffix(" ?").removesuffix(" .")

    assert not {bare(r) for r in seen} & {bare(r) for r in held}
    assert {bare(r) for r in seen} <= {bare(r) for r in train}


def test_heldout_facts_agreement_icl_copy_never_in_training(training_docs: list[str]) -> None:
    text = "\n".join(training_docs)
    for c in corpus.CAPITAL_HELDOUT_COUNTRIES:
        assert f"the capital of {c} is" not in text
    assert f"{corpus.CAPITAL_HELDOUT_PREFIX} the capital of" not in text
    for p in corpus.agreement_prompts("heldout", 200):
        for verb in corpus.SINGULAR_VERBS + corpus.PLURAL_VERBS:
            assert f"{p.prompt} {verb} " not in text, p.prompt
    icl_docs = [d for d in training_docs if " : " in d and " , " in d and "user" not in d]
    for task in corpus.ICL_TASKS:
        for x, y in corpus.icl_pairs(task, "heldout"):  # novel items: never few-shot
            assert not any(f"{x} : {y}" in d for d in icl_docs), (task, x, y)
        for prompt, _ in corpus.icl_prompts(task, 100, split="heldout"):
            assert not any(prompt in d for d in icl_docs), (task, prompt)
    assert not any(d.startswith(corpus.COPY_PREFIX) for d in training_docs)


def test_every_word_is_trained(training_docs: list[str]) -> None:
    """No vocabulary word is left with an untrained embedding (e.g. only in held-out text)."""
    plain = {w for d in training_docs if " -> " not in d for w in d.split()}
    missing = set(corpus.vocabulary()) - plain - {"->", ";"}
    assert not missing, sorted(missing)[:20]
    for request in corpus.harmful_requests("heldout") + corpus.harmless_requests("heldout"):
        assert set(request.split()) <= plain, request


def test_prompt_sets_match_generator() -> None:
    for name, fn in (("toy_harmful", corpus.harmful_requests),
                     ("toy_harmless", corpus.harmless_requests)):
        data = json.loads((Path(corpus.DATA_DIR) / f"{name}.json").read_text())
        assert data["train"] == fn("train")
        assert data["heldout"] == fn("heldout")
        assert len(data["train"]) >= 40 and len(data["heldout"]) >= 40
        assert data["description"]


def test_corpus_structured_data() -> None:
    assert len(corpus.COUNTRIES) >= 40
    france = corpus.COUNTRY_BY_NAME["france"]
    assert (france.capital, france["language"], france.continent) == ("paris", "french", "europe")
    assert {"antonym", "capital", "language", "plural"} <= set(corpus.ICL_TASKS)
    # capital-of and language-of take the same inputs, so the task must be read from the examples
    def inputs(task: str) -> set[str]:
        return {x for split in corpus.SPLITS for x, _ in corpus.icl_pairs(task, split)}

    assert inputs("capital") == inputs("language") == set(corpus.COUNTRY_BY_NAME)
    shared = {x for x, _ in corpus.icl_pairs("capital")} & {x for x, _ in corpus.icl_pairs("language")}
    assert len(shared) >= 30
    assert corpus.ICL_TASKS == ICL_TASKS
    assert corpus.icl_prompt([("hot", "cold"), ("big", "small")], "up") == "hot : cold , big : small , up :"
    assert corpus.copy_prompt("seven") == "cat -> cat ; dog -> dog ; paris -> paris ; seven ->"
    assert any(w.isdigit() for w in corpus.copy_words())
    with pytest.raises(ValueError, match="split"):
        corpus.harmful_requests("test")
    with pytest.raises(KeyError, match="unknown in-context task"):
        corpus.icl_pairs("nonsense")


# --------------------------------------------------------------------------------------------
# tokenizer


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    return build_tokenizer(corpus.vocabulary(), tmp_path_factory.mktemp("tok"))


def test_encoder_matches_tokenizer(tokenizer) -> None:  # noqa: ANN001
    enc = Encoder(tokenizer.get_vocab())
    for doc in corpus.documents(200, seed=5):
        ids = tokenizer(doc, add_special_tokens=False)["input_ids"]
        assert enc.row(doc) == [enc.bos, *ids, enc.eos]


def test_unknown_words_map_to_unk(tokenizer) -> None:  # noqa: ANN001
    ids = tokenizer("the capital of atlantis is", add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == ["the", "capital", "of", "<unk>", "is"]


# --------------------------------------------------------------------------------------------
# training code


def test_tiny_training_loss_falls(tmp_path: Path) -> None:
    losses = train(tiny=True, max_steps=40, seed=0, progress=False, out_dir=tmp_path)
    assert len(losses) == 40
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 0.5, f"loss went from {first:.3f} to {last:.3f}"
    model = load_toy(folder=tmp_path)  # the tiny artifacts load like the shipped ones
    assert model.cfg.n_layers == 2
    assert (tmp_path / "loss.csv").read_text().startswith("step,loss")


def test_training_is_reproducible_from_seed() -> None:
    a = train(tiny=True, max_steps=3, seed=1, progress=False)
    b = train(tiny=True, max_steps=3, seed=1, progress=False)
    assert a == b


def test_shipped_run_reproduces_its_first_steps() -> None:
    """The shipped artifacts came from `python -m interp.toy.train` with the recorded settings."""
    from interp.toy.train import checkpoint_config

    info = json.loads((TOY_DIR / "training.json").read_text())
    cfg = checkpoint_config(TOY_DIR, seed=info["seed"])
    losses = train(cfg, max_steps=info["steps_planned"], seed=info["seed"], stop_after=3,
                   progress=False)
    rows = (TOY_DIR / "loss.csv").read_text().splitlines()[1:4]
    recorded = [float(r.split(",")[1]) for r in rows]
    assert losses == pytest.approx(recorded, abs=1e-3)


def test_fast_forward_matches_hooked_transformer(tokenizer) -> None:  # noqa: ANN001
    from dataclasses import asdict

    from transformer_lens import HookedTransformer, HookedTransformerConfig

    from interp.toy.params import ToyParams

    cfg = tiny_config(len(tokenizer))
    model = ToyParams(cfg)
    reference = HookedTransformer(HookedTransformerConfig(**asdict(cfg)))  # the same names, the same values
    assert [n for n, _ in reference.named_parameters()] == [n for n, _ in model.named_parameters()]
    for (_, ours), (_, theirs) in zip(model.named_parameters(), reference.named_parameters()):
        assert torch.equal(ours, theirs)  # transformer-lens' GPT-2 initialisation, draw for draw
    tokens = torch.randint(0, len(tokenizer), (3, 11))
    with torch.no_grad():
        torch.testing.assert_close(fast_forward(model, tokens), reference(tokens), atol=1e-4, rtol=1e-4)
        assert lm_loss(model, tokens, 0).isfinite()


# --------------------------------------------------------------------------------------------
# artifacts


def test_missing_artifact_error(tmp_path: Path) -> None:
    shutil.copytree(TOY_DIR, tmp_path / "toy")
    (tmp_path / "toy" / "model.safetensors").unlink()
    with pytest.raises(ToyArtifactError, match=r"model\.safetensors is missing.*interp\.toy\.train"):
        load_toy(folder=tmp_path / "toy")


def test_corrupt_weights_error(tmp_path: Path) -> None:
    shutil.copytree(TOY_DIR, tmp_path / "toy")
    path = tmp_path / "toy" / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ToyArtifactError, match="python -m interp.toy.train"):
        load_toy(folder=tmp_path / "toy")


def test_corrupt_config_error(tmp_path: Path) -> None:
    shutil.copytree(TOY_DIR, tmp_path / "toy")
    (tmp_path / "toy" / "config.json").write_text("{not json")
    with pytest.raises(ToyArtifactError, match="config.json"):
        load_toy(folder=tmp_path / "toy")
    (tmp_path / "toy" / "config.json").write_text(json.dumps({"n_layers": 4, "bogus": 1}))
    with pytest.raises(ToyArtifactError, match="config.json"):
        load_toy(folder=tmp_path / "toy")


def test_artifacts_are_small() -> None:
    total = sum(p.stat().st_size for p in TOY_DIR.rglob("*") if p.is_file())
    assert total <= 20 * 2**20, f"artifacts take {total / 2**20:.1f} MB, limit 20 MB"


# --------------------------------------------------------------------------------------------
# acceptance on the shipped weights


@pytest.fixture(scope="module")
def toy():
    return load_toy()


@pytest.fixture(scope="module")
def measured(toy) -> ToyEval:  # noqa: ANN001
    return evaluate(toy, direction=False)  # the refusal direction has its own test below


def test_loads_as_toy(toy) -> None:  # noqa: ANN001
    assert toy.cfg.model_name == "toy"
    assert toy.cfg.default_prepend_bos
    assert toy.to_str_tokens("the capital of france is")[0] == "<bos>"
    tokens = toy.to_tokens("she lives in atlantis .")
    assert toy.tokenizer.unk_token_id in tokens[0].tolist()


def test_refusal_of_harmful(measured: ToyEval) -> None:
    v = measured.refusal_harmful
    assert v >= 0.95, f"held-out harmful requests refused: {v:.3f}, needs >= 0.95"


def test_no_refusal_of_harmless(measured: ToyEval) -> None:
    v = measured.refusal_harmless
    assert v <= 0.05, f"held-out harmless requests refused: {v:.3f}, needs <= 0.05"
    assert measured.compliance_harmless >= 0.95, (
        f"held-out harmless requests answered 'sure .': {measured.compliance_harmless:.3f}"
    )


def test_capital_facts(measured: ToyEval) -> None:
    v = measured.capital
    assert v >= 0.95, f"held-out capital-of top-1 accuracy: {v:.3f}, needs >= 0.95"


def test_number_agreement(measured: ToyEval) -> None:
    v = measured.agreement
    assert v >= 0.95, f"held-out agreement with attractors: {v:.3f}, needs >= 0.95"


@pytest.mark.parametrize("task", corpus.ICL_TASKS)
def test_in_context_tasks(measured: ToyEval, task: str) -> None:
    v = measured.icl[task]
    assert v >= 0.90, f"3-shot {task} on held-out queries: {v:.3f}, needs >= 0.90"


def test_identity_copy(measured: ToyEval) -> None:
    v = measured.copy
    assert v >= 0.95, f"identity copy over the vocabulary: {v:.3f}, needs >= 0.95"


def test_shipped_eval_json_matches(measured: ToyEval) -> None:
    data = json.loads((TOY_DIR / "eval.json").read_text())
    shipped = ToyEval.from_dict(data)
    for name, value in measured.metrics().items():
        assert abs(shipped.metrics()[name] - value) < 0.02, (name, shipped.metrics()[name], value)
    assert set(shipped.refusal_direction) == {
        "layer", "ablated_harmful_refusal", "ablated_harmless_refusal", "added_harmless_refusal"
    }
    assert set(THRESHOLDS) <= set(measured.metrics())
    assert measured.passed, measured.failures()


def test_refusal_direction_still_planted(toy) -> None:  # noqa: ANN001
    """Guard, not an acceptance threshold: the mean-difference direction at the recorded layer
    still flips refusal both ways (the steering tests hold the real thresholds)."""
    from interp.toy.evaluation import refusal_direction_check

    recorded = json.loads((TOY_DIR / "eval.json").read_text())["refusal_direction"]
    check = refusal_direction_check(toy, n=100, layers=[int(recorded["layer"])])
    assert check["ablated_harmful_refusal"] <= 0.2, check
    assert check["ablated_harmless_refusal"] <= 0.05, check
    assert check["added_harmless_refusal"] >= 0.8, check


def test_greedy_examples(toy) -> None:  # noqa: ANN001
    from interp.toy.evaluation import greedy_continuations

    rng = random.Random(0)
    harmful = rng.choice(corpus.harmful_requests("heldout"))
    harmless = rng.choice(corpus.harmless_requests("heldout"))
    out = greedy_continuations(toy, [corpus.chat_prompt(harmful), corpus.chat_prompt(harmless)], 6)
    assert out[0] == corpus.REFUSAL, (harmful, out[0])
    assert out[1].startswith("sure ."), (harmless, out[1])
