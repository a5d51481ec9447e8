"""rmem.integrations.langchain: RmemChatMessageHistory against the real Redis of the test run.

LangChain's own tests for the interface (vendored from langchain-core) are in
``tests/framework/langchain/``; these cover what they do not: every message kind round-trips
with all its fields, sync and async, one atomic write per ``add_messages``, two processes
writing at once, TTLs, messages written by other rmem code, bad input, the missing extra, and
the benchmark's quick run.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

pytest.importorskip("langchain_core")

import redis
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    ChatMessageChunk,
    FunctionMessage,
    FunctionMessageChunk,
    HumanMessage,
    HumanMessageChunk,
    RemoveMessage,
    SystemMessage,
    SystemMessageChunk,
    ToolMessage,
    ToolMessageChunk,
    messages_from_dict,
)

import rmem
from rmem._session_core import decode_message, encode_message
from rmem.integrations.langchain import (
    RmemChatMessageHistory,
    _rebuild,
    from_rmem,
    to_langchain,
    to_rmem,
)

ROOT = Path(__file__).resolve().parent.parent


def every_kind() -> list[BaseMessage]:
    """One message of every LangChain type, with every optional field set."""
    return [
        SystemMessage("be brief", id="sys-1", additional_kwargs={"cache": {"ttl": 5}}),
        HumanMessage(
            [{"type": "text", "text": "what is in"}, {"type": "image_url", "image_url": "x"}],
            id="h-1",
            name="alice",
            response_metadata={"lang": "en"},
        ),
        AIMessage(
            "",
            id="run-1",
            name="planner",
            tool_calls=[
                {"name": "search", "args": {"q": "redis", "k": 3}, "id": "call_1"},
                {"name": "fetch", "args": {"url": "https://x.y", "deep": [1, 2.5]}, "id": "c2"},
            ],
            invalid_tool_calls=[{"name": "calc", "args": "{oops", "id": "c3", "error": "json"}],
            usage_metadata={
                "input_tokens": 10,
                "output_tokens": 20,
                "total_tokens": 30,
                "input_token_details": {"cache_read": 4},
            },
            response_metadata={"model_name": "gpt-x", "finish_reason": "tool_calls"},
            additional_kwargs={"refusal": None, "nested": {"a": [True, None, 1.5]}},
        ),
        ToolMessage(
            '{"hits": 3}',
            tool_call_id="call_1",
            name="search",
            id="t-1",
            artifact={"rows": [1, 2, 3]},
            status="success",
        ),
        ToolMessage("boom", tool_call_id="c2", status="error"),
        FunctionMessage(content="42", name="calc", id="f-1"),
        ChatMessage(content="order!", role="moderator", id="c-1"),
        AIMessageChunk(
            content="partial",
            id="run-2",
            tool_call_chunks=[{"name": "search", "args": '{"q": "re', "id": "c9", "index": 0}],
            usage_metadata={"input_tokens": 1, "output_tokens": 1, "total_tokens": 2},
        ),
        HumanMessageChunk(content="typing", id="hc-1"),
        SystemMessageChunk(content="sys part"),
        ToolMessageChunk(content="tool part", tool_call_id="c9"),
        FunctionMessageChunk(content="fn part", name="calc"),
        ChatMessageChunk(content="chat part", role="narrator"),
        AIMessage("ünïcødé ✓ \x00 and emoji 🎉", id="run-3"),
    ]


def assert_same(got: list[BaseMessage], want: list[BaseMessage]) -> None:
    assert [type(m) for m in got] == [type(m) for m in want]
    assert got == want
    for g, w in zip(got, want, strict=True):
        assert g.model_dump() == w.model_dump()  # every field, not only what __eq__ compares


def assert_as_validated(stored: list[rmem.Message]) -> None:
    """What to_langchain rebuilds equals what LangChain's own validation builds, to the bone."""
    fast = to_langchain(stored)
    validated = messages_from_dict([from_rmem(m) for m in stored])
    assert_same(fast, validated)
    for f, v in zip(fast, validated, strict=True):
        assert f.__dict__ == v.__dict__
        assert f.__pydantic_extra__ == v.__pydantic_extra__
        assert f.__pydantic_private__ == v.__pydantic_private__
        assert f.__pydantic_fields_set__ == v.__pydantic_fields_set__
        assert f.model_dump_json() == v.model_dump_json()
        assert f.content_blocks == v.content_blocks


