"""The sync thread and its hints: own writes, foreign messages, a damaged change log.

- A client's own session write is applied to its replica from the script's reply; the hint
  the same write publishes is not caught up from Redis again (it used to be, most of the time,
  because the hint often arrives before the reply is applied).
- A write whose reply is lost (it may have run in Redis) leaves the replica stale, so it
  catches up from Redis instead of missing that write.
- Messages on a sync channel that are not rmem hints, and a memory change log of the wrong
  type, are logged once and skipped: the thread stays connected and keeps every other
  replica current.
- After a wake-up that brought only the client's own hints, the thread reads the next ones
  together after ``sync_own_hint_pause``; another client's change still reaches the replica.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
import redis

import rmem
from rmem._keys import memory_keys, sync_channel
from rmem._replica import SyncEngine
from tests.test_sync import engine, redis_messages, replica_messages, wait_until


def _open_replica(client: rmem.Client, session_id: str) -> rmem.Session:
    """A session with one message whose replica in ``client`` is caught up."""
    session = client.session(session_id)
    session.append({"role": "user", "content": "first"})
    session.messages()  # opens the replica
    wait_until(lambda: replica_messages(client, session_id) is not None)
    return session


def _count_catch_ups(sync: SyncEngine, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the session ids the thread catches up from Redis from now on."""
    seen: list[str] = []
    real = sync._sync_sessions

    def counting(redis_client: Any, replicas: Any) -> None:
        seen.extend(r.session_id for r in replicas)
        real(redis_client, replicas)

    monkeypatch.setattr(sync, "_sync_sessions", counting)
    return seen


