"""The local fallback: degraded calls, recovery by replay, merges, journal, Redis restarting empty.

Clients reach the shared Redis through a :class:`FaultProxy`, so a test can cut them off while
another client (straight on Redis) plays "the other instance". Nothing here is mocked: the
outage is a real broken TCP path, the recovery a real replay.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import rmem
from rmem._fallback import _run_commands, record_seed, replayed_args, session_seed
from rmem._keys import SERVER_MARK, session_keys
from rmem._lua import commands_of
from rmem._session_core import HEAD_LEN
from rmem.server import EmbeddedRedis
from tests._faults import FaultProxy, restart_empty, start_redis
from tests.conftest import Api, AsyncDriver

FAST = {"socket_timeout": 0.5, "connect_timeout": 0.5}


@pytest.fixture
def proxy(redis_server: EmbeddedRedis) -> Iterator[FaultProxy]:
    with FaultProxy.in_front_of(redis_server) as made:
        yield made


def _wait(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {check}")
        time.sleep(0.02)


def _recovered(client: Any) -> Callable[[], bool]:
    def check() -> bool:
        health = client.health()
        return bool(health.state == "connected" and health.pending_writes == 0)

    return check


def _held(client: Any, session_id: str) -> bool:
    """True once the client's replica of the session is caught up (what seeding copies)."""
    target = client._target if isinstance(client, AsyncDriver) else client
    sync = target._sync
    with sync.lock:
        return sync.session(target.namespace, session_id) is not None


def _holds_record(client: Any, record_id: str) -> bool:
    """True once the client's record replica holds ``record_id`` (what seeding copies)."""
    target = client._target if isinstance(client, AsyncDriver) else client
    return bool(target._sync.record(target.namespace, record_id)[0])


def _contents(session: Any) -> list[Any]:
    return [m.content for m in session.messages()]


@pytest.fixture
def own_server() -> Iterator[EmbeddedRedis]:
    """A Redis of the test's own, for tests that restart it empty."""
    server = start_redis()
    try:
        yield server
    finally:
        server.close()


@contextlib.contextmanager
def _holding(
    server: EmbeddedRedis, namespace: str, session_id: str, contents: list[str]
) -> Iterator[tuple[rmem.Client, rmem.Session]]:
    """A client whose replica holds a session of ``contents``: what a write-back copies."""
    with rmem.Client.from_url(server.url, namespace=namespace, **FAST) as c:
        s = c.session(session_id, ttl=None)
        s.extend([{"role": "user", "content": text} for text in contents])
        assert c.wait_synced()
        _wait(lambda: _held(c, session_id))
        yield c, s


def test_degraded_writes_are_served_locally_then_replayed(api: Api, proxy: FaultProxy) -> None:
    c = _make(api, proxy.url)
    other = api.client()  # straight on Redis: another instance
    s = c.session("chat")
    s.extend([{"role": "user", "content": n} for n in ("a", "b", "c")])
    assert c.wait_synced()
    _wait(lambda: _held(c, "chat"))
    proxy.drop()
    s.append({"role": "user", "content": "offline-1"})  # detects the outage, answered locally
    assert c.health().state == "degraded"
    s.append({"role": "user", "content": "offline-2"})
    popped = s.pop()
    assert popped is not None and popped.content == "offline-2"
    # the local store was seeded from the replica: the history is whole, with the offline turn
    assert _contents(s) == ["a", "b", "c", "offline-1"]
    assert s.count() == 4
    other.session("chat").append({"role": "assistant", "content": "from-other"})
    health = c.health()
    assert health.pending_writes >= 3 and health.outages == 1
    proxy.heal()
    _wait(_recovered(c))
    expected = ["a", "b", "c", "offline-1", "from-other"]
    assert _contents(other.session("chat")) == expected  # what Redis holds
    _wait(lambda: _contents(s) == expected)  # and this instance reads it back
    _wait(lambda: _held(c, "chat"))  # its replica, reloaded after the replay, serves again
    ids = [m.id for m in other.session("chat").messages()]
    assert len(ids) == len(set(ids))
    assert c.health().replayed >= 3


def _make(api: Api, url: str, **options: Any) -> Any:
    saved = api.url
    api.url = url
    try:
        return api.client(**{**FAST, **options})
    finally:
        api.url = saved


