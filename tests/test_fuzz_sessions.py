"""Bad input everywhere, sessions and the codec: every call succeeds or raises ValidationError.

A refused call changes nothing in Redis and leaves the session readable; an accepted one reads
back what was written. Oracles in tests/_fuzz.py restate the input rules, so each test also
proves that exactly the bad input is refused. Runs on both APIs against a real Redis.
"""

from __future__ import annotations

import itertools
import math
import re
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rmem
from rmem._codec import pack, unpack, unpack_many
from rmem._session_core import decode_members
from rmem._validate import MAX_TTL, check_plain
from tests._fuzz import (
    MAX_DEPTH,
    Opaque,
    any_char,
    any_text,
    bad_values,
    cases,
    clean_text,
    frozen,
    fuzz_settings,
    is_plain,
    json_values,
    junk,
    nested,
    plain,
    same,
    valid_id,
    valid_ttl,
)
from tests.conftest import Api

# ---------------------------------------------------------------- message strategies

DECLARED = {"id", "role", "content", "created_at", "name", "metadata"}
roles = clean_text.filter(lambda r: r.strip() != "")
message_ids = st.text(
    st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=30
)
created = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**53), 2**53)
field_names = clean_text.filter(lambda k: k not in DECLARED)
BAD_FIELDS: dict[str, Any] = {
    "role": st.sampled_from(["", "  ", None, 3, b"user", "\ud800", ["user"]]),
    "content": bad_values,
    "id": st.sampled_from(["", "x" * 257, "a\x00b", "t\tb", "\u2028", "\x9f", "\ud800", 5, None]),
    "created_at": st.sampled_from([math.nan, math.inf, -math.inf, "yesterday", [1], None]),
    "name": st.sampled_from([5, b"x", "\ud800", ["a"]]),
    "metadata": st.sampled_from(["text", [1], 5]) | bad_values.map(lambda v: {"k": v}),
    "extra": bad_values,
    "extra key": st.just("\ud800"),
}


@st.composite
def messages(draw: st.DrawFn, bad: bool | None = None) -> tuple[dict[Any, Any], bool]:
    """A message dict and whether the rules accept it (at most one field made bad)."""
    msg: dict[Any, Any] = {"role": draw(roles)}
    optional = {
        "content": json_values,
        "id": message_ids,
        "created_at": created,
        "name": st.none() | clean_text,
        "metadata": st.none() | st.dictionaries(clean_text, json_values, max_size=3),
    }
    for name, values in optional.items():
        if draw(st.booleans()):
            msg[name] = draw(values)
    msg.update(draw(st.dictionaries(field_names, json_values, max_size=2)))
    if bad is False or (bad is None and not draw(st.booleans())):
        return msg, True
    field = draw(st.sampled_from(sorted(BAD_FIELDS)))
    value = draw(BAD_FIELDS[field])
    if field == "extra":
        msg[draw(field_names)] = value
    elif field == "extra key":
        msg[value] = 1
    else:
        msg[field] = value
    return msg, False


not_messages = st.sampled_from(["just text", 42, None, b"role", ["role"], Opaque()])


def snapshot(s: Any) -> tuple[Any, ...]:
    info = s.info()
    msgs = frozen([m.to_dict() for m in s.messages()])
    return msgs, info.message_count, info.size_bytes, info.revision


def assert_stored(back: rmem.Message, sent: dict[Any, Any], returned: rmem.Message) -> None:
    assert same(back.to_dict(), plain(returned.to_dict()))
    for key, value in sent.items():
        if key == "created_at":
            assert back.created_at == float(value)
        elif value is not None or key not in ("name", "metadata"):
            assert same(back.to_dict()[key], plain(value)), key


# ---------------------------------------------------------------- codec (no Redis)


@fuzz_settings(300)
@given(json_values | bad_values, st.sampled_from([16, 1024]))
def test_codec_stores_exactly_the_plain_values(value: Any, threshold: int) -> None:
    try:
        check_plain(value, "value")
        payload = pack(value, compress_threshold=threshold)
    except rmem.ValidationError:
        assert not is_plain(value)
        return
    assert is_plain(value)
    assert same(unpack(payload), plain(value))


def test_nesting_limit_is_exact() -> None:
    check_plain(nested(MAX_DEPTH), "value")
    assert unpack(pack(nested(MAX_DEPTH))) == nested(MAX_DEPTH)
    with pytest.raises(rmem.ValidationError, match="nested"):
        check_plain(nested(MAX_DEPTH + 1), "value")


