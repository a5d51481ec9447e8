"""Hybrid logical clock: monotonic per node, merges remote stamps, encodings sort like stamps."""

from __future__ import annotations

import re
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rmem._errors import ValidationError
from rmem._hlc import (
    MAX_COUNTER,
    MAX_WALL_MS,
    STAMP_LEN,
    ZERO,
    ZERO_STAMP,
    Clock,
    Stamp,
    new_node_id,
    parse_stamp,
    too_far_ahead,
)

HEX = "0123456789abcdef"
NODE_A = "0" * 15 + "a"
NODE_B = "0" * 15 + "b"
SAMPLE = "018f3c2a9b10-000000-9f86d081884c7d65"

nodes = st.text(alphabet=HEX, min_size=16, max_size=16)
# Small ranges make equal walls, equal counters and shared nodes common, which is where
# ordering and merge bugs hide; the full range covers the width of every field.
few_nodes = st.sampled_from([NODE_A, NODE_B, "f" * 16])
stamps = st.one_of(
    st.builds(Stamp, st.integers(0, MAX_WALL_MS), st.integers(0, MAX_COUNTER), nodes),
    st.builds(Stamp, st.integers(0, 3), st.integers(0, 3), few_nodes),
)
# Remote stamps stop one millisecond short of the end so a run can never exhaust the clock;
# exhaustion has its own test.
remote_stamps = st.one_of(
    st.builds(Stamp, st.integers(0, 40), st.integers(0, MAX_COUNTER), few_nodes),
    st.builds(Stamp, st.integers(0, MAX_WALL_MS - 1), st.integers(0, MAX_COUNTER), nodes),
)
readings = st.one_of(st.integers(0, 40), st.integers(0, MAX_WALL_MS))
events = st.lists(st.tuples(readings, st.one_of(st.none(), remote_stamps)), min_size=1, max_size=60)


class FakeWall:
    """A wall clock the test sets by hand."""

    def __init__(self, ms: int = 0) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


# --- the clock -------------------------------------------------------------------------------


@given(events)
def test_stamps_strictly_increase_whatever_the_wall_clock_does(
    steps: list[tuple[int, Stamp | None]],
) -> None:
    wall = FakeWall()
    clock = Clock(NODE_A, wall=wall)
    previous = ZERO_STAMP
    for reading, remote in steps:
        wall.ms = reading
        stamp = clock.now() if remote is None else clock.observe(remote)
        assert stamp > previous
        assert stamp.encode() > previous.encode()
        assert stamp.node == NODE_A
        assert stamp.wall_ms >= reading  # logical time never lags physical time
        if remote is not None:
            assert stamp > remote
            assert stamp.encode() > remote.encode()
        newest_seen = max(previous.wall_ms, remote.wall_ms if remote else 0)
        if reading > newest_seen:
            # Physical time is ahead of everything seen: the clock follows it exactly.
            assert (stamp.wall_ms, stamp.counter) == (reading, 0)
        assert clock.last == stamp
        previous = stamp


@given(st.lists(stamps, max_size=5), remote_stamps, readings)
def test_observe_is_above_remote_and_previous_local(
    before: list[Stamp], remote: Stamp, reading: int
) -> None:
    wall = FakeWall(reading)
    clock = Clock(NODE_B, wall=wall)
    for s in before:
        if s.wall_ms < MAX_WALL_MS:
            clock.observe(s)
    local = clock.last
    merged = clock.observe(remote)
    assert merged > remote
    if local is not None:
        assert merged > local
    # No bigger jump than needed: the merge lands on the newest of the three times (or one
    # millisecond past it when the counter overflowed).
    newest = max(reading, remote.wall_ms, local.wall_ms if local else 0)
    assert merged.wall_ms in (newest, newest + 1)


def test_first_stamp_is_above_zero_even_at_wall_time_zero() -> None:
    clock = Clock(NODE_A, wall=FakeWall(0))
    assert clock.last is None
    first = clock.now()
    assert first > ZERO_STAMP
    assert first == Stamp(0, 1, NODE_A)
    assert clock.last == first


def test_same_millisecond_counts_up_and_new_millisecond_resets() -> None:
    wall = FakeWall(1000)
    clock = Clock(NODE_A, wall=wall)
    assert [clock.now().counter for _ in range(3)] == [0, 1, 2]
    wall.ms = 999  # a step backwards keeps counting on the logical time
    assert clock.now() == Stamp(1000, 3, NODE_A)
    wall.ms = 1001
    assert clock.now() == Stamp(1001, 0, NODE_A)


