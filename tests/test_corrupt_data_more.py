"""More damage written by something else into rmem's keys (docs/decisions.md, 23).

- The memory scripts refuse to write over a record hash whose stamp or times are not rmem's
  (``RMEM_CORRUPT`` from Lua, ``CorruptDataError`` naming the key, nothing written), while
  ``delete`` removes such a hash: deleting is how a damaged record is healed.
"""

from __future__ import annotations

from typing import Any

import pytest

import rmem
from rmem._keys import memory_key, memory_keys
from tests.conftest import Api

LOCAL_BACKEND = True  # the api tests also run on memory:// (the scripts on fakeredis)


# ---------------------------------------------------------------- the memory scripts

BAD = "bad id with spaces"  # the error names the key, spaces and all


def _memories(api: Api) -> tuple[Any, Any, str]:
    m = api.client(sync=False).memories
    m.add("bad", id=BAD)
    m.add("good", id="good")
    return m, api.raw(), memory_key(api.namespace, BAD)


HEALABLE: dict[str, tuple[str, bytes | None]] = {
    "stamp is missing": ("stamp", None),
    "stamp is not a stamp": ("stamp", b"zzzz"),
    "stamp is not UTF-8": ("stamp", b"\xff\xfe"),
    "created is not a number": ("created", b"yesterday"),
    "updated is not a number": ("updated", b"later"),
}


@pytest.mark.parametrize("broken", HEALABLE.values(), ids=HEALABLE.keys())
def test_writes_refuse_a_damaged_record_and_delete_heals_it(
    api: Api, broken: tuple[str, bytes | None]
) -> None:
    m, raw, key = _memories(api)
    field, value = broken
    if value is None:
        raw.hdel(key, field)
    else:
        raw.hset(key, field, value)
    before = raw.hgetall(key)
    for write in (
        lambda: m.add("again", id=BAD),
        lambda: m.add_many([{"text": "new", "id": "new"}, {"text": "again", "id": BAD}]),
        lambda: m.update(BAD, text="again"),
    ):
        with pytest.raises(rmem.CorruptDataError, match=field) as info:
            write()
        assert info.value.key == key
        assert key in str(info.value)
        assert info.value.namespace == api.namespace
    assert raw.hgetall(key) == before  # nothing written
    assert m.get("new") is None  # the whole batch was refused
    assert m.get("good") is not None

    assert m.delete(BAD) is True  # the way to heal a damaged record
    assert raw.exists(key) == 0
    assert m.get(BAD) is None
    assert m.count() == 1
    assert m.add("again", id=BAD).text == "again"
    assert m.get(BAD) is not None
    raw.close()


def test_a_damaged_tombstone_is_named_and_healed_by_delete(api: Api) -> None:
    m, raw, _ = _memories(api)
    m.delete(BAD)
    tombs = memory_keys(api.namespace).tombs
    raw.hset(tombs, BAD, b"zzzz")  # would win against every real stamp
    with pytest.raises(rmem.CorruptDataError, match=BAD) as info:
        m.add("again", id=BAD)
    assert info.value.key == tombs
    assert m.delete(BAD) is False  # nothing live to delete, but the tombstone is rmem's again
    assert m.add("again", id=BAD).text == "again"
    raw.close()


def test_a_damaged_revision_is_named_and_nothing_is_written(api: Api) -> None:
    m, raw, _ = _memories(api)
    meta = memory_keys(api.namespace).meta
    raw.hset(meta, "rev", b"lots")
    for call in (
        lambda: m.add("new", id="new"),
        lambda: m.update("good", text="changed"),
        lambda: m.delete("good"),
        m.count,
    ):
        with pytest.raises(rmem.CorruptDataError, match="rev") as info:
            call()
        assert info.value.key == meta
    assert raw.exists(memory_key(api.namespace, "new")) == 0
    assert m.get("good") is not None and m.get("good").text == "good"
    raw.hdel(meta, "rev")  # the repair: the revision starts again
    assert m.count() == 2
    m.add("new", id="new")
    assert m.count() == 3
    raw.close()