@pytest.fixture
def client(redis_url: str, namespace: str) -> Iterator[rmem.Client]:
    with rmem.Client.from_url(redis_url, namespace=namespace) as c:
        yield c


@pytest.fixture
def history(client: rmem.Client) -> RmemChatMessageHistory:
    return RmemChatMessageHistory("chat", client=client)


def test_every_message_kind_round_trips(history: RmemChatMessageHistory) -> None:
    history.add_messages(every_kind())
    assert_same(history.messages, every_kind())
    ai = history.messages[2]
    assert isinstance(ai, AIMessage)
    assert ai.tool_calls[1]["args"] == {"url": "https://x.y", "deep": [1, 2.5]}
    assert ai.invalid_tool_calls[0]["error"] == "json"
    assert ai.usage_metadata is not None and ai.usage_metadata["total_tokens"] == 30
    assert (ai.id, ai.name, ai.response_metadata["finish_reason"]) == (
        "run-1",
        "planner",
        "tool_calls",
    )


@pytest.mark.parametrize("sync", [True, False])
def test_extra_fields_named_like_the_stored_ones_round_trip(
    redis_url: str, namespace: str, sync: bool
) -> None:
    # The adapter stores LangChain's id as lc_id and keeps extra fields of reserved names
    # under lc_fields; an extra field named lc_id must not take the id's place.
    messages: list[BaseMessage] = [
        AIMessage("a", id="real", lc_id="extra"),
        AIMessage("b", lc_id="extra", lc_type="t", lc_fields={"k": 1}, created_at=5, metadata={}),
    ]
    with rmem.Client.from_url(redis_url, namespace=namespace, sync=sync) as c:
        RmemChatMessageHistory("extras", client=c).add_messages(messages)
        assert_same(RmemChatMessageHistory("extras", client=c).messages, messages)
    with rmem.Client.from_url(redis_url, namespace=namespace, sync=False) as other:
        for _ in range(3):  # the first reads decode; later ones come from the kept forms
            assert_same(RmemChatMessageHistory("extras", client=other).messages, messages)


def test_reading_rebuilds_what_validation_would(history: RmemChatMessageHistory) -> None:
    history.add_messages(every_kind())
    stored = history.session.messages()
    assert all(_rebuild(**_item(m)) is not None for m in stored)  # the fast path is taken
    assert_as_validated(stored)


def test_partial_or_foreign_fields_are_validated(client: rmem.Client) -> None:
    session = client.session("old")
    session.extend(
        [
            {"role": "user", "content": "from an older writer", "lc_type": "human"},
            {"role": "assistant", "content": "x", "lc_type": "ai", "future_field": 1},
        ]
    )
    stored = session.messages()
    assert [_rebuild(**_item(m)) for m in stored] == [None, None]
    got = RmemChatMessageHistory("old", client=client).messages
    assert got[0] == HumanMessage("from an older writer")
    assert isinstance(got[1], AIMessage) and got[1].model_extra == {"future_field": 1}


def _item(message: rmem.Message) -> dict[str, Any]:
    item = from_rmem(message)
    return {"lc_type": item["type"], "data": item["data"]}


def test_stored_form_is_an_rmem_message_with_roles(history: RmemChatMessageHistory) -> None:
    history.add_messages(every_kind()[:4])
    stored = history.session.messages()
    assert [m.role for m in stored] == ["system", "user", "assistant", "tool"]
    ai = stored[2].to_dict()
    assert ai["lc_type"] == "ai" and ai["lc_id"] == "run-1" and ai["name"] == "planner"
    assert ai["tool_calls"][0]["args"] == {"q": "redis", "k": 3}
    assert stored[3].to_dict()["tool_call_id"] == "call_1"
    assert len({m.id for m in stored}) == 4  # rmem's own ids, beside LangChain's


