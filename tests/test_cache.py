import pytest
import torch
from safetensors.torch import save_file

from interp.core import cache


def _counter():
    calls = []

    def compute():
        calls.append(1)
        return {"mean": torch.arange(6.0).reshape(2, 3)}

    return calls, compute


def test_second_call_is_a_hit(gpt2_like):
    calls, compute = _counter()
    a = cache.cached(gpt2_like, "means", {"layer": 1}, compute)
    b = cache.cached(gpt2_like, "means", {"layer": 1}, compute)
    assert len(calls) == 1
    torch.testing.assert_close(a["mean"], b["mean"])
    cache.cached(gpt2_like, "means", {"layer": 2}, compute)
    assert len(calls) == 2, "different arguments must not share an entry"


def test_corrupt_entry_is_recomputed_and_overwritten(gpt2_like):
    calls, compute = _counter()
    cache.cached(gpt2_like, "means", {"layer": 1}, compute)
    path = cache.entry_path(gpt2_like, "means", {"layer": 1})
    path.write_bytes(b"\x00garbage, not safetensors")
    with pytest.warns(UserWarning, match="unreadable"):
        out = cache.cached(gpt2_like, "means", {"layer": 1}, compute)
    assert len(calls) == 2
    torch.testing.assert_close(out["mean"], torch.arange(6.0).reshape(2, 3))
    assert cache.cached(gpt2_like, "means", {"layer": 1}, compute) and len(calls) == 2


def test_mismatched_metadata_is_not_trusted(gpt2_like):
    calls, compute = _counter()
    path = cache.entry_path(gpt2_like, "means", {"layer": 1})
    path.parent.mkdir(parents=True)
    save_file({"mean": torch.full((2, 3), 99.0)}, str(path), metadata={"format": "interp-cache-1", "args": "{}"})
    with pytest.warns(UserWarning, match="not trusted"):
        out = cache.cached(gpt2_like, "means", {"layer": 1}, compute)
    assert len(calls) == 1
    assert out["mean"].max() == 5.0


def test_different_weights_different_key(gpt2_like, gemma2_like):
    assert cache.fingerprint(gpt2_like) != cache.fingerprint(gemma2_like)
    a = cache.entry_path(gpt2_like, "means", {"layer": 1})
    with torch.no_grad():
        gpt2_like.blocks[0].mlp.W_out[0, 0] += 1.0
    try:
        assert cache.entry_path(gpt2_like, "means", {"layer": 1}) != a
    finally:
        with torch.no_grad():
            gpt2_like.blocks[0].mlp.W_out[0, 0] -= 1.0


def test_write_is_atomic_no_temp_files_left(gpt2_like, tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path))
    calls, compute = _counter()
    cache.cached(gpt2_like, "means", {"x": 1}, compute)

    def failing():
        raise RuntimeError("crash while computing")

    try:
        cache.cached(gpt2_like, "means", {"x": 2}, failing)
    except RuntimeError:
        pass
    files = sorted(p.name for p in (tmp_path / "means").iterdir())
    assert len(files) == 1 and files[0].endswith(".safetensors")


def test_interrupted_save_leaves_no_partial_file(tmp_path):
    class Boom(dict):
        def items(self):
            raise KeyboardInterrupt

    target = tmp_path / "x.safetensors"
    try:
        cache.save(target, Boom(), {})
    except KeyboardInterrupt:
        pass
    assert list(tmp_path.iterdir()) == []