def test_offline_clear_and_delete_keep_what_others_wrote_later(api: Api, proxy: FaultProxy) -> None:
    c = _make(api, proxy.url)
    other = api.client()
    for sid in ("cleared", "deleted"):
        c.session(sid).extend([{"role": "user", "content": "old"}])
        c.session(sid).messages()  # read: this instance now holds a replica to seed from
    assert c.wait_synced()
    _wait(lambda: _held(c, "cleared") and _held(c, "deleted"))
    proxy.drop()
    assert c.session("cleared").clear() == 1  # offline; stamped now
    assert c.session("deleted").delete() is True
    time.sleep(0.01)
    for sid in ("cleared", "deleted"):  # another instance writes after, by the clock
        other.session(sid).append({"role": "user", "content": "newer"})
    proxy.heal()
    _wait(_recovered(c))
    for sid in ("cleared", "deleted"):
        assert _contents(other.session(sid)) == ["newer"], sid
        assert other.session(sid).count() == 1


def test_an_offline_append_made_before_a_clear_stays_cleared(api: Api, proxy: FaultProxy) -> None:
    # A write replayed from the outbox keeps its stamp (lua/_session.lua): one made before a
    # clear it never saw does not come back, while a write made now after the clear would.
    c = _make(api, proxy.url)
    other = api.client(sync=False)  # reads what Redis holds, not a replica
    s = c.session("late")
    s.append({"role": "user", "content": "old"})
    assert c.wait_synced()
    _wait(lambda: _held(c, "late"))
    proxy.drop()
    s.append({"role": "user", "content": "offline"})  # degraded; stamped now
    assert c.health().state == "degraded"
    time.sleep(0.01)
    assert other.session("late").clear() == 1  # later, by the clock
    proxy.heal()
    _wait(_recovered(c))
    assert _contents(other.session("late")) == []
    assert other.session("late").count() == 0


def test_replayed_calls_are_marked_once_and_only_write_scripts(namespace: str) -> None:
    session = ("chan", "sid", 1000, "s" * 36, 60000)
    assert replayed_args("session_append", (*session, 0, 0, 0, -1, "id", b"m")) == (
        *session[:4],
        "r60000",
        0,
        0,
        0,
        -1,
        "id",
        b"m",
    )
    assert replayed_args("session_clear", (*session[:4], "r60000")) == (*session[:4], "r60000")
    replace = (5, *session, *session, 0, 0, 0, -1, "id", b"m")
    marked = replayed_args("agentsession_replace", replace)
    assert marked[5] == "r60000" and marked[10] == "r60000"
    assert marked[:5] + marked[6:10] + marked[11:] == replace[:5] + replace[6:10] + replace[11:]
    put = ("chan", 0, 1000, 60000, "id", "s" * 36, "dig", 0, 1, "text", "t")
    assert replayed_args("memory_put", put) == (*put[:3], "r60000", *put[4:])
    delete = ("chan", 1000, 60000, "id", "s" * 36)
    assert replayed_args("memory_delete", delete) == (*delete[:2], "r60000", *delete[3:])
    update = ("chan", "id", "s" * 36, "", 1000, 60000, 1, "tags", "x", 0)
    assert replayed_args("memory_update", update) == (*update[:5], "r60000", *update[6:])
    for marked in (put, delete, update):
        name = {11: "memory_put", 5: "memory_delete", 10: "memory_update"}[len(marked)]
        once = replayed_args(name, marked)
        assert replayed_args(name, once) == once
    count = ("chan", "x")
    assert replayed_args("memory_count", count) == count


def test_offline_memory_writes_lose_to_later_ones_on_replay(api: Api, proxy: FaultProxy) -> None:
    # A memory write replayed from the outbox keeps its stamp (lua/_stamp.lua): one made while
    # Redis was unreachable loses to what another instance wrote later, by the clock.
    c = _make(api, proxy.url, search_engine="local")
    other = api.client(sync=False)  # reads what Redis holds, not a replica
    for rid in ("edited", "deleted"):
        c.memories.add(f"{rid} as first written", id=rid)
        assert c.memories.get(rid) is not None  # read: the replica loads it
    assert c.wait_synced()
    _wait(lambda: _holds_record(c, "edited") and _holds_record(c, "deleted"))
    proxy.drop()
    c.memories.update("edited", text="edited offline")  # degraded; stamped now
    assert c.memories.delete("deleted") is True
    c.memories.add("added offline", id="added")
    assert c.health().state == "degraded"
    time.sleep(0.01)
    for rid in ("edited", "deleted", "added"):  # another instance writes after, by the clock
        other.memories.add(f"{rid} later elsewhere", id=rid)
    proxy.heal()
    _wait(_recovered(c))
    for rid in ("edited", "deleted", "added"):
        got = other.memories.get(rid)
        assert got is not None and got.text == f"{rid} later elsewhere", rid
    assert other.memories.count() == 3


