"""Message ids: unique, time-ordered, ordered within a process even in one millisecond."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable

import pytest

from rmem._ids import new_id, new_ids


def test_ids_are_uuid7_strings() -> None:
    value = uuid.UUID(new_id())
    assert value.version == 7
    assert value.variant == uuid.RFC_4122


def test_ids_sort_in_creation_order() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_ids_unique_across_threads() -> None:
    def make(slot: list[str]) -> None:
        slot.extend(new_id() for _ in range(5000))

    _check_ids_made_by_threads(make)


def _layout_ok(value: str) -> bool:
    parsed = uuid.UUID(value)
    return (
        len(value) == 36
        and str(parsed) == value
        and parsed.version == 7
        and parsed.variant == uuid.RFC_4122
    )


def test_new_ids_are_uuid7_strings() -> None:
    ids = new_ids(50)
    assert len(ids) == 50
    assert all(_layout_ok(i) for i in ids)
    assert new_ids(0) == []
    assert new_ids(-3) == []
    assert len(new_ids(1)) == 1


def test_new_ids_sort_in_creation_order_with_new_id() -> None:
    made: list[str] = []
    for n in range(3000):
        made.extend(new_ids(n % 7))
        made.append(new_id())
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert all(_layout_ok(i) for i in made[::97])


def test_new_ids_run_into_the_next_millisecond_in_order() -> None:
    # More ids than the 12-bit sequence holds: the count goes on in the next millisecond(s).
    before = new_id()
    ids = new_ids(10_000)
    after = new_id()
    everything = [before, *ids, after]
    assert everything == sorted(everything)
    assert len(set(everything)) == len(everything)
    assert all(_layout_ok(i) for i in ids)
    # Stamps are consecutive: each id is the previous (ms, seq) plus one.
    stamps = [(int(i[:8] + i[9:13], 16), int(i[15:18], 16)) for i in ids]
    for (ms_a, seq_a), (ms_b, seq_b) in itertools.pairwise(stamps):
        assert (ms_b, seq_b) == ((ms_a, seq_a + 1) if seq_a < 0xFFF else (ms_a + 1, 0))


def test_new_ids_when_the_clock_steps_back(monkeypatch: pytest.MonkeyPatch) -> None:
    first = new_ids(3)
    real = time.time_ns()
    monkeypatch.setattr(time, "time_ns", lambda: real - 5_000_000_000)  # 5 s earlier
    later = [*new_ids(4), new_id(), *new_ids(2)]
    assert first + later == sorted(first + later)
    assert len(set(first + later)) == 10


def test_new_ids_unique_and_ordered_across_threads() -> None:
    def make(slot: list[str]) -> None:
        for n in range(800):
            slot.extend(new_ids(n % 12))
            slot.append(new_id())

    _check_ids_made_by_threads(make)


def _check_ids_made_by_threads(make: Callable[[list[str]], None]) -> None:
    # 8 threads each fill a list with make: every id unique, each thread's ids in order.
    out: list[list[str]] = [[] for _ in range(8)]
    threads = [threading.Thread(target=make, args=(o,)) for o in out]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [i for o in out for i in o]
    assert len(set(everything)) == len(everything)
    assert all(o == sorted(o) for o in out)
