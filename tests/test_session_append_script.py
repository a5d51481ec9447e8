"""What session_append.lua does beyond the public behaviour (docs/decisions.md, 26).

- Batches larger than one slice of the script's HMGET/HSET/ZADD (1000 messages) are written
  whole, deduplicated across slices.
- The meta hash is a hash table from the session's first write (its 'ht' field), so looking
  up message ids does not scan it; sessions written before that field existed still work.
- A session kept forever never gets an expiry on any key, although the scripts no longer send
  PERSIST on every write; a change of policy still reaches all three keys.
"""

from __future__ import annotations

from typing import Any

import pytest

from rmem._keys import session_keys
from tests.conftest import Api

LOCAL_BACKEND = True  # the same scripts on fakeredis


def _contents(s: Any) -> list[Any]:
    return [m.content for m in s.messages()]


def test_a_batch_larger_than_a_slice_is_written_whole(api: Api) -> None:
    c = api.client(sync=False)
    s = c.session("big")
    s.append({"role": "user", "content": "first", "id": "id-1500"})
    batch = [{"role": "user", "content": i, "id": f"id-{i}"} for i in range(2500)]
    batch.insert(1700, {"role": "user", "content": "again", "id": "id-3"})  # later slice
    s.extend(batch)
    contents = _contents(s)
    assert contents[0] == "first"
    assert contents[1:] == [i for i in range(2500) if i != 1500]
    info = s.info()
    assert info.message_count == 2500
    raw = api.raw()
    meta = session_keys(api.namespace, "big").meta
    assert raw.hlen(meta) > 2500  # one dedupe field per message
    raw.close()


def test_the_meta_hash_is_a_hash_table_from_the_first_write(api: Api) -> None:
    if api.backend == "memory":
        pytest.skip("fakeredis does not model encodings")
    c = api.client(sync=False)
    s = c.session("small")
    s.append({"role": "user"})
    raw = api.raw()
    keys = session_keys(api.namespace, "small")
    assert raw.object("encoding", keys.meta) == b"hashtable"
    s.clear()  # rewrites the meta hash
    s.append({"role": "user"})
    assert raw.object("encoding", keys.meta) == b"hashtable"
    raw.close()


def test_a_session_without_the_ht_field_still_works(api: Api) -> None:
    # Written by an earlier rmem: the meta hash stays a listpack until it grows.
    c = api.client(sync=False)
    s = c.session("old")
    s.extend([{"role": "user", "content": "a", "id": "a"}, {"role": "user", "content": "b"}])
    raw = api.raw()
    keys = session_keys(api.namespace, "old")
    raw.hdel(keys.meta, "ht")
    s.extend([{"role": "user", "content": "c"}, {"role": "user", "content": "a", "id": "a"}])
    assert _contents(s) == ["a", "b", "c"]
    assert s.count() == 3
    raw.close()


def _ttls(raw: Any, keys: Any) -> list[int]:
    return [raw.pttl(key) for key in keys]


def test_a_session_kept_forever_never_gets_an_expiry(api: Api) -> None:
    c = api.client(sync=False)
    s = c.session("forever", ttl=None)
    raw = api.raw()
    keys = session_keys(api.namespace, "forever")
    s.extend([{"role": "user", "content": 1}, {"role": "user", "content": 2}])
    assert _ttls(raw, keys) == [-1, -1, -1]
    s.pop()
    s.append({"role": "user", "content": 3})
    s.clear()
    s.append({"role": "user", "content": 4})
    assert _ttls(raw, keys) == [-1, -1, -1]
    # A TTL policy, then 'keep forever' again: every key follows each change.
    c.session("forever", ttl=60).append({"role": "user"})
    assert all(0 < t <= 60_000 for t in _ttls(raw, keys))
    s.append({"role": "user"})  # this handle's policy: keep forever
    assert _ttls(raw, keys) == [-1, -1, -1]
    assert s.expire(30) and all(0 < t <= 30_000 for t in _ttls(raw, keys))
    assert s.expire(None) and _ttls(raw, keys) == [-1, -1, -1]
    raw.close()


def test_a_session_recreated_after_delete_keeps_no_tombstone_expiry(api: Api) -> None:
    c = api.client(sync=False)
    s = c.session("again", ttl=None)
    raw = api.raw()
    keys = session_keys(api.namespace, "again")
    s.append({"role": "user"})
    assert s.delete()
    assert raw.pttl(keys.meta) > 0 and raw.pttl(keys.changes) > 0  # the tombstone expires
    s.append({"role": "user", "content": "back"})
    assert _ttls(raw, keys) == [-1, -1, -1]
    assert _contents(s) == ["back"]
    raw.close()