payloads = st.one_of(
    st.binary(max_size=24),
    st.binary(max_size=24).map(lambda b: b"\x01" + b),
    st.binary(max_size=24).map(lambda b: b"\x81" + b),
    json_values.map(lambda v: pack(v, compress_threshold=16)),
)


@fuzz_settings(300)
@given(st.lists(payloads, max_size=5))
def test_batch_decoding_agrees_with_one_by_one(batch: list[bytes]) -> None:
    singles: list[Any] = []
    try:
        singles = [unpack(p) for p in batch]
    except rmem.CorruptDataError:
        with pytest.raises(rmem.CorruptDataError):
            unpack_many(batch)
        return
    assert same(unpack_many(batch), singles)


def test_payloads_that_only_decode_together_are_corrupt() -> None:
    # Neither payload decodes alone; glued, they read as two valid messages.
    first = b"\x01" + b"\x82" + msgpack.packb("id") + msgpack.packb("x")
    second = b"\x01" + msgpack.packb("role") + msgpack.packb("u")
    second += msgpack.packb({"id": "y", "role": "u"})
    with pytest.raises(rmem.CorruptDataError):
        unpack_many([first, second])


@fuzz_settings(200)
@given(st.lists(st.binary(max_size=60) | payloads.map(lambda p: b"s" * 42 + b"id\0" + p)))
def test_garbage_members_decode_or_raise_corrupt(members: list[bytes]) -> None:
    try:
        decoded = decode_members(members, "the-key")
    except rmem.CorruptDataError as exc:
        key = exc.key
        assert key == "the-key"
        return
    for msg in decoded:
        assert isinstance(msg.id, str) and isinstance(msg.role, str)


# ---------------------------------------------------------------- names


@pytest.fixture
def counter() -> itertools.count[int]:
    return itertools.count()


def test_session_ids(api: Api) -> None:
    c = api.client()

    @fuzz_settings(100)
    @given(st.text(any_char, max_size=300) | any_text | junk)
    def run(sid: Any) -> None:
        try:
            s = c.session(sid)
        except rmem.ValidationError:
            assert not valid_id(sid)
            return
        assert valid_id(sid)
        s.append({"role": "user", "content": sid})
        assert [m.content for m in s.messages()] == [sid]
        assert sid in c.sessions()
        assert s.delete() is True

    run()


NAMESPACE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
namespaces = (
    st.from_regex(NAMESPACE_RE, fullmatch=True)
    | st.text(st.sampled_from("aZ09_.:-/{} é\x00\n"), max_size=130)
    | any_text
    | junk
)


def test_namespaces(api: Api, counter: itertools.count[int]) -> None:
    c = api.client()

    @fuzz_settings(60)
    @given(namespaces)
    def run(ns: Any) -> None:
        ok = isinstance(ns, str) and NAMESPACE_RE.fullmatch(ns) is not None
        try:
            view = c.with_namespace(ns)
        except rmem.ValidationError:
            assert not ok
            if ns is not None:  # None: the default namespace
                with pytest.raises(rmem.ValidationError):
                    rmem.Client.from_url(api.url, namespace=ns)
            return
        assert ok
        s = view.session(f"{api.namespace}-{next(counter)}")
        s.append({"role": "user", "content": ns})
        assert [m.content for m in s.messages()] == [ns]
        assert s.delete() is True

    run()


# ---------------------------------------------------------------- messages


def test_append(api: Api) -> None:
    s = api.client().session("fuzz")
    s.append({"role": "system", "content": "start"})
    seen: set[str] = set()

    @fuzz_settings(150)
    @given(messages() | not_messages.map(lambda m: (m, False)))
    def run(case: tuple[Any, bool]) -> None:
        msg, ok = case
        before = snapshot(s)
        try:
            returned = s.append(msg)
        except rmem.ValidationError:
            assert not ok, msg
            assert snapshot(s) == before
            return
        assert ok, msg
        if returned.id in seen:  # stored once: a second append changes nothing
            assert snapshot(s) == before
            return
        seen.add(returned.id)
        assert_stored(s.messages(last=1)[0], msg, returned)

    run()


