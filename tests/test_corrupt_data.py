"""Data that something else wrote into rmem's keys: CorruptDataError naming the key.

A damaged message, meta field or memory record raises ``rmem.CorruptDataError`` whose ``key``
names where it is; everything else stays readable. Search leaves a damaged record out, the
same way on RediSearch and in process (docs/decisions.md, 23).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
import redis

import rmem
from rmem._codec import FLAG_LZ4, FORMAT_V1, pack
from rmem._keys import memory_key, session_index, session_keys
from tests.conftest import Api

STAMP = "f" * 36  # sorts after every real stamp: the newest message
HEAD = (STAMP + "000000").encode()


def message(**fields: Any) -> bytes:
    return bytes([FORMAT_V1]) + msgpack.packb(fields)


# ---------------------------------------------------------------- sessions

BAD_MEMBERS = {
    "payload is not msgpack": HEAD + b"bad\0" + bytes([FORMAT_V1]) + b"\xc1",
    "unknown format byte": HEAD + b"bad\0\x07garbage",
    "empty payload": HEAD + b"bad\0",
    "broken lz4 block": HEAD + b"bad\0" + bytes([FORMAT_V1 | FLAG_LZ4]) + b"\x00\x00\x00\x10zz",
    "no NUL after the head": HEAD + b"bad-without-terminator",
    "shorter than a head": b"short",
    "not a dict": HEAD + b"bad\0" + bytes([FORMAT_V1]) + msgpack.packb([1, 2]),
    "no id": HEAD + b"bad\0" + message(role="user"),
    "id not a str": HEAD + b"bad\0" + message(id=5, role="user"),
    "role not a str": HEAD + b"bad\0" + message(id="bad", role=None),
    "created_at not a number": HEAD + b"bad\0" + message(id="bad", role="u", created_at="now"),
    "metadata not a dict": HEAD + b"bad\0" + message(id="bad", role="u", metadata=[1]),
    "name not a str": HEAD + b"bad\0" + message(id="bad", role="u", name=7),
    "int keys": HEAD + b"bad\0" + bytes([FORMAT_V1]) + msgpack.packb({1: "x"}),
}


@pytest.mark.parametrize("member", BAD_MEMBERS.values(), ids=BAD_MEMBERS.keys())
def test_a_garbage_message_names_its_key(api: Api, raw: redis.Redis, member: bytes) -> None:
    writer = api.client()
    s = writer.session("damaged")
    s.extend([{"role": "user", "content": "one"}, {"role": "assistant", "content": "two"}])
    writer.session("healthy").append({"role": "user", "content": "fine"})
    keys = session_keys(api.namespace, "damaged")
    raw.zadd(keys.msgs, {member: 0})

    reader = api.client()  # a fresh client: no replica holds the session yet
    damaged = reader.session("damaged")
    for read in (damaged.messages, lambda: damaged.messages(last=1), damaged.export):
        with pytest.raises(rmem.CorruptDataError) as info:
            read()
        assert info.value.key == keys.msgs
        assert keys.msgs in str(info.value)
    assert damaged.info().message_count == 2  # the meta hash is intact
    assert [m.content for m in reader.session("healthy").messages()] == ["fine"]
    raw.zrem(keys.msgs, member)
    assert [m.content for m in damaged.messages()] == ["one", "two"]


@pytest.mark.parametrize("field", ["created", "bytes", "ttl", "sliding", "rev"])
def test_a_garbage_meta_field_names_the_meta_hash(api: Api, raw: redis.Redis, field: str) -> None:
    c = api.client(sync=False)
    s = c.session("damaged", ttl=3600)
    s.append({"role": "user", "content": "one"})
    c.session("healthy").append({"role": "user", "content": "fine"})
    keys = session_keys(api.namespace, "damaged")
    raw.hset(keys.meta, field, b"\xffgarbage")
    for read in (s.info, s.export):
        with pytest.raises(rmem.CorruptDataError, match=f"'{field}'") as info:
            read()
        assert info.value.key == keys.meta
    assert [m.content for m in c.session("healthy").messages()] == ["fine"]


@pytest.mark.parametrize("which", ["meta", "msgs", "changes"])
def test_a_session_key_of_the_wrong_type_is_named(api: Api, raw: redis.Redis, which: str) -> None:
    c = api.client(sync=False)
    s = c.session("damaged")
    s.append({"role": "user"})
    c.session("healthy").append({"role": "user", "content": "fine"})
    key = getattr(session_keys(api.namespace, "damaged"), which)
    raw.delete(key)
    raw.set(key, "a plain string")
    calls = {
        "meta": [s.info, s.exists, s.touch, s.messages, lambda: s.append({"role": "user"})],
        "msgs": [s.messages, s.export, lambda: s.append({"role": "user"}), s.pop],
        "changes": [lambda: s.append({"role": "user"}), s.pop, s.clear],
    }[which]
    for call in calls:
        with pytest.raises(rmem.CorruptDataError, match="holds a string") as info:
            call()
        assert info.value.key == key
        assert info.value.session == "damaged"
    assert [m.content for m in c.session("healthy").messages()] == ["fine"]
    if which == "msgs":  # clear deletes the messages whatever they are: the session heals
        s.clear()
        s.append({"role": "user", "content": "again"})
        assert [m.content for m in s.messages()] == ["again"]


def test_a_session_index_of_the_wrong_type_is_corrupt_data(api: Api, raw: redis.Redis) -> None:
    c = api.client(sync=False)
    c.session("one").append({"role": "user"})
    raw.delete(session_index(api.namespace))
    raw.set(session_index(api.namespace), "a plain string")
    with pytest.raises(rmem.CorruptDataError, match="WRONGTYPE"):
        c.sessions()
    assert c.session("one").count() == 1


# ---------------------------------------------------------------- memories

DIM = 3


@pytest.fixture(params=[("redisearch", "sync"), ("local", "async")], ids=lambda p: "-".join(p))
def mems(request: pytest.FixtureRequest, redis_url: str, namespace: str) -> Iterator[Any]:
    engine, flavour = request.param
    api = Api(flavour, redis_url, namespace, search_engine=engine)
    # sync=False: reads go to Redis, where the damage is (a replica holds what this client
    # wrote, and damage done by something else leaves no change log entry to tell it).
    yield api.client(vector_dim=DIM, sync=False).memories
    api.close()


BROKEN_FIELDS: dict[str, tuple[str, bytes | None]] = {
    "meta is not msgpack": ("meta", b"\x01\xc1"),
    "meta is not a dict": ("meta", pack([1, 2])),
    "meta has an unknown format": ("meta", b"\x09junk"),
    "created is not a number": ("created", b"yesterday"),
    "exp is not a number": ("exp", b"soon"),
    "text is not UTF-8": ("text", b"\xff\xfe"),
    "tags are not UTF-8": ("tags", b"\xff"),
    "id is missing": ("id", None),
    "id names another record": ("id", b"someone-else"),
    "stamp is missing": ("stamp", None),
    "vector of the wrong size": ("vec", b"\x00\x01\x02\x03\x04"),
    "vector of another dimension": ("vec", b"\x00" * 8),
}


def _plant(raw: redis.Redis, key: str, field: str, value: bytes | None) -> None:
    if value is None:
        raw.hdel(key, field)
    else:
        raw.hset(key, field, value)


def _records(m: Any) -> tuple[Any, Any, Any]:
    bad = m.add("alpha alpha alpha", vector=[1, 0, 0], tags=["t"])
    good = m.add("alpha beta", vector=[0.9, 0.1, 0], tags=["t"])
    other = m.add("gamma", vector=[0, 0, 1], tags=["t"])
    return bad, good, other


@pytest.mark.parametrize("broken", BROKEN_FIELDS.values(), ids=BROKEN_FIELDS.keys())
def test_a_broken_record_names_its_key_and_is_never_a_hit(
    mems: Any, raw: redis.Redis, namespace: str, broken: tuple[str, bytes | None]
) -> None:
    bad, good, other = _records(mems)
    key = memory_key(namespace, bad.id)
    _plant(raw, key, *broken)

    with pytest.raises(rmem.CorruptDataError) as info:
        mems.get(bad.id)
    assert info.value.key == key
    assert key in str(info.value)
    assert mems.get(good.id) == good
    assert mems.get(other.id) == other
    assert mems.count() == 3  # the namespace lists it: it is there, damaged
    # The best match is the damaged record: search leaves it out and still fills k.
    for mode in ("text", "vector", "hybrid"):
        hits = mems.search("alpha", vector=[1, 0, 0], k=1, mode=mode)
        assert [h.record.id for h in hits] == [good.id], mode
    hits = mems.search("alpha gamma", vector=[1, 0, 0], k=5, tags=["t"])
    assert {h.record.id for h in hits} == {good.id, other.id}


def test_damaged_records_can_be_deleted_and_forgotten(
    mems: Any, raw: redis.Redis, namespace: str
) -> None:
    bad, good, _ = _records(mems)
    _plant(raw, memory_key(namespace, bad.id), "meta", b"\x01\xc1")
    _plant(raw, memory_key(namespace, good.id), "vec", b"\x00")  # RediSearch skips its index
    assert mems.delete(bad.id) is True
    assert mems.get(bad.id) is None
    assert mems.forget(all=True) == 2  # every listed record, indexed or not
    assert mems.count() == 0
    assert raw.exists(memory_key(namespace, good.id)) == 0


def test_search_logs_a_damaged_record_once(
    mems: Any, raw: redis.Redis, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    bad, good, _ = _records(mems)
    key = memory_key(namespace, bad.id)
    _plant(raw, key, "meta", b"\x01\xc1")
    with caplog.at_level(logging.WARNING, logger="rmem.memories"):
        for _ in range(3):
            assert mems.search("alpha", k=1, mode="text")[0].record.id == good.id
    assert [r.getMessage().count(key) > 0 for r in caplog.records] == [True]


def test_a_record_key_of_the_wrong_type_is_named(
    mems: Any, raw: redis.Redis, namespace: str
) -> None:
    bad, good, other = _records(mems)
    key = memory_key(namespace, bad.id)
    raw.delete(key)
    raw.set(key, "a plain string")
    for call in (
        lambda: mems.get(bad.id),
        lambda: mems.add("again", id=bad.id),
        lambda: mems.update(bad.id, text="again"),
        lambda: mems.delete(bad.id),
    ):
        with pytest.raises(rmem.CorruptDataError, match="holds a string") as info:
            call()
        assert info.value.key == key
    assert mems.get(good.id) == good
    hits = mems.search("alpha gamma", vector=[1, 0, 0], k=5, mode="hybrid")
    assert {h.record.id for h in hits} == {good.id, other.id}
    assert mems.count() == 3
    raw.delete(key)  # rmem cannot delete a key it does not own the type of; DEL can
    assert mems.get(bad.id) is None
    assert mems.delete(bad.id) is False
