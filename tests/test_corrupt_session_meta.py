"""A session meta hash whose integer fields something else damaged (docs/decisions.md, 23, 25).

Every session script refuses an integer field it reads (``created``, ``count``, ``bytes``,
``rev``, ``ttl``, ``sliding``, ``anchor``, ``updated``) that holds anything else:
``CorruptDataError`` naming the meta key and the field, and nothing written, not even a
sliding TTL. Before, a read answered as if the session did not exist. An operation whose
script does not read the field works as usual. ``delete`` heals every such field; ``clear``
heals the counters it rewrites and refuses damage in the fields it keeps. Other sessions are
unaffected throughout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

import rmem
from rmem import _lua
from rmem._fallback import replayed_args
from rmem._hlc import Stamp
from rmem._keys import SessionKeys, session_keys, sync_channel
from tests.conftest import Api
from tests.test_sync import wait_until

LOCAL_BACKEND = True  # the same scripts on fakeredis, the store of memory:// and the fallback

INTEGER_FIELDS = ["created", "count", "bytes", "rev", "ttl", "sliding", "anchor", "updated", "v"]
KEPT_FIELDS = ["created", "ttl", "sliding", "anchor"]  # clear keeps them: it refuses
COUNTERS = ["count", "bytes", "updated", "rev"]  # clear rewrites them: it heals

TTL_MS = 3_600_000
SHORT_PTTL = 100_000  # set on every key before a refused call: a sliding touch would raise it

_TOUCH = {"created", "ttl", "sliding"}
_READ = {"count", "bytes", "created", "updated", "ttl", "sliding", "rev"}
_WRITE = {"created", "count", "bytes", "rev", "ttl", "sliding", "anchor"}
READS = {  # the integer fields each operation's script reads ('v' is read by none)
    "messages()": _TOUCH,
    "messages(last=1)": _TOUCH,
    "info": _READ,
    "count": _READ,
    "export": _READ,
    "touch": _TOUCH,
    "append": _WRITE,
    "extend": _WRITE,
    "pop": _WRITE,
    "expire": {"created", "sliding", "rev"},
}

OPERATIONS: dict[str, Callable[[Any], Any]] = {
    "messages()": lambda s: s.messages(),
    "messages(last=1)": lambda s: s.messages(last=1),
    "info": lambda s: s.info(),
    "count": lambda s: s.count(),
    "export": lambda s: s.export(),
    "touch": lambda s: s.touch(),
    "append": lambda s: s.append({"role": "user", "content": "three"}),
    "extend": lambda s: s.extend([{"role": "user", "content": "3"}, {"role": "user"}]),
    "pop": lambda s: s.pop(),
    "expire": lambda s: s.expire(60),
}


def _snapshot(raw: Any, keys: SessionKeys) -> tuple[Any, ...]:
    return (
        raw.hgetall(keys.meta),
        raw.zrange(keys.msgs, 0, -1, withscores=True),
        raw.xrange(keys.changes),
    )


def _damaged_session(api: Api, field: str, value: bytes = b"abc") -> tuple[Any, Any, Any, Any]:
    """A sliding session with two messages whose meta ``field`` holds ``value``, a healthy
    session beside it, the client (no replicas: every call reaches the store) and a raw client."""
    c = api.client(sync=False)
    s = c.session("damaged", ttl=TTL_MS / 1000, sliding=True)
    s.extend([{"role": "user", "content": "one"}, {"role": "assistant", "content": "two"}])
    c.session("healthy").append({"role": "user", "content": "fine"})
    raw = api.raw()
    keys = session_keys(api.namespace, "damaged")
    raw.hset(keys.meta, field, value)
    return c, s, raw, keys


def _refused(s: Any, raw: Any, keys: SessionKeys, call: Callable[[Any], Any]) -> str:
    for key in keys:
        raw.pexpire(key, SHORT_PTTL)
    before = _snapshot(raw, keys)
    with pytest.raises(rmem.CorruptDataError) as info:
        call(s)
    assert info.value.key == keys.meta
    assert info.value.session == "damaged"
    assert _snapshot(raw, keys) == before
    assert all(0 < raw.pttl(key) <= SHORT_PTTL for key in keys)
    return str(info.value)


@pytest.mark.parametrize("op", OPERATIONS.keys())
@pytest.mark.parametrize("field", INTEGER_FIELDS)
def test_every_operation_refuses_a_damaged_field_it_reads(api: Api, field: str, op: str) -> None:
    c, s, raw, keys = _damaged_session(api, field)
    if field in READS[op]:
        message = _refused(s, raw, keys, OPERATIONS[op])
        assert f"'{field}'" in message and keys.meta in message
    else:
        OPERATIONS[op](s)  # a field the operation does not read does not stop it
    assert [m.content for m in c.session("healthy").messages()] == ["fine"]
    raw.close()


SHAPES = {
    "letters": b"abc",
    "empty": b"",
    "not UTF-8": b"\xff\xfe",
    "a float": b"1.5",
    "an exponent": b"1e3",
    "hex": b"0x10",
    "spaces": b" 7",
    "19 digits": b"1" * 19,
}


@pytest.mark.parametrize("value", SHAPES.values(), ids=SHAPES.keys())
def test_every_shape_of_damage_is_refused(api: Api, value: bytes) -> None:
    # tonumber() reads some of these as numbers, HINCRBY none of them.
    _, s, raw, keys = _damaged_session(api, "ttl", value)
    for op in ("info", "append", "pop", "touch"):
        assert "'ttl'" in _refused(s, raw, keys, OPERATIONS[op])
    raw.close()


@pytest.mark.parametrize("field", INTEGER_FIELDS)
def test_delete_heals_every_field(api: Api, field: str) -> None:
    c, s, raw, _ = _damaged_session(api, field)
    assert c.sessions() == ["damaged", "healthy"]
    assert s.delete() is True
    assert not s.exists() and s.messages() == [] and s.count() == 0
    assert c.sessions() == ["healthy"]  # also when 'created' was damaged (pruned on listing)
    s.append({"role": "user", "content": "afresh"})
    assert [m.content for m in s.messages()] == ["afresh"]
    assert s.info().message_count == 1
    assert [m.content for m in c.session("healthy").messages()] == ["fine"]
    raw.close()


@pytest.mark.parametrize("field", COUNTERS)
def test_clear_heals_the_counters_it_rewrites(api: Api, field: str) -> None:
    _, s, raw, _ = _damaged_session(api, field)
    assert s.clear() == 2
    info = s.info()
    assert (info.message_count, info.size_bytes) == (0, 0)
    assert info.ttl_policy == TTL_MS / 1000 and info.sliding
    s.append({"role": "user", "content": "again"})
    assert [m.content for m in s.messages()] == ["again"]
    assert s.info().message_count == 1
    raw.close()


@pytest.mark.parametrize("field", KEPT_FIELDS)
def test_clear_refuses_damage_in_the_fields_it_keeps(api: Api, field: str) -> None:
    _, s, raw, keys = _damaged_session(api, field)
    assert f"'{field}'" in _refused(s, raw, keys, lambda s: s.clear())
    raw.close()


def test_a_damaged_tombstone_is_refused_and_healed_by_delete(api: Api) -> None:
    c = api.client(sync=False)
    s = c.session("gone")
    s.append({"role": "user", "content": "one"})
    assert s.delete()
    raw = api.raw()
    keys = session_keys(api.namespace, "gone")
    raw.hset(keys.meta, "rev", b"many")
    with pytest.raises(rmem.CorruptDataError) as info:
        s.append({"role": "user", "content": "two"})
    assert info.value.key == keys.meta
    assert s.delete() is False  # there was no session, but the tombstone is sound again
    s.append({"role": "user", "content": "two"})
    assert [m.content for m in s.messages()] == ["two"]
    raw.close()


def test_a_meta_hash_of_only_damage_is_healed_by_delete(api: Api) -> None:
    # Something else wrote into the meta key of a session that never existed.
    c = api.client(sync=False)
    s = c.session("never")
    raw = api.raw()
    keys = session_keys(api.namespace, "never")
    raw.hset(keys.meta, "count", b"abc")
    with pytest.raises(rmem.CorruptDataError):
        s.append({"role": "user"})
    assert s.delete() is False
    s.append({"role": "user", "content": "now"})
    assert s.count() == 1
    raw.close()


# ---------------------------------------------------------------- the scripts themselves


def _old_delete(raw: redis.Redis, namespace: str, session_id: str) -> Any:
    """session_delete stamped before every message: a delete replayed after an outage."""
    stamp = Stamp(1, 0, "0" * 16).encode()
    keys = session_keys(namespace, session_id)
    args = (sync_channel(namespace), session_id, 1000, stamp, 60_000, 60_000)
    args = replayed_args("session_delete", args)  # as the fallback replays it
    return raw.eval(_lua.SESSION_DELETE.source, 3, *keys, *args)


@pytest.mark.parametrize("field", ["count", "bytes"])
def test_a_replayed_delete_counts_the_messages_it_keeps_again(
    client: rmem.Client, raw: redis.Redis, redis_url: str, namespace: str, field: str
) -> None:
    s = client.session("kept")
    s.extend([{"role": "user", "content": "one"}, {"role": "user", "content": "two"}])
    sound = raw.hmget(session_keys(namespace, "kept").meta, "count", "bytes")
    raw.hset(session_keys(namespace, "kept").meta, field, b"abc")
    assert _old_delete(raw, namespace, "kept") == -1  # newer messages keep the session
    assert raw.hmget(session_keys(namespace, "kept").meta, "count", "bytes") == sound
    with rmem.Client.from_url(redis_url, namespace=namespace, sync=False) as c:
        assert [m.content for m in c.session("kept").messages()] == ["one", "two"]


def test_a_replayed_delete_removes_a_session_whose_kept_fields_are_damaged(
    client: rmem.Client, raw: redis.Redis, namespace: str
) -> None:
    s = client.session("gone")
    s.append({"role": "user", "content": "newer than the delete"})
    raw.hset(session_keys(namespace, "gone").meta, "created", b"yesterday")
    assert _old_delete(raw, namespace, "gone") == -2  # deleted; the creation time was damage
    assert not s.exists()


def test_sync_names_the_damaged_field(
    raw: redis.Redis, client: rmem.Client, namespace: str
) -> None:
    client.session("damaged").append({"role": "user"})
    keys = session_keys(namespace, "damaged")
    raw.hset(keys.meta, "ttl", b"forever")
    with pytest.raises(redis.ResponseError) as info:
        raw.eval(_lua.SESSION_SYNC.source, 3, *keys, "", 100)
    assert str(info.value) == f"RMEM_CORRUPT {keys.meta}\tfield 'ttl' is not an integer"


def test_a_replica_sees_the_delete_that_healed_a_damaged_revision(
    redis_url: str, raw: redis.Redis, namespace: str
) -> None:
    # The healed revision restarts above any counted one, so a replica that held the session
    # before the damage takes the delete as newer.
    with (
        rmem.Client.from_url(redis_url, namespace=namespace) as a,
        rmem.Client.from_url(redis_url, namespace=namespace) as b,
    ):
        assert a.wait_synced() and b.wait_synced()
        a.session("s").append({"role": "user", "content": "one"})
        assert [m.content for m in b.session("s").messages()] == ["one"]
        assert b.session("s").exists()
        raw.hset(session_keys(namespace, "s").meta, "rev", b"abc")
        assert a.session("s").delete()
        wait_until(lambda: not b.session("s").exists())
        assert b.session("s").messages() == []
