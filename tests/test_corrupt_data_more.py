"""More damage written by something else into rmem's keys (docs/decisions.md, 23).

- The memory scripts refuse to write over a record hash whose stamp or times are not rmem's
  (``RMEM_CORRUPT`` from Lua, ``CorruptDataError`` naming the key, nothing written), while
  ``delete`` removes such a hash: deleting is how a damaged record is healed.
- The sync thread skips a damaged record or session and keeps every other replica in sync; a
  read of the damaged one goes to Redis and raises ``CorruptDataError`` naming the key.
- ``sessions()`` skips index entries that are not rmem session ids, and names the index key
  when it is not a sorted set.
- ``import_session`` of an export without messages writes nothing, as its docstring says.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import pytest
import redis

import rmem
from rmem._keys import memory_key, memory_keys, session_index, session_keys
from rmem._replica import SyncEngine
from tests.conftest import Api
from tests.test_sync import wait_until

LOCAL_BACKEND = True  # the api tests also run on memory:// (the scripts on fakeredis)


# ---------------------------------------------------------------- the memory scripts

BAD = "bad id with spaces"  # the error names the key, spaces and all


def _memories(api: Api) -> tuple[Any, Any, str]:
    m = api.client(sync=False).memories
    m.add("bad", id=BAD)
    m.add("good", id="good")
    return m, api.raw(), memory_key(api.namespace, BAD)


HEALABLE: dict[str, tuple[str, bytes | None]] = {
    "stamp is missing": ("stamp", None),
    "stamp is not a stamp": ("stamp", b"zzzz"),
    "stamp is not UTF-8": ("stamp", b"\xff\xfe"),
    "created is not a number": ("created", b"yesterday"),
    "updated is not a number": ("updated", b"later"),
}


@pytest.mark.parametrize("broken", HEALABLE.values(), ids=HEALABLE.keys())
def test_writes_refuse_a_damaged_record_and_delete_heals_it(
    api: Api, broken: tuple[str, bytes | None]
) -> None:
    m, raw, key = _memories(api)
    field, value = broken
    if value is None:
        raw.hdel(key, field)
    else:
        raw.hset(key, field, value)
    before = raw.hgetall(key)
    for write in (
        lambda: m.add("again", id=BAD),
        lambda: m.add_many([{"text": "new", "id": "new"}, {"text": "again", "id": BAD}]),
        lambda: m.update(BAD, text="again"),
    ):
        with pytest.raises(rmem.CorruptDataError, match=field) as info:
            write()
        assert info.value.key == key
        assert key in str(info.value)
        assert info.value.namespace == api.namespace
    assert raw.hgetall(key) == before  # nothing written
    assert m.get("new") is None  # the whole batch was refused
    assert m.get("good") is not None

    assert m.delete(BAD) is True  # the way to heal a damaged record
    assert raw.exists(key) == 0
    assert m.get(BAD) is None
    assert m.count() == 1
    assert m.add("again", id=BAD).text == "again"
    assert m.get(BAD) is not None
    raw.close()


def test_a_damaged_tombstone_is_named_and_healed_by_delete(api: Api) -> None:
    m, raw, _ = _memories(api)
    m.delete(BAD)
    tombs = memory_keys(api.namespace).tombs
    raw.hset(tombs, BAD, b"zzzz")  # would win against every real stamp
    with pytest.raises(rmem.CorruptDataError, match=BAD) as info:
        m.add("again", id=BAD)
    assert info.value.key == tombs
    assert m.delete(BAD) is False  # nothing live to delete, but the tombstone is rmem's again
    assert m.add("again", id=BAD).text == "again"
    raw.close()


def test_a_damaged_revision_is_named_and_nothing_is_written(api: Api) -> None:
    m, raw, _ = _memories(api)
    meta = memory_keys(api.namespace).meta
    raw.hset(meta, "rev", b"lots")
    for call in (
        lambda: m.add("new", id="new"),
        lambda: m.update("good", text="changed"),
        lambda: m.delete("good"),
        m.count,
    ):
        with pytest.raises(rmem.CorruptDataError, match="rev") as info:
            call()
        assert info.value.key == meta
    assert raw.exists(memory_key(api.namespace, "new")) == 0
    assert m.get("good") is not None and m.get("good").text == "good"
    raw.hdel(meta, "rev")  # the repair: the revision starts again
    assert m.count() == 2
    m.add("new", id="new")
    assert m.count() == 3
    raw.close()


# ---------------------------------------------------------------- the sync thread


def engine(client: rmem.Client) -> SyncEngine:
    assert client._sync is not None
    return client._sync


def replica_text(client: rmem.Client, record_id: str) -> str | None:
    """The text of a record as the client's fresh replica holds it, else None."""
    known, record = engine(client).record(client.namespace, record_id)
    return record.text if known and record is not None else None