def test_offline_pop_removes_that_message_not_the_newest(api: Api, proxy: FaultProxy) -> None:
    c = _make(api, proxy.url)
    other = api.client()
    s = c.session("popped")
    s.extend([{"role": "user", "content": "keep"}, {"role": "user", "content": "mine"}])
    c.wait_synced()
    _wait(lambda: _held(c, "popped"))
    proxy.drop()
    popped = s.pop()
    assert popped is not None and popped.content == "mine"
    other.session("popped").append({"role": "user", "content": "theirs"})
    proxy.heal()
    _wait(_recovered(c))
    # replayed as "remove the message I popped", not "pop the newest" (which is theirs)
    assert _contents(other.session("popped")) == ["keep", "theirs"]


def test_memories_work_offline_and_reach_redis(api: Api, proxy: FaultProxy) -> None:
    c = _make(api, proxy.url, search_engine="local")
    other = api.client()
    kept = c.memories.add("Alice's birthday is Jan 15", tags=["profile"])
    assert c.memories.get(kept.id) is not None  # read: the replica loads it
    assert c.wait_synced()
    _wait(lambda: _holds_record(c, kept.id))
    proxy.drop()
    added = c.memories.add("Bob drinks green tea", tags=["profile"])
    c.memories.update(kept.id, text="Alice's birthday is Jan 16")
    hits = c.memories.search("birthday", k=3, mode="text")
    assert [h.record.text for h in hits] == ["Alice's birthday is Jan 16"]
    assert c.memories.count() == 2
    seeded = c.memories.get(kept.id)  # the local store was seeded with the held record
    assert seeded is not None and seeded.created_at == kept.created_at
    proxy.heal()
    _wait(_recovered(c))
    got = other.memories.get(kept.id)
    assert got is not None and got.text == "Alice's birthday is Jan 16"
    assert other.memories.get(added.id) is not None
    assert other.memories.count() == 2


def test_state_changes_are_events(api: Api, proxy: FaultProxy) -> None:
    c = _make(api, proxy.url)
    seen: list[str] = []
    target = c._target if isinstance(c, AsyncDriver) else c
    target.subscribe(lambda e: seen.append(e.kind) if e.kind.startswith("client.") else None)
    c.session("x").append({"role": "user"})
    proxy.drop()
    c.session("x").append({"role": "user"})
    proxy.heal()
    _wait(_recovered(c))
    _wait(lambda: "client.connected" in seen)
    assert seen[:1] == ["client.degraded"] and "client.recovering" in seen


def test_blackholed_redis_costs_one_timeout_then_calls_are_local(
    proxy: FaultProxy, namespace: str
) -> None:
    with rmem.Client.from_url(proxy.url, namespace=namespace, **FAST) as c:
        s = c.session("slow")
        s.append({"role": "user"})
        proxy.blackhole()
        s.append({"role": "user"})  # waits out socket_timeout once, then answers locally
        assert c.health().state == "degraded"
        for _ in range(20):
            s.append({"role": "user"})  # no socket wait any more: the circuit is open
        assert c.health().pending_writes >= 21
        proxy.heal()
        _wait(_recovered(c))
        assert s.count() == 22