def test_counter_overflow_borrows_a_millisecond() -> None:
    wall = FakeWall(1000)
    clock = Clock(NODE_A, wall=wall)
    clock.observe(Stamp(1000, MAX_COUNTER - 2, NODE_B))
    assert clock.last == Stamp(1000, MAX_COUNTER - 1, NODE_A)
    assert clock.now() == Stamp(1000, MAX_COUNTER, NODE_A)
    after = clock.now()
    assert after == Stamp(1001, 0, NODE_A)
    assert len(after.encode()) == STAMP_LEN
    assert clock.now() == Stamp(1001, 1, NODE_A)  # wall still reads 1000


def test_observe_overflow_on_remote_counter() -> None:
    clock = Clock(NODE_A, wall=FakeWall(5))
    remote = Stamp(1000, MAX_COUNTER, NODE_B)
    merged = clock.observe(remote)
    assert merged == Stamp(1001, 0, NODE_A)
    assert merged > remote


def test_exhausted_clock_refuses_instead_of_going_backwards() -> None:
    clock = Clock(NODE_A, wall=FakeWall(1000))
    before = clock.now()
    with pytest.raises(ValidationError, match="exhausted"):
        clock.observe(Stamp(MAX_WALL_MS, MAX_COUNTER, NODE_B))
    assert clock.last == before


def test_wall_reading_beyond_the_encodable_range_is_refused() -> None:
    clock = Clock(NODE_A, wall=FakeWall(MAX_WALL_MS + 1))
    with pytest.raises(ValidationError, match="wall clock"):
        clock.now()
    assert clock.last is None


def test_wall_clock_far_behind_a_received_stamp() -> None:
    wall = FakeWall(1_000)
    clock = Clock(NODE_A, wall=wall)
    ahead = Stamp(1_000_000_000, 7, NODE_B)
    issued = [clock.observe(ahead)] + [clock.now() for _ in range(100)]
    assert issued == sorted(issued)
    assert len(set(issued)) == len(issued)
    assert issued[0] == Stamp(ahead.wall_ms, 8, NODE_A)
    assert issued[-1] == Stamp(ahead.wall_ms, 108, NODE_A)
    wall.ms = ahead.wall_ms + 1  # once physical time catches up the clock follows it again
    assert clock.now() == Stamp(ahead.wall_ms + 1, 0, NODE_A)


@pytest.mark.parametrize("frozen", [True, False], ids=["frozen-wall", "system-wall"])
def test_threads_sharing_a_clock_never_get_the_same_stamp(frozen: bool) -> None:
    clock = Clock(NODE_A, wall=FakeWall(1000) if frozen else None)
    out: list[list[Stamp]] = [[] for _ in range(8)]
    start = threading.Barrier(len(out))

    def issue(slot: list[Stamp]) -> None:
        start.wait()
        slot.extend(clock.now() for _ in range(3000))

    threads = [threading.Thread(target=issue, args=(o,)) for o in out]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [s for o in out for s in o]
    assert len(set(everything)) == len(everything) == 8 * 3000
    assert all(o == sorted(o) for o in out)
    assert clock.last == max(everything)


def test_system_wall_clock_is_used_by_default() -> None:
    before = time.time_ns() // 1_000_000
    stamp = Clock().now()
    after = time.time_ns() // 1_000_000
    assert before <= stamp.wall_ms <= after


# --- node ids ----------------------------------------------------------------------------------


def test_node_ids_are_random_lowercase_hex() -> None:
    ids = {new_node_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids)
    assert re.fullmatch(r"[0-9a-f]{16}", Clock().node)
    assert Clock(NODE_B).node == NODE_B


@pytest.mark.parametrize("node", ["", "abc", "0" * 17, "A" * 16, "g" * 16, " " + "0" * 15])
def test_malformed_node_id_is_refused(node: str) -> None:
    with pytest.raises(ValidationError, match="node id"):
        Clock(node)
    with pytest.raises(ValidationError, match="node id"):
        Stamp(0, 0, node)


# --- order and encoding ------------------------------------------------------------------------


def test_equal_wall_and_counter_are_ordered_by_node() -> None:
    a, b = Stamp(5, 3, NODE_A), Stamp(5, 3, NODE_B)
    assert a < b
    assert a != b
    assert a.encode() < b.encode()
    # The node decides only on a tie: an earlier counter wins over a larger node id.
    assert Stamp(5, 2, NODE_B) < a