def test_extend_is_all_or_nothing(api: Api) -> None:
    s = api.client().session("batch")
    s.append({"role": "system"})
    seen: set[str] = set()

    @fuzz_settings(100)
    @given(st.lists(messages(), max_size=4) | st.sampled_from(["text", {"role": "u"}, 5]))
    def run(batch: Any) -> None:
        before = snapshot(s)
        ok = isinstance(batch, list) and all(good for _, good in batch)
        items = [m for m, _ in batch] if isinstance(batch, list) else batch
        try:
            returned = s.extend(items)
        except rmem.ValidationError:
            assert not ok
            assert snapshot(s) == before
            return
        assert ok
        fresh: dict[str, tuple[Any, rmem.Message]] = {}  # the first of each new id
        for sent, ret in zip(items, returned, strict=True):
            if ret.id not in seen and ret.id not in fresh:
                fresh[ret.id] = (sent, ret)
        seen.update(fresh)
        assert s.count() == before[1] + len(fresh)
        back = s.messages(last=len(fresh)) if fresh else []
        for got, (sent, ret) in zip(back, fresh.values(), strict=True):
            assert_stored(got, sent, ret)

    run()


def test_message_objects_made_without_validation(api: Api) -> None:
    s = api.client().session("constructed")
    s.append({"role": "user"})
    before = snapshot(s)
    bad = [
        rmem.Message.model_construct(role="user", id="a\x00b"),
        rmem.Message.model_construct(role="user", id=""),
        rmem.Message.model_construct(role="user", id=7),
        rmem.Message.model_construct(role=None),
        rmem.Message.model_construct(role="user", created_at=math.nan),
        rmem.Message.model_construct(role="user", metadata=["x"]),
        rmem.Message.model_construct(role="user", name=3),
        rmem.Message.model_construct(role="user", content={1: 2}),
        rmem.Message.model_construct(id="no role"),
    ]
    for msg in bad:
        with pytest.raises(rmem.ValidationError):
            s.append(msg)
    assert snapshot(s) == before


