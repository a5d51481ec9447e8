"""rmem.integrations.openai_agents.RmemSession against a real Redis: items, atomicity, options.

The SDK's own session tests run against RmemSession too, in tests/framework/openai_agents/.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import subprocess
import sys
import threading
import uuid
from collections.abc import Awaitable, Callable
from itertools import groupby, pairwise
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip(
    "agents", reason="needs the OpenAI Agents SDK: pip install 'rmem[openai-agents]'"
)

from agents import Agent, Runner, function_tool, set_tracing_disabled
from agents.memory import Session, SessionSettings
from agents.testing import ScriptedModel, assistant_message, function_call

import rmem
from rmem.integrations.openai_agents import (
    ENVELOPE,
    MissingExtraError,
    RmemSession,
    SessionClosedError,
)

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")

# One item of every kind the SDK's TResponseInputItem union names, shaped as the SDK sends them.
EVERY_KIND: list[dict[str, Any]] = [
    {"role": "user", "content": "What's the weather in Paris?"},
    {"type": "message", "role": "developer", "content": "Answer briefly."},
    {
        "type": "message",
        "role": "user",
        "content": [
            {"type": "input_text", "text": "What is on this picture?"},
            {
                "type": "input_image",
                "image_url": "data:image/png;base64,iVBORw0K",
                "detail": "auto",
            },
            {"type": "input_file", "file_id": "file_1", "filename": "a.pdf"},
        ],
    },
    {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": "Sunny.", "annotations": [], "logprobs": []}],
    },
    {
        "id": "msg_2",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "refusal", "refusal": "I can't help with that."}],
    },
    {
        "id": "fs_1",
        "type": "file_search_call",
        "status": "completed",
        "queries": ["weather"],
        "results": [{"file_id": "f", "score": 0.5, "text": "t", "attributes": {"page": 1}}],
    },
    {
        "id": "cu_1",
        "type": "computer_call",
        "call_id": "cc_1",
        "status": "completed",
        "action": {"type": "click", "button": "left", "x": 10, "y": 20},
        "pending_safety_checks": [],
    },
    {
        "type": "computer_call_output",
        "call_id": "cc_1",
        "output": {"type": "computer_screenshot", "image_url": "data:image/png;base64,AA"},
        "acknowledged_safety_checks": [],
    },
    {
        "id": "ws_1",
        "type": "web_search_call",
        "status": "completed",
        "action": {"type": "search", "query": "Paris weather"},
    },
    {
        "id": "fc_1",
        "type": "function_call",
        "call_id": "call_1",
        "name": "get_weather",
        "arguments": '{"city": "Paris"}',
        "status": "completed",
    },
    {"type": "function_call_output", "call_id": "call_1", "output": "sunny, 21 °C"},
    {
        "type": "function_call_output",
        "call_id": "call_2",
        "output": [{"type": "input_text", "text": "structured output"}],
    },
    {
        "id": "rs_1",
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": "Look up the weather."}],
        "content": [{"type": "reasoning_text", "text": "thinking"}],
        "encrypted_content": "gAAAAABencrypted",
    },
    {"id": "ig_1", "type": "image_generation_call", "status": "completed", "result": "iVBOR"},
    {
        "id": "ci_1",
        "type": "code_interpreter_call",
        "status": "completed",
        "code": "print(6 * 7)",
        "container_id": "cntr_1",
        "outputs": [{"type": "logs", "logs": "42"}],
    },
    {
        "id": "ls_1",
        "type": "local_shell_call",
        "call_id": "lsc_1",
        "status": "completed",
        "action": {"type": "exec", "command": ["ls", "-l"], "env": {"A": "1"}},
    },
    {"id": "lso_1", "type": "local_shell_call_output", "output": "a.txt\n"},
    {
        "type": "shell_call",
        "call_id": "sh_1",
        "action": {"commands": ["pwd"], "timeout_ms": 1000},
        "status": "completed",
    },
    {
        "type": "shell_call_output",
        "call_id": "sh_1",
        "output": [{"stdout": "/", "stderr": "", "outcome": {"type": "exit", "exit_code": 0}}],
    },
    {
        "type": "apply_patch_call",
        "call_id": "ap_1",
        "status": "completed",
        "operation": {"type": "create_file", "path": "a.py", "diff": "+print(1)\n"},
    },
    {"type": "apply_patch_call_output", "call_id": "ap_1", "status": "completed", "output": "ok"},
    {
        "id": "ml_1",
        "type": "mcp_list_tools",
        "server_label": "files",
        "tools": [{"name": "read", "input_schema": {"type": "object"}, "annotations": None}],
    },
    {
        "id": "mar_1",
        "type": "mcp_approval_request",
        "server_label": "files",
        "name": "delete",
        "arguments": "{}",
    },
    {"type": "mcp_approval_response", "approval_request_id": "mar_1", "approve": True},
    {
        "id": "mc_1",
        "type": "mcp_call",
        "server_label": "files",
        "name": "read",
        "arguments": '{"path": "a"}',
        "output": "text",
        "error": None,
    },
    {"type": "custom_tool_call", "call_id": "ct_1", "name": "grammar", "input": "SELECT 1"},
    {"type": "custom_tool_call_output", "call_id": "ct_1", "output": "1"},
    {"type": "item_reference", "id": "msg_1"},
    {"id": "cmp_1", "type": "compaction", "encrypted_content": "gAAAAABcompacted"},
    # Fields rmem itself types or owns, with values it types differently: kept exactly.
    {"role": "tool", "content": None, "name": None, "metadata": "not a dict", "created_at": "x"},
    {"role": "", "type": "message", "content": "blank role"},
    {"role": 7, "content": [1, 2.5, True, None, {"k": []}], "name": 3, ENVELOPE: {"x": 1}},
    {},
]


def run(factory: Callable[[], Awaitable[T]]) -> T:
    """Run one coroutine on a fresh event loop (the repo does not use pytest-asyncio)."""

    async def main() -> T:
        return await factory()

    return asyncio.run(main())


@pytest.fixture(autouse=True, scope="module")
def _no_tracing() -> Any:
    set_tracing_disabled(True)
    yield
    set_tracing_disabled(False)


def make(url: str, namespace: str, sid: str = "chat", **kwargs: Any) -> RmemSession:
    return RmemSession.from_url(sid, url=url, namespace=namespace, **kwargs)


def test_is_an_sdk_session(redis_url: str, namespace: str) -> None:
    session = make(redis_url, namespace)
    assert isinstance(session, Session)
    assert session.session_id == "chat"
    assert session.namespace == namespace
    assert isinstance(session.session_settings, SessionSettings)
    assert repr(session) == f"<RmemSession {namespace}/chat>"


# Both read paths: rmem's local replica (the default client), and read-through (sync=False),
# where the items are made from the stored dicts themselves.
READ_PATHS = pytest.mark.parametrize("sync", [True, False], ids=["replica", "read-through"])


@READ_PATHS
def test_every_item_kind_round_trips_exactly(redis_url: str, namespace: str, sync: bool) -> None:
    sent = json.loads(json.dumps(EVERY_KIND))  # the caller's items must not be changed

    async def scenario() -> None:
        async with make(redis_url, namespace, redis_kwargs={"sync": sync}) as session:
            await session.add_items(EVERY_KIND)
            got = await session.get_items()
            assert got == EVERY_KIND
            assert json.dumps(got, sort_keys=True) == json.dumps(EVERY_KIND, sort_keys=True)
            assert await session.get_items(limit=3) == EVERY_KIND[-3:]
            for expected in reversed(EVERY_KIND):
                assert await session.pop_item() == expected
            assert await session.pop_item() is None

    run(scenario)
    assert sent == EVERY_KIND


JSON_KEYS = st.sampled_from(
    ["role", "content", "id", "created_at", "name", "metadata", "type", ENVELOPE, "status"]
) | st.text(max_size=8)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
JSON_ITEMS = st.lists(st.dictionaries(JSON_KEYS, JSON_VALUES, max_size=7), min_size=1, max_size=5)


@READ_PATHS
def test_any_json_like_item_round_trips_exactly(redis_url: str, namespace: str, sync: bool) -> None:
    loop = asyncio.new_event_loop()
    session = make(redis_url, namespace, redis_kwargs={"sync": sync})
    try:

        @settings(max_examples=150, deadline=None)
        @given(items=JSON_ITEMS, limit=st.integers(min_value=1, max_value=6))
        def check(items: list[dict[str, Any]], limit: int) -> None:
            async def scenario() -> None:
                await session.add_items(items)  # type: ignore[arg-type]
                assert await session.get_items() == items
                assert await session.get_items(limit=limit) == items[-limit:]
                assert await session.pop_item() == items[-1]
                await session.clear_session()

            loop.run_until_complete(scenario())

        check()
    finally:
        loop.run_until_complete(session.close())
        loop.close()


@READ_PATHS
def test_items_are_plain_rmem_messages_and_back(redis_url: str, namespace: str, sync: bool) -> None:
    async def scenario() -> None:
        async with (
            rmem.AsyncClient.from_url(redis_url, namespace=namespace, sync=sync) as client,
            RmemSession("mixed", client=client) as session,
        ):
            await session.add_items(EVERY_KIND[:1] + EVERY_KIND[9:11])
            user, call, output = await client.session("mixed").messages()
            assert (user.role, user.content) == ("user", "What's the weather in Paris?")
            assert (call.role, call.name) == ("function_call", "get_weather")
            assert output.role == "function_call_output"
            assert output.to_dict()["output"] == "sunny, 21 °C"
            # Written by rmem directly: read back without rmem's own id and created_at.
            await client.session("mixed").append(
                {"role": "assistant", "content": "hi", "name": "bot", "lang": "en"}
            )
            assert (await session.get_items(limit=1)) == [
                {"role": "assistant", "content": "hi", "name": "bot", "lang": "en"}
            ]

    run(scenario)


def test_sdk_item_ids_are_not_deduplicated(redis_url: str, namespace: str) -> None:
    # The SDK's test helpers (and some models) give every output message the id "1".
    same_id = {"id": "1", "type": "message", "role": "assistant", "content": []}

    async def scenario() -> list[Any]:
        async with make(redis_url, namespace) as session:
            await session.add_items([same_id, same_id])
            await session.add_items([same_id])
            return await session.get_items()

    assert run(scenario) == [same_id] * 3


def test_add_items_is_one_atomic_write(redis_url: str, namespace: str) -> None:
    async def scenario() -> None:
        async with make(redis_url, namespace) as session:
            await session.add_items(EVERY_KIND[:10])
            info = await session.rmem_session.info()
            assert (info.message_count, info.revision) == (10, 1)  # one script run
            created = info.created_at
            await session.add_items(EVERY_KIND[10:20])
            info = await session.rmem_session.info()
            assert (info.message_count, info.revision, info.created_at) == (20, 2, created)

    run(scenario)


@pytest.mark.parametrize(
    "bad",
    [
        [{"role": "user", "content": "ok"}, {"role": "user", "content": b"bytes"}],
        [{"role": "user", "content": "ok"}, {"role": "user", "content": {1, 2}}],
        [{"role": "user", "content": "ok"}, {"role": "user", "content": object()}],
        [{"role": "user", "content": "ok"}, {"role": "user", "content": 2**64}],
        [{"role": "user", "content": "ok"}, {"role": "user", "metadata": {1: "int key"}}],
        [{"role": "user", "content": "ok"}, "not a dict"],
        [{"role": "user", "content": "ok"}, {"role": "user", "content": "x" * 2_000_000}],
        {"role": "user", "content": "a dict, not a list"},
        "a string",
        None,
    ],
    ids=[
        "bytes",
        "set",
        "object",
        "int>64bit",
        "int-key",
        "str-item",
        "too-big",
        "dict",
        "str",
        "none",
    ],
)
def test_bad_items_are_refused_and_nothing_is_written(
    redis_url: str, namespace: str, bad: Any
) -> None:
    async def scenario() -> None:
        async with make(redis_url, namespace) as session:
            await session.add_items([{"role": "user", "content": "before"}])
            with pytest.raises(rmem.ValidationError):
                await session.add_items(bad)
            assert await session.get_items() == [{"role": "user", "content": "before"}]

    run(scenario)


def _writer(url: str, namespace: str, name: str, batches: int, start: Any) -> None:
    """One of the processes of the test below: ``batches`` add_items calls of a turn each."""

    async def main() -> None:
        async with RmemSession.from_url("shared", url=url, namespace=namespace) as session:
            for batch in range(batches):
                turn = [dict(item, writer=name, batch=batch, seq=i) for i, item in enumerate(TURN)]
                await session.add_items(turn)

    start.wait()  # both processes are up: write at the same time
    asyncio.run(main())


TURN = EVERY_KIND[9:13] + EVERY_KIND[3:4]  # call, output, output, reasoning, assistant message
BATCHES = 300


@pytest.fixture(scope="module")
def concurrent_history(redis_url: str) -> list[dict[str, Any]]:
    """What two processes wrote with BATCHES add_items calls each, started at the same time."""
    namespace = f"t-{uuid.uuid4().hex[:12]}"
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(2)
    procs = [
        ctx.Process(target=_writer, args=(redis_url, namespace, f"p{n}", BATCHES, start))
        for n in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]

    async def read() -> list[Any]:
        async with make(redis_url, namespace, "shared") as session:
            return await session.get_items()

    return run(read)


def test_two_processes_add_items_lose_nothing_and_keep_their_order(
    concurrent_history: list[dict[str, Any]],
) -> None:
    items = concurrent_history
    assert len(items) == 2 * BATCHES * len(TURN)
    for writer in ("p0", "p1"):
        mine = [item for item in items if item["writer"] == writer]
        assert mine == [
            dict(item, writer=writer, batch=batch, seq=i)
            for batch in range(BATCHES)
            for i, item in enumerate(TURN)
        ]
    writers = [item["writer"] for item in items]
    switches = sum(1 for a, b in pairwise(writers) if a != b)
    assert switches > 1, "the writers did not overlap; the test proved nothing"


def test_two_processes_add_items_never_split_a_call(
    concurrent_history: list[dict[str, Any]],
) -> None:
    runs = [key for key, _ in groupby(concurrent_history, lambda i: (i["writer"], i["batch"]))]
    assert len(runs) == 2 * BATCHES  # each call's items stayed together


def test_items_are_copies_not_shared_with_the_replica(redis_url: str, namespace: str) -> None:
    item = {"role": "user", "content": [{"type": "input_text", "text": "hi"}]}
    original = json.loads(json.dumps(item))

    async def scenario() -> None:
        async with make(redis_url, namespace) as session:
            await session.add_items([item])
            item["content"][0]["text"] = "changed by the caller after add_items"
            for _ in range(3):  # later reads may come from rmem's local replica
                got = await session.get_items()
                assert got == [original]
                got[0]["content"][0]["text"] = "changed by the caller after get_items"
                await asyncio.sleep(0.05)
            assert await session.get_items() == [original]

    run(scenario)


def test_the_writers_replica_keeps_its_items_as_redis_gives_them_back(
    redis_url: str, namespace: str
) -> None:
    # The writer's replica takes the messages add_items built from its private copy of the
    # items, without decoding the stored payloads: they must equal what Redis holds, and
    # the caller's later changes must not reach them.
    item = {"role": "user", "content": [{"type": "input_text", "text": "hi", "n": (1, 2)}]}
    stored = {"role": "user", "content": [{"type": "input_text", "text": "hi", "n": [1, 2]}]}

    async def scenario() -> None:
        async with make(redis_url, namespace) as session:
            client = session._client
            assert await session.get_items() == []  # opens the replica
            for _ in range(200):
                with client._sync.lock:
                    if client._sync.session(namespace, "chat") is not None:
                        break
                await asyncio.sleep(0.01)
            await session.add_items([item, {"role": "assistant", "content": "yes"}])
            item["content"][0]["text"] = "changed by the caller after add_items"
            with client._sync.lock:
                replica = client._sync.session(namespace, "chat")
                assert replica is not None  # the next read is served by the replica
                held = list(replica.messages)
            async with rmem.AsyncClient.from_url(redis_url, namespace=namespace, sync=False) as c:
                assert held == await c.session("chat").messages()
            assert await session.get_items() == [stored, {"role": "assistant", "content": "yes"}]

    run(scenario)


def test_another_clients_writes_become_visible(redis_url: str, namespace: str) -> None:
    async def scenario() -> None:
        async with make(redis_url, namespace) as writer, make(redis_url, namespace) as reader:
            assert await reader.get_items() == []
            for n in range(3):
                await writer.add_items([{"role": "user", "content": f"m{n}"}])
                expected = [{"role": "user", "content": f"m{i}"} for i in range(n + 1)]
                for _ in range(200):  # the reader's replica hears of the write by pub/sub
                    if await reader.get_items() == expected:
                        break
                    await asyncio.sleep(0.01)
                assert await reader.get_items() == expected

    run(scenario)


def test_limits_and_session_settings(redis_url: str, namespace: str) -> None:
    items = [{"role": "user", "content": f"m{i}"} for i in range(6)]

    async def scenario() -> None:
        async with make(redis_url, namespace, session_settings={"limit": 4}) as session:
            await session.add_items(items)
            assert await session.get_items() == items[-4:]  # the settings' limit
            assert await session.get_items(limit=2) == items[-2:]  # an explicit limit wins
            assert await session.get_items(limit=100) == items
            assert await session.get_items(limit=0) == []
            assert await session.get_items(limit=-1) == []
            for bad in (1.5, "2", True):
                with pytest.raises(rmem.ValidationError):
                    await session.get_items(limit=bad)  # type: ignore[arg-type]
            session.session_settings = SessionSettings()
            assert await session.get_items() == items

    run(scenario)


def test_pop_and_clear(redis_url: str, namespace: str) -> None:
    async def scenario() -> None:
        async with make(redis_url, namespace) as session:
            assert await session.pop_item() is None
            await session.clear_session()  # clearing a session that does not exist is fine
            await session.add_items([{"role": "user", "content": "a"}, EVERY_KIND[9]])
            assert await session.pop_item() == EVERY_KIND[9]
            await session.clear_session()
            assert not await session.rmem_session.exists()
            assert await session.get_items() == []
            await session.add_items([{"role": "user", "content": "again"}])
            assert await session.get_items() == [{"role": "user", "content": "again"}]

    run(scenario)


@pytest.mark.parametrize("automatic", [False, True], ids=["forced", "runner"])
@pytest.mark.parametrize("empty", [False, True], ids=["output", "no-output"])
def test_compaction_replaces_history_atomically(
    redis_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch, automatic: bool, empty: bool
) -> None:
    """After every round trip the session sends, another process's reader sees the whole old
    history or the whole new one, never an empty session (adapted from the SDK's
    ``test_compaction_replaces_redis_history_atomically``, which observes RedisSession's
    pipelines the same way; against clear_session() + add_items() it sees ``[]``)."""
    from types import SimpleNamespace
    from unittest.mock import AsyncMock

    from agents.memory import OpenAIResponsesCompactionSession

    history: list[Any] = [{"role": "user", "content": "original"}]
    output: list[Any] = [] if empty else [{"type": "compaction", "encrypted_content": "gA"}]

    async def scenario() -> list[list[Any]]:
        async with (
            make(redis_url, namespace, "compact", ttl=3600) as backend,
            make(redis_url, namespace, "compact", redis_kwargs={"sync": False}) as reader,
        ):
            await backend.add_items(history)
            compact = AsyncMock(return_value=SimpleNamespace(usage=None, output=output))
            session = OpenAIResponsesCompactionSession(
                backend.session_id,
                backend,
                client=SimpleNamespace(responses=SimpleNamespace(compact=compact)),  # type: ignore[arg-type]
                compaction_mode="input",
                should_trigger_compaction=lambda _: True,
            )
            observations: list[list[Any]] = []
            rmem_backend = backend.client._backend
            send = rmem_backend.pipeline

            async def observed(*args: Any, **kwargs: Any) -> Any:
                replies = await send(*args, **kwargs)
                observations.append(await reader.get_items())
                return replies

            with monkeypatch.context() as patch:
                patch.setattr(rmem_backend, "pipeline", observed)
                if automatic:
                    model = ScriptedModel([[assistant_message("reply")]])
                    await Runner.run(Agent(name="a", model=model), "next", session=session)
                else:
                    await session.run_compaction({"force": True})
            compact.assert_awaited_once()
            assert await reader.get_items() == output
            assert await backend.get_items() == output
            info = await reader.rmem_session.info() if not empty else None
            assert info is None or (info.ttl_policy == 3600 and info.sliding)
            return observations

    observations = run(scenario)
    assert observations and observations[-1] == output
    if not empty:
        assert all(observations), observations  # never an empty history in between


def test_atomic_replace_refuses_bad_items_before_changing_anything(
    redis_url: str, namespace: str
) -> None:
    async def scenario() -> None:
        async with make(redis_url, namespace) as session:
            await session.add_items([{"role": "user", "content": "kept"}])
            with pytest.raises(rmem.ValidationError):
                await session._atomic_replace_items([{"content": object()}])  # type: ignore[list-item]
            assert await session.get_items() == [{"role": "user", "content": "kept"}]
            # A replacement of a session that does not exist creates (and lists) it.
            await session.clear_session()
            assert await session._atomic_replace_items([EVERY_KIND[9]]) is True
            assert await session.get_items() == [EVERY_KIND[9]]
            assert await session.client.sessions() == [session.session_id]

    run(scenario)


def test_atomic_replace_is_left_to_the_sdk_for_subclasses_that_store_differently(
    redis_url: str, namespace: str
) -> None:
    class Transforming(RmemSession):
        async def add_items(self, items: list[Any]) -> None:
            await super().add_items([{**item, "tag": 1} for item in items])

    class Plain(RmemSession):
        pass

    async def scenario() -> None:
        client = rmem.AsyncClient.from_url(redis_url, namespace=namespace)
        async with client:
            assert await Transforming("a", client=client)._atomic_replace_items([]) is False
            plain = Plain("b", client=client)
            assert await plain._atomic_replace_items([{"role": "user", "content": "x"}])
            assert await plain.get_items() == [{"role": "user", "content": "x"}]

    run(scenario)


def test_atomic_replace_works_on_the_local_backend(namespace: str) -> None:
    async def scenario() -> None:
        async with RmemSession.from_url("m", url="memory://") as session:
            await session.add_items([{"role": "user", "content": str(i)} for i in range(3)])
            assert await session._atomic_replace_items([{"role": "user", "content": "new"}])
            assert await session.get_items() == [{"role": "user", "content": "new"}]

    run(scenario)


def test_atomic_replace_while_redis_is_unreachable_is_replayed(
    redis_server: Any, redis_url: str, namespace: str
) -> None:
    """Degraded, the replacement is served by the local store and queued; the recovery replays
    it (its clear and append keep their stamps), so Redis ends with the new history only."""
    from tests._faults import FaultProxy

    summary = [{"role": "user", "content": "summary"}]

    async def scenario(proxy: FaultProxy) -> None:
        options = {"socket_timeout": 0.5, "connect_timeout": 0.5}
        async with RmemSession.from_url(
            "off", url=proxy.url, namespace=namespace, redis_kwargs=options
        ) as session:
            await session.add_items([{"role": "user", "content": str(i)} for i in range(3)])
            proxy.drop()
            assert await session._atomic_replace_items(summary)
            health = await session.client.health()
            assert health.state == "degraded" and health.pending_writes >= 1
            assert await session.get_items() == summary
            proxy.heal()
            for _ in range(500):
                health = await session.client.health()
                if health.state == "connected" and health.pending_writes == 0:
                    break
                await asyncio.sleep(0.02)
            assert health.state == "connected" and health.pending_writes == 0
        async with make(redis_url, namespace, "off", redis_kwargs={"sync": False}) as reader:
            assert await reader.get_items() == summary

    with FaultProxy.in_front_of(redis_server) as proxy:
        run(lambda: scenario(proxy))


def test_ttl_namespace_and_client_options(redis_url: str, namespace: str) -> None:
    async def scenario() -> None:
        async with make(redis_url, namespace, "ttl", ttl=60, sliding=False) as session:
            await session.add_items([{"role": "user", "content": "x"}])
            info = await session.rmem_session.info()
            assert (info.ttl_policy, info.sliding) == (60, False)
            assert info.ttl is not None and 0 < info.ttl <= 60
        async with rmem.AsyncClient.from_url(redis_url, namespace=namespace) as client:
            aliased = RmemSession("same", client=client, key_prefix=f"{namespace}.app1")
            other = RmemSession("same", client=client, namespace=f"{namespace}.app2")
            assert aliased.namespace == f"{namespace}.app1"
            await aliased.add_items([{"role": "user", "content": "app1"}])
            assert await other.get_items() == []
            await aliased.close()  # the caller's client stays open
            assert (await client.health()).state == "connected"

    run(scenario)
    with pytest.raises(rmem.ValidationError, match="not both"):
        RmemSession("x", client=None, namespace="a", key_prefix="b")
    for prefix in ("my app/", "", 3):  # a key_prefix RedisSession takes, but no rmem namespace
        with pytest.raises(rmem.ValidationError, match=f"key_prefix {prefix!r} is taken as"):
            RmemSession("x", key_prefix=prefix)  # type: ignore[arg-type]
    with (
        rmem.Client.from_url(redis_url, sync=False) as sync_client,
        pytest.raises(rmem.ValidationError, match=r"rmem\.AsyncClient"),
    ):
        RmemSession("x", client=sync_client)  # type: ignore[arg-type]
    with pytest.raises(rmem.ValidationError, match="ttl"):
        make(redis_url, namespace, ttl=2**63)
    with pytest.raises(rmem.ValidationError):
        make(redis_url, namespace, sid="")
    with pytest.raises(rmem.ValidationError, match="namespace"):
        make(redis_url, "bad namespace!")
    with pytest.raises(rmem.ValidationError):
        RmemSession.from_url("x", url=redis_url, redis_kwargs={"no_such_option": 1})


def test_close_is_terminal_only_for_an_owned_client(redis_url: str, namespace: str) -> None:
    async def scenario() -> None:
        session = make(redis_url, namespace)
        await session.add_items([{"role": "user", "content": "x"}])
        assert await session.ping() is True
        await session.close()
        await session.close()
        operations: list[Callable[[], Awaitable[Any]]] = [
            session.get_items,
            lambda: session.add_items([]),
            session.pop_item,
            session.clear_session,
            session.ping,
        ]
        for operation in operations:
            with pytest.raises(SessionClosedError, match="RmemSession is closed") as caught:
                await operation()
            assert isinstance(caught.value, RuntimeError)
            assert isinstance(caught.value, rmem.RmemError)

    run(scenario)


def test_ping_is_false_when_redis_cannot_be_reached(namespace: str) -> None:
    async def scenario() -> bool:
        url = "redis://127.0.0.1:9/0"  # the discard port: nothing listens on loopback
        async with RmemSession.from_url(
            "x",
            url=url,
            namespace=namespace,
            redis_kwargs={"connect_timeout": 0.5, "fallback": False},
        ) as session:
            with pytest.raises(rmem.UnavailableError):
                await session.get_items()
            return await session.ping()

    assert run(scenario) is False


@function_tool
def get_weather(city: str) -> str:
    """Return the weather of a city."""
    return f"sunny in {city}"


def test_runner_keeps_history_with_tool_calls(redis_url: str, namespace: str) -> None:
    model = ScriptedModel(
        [
            [function_call("get_weather", {"city": "Paris"}, call_id="call_1")],
            [assistant_message("It is sunny in Paris.")],
            [assistant_message("You asked about Paris.")],
        ]
    )
    agent = Agent(name="weather", model=model, tools=[get_weather])

    async def scenario() -> list[Any]:
        async with make(redis_url, namespace) as session:
            first = await Runner.run(agent, "Weather in Paris?", session=session)
            assert first.final_output == "It is sunny in Paris."
            second = await Runner.run(agent, "What did I ask?", session=session)
            assert second.final_output == "You asked about Paris."
            return await session.get_items()

    stored = run(scenario)
    kinds = [item.get("type", item.get("role")) for item in stored]
    assert kinds == [
        "user",
        "function_call",
        "function_call_output",
        "message",
        "user",
        "message",
    ]
    last_input = model.calls[-1].input
    assert isinstance(last_input, list)
    assert last_input[: len(stored) - 1] == stored[:-1]  # the model saw the stored history


def test_run_sync_from_another_thread_uses_its_own_connection(
    redis_url: str, namespace: str
) -> None:
    model = ScriptedModel([[assistant_message("one")], [assistant_message("two")]])
    agent = Agent(name="a", model=model)
    results: list[Any] = []

    def in_thread(session: RmemSession, text: str) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            results.append(Runner.run_sync(agent, text, session=session).final_output)
        finally:
            loop.close()

    async def scenario() -> list[Any]:
        async with make(redis_url, namespace) as session:  # its pool lives on this loop
            await session.add_items([{"role": "user", "content": "before"}])
            for text in ("first", "second"):
                worker = threading.Thread(target=in_thread, args=(session, text))
                worker.start()
                await asyncio.to_thread(worker.join, 60)
            return await session.get_items()

    items = run(scenario)
    assert results == ["one", "two"]
    assert [item.get("content") for item in items if item.get("role") == "user"] == [
        "before",
        "first",
        "second",
    ]
    assert len(items) == 5


def test_import_without_the_extra_names_the_install_command() -> None:
    code = (
        "import sys\n"
        "sys.modules['agents'] = None  # as if the SDK were not installed\n"
        "try:\n"
        "    import rmem.integrations.openai_agents\n"
        "except ImportError as exc:\n"
        "    import rmem\n"
        "    assert isinstance(exc, rmem.RmemError), type(exc)\n"
        "    print(type(exc).__name__, exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(MissingExtraError.__name__)
    assert "pip install 'rmem[openai-agents]'" in done.stdout


def test_benchmark_quick_run_prints_every_row(redis_url: str, tmp_path: Path) -> None:
    report = tmp_path / "bench.md"
    report.write_text("# Benchmarks\n", encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "benchmarks/bench_openai_agents.py",
            "--quick",
            "--url",
            redis_url,
            "--markdown",
            str(report),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows = [
        line.split("|")[1].strip()
        for line in done.stdout.splitlines()
        if line.startswith("| ") and not line.startswith("| operation")
    ]
    ops = ["add_items(1 item)", "add_items(10 items)", "get_items()", "get_items(limit=20)"]
    first_read = ["get_items() (first read in this process)"]
    expected = [
        f"{who}.{op}, {config}"
        for config in ("no TTL", "ttl=3600", "no TTL, rmem sync=False")
        for op in ops + (first_read if config != "ttl=3600" else [])
        for who in ("RmemSession", "RedisSession")
    ]
    assert rows == expected
    written = report.read_text(encoding="utf-8")
    assert written.startswith("# Benchmarks\n")
    assert written.count("<!-- bench_openai_agents:start -->") == 1
    assert "Command: `python benchmarks/bench_openai_agents.py --quick --url" in written
