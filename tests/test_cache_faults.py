"""Cache faults: an entry that cannot be trusted is recomputed and rewritten, never returned.

Each case damages a valid entry the way a disk, a crash or a person might (scrambled bytes under
an intact header, a NaN or an `inf` written into a tensor, a file rewritten or truncated while a
result is alive, a missing key or a wrong shape under the right metadata, an unwritable folder)
and checks the caller still gets the right numbers.
"""

import os
import warnings

import pytest
import torch

from interp.core import cache

RIGHT = torch.arange(6.0).reshape(2, 3)


def _counter():
    calls = []

    def compute():
        calls.append(1)
        return {"mean": RIGHT.clone()}

    return calls, compute


@pytest.fixture
def entry(gpt2_like, tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path))
    calls, compute = _counter()
    cache.cached(gpt2_like, "means", {"layer": 1}, compute)
    return cache.entry_path(gpt2_like, "means", {"layer": 1}), calls, compute


def _tensor_region(path):
    data = path.read_bytes()
    start = 8 + int.from_bytes(data[:8], "little")
    return data, start


def _again(gpt2_like, compute, **kw):
    with pytest.warns(UserWarning, match="not trusted"):
        return cache.cached(gpt2_like, "means", {"layer": 1}, compute, **kw)


@pytest.mark.parametrize("damage", ["scramble", "nan", "inf"])
def test_damaged_tensor_bytes_under_an_intact_header_are_recomputed(gpt2_like, entry, damage):
    path, calls, compute = entry
    data, start = _tensor_region(path)
    body = bytearray(data[start:])
    if damage == "scramble":
        body = body[::-1]
    else:
        body[:4] = torch.tensor([float(damage)], dtype=torch.float32).numpy().tobytes()
    path.write_bytes(data[:start] + bytes(body))
    out = _again(gpt2_like, compute)
    assert len(calls) == 2 and torch.equal(out["mean"], RIGHT)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rewritten: the next read is a clean hit
        assert torch.equal(cache.cached(gpt2_like, "means", {"layer": 1}, compute)["mean"], RIGHT)
    assert len(calls) == 2


def test_a_hit_is_a_copy_not_a_live_memory_map(gpt2_like, entry):
    path, calls, compute = entry
    hit = cache.cached(gpt2_like, "means", {"layer": 1}, compute)
    data, start = _tensor_region(path)
    with open(path, "r+b") as f:  # rewrite the tensor bytes in place
        f.seek(start)
        f.write(torch.full((6,), 7.0).numpy().tobytes())
    assert torch.equal(hit["mean"], RIGHT)
    os.truncate(path, start + 4)  # truncating under a live result must not kill the process
    assert torch.equal(hit["mean"], RIGHT)
    out = _again(gpt2_like, compute)
    assert torch.equal(out["mean"], RIGHT) and len(calls) == 2


def test_missing_key_or_wrong_shape_under_the_right_metadata_is_recomputed(gpt2_like, entry):
    path, calls, compute = entry
    expected = {"format": cache._FORMAT, "model": cache.fingerprint(gpt2_like), "namespace": "means",
                "args": cache._canonical({"layer": 1})}
    cache.save(path, {"other": RIGHT}, expected)  # valid checksum, wrong contents
    out = _again(gpt2_like, compute, expect={"mean": (2, 3)})
    assert torch.equal(out["mean"], RIGHT) and len(calls) == 2
    cache.save(path, {"mean": torch.zeros(3, 2)}, expected)
    out = _again(gpt2_like, compute, expect={"mean": (2, 3)})
    assert torch.equal(out["mean"], RIGHT) and len(calls) == 3


def test_an_entry_without_a_checksum_is_not_trusted(gpt2_like, entry):
    from safetensors.torch import save_file

    path, calls, compute = entry
    meta = {"format": cache._FORMAT, "model": cache.fingerprint(gpt2_like), "namespace": "means",
            "args": cache._canonical({"layer": 1})}
    save_file({"mean": torch.full((2, 3), 99.0)}, str(path), metadata=meta)
    out = _again(gpt2_like, compute)
    assert torch.equal(out["mean"], RIGHT) and len(calls) == 2


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions; the read-only case below covers it")
def test_unwritable_cache_directory_warns_once_and_computes(gpt2_like, tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    monkeypatch.setenv(cache.ENV_VAR, str(locked))
    calls, compute = _counter()
    with pytest.warns(UserWarning, match="not writable"):
        out = cache.cached(gpt2_like, "means", {"layer": 5}, compute)
    assert torch.equal(out["mean"], RIGHT)


def test_cache_directory_that_cannot_be_created_warns_once_and_computes(gpt2_like, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(cache.ENV_VAR, str(blocker / "cache"))  # mkdir fails even for root
    cache._warned.clear()
    calls, compute = _counter()
    with pytest.warns(UserWarning, match="not writable"):
        out = cache.cached(gpt2_like, "means", {"layer": 6}, compute)
    assert torch.equal(out["mean"], RIGHT)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once only
        out = cache.cached(gpt2_like, "means", {"layer": 7}, compute)
    assert torch.equal(out["mean"], RIGHT) and len(calls) == 2


def test_read_refuses_a_file_without_checksum(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "x.safetensors"
    save_file({"a": torch.ones(2)}, str(path))
    with pytest.raises(cache.CorruptEntry, match="checksum"):
        cache.read(path)
    cache.save(path, {"a": torch.ones(2)}, {"k": "v"})
    tensors, meta = cache.read(path, {"k": "v"})
    assert torch.equal(tensors["a"], torch.ones(2)) and meta["k"] == "v"
    with pytest.raises(cache.CorruptEntry, match="k="):
        cache.read(path, {"k": "w"})


def test_a_generated_corpus_has_an_identity_and_is_cached(toy_model, tmp_path, monkeypatch):
    import interp
    import interp.toy.corpus as corpus

    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path))
    calls = []
    real = corpus._generate_documents

    def counting(**params):
        calls.append(params)
        return real(**params)

    monkeypatch.setattr(corpus, "_generate_documents", counting)
    docs = corpus.documents(60, seed=4)
    assert list(docs) == list(corpus.documents(60, seed=4)) and len(docs) == 60
    calls.clear()
    first = interp.max_activating_examples(toy_model, (1, 5), corpus.documents(60, seed=4), progress=False)
    assert calls, "the first call streams the corpus"
    calls.clear()
    again = interp.max_activating_examples(toy_model, (1, 5), corpus.documents(60, seed=4), progress=False)
    assert not calls, "a second call with the same named corpus is a cache hit without generating it"
    assert torch.equal(first.values, again.values)
    other = interp.max_activating_examples(toy_model, (1, 5), corpus.documents(60, seed=5), progress=False)
    assert calls and not torch.equal(first.values, other.values)
