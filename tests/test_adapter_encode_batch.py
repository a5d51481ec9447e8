"""The adapters' batch encoding (``encode_many``, ``copy_plain``) against the per-message path.

``RmemSession.add_items`` copies a batch through msgpack, proves the copy plain from its packed
bytes (``copy_plain``) and then packs each item without walking its values again;
``RmemChatMessageHistory.add_messages`` encodes its batch with ``encode_many`` too. These tests
hold both to the per-message path they replaced (msgpack copy, ``item_to_message`` or
``to_rmem``, then ``encode``, which ``test_integration_session_io`` holds to
``Session.extend``): the same values accepted, the same bytes stored but for rmem's id and
time, and the same errors for the same bad inputs, with nothing written.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip(
    "agents", reason="needs the OpenAI Agents SDK: pip install 'rmem[openai-agents]'"
)
pytest.importorskip("langchain_core", reason="needs langchain-core: pip install 'rmem[langchain]'")

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

import rmem
from rmem._codec import unpack
from rmem._errors import ValidationError
from rmem._models import Message
from rmem._validate import MAX_DEPTH
from rmem.integrations import langchain as lc
from rmem.integrations._json import copy_plain
from rmem.integrations._session_io import encode, encode_many
from rmem.integrations.openai_agents import ENVELOPE, RmemSession, _copy, item_to_message

SETTINGS = rmem.Settings(max_message_bytes=4096, compress_threshold=512)
TEXT = "The agent reads the ticket, plans its next step and replies. " * 3
TURN: list[dict[str, Any]] = [
    {"role": "user", "content": TEXT},
    {
        "id": "rs_01",
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": TEXT[:120]}],
        "encrypted_content": "gAAAAB" + "x" * 240,
    },
    {
        "type": "function_call",
        "call_id": "call_1",
        "name": "lookup",
        "arguments": '{"ticket": 42}',
        "id": "fc_1",
        "status": "completed",
    },
    {"type": "function_call_output", "call_id": "call_1", "output": TEXT[:80]},
    {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": TEXT, "annotations": []}],
    },
]


def nested(levels: int) -> Any:
    """A value nested ``levels`` levels deep (lists; the outermost counts as one)."""
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


def depth(value: Any) -> int:
    """Levels of nesting of ``value`` (0 for a scalar)."""
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list | tuple):
        return 1 + max(map(depth, value), default=0)
    return 0


def exact_json(value: Any) -> bool:
    """Only exact JSON types (an independent walk, for checking copy_plain's proof)."""
    kind = type(value)
    if kind in (str, int, float, bool, type(None)):
        return True
    if kind is dict:
        return all(type(k) is str and exact_json(v) for k, v in value.items())
    if kind is list:
        return all(exact_json(v) for v in value)
    return False


def packed(value: Any) -> bytes:
    data: bytes = msgpack.packb(value, use_bin_type=True)
    return data


def msgpack_copy(value: Any) -> Any:
    return msgpack.unpackb(msgpack.packb(value, use_bin_type=True), raw=False)


# ---------------------------------------------------------------- copy_plain

ascii_text = st.text(st.characters(max_codepoint=0x7F), max_size=12)
any_text = st.text(max_size=12)
odd = (
    st.binary(max_size=3)
    | st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=2))
    | st.builds(msgpack.Timestamp, st.integers(0, 2**32 - 1))
)


def values(text: st.SearchStrategy[str], extra: st.SearchStrategy[Any]) -> Any:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(-(2**63), 2**64 - 1)
        | st.floats(allow_nan=False)
        | text
        | extra
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.tuples(inner, inner)
            | st.dictionaries(text, inner, max_size=4)
            | st.dictionaries(st.binary(max_size=2), inner, max_size=2)
        ),
        max_leaves=12,
    )


@settings(max_examples=400, deadline=None)
@given(values(any_text, odd | st.nothing()), st.integers(0, 40))
def test_copy_plain_copies_and_proves_only_what_holds(value: Any, max_depth: int) -> None:
    copy, plain = copy_plain(value, max_depth)
    assert packed(copy) == packed(msgpack_copy(value))
    if plain:
        assert exact_json(copy)
        assert depth(copy) <= max_depth


