"""Message ids: unique, time-ordered, ordered within a process even in one millisecond."""

from __future__ import annotations

import threading
import uuid

from rmem._ids import new_id


def test_ids_are_uuid7_strings() -> None:
    value = uuid.UUID(new_id())
    assert value.version == 7
    assert value.variant == uuid.RFC_4122


def test_ids_sort_in_creation_order() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_ids_unique_across_threads() -> None:
    out: list[list[str]] = [[] for _ in range(8)]

    def make(slot: list[str]) -> None:
        slot.extend(new_id() for _ in range(5000))

    threads = [threading.Thread(target=make, args=(o,)) for o in out]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [i for o in out for i in o]
    assert len(set(everything)) == len(everything)
    assert all(o == sorted(o) for o in out)