@given(stamps, stamps)
def test_encoding_order_is_stamp_order(a: Stamp, b: Stamp) -> None:
    ea, eb = a.encode(), b.encode()
    assert (a < b) == (ea < eb)
    assert (a == b) == (ea == eb)
    # Redis hands Lua the bytes; they must compare the same way.
    assert (a < b) == (ea.encode() < eb.encode())


@given(st.lists(stamps, max_size=40))
def test_sorting_stamps_equals_sorting_encodings(items: list[Stamp]) -> None:
    assert [s.encode() for s in sorted(items)] == sorted(s.encode() for s in items)


@given(stamps)
def test_encode_parse_round_trip(stamp: Stamp) -> None:
    text = stamp.encode()
    assert len(text) == STAMP_LEN
    assert parse_stamp(text) == stamp
    assert parse_stamp(text.encode("ascii")) == stamp
    # What the Lua scripts do to read the wall time: tonumber(string.sub(s, 1, 12), 16).
    assert int(text[:12], 16) == stamp.wall_ms


@given(stamps)
def test_zero_sorts_before_every_other_stamp(stamp: Stamp) -> None:
    assert stamp >= ZERO_STAMP
    assert stamp.encode() >= ZERO
    assert (stamp == ZERO_STAMP) == (stamp.encode() == ZERO)


def test_zero_and_sample_encodings() -> None:
    assert len(SAMPLE) == STAMP_LEN
    assert ZERO == "000000000000-000000-0000000000000000"
    assert parse_stamp(ZERO) == ZERO_STAMP
    assert parse_stamp(SAMPLE) == Stamp(0x018F3C2A9B10, 0, "9f86d081884c7d65")


@pytest.mark.parametrize(
    "text",
    [
        "",
        SAMPLE[:-1],
        SAMPLE + "0",
        SAMPLE + "\n",
        "018F3C2A9B10-000000-9f86d081884c7d65",
        "018f3c2a9b10-000000-9F86D081884C7D65",
        "018f3c2a9b1g-000000-9f86d081884c7d65",
        "018f3c2a9b10_000000-9f86d081884c7d65",
        "018f3c2a9b10-000000:9f86d081884c7d65",
        "018f3c2a9b1-0000000-9f86d081884c7d65",
        "018f3c2a9b10-00000-09f86d081884c7d65",
        "+18f3c2a9b10-000000-9f86d081884c7d65",
        " 18f3c2a9b10-000000-9f86d081884c7d65",
        "\u0661" + SAMPLE[1:],  # a non-ASCII digit that int() would accept
        SAMPLE.encode().upper(),
        b"\xff" * STAMP_LEN,
    ],
)
def test_malformed_text_is_refused(text: str | bytes) -> None:
    with pytest.raises(ValidationError, match="malformed clock stamp"):
        parse_stamp(text)


def test_non_text_is_refused() -> None:
    with pytest.raises(ValidationError, match="str or bytes"):
        parse_stamp(12345)  # type: ignore[arg-type]


@given(stamps, st.integers(0, STAMP_LEN - 1), st.characters())
def test_any_one_character_change_is_refused_or_still_canonical(
    stamp: Stamp, position: int, char: str
) -> None:
    text = stamp.encode()
    changed = text[:position] + char + text[position + 1 :]
    try:
        parsed = parse_stamp(changed)
    except ValidationError:
        return
    # Only a lowercase hex digit in a hex field gets through, and then the text is canonical.
    assert char in HEX
    assert parsed.encode() == changed


@pytest.mark.parametrize(
    ("wall_ms", "counter"),
    [(-1, 0), (MAX_WALL_MS + 1, 0), (0, -1), (0, MAX_COUNTER + 1), (1.0, 0), (0, True)],
)
def test_stamp_fields_out_of_range_are_refused(wall_ms: int, counter: int) -> None:
    with pytest.raises(ValidationError, match="out of range"):
        Stamp(wall_ms, counter, NODE_A)


# --- future bound ------------------------------------------------------------------------------


def test_too_far_ahead() -> None:
    stamp = Stamp(2000, 0, NODE_A)
    assert not too_far_ahead(stamp, now_ms=1000, bound_ms=1000)
    assert too_far_ahead(stamp, now_ms=1000, bound_ms=999)
    assert not too_far_ahead(stamp, now_ms=5000, bound_ms=0)  # the past is never too far
    assert not too_far_ahead(stamp, now_ms=2000, bound_ms=0)
    with pytest.raises(ValidationError, match="negative"):
        too_far_ahead(stamp, now_ms=1000, bound_ms=-1)