@settings(max_examples=300, deadline=None)
@given(values(ascii_text, st.nothing()))
def test_copy_plain_proves_small_ascii_json(value: Any) -> None:
    # No bytes or ext, ASCII text, at most 12 leaves: well under the bound of heads.
    copy, plain = copy_plain(value, MAX_DEPTH - 1)
    assert plain == exact_json(copy)


@pytest.mark.parametrize(
    "value",
    [
        [b""],
        {"k": b""},
        {b"": 1},
        [b"x"],
        {b"k": "v"},
        [msgpack.ExtType(5, b"")],
        [msgpack.ExtType(5, b"ab")],
        [msgpack.Timestamp(1)],
        [{"a": [1, {"b": [b""]}]}],
    ],
)
def test_copy_plain_never_proves_bytes_or_ext(value: Any) -> None:
    copy, plain = copy_plain(value, MAX_DEPTH)
    assert not plain
    assert copy == msgpack_copy(value)


def test_copy_plain_bounds_the_depth() -> None:
    for levels in (1, 2, 100, 254, 255, 256):
        assert copy_plain(nested(levels), 255)[1] == (levels <= 255)
        assert copy_plain({"k": nested(levels)}, 255)[1] == (levels + 1 <= 255)
    # Not ASCII: the heads bound may count bytes of text (never proves too much).
    copy, plain = copy_plain(["\u6587\u6587" * 200], 255)
    assert copy == ["\u6587\u6587" * 200]
    assert not plain


def test_copy_plain_proves_text_holding_the_bytes_of_bin_and_ext_heads() -> None:
    # "\u0100" is C4 80 in UTF-8, "\u01c0" is C7 80: the first byte of a bin 8 or an ext 8.
    for value in (["\u0100" * 3], {"k": ["\u01c0", 1.5]}, [["\u0100\u01c0"]] * 3):
        copy, plain = copy_plain(value, 20)
        assert copy == value
        assert plain
    assert not copy_plain([[["\u0100"]]], 2)[1]  # the heads are still counted


@pytest.mark.parametrize(
    "value",
    [
        {1: "int key"},
        [b"x", {1: "int key after bytes"}],
        [msgpack.Timestamp(1), {(1, 2): "tuple key"}],
        [object()],
        [2**64],
        [{3, 4}],
        ["\ud800"],
    ],
)
def test_copy_plain_raises_what_a_msgpack_copy_raises(value: Any) -> None:
    with pytest.raises((TypeError, ValueError, OverflowError)) as expected:
        msgpack_copy(value)
    with pytest.raises(type(expected.value)) as got:
        copy_plain(value, MAX_DEPTH)
    assert str(got.value) == str(expected.value)


# ---------------------------------------------------------------- the adapters' batches


def outcome(encode_batch: Callable[[], list[tuple[Message, bytes]]]) -> tuple[str, Any]:
    """("refused", message) or ("stored", the stored dicts and the messages' dicts without
    rmem's id and time, packed: NaN is a float JSON allows, and NaN != NaN)."""
    try:
        pairs = encode_batch()
    except ValidationError as exc:
        return "refused", str(exc)
    out = []
    ids = []
    for message, payload in pairs:
        stored = unpack(payload)
        assert packed(stored) == packed(message.to_dict())
        assert message.__pydantic_fields_set__ == set(Message.model_fields)
        assert isinstance(message.created_at, float)
        ids.append(stored.pop("id"))
        stored.pop("created_at")
        dumped = message.model_dump(exclude={"id", "created_at"})
        out.append(packed([list(stored.items()), dumped]))
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    return "stored", out


def items_before(items: Any) -> list[tuple[Message, bytes]]:
    """What RmemSession._encode did before batches: copy, then each item on its own."""
    if isinstance(items, str | bytes | dict) or not isinstance(items, list | tuple):
        raise ValidationError(f"items must be a list of dicts, not {type(items).__name__}")
    try:
        copied = msgpack_copy(items)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValidationError(f"items hold a value that cannot be stored: {exc}") from None
    return [
        encode(item_to_message(item, index), SETTINGS, f"item {index}")
        for index, item in enumerate(copied)
    ]


@pytest.fixture(scope="module")
def session() -> Iterator[RmemSession]:
    # _encode does no I/O: the client never connects.
    client = rmem.AsyncClient.from_url("redis://127.0.0.1:1", sync=False)
    yield RmemSession("s", client=client)
    asyncio.run(client.aclose())