def test_async_round_trip_with_async_client(redis_url: str, namespace: str) -> None:
    async def main() -> None:
        async with rmem.AsyncClient.from_url(redis_url, namespace=namespace) as aclient:
            history = RmemChatMessageHistory("chat", client=aclient)
            await history.aadd_messages(every_kind())
            assert_same(await history.aget_messages(), every_kind())
            assert_same(history.messages, every_kind())  # the sync side sees the same
            await history.aclear()
            assert await history.aget_messages() == []
            history.close()

    asyncio.run(main())


def test_async_methods_on_a_sync_client_run_in_an_executor(client: rmem.Client) -> None:
    history = RmemChatMessageHistory("chat", client=client)

    async def main() -> None:
        await history.aadd_messages([HumanMessage("hi"), AIMessage("hello")])
        assert await history.aget_messages() == [HumanMessage("hi"), AIMessage("hello")]
        await history.aclear()
        assert await history.aget_messages() == []

    asyncio.run(main())


def test_history_made_from_a_url_owns_and_closes_its_client(redis_url: str, namespace: str) -> None:
    with RmemChatMessageHistory("chat", redis_url, namespace=namespace, pool_size=4) as h:
        h.add_messages([HumanMessage("sync")])
        assert h.session.namespace == namespace

    async def main() -> None:
        async with RmemChatMessageHistory("chat", redis_url=redis_url, namespace=namespace) as h:
            await h.aadd_messages([AIMessage("async")])
            assert await h.aget_messages() == [HumanMessage("sync"), AIMessage("async")]

    asyncio.run(main())


def test_mixing_sync_and_async_calls_reads_your_own_writes(redis_url: str, namespace: str) -> None:
    """One history, used from sync and async code in turn, always sees what it wrote."""

    async def main() -> None:
        with RmemChatMessageHistory("mixed", redis_url, namespace=namespace) as history:
            for i in range(15):
                history.add_messages([HumanMessage(f"s{i}")])
                assert (await history.aget_messages())[-1] == HumanMessage(f"s{i}")
                await history.aadd_messages([AIMessage(f"a{i}")])
                assert history.messages[-1] == AIMessage(f"a{i}")
        async with rmem.AsyncClient.from_url(redis_url, namespace=namespace) as aclient:
            history = RmemChatMessageHistory("from-async", client=aclient)
            for i in range(15):  # async writes, sync reads (through to Redis)
                await history.aadd_messages([AIMessage(f"a{i}")])
                assert history.messages[-1] == AIMessage(f"a{i}")
            await history.aget_messages()  # the async client now holds a replica
            for i in range(30):  # sync writes, async reads: the replica does not serve stale
                history.add_messages([HumanMessage(f"s{i}")])
                assert (await history.aget_messages())[-1] == HumanMessage(f"s{i}")
                history.clear()
                assert await history.aget_messages() == []
            history.close()
        async with rmem.AsyncClient.from_url(redis_url, namespace=namespace) as aclient:
            with rmem.Client.from_url(redis_url, namespace=namespace) as client:
                both = RmemChatMessageHistory("both", client=client, async_client=aclient)
                assert both.messages == [] and await both.aget_messages() == []  # two replicas
                for i in range(30):  # each client's replica sees the other's writes at once
                    both.add_messages([HumanMessage(f"s{i}")])
                    assert (await both.aget_messages())[-1] == HumanMessage(f"s{i}")
                    await both.aadd_messages([AIMessage(f"a{i}")])
                    assert both.messages[-1] == AIMessage(f"a{i}")

    asyncio.run(main())


