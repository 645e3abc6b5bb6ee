import pytest
import torch

from interp.data.corpus import batched, iter_texts
from interp.core.topk import PAD, StreamingTopK


def _naive(acts, mask, k):
    flat = acts.masked_fill(~mask.bool()[..., None], float("-inf")).reshape(-1, acts.shape[-1])
    return flat.topk(k, dim=0).values.T


def test_streaming_topk_equals_exact_topk_over_the_whole_corpus():
    torch.manual_seed(0)
    acts = torch.randn(40, 12, 7)
    tokens = torch.randint(0, 100, (40, 12))
    mask = torch.ones(40, 12, dtype=torch.long)
    mask[::3, :4] = 0  # left padding on some rows
    top = StreamingTopK(7, k=5, before=2, after=1)
    for i in range(0, 40, 6):
        top.update(acts[i : i + 6], tokens[i : i + 6], mask[i : i + 6])
    torch.testing.assert_close(top.values, _naive(acts, mask, 5))
    assert top.n_tokens == int(mask.sum()) and top.n_examples == 40
    # each kept hit points back at its example, position and context
    u, j = 3, 0
    ex, p = int(top.example[u, j]), int(top.position[u, j])
    pad = int((mask[ex] == 0).sum())
    assert acts[ex, pad + p, u] == top.values[u, j]
    assert top.context_tokens[u, j, 2] == tokens[ex, pad + p]
    assert top.context_acts[u, j, 2] == top.values[u, j]


def test_density_and_histogram_count_only_real_tokens():
    acts = torch.tensor([[[1.0, -1.0], [2.0, 0.5]], [[5.0, 5.0], [0.0, -2.0]]])
    mask = torch.tensor([[1, 1], [0, 1]])
    top = StreamingTopK(2, k=2, before=1, after=0)
    top.update(acts, torch.zeros(2, 2, dtype=torch.long), mask)
    torch.testing.assert_close(top.density, torch.tensor([2 / 3, 1 / 3]))
    assert int(top.histogram(0)[1].sum()) == 2
    assert top.context_tokens[0, 0, 0] == 0 and top.context_tokens[1, 0, 0] == 0
    assert PAD not in top.context_tokens[0, 0, 1:].tolist()


def test_corpus_readers(tmp_path):
    (tmp_path / "a.txt").write_text("one\n\ntwo\n")
    assert list(iter_texts(tmp_path)) == ["one", "two"]
    assert list(iter_texts(x for x in ["a", " b "])) == ["a", "b"]
    assert list(batched(range(5), 2)) == [[0, 1], [2, 3], [4]]
    with pytest.raises(ValueError, match="is empty"):
        list(iter_texts(["", "  "]))
    with pytest.raises(ValueError, match="does not exist"):
        list(iter_texts(tmp_path / "missing.txt"))
    with pytest.raises(TypeError, match="example 0 is int"):
        list(iter_texts([3]))


def test_a_hugging_face_dataset_is_a_corpus(gpt2_like):
    from datasets import Dataset

    import interp

    data = Dataset.from_dict({"text": ["the cat sat", "", "paris is big"], "id": [1, 2, 3]})
    assert list(iter_texts(data)) == ["the cat sat", "paris is big"]
    with pytest.raises(ValueError, match=r"no 'text' column: its columns are \['id'\]"):
        list(iter_texts(Dataset.from_dict({"id": [1]})))
    top = interp.max_activating_examples(gpt2_like, (1, [0, 5]), data, k=2, progress=False, cache=False)
    assert top.n_examples == 2 and top.n_tokens == 6