def same_items_outcome(session: RmemSession, items: Any) -> tuple[str, Any]:
    def now() -> list[tuple[Message, bytes]]:
        return list(zip(*session._encode(items), strict=True))

    before, after = outcome(lambda: items_before(items)), outcome(now)
    assert before == after, items
    return after


item_keys = st.sampled_from(
    ["role", "content", "id", "created_at", "name", "metadata", "type", ENVELOPE, "status"]
) | st.text(max_size=6)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(item_keys, values(any_text, st.nothing()), max_size=6)))
def test_items_of_json_values_encode_as_before(session: RmemSession, items: Any) -> None:
    session._settings = SETTINGS
    same_items_outcome(session, items)


def odd_items() -> Any:
    odd_values = values(any_text, odd | st.sets(st.integers(), max_size=1) | st.just(math.nan))
    item = st.dictionaries(item_keys | st.integers(0, 2), odd_values, max_size=5)
    return st.lists(item | odd_values, max_size=4) | st.tuples(item) | item


@settings(max_examples=300, deadline=None)
@given(odd_items())
def test_items_of_any_values_are_refused_as_before(session: RmemSession, items: Any) -> None:
    session._settings = SETTINGS
    same_items_outcome(session, items)


@pytest.mark.parametrize("levels", [1, 250, 252, 253, 254, 255, 256, 257])
@pytest.mark.parametrize(
    "make",
    [
        lambda v: {"role": "user", "content": v},
        lambda v: {"role": "user", "content": "x", "deep": v},
        lambda v: {"role": "user", "metadata": {"deep": v}},
        lambda v: {"role": "user", "metadata": v},  # not a dict: kept in the envelope
        lambda v: {"role": "user", "name": v},  # not a str: kept in the envelope
        lambda v: {"role": v, "type": "message"},
        lambda v: {"id": v, "type": "reasoning"},
    ],
    ids=["content", "extra", "metadata", "metadata-envelope", "name", "role", "id"],
)
def test_deep_items_follow_the_depth_limit_as_before(
    session: RmemSession, levels: int, make: Callable[[Any], dict[str, Any]]
) -> None:
    session._settings = SETTINGS
    same_items_outcome(session, [make(nested(levels))])
    same_items_outcome(session, [TURN[0], make(nested(levels)), TURN[1]])


def test_the_depth_limit_is_reached_on_both_sides(session: RmemSession) -> None:
    session._settings = SETTINGS
    results = {
        levels: same_items_outcome(session, [{"role": "user", "deep": nested(levels)}])[0]
        for levels in (254, 255, 256)
    }
    assert results == {254: "stored", 255: "stored", 256: "refused"}


@pytest.mark.parametrize(
    "items",
    [
        TURN,
        TURN * 3,
        [{"role": "user", "content": "\u6587" * 1500}],  # not ASCII: not proven, walked
        [{"role": "user", "content": "x" * 5000}],  # over max_message_bytes
        [TURN[0], {"role": "user", "content": "ok", "blob": b""}],
        [TURN[0], {"role": "user", "content": [msgpack.Timestamp(3)]}],
        [TURN[0], {"role": "user", "metadata": {b"k": 1}}],
        [TURN[0], "not a dict", {"role": "user", "content": b"x"}],
        [{"role": "user", "content": b"x"}, "not a dict"],
        [{"role": "", "content": "blank role, a type"}, {"role": " "}],
        [{"role": "user", "content": "x" * 5000}, "not a dict"],
        [{b"key": "v"}],
        ({"role": "user", "content": "a tuple batch"},),
        [],
    ],
)
def test_special_batches_encode_as_before(session: RmemSession, items: Any) -> None:
    session._settings = SETTINGS
    same_items_outcome(session, items)


def test_a_plain_batch_is_not_walked_again() -> None:
    assert _copy(TURN)[1]
    assert not _copy([*TURN, {"role": "user", "blob": b""}])[1]


