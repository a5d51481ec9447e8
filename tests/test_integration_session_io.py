"""rmem.integrations._session_io: the session adapters' storage below rmem's public API.

The LangChain and OpenAI Agents adapters write and read through this module instead of
``Session.extend`` and ``Session.messages``; these tests hold it to what those two do: the same
values accepted and refused with the same errors, the same bytes stored, the same messages and
damage reports read back, the same single round trip, and the same sliding-TTL touch.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

import rmem
from rmem._codec import unpack
from rmem._errors import CorruptDataError, ValidationError
from rmem._session_core import append_args, decode_members, prepare_batch
from rmem._validate import MAX_DEPTH, check_plain
from rmem.integrations._json import check_json
from rmem.integrations._session_io import (
    StoredForms,
    aextend_encoded,
    aread_stored,
    decode_stored,
    encode,
    extend_encoded,
    read_forms,
    read_stored,
    replica_messages,
)

SETTINGS = rmem.Settings(max_message_bytes=4096)
LIMITS = (SETTINGS.max_message_bytes, SETTINGS.compress_threshold)


class Weird:
    """Not a JSON type."""


class Text(str):
    """A str subclass: rmem's check accepts it, and msgpack stores it as a str."""


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
)
odd_scalars = (
    st.binary(max_size=4)
    | st.builds(Weird)
    | st.frozensets(st.integers(), max_size=2)
    | st.integers(min_value=2**64, max_value=2**70)
    | st.builds(Text, st.text(max_size=5))
    | st.just(math.nan)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
any_values = st.recursive(
    json_scalars | odd_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner)
        | st.dictionaries(st.text(max_size=6) | st.integers(0, 3), inner, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.text(min_size=1, max_size=8).filter(lambda k: k not in ("id", "created_at"))


@st.composite
def message_fields(draw: st.DrawFn, values: st.SearchStrategy[Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {"role": draw(st.sampled_from(["user", "assistant", " ", "tool"]))}
    if draw(st.booleans()):
        fields["content"] = draw(values | st.text(max_size=40))
    if draw(st.booleans()):
        fields["name"] = draw(st.none() | st.text(max_size=5) | st.integers(0, 2))
    if draw(st.booleans()):
        fields["metadata"] = draw(
            st.none() | st.dictionaries(st.text(max_size=5), values, max_size=3) | values
        )
    fields.update(draw(st.dictionaries(field_names, values, max_size=4)))
    return fields


def core_outcome(fields: dict[str, Any]) -> tuple[str, Any]:
    """What ``Session.extend([fields])`` does with one message, without the I/O."""
    try:
        messages, payloads = prepare_batch([dict(fields)], *LIMITS)
    except ValidationError as exc:
        return "refused", str(exc)
    return "stored", (messages[0], payloads[0])


def seam_outcome(fields: dict[str, Any]) -> tuple[str, Any]:
    try:
        message, payload = encode(dict(fields), SETTINGS, "message 0")
    except ValidationError as exc:
        return "refused", str(exc)
    return "stored", (message, payload)


def same_as_core(fields: dict[str, Any]) -> None:
    core, seam = core_outcome(fields), seam_outcome(fields)
    assert core[0] == seam[0], (fields, core, seam)
    if core[0] == "refused":
        return
    message, payload = seam[1]
    # The bytes are what rmem would store for a message with that id and time...
    twin = core_outcome({**fields, "id": message.id, "created_at": message.created_at})
    assert twin[0] == "stored"
    twin_message, twin_payload = twin[1]
    assert payload == twin_payload
    # ...and the message handed to the core is the one they decode to.
    assert message == twin_message
    assert message.to_dict() == twin_message.to_dict()
    assert message.__pydantic_fields_set__ == set(rmem.Message.model_fields)


@settings(max_examples=300, deadline=None)
@given(message_fields(json_values))
def test_encode_stores_what_extend_stores(fields: dict[str, Any]) -> None:
    same_as_core(fields)


@settings(max_examples=300, deadline=None)
@given(message_fields(any_values))
def test_encode_refuses_what_extend_refuses(fields: dict[str, Any]) -> None:
    same_as_core(fields)


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [63, 64, 65, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1])
def test_deep_values_follow_rmems_depth_limit(depth: int) -> None:
    same_as_core({"role": "user", "content": nested(depth)})
    same_as_core({"role": "user", "content": "x", "deep": nested(depth)})
    same_as_core({"role": "user", "metadata": {"deep": nested(depth)}})


def test_special_cases_match() -> None:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    for fields in (
        {"role": "user", "content": cyclic},
        {"role": "user", "content": "\ud800"},  # a lone surrogate
        {"role": "user", "content": "x" * 5000},  # over max_message_bytes
        {"role": "user", "content": "ok", "blob": b"bytes"},
        {"role": "user", "content": {1: "int key"}},
        {"role": "user", "name": Text("sub"), "content": Text("sub")},
        {"role": b"user"},
        {"role": ""},
        {"content": "no role"},
        {"role": "user", "metadata": {"k": {3, 4}}},
    ):
        same_as_core(fields)
    with pytest.raises(ValidationError, match="max_message_bytes"):
        encode({"role": "user", "content": "x" * 5000}, SETTINGS, "message 0")


# ---------------------------------------------------------------- reading


def stored_members(*fields: dict[str, Any]) -> list[bytes]:
    messages, payloads = prepare_batch([dict(f) for f in fields], *LIMITS)
    args, _ = append_args(messages, payloads, "0" * 36)
    return [a for a in args[1::2] if isinstance(a, bytes)]


@settings(max_examples=100, deadline=None)
@given(st.lists(message_fields(json_values), max_size=5))
def test_decode_stored_reads_what_decode_members_reads(fields: list[dict[str, Any]]) -> None:
    fields = [f for f in fields if core_outcome(f)[0] == "stored"]
    members = stored_members(*fields)
    messages = decode_members(members, "k")
    assert decode_stored(members, "k") == [m.to_dict() for m in messages]


@pytest.mark.parametrize(
    "member",
    [
        b"too short",
        b"0" * 42 + b"id\0",  # no payload
        b"0" * 42 + b"id\0\x01\xc1",  # not msgpack
        b"0" * 42 + b"id\0\x09\x80",  # unknown format byte
        b"0" * 42 + b"id\0\x01\x91\x01",  # not a dict
        b"0" * 42 + b"id\0\x01\x81\xa4role\x01",  # role not a str
    ],
)
def test_damaged_members_are_reported_as_decode_members_reports_them(member: bytes) -> None:
    good = stored_members({"role": "user", "content": "fine"})
    for members in ([member], [*good, member]):
        with pytest.raises(CorruptDataError) as core:
            decode_members(members, "the-key")
        with pytest.raises(CorruptDataError) as seam:
            decode_stored(members, "the-key")
        assert seam.value.key == core.value.key == "the-key"
        assert str(seam.value) == str(core.value)


def count_commands(raw: redis.Redis, call: Any) -> dict[str, int]:
    raw.config_resetstat()
    call()
    stats = raw.info("commandstats")
    return {name[len("cmdstat_") :]: int(s["calls"]) for name, s in stats.items()}


def test_a_write_and_a_read_through_are_one_script_run_each(
    redis_url: str, namespace: str, raw: redis.Redis
) -> None:
    with rmem.Client.from_url(redis_url, namespace=namespace, sync=False) as client:
        session = client.session("s", ttl=60)
        batch = [encode({"role": "user", "content": f"m{i}"}, SETTINGS, "m") for i in range(3)]
        extend_encoded(session, [m for m, _ in batch], [p for _, p in batch])
        assert [m.content for m in session.messages()] == ["m0", "m1", "m2"]
        message, payload = encode({"role": "user", "content": "m3"}, SETTINGS, "m")
        wrote = count_commands(raw, lambda: extend_encoded(session, [message], [payload]))
        assert wrote.get("evalsha") == 1
        read = count_commands(raw, lambda: read_stored(session))
        # What session.messages() sends: the range and the sliding-TTL touch, pipelined.
        assert read.get("zrange") == 1 and read.get("evalsha") == 1
        stored = read_stored(session)
        assert stored == [m.to_dict() for m in session.messages()]
        assert read_stored(session, 2) == stored[-2:]
        assert read_stored(session, 0) == []
        with pytest.raises(ValidationError):
            read_stored(session, -1)


def test_a_read_through_restarts_a_sliding_ttl(
    redis_url: str, namespace: str, raw: redis.Redis
) -> None:
    with rmem.Client.from_url(redis_url, namespace=namespace, sync=False) as client:
        session = client.session("s", ttl=2)
        session.append({"role": "user", "content": "hi"})
        time.sleep(0.3)  # a TTL set 0.2 s ago (min(1 s, ttl/10)) is due again (decision 30)
        meta = f"rmem:{{{namespace}/s}}:meta"
        raw.pexpire(meta, 500)
        read_stored(session)
        assert raw.pttl(meta) > 1500


def test_a_caught_up_replica_serves_reads_and_a_first_read_goes_to_redis(
    redis_url: str, namespace: str, raw: redis.Redis
) -> None:
    with rmem.Client.from_url(redis_url, namespace=namespace) as client:
        session = client.session("s", ttl=60)
        session.extend([{"role": "user", "content": f"m{i}"} for i in range(3)])
        # The first read in this process: no replica yet, so it reads Redis (and opens one).
        assert replica_messages(session) is None
        assert [d["content"] for d in read_stored(session)] == ["m0", "m1", "m2"]
        deadline = time.monotonic() + 5
        while (served := replica_messages(session)) is None:
            assert time.monotonic() < deadline, "the replica never caught up"
            time.sleep(0.005)
        assert served == session.messages()
        calls = count_commands(raw, lambda: replica_messages(session, 2))
        assert not calls.get("zrange") and not calls.get("evalsha")
        assert [m.content for m in replica_messages(session, 2) or []] == ["m1", "m2"]
        assert replica_messages(session, 0) == []
        with pytest.raises(ValidationError):
            replica_messages(session, -1)
        # read_stored reads Redis even while the replica serves.
        raw.zadd(f"rmem:{{{namespace}/s}}:msgs", {b"0" * 42 + b"x\0\x01\xc1": 0})
        with pytest.raises(CorruptDataError):
            read_stored(session)


def test_without_replicas_every_read_goes_to_redis(redis_url: str, namespace: str) -> None:
    with rmem.Client.from_url(redis_url, namespace=namespace, sync=False) as client:
        session = client.session("s")
        session.append({"role": "user", "content": "hi"})
        assert replica_messages(session) is None
        assert replica_messages(session) is None


def test_async_write_and_read(redis_url: str, namespace: str) -> None:
    async def main() -> list[dict[str, Any]] | None:
        async with rmem.AsyncClient.from_url(redis_url, namespace=namespace, sync=False) as c:
            session = c.session("s")
            message, payload = encode({"role": "user", "content": "hi", "x": [1]}, SETTINGS, "m")
            await aextend_encoded(session, [message], [payload])
            await aextend_encoded(session, [], [])
            stored = await aread_stored(session)
            assert stored == [m.to_dict() for m in await session.messages()]
            return stored

    stored = asyncio.run(main())
    assert stored is not None and stored[0]["x"] == [1] and stored[0]["content"] == "hi"


def test_read_stored_names_a_damaged_key(redis_url: str, namespace: str, raw: redis.Redis) -> None:
    with rmem.Client.from_url(redis_url, namespace=namespace, sync=False) as client:
        session = client.session("s")
        session.append({"role": "user", "content": "hi"})
        key = f"rmem:{{{namespace}/s}}:msgs"
        raw.zadd(key, {b"0" * 42 + b"x\0\x01\xc1": 0})
        with pytest.raises(CorruptDataError) as caught:
            read_stored(session)
        assert caught.value.key == key
        raw.delete(key)
        raw.set(key, "not a zset")
        with pytest.raises(CorruptDataError) as wrong_type:
            read_stored(session)
        assert wrong_type.value.key == key


def test_stored_payload_decodes_to_the_message(redis_url: str, namespace: str) -> None:
    message, payload = encode({"role": "user", "content": "x" * 3000}, SETTINGS, "m")
    assert payload[0] != 0x01  # over the compression threshold: lz4
    assert unpack(payload) == message.to_dict()


@settings(max_examples=300, deadline=None)
@given(any_values | st.dictionaries(st.text(max_size=4), any_values, max_size=4))
def test_check_json_agrees_with_check_plain(value: Any) -> None:
    outcomes = []
    for check in (check_plain, check_json):
        try:
            check(value, "value")
            outcomes.append("ok")
        except ValidationError as exc:
            outcomes.append(str(exc))
    assert outcomes[0] == outcomes[1]


def tagged(stored: dict[str, Any]) -> dict[str, Any]:
    """A form as the adapters make them: takes the stored dict over and reshapes it."""
    stored["seen"] = stored.pop("id")
    return stored


@settings(max_examples=100, deadline=None)
@given(st.lists(message_fields(json_values), max_size=6), st.data())
def test_stored_forms_give_what_decoding_gives_cold_or_warm(
    fields: list[dict[str, Any]], data: st.DataObject
) -> None:
    fields = [f for f in fields if core_outcome(f)[0] == "stored"]
    members = stored_members(*fields)
    expected = [tagged(d) for d in decode_stored(members, "k")]
    forms = StoredForms(tagged, 1 << 20)
    # Some members known first, in any mix: every read gives the same, in order.
    known = data.draw(st.lists(st.sampled_from(members), max_size=3)) if members else []
    assert forms(known, "k") == [tagged(d) for d in decode_stored(known, "k")]
    for _ in range(3):
        got = forms(members, "k")
        assert got == expected
        # Every object is new: changing one changes no later read.
        for form in got:
            form["seen"] = "changed"
            form.clear()


@pytest.mark.parametrize(
    "member",
    [
        b"too short",
        b"0" * 42 + b"id\0\x01\xc1",  # not msgpack
        b"0" * 42 + b"id\0\x01\x81\xa4role\x01",  # role not a str
    ],
)
def test_stored_forms_report_damage_as_decoding_does(member: bytes) -> None:
    good = stored_members({"role": "user", "content": "fine"})
    forms = StoredForms(tagged, 1 << 20)
    forms(good, "the-key")  # the good one is known: the damaged one still is not
    for _ in range(2):
        with pytest.raises(CorruptDataError) as core:
            decode_stored([*good, member], "the-key")
        with pytest.raises(CorruptDataError) as seam:
            forms([*good, member], "the-key")
        assert seam.value.key == core.value.key == "the-key"
        assert str(seam.value) == str(core.value)


def test_stored_forms_keep_forms_of_reread_members_within_their_bound() -> None:
    members = stored_members(*({"role": "user", "content": "x" * 100} for _ in range(40)))
    forms = StoredForms(tagged, 1 << 20)
    forms(members[:2], "k")
    assert set(forms._packed.values()) == {b""}  # read once: only remembered
    forms(members[:3], "k")
    assert all(forms._packed[m] for m in members[:2]) and not forms._packed[members[2]]
    small = StoredForms(tagged, 3000)
    for start in range(0, 40, 5):
        for _ in range(3):
            got = small(members[start : start + 5], "k")
            assert [f["content"] for f in got] == ["x" * 100] * 5
            assert small._size <= 3000
            assert small._size == sum(len(m) + len(f) for m, f in small._packed.items())


def test_reads_through_see_every_change_with_stored_forms(redis_url: str, namespace: str) -> None:
    forms = StoredForms(tagged, 1 << 20)
    with (
        rmem.Client.from_url(redis_url, namespace=namespace, sync=False) as reader,
        rmem.Client.from_url(redis_url, namespace=namespace) as writer,
    ):
        mine, theirs = reader.session("s"), writer.session("s")
        assert read_forms(mine, forms) == []
        theirs.extend([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])
        assert [f["content"] for f in read_forms(mine, forms)] == ["a", "b"]
        theirs.pop()
        theirs.append({"role": "user", "content": "c"})
        assert [f["content"] for f in read_forms(mine, forms)] == ["a", "c"]
        assert [f["content"] for f in read_forms(mine, forms, 1)] == ["c"]
        theirs.delete()
        assert read_forms(mine, forms) == []
        theirs.append({"role": "user", "content": "a"})  # same content, a new message
        (again,) = read_forms(mine, forms)
        assert again["content"] == "a" and again["seen"] == theirs.messages()[0].id
        # A client with replicas reads Redis too when asked (its adapters ask only while the
        # session has no caught-up replica).
        assert read_forms(writer.session("s"), forms) == [again]
