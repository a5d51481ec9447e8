"""Cross-instance sync: local replicas, pub/sub hints, change-log catch-up, last-writer-wins.

Each ``rmem.Client`` here is its own instance (own node id, own sync thread, own replicas), as
two servers of a deployment would be; they share only the Redis server.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

import rmem
from rmem import _lua
from rmem._hlc import Clock, parse_stamp
from rmem._keys import session_keys
from rmem._replica import SyncEngine


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.005)
    raise AssertionError(f"not true within {timeout} s: {predicate}")


def engine(client: rmem.Client) -> SyncEngine:
    assert client._sync is not None
    return client._sync


def replica_messages(client: rmem.Client, session_id: str) -> list[str] | None:
    """Message ids of a fresh replica, or None when the replica would not serve a read."""
    sync = engine(client)
    with sync.lock:
        replica = sync.session(client.namespace, session_id)
        return None if replica is None else [m.id for m in replica.messages]


def redis_messages(url: str, namespace: str, session_id: str) -> list[str]:
    with rmem.Client.from_url(url, namespace=namespace, sync=False) as reader:
        return [m.id for m in reader.session(session_id).messages()]


def test_replica_serves_reads_and_follows_other_instances(
    pair: tuple[rmem.Client, rmem.Client], redis_url: str
) -> None:
    a, b = pair
    sa, sb = a.session("chat"), b.session("chat")
    first = sa.append({"role": "user", "content": "hello"})
    assert [m.id for m in sb.messages()] == [first.id]  # read through, opens the replica
    wait_until(lambda: replica_messages(b, "chat") == [first.id])
    second = sa.append({"role": "assistant", "content": "hi"})
    wait_until(lambda: replica_messages(b, "chat") == [first.id, second.id])
    assert [m.content for m in sb.messages(last=1)] == ["hi"]
    assert sb.count() == 2 and sb.info().message_count == 2
    assert replica_messages(b, "chat") == redis_messages(redis_url, a.namespace, "chat")


def test_own_writes_are_read_back_at_once(
    pair: tuple[rmem.Client, rmem.Client], redis_url: str
) -> None:
    a, b = pair
    sa, sb = a.session("ryw"), b.session("ryw")
    sa.messages()  # hold a replica
    stop = threading.Event()

    def other_writer() -> None:
        while not stop.is_set():
            sb.append({"role": "user", "content": "other"})

    thread = threading.Thread(target=other_writer)
    thread.start()
    try:
        for i in range(200):
            mine = sa.append({"role": "assistant", "content": f"mine {i}"})
            assert mine.id in {m.id for m in sa.messages(last=50)}
            popped_or_not = sa.count()
            assert popped_or_not >= i + 1
    finally:
        stop.set()
        thread.join()
    wait_until(lambda: replica_messages(a, "ryw") == redis_messages(redis_url, a.namespace, "ryw"))


def test_pop_clear_and_delete_reach_other_replicas(pair: tuple[rmem.Client, rmem.Client]) -> None:
    a, b = pair
    sa, sb = a.session("edits"), b.session("edits")
    sa.extend([{"role": "user", "content": str(i)} for i in range(5)])
    sb.messages()
    wait_until(lambda: replica_messages(b, "edits") is not None)
    assert len(replica_messages(b, "edits") or []) == 5
    popped = sa.pop()
    assert popped is not None and popped.content == "4"
    wait_until(lambda: len(replica_messages(b, "edits") or []) == 4)
    sa.clear()
    wait_until(lambda: replica_messages(b, "edits") == [])
    sa.append({"role": "user", "content": "again"})
    wait_until(lambda: len(replica_messages(b, "edits") or []) == 1)
    sa.delete()
    wait_until(lambda: replica_messages(b, "edits") == [] and not sb.exists())
    with pytest.raises(rmem.NotFoundError):
        sb.info()


def test_writes_are_ordered_as_redis_ran_them_on_every_instance(
    redis_url: str, namespace: str
) -> None:
    # A's clock runs 200 ms ahead of B's. B's message, written after A's, still sorts after it
    # (Redis moves its stamp after A's), on every instance, and B's clock then follows A's.
    now = lambda: time.time_ns() // 1_000_000  # noqa: E731
    a = rmem.Client.from_url(redis_url, namespace=namespace)
    b = rmem.Client.from_url(redis_url, namespace=namespace)
    a._clock = Clock(wall=lambda: now() + 200)
    b._clock = Clock(wall=now)
    try:
        first = a.session("order").append({"role": "user", "content": "from A"})
        second = b.session("order").append({"role": "user", "content": "from B"})
        third = b.session("order").append({"role": "user", "content": "from B again"})
        expected = [first.id, second.id, third.id]
        assert redis_messages(redis_url, namespace, "order") == expected
        for c in (a, b):
            c.session("order").messages()
            wait_until(lambda c=c: replica_messages(c, "order") == expected)
        assert [m.id for m in a.session("order").messages()] == expected
        assert [m.id for m in b.session("order").messages()] == expected
        with redis.Redis.from_url(redis_url) as raw:
            stamps = [
                m[:36].decode() for m in raw.zrange(session_keys(namespace, "order").msgs, 0, -1)
            ]
        assert stamps == sorted(stamps) and len(set(stamps)) == 3
        assert stamps[1].endswith(b.node_id) and stamps[2].endswith(b.node_id)
        # B's clock took A's time on: its third write needed no move.
        assert parse_stamp(stamps[2]) == b._clock.last
        popped = a.session("order").pop()
        assert popped is not None and popped.id == third.id  # the newest
    finally:
        a.close()
        b.close()


def test_a_late_clock_cannot_lose_or_misplace_a_write_made_now(
    redis_url: str, namespace: str
) -> None:
    # What Redis holds is read with a client that keeps no replica; the live instance's replica
    # hears of the late client's writes over pub/sub, so it is waited on, then checked.
    now = lambda: time.time_ns() // 1_000_000  # noqa: E731
    with (
        rmem.Client.from_url(redis_url, namespace=namespace) as live,
        rmem.Client.from_url(redis_url, namespace=namespace) as late,
        rmem.Client.from_url(redis_url, namespace=namespace, sync=False) as direct,
    ):
        late._clock = Clock(wall=lambda: now() - 10_000)  # its writes carry older stamps
        s, stored = live.session("lww"), direct.session("lww")
        s.append({"role": "user", "content": "cleared"})
        s.clear()
        late.session("lww").append({"role": "user", "content": "after the clear"})
        assert [m.content for m in stored.messages()] == ["after the clear"]
        wait_until(lambda: [m.content for m in s.messages()] == ["after the clear"])
        assert s.count() == 1
        late.session("lww").clear()  # clears what Redis holds, newer stamps included
        assert stored.count() == 0
        wait_until(lambda: s.count() == 0)
        s.append({"role": "user", "content": "deleted"})
        s.delete()
        late.session("lww").append({"role": "user", "content": "after the delete"})
        assert [m.content for m in stored.messages()] == ["after the delete"]
        wait_until(lambda: [m.content for m in s.messages()] == ["after the delete"])
        assert live.sessions() == ["lww"]
        late.session("lww").delete()
        assert not stored.exists()
        wait_until(lambda: not s.exists())
        # A TTL policy set later wins, whatever its clock says.
        fresh = live.session("policy", ttl=None)
        fresh.append({"role": "user"})
        late.session("policy").expire(60)
        assert direct.session("policy").info().ttl_policy == 60
        wait_until(lambda: fresh.info().ttl_policy == 60)


def test_events_from_every_instance(pair: tuple[rmem.Client, rmem.Client]) -> None:
    a, b = pair
    got: list[rmem.Event] = []
    listener = b.subscribe(got.append)
    with a.events() as events:
        sa = a.session("ev")
        sa.append({"role": "user"})
        sa.pop()
        record = b.memories.add("a shared finding")
        b.memories.delete(record.id)
        seen = [events.get(timeout=5) for _ in range(4)]
    wait_until(lambda: len(got) == 4)
    b.unsubscribe(listener)
    kinds = ["session.append", "session.pop", "memory.put", "memory.delete"]
    for stream in (seen, got):
        assert [e.kind for e in stream if e] == kinds
    assert {e.origin for e in got[:2]} == {a.node_id}
    assert {e.origin for e in got[2:]} == {b.node_id}
    assert got[0].session_id == "ev" and got[2].record_id == record.id
    assert all(e.namespace == a.namespace and e.stamp for e in got)


def test_async_events(redis_url: str, namespace: str) -> None:
    async def main() -> list[str]:
        async with rmem.AsyncClient.from_url(redis_url, namespace=namespace) as c:
            assert c.wait_synced()
            async with c.events() as events:
                await c.session("s").append({"role": "user"})
                await c.session("s").clear()
                return [(await asyncio.wait_for(anext(events), 5)).kind for _ in range(2)]

    assert asyncio.run(main()) == ["session.append", "session.clear"]


def test_expiry_reaches_replicas_and_events(
    pair: tuple[rmem.Client, rmem.Client], redis_url: str
) -> None:
    a, b = pair
    got: list[rmem.Event] = []
    b.subscribe(got.append)
    a.session("short", ttl=0.3, sliding=False).append({"role": "user"})
    sb = b.session("short")
    sb.messages()
    wait_until(lambda: replica_messages(b, "short"))
    wait_until(lambda: any(e.kind == "session.expire" for e in got), timeout=5)
    assert sb.messages() == [] and not sb.exists()
    expiry = next(e for e in got if e.kind == "session.expire")
    assert expiry.session_id == "short" and expiry.origin is None


def test_an_expiry_event_that_arrives_after_the_session_was_re_created_wipes_nothing(
    redis_url: str, namespace: str
) -> None:
    # Redis publishes a key's expiry before it runs the append that re-creates the session,
    # but the writer applies its own reply to the replica at once, while the sync thread may
    # read the expiry later. The late event must not leave the replica serving "no session".
    with rmem.Client.from_url(redis_url, namespace=namespace) as c:
        c.session("again", ttl=0.3, sliding=False).append({"role": "user", "content": "old"})
        assert c.session("again").messages()  # opens the replica
        wait_until(lambda: not redis_messages(redis_url, namespace, "again"))
        wait_until(lambda: replica_messages(c, "again") == [])  # the expiry was applied
        renewed = c.session("again", ttl=60, sliding=False)
        new = renewed.append({"role": "user", "content": "new"})
        assert replica_messages(c, "again") == [new.id]
        # The first expiry's event, delivered late: the very message Redis sent for it.
        engine(c)._on_expired(session_keys(namespace, "again").meta)
        assert renewed.exists() and [m.id for m in renewed.messages()] == [new.id]
        wait_until(lambda: replica_messages(c, "again") == [new.id])  # serves again


def test_replica_mirrors_ttl_without_keyspace_events(redis_url: str, namespace: str) -> None:
    # With expiry notifications off, the mirrored deadline alone stops stale reads.
    raw = redis.Redis.from_url(redis_url)
    raw.config_set("notify-keyspace-events", "")
    try:
        with rmem.Client.from_url(redis_url, namespace=namespace) as c:
            s = c.session("mirror", ttl=0.3, sliding=False)
            s.append({"role": "user"})
            s.messages()
            wait_until(lambda: replica_messages(c, "mirror"))
            time.sleep(0.4)
            assert replica_messages(c, "mirror") is None
            assert s.messages() == []
    finally:
        raw.config_set("notify-keyspace-events", "Ex")
        raw.close()


def test_local_reads_keep_a_sliding_session_alive(redis_url: str, namespace: str) -> None:
    with rmem.Client.from_url(redis_url, namespace=namespace) as c:
        s = c.session("alive", ttl=0.5, sliding=True)
        s.append({"role": "user"})
        s.messages()
        wait_until(lambda: replica_messages(c, "alive"))
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            assert len(s.messages()) == 1
            time.sleep(0.02)
        with rmem.Client.from_url(redis_url, namespace=namespace, sync=False) as other:
            assert other.session("alive").exists()


def test_every_replica_serves_again_after_a_reconnect_without_new_writes(
    redis_url: str, namespace: str
) -> None:
    # A reconnect voids every replica's catch-up; the thread must catch them all up again,
    # not only those a later hint names.
    with rmem.Client.from_url(redis_url, namespace=namespace) as c:
        ids = {sid: c.session(sid).append({"role": "user"}).id for sid in ("q1", "q2", "q3")}
        for sid in ids:
            c.session(sid).messages()
        for sid, mid in ids.items():
            wait_until(lambda sid=sid, mid=mid: replica_messages(c, sid) == [mid])
        wait_until(lambda: not engine(c)._pending)  # the thread holds no catch-up to do
        epoch = engine(c)._epoch
        raw = redis.Redis.from_url(redis_url)
        assert raw.client_kill_filter(_type="pubsub") >= 1
        wait_until(lambda: engine(c)._epoch > epoch)
        for sid, mid in ids.items():
            wait_until(lambda sid=sid, mid=mid: replica_messages(c, sid) == [mid])
        raw.close()


def test_missed_hints_after_client_kill_converge(
    pair: tuple[rmem.Client, rmem.Client], redis_url: str
) -> None:
    a, b = pair
    sa, sb = a.session("killed"), b.session("killed")
    sa.append({"role": "user", "content": "start"})
    sb.messages()
    wait_until(lambda: replica_messages(b, "killed"))
    raw = redis.Redis.from_url(redis_url)
    stop = threading.Event()
    written: list[str] = []

    def writer() -> None:
        while not stop.is_set():
            written.append(sa.append({"role": "user", "content": "x"}).id)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(3):
            time.sleep(0.05)
            epoch = engine(b)._epoch
            assert raw.client_kill_filter(_type="pubsub") >= 1
            acknowledged = set(written)  # all in Redis before b can resubscribe
            # b notices, resubscribes (a new epoch) and catches up from the change log. Once
            # its replica serves again, it holds everything acknowledged before: never older.
            # (Writes acknowledged after the catch-up arrive as hints, milliseconds later.)
            wait_until(lambda epoch=epoch: engine(b)._epoch > epoch)
            # The first read b's replica serves (a later hint can make it stale again).
            served = wait_until(lambda: replica_messages(b, "killed"))
            assert acknowledged <= set(served)
    finally:
        stop.set()
        thread.join()
        raw.close()
    expected = redis_messages(redis_url, a.namespace, "killed")
    assert len(expected) == len(written) + 1
    wait_until(lambda: replica_messages(b, "killed") == expected)


def test_catch_up_reloads_when_the_log_was_trimmed(redis_url: str, namespace: str) -> None:
    keys = session_keys(namespace, "trim")
    with rmem.Client.from_url(redis_url, namespace=namespace, session_change_log_maxlen=10) as c:
        s = c.session("trim")
        first = s.append({"role": "user"})
        raw = redis.Redis.from_url(redis_url)
        since = raw.xrevrange(keys.changes, count=1)[0][0]
        for _ in range(300):
            s.append({"role": "user"})
        args = (since, 1000)
        delta = raw.evalsha(_lua.SESSION_SYNC.sha, 3, *keys, *args) if _loaded(raw) else None
        if delta is None:
            raw.script_load(_lua.SESSION_SYNC.source)
            delta = raw.evalsha(_lua.SESSION_SYNC.sha, 3, *keys, *args)
        assert delta[10] == b"full" and len(delta) == 11 + 301
        assert raw.xlen(keys.changes) < 300
        # A replica whose position was trimmed away reloads and converges.
        s.messages()
        wait_until(lambda: replica_messages(c, "trim"))
        sync = engine(c)
        with sync.lock:
            replica = sync._sessions[(namespace, "trim")]
            replica.change_id, replica.dirty, replica.rev = since.decode(), True, 1
            replica.prefixes, replica.messages = replica.prefixes[:1], replica.messages[:1]
        wait_until(lambda: len(replica_messages(c, "trim") or []) == 301)
        assert (replica_messages(c, "trim") or [])[0] == first.id
        raw.close()


def _loaded(raw: redis.Redis) -> bool:
    return bool(raw.script_exists(_lua.SESSION_SYNC.sha)[0])


def test_memory_replica_follows_other_instances(pair: tuple[rmem.Client, rmem.Client]) -> None:
    a, b = pair
    record = a.memories.add("the launch moved to May", id="launch")
    got = b.memories.get("launch")  # read through; the replica loads it
    assert got is not None and got.stamp == record.stamp

    def served() -> str | bool | None:
        known, found = engine(b).record(b.namespace, "launch")
        return (found.text if found else None) if known else False

    wait_until(lambda: served() == "the launch moved to May")
    a.memories.update("launch", text="the launch moved to June")
    wait_until(lambda: served() == "the launch moved to June")
    a.memories.delete("launch")
    wait_until(lambda: served() is None)
    assert b.memories.get("launch") is None


def test_sync_false_has_no_thread(redis_url: str, namespace: str) -> None:
    with rmem.Client.from_url(redis_url, namespace=namespace, sync=False) as c:
        assert c._sync is None
        c.session("s").append({"role": "user"})
        assert len(c.session("s").messages()) == 1
        with pytest.raises(rmem.ValidationError, match="sync=False"):
            c.subscribe(lambda e: None)


def test_concurrent_batches_stay_contiguous(redis_url: str, namespace: str) -> None:
    # Each extend takes one stamp: no other writer's message can sort inside a batch.
    clients = [rmem.Client.from_url(redis_url, namespace=namespace) for _ in range(2)]

    def write(n: int) -> None:
        s = clients[n].session("batches")
        for i in range(60):
            s.extend([{"role": "user", "content": f"{n}:{i}:{j}"} for j in range(5)])

    threads = [threading.Thread(target=write, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    contents = [str(m.content) for m in clients[0].session("batches").messages()]
    for c in clients:
        c.close()
    assert len(contents) == 600
    for start in range(0, 600, 5):
        batch = [c.rsplit(":", 1)[0] for c in contents[start : start + 5]]
        assert len(set(batch)) == 1, contents[start : start + 5]
        assert [c.rsplit(":", 1)[1] for c in contents[start : start + 5]] == list("01234")


def test_session_write_stamped_far_ahead_is_refused(redis_url: str, namespace: str) -> None:
    now = lambda: time.time_ns() // 1_000_000  # noqa: E731
    with rmem.Client.from_url(redis_url, namespace=namespace) as c:
        c._clock = Clock(wall=lambda: now() + 120_000)  # beyond max_stamp_ahead_ms (60 s)
        s = c.session("ahead")
        with pytest.raises(rmem.ValidationError, match="ahead of the Redis clock"):
            s.append({"role": "user"})
        assert redis_messages(redis_url, namespace, "ahead") == []
        assert c.sessions() == []
