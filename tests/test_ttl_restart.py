"""When writes and reads restart a session's TTL (docs/decisions.md, 30).

A sliding TTL set less than min(1 s, ttl / 10) ago is left as it is by the next append or
read; every other case sets every key's expiry again: a new session, a changed policy, a
message set that the append re-creates, a TTL that is due. The tests mark a session's keys
with a far expiry through plain redis-py, then look at whether an operation moved it.
"""

from __future__ import annotations

import time

import pytest

from rmem._keys import session_keys
from tests.conftest import Api

LOCAL_BACKEND = True  # also run on mem://, the local backend (see conftest)

LONG = 100.0  # seconds: a TTL that never runs out during a test
MARK_MS = 500_000  # an expiry no rmem operation sets with LONG: seeing it means "left as it was"


def _pttls(api: Api, sid: str) -> list[int]:
    raw = api.raw()
    try:
        return [int(raw.pttl(key)) for key in session_keys(api.namespace, sid)]
    finally:
        raw.close()


def _mark(api: Api, sid: str) -> None:
    raw = api.raw()
    try:
        for key in session_keys(api.namespace, sid):
            assert raw.pexpire(key, MARK_MS)
    finally:
        raw.close()


def _all_set_within(pttls: list[int], ttl_ms: int) -> bool:
    return all(0 < left <= ttl_ms for left in pttls)


def test_a_burst_of_writes_and_reads_leaves_a_fresh_sliding_ttl(api: Api) -> None:
    s = api.client(sync=False).session("burst", ttl=LONG)
    s.append({"role": "user", "content": "one"})
    assert _all_set_within(_pttls(api, "burst"), int(LONG * 1000))
    _mark(api, "burst")
    s.append({"role": "user", "content": "two"})
    s.extend([{"role": "user", "content": "three"}, {"role": "user", "content": "four"}])
    assert [m.content for m in s.messages(last=2)] == ["three", "four"]
    assert all(left > LONG * 1000 for left in _pttls(api, "burst"))  # the mark: not moved
    assert s.count() == 4


def test_a_due_sliding_ttl_is_restarted_by_a_write_and_by_a_read(api: Api) -> None:
    ttl = 2.0  # restarted when set over 0.2 s ago
    s = api.client(sync=False).session("due", ttl=ttl)
    s.append({"role": "user", "content": "one"})
    _mark(api, "due")
    time.sleep(0.3)
    s.append({"role": "user", "content": "two"})
    assert _all_set_within(_pttls(api, "due"), int(ttl * 1000))
    _mark(api, "due")
    time.sleep(0.3)
    assert len(s.messages()) == 2
    assert _all_set_within(_pttls(api, "due"), int(ttl * 1000))


def test_an_append_that_recreates_the_message_set_gives_it_the_ttl(api: Api) -> None:
    s = api.client(sync=False).session("recreated", ttl=LONG)
    s.append({"role": "user", "content": "one"})
    s.clear()  # removes the message set; the next append makes a new one
    s.append({"role": "user", "content": "two"})
    assert _all_set_within(_pttls(api, "recreated"), int(LONG * 1000))
    s.pop()  # the last message: the set goes again
    s.append({"role": "user", "content": "three"})
    assert _all_set_within(_pttls(api, "recreated"), int(LONG * 1000))
    assert [m.content for m in s.messages()] == ["three"]


@pytest.mark.parametrize("change", ["expire", "new policy on write"])
def test_a_shorter_ttl_applies_at_once(api: Api, change: str) -> None:
    c = api.client(sync=False)
    s = c.session("shorter", ttl=LONG)
    s.append({"role": "user", "content": "one"})
    if change == "expire":
        s.expire(10)
        c.session("shorter").append({"role": "user", "content": "two"})  # keeps the policy
    else:
        c.session("shorter", ttl=10).append({"role": "user", "content": "two"})
    assert _all_set_within(_pttls(api, "shorter"), 10_000)
    assert s.info().ttl_policy == 10


def test_an_absolute_ttl_is_set_once(api: Api) -> None:
    s = api.client(sync=False).session("absolute", ttl=LONG, sliding=False)
    s.append({"role": "user", "content": "one"})
    first = _pttls(api, "absolute")
    assert _all_set_within(first, int(LONG * 1000))
    _mark(api, "absolute")
    s.append({"role": "user", "content": "two"})
    assert all(left > LONG * 1000 for left in _pttls(api, "absolute"))
    s.clear()
    s.append({"role": "user", "content": "three"})  # a new message set: given the expiry
    msgs_left = _pttls(api, "absolute")[1]
    assert 0 < msgs_left <= LONG * 1000


def test_the_writers_replica_mirrors_the_expiry_it_left(api: Api) -> None:
    if api.backend == "memory":
        pytest.skip("the local backend keeps no replicas")
    ttl = 10.0  # a restart under 1 s old is left as it is
    c = api.client()
    start = time.monotonic()
    c.session("mirror", ttl=ttl).append({"role": "user", "content": "one"})  # start + 10 s
    # A handle naming no TTL: its appends keep the replica fresh (one naming a TTL marks it
    # stale, as its policy may or may not have won).
    s = c.session("mirror")
    s.messages()  # opens the replica
    deadline = time.monotonic() + 5
    while c._sync.session(api.namespace, "mirror") is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(max(0.0, start + 0.5 - time.monotonic()))
    s.append({"role": "user", "content": "two"})  # leaves it: the keys expire ~9.5 s from now
    left = min(_pttls(api, "mirror")) / 1000
    assert left < ttl - 0.3  # the scenario: this append did not restart the TTL
    with c._sync.lock:
        assert c._sync.session(api.namespace, "mirror") is not None  # info comes from it
    info = s.info()
    assert info.ttl is not None and abs(info.ttl - left) < 0.2


def test_a_burst_of_appends_sends_no_expiry_commands(api: Api) -> None:
    if api.backend == "memory":
        pytest.skip("fakeredis keeps no command statistics")
    s = api.client(sync=False).session("stats", ttl=LONG)
    s.append({"role": "user", "content": "one"})
    raw = api.raw()
    try:

        def pexpires() -> int:
            stats = raw.info("commandstats").get("cmdstat_pexpire", {"calls": 0})
            return int(stats["calls"])

        before = pexpires()
        for i in range(10):
            s.append({"role": "user", "content": str(i)})
        assert pexpires() == before
        assert s.count() == 11
    finally:
        raw.close()