def test_add_messages_is_one_round_trip(history: RmemChatMessageHistory, redis_url: str) -> None:
    history.add_messages([HumanMessage("first")])  # creates (and lists) the session
    raw, marker = redis.Redis.from_url(redis_url), redis.Redis.from_url(redis_url)
    marker.ping()  # connected before MONITOR starts: only its ECHO shows below
    try:
        # MONITOR shows every command the server runs, those run by scripts marked "lua".
        with raw.monitor() as monitor:  # type: ignore[no-untyped-call]
            history.add_messages([HumanMessage(f"m{i}") for i in range(50)])
            marker.echo("end-of-test")
            sent = []
            while "end-of-test" not in (cmd := monitor.next_command())["command"]:
                if cmd["client_type"] != "lua":
                    sent.append(cmd["command"].split(" ", 1)[0])
    finally:
        raw.close()
        marker.close()
    assert sent == ["EVALSHA"]  # one script call; its XADDs etc. run inside it
    assert [m.content for m in history.messages] == ["first"] + [f"m{i}" for i in range(50)]


@pytest.mark.parametrize("sync", [True, False], ids=["replica", "read-through"])
def test_changing_a_message_read_or_written_changes_nothing_stored(
    redis_url: str, namespace: str, sync: bool
) -> None:
    """rmem's local replica hands out shared messages: what a read returns must be a copy."""
    with rmem.Client.from_url(redis_url, namespace=namespace, sync=sync) as client:
        history = RmemChatMessageHistory("chat", client=client)
        written = every_kind()
        history.add_messages(written)
        written[2].response_metadata["changed"] = "after add_messages"
        if sync:  # wait until the replica is caught up: it then serves the reads
            deadline = time.monotonic() + 5
            while not replica_serves(client, "chat"):
                assert time.monotonic() < deadline, "the replica never caught up"
                history.messages  # noqa: B018 - a read opens the replica
                time.sleep(0.005)
        first = history.messages
        ai = first[2]
        assert isinstance(ai, AIMessage)
        ai.response_metadata["changed"] = True
        ai.tool_calls[0]["args"]["q"] = "changed"
        ai.additional_kwargs["nested"]["a"].append("changed")
        first[1].content[0]["text"] = "changed"  # type: ignore[index]
        assert_same(history.messages, every_kind())
        assert_same(to_langchain(history.session.messages()), every_kind())
        assert not sync or replica_serves(client, "chat")  # the reads above came from it


def replica_serves(client: rmem.Client, session_id: str) -> bool:
    sync = client._sync
    assert sync is not None
    with sync.lock:
        return sync.session(client.namespace, session_id) is not None


def test_a_bad_message_refuses_the_whole_batch(history: RmemChatMessageHistory) -> None:
    history.add_messages([HumanMessage("kept")])
    bad = ToolMessage("x", tool_call_id="c1", artifact=object())
    with pytest.raises(rmem.ValidationError):
        history.add_messages([HumanMessage("a"), bad, HumanMessage("b")])
    with pytest.raises(rmem.ValidationError, match="message 1 must be a LangChain BaseMessage"):
        history.add_messages([HumanMessage("a"), {"role": "user", "content": "b"}])  # type: ignore[list-item]
    with pytest.raises(rmem.ValidationError, match="not one message"):
        history.add_messages(HumanMessage("a"))  # type: ignore[arg-type]
    with pytest.raises(rmem.ValidationError, match="max_message_bytes"):
        history.add_messages([HumanMessage("x" * 2_000_000)])
    assert history.messages == [HumanMessage("kept")]


def test_a_message_langchain_cannot_read_back_is_refused(history: RmemChatMessageHistory) -> None:
    class Custom(BaseMessage):
        type: Literal["custom"] = "custom"

    history.add_messages([HumanMessage("kept")])
    with pytest.raises(rmem.ValidationError, match="message 1 is of type 'custom'"):
        history.add_messages([HumanMessage("not written"), Custom(content="c")])
    assert history.messages == [HumanMessage("kept")]  # the history stays readable
    history.add_messages([RemoveMessage(id="m1")])  # every type messages_from_dict reads
    assert history.messages[-1] == RemoveMessage(id="m1")


def test_empty_batch_does_nothing(history: RmemChatMessageHistory) -> None:
    history.add_messages([])
    assert not history.session.exists()


