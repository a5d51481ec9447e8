"""The RediSearch index of a namespace: created once, idempotently, and checked before use."""

from __future__ import annotations

import threading

import pytest

import rmem
from rmem._keys import memory_index
from rmem.embedders import HashEmbedder


def test_index_is_created_once_and_idempotently(redis_url: str, namespace: str) -> None:
    errors: list[BaseException] = []

    def first_write(n: int) -> None:
        try:
            with rmem.Client.from_url(
                redis_url, namespace=namespace, embedder=HashEmbedder(32)
            ) as c:
                c.memories.add(f"writer {n} was here")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=first_write, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with rmem.Client.from_url(redis_url, namespace=namespace, embedder=HashEmbedder(32)) as c:
        assert c.memories.count() == 6
        assert len(c.memories.search("writer was here", k=10)) == 6
        indexes = {i.decode() for i in c._backend.redis.execute_command("FT._LIST")}
    assert memory_index(namespace) in indexes


def test_another_dimension_raises_schema_mismatch_naming_both(
    redis_url: str, namespace: str
) -> None:
    with rmem.Client.from_url(redis_url, namespace=namespace, embedder=HashEmbedder(32)) as c:
        c.memories.add("made with 32 dimensions")
    with rmem.Client.from_url(redis_url, namespace=namespace, embedder=HashEmbedder(48)) as c:
        for call in (
            lambda: c.memories.add("x"),
            lambda: c.memories.search("made with"),
            lambda: c.memories.update("any", text="y"),
        ):
            with pytest.raises(rmem.SchemaMismatchError) as info:
                call()
            assert "dim=48" in info.value.expected
            assert "dim=32" in info.value.found
            assert memory_index(namespace) in str(info.value)
            assert info.value.namespace == namespace
    # Another namespace is not affected: each has its own index.
    other = f"{namespace}-other"
    with rmem.Client.from_url(redis_url, namespace=other, embedder=HashEmbedder(48)) as c:
        assert c.memories.add("fine here").text == "fine here"


def test_undeclared_metadata_field_raises_schema_mismatch(redis_url: str, namespace: str) -> None:
    with rmem.Client.from_url(redis_url, namespace=namespace, memory_fields=("user",)) as c:
        c.memories.add("has a user field", metadata={"user": "ann"})
    with (
        rmem.Client.from_url(redis_url, namespace=namespace, memory_fields=("user", "team")) as c,
        pytest.raises(rmem.SchemaMismatchError) as info,
    ):
        c.memories.search("user", where={"team": "x"})
    assert "w_team" in info.value.expected and "none of these" in info.value.found


def test_a_client_using_fewer_fields_can_share_the_index(redis_url: str, namespace: str) -> None:
    with rmem.Client.from_url(
        redis_url, namespace=namespace, embedder=HashEmbedder(32), memory_fields=("user",)
    ) as c:
        c.memories.add("written with vectors and fields", metadata={"user": "ann"})
    with rmem.Client.from_url(redis_url, namespace=namespace) as c:
        hits = c.memories.search("vectors fields", mode="text")
        assert [h.record.text for h in hits] == ["written with vectors and fields"]