def test_replaying_an_outbox_twice_is_harmless(proxy: FaultProxy, namespace: str) -> None:
    with rmem.Client.from_url(proxy.url, namespace=namespace, **FAST) as c:
        s = c.session("twice")
        s.append({"role": "user", "content": "1"})
        proxy.drop()
        s.extend([{"role": "user", "content": "2"}, {"role": "user", "content": "3"}])
        s.pop()
        c.memories.add("a fact", id="f1")
        fallback = c._backend.fallback
        assert fallback is not None
        entries = list(fallback._outbox)
        proxy.heal()
        _wait(_recovered(c))
        before = (_contents(s), s.info().message_count, c.memories.count())
        import redis

        raw = redis.Redis.from_url(proxy.url)
        _run_commands(raw, [e.command() for e in entries])  # the same outbox, once more
        raw.close()
        assert (_contents(s), s.info().message_count, c.memories.count()) == before
        assert before[0] == ["1", "2"]


_CHILD = """
import sys, rmem
url, ns, journal = sys.argv[1:4]
c = rmem.Client.from_url(url, namespace=ns, journal_path=journal, connect_timeout=0.3,
                         socket_timeout=0.3, sync=False)
s = c.session("crash")
for n in range(30):
    m = s.append({"role": "user", "content": n})
    print(m.id, flush=True)
import os, signal
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_journal_keeps_acknowledged_writes_across_a_crash(
    tmp_path: Path, redis_url: str, namespace: str
) -> None:
    journal = tmp_path / "outbox.journal"
    closed = "redis://127.0.0.1:9/0"  # nothing listens: the child is degraded from the start
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, closed, namespace, str(journal)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    acknowledged = child.stdout.split()
    assert len(acknowledged) == 30, child.stderr
    # a new process, same journal, Redis reachable: the writes reach Redis
    with rmem.Client.from_url(redis_url, namespace=namespace, journal_path=str(journal)) as c:
        _wait(_recovered(c))
        stored = [m.id for m in c.session("crash").messages()]
    assert stored == acknowledged


def test_redis_restarting_empty_gets_back_what_this_instance_held(
    own_server: EmbeddedRedis, namespace: str
) -> None:
    with _holding(own_server, namespace, "kept", ["x", "y"]) as (c, s):
        record = c.memories.add("kept fact", id="r1")
        assert c.memories.get(record.id) is not None
        _wait(lambda: _holds_record(c, record.id))
        own_server.kill()
        s.append({"role": "user", "content": "z"})  # degraded: queued
        restart_empty(own_server)  # Redis comes back without its data
        _wait(_recovered(c))
        assert c.health().outages >= 1
    with rmem.Client.from_url(own_server.url, namespace=namespace, sync=False) as fresh:
        assert _contents(fresh.session("kept")) == ["x", "y", "z"]
        got = fresh.memories.get("r1")
        assert got is not None and got.text == "kept fact"
        # written back as it was, not as new: its times are the original ones
        assert (got.created_at, got.updated_at) == (record.created_at, record.updated_at)
        assert fresh.sessions() == ["kept"]


def test_a_quick_empty_restart_between_calls_is_noticed(
    own_server: EmbeddedRedis, namespace: str
) -> None:
    with _holding(own_server, namespace, "kept", ["x"]) as (c, _):
        restart_empty(own_server)  # no call of this client sees Redis down
        # the sync thread reconnects, finds the marker gone, and the client writes back
        _wait(lambda: c.health().outages >= 1)
        _wait(_recovered(c))
    with rmem.Client.from_url(own_server.url, namespace=namespace, sync=False) as fresh:
        assert _contents(fresh.session("kept")) == ["x"]


def test_an_append_that_reaches_an_emptied_redis_first_loses_no_history(
    own_server: EmbeddedRedis, namespace: str
) -> None:
    # The pool reconnects quietly, so this append re-creates the session in the emptied
    # Redis before the sync thread's marker check notices the restart: the history the
    # replica held must still be written back, with the new message after it.
    with _holding(own_server, namespace, "kept", ["x", "y"]) as (c, s):
        outages = c.health().outages
        restart_empty(own_server)
        s.append({"role": "user", "content": "z"})
        assert c.health().outages == outages + 1  # noticed by the append itself
        _wait(_recovered(c))
        assert _contents(s) == ["x", "y", "z"]
    with rmem.Client.from_url(own_server.url, namespace=namespace, sync=False) as fresh:
        assert _contents(fresh.session("kept")) == ["x", "y", "z"]
        assert fresh.session("kept").count() == 3
    # the write-back re-encoded "z" to the bytes the append stored: one member each
    assert redis.Redis.from_url(own_server.url).zcard(session_keys(namespace, "kept").msgs) == 3


def test_scripts_are_reloaded_on_redis_when_the_fallback_engages_between_two_tries(
    own_server: EmbeddedRedis, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sync thread can find Redis restarted empty, and so engage the fallback, between an
    # append's NOSCRIPT reply and its loading of the script. The load must still go to Redis:
    # loaded into the local store instead, the second try met NOSCRIPT again and the append
    # failed. The wrapper below makes that interleaving certain; Redis is real throughout.
    with _holding(own_server, namespace, "kept", ["x"]) as (c, s):
        backend, fallback = c._backend, c._backend.fallback
        assert fallback is not None
        send = backend._round_trip

        def engaging_after_noscript(commands: Any, **options: Any) -> list[Any]:
            replies = send(commands, **options)
            if any(isinstance(r, redis.exceptions.NoScriptError) for r in replies):
                fallback.degrade("the marker is gone")
            return replies

        monkeypatch.setattr(backend, "_round_trip", engaging_after_noscript)
        raw = redis.Redis.from_url(own_server.url)
        raw.script_flush()
        raw.close()
        s.append({"role": "user", "content": "y"})
        monkeypatch.undo()
        _wait(_recovered(c))
        assert _contents(s) == ["x", "y"]
    with rmem.Client.from_url(own_server.url, namespace=namespace, sync=False) as fresh:
        assert _contents(fresh.session("kept")) == ["x", "y"]


def _held_copy(client: rmem.Client, session_id: str) -> Any:
    """What a recovery would write back of the session: a copy of the client's replica."""
    held = {r.session_id: r for r in client._sync.sessions_held()}
    return held[session_id]