def replica_contents(client: rmem.Client, session_id: str) -> list[Any] | None:
    """Message contents of a fresh session replica, or None when it would not serve a read."""
    sync = engine(client)
    with sync.lock:
        replica = sync.session(client.namespace, session_id)
        return None if replica is None else [m.content for m in replica.messages]


RECORD_DAMAGE: dict[str, Callable[[redis.Redis, str], None]] = {
    "meta is not msgpack": lambda r, key: r.hset(key, "meta", b"\x01\xc1"),
    "a key of the wrong type": lambda r, key: (r.delete(key), r.set(key, "a plain string")),
}


@pytest.mark.parametrize("damage", RECORD_DAMAGE.values(), ids=RECORD_DAMAGE.keys())
def test_record_sync_skips_a_damaged_record(
    pair: tuple[rmem.Client, rmem.Client],
    raw: redis.Redis,
    namespace: str,
    damage: Callable[[redis.Redis, str], None],
) -> None:
    a, b = pair
    a.memories.add("bad", id="bad")
    a.memories.add("good", id="good")
    key = memory_key(namespace, "bad")
    damage(raw, key)
    assert b.memories.get("good") is not None  # opens B's replica of the namespace
    wait_until(lambda: replica_text(b, "good") == "good")
    with pytest.raises(rmem.CorruptDataError) as info:
        b.memories.get("bad")  # read through; B's thread now tries to load it too
    assert info.value.key == key

    a.memories.update("good", text="good again")
    wait_until(lambda: replica_text(b, "good") == "good again")
    known, _ = engine(b).record(namespace, "bad")
    assert not known  # the replica does not hold it: reads go to Redis
    with pytest.raises(rmem.CorruptDataError) as info:
        b.memories.get("bad")
    assert info.value.key == key
    a.session("chat").append({"role": "user", "content": "still syncing"})
    assert [m.content for m in b.session("chat").messages()] == ["still syncing"]
    wait_until(lambda: replica_contents(b, "chat") == ["still syncing"])
    assert engine(b).last_error is None


def test_a_held_record_damaged_later_leaves_the_replica(
    pair: tuple[rmem.Client, rmem.Client], raw: redis.Redis, namespace: str
) -> None:
    a, b = pair
    a.memories.add("bad", id="bad")
    a.memories.add("good", id="good")
    assert b.memories.get("bad") is not None and b.memories.get("good") is not None
    wait_until(lambda: replica_text(b, "bad") == "bad" and replica_text(b, "good") == "good")
    key = memory_key(namespace, "bad")
    raw.hset(key, "meta", b"\x01\xc1")
    with pytest.raises(rmem.CorruptDataError):
        a.memories.update("bad", tags=["t"])  # written, logged, then read back damaged
    a.memories.update("good", text="good again")  # logged after the change to "bad"
    wait_until(lambda: replica_text(b, "good") == "good again")
    with pytest.raises(rmem.CorruptDataError) as info:
        b.memories.get("bad")  # not the copy from before the damage
    assert info.value.key == key
    assert engine(b).last_error is None


SESSION_DAMAGE: dict[str, Callable[[redis.Redis, Any], None]] = {
    # member_prefix finds no NUL: a ValueError outside the message decoder
    "a member without NUL": lambda r, keys: r.zadd(keys.msgs, {b"f" * 42 + b"no-nul": 0}),
    # session_sync's reply stops at the nil of tonumber(count): too short to unpack
    "count is not a number": lambda r, keys: r.hset(keys.meta, "count", b"many"),
    # session_sync answers WRONGTYPE inside the thread's pipeline
    "msgs of the wrong type": lambda r, keys: (r.delete(keys.msgs), r.set(keys.msgs, "x")),
}


