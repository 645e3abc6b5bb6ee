import pytest

from interp import data


def test_real_model_prompt_sets():
    for name in ("harmful", "harmless"):
        train, held = data.prompts(name, "train"), data.prompts(name, "heldout")
        assert len(train) + len(held) >= 100
        assert not set(train) & set(held)
        assert data.description(name)


@pytest.mark.parametrize("name", ["antonyms", "country_capital", "singular_plural", "present_past", "english_french"])
def test_task_pairs(name):
    pairs = data.pairs(name)
    assert len(pairs) >= 40 and all(a and b for a, b in pairs)


def test_bad_names_and_splits():
    with pytest.raises(KeyError, match="no prompt set 'nope'.*harmful"):
        data.prompts("nope")
    with pytest.raises(ValueError, match="split 'test'"):
        data.prompts("harmful", "test")
    with pytest.raises(KeyError, match="holds pairs"):
        data.prompts("antonyms")