def _write_back(server: EmbeddedRedis, replica: Any) -> list[Any]:
    """Run the write-back of ``replica`` on ``server``, as a recovery does."""
    steps = session_seed(replica, rmem.Settings())
    return _run_commands(redis.Redis.from_url(server.url), commands_of(steps))


def _stored_bytes(server: EmbeddedRedis, namespace: str, session_id: str) -> tuple[int, int]:
    """(the meta hash's bytes field, the payload bytes the message set holds)."""
    raw = redis.Redis.from_url(server.url)
    keys = session_keys(namespace, session_id)
    members = raw.zrange(keys.msgs, 0, -1)
    held = sum(len(m) - m.index(b"\0", HEAD_LEN) - 1 for m in members)
    return int(raw.hget(keys.meta, "bytes") or -1), held


def test_the_first_client_to_recover_leaves_a_marker_no_client_saw_before(
    own_server: EmbeddedRedis, namespace: str
) -> None:
    # The marker's token is that of the client that wrote it first. When that client was the
    # first to recover from an empty restart and wrote the same token back, every other client
    # found the marker it knew and wrote back nothing (bench_reliability.py's empty row lost
    # one writer's history this way).
    with (
        _holding(own_server, namespace, "a", ["x"]) as (a, _),
        _holding(own_server, namespace, "b", ["y"]) as (b, _),
    ):
        fa, fb = a._backend.fallback, b._backend.fallback
        assert fa is not None and fb is not None
        assert fa.mark == fb.mark == fa.mark_token  # a left the marker, b adopted it
        raw = redis.Redis.from_url(own_server.url)
        raw.flushall()  # Redis loses its data; no connection breaks, so no call notices
        fa.degrade("test: a notices first")
        _wait(_recovered(a))
        assert raw.get(SERVER_MARK).decode() == fa.mark != fb.mark
        assert fb.check_found(raw.get(SERVER_MARK))  # b finds the marker changed
        _wait(_recovered(b))
    with rmem.Client.from_url(own_server.url, namespace=namespace, sync=False) as fresh:
        assert _contents(fresh.session("a")) == ["x"]
        assert _contents(fresh.session("b")) == ["y"]