@pytest.mark.parametrize("damage", SESSION_DAMAGE.values(), ids=SESSION_DAMAGE.keys())
def test_session_sync_survives_a_damaged_session(
    pair: tuple[rmem.Client, rmem.Client],
    raw: redis.Redis,
    namespace: str,
    damage: Callable[[redis.Redis, Any], None],
) -> None:
    a, b = pair
    a.session("damaged").append({"role": "user", "content": "one"})
    a.session("healthy").append({"role": "user", "content": "one"})
    damage(raw, session_keys(namespace, "damaged"))
    assert [m.content for m in b.session("healthy").messages()] == ["one"]
    with contextlib.suppress(rmem.CorruptDataError):
        b.session("damaged").messages()  # opens B's replica of it
    wait_until(lambda: replica_contents(b, "healthy") == ["one"])

    a.session("healthy").append({"role": "user", "content": "two"})
    wait_until(lambda: replica_contents(b, "healthy") == ["one", "two"])
    assert replica_contents(b, "damaged") is None  # reads of it go to Redis
    assert engine(b).last_error is None


# ---------------------------------------------------------------- the session listing

NOT_SESSION_IDS = {
    "not UTF-8": b"\xff\xfe",
    "empty": b"",
    "a control character": b"a\nb",
    "too long": b"x" * 300,
}


@pytest.mark.parametrize("member", NOT_SESSION_IDS.values(), ids=NOT_SESSION_IDS.keys())
def test_sessions_skip_index_entries_that_are_not_session_ids(
    api: Api, member: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    c = api.client(sync=False)
    c.session("one").append({"role": "user"})
    raw = api.raw()
    index = session_index(api.namespace)
    raw.zadd(index, {member: 1})
    with caplog.at_level(logging.WARNING, logger="rmem.sessions"):
        assert c.sessions() == ["one"]
        assert c.sessions() == ["one"]
    assert [index in r.getMessage() for r in caplog.records] == [True]  # logged once
    assert raw.zscore(index, member) == 1  # not rmem's to remove
    raw.close()


def test_sessions_accept_an_infinite_score(api: Api) -> None:
    c = api.client(sync=False)
    for sid in ("one", "two", "gone"):
        c.session(sid).append({"role": "user"})
    c.session("gone").delete()
    raw = api.raw()
    index = session_index(api.namespace)
    raw.zadd(index, {"two": float("inf"), "gone": float("-inf")}, xx=True)
    raw.zadd(index, {"ghost": float("inf")})
    assert c.sessions() == ["one", "two"]
    assert c.sessions() == ["one", "two"]
    raw.close()


def test_a_session_with_a_meta_key_of_the_wrong_type_is_listed(api: Api) -> None:
    c = api.client(sync=False)
    c.session("one").append({"role": "user"})
    c.session("broken").append({"role": "user"})
    raw = api.raw()
    meta = session_keys(api.namespace, "broken").meta
    raw.delete(meta)
    raw.set(meta, "a plain string")
    assert sorted(c.sessions()) == ["broken", "one"]  # it is there, damaged: reading raises
    with pytest.raises(rmem.CorruptDataError) as info:
        c.session("broken").info()
    assert info.value.key == meta
    raw.close()


def test_a_session_index_of_the_wrong_type_names_its_key(api: Api) -> None:
    c = api.client(sync=False)
    c.session("one").append({"role": "user"})
    raw = api.raw()
    index = session_index(api.namespace)
    raw.delete(index)
    raw.set(index, "a plain string")
    with pytest.raises(rmem.CorruptDataError) as info:
        c.sessions()
    assert info.value.key == index
    assert info.value.namespace == api.namespace
    raw.close()


# ---------------------------------------------------------------- import


def test_importing_an_export_without_messages_writes_nothing(api: Api) -> None:
    c = api.client()
    source = c.session("emptied", ttl=3600, sliding=False)
    source.append({"role": "user", "content": "gone soon"})
    source.clear()
    data = source.export()
    assert data["messages"] == []
    copy = c.import_session(data, session_id="copy")
    assert copy.exists() is False  # documented: a session exists once it holds a message
    assert "copy" not in c.sessions()
    with pytest.raises(rmem.NotFoundError):
        copy.info()
    copy.append({"role": "user", "content": "first"})  # the handle carries the export's TTL
    info = copy.info()
    assert info.ttl_policy == 3600 and info.sliding is False
    doc = (rmem.Client.import_session.__doc__ or "") + (
        rmem.AsyncClient.import_session.__doc__ or ""
    )
    assert doc.count("no messages") == 2