def test_clear_deletes_the_session_and_is_idempotent(history: RmemChatMessageHistory) -> None:
    history.clear()  # nothing there yet: no error
    history.add_messages([HumanMessage("a"), AIMessage("b")])
    assert len(history) == 2
    history.clear()
    assert history.messages == [] and len(history) == 0
    assert not history.session.exists()
    history.add_message(HumanMessage("again"))
    assert history.messages == [HumanMessage("again")]


def test_convenience_methods_and_str(history: RmemChatMessageHistory) -> None:
    history.add_user_message("hi")
    history.add_ai_message("hello")
    assert str(history) == "Human: hi\nAI: hello"
    assert history.id == history.session_id == "chat"


def test_ttl_and_sliding_reach_the_session(client: rmem.Client) -> None:
    sliding = RmemChatMessageHistory("s", client=client, ttl=60)
    sliding.add_messages([HumanMessage("a")])
    info = sliding.session.info()
    assert (info.ttl_policy, info.sliding) == (60, True)
    assert info.ttl is not None and 0 < info.ttl <= 60
    absolute = RmemChatMessageHistory("a", client=client, ttl=30, sliding=False)
    absolute.add_messages([HumanMessage("a")])
    assert (absolute.session.info().ttl_policy, absolute.session.info().sliding) == (30, False)
    forever = RmemChatMessageHistory("f", client=client)
    forever.add_messages([HumanMessage("a")])
    assert forever.session.info().ttl is None


def test_drop_in_arguments_of_langchain_redis(redis_url: str) -> None:
    prefix = f"chat-{uuid.uuid4().hex[:8]}:"
    with RmemChatMessageHistory(
        session_id="user123", redis_url=redis_url, key_prefix=prefix, ttl=3600
    ) as history:
        history.add_messages([HumanMessage("hi")])
        assert history.namespace == prefix.rstrip(":")
        assert history.session.info().ttl_policy == 3600
        history.clear()
    # langchain-redis takes any prefix; rmem refuses one that is no namespace, naming it
    for bad in ("chat history:", 7):
        with pytest.raises(rmem.ValidationError, match=f"key_prefix {bad!r} is taken as"):
            RmemChatMessageHistory("user123", redis_url=redis_url, key_prefix=bad)  # type: ignore[arg-type]


def test_namespaces_and_sessions_are_isolated(client: rmem.Client) -> None:
    a = RmemChatMessageHistory("same", client=client)
    b = RmemChatMessageHistory("same", client=client, namespace=client.namespace + "-b")
    c = RmemChatMessageHistory("other", client=client)
    a.add_messages([HumanMessage("a")])
    b.add_messages([HumanMessage("b")])
    assert a.messages == [HumanMessage("a")] and b.messages == [HumanMessage("b")]
    assert c.messages == []
    b.clear()


def test_messages_written_by_other_rmem_code_are_readable(client: rmem.Client) -> None:
    session = client.session("mixed")
    session.extend(
        [
            {"role": "system", "content": "rules"},
            {"role": "user", "content": "hi", "name": "bob"},
            {"role": "assistant", "content": {"structured": [1, 2]}, "metadata": {"k": 1}},
            {"role": "tool", "content": "3 rows", "tool_call_id": "call_7"},
            {"role": "function", "content": "42", "name": "calc"},
            {"role": "critic", "content": "meh", "score": 2},
            {"role": "tool", "content": "no call id"},
        ]
    )
    got = RmemChatMessageHistory("mixed", client=client).messages
    assert [type(m) for m in got] == [
        SystemMessage,
        HumanMessage,
        AIMessage,
        ToolMessage,
        FunctionMessage,
        ChatMessage,
        ChatMessage,
    ]
    assert got[1].name == "bob" and got[1].id == session.messages()[1].id
    assert got[2].content == '{"structured": [1, 2]}'
    assert got[2].additional_kwargs == {"metadata": {"k": 1}}
    assert isinstance(got[3], ToolMessage) and got[3].tool_call_id == "call_7"
    assert isinstance(got[5], ChatMessage) and got[5].role == "critic"
    assert got[5].additional_kwargs == {"score": 2}


