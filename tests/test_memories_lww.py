"""Last-writer-wins on memory records, decided inside the Lua scripts by the clock stamps.

Two clients share a namespace; each gets a clock whose wall time the test sets, so a write can
arrive late carrying an older stamp, as it would from a slow or partitioned instance.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

import rmem
from rmem._hlc import Clock


class Wall:
    """A settable wall clock in ms, starting at the real time."""

    def __init__(self, offset_ms: int = 0) -> None:
        self.offset_ms = offset_ms

    def __call__(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms


@pytest.fixture
def pair(redis_url: str, namespace: str) -> Iterator[tuple[rmem.Client, rmem.Client, Wall]]:
    """``late`` stamps its writes 5 s behind ``now`` (whose wall the test may move)."""
    now_wall, late_wall = Wall(), Wall(-5000)
    with (
        rmem.Client.from_url(redis_url, namespace=namespace) as now,
        rmem.Client.from_url(redis_url, namespace=namespace) as late,
    ):
        now._clock = Clock(wall=now_wall)
        late._clock = Clock(wall=late_wall)
        yield now, late, now_wall


def test_an_older_write_never_overwrites_a_newer_one(
    pair: tuple[rmem.Client, rmem.Client, Wall],
) -> None:
    now, late, _ = pair
    newer = now.memories.add("the newer value", id="r")
    kept = late.memories.add("a delayed older value", id="r", tags=["stale"])
    assert kept == now.memories.get("r")
    assert kept.text == "the newer value" and kept.stamp == newer.stamp
    assert late.memories.search("delayed older", mode="text") == []
    stale_update = late.memories.update("r", text="older update")
    assert stale_update.text == "the newer value"
    assert late.memories.delete("r") is False  # an older delete loses too
    assert now.memories.get("r") is not None


def test_a_delayed_write_never_resurrects_a_deleted_record(
    pair: tuple[rmem.Client, rmem.Client, Wall],
) -> None:
    now, late, _ = pair
    late.memories.add("written first", id="r")
    assert now.memories.delete("r") is True
    with pytest.raises(rmem.NotFoundError, match="deleted by a newer write"):
        late.memories.add("a write from before the delete", id="r")
    assert now.memories.get("r") is None
    assert now.memories.count() == 0
    with pytest.raises(rmem.NotFoundError):
        late.memories.update("r", text="nor an update")
    # A write newer than the delete brings the id back, as last-writer-wins says.
    again = now.memories.add("written after the delete", id="r")
    assert now.memories.get("r") == again


def test_newer_writes_win_whatever_the_arrival_order(
    pair: tuple[rmem.Client, rmem.Client, Wall],
) -> None:
    now, late, now_wall = pair
    late.memories.add("v1 from the late clock", id="r")
    now.memories.add("v2 from the current clock", id="r")
    now_wall.offset_ms = -10_000  # this host's clock now falls behind the other's
    # The clock never goes back: the next stamp still follows v2's, so v3 wins.
    now.memories.add("v3 after the wall clock fell back", id="r")
    got = now.memories.get("r")
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