def test_a_write_back_adds_to_a_session_an_append_re_created_first(
    redis_server: EmbeddedRedis, namespace: str
) -> None:
    # docs/reliability.md, item 8, in the order that lost a count: the replica holds x, y;
    # Redis loses the session; an append re-creates it with z; then the write-back runs.
    with _holding(redis_server, namespace, "kept", ["x", "y"]) as (c, s):
        held = _held_copy(c, "kept")
        keys = session_keys(namespace, "kept")
        redis.Redis.from_url(redis_server.url).delete(keys.meta, keys.msgs)  # no hint
        with rmem.Client.from_url(redis_server.url, namespace=namespace, sync=False) as other:
            other.session("kept", ttl=None).append({"role": "user", "content": "z"})
            assert _write_back(redis_server, held) == [2]
            assert other.session("kept").count() == 3
            assert _contents(other.session("kept")) == ["x", "y", "z"]
            assert other.session("kept").info().created_at == s.info().created_at
            # a second write-back (another instance's, or a retried one) adds nothing
            assert _write_back(redis_server, held) == [0]
            assert other.session("kept").count() == 3
    meta_bytes, held = _stored_bytes(redis_server, namespace, "kept")
    assert meta_bytes == held > 0


def test_a_record_write_back_loses_to_what_others_wrote_since(
    redis_server: EmbeddedRedis, namespace: str
) -> None:
    # Records are written back with the stamps the replica held them at: one another client
    # updated or deleted since keeps that newer write; one nobody touched is left as it is.
    with rmem.Client.from_url(redis_server.url, namespace=namespace, **FAST) as c:
        for rid in ("updated", "deleted", "untouched"):
            c.memories.add(f"{rid} as held", id=rid)
        assert c.wait_synced()
        for rid in ("updated", "deleted", "untouched"):
            _wait(lambda rid=rid: _holds_record(c, rid))
        held = c._sync.all_records_copy()[namespace]
    assert sorted(r.id for r in held) == ["deleted", "untouched", "updated"]
    with rmem.Client.from_url(redis_server.url, namespace=namespace, sync=False) as other:
        before = other.memories.get("untouched")
        other.memories.update("updated", text="updated since")
        assert other.memories.delete("deleted")
        steps = record_seed(namespace, held, rmem.Settings())
        _run_commands(redis.Redis.from_url(redis_server.url), commands_of(steps))
        got = other.memories.get("updated")
        assert got is not None and got.text == "updated since"
        assert other.memories.get("deleted") is None
        assert other.memories.get("untouched") == before


@pytest.mark.parametrize("policy", ["same", "changed", "sliding"])
def test_a_write_back_gives_an_absolute_ttl_back_its_expiry(
    redis_server: EmbeddedRedis, namespace: str, policy: str
) -> None:
    # The append that re-creates a session in the emptied Redis starts its absolute TTL anew;
    # the write-back gives it back the expiry the replica held (here 30 s sooner: the held
    # session is made to be 30 s old), unless that append set another policy, which is newer.
    # A sliding TTL keeps the expiry the append restarted, as any append restarts it.
    sliding = policy == "sliding"
    with rmem.Client.from_url(redis_server.url, namespace=namespace, **FAST) as c:
        s = c.session("kept", ttl=60, sliding=sliding)
        s.extend([{"role": "user", "content": t} for t in "xy"])
        assert c.wait_synced()
        _wait(lambda: _held(c, "kept"))
        held = _held_copy(c, "kept")
        assert held.deadline is not None
        held.deadline -= 30
        keys = session_keys(namespace, "kept")
        raw = redis.Redis.from_url(redis_server.url)
        original_anchor = int(raw.hget(keys.meta, "anchor"))
        raw.delete(*keys)  # Redis lost the session, and no hint says so
        with rmem.Client.from_url(redis_server.url, namespace=namespace, sync=False) as other:
            ttl = 120 if policy == "changed" else 60
            other.session("kept", ttl=ttl, sliding=sliding).append({"role": "user", "content": "z"})
            assert _write_back(redis_server, held) == [2]
            assert _contents(other.session("kept")) == ["x", "y", "z"]
    left = [raw.pttl(k) for k in keys]
    anchor = int(raw.hget(keys.meta, "anchor"))
    if policy == "same":
        assert all(25_000 < ms <= 30_000 for ms in left), left
        assert abs(anchor - (original_anchor - 30_000)) < 2_000
    else:
        low = 115_000 if policy == "changed" else 55_000
        assert all(low < ms <= low + 5_000 for ms in left), left
        assert anchor >= original_anchor


