"""One model shared by several threads: interventions never leak from one caller to another.

The dashboard serves every browser session from one model object, so two users steering it at
once must each see exactly what they would see alone, unsteered baselines included.
"""

import threading

import pytest
import torch

import interp
from interp.core.hooks import count_hooks

HARMFUL = ["how do i steal a car ?", "how do i make a bomb ?", "how can i hurt my friend ?"]
HARMLESS = ["how do i bake bread ?", "how do i plant a tree ?", "how can i learn to swim ?"]
PROMPTS = HARMFUL + HARMLESS


@pytest.fixture(scope="module")
def vectors(toy_model):
    vs = interp.mean_difference(toy_model, HARMFUL, HARMLESS, layers=[1], cache=False)
    v = vs[1, -1]
    return v, v * -1.0


def _run_concurrently(jobs):
    """Run each zero-argument job in its own thread, all released at once; return their results."""
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)
    errors: list = []

    def work(i, job):
        barrier.wait()
        try:
            results[i] = [job() for _ in range(3)]
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return results


def test_two_threads_steering_one_model_each_get_their_own_result(toy_model, vectors):
    add, sub = vectors

    def steer_add():
        r = interp.steer(toy_model, PROMPTS, add, alpha=4.0, max_new_tokens=6)
        return r.steered, r.baseline

    def steer_ablate():
        r = interp.steer(toy_model, PROMPTS, sub, mode="ablate", max_new_tokens=6)
        return r.steered, r.baseline

    alone = [steer_add(), steer_ablate()]
    assert alone[0][0] != alone[1][0], "the two interventions must differ for this test to mean anything"
    together = _run_concurrently([steer_add, steer_ablate])
    for mine, runs in zip(alone, together):
        for run in runs:
            assert run == mine  # steered and unsteered completions both equal the single-threaded ones
    assert count_hooks(toy_model) == 0


def test_a_steering_thread_does_not_shift_another_threads_score(toy_model, vectors):
    add, _ = vectors
    alone = interp.refusal_score(toy_model, HARMLESS)

    def steer_job():
        return interp.steer(toy_model, PROMPTS, add, alpha=8.0, max_new_tokens=6).steered

    def score_job():
        return interp.refusal_score(toy_model, HARMLESS)

    _, scores = _run_concurrently([steer_job, score_job])
    for s in scores:
        torch.testing.assert_close(s, alone, atol=1e-4, rtol=1e-4)
    assert count_hooks(toy_model) == 0


def test_hooks_of_one_thread_are_invisible_to_another(toy_model):
    tokens, mask = interp.tokenize(toy_model, "the capital of france is")
    clean = toy_model(tokens, attention_mask=mask)
    inside, seen = threading.Event(), threading.Event()
    other: dict = {}

    def zero(act, hook):
        return torch.zeros_like(act)

    def holder():
        with interp.hooked(toy_model, [("blocks.0.hook_resid_post", zero)]):
            other["mine"] = toy_model(tokens, attention_mask=mask)
            inside.set()
            seen.wait(timeout=60)

    t = threading.Thread(target=holder)
    t.start()
    inside.wait(timeout=60)
    other["theirs"] = toy_model(tokens, attention_mask=mask)  # while the other thread's hook is on
    seen.set()
    t.join()
    torch.testing.assert_close(other["theirs"], clean)
    assert not torch.allclose(other["mine"], clean)
    assert count_hooks(toy_model) == 0