def test_encode_many_converts_and_checks_each_value_in_turn() -> None:
    seen: list[int] = []

    def to_fields(value: dict[str, Any], index: int) -> dict[str, Any]:
        seen.append(index)
        return dict(value)

    batch = [{"role": "user", "content": "a"}, {"role": "", "content": "b"}, "never made"]
    with pytest.raises(ValidationError, match="invalid m1: role must be a non-empty str"):
        encode_many(batch, to_fields, SETTINGS, "m{}".format)  # type: ignore[arg-type]
    assert seen == [0, 1]
    messages, payloads = encode_many(batch[:1], to_fields, SETTINGS, "m{}".format)
    assert [unpack(p)["content"] for p in payloads] == ["a"]
    assert messages[0].content == "a"
    assert encode_many([], to_fields, SETTINGS, "m{}".format) == ([], [])


# ---------------------------------------------------------------- LangChain


def messages_before(messages: Any) -> list[tuple[Message, bytes]]:
    """What the LangChain adapter's _encode did before batches: each message on its own."""
    if isinstance(messages, BaseMessage):
        raise ValidationError("add_messages() takes a sequence of messages, not one message")
    return [
        encode(lc.to_rmem(m, f"message {i}"), SETTINGS, f"message {i}")
        for i, m in enumerate(messages)
    ]


@pytest.mark.parametrize(
    "messages",
    [
        [HumanMessage("hi")],
        [HumanMessage("hi", id="h1"), AIMessage(TEXT, name="bot", id="a1")],
        [AIMessage("x", additional_kwargs={"deep": nested(300)})],
        [AIMessage("x", additional_kwargs={"blob": b"bytes"})],
        [HumanMessage("ok"), "not a message"],
        [HumanMessage("x" * 5000), "not a message"],
        [ToolMessage("out", tool_call_id="c1"), HumanMessage("\u6587" * 100)],
        (HumanMessage("a tuple"),),
        HumanMessage("one message"),
        [],
    ],
)
def test_langchain_batches_encode_as_before(messages: Any) -> None:
    before = outcome(lambda: messages_before(messages))
    after = outcome(lambda: list(zip(*lc._encode(messages, SETTINGS), strict=True)))
    assert before == after


def test_langchain_takes_any_iterable_of_messages() -> None:
    sent = [HumanMessage("a"), AIMessage("b")]
    batch, payloads = lc._encode(iter(sent), SETTINGS)  # type: ignore[arg-type]
    assert [m.content for m in batch] == ["a", "b"]
    assert len(payloads) == 2


# ---------------------------------------------------------------- through Redis


@pytest.mark.parametrize("sync", [True, False], ids=["replica", "read-through"])
def test_batches_on_every_path_round_trip(redis_url: str, namespace: str, sync: bool) -> None:
    good = [
        *TURN,
        {"role": "user", "content": "\u6587" * 300, "deep": nested(250)},
        {"role": "user", "name": nested(253), "metadata": [1]},
        {"role": "user", "deep": nested(255)},
    ]
    bad = [*TURN, {"role": "user", "content": "ok", "extra": [b""]}]

    async def scenario() -> None:
        async with RmemSession.from_url(
            "deep", url=redis_url, namespace=namespace, redis_kwargs={"sync": sync}
        ) as s:
            for item in good:
                await s.add_items([*TURN, item])
            with pytest.raises(ValidationError, match="item 5 field: a bytes cannot be stored"):
                await s.add_items(bad)
            with pytest.raises(ValidationError, match="nested more than"):
                await s.add_items([*TURN, {"role": "user", "deep": nested(256)}])
            expected = [i for item in good for i in (*TURN, item)]
            assert await s.get_items() == expected

    asyncio.run(scenario())


def test_langchain_batches_round_trip(redis_url: str, namespace: str) -> None:
    with lc.RmemChatMessageHistory("h", redis_url=redis_url, namespace=namespace) as history:
        history.add_messages([HumanMessage("hi", id="h1")])
        history.add_messages([HumanMessage("\u6587" * 50), AIMessage(TEXT, name="bot")])
        with pytest.raises(ValidationError, match="message 1 must be a LangChain BaseMessage"):
            history.add_messages([HumanMessage("ok"), "nope"])  # type: ignore[list-item]
        assert [(type(m), m.content) for m in history.messages] == [
            (HumanMessage, "hi"),
            (HumanMessage, "\u6587" * 50),
            (AIMessage, TEXT),
        ]
        assert history.messages[0].id == "h1"
        assert history.messages[2].name == "bot"