def test_a_write_back_brings_back_nothing_a_later_clear_or_delete_removed(
    redis_server: EmbeddedRedis, namespace: str
) -> None:
    with (
        _holding(redis_server, namespace, "kept", ["x", "y"]) as (c, _),
        rmem.Client.from_url(redis_server.url, namespace=namespace, sync=False) as other,
    ):
        held = _held_copy(c, "kept")
        other.session("kept").clear()
        other.session("kept").append({"role": "user", "content": "z"})
        assert _write_back(redis_server, held) == [0]
        assert _contents(other.session("kept")) == ["z"]
        assert other.session("kept").count() == 1
        other.session("kept").delete()
        assert _write_back(redis_server, held) == [0]
        assert not other.session("kept").exists()
    assert _stored_bytes(redis_server, namespace, "kept")[1] == 0


def test_a_write_back_into_an_empty_redis_restores_the_session_as_it_was(
    redis_server: EmbeddedRedis, namespace: str
) -> None:
    with rmem.Client.from_url(redis_server.url, namespace=namespace, **FAST) as c:
        s = c.session("kept", ttl=60, sliding=False)
        s.extend([{"role": "user", "content": t, "metadata": {"n": i}} for i, t in enumerate("ab")])
        s.append({"role": "assistant", "content": "c" * 5000})  # compressed
        assert c.wait_synced()
        _wait(lambda: _held(c, "kept"))
        before = redis.Redis.from_url(redis_server.url).hgetall(
            session_keys(namespace, "kept").meta
        )
        keys = session_keys(namespace, "kept")
        held = _held_copy(c, "kept")
        redis.Redis.from_url(redis_server.url).delete(*keys)
        assert _write_back(redis_server, held) == [3]
    raw = redis.Redis.from_url(redis_server.url)
    after = raw.hgetall(keys.meta)
    for field in (b"created", b"updated", b"count", b"bytes", b"ttl", b"sliding", b"rev"):
        assert after[field] == before[field], field
    assert {f for f in after if f.startswith(b"#")} == {f for f in before if f.startswith(b"#")}
    # the absolute TTL keeps counting from when the session was created
    assert 0 < raw.pttl(keys.meta) <= 60_000 and 0 < raw.pttl(keys.msgs) <= 60_000
    assert abs(int(after[b"anchor"]) - int(before[b"anchor"])) < 2_000
    with rmem.Client.from_url(redis_server.url, namespace=namespace, sync=False) as fresh:
        got = fresh.session("kept").messages()
        assert [(m.content, m.metadata) for m in got] == [
            ("a", {"n": 0}),
            ("b", {"n": 1}),
            ("c" * 5000, None),
        ]


def test_a_write_back_of_a_long_session_is_written_in_slices(
    redis_server: EmbeddedRedis, namespace: str
) -> None:
    # 2,500 messages: more than one slice (1,000) of the script's HMGET, HSET and ZADD.
    texts = [f"m{i}" for i in range(2500)]
    with _holding(redis_server, namespace, "long", texts) as (c, _):
        held = _held_copy(c, "long")
        redis.Redis.from_url(redis_server.url).delete(*session_keys(namespace, "long"))
        assert _write_back(redis_server, held) == [2500]
        assert _write_back(redis_server, held) == [0]
    with rmem.Client.from_url(redis_server.url, namespace=namespace, sync=False) as fresh:
        assert _contents(fresh.session("long")) == texts
        assert fresh.session("long").count() == 2500
    meta_bytes, payloads = _stored_bytes(redis_server, namespace, "long")
    assert meta_bytes == payloads


def test_an_append_that_re_creates_a_session_deleted_elsewhere_writes_nothing_back(
    own_server: EmbeddedRedis, namespace: str
) -> None:
    # The same sign as above (an append re-creates a session the replica held as live), but
    # Redis kept its data: the marker is there, so the client stays connected and the old
    # history stays deleted.
    with _holding(own_server, namespace, "gone", ["x", "y"]) as (c, s):
        keys = session_keys(namespace, "gone")
        # deleted behind rmem's back: no hint reaches the replica before the append
        redis.Redis.from_url(own_server.url).delete(keys.meta, keys.msgs)
        s.append({"role": "user", "content": "z"})
        health = c.health()
        assert (health.state, health.outages) == ("connected", 0)
        assert c._sync._orphans == {}
        assert _contents(s) == ["z"]
        assert c.sessions() == ["gone"]
