"""Bad input everywhere, memories: every call succeeds or raises ValidationError.

A refused call changes nothing (the record and the count stay as they were); an accepted one
reads back what was written. Runs on RediSearch (sync API) and on the in-process engine
(async API), so both engines and both APIs meet every strategy.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rmem
from tests._fuzz import (
    MAX_TTL,
    Opaque,
    any_text,
    bad_values,
    cases,
    clean_text,
    encodable,
    frozen,
    fuzz_settings,
    is_plain,
    json_values,
    junk,
    plain,
    same,
    valid_id,
    valid_ttl,
)
from tests.conftest import Api

DIM = 3
MAX_BYTES = 2048
FIELDS = ("kind", "n")
_CONTROL = "".join(map(chr, [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]))


@pytest.fixture(params=[("redisearch", "sync"), ("local", "async")], ids=lambda p: "-".join(p))
def mem(request: pytest.FixtureRequest, redis_url: str, namespace: str) -> Iterator[Any]:
    engine, flavour = request.param
    api = Api(flavour, redis_url, namespace, search_engine=engine)
    yield api.client(vector_dim=DIM, memory_fields=FIELDS, max_message_bytes=MAX_BYTES).memories
    api.close()


# ---------------------------------------------------------------- strategies and oracles


def sized(n: int) -> str:
    """A text of ``n`` UTF-8 bytes."""
    return "é" * (n // 2) + "x" * (n % 2)


good_texts = st.text(min_size=1, max_size=20).filter(lambda t: t.strip() != "") | st.integers(
    MAX_BYTES - 4, MAX_BYTES
).map(sized)
texts = good_texts | any_text | junk | st.integers(MAX_BYTES - 3, MAX_BYTES + 3).map(sized)
good_ids = st.none() | st.sampled_from(["a", "b", "c", "é 😀", "x" * 256])
record_ids = good_ids | any_text | junk
good_tags = st.none() | st.lists(st.sampled_from(["t1", "t2", "t 3", "é", "a:b", "-x"]), max_size=4)
tag_lists = (
    good_tags
    | st.lists(any_text, max_size=4)
    | st.just([f"t{i}" for i in range(65)])
    | st.just(["x" * 257])
    | junk
)
good_metadata = st.none() | st.dictionaries(
    clean_text | st.sampled_from(FIELDS), json_values, max_size=3
)
metadatas = (
    good_metadata | st.just({"big": "x" * MAX_BYTES}) | bad_values.map(lambda v: {"k": v}) | junk
)
numbers = st.floats(width=32) | st.integers(-(2**31), 2**31) | st.sampled_from([1e39, math.nan])
good_vectors = st.none() | st.lists(st.floats(-1e6, 1e6, width=32), min_size=DIM, max_size=DIM)
vectors = st.one_of(
    good_vectors,
    st.lists(numbers, min_size=2, max_size=4),
    st.lists(numbers, min_size=DIM, max_size=DIM).map(np.array),
    st.lists(numbers, min_size=DIM, max_size=DIM).map(tuple),
    st.sampled_from([["1", 2, 3], [True, False, True], [1j, 2, 3], [[1, 2, 3]], [None, 1, 2]]),
    junk,
)
good_ttls = st.none() | st.floats(60, MAX_TTL) | st.floats(1e-3, 59)
ttls = good_ttls | st.floats() | junk
good_modes = st.sampled_from(["vector", "text", "hybrid"])
modes = good_modes | junk
good_wheres = st.none() | st.dictionaries(
    st.sampled_from(FIELDS), st.sampled_from(["x", "y", 1, 2.5, True, "é:-@"]), max_size=2
)
wheres = (
    good_wheres
    | st.dictionaries(st.sampled_from([*FIELDS, "undeclared", 1]), junk, min_size=1, max_size=2)
    | junk
)
good_times = st.none() | st.floats(-1e12, 1e12) | st.datetimes(timezones=st.just(UTC))
times = good_times | st.floats() | st.sampled_from([datetime.min, datetime.max]) | junk


def valid_text(text: Any) -> bool:
    return (
        isinstance(text, str)
        and text.strip() != ""
        and encodable(text)
        and len(text.encode("utf-8")) <= MAX_BYTES
    )


def valid_tags(tags: Any) -> list[str] | None:
    """The tags as stored (deduplicated), or None when refused."""
    if tags is None:
        return []
    if isinstance(tags, str | bytes) or not isinstance(tags, Iterable):
        return None
    out: list[str] = []
    for tag in tags:
        ok = isinstance(tag, str) and 1 <= len(tag) <= 256 and encodable(tag)
        if not ok or any(c in _CONTROL for c in tag):
            return None
        if tag not in out:
            out.append(tag)
    return out if len(out) <= 64 else None


def valid_metadata(metadata: Any) -> bool:
    if metadata is None:
        return True
    if not isinstance(metadata, Mapping) or not is_plain(dict(metadata)):
        return False
    return len(msgpack.packb(dict(metadata))) <= MAX_BYTES


def valid_vector(vector: Any) -> bool:
    if isinstance(vector, np.ndarray):
        items = vector.tolist()
    elif isinstance(vector, list | tuple):
        items = list(vector)
    else:
        return False
    if len(items) != DIM or not all(
        isinstance(x, int | float) and not isinstance(x, bool) for x in items
    ):
        return False
    with np.errstate(over="ignore"):
        array = np.asarray(items, dtype=np.float64).astype(np.float32)
    return bool(np.isfinite(array).all() and array.any())


def valid_where(where: Any) -> dict[str, Any] | None:
    if where is None:
        return {}
    if not isinstance(where, Mapping):
        return None
    for name, value in where.items():
        if name not in FIELDS:
            return None
        if isinstance(value, str):
            if not value or not encodable(value):
                return None
        elif not isinstance(value, int | float) or (
            not isinstance(value, bool) and not math.isfinite(value)
        ):
            return None
    return dict(where)


def valid_time(value: Any) -> bool | None:
    """Whether ``since``/``until`` must be accepted; None for naive extremes (either)."""
    if isinstance(value, datetime):
        return True if value.tzinfo is not None else None
    if value is None:
        return True
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and math.isfinite(value * 1000)


def snapshot(m: Any, rid: Any) -> bytes:
    record = m.get(rid) if valid_id(rid) else None
    return frozen([m.count(), None if record is None else record.model_dump()])


# ---------------------------------------------------------------- writes


def test_add(mem: Any) -> None:
    @fuzz_settings(150)
    @given(
        cases(
            text=(good_texts, texts),
            id=(good_ids, record_ids),
            tags=(good_tags, tag_lists),
            metadata=(good_metadata, metadatas),
            vector=(good_vectors, vectors),
            ttl=(good_ttls, ttls),
        )
    )
    def run(args: dict[str, Any]) -> None:
        text, rid, tags, vector, ttl = (args[k] for k in ("text", "id", "tags", "vector", "ttl"))
        stored_tags = valid_tags(tags)
        ok = (
            valid_text(text)
            and (rid is None or valid_id(rid))
            and stored_tags is not None
            and valid_metadata(args["metadata"])
            and (vector is None or valid_vector(vector))
            and valid_ttl(ttl)
        )
        before = snapshot(mem, rid)
        try:
            record = mem.add(**args)
        except rmem.ValidationError:
            assert not ok, args
            assert snapshot(mem, rid) == before
            return
        assert ok, args
        if ttl is not None and ttl < 60:
            mem.delete(record.id)  # would expire between the snapshots of later examples
            return
        back = mem.get(record.id)
        assert back is not None
        assert (back.text, back.tags) == (text, stored_tags)
        assert same(back.metadata, plain(dict(args["metadata"] or {})))
        want = None if vector is None else np.asarray(vector, np.float32).tolist()
        assert back.vector == want
        assert (back.expires_at is None) == (ttl is None)

    run()


def test_add_many_is_all_or_nothing(mem: Any) -> None:
    mem.add("kept", id="a")
    items = texts | st.builds(dict, text=texts, tags=tag_lists)
    last = st.sampled_from([{"text": "fine"}, {"text": "x", "bogus": 1}, {1: "x"}, b"x"])

    @fuzz_settings(60)
    @given(st.lists(good_texts, max_size=2), st.lists(items, max_size=1), last)
    def run(good: list[str], other: list[Any], final: Any) -> None:
        batch = [*good, *other, final]
        ok = final == {"text": "fine"} and all(
            set(i) <= {"text", "tags"}
            and valid_text(i.get("text"))
            and valid_tags(i.get("tags")) is not None
            if isinstance(i, dict)
            else valid_text(i)
            for i in batch
        )
        before = snapshot(mem, "a")
        count = mem.count()
        try:
            records = mem.add_many(batch)
        except rmem.ValidationError:
            assert not ok, batch
            assert snapshot(mem, "a") == before
            return
        assert ok, batch
        assert mem.count() == count + len(batch)
        for record in records:
            mem.delete(record.id)

    run()


UNSET: Any = object()


def test_update(mem: Any) -> None:
    mem.add("the original", id="a", tags=["t1"], metadata={"kind": "x"}, vector=[1, 0, 0])
    maybe = st.just(UNSET)

    @fuzz_settings(100)
    @given(
        cases(
            text=(maybe | good_texts, texts),
            tags=(maybe | good_tags, tag_lists),
            metadata=(maybe | good_metadata, metadatas),
            vector=(maybe | good_vectors.filter(bool), vectors),
        )
    )
    def run(args: dict[str, Any]) -> None:
        given_ = {k: v for k, v in args.items() if v is not UNSET}
        text, tags, metadata, vector = (args[k] for k in ("text", "tags", "metadata", "vector"))
        ok = (
            bool(given_)
            and (text is UNSET or valid_text(text))
            and (tags is UNSET or valid_tags(tags) is not None)
            and (metadata is UNSET or valid_metadata(metadata))
            and (vector is UNSET or valid_vector(vector))
        )
        before = snapshot(mem, "a")
        try:
            record = mem.update("a", **given_)
        except rmem.ValidationError:
            assert not ok, given_
            assert snapshot(mem, "a") == before
            return
        assert ok, given_
        back = mem.get("a")
        assert back is not None and frozen(back.model_dump()) == frozen(record.model_dump())
        if text is not UNSET:
            assert back.text == text
        if tags is not UNSET:
            assert back.tags == valid_tags(tags)
        if metadata is not UNSET:
            assert same(back.metadata, plain(dict(metadata or {})))
        if vector is not UNSET:
            assert back.vector == np.asarray(vector, np.float32).tolist()

    run()


def test_record_ids_and_flags(mem: Any) -> None:
    mem.add("present", id="a")

    @fuzz_settings(60)
    @given(record_ids, st.booleans() | junk)
    def run(rid: Any, flag: Any) -> None:
        before = snapshot(mem, "a")
        try:
            got = mem.get(rid)
        except rmem.ValidationError:
            assert not valid_id(rid)
            with pytest.raises(rmem.ValidationError):
                mem.delete(rid)
            assert snapshot(mem, "a") == before
        else:
            assert valid_id(rid)
            assert (got is not None) == (rid == "a")
        try:
            mem.add("x", id="fresh", dedupe=flag)
        except rmem.ValidationError:
            assert not isinstance(flag, bool)
        else:
            assert isinstance(flag, bool)
            assert mem.delete("fresh") is True
        if flag is not True:  # False: no filter given; anything else: not a flag
            with pytest.raises(rmem.ValidationError):
                mem.forget(all=flag)
        assert snapshot(mem, "a") == before

    run()


# ---------------------------------------------------------------- search and forget


def test_search_arguments(mem: Any) -> None:
    mem.add_many(
        [
            {"text": "alpha beta", "tags": ["t1"], "metadata": {"kind": "x"}, "vector": [1, 0, 0]},
            {"text": "alpha gamma", "tags": ["t2"], "metadata": {"n": 1}, "vector": [0, 1, 0]},
            {"text": "delta é 😀", "tags": ["t 3"], "vector": [0, 0, 1]},
        ]
    )
    queries = st.none() | st.sampled_from(["alpha", "é", "alpha beta", "-x", "@", "😀", " "])

    @fuzz_settings(150)
    @given(
        cases(
            query=(queries, queries | any_text | junk),
            vector=(good_vectors, vectors),
            k=(st.integers(1, 1000), st.integers(-2, 1002) | junk),
            mode=(good_modes, modes),
            tags=(good_tags, tag_lists),
        )
    )
    def run(args: dict[str, Any]) -> None:
        check(**args, where=None, since=None, until=None)

    @fuzz_settings(100)
    @given(
        cases(
            query=(queries, queries),
            where=(good_wheres, wheres),
            since=(good_times, times),
            until=(good_times, times),
            mode=(good_modes, modes),
        )
    )
    def filters(args: dict[str, Any]) -> None:
        check(**args, vector=[1, 1, 1], k=5, tags=None)

    def check(**args: Any) -> None:
        query, vector, k, mode = (args[n] for n in ("query", "vector", "k", "mode"))
        wanted_tags = None if args["tags"] is None else valid_tags(args["tags"])
        conditions = valid_where(args["where"])
        use_vector = vector is not None and mode != "text"
        times_ok = [valid_time(args["since"]), valid_time(args["until"])]
        ok = (
            isinstance(k, int)
            and not isinstance(k, bool)
            and 1 <= k <= 1000
            and isinstance(mode, str)
            and mode in ("vector", "text", "hybrid")
            and (query is None or (isinstance(query, str) and encodable(query)))
            and (args["tags"] is None or wanted_tags is not None)
            and conditions is not None
            and False not in times_ok
            and (not use_vector or valid_vector(vector))
            and (mode != "vector" or use_vector)
            and (mode != "text" or bool(query))
            and (mode != "hybrid" or use_vector or bool(query))
        )
        decided = not ok or None not in times_ok
        try:
            hits = mem.search(**args)
        except rmem.ValidationError:
            assert not ok or not decided, args
            return
        assert ok or not decided, args
        assert len(hits) <= k
        for hit in hits:
            assert isinstance(hit, rmem.SearchHit) and math.isfinite(hit.score)
            if wanted_tags:
                assert set(hit.record.tags) & set(wanted_tags)
            for name, value in (conditions or {}).items():
                assert hit.record.metadata.get(name) == value

    run()
    filters()


def test_forget_arguments(mem: Any) -> None:
    counter = itertools.count()

    @fuzz_settings(50)
    @given(
        cases(
            tags=(good_tags, tag_lists),
            where=(good_wheres, wheres),
            all=(st.booleans(), st.booleans() | junk),
        )
    )
    def run(args: dict[str, Any]) -> None:
        mem.add(f"keep {next(counter)}", tags=["t1"], metadata={"kind": "x"})
        before = mem.count()
        wanted = None if args["tags"] is None else valid_tags(args["tags"])
        conditions = valid_where(args["where"])
        filtered = bool(wanted) or bool(conditions)
        everything = args["all"]
        ok = (
            (args["tags"] is None or wanted is not None)
            and conditions is not None
            and isinstance(everything, bool)
            and (filtered or everything)
            and not (everything and filtered)
        )
        try:
            gone = mem.forget(**args)
        except rmem.ValidationError:
            assert not ok, args
            assert mem.count() == before
            return
        assert ok, args
        assert 0 <= gone <= before
        assert mem.count() == before - gone

    run()


def test_opaque_objects_everywhere(mem: Any) -> None:
    before = mem.count()
    for call in (
        lambda: mem.add(Opaque()),
        lambda: mem.add("x", tags=Opaque()),
        lambda: mem.add("x", metadata=Opaque()),
        lambda: mem.add("x", vector=Opaque()),
        lambda: mem.add("x", ttl=Opaque()),
        lambda: mem.add_many(Opaque()),
        lambda: mem.add_many([Opaque()]),
        lambda: mem.search(Opaque()),
        lambda: mem.search("x", k=Opaque()),
        lambda: mem.search("x", since=Opaque()),
        lambda: mem.update("a", text=Opaque()),
    ):
        with pytest.raises(rmem.ValidationError):
            call()
    assert mem.count() == before