def test_size_limit_boundary(api: Api) -> None:
    limit = 4096
    s = api.client(max_message_bytes=limit).session("sized")
    s.append({"role": "user"})

    @fuzz_settings(60)
    @given(st.integers(-40, 40), st.sampled_from(["a", "é", "😀"]), st.sampled_from([16, 4096]))
    def run(delta: int, char: str, pad: int) -> None:
        msg = {"id": f"m{delta}{char}{pad}", "role": "user", "created_at": 1.5, "content": ""}
        msg["pad"] = "x" * pad
        overhead = len(msgpack.packb(msg)) + 2  # a str of 32-65535 bytes has a 3-byte header
        msg["content"] = char * ((limit - overhead + delta) // len(char.encode()))
        size = len(msgpack.packb(msg))  # what rmem measures: the message's msgpack form
        before = snapshot(s)
        try:
            s.append(msg)
        except rmem.ValidationError as exc:
            reason = str(exc)
            assert size > limit, size
            assert "max_message_bytes" in reason
            assert snapshot(s) == before
            return
        assert size <= limit, size

    run()


# ---------------------------------------------------------------- ttl, last, expire

good_ttls = st.none() | st.floats(60, MAX_TTL) | st.integers(1, MAX_TTL) | st.floats(1e-300, 60)
ttls = st.one_of(
    good_ttls,
    st.floats(),
    st.integers(-5, MAX_TTL + 5),
    st.sampled_from([0, 1e-300, MAX_TTL, MAX_TTL + 0.5, 2**70, True]),
    junk,
)


def test_ttl_sliding_and_expire(api: Api, counter: itertools.count[int]) -> None:
    c = api.client()

    @fuzz_settings(100)
    @given(
        cases(
            ttl=(good_ttls, ttls),
            sliding=(st.booleans(), st.booleans() | junk),
            later=(good_ttls, ttls),
        )
    )
    def run(args: dict[str, Any]) -> None:
        ttl, sliding, later = args["ttl"], args["sliding"], args["later"]
        ok = valid_ttl(ttl) and isinstance(sliding, bool)
        sid = f"ttl-{next(counter)}"
        try:
            s = c.session(sid, ttl=ttl, sliding=sliding)
        except rmem.ValidationError:
            assert not ok
            return
        assert ok
        s.append({"role": "user"})
        lasting = ttl is None or ttl >= 60
        if lasting:
            info = s.info()
            assert info.ttl_policy == (None if ttl is None else math.ceil(ttl * 1000) / 1000)
            assert info.sliding is sliding
        before = snapshot(s) if lasting else None
        try:
            existed = s.expire(later)
        except rmem.ValidationError:
            assert not valid_ttl(later)
            if before is not None:
                assert snapshot(s) == before
            return
        assert valid_ttl(later)
        if lasting:
            assert existed is True
        if lasting and (later is None or later >= 60):
            policy = s.info().ttl_policy
            assert policy == (None if later is None else math.ceil(later * 1000) / 1000)

    run()


def test_messages_last(api: Api) -> None:
    s = api.client().session("last")
    s.extend([{"role": "user", "content": i} for i in range(5)])

    @fuzz_settings(80)
    @given(st.none() | st.integers(-(2**70), 2**70) | st.integers(-2, 8) | junk)
    def run(last: Any) -> None:
        ok = last is None or (isinstance(last, int) and not isinstance(last, bool) and last >= 0)
        try:
            got = s.messages(last=last)
        except rmem.ValidationError:
            assert not ok
            return
        assert ok
        want = list(range(5)) if last is None else list(range(5))[5 - min(last, 5) :]
        assert [m.content for m in got] == want

    run()


# ---------------------------------------------------------------- import


class Batch(list[Any]):
    """Messages for an export, knowing whether the rules accept them all."""

    ok = True


def batch(pairs: list[tuple[dict[Any, Any], bool]]) -> Batch:
    made = Batch(m for m, _ in pairs)
    made.ok = all(ok for _, ok in pairs)
    return made


EXPORT_FIELDS: dict[str, Any] = {
    "format": st.sampled_from(["rmem.session/2", "", None, 1]),
    "id": any_text | junk,
    "ttl": ttls,
    "sliding": junk,
    "created_at": st.floats() | st.integers(-(2**70), 2**70) | junk,
    "messages": junk | st.lists(messages(), max_size=3).map(batch),
    "namespace": junk,
}


def valid_export_field(name: str, value: Any) -> bool | None:
    """Whether an export field with this value must be accepted (None: not decided here)."""
    if name == "format":
        return value == "rmem.session/1"
    if name == "id":
        return valid_id(value)
    if name == "ttl":
        return valid_ttl(value)
    if name == "sliding":
        return isinstance(value, bool)
    if name == "created_at":
        if value is None:
            return True
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return number and 0 <= value <= 253_402_300_799
    if name == "messages":
        if isinstance(value, Batch):
            return value.ok
        return value == []  # an empty list is an export of no messages; other junk is refused
    return True  # the namespace is informative: import writes into the client's namespace


def test_import_session(api: Api, counter: itertools.count[int]) -> None:
    c = api.client()
    source = c.session("source", ttl=3600, sliding=False)
    source.extend([{"role": "user", "content": [1, "two", {"3": None}]}, {"role": "tool"}])
    exported = source.export()

    @fuzz_settings(120)
    @given(
        st.sampled_from(sorted(EXPORT_FIELDS)).flatmap(
            lambda f: st.tuples(st.just(f), EXPORT_FIELDS[f])
        )
    )
    def run(change: tuple[str, Any]) -> None:
        name, value = change
        data = {**exported, name: value}
        ok = valid_export_field(name, value)
        target = f"imported-{next(counter)}"
        if name != "id":
            data["id"] = target
        try:
            s = c.import_session(data)
        except rmem.ValidationError:
            assert ok is not True, change
            if isinstance(data.get("id"), str) and valid_id(data["id"]):
                assert not c.session(data["id"]).exists()
            return
        assert ok is not False, change
        if not data["messages"]:  # nothing to write: an import makes no empty session
            assert not s.exists()
            return
        if data["ttl"] is not None and data["ttl"] < 60:
            return  # may have expired already
        back = s.export()
        first: dict[Any, dict[Any, Any]] = {}
        for n, m in enumerate(data["messages"]):
            first.setdefault(m.get("id", n), m)  # an id given twice is stored once
        assert len(back["messages"]) == len(first)
        for got, want in zip(back["messages"], first.values(), strict=True):
            for key, sent in want.items():
                expected = float(sent) if key == "created_at" else plain(sent)
                if sent is not None or key not in ("name", "metadata"):
                    assert same(got[key], expected), key
        assert back["sliding"] is data.get("sliding", True)
        if name == "created_at" and value:
            assert back["created_at"] == int(value * 1000) / 1000
        s.delete()

    run()


def test_import_with_bad_session_id_argument(api: Api) -> None:
    c = api.client()
    s = c.session("src")
    s.append({"role": "user"})
    data = s.export()
    for bad in ["", "a\x00", "\ud800", 5, b"x"]:
        with pytest.raises(rmem.ValidationError):
            c.import_session(data, session_id=bad)
    assert c.sessions() == ["src"]
