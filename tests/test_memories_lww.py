"""Which write wins on a memory record, decided inside the Lua scripts (docs/decisions.md, 42).

A write made now (every call of a connected client) is placed in the order Redis runs it: when
the record or its tombstone carries a stamp at or after the write's own (another host's clock
runs ahead, or two hosts wrote in the same millisecond), the write takes the least stamp after
it. A write replayed from a client's fallback outbox keeps its stamp: last writer wins by the
clock (tests/test_fallback.py). Two clients share a namespace; each gets a clock whose wall
time the test sets, and a third client without a replica reads what Redis holds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

import rmem
from rmem._hlc import Clock, parse_stamp


class Wall:
    """A settable wall clock in ms, starting at the real time."""

    def __init__(self, offset_ms: int = 0) -> None:
        self.offset_ms = offset_ms

    def __call__(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms


Trio = tuple[rmem.Client, rmem.Client, Wall, rmem.Client]


@pytest.fixture
def pair(redis_url: str, namespace: str) -> Iterator[Trio]:
    """``late`` stamps its writes 5 s behind ``now`` (whose wall the test may move);
    ``direct`` keeps no replica."""
    now_wall, late_wall = Wall(), Wall(-5000)
    with (
        rmem.Client.from_url(redis_url, namespace=namespace) as now,
        rmem.Client.from_url(redis_url, namespace=namespace) as late,
        rmem.Client.from_url(redis_url, namespace=namespace, sync=False) as direct,
    ):
        now._clock = Clock(wall=now_wall)
        late._clock = Clock(wall=late_wall)
        yield now, late, now_wall, direct


def test_a_write_made_after_another_wins_whatever_its_clock_says(pair: Trio) -> None:
    now, late, _, direct = pair
    first = now.memories.add("the original wording", id="r")
    second = late.memories.add("a later value from a late clock", id="r", tags=["late"])
    assert second.text == "a later value from a late clock" and second.tags == ["late"]
    # Redis moved its stamp after the first one's, keeping the late host's node id, and the
    # late client's clock took that time on: its next writes need no move.
    assert second.stamp > first.stamp and second.stamp.endswith(late.node_id)
    assert late._clock.last >= parse_stamp(second.stamp)
    assert direct.memories.get("r") == second
    assert [h.record.id for h in direct.memories.search("later value", mode="text")] == ["r"]
    assert direct.memories.search("original wording", mode="text") == []
    updated = late.memories.update("r", text="updated by the late clock")
    assert updated.text == "updated by the late clock" and updated.stamp > second.stamp
    stored = direct.memories.get("r")
    assert stored is not None and stored.text == "updated by the late clock"
    now.memories.update("r", tags=["now"])  # now's clock is ahead again: no move needed
    assert late.memories.delete("r") is True
    assert direct.memories.get("r") is None and direct.memories.count() == 0


def test_a_write_made_after_a_delete_brings_the_record_back(pair: Trio) -> None:
    now, late, _, direct = pair
    late.memories.add("written first", id="r")
    assert now.memories.delete("r") is True
    with pytest.raises(rmem.NotFoundError):
        late.memories.update("r", text="an update of a deleted record")
    assert direct.memories.get("r") is None
    again = late.memories.add("written after the delete", id="r")
    assert again.text == "written after the delete"
    assert direct.memories.get("r") == again and direct.memories.count() == 1


def test_same_millisecond_writes_of_two_hosts_land_in_the_order_redis_ran_them(
    redis_url: str, namespace: str
) -> None:
    # Both clocks read the same fixed millisecond; stamps then differ only by node id, and
    # the lower node id used to lose whatever the order of the writes.
    frozen = Wall()
    fixed = frozen()
    with (
        rmem.Client.from_url(redis_url, namespace=namespace, sync=False) as a,
        rmem.Client.from_url(redis_url, namespace=namespace, sync=False) as b,
    ):
        a._clock = Clock(wall=lambda: fixed)
        b._clock = Clock(wall=lambda: fixed)
        high, low = (a, b) if a.node_id > b.node_id else (b, a)
        for n in range(5):
            high.memories.add(f"from the higher node id {n}", id="r")
            low.memories.add(f"from the lower node id {n}", id="r")
            got = high.memories.get("r")
            assert got is not None and got.text == f"from the lower node id {n}"
            low.memories.update("r", tags=[str(n)])
            high.memories.update("r", tags=["high"])
            got = low.memories.get("r")
            assert got is not None and got.tags == ["high"]


def test_a_clock_that_falls_back_still_stamps_after_its_own_writes(pair: Trio) -> None:
    now, late, now_wall, direct = pair
    late.memories.add("v1 from the late clock", id="r")
    v2 = now.memories.add("v2 from the current clock", id="r")
    now_wall.offset_ms = -10_000  # this host's clock now falls behind the other's
    # The clock never goes back: the next stamp follows v2's by the clock alone (Redis did
    # not have to move it), so v3 is stamped as it was sent.
    v3 = now.memories.add("v3 after the wall clock fell back", id="r")
    assert v3.stamp > v2.stamp and parse_stamp(v3.stamp) == now._clock.last
    got = direct.memories.get("r")
    assert got is not None and got.text == "v3 after the wall clock fell back"


def test_a_stamp_far_ahead_of_the_server_clock_is_refused(redis_url: str, namespace: str) -> None:
    with rmem.Client.from_url(redis_url, namespace=namespace) as c:
        c._clock = Clock(wall=Wall(120_000))
        with pytest.raises(rmem.ValidationError, match="ahead of the Redis clock"):
            c.memories.add("from the future")
        with pytest.raises(rmem.ValidationError, match="max_stamp_ahead_ms=60000"):
            c.memories.add_many(["a", "b"])
        assert c.memories.count() == 0
    with rmem.Client.from_url(redis_url, namespace=namespace, max_stamp_ahead_ms=300_000) as c:
        c._clock = Clock(wall=Wall(120_000))
        assert c.memories.add("allowed by a wider bound").text == "allowed by a wider bound"
        assert c.memories.count() == 1
