"""The bundled two-hop set for back-patching on real models (`interp.data.records("two_hop")`)."""

import pytest

from interp import data


def test_two_hop_items_compose_their_one_hop_facts():
    items = data.records("two_hop")
    assert len(items) >= 100 and len({i["two"] for i in items}) == len(items)
    capitals = dict(data.pairs("country_capital"))
    for item in items:
        assert set(item) == {"two", "hop1", "bridge", "one", "answer", "relation"}
        assert all(isinstance(v, str) and v.strip() for v in item.values())
        assert item["hop1"].endswith(" in the country of") and item["bridge"] in item["one"]
        assert "the country where" in item["two"] and item["bridge"] not in item["two"]
        if item["relation"] == "capital" and item["bridge"] in capitals:
            assert item["answer"] == capitals[item["bridge"]]
    assert {i["relation"] for i in items} == {"capital", "language"}
    assert data.description("two_hop") and "two_hop" in data.available()


def test_records_of_a_set_without_them():
    with pytest.raises(KeyError, match="holds no records"):
        data.records("antonyms")