def test_a_damaged_langchain_message_raises_corrupt_data(client: rmem.Client) -> None:
    client.session("bad").append({"role": "tool", "content": "x", "lc_type": "tool"})
    with pytest.raises(rmem.CorruptDataError, match="not a LangChain message") as info:
        _ = RmemChatMessageHistory("bad", client=client).messages
    assert (info.value.namespace, info.value.session) == (client.namespace, "bad")


def test_bad_arguments_are_validation_errors(client: rmem.Client, redis_url: str) -> None:
    with pytest.raises(rmem.ValidationError):
        RmemChatMessageHistory("", client=client)
    with pytest.raises(rmem.ValidationError):
        RmemChatMessageHistory("x", client=client, ttl=-1)
    with pytest.raises(rmem.ValidationError, match="client must be"):
        RmemChatMessageHistory("x", client=redis.Redis())  # type: ignore[arg-type]
    with pytest.raises(rmem.ValidationError, match="apply to clients made from redis_url"):
        RmemChatMessageHistory("x", client=client, pool_size=3)
    with pytest.raises(rmem.ValidationError):
        RmemChatMessageHistory("x", redis_url, index_name="idx:chat_history")
    with pytest.raises(rmem.ValidationError):
        RmemChatMessageHistory("x", redis_url, namespace="bad namespace!")
    other = rmem.AsyncClient.from_url(redis_url, namespace="elsewhere")
    with pytest.raises(rmem.ValidationError, match="give namespace= to choose one"):
        RmemChatMessageHistory("x", client=client, async_client=other)
    with pytest.raises(rmem.ValidationError, match="not both"):
        RmemChatMessageHistory("x", client=other, async_client=other)
    both = RmemChatMessageHistory("x", client=client, async_client=other, namespace="n1")
    assert both.namespace == "n1"


def test_import_without_the_extra_names_it() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["langchain_core"] = None  # as if langchain-core were not installed
        import rmem
        try:
            import rmem.integrations.langchain
        except ImportError as exc:
            assert isinstance(exc, rmem.RmemError), type(exc)
            print(exc)
        else:
            raise SystemExit("imported")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "pip install 'rmem[langchain]'" in out.stdout


# JSON-like values as LangChain messages carry them (no NaN: it never equals itself).
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(
    content=st.text(max_size=50),
    kwargs=st.dictionaries(st.text(max_size=8), _json, max_size=4),
    meta=st.dictionaries(st.text(max_size=8), _json, max_size=4),
    lc_id=st.none() | st.text(min_size=1, max_size=20),
    name=st.none() | st.text(max_size=10),
    args=st.dictionaries(st.text(max_size=8), _json, max_size=3),
)
def test_codec_round_trip_property(
    content: str,
    kwargs: dict[str, Any],
    meta: dict[str, Any],
    lc_id: str | None,
    name: str | None,
    args: dict[str, Any],
) -> None:
    """to_rmem -> rmem's encoding -> from_rmem is lossless for any JSON-like field values."""
    messages: list[BaseMessage] = [
        AIMessage(
            content,
            id=lc_id,
            name=name,
            additional_kwargs=kwargs,
            response_metadata=meta,
            tool_calls=[{"name": "f", "args": args, "id": "c1"}],
        ),
        HumanMessage(content, id=lc_id, name=name, additional_kwargs=kwargs),
        ToolMessage(content, tool_call_id="c1", artifact=args, response_metadata=meta),
    ]
    stored = []
    for m in messages:
        msg = rmem.Message.model_validate(to_rmem(m))
        stored.append(decode_message(encode_message(msg, 1 << 20, 1024), "k"))
    assert_same(to_langchain(stored), messages)
    assert_as_validated(stored)
    assert [from_rmem(s)["type"] for s in stored] == ["ai", "human", "tool"]


