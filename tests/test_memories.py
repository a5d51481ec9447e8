"""The memory behavioural suite: one set of tests, run on every search engine and both APIs.

``mem_api`` (conftest) runs each test on Redis 8.2 with RediSearch, on the same server with
search forced in process, and on a Redis without the search module (Debian's 7.0), each with
``rmem.Client`` and ``rmem.AsyncClient``.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest

import rmem
from rmem.embedders import HashEmbedder
from tests.conftest import Api

DIM = 64
SPECIAL = "@ - | { } ( ) [ ] * \" ' : ; ~ % $ \\"

LOCAL_BACKEND = True  # also run on mem://, the local backend (see conftest)


def client(api: Api, namespace: str | None = None, **options: Any) -> Any:
    options.setdefault("embedder", HashEmbedder(DIM))
    options.setdefault("memory_fields", ("user", "kind"))
    return api.client(namespace, **options)


def texts(hits: list[rmem.SearchHit]) -> list[str]:
    return [h.record.text for h in hits]


def test_add_get_round_trip(mem_api: Api) -> None:
    m = client(mem_api).memories
    vector = [0.0] * DIM
    vector[3] = 1.0
    r = m.add(
        "Alice's birthday is Jan 15",
        tags=["profile", "dates"],
        metadata={"user": "alice", "nested": {"a": [1, 2.5, None, True]}},
        vector=vector,
    )
    got = m.get(r.id)
    assert got is not None
    assert got.text == "Alice's birthday is Jan 15"
    assert got.tags == ["profile", "dates"]
    assert got.metadata == {"user": "alice", "nested": {"a": [1, 2.5, None, True]}}
    assert got.vector == vector
    assert got.namespace == mem_api.namespace
    assert got.stamp == r.stamp and len(got.stamp) == 36
    assert got.created_at == r.created_at == got.updated_at
    assert abs(got.created_at - time.time()) < 60
    assert got.expires_at is None
    assert m.get("no-such-id") is None
    assert m.count() == 1


def test_add_with_existing_id_replaces_the_record(mem_api: Api) -> None:
    m = client(mem_api).memories
    first = m.add("old text about cats", id="r1", tags=["a"], metadata={"user": "bob"})
    time.sleep(0.002)
    second = m.add("new text about dogs", id="r1", tags=["b"])
    got = m.get("r1")
    assert got is not None
    assert (got.text, got.tags, got.metadata) == ("new text about dogs", ["b"], {})
    assert got.created_at == first.created_at
    assert got.updated_at >= second.updated_at > first.updated_at
    assert got.stamp > first.stamp
    assert m.count() == 1
    assert texts(m.search("cats", mode="text")) == []
    assert texts(m.search("dogs", mode="text")) == ["new text about dogs"]
    assert m.search("anything", tags=["a"]) == []


def test_add_many_keeps_order_and_embeds_in_one_batch(mem_api: Api) -> None:
    calls: list[int] = []

    class Counting(HashEmbedder):
        def embed(self, texts: list[str]) -> list[list[float]]:
            calls.append(len(texts))
            return super().embed(texts)

    m = client(mem_api, embedder=Counting(DIM)).memories
    items: list[Any] = [f"fact number {i}" for i in range(30)]
    items.append({"text": "with a vector", "vector": [1.0] * DIM, "tags": ["v"]})
    records = m.add_many(items)
    assert [r.text for r in records] == [*items[:30], "with a vector"]
    assert calls == [30]
    assert m.count() == 31
    assert m.get(records[-1].id).vector == [1.0] * DIM  # type: ignore[union-attr]
    assert m.add_many([]) == []


def test_a_bad_item_refuses_the_whole_batch(mem_api: Api) -> None:
    m = client(mem_api).memories
    m.add("keep me")
    bad_items: list[Any] = [
        ["ok", ""],
        ["ok", {"text": "x", "tags": "not-a-list"}],
        ["ok", {"text": "x", "vector": [1.0, 2.0]}],
        ["ok", {"text": "x", "metadata": {"k": {1, 2}}}],
        ["ok", {"text": "x", "ttl": -1}],
        ["ok", {"text": "x", "colour": "red"}],
        ["ok", 42],
    ]
    for items in bad_items:
        with pytest.raises(rmem.ValidationError):
            m.add_many(items)
    assert m.count() == 1
    assert [h.record.text for h in m.search("ok", mode="text")] == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"text": ""},
        {"text": "   "},
        {"text": 3},
        {"text": "x", "tags": "profile"},
        {"text": "x", "tags": [""]},
        {"text": "x", "tags": ["a\x1fb"]},
        {"text": "x", "vector": [0.1] * (DIM + 1)},
        {"text": "x", "vector": [float("nan")] * DIM},
        {"text": "x", "id": ""},
        {"text": "x", "id": "a\nb"},
        {"text": "x", "metadata": ["not", "a", "dict"]},
        {"text": "x", "ttl": 0},
    ],
)
def test_bad_input_raises_validation_error_and_writes_nothing(
    mem_api: Api, kwargs: dict[str, Any]
) -> None:
    m = client(mem_api).memories
    kwargs = dict(kwargs)
    text = kwargs.pop("text")
    with pytest.raises(rmem.ValidationError):
        m.add(text, **kwargs)
    assert m.count() == 0


def test_update_changes_only_what_is_given(mem_api: Api) -> None:
    m = client(mem_api).memories
    r = m.add("the sky is blue", tags=["colour"], metadata={"user": "ann"})
    assert r.vector is not None
    u = m.update(r.id, tags=["colour", "sky"])
    assert (u.text, u.tags, u.metadata, u.vector) == (
        "the sky is blue",
        ["colour", "sky"],
        {"user": "ann"},
        r.vector,
    )
    assert u.stamp > r.stamp
    u2 = m.update(r.id, text="the grass is green")
    assert u2.text == "the grass is green"
    assert u2.vector != r.vector
    assert u2.vector == pytest.approx(HashEmbedder(DIM).embed(["the grass is green"])[0], abs=1e-6)
    assert texts(m.search("grass", mode="text")) == ["the grass is green"]
    assert m.search("sky", mode="text") == []
    u3 = m.update(r.id, metadata={"user": "zoe"})
    assert u3.metadata == {"user": "zoe"}
    assert texts(m.search("grass", where={"user": "zoe"}, mode="text")) == [u3.text]
    assert m.search("grass", where={"user": "ann"}, mode="text") == []
    with pytest.raises(rmem.NotFoundError):
        m.update("missing", text="x")
    with pytest.raises(rmem.ValidationError):
        m.update(r.id)
    with pytest.raises(rmem.ValidationError):
        m.update(r.id, vector=[1.0] * 3)
    assert m.get(r.id) == u3


def test_update_without_embedder_drops_the_stale_vector(mem_api: Api) -> None:
    m = client(mem_api, embedder=None, vector_dim=DIM).memories
    r = m.add("first words", vector=[1.0] * DIM)
    u = m.update(r.id, text="other words")
    assert u.vector is None
    assert m.search(vector=[1.0] * DIM, mode="vector") == []


def test_delete_tombstones_the_record(mem_api: Api) -> None:
    m = client(mem_api).memories
    r = m.add("a secret to forget", tags=["t"])
    keep = m.add("a fact to keep", tags=["t"])
    assert m.delete(r.id) is True
    assert m.delete(r.id) is False
    assert m.get(r.id) is None
    assert m.count() == 1
    for mode in ("vector", "text", "hybrid"):
        assert [h.record.id for h in m.search("a secret to forget", mode=mode)] == [keep.id]
    again = m.add("back again", id=r.id)
    assert m.get(r.id) == again
    assert m.delete("never-existed") is False


def test_ttl_expires_a_record_everywhere(mem_api: Api) -> None:
    m = client(mem_api).memories
    r = m.add("short lived note", ttl=0.4)
    m.add("long lived note")
    assert r.expires_at is not None and r.expires_at - r.updated_at == pytest.approx(0.4)
    assert m.count() == 2
    assert len(m.search("note", mode="text")) == 2
    time.sleep(0.6)
    assert m.get(r.id) is None
    assert m.count() == 1
    for mode in ("vector", "text", "hybrid"):
        assert texts(m.search("short lived note", mode=mode)) == ["long lived note"]


def test_search_modes_rank_the_matching_record_first(mem_api: Api) -> None:
    m = client(mem_api).memories
    m.add_many(
        [
            "Alice's birthday is January 15",
            "The office wifi password changed on Monday",
            "Bob prefers green tea over coffee",
            "Quarterly revenue grew by twelve percent",
        ]
    )
    for mode in ("vector", "text", "hybrid"):
        hits = m.search("when is Alice's birthday", mode=mode, k=2)
        assert hits[0].record.text == "Alice's birthday is January 15", mode
        assert len(hits) <= 2
        assert all(a.score >= b.score for a, b in itertools.pairwise(hits))
    vec = HashEmbedder(DIM).embed(["Bob prefers green tea over coffee"])[0]
    hit = m.search(vector=vec, mode="vector", k=1)[0]
    assert hit.record.text == "Bob prefers green tea over coffee"
    assert hit.score == pytest.approx(1.0, abs=1e-5)
    assert hit.record.vector is None  # hits leave vectors in Redis
    assert m.search("zebra xylophone", mode="text") == []


def test_equal_scores_are_ordered_by_id(mem_api: Api) -> None:
    m = client(mem_api).memories
    for rid in ["c", "a", "d", "b"]:
        m.add("identical words here", id=rid)
    for mode in ("vector", "text", "hybrid"):
        assert [h.record.id for h in m.search("identical words here", mode=mode)] == [
            "a",
            "b",
            "c",
            "d",
        ], mode


def test_filters_tags_time_and_where(mem_api: Api) -> None:
    m = client(mem_api).memories
    a = m.add("meeting notes one", tags=["work", "q1"], metadata={"user": "ann", "kind": 1})
    time.sleep(0.01)
    b = m.add("meeting notes two", tags=["home"], metadata={"user": "bob", "kind": True})
    time.sleep(0.01)
    c = m.add("meeting notes three", tags=["work"], metadata={"user": "ann"})
    for mode in ("vector", "text", "hybrid"):

        def ids(**kw: Any) -> set[str]:
            return {h.record.id for h in m.search("meeting notes", mode=mode, **kw)}  # noqa: B023

        assert ids() == {a.id, b.id, c.id}
        assert ids(tags=["work"]) == {a.id, c.id}
        assert ids(tags=["home", "q1"]) == {a.id, b.id}
        assert ids(tags=["none"]) == set()
        assert ids(since=b.created_at) == {b.id, c.id}
        assert ids(until=b.created_at) == {a.id, b.id}
        assert ids(since=b.created_at, until=b.created_at) == {b.id}
        assert ids(where={"user": "ann"}) == {a.id, c.id}
        assert ids(where={"user": "ann", "kind": 1}) == {a.id}
        assert ids(where={"kind": True}) == {b.id}
        assert ids(tags=["work"], where={"user": "bob"}) == set()
    with pytest.raises(rmem.ValidationError):
        m.search("x", where={"undeclared": 1})
    with pytest.raises(rmem.ValidationError):
        m.search("x", since="yesterday")


@pytest.mark.parametrize("char", [*SPECIAL.replace(" ", ""), "東京", "naïve", "ß"])
def test_special_characters_in_text_tags_and_queries(mem_api: Api, char: str) -> None:
    m = client(mem_api).memories
    text = f"alpha{char}beta gamma {char} delta {char}{char}"
    r = m.add(text, tags=[char, f"x{char}y", f"{char} {char}"])
    other = m.add("unrelated words", tags=["plain"])
    for query in (char, f"{char}gamma{char}", SPECIAL, f"gamma {SPECIAL} 東京"):
        for mode in ("text", "hybrid", "vector"):
            hits = m.search(query, mode=mode)  # never a syntax error
            assert other.id not in [h.record.id for h in hits] or mode != "text"
    assert [h.record.id for h in m.search("gamma", mode="text")] == [r.id]
    for tag in (char, f"x{char}y", f"{char} {char}"):
        assert [h.record.id for h in m.search("gamma delta", tags=[tag])] == [r.id], tag
    if char.isalnum():
        assert [h.record.id for h in m.search(char, mode="text")] == [r.id]
    assert m.forget(tags=[f"x{char}y"]) == 1
    assert m.get(r.id) is None


def test_namespaces_are_isolated(mem_api: Api) -> None:
    a = client(mem_api, f"{mem_api.namespace}-a").memories
    b = client(mem_api, f"{mem_api.namespace}-b").memories
    ra = a.add("shared secret of team a", id="same-id", tags=["t"], metadata={"user": "u"})
    assert b.get("same-id") is None
    assert b.count() == 0
    for mode in ("vector", "text", "hybrid"):
        assert b.search("shared secret of team a", mode=mode) == []
    with pytest.raises(rmem.NotFoundError):
        b.update("same-id", text="hijacked")
    assert b.delete("same-id") is False
    assert b.forget(tags=["t"]) == 0
    assert b.forget(where={"user": "u"}) == 0
    assert b.forget(all=True) == 0
    assert a.get("same-id") == ra
    rb = b.add("team b's own", id="same-id")
    assert a.get("same-id") == ra and b.get("same-id") == rb
    assert a.count() == b.count() == 1


def test_a_namespace_is_shared_by_naming_it(mem_api: Api) -> None:
    writer = client(mem_api).memories
    reader = client(mem_api).memories
    r = writer.add("the deploy key rotates every friday")
    assert reader.get(r.id) == writer.get(r.id)
    assert [h.record.id for h in reader.search("deploy key rotation", k=1)] == [r.id]
    writer.update(r.id, text="the deploy key rotates every monday")
    assert texts(reader.search("monday", mode="text")) == ["the deploy key rotates every monday"]
    writer.delete(r.id)
    assert reader.search("deploy key", mode="text") == []


def test_dedupe_returns_the_live_record_with_the_same_text(mem_api: Api) -> None:
    m = client(mem_api).memories
    r = m.add("Paris is the capital of France", tags=["geo"])
    same = m.add("  paris is THE capital   of france ", dedupe=True, tags=["other"])
    assert same == m.get(r.id)
    assert same.tags == ["geo"]
    assert m.count() == 1
    not_deduped = m.add("Paris is the capital of France")
    assert not_deduped.id != r.id and m.count() == 2
    m.delete(r.id)
    m.delete(not_deduped.id)
    fresh = m.add("Paris is the capital of France", dedupe=True)
    assert fresh.id not in (r.id, not_deduped.id)
    batch = m.add_many(["one fact", "ONE  fact", "Paris is the capital of france"], dedupe=True)
    assert batch[1].id == batch[0].id and batch[2].id == fresh.id
    assert m.count() == 2


def test_forget_purges_records_by_tags_or_where(mem_api: Api) -> None:
    m = client(mem_api).memories
    m.add_many(
        [{"text": f"temp note {i}", "tags": ["temp"], "metadata": {"user": "u1"}} for i in range(5)]
        + [
            {"text": f"kept note {i}", "tags": ["keep"], "metadata": {"user": "u2"}}
            for i in range(3)
        ]
        + [{"text": "mixed note", "tags": ["keep", "temp"]}]
    )
    assert m.forget(tags=["temp"]) == 6
    assert m.count() == 3
    for mode in ("vector", "text", "hybrid"):
        assert all("kept" in t for t in texts(m.search("temp note mixed", mode=mode)))
    assert m.forget(where={"user": "u2"}) == 3
    assert m.count() == 0
    with pytest.raises(rmem.ValidationError):
        m.forget()
    with pytest.raises(rmem.ValidationError):
        m.forget(tags=["x"], all=True)
    m.add_many(["a", "b"])
    assert m.forget(all=True) == 2
    assert m.count() == 0


def test_search_arguments_are_checked(mem_api: Api) -> None:
    m = client(mem_api).memories
    for kwargs in (
        {"k": 0},
        {"k": 1001},
        {"k": "3"},
        {"mode": "fuzzy"},
        {"query": None},
        {"query": None, "mode": "text", "vector": [1.0] * DIM},
        {"vector": [1.0] * 5},
        {"tags": "single"},
    ):
        kwargs = dict(kwargs)
        query = kwargs.pop("query", "x")
        with pytest.raises(rmem.ValidationError):
            m.search(query, **kwargs)
    text_only = client(mem_api, embedder=None).memories
    with pytest.raises(rmem.ValidationError):
        text_only.search("x", mode="vector")
    with pytest.raises(rmem.ValidationError):
        text_only.add("x", vector=[1.0] * DIM)
    r = text_only.add("words only record")
    assert r.vector is None
    assert texts(text_only.search("words only")) == ["words only record"]


def test_health_names_the_search_engine(mem_api: Api) -> None:
    health = client(mem_api).health()
    expected = "redisearch" if mem_api.engine == "redisearch" else "local"
    assert health.search_engine == expected
    assert health.search is (mem_api.engine != "plain" and mem_api.backend != "memory")