def test_own_appends_are_not_caught_up_from_redis(
    pair: tuple[rmem.Client, rmem.Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = pair
    session = _open_replica(a, "own")
    caught_up = _count_catch_ups(engine(a), monkeypatch)
    events = a.events()
    written = [session.append({"role": "user", "content": f"m{i}"}).id for i in range(30)]
    # Every hint of those writes has reached the thread once their events have.
    seen = 0
    while seen < 30:
        event = events.get(timeout=5)
        assert event is not None
        seen += event.kind == "session.append"
    events.close()
    assert replica_messages(a, "own") == redis_messages(a.settings.url, a.namespace, "own")
    assert replica_messages(a, "own")[-30:] == written  # type: ignore[index]
    assert caught_up.count("own") == 0
    # Another instance's write is still caught up from Redis.
    other = b.session("own").append({"role": "assistant", "content": "theirs"})
    wait_until(lambda: (replica_messages(a, "own") or [])[-1:] == [other.id])
    assert caught_up.count("own") >= 1


def test_a_write_whose_reply_is_lost_is_caught_up_from_redis(
    pair: tuple[rmem.Client, rmem.Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = pair
    session = _open_replica(a, "lost")
    backend = a._backend
    real = backend.run

    def run_then_lose_reply(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)  # the script runs in Redis ...
        raise rmem.UnavailableError("the reply was lost")  # ... and its reply never arrives

    monkeypatch.setattr(backend, "run", run_then_lose_reply)
    with pytest.raises(rmem.UnavailableError):
        session.append({"role": "user", "id": "m-lost", "content": "written, unacknowledged"})
    monkeypatch.setattr(backend, "run", real)
    # The replica does not serve the history without that message: it catches up first.
    wait_until(lambda: "m-lost" in (replica_messages(a, "lost") or []))
    assert [m.id for m in session.messages()][-1] == "m-lost"


@pytest.mark.parametrize(
    "payload",
    [
        b"not a hint",
        b"a\nstamp\nrev\nchange\nsession",  # rev is not a number
        b"a\n018f3c2a9b10-000000-9f86d081884c7d65\n3\n1-0\n",  # no session id
        b"a\nnot-a-stamp\n3\n1-0\nchat",
        b"zz\n018f3c2a9b10-000000-9f86d081884c7d65\n3\n1-0\nchat",  # unknown kind
        b"\xff\xfe\x00",
        b"",
    ],
)
def test_foreign_messages_on_the_sync_channel_are_ignored(
    pair: tuple[rmem.Client, rmem.Client],
    raw: redis.Redis,
    payload: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = pair
    sa = a.session("chat")
    sa.append({"role": "user", "content": "hello"})
    sb = b.session("chat")
    sb.messages()
    wait_until(lambda: replica_messages(b, "chat") is not None)
    epoch = engine(b)._epoch
    with caplog.at_level(logging.WARNING, logger="rmem.sync"):
        for _ in range(3):
            raw.publish(sync_channel(a.namespace), payload)
        later = sa.append({"role": "user", "content": "after the noise"})
        wait_until(lambda: (replica_messages(b, "chat") or [])[-1:] == [later.id])
        # Once per client (a and b) and channel, not once per message.
        wait_until(lambda: len(_ignored(caplog)) == 2)
    assert engine(b)._epoch == epoch  # never reconnected
    assert engine(a).last_error is None and engine(b).last_error is None
    assert len(_ignored(caplog)) == 2


def _ignored(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "not a sync hint" in r.getMessage()]


def test_a_damaged_memory_change_log_leaves_the_thread_connected(
    pair: tuple[rmem.Client, rmem.Client], raw: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = pair
    record = a.memories.add("the user likes tea")
    assert b.memories.get(record.id) is not None  # opens b's record replica
    b.session("chat").messages()
    wait_until(lambda: replica_messages(b, "chat") is not None)
    epoch = engine(b)._epoch
    log_key = memory_keys(a.namespace).log
    with caplog.at_level(logging.WARNING, logger="rmem.sync"):
        raw.delete(log_key)
        raw.set(log_key, "written by something else")
        # The hint makes b's thread read the change log, which Redis refuses (WRONGTYPE).
        raw.publish(sync_channel(a.namespace), f"put\n\n0\n99999999999999-0\n{record.id}")
        wait_until(lambda: any(log_key in r.getMessage() for r in caplog.records))
        # Sessions in the same namespace still sync.
        later = a.session("chat").append({"role": "user", "content": "still synced"})
        wait_until(lambda: (replica_messages(b, "chat") or [])[-1:] == [later.id])
    assert engine(b)._epoch == epoch
    # The records of that namespace are read from Redis meanwhile.
    found = b.memories.get(record.id)
    assert found is not None and found.text == "the user likes tea"
    assert len([r for r in caplog.records if log_key in r.getMessage()]) <= 2  # once a client


def test_after_a_wake_up_with_only_own_hints_the_thread_reads_the_next_ones_together(
    redis_url: str, namespace: str
) -> None:
    # Decision 37: hints that need no work are not read each on a wake-up of its own. The
    # writer's next hints wait out the pause; another client's change still arrives.
    pause = 0.5
    a = rmem.Client.from_url(redis_url, namespace=namespace, sync_own_hint_pause=pause)
    b = rmem.Client.from_url(redis_url, namespace=namespace, sync=False)
    try:
        session = _open_replica(a, "paused")
        assert a.wait_synced()
        events = a.events()
        session.append({"role": "user", "content": "wakes the thread"})
        assert events.get(timeout=5) is not None
        woke = time.monotonic()  # the thread has read that hint alone: it now pauses
        for i in range(5):
            session.append({"role": "user", "content": f"m{i}"})
        for _ in range(5):
            event = events.get(timeout=5)
            assert event is not None and event.kind == "session.append"
        assert time.monotonic() - woke >= pause * 0.8
        events.close()
        theirs = b.session("paused").append({"role": "assistant", "content": "theirs"})
        wait_until(lambda: (replica_messages(a, "paused") or [])[-1:] == [theirs.id])
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("pause", [-0.001, 1.5, "soon"])
def test_a_bad_own_hint_pause_is_refused(pause: object) -> None:
    with pytest.raises(rmem.ValidationError, match="sync_own_hint_pause"):
        rmem.Settings.from_url("memory://", sync_own_hint_pause=pause)