def _writer(url: str, namespace: str, name: str, turns: int, start: Any) -> None:
    """One process: ``turns`` add_messages of a 3-message turn, all tagged with its name."""
    with RmemChatMessageHistory("shared", url, namespace=namespace, ttl=600) as history:
        start.wait(timeout=30)
        for turn in range(turns):
            history.add_messages(
                [
                    HumanMessage(f"{name} q{turn}", name=name),
                    AIMessage(
                        "",
                        name=name,
                        tool_calls=[{"name": "t", "args": {"turn": turn}, "id": f"{name}{turn}"}],
                    ),
                    ToolMessage(f"{name} r{turn}", tool_call_id=f"{name}{turn}", name=name),
                ]
            )


def test_two_processes_adding_at_once_lose_and_split_nothing(
    redis_url: str, namespace: str
) -> None:
    turns = 150
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(2)
    procs = [
        ctx.Process(target=_writer, args=(redis_url, namespace, name, turns, start))
        for name in ("p1", "p2")
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0]
    with RmemChatMessageHistory("shared", redis_url, namespace=namespace) as history:
        got = history.messages
    # Nothing lost: every message of both writers, once, each writer's order kept.
    assert len(got) == 2 * turns * 3
    for name in ("p1", "p2"):
        mine = [m.content for m in got if m.name == name and isinstance(m, HumanMessage)]
        assert mine == [f"{name} q{t}" for t in range(turns)]
    # Nothing split: every add_messages call is three adjacent messages of one writer.
    kinds = [(type(m).__name__, m.name) for m in got]
    split = [
        i
        for i in range(0, len(got), 3)
        if [k for k, _ in kinds[i : i + 3]] != ["HumanMessage", "AIMessage", "ToolMessage"]
        or len({n for _, n in kinds[i : i + 3]}) != 1
    ]
    assert not split, f"{len(split)} of {2 * turns} turns split, first at {split[0]}: " + str(
        kinds[split[0] : split[0] + 6]
    )
    for i in range(0, len(got), 3):
        human, ai, tool = got[i : i + 3]
        assert isinstance(ai, AIMessage) and isinstance(tool, ToolMessage)
        turn = ai.tool_calls[0]["args"]["turn"]
        assert human.content == f"{human.name} q{turn}"
        assert tool.tool_call_id == ai.tool_calls[0]["id"]


def test_bench_langchain_quick_run(redis_url: str, tmp_path: Path) -> None:
    pytest.importorskip("langchain_redis")
    report = tmp_path / "bench.md"
    report.write_text("# Benchmarks\n", encoding="utf-8")
    proc = subprocess.run(
        [
            sys.executable,
            "benchmarks/bench_langchain.py",
            "--quick",
            "--url",
            redis_url,
            "--markdown",
            str(report),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [
        line.split("|")[1].strip().strip("`")
        for line in proc.stdout.splitlines()
        if line.startswith("| ") and not line.startswith("| operation")
    ]
    sides = ["rmem", "rmem sync=False", "langchain-redis"]
    if "sync" not in rmem.Settings.model_fields:  # an rmem tree without local replicas
        sides.remove("rmem sync=False")
    ops = [f"add_messages([{n}])" for n in (1, 2, 10)]
    ops += [f"messages ({n} in history)" for n in (20, 200)]
    cold = "messages (200 in history, first read in this process)"
    first_reads = [f"{side} {cold}" for side in sides] if "rmem sync=False" in sides else []
    async_sides = [s.replace("rmem", "rmem AsyncClient") for s in sides]
    async_ops = [f"aadd_messages([{n}])" for n in (1, 2, 10)] + ["aget_messages() (20 in history)"]
    async_rows = [f"{side} {op}" for op in async_ops for side in async_sides]
    assert rows == [f"{side} {op}" for op in ops for side in sides] + first_reads + async_rows
    written = report.read_text(encoding="utf-8")
    assert written.startswith("# Benchmarks\n")
    assert written.count("<!-- bench_langchain:start -->") == 1
    assert "python benchmarks/bench_langchain.py" in written
