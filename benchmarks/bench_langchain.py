"""LangChain chat history benchmark: RmemChatMessageHistory beside langchain-redis's.

Run from the repository root (needs ``pip install -e ".[langchain]" langchain-redis``)::

    python benchmarks/bench_langchain.py                      # full run (~1 min on 2 cores)
    python benchmarks/bench_langchain.py --quick              # small run (the smoke test)
    python benchmarks/bench_langchain.py --url redis://127.0.0.1:6379/0 --markdown out.md

Without ``--url`` it starts its own embedded Redis 8.2 with RediSearch and RedisJSON
(``rmem.server.EmbeddedRedis``), which langchain-redis needs. Both histories are used
through their sync LangChain API, with the arguments a user gives (``session_id``, the
server, ``ttl=3600``), on the same server, in alternating blocks (see
``bench_sessions.py``, whose ``measure`` times every call with ``perf_counter_ns`` and the GC
off, after warm-up). Each row writes or reads the same LangChain messages on both sides: a
human message of 200 characters, and an AI message of 200 characters with an id, response
metadata and token usage, as chat models return them. ``add_messages([2])`` is one turn of
both (what ``RunnableWithMessageHistory`` writes per call), ``add_messages([10])`` five; the
read rows read a history of 20 or 200 of them, written before timing starts.

rmem runs twice: with its default client, which keeps a local replica of each session it
reads (``Settings.sync``; reads are then served in process while the replica is known to be
caught up, and writes also update it), and with ``sync=False``, which reads through to Redis
every time. Both are what users get; the replica makes the read rows a different kind of
comparison, so both are shown. A ``sync=False`` read fetches the messages from Redis every
time but decodes each distinct stored message once per process (the adapter keeps its
LangChain form, packed, by the stored bytes). The first-read rows read the long history as
the first read of those messages in the process: with ``sync=False`` that memory is cleared
before every call; the default client reads another session of the same 200 messages at
every call, one it holds no replica of yet (written by another client), so it reads Redis
and its sync thread builds the replica in the background.

The same TTL on both sides does not mean the same TTL work: rmem's ``ttl=3600`` is sliding
(every read and write restarts the whole session's TTL: a read sends the sliding-TTL touch,
one more command in its one round trip, and a write sets the TTL of the session's three
keys), while langchain-redis expires each message's key on its own, sets on write and never
refreshed by a read.

langchain-redis keeps every message as a RedisJSON document indexed by RediSearch (one
``idx:...`` index for all sessions; this run gives it one of its own) and reads a history
with an ``FT.SEARCH`` sorted by time; it stores only content, type, additional kwargs (and a
tool message's call id and status), so it writes less than rmem, which keeps every field.
The async rows run the same writes and the 20-message read through LangChain's async API
(``aadd_messages``, ``aget_messages``), timed on one event loop (``bench_sessions.ameasure``):
rmem's history on an ``rmem.AsyncClient`` (native async calls; default client and
``sync=False``), langchain-redis's through LangChain's base class, which runs its sync method
in the loop's default executor (langchain-redis 0.2.6 has no async methods of its own).

Nothing is asserted (exit code 0): the ratios against the issue's 2x target are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import sys
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

# Runnable as a file from a source checkout without installing rmem.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sessions import Result, ameasure, environment, measure, server_url, write_section
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

import rmem
from rmem.integrations.langchain import RmemChatMessageHistory

X = "\u00d7"  # multiplication sign
MARK_START = "<!-- bench_langchain:start -->"
MARK_END = "<!-- bench_langchain:end -->"
TARGET = 2.0  # the "at least 2x faster" on the main write and read
TEXT = ("The agent reads the ticket, plans its next step and replies. " * 4)[:200]
BATCH = 10
HISTORIES = (20, 200)
RMEM, RMEM_NOSYNC, LCR = "rmem", "rmem sync=False", "langchain-redis"
# rmem's default client keeps local replicas of the sessions it reads (Settings.sync); the
# sync=False rows read through to Redis every time. Older rmem trees have no such option.
HAS_SYNC = "sync" in rmem.Settings.model_fields
SIDES = (RMEM, RMEM_NOSYNC, LCR) if HAS_SYNC else (RMEM, LCR)
BATCHES = (1, 2, BATCH)  # one message; one turn (what RunnableWithMessageHistory writes); ten
OPS = tuple(f"add_messages([{size}])" for size in BATCHES) + tuple(
    f"messages ({n} in history)" for n in HISTORIES
)
# The read of the long history once more, as the first read of those messages in the
# process. With sync=False, rmem decodes each distinct stored message once per process (the
# adapter's StoredForms), so this row clears that before every read; its default client reads
# another session of the same messages at every call, one it holds no replica of yet
# (written by another client). langchain-redis keeps nothing.
COLD = f"messages ({HISTORIES[-1]} in history, first read in this process)"
COLD_SIDES = (RMEM, RMEM_NOSYNC, LCR) if HAS_SYNC else ()
# The async API: rmem's history on an rmem.AsyncClient (native async calls, the way the
# adapter's docs show for async apps) beside langchain-redis's, which has no async methods of
# its own (LangChain's base class runs the sync ones in the loop's default executor).
RMEM_ASYNC, RMEM_ASYNC_NOSYNC = "rmem AsyncClient", "rmem AsyncClient sync=False"
ASYNC_SIDES = (RMEM_ASYNC, RMEM_ASYNC_NOSYNC, LCR) if HAS_SYNC else (RMEM_ASYNC, LCR)
ASYNC_OPS = (
    *(f"aadd_messages([{size}])" for size in BATCHES),
    f"aget_messages() ({HISTORIES[0]} in history)",
)
ROWS = (
    tuple((side, op) for op in OPS for side in SIDES)
    + tuple((side, COLD) for side in COLD_SIDES)
    + tuple((side, op) for op in ASYNC_OPS for side in ASYNC_SIDES)
)


def row_name(side: str, op: str) -> str:
    return f"{side} {op}"


def human() -> HumanMessage:
    return HumanMessage(TEXT)


def ai(i: int) -> AIMessage:
    return AIMessage(
        TEXT,
        id=f"run-{uuid.uuid4()}",
        response_metadata={"model_name": "gpt-4o-mini", "finish_reason": "stop"},
        usage_metadata={"input_tokens": 120 + i, "output_tokens": 48, "total_tokens": 168 + i},
    )


def turns(n: int) -> list[BaseMessage]:
    """``n`` messages, human and AI in turn."""
    return [human() if i % 2 == 0 else ai(i) for i in range(n)]


def run(url: str, n: dict[str, int], blocks: int, warmup: int) -> list[Result]:
    from langchain_redis import RedisChatMessageHistory

    tag = uuid.uuid4().hex[:8]
    clients = {RMEM: rmem.Client.from_url(url, namespace=f"bench-lc-{tag}")}
    if HAS_SYNC:
        clients[RMEM_NOSYNC] = rmem.Client.from_url(url, namespace=f"bench-lc-{tag}-ns", sync=False)
    async_namespaces = {RMEM_ASYNC: f"bench-lc-{tag}-a", RMEM_ASYNC_NOSYNC: f"bench-lc-{tag}-ans"}
    # langchain-redis 0.2.6 cannot reopen an existing index over redis-py 8's default RESP3
    # (it reads FT.INFO's index_definition as a list; redis-py 8 gives a dict, and the
    # constructor fails with AttributeError): give it a RESP2 client, as its users must.
    lcr_redis = redis.Redis.from_url(url, protocol=2)
    lcr_args: dict[str, Any] = {
        "redis_client": lcr_redis,
        "ttl": 3600,
        "key_prefix": f"bench-lc-{tag}:",
        "index_name": f"idx:bench-lc-{tag}",
    }
    made: dict[str, Any] = {}

    def lcr_history(name: str) -> Any:
        with warnings.catch_warnings():  # langchain-redis 0.2.6 marks the class deprecated
            warnings.simplefilter("ignore")
            made[name] = RedisChatMessageHistory(name, **lcr_args)
        return made[name]

    def histories(name: str) -> dict[str, Any]:
        made_here: dict[str, Any] = {
            side: RmemChatMessageHistory(name, client=c, ttl=3600) for side, c in clients.items()
        }
        return made_here | {LCR: lcr_history(name)}

    async def arun() -> dict[str, list[int]]:
        async_clients = {
            side: rmem.AsyncClient.from_url(
                url,
                namespace=async_namespaces[side],
                **({} if side == RMEM_ASYNC else {"sync": False}),
            )
            for side in ASYNC_SIDES
            if side != LCR
        }

        def async_histories(name: str) -> dict[str, Any]:
            made_here: dict[str, Any] = {
                side: RmemChatMessageHistory(name, client=c, ttl=3600)
                for side, c in async_clients.items()
            }
            return made_here | {LCR: lcr_history(name)}

        try:
            return await _arun(async_histories, n, blocks, warmup)
        finally:
            for c in async_clients.values():
                for sid in await c.sessions():
                    await c.session(sid).delete()
                await c.aclose()

    def first_reads(history: list[BaseMessage], count: int) -> Callable[[], list[BaseMessage]]:
        # The default client's first-read row: ``count`` sessions holding ``history``, written
        # by another client, read one after the other (each call reads the next).
        reader = clients[RMEM]
        with rmem.Client.from_url(url, namespace=reader.namespace, sync=False) as writer:
            sids = [f"first-{i}" for i in range(count)]
            for sid in sids:
                RmemChatMessageHistory(sid, client=writer).add_messages(history)
        it = iter([RmemChatMessageHistory(sid, client=reader, ttl=3600) for sid in sids])
        return lambda: next(it).messages

    try:
        samples = _run(histories, first_reads, n, blocks, warmup)
        samples |= asyncio.run(arun())
    finally:
        for lcr in made.values():
            lcr.clear()
        if made:
            next(iter(made.values())).index.delete(drop=True)
        for c in clients.values():
            for sid in c.sessions():
                c.session(sid).delete()
            c.close()
        lcr_redis.close()
    per_call = dict(zip(OPS, BATCHES, strict=False)) | dict(zip(ASYNC_OPS, BATCHES, strict=False))
    return [
        Result(row_name(side, op), samples[row_name(side, op)], per_call.get(op, 1))
        for side, op in ROWS
    ]


def _run(
    histories: Callable[[str], dict[str, Any]],
    first_reads: Callable[[list[BaseMessage], int], Callable[[], list[BaseMessage]]],
    n: dict[str, int],
    blocks: int,
    warmup: int,
) -> dict[str, list[int]]:
    samples: dict[str, list[int]] = {}
    for size, op in zip(BATCHES, OPS, strict=False):
        made = histories(f"write-{size}")
        msgs = turns(size)
        samples |= measure(
            {
                row_name(side, op): functools.partial(made[side].add_messages, msgs)
                for side in SIDES
            },
            n[f"add{size}"],
            blocks,
            warmup,
        )
    for size, op in zip(HISTORIES, OPS[len(BATCHES) :], strict=True):
        made = histories(f"read-{size}")
        history = turns(size)
        for side in SIDES:
            made[side].add_messages(history)
        for side in SIDES:
            _check_read(side, made[side].messages, history)
        samples |= measure(
            {row_name(side, op): _reader(made[side]) for side in SIDES},
            n["read"] if size == HISTORIES[0] else n["read_long"],
            blocks,
            warmup,
        )
        if size == HISTORIES[-1] and COLD_SIDES:
            readers = {side: _reader(made[side], cold=True) for side in COLD_SIDES}
            readers[RMEM] = first_reads(history, warmup + n["read_long"])
            samples |= measure(
                {row_name(side, COLD): read for side, read in readers.items()},
                n["read_long"],
                blocks,
                warmup,
            )
    return samples


async def _arun(
    histories: Callable[[str], dict[str, Any]],
    n: dict[str, int],
    blocks: int,
    warmup: int,
) -> dict[str, list[int]]:
    """The async rows: the same workloads through ``aadd_messages`` and ``aget_messages``."""
    samples: dict[str, list[int]] = {}
    for size, op in zip(BATCHES, ASYNC_OPS, strict=False):
        made, msgs = histories(f"awrite-{size}"), turns(size)
        writes = {s: functools.partial(made[s].aadd_messages, msgs) for s in ASYNC_SIDES}
        samples |= await ameasure(
            {row_name(s, op): w for s, w in writes.items()}, n[f"add{size}"], blocks, warmup
        )
    made, history = histories(f"aread-{HISTORIES[0]}"), turns(HISTORIES[0])
    for side in ASYNC_SIDES:
        await made[side].aadd_messages(history)
        _check_read(side, await made[side].aget_messages(), history)
    reads = {row_name(s, ASYNC_OPS[-1]): made[s].aget_messages for s in ASYNC_SIDES}
    return samples | await ameasure(reads, n["read"], blocks, warmup)


def _check_read(side: str, got: list[BaseMessage], history: list[BaseMessage]) -> None:
    # Each side must return the whole history, in order, before anything is timed; rmem keeps
    # every field, langchain-redis drops ids, usage and response metadata.
    assert [(m.type, m.content) for m in got] == [(m.type, m.content) for m in history]
    assert side == LCR or got == history


def _reader(history: Any, cold: bool = False) -> Callable[[], list[BaseMessage]]:
    import rmem.integrations.langchain as adapter

    # Trees before StoredForms decoded every read anew: there every read is a first read.
    forms = getattr(adapter, "_STORED_FORMS", None) if cold else None

    def read() -> list[BaseMessage]:
        if forms is not None:
            forms.clear()
        messages: list[BaseMessage] = history.messages
        return messages

    return read


def table(results: list[Result]) -> str:
    by = {r.name: r for r in results}
    lines = [
        "| operation | p50 µs | p95 µs | p99 µs | throughput | langchain-redis÷rmem p50 "
        f"| p99 | target ≥ {TARGET:g}{X} |",
        "|---|--:|--:|--:|--:|--:|--:|---|",
    ]
    for (side, op), r in zip(ROWS, results, strict=True):
        unit = "msg/s" if "add_messages" in op else "ops/s"
        cells = [f"`{r.name}`" if side != LCR else r.name]
        cells += [f"{r.pct(p):,.0f}" for p in (50, 95, 99)] + [f"{r.rate():,.0f} {unit}"]
        if side != LCR:
            other = by[row_name(LCR, op)]
            p50, p99 = (other.pct(p) / r.pct(p) for p in (50, 99))
            verdict = "pass" if p50 >= TARGET else "FAIL"
            cells += [f"{p50:.2f}{X}", f"{p99:.2f}{X}", f"**{verdict}**"]
        else:
            cells += ["", "", ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def versions() -> str:
    import importlib.metadata as md

    names = ("langchain-core", "langchain-redis", "redisvl")
    return ", ".join(f"{name} {md.version(name)}" for name in names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="Redis to use (default: start an embedded one)")
    parser.add_argument("--quick", action="store_true", help="a small run (smoke test)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every op count")
    parser.add_argument(
        "--blocks", type=int, help="alternating blocks per row (default 50; 5 with --quick)"
    )
    parser.add_argument("--markdown", type=Path, help="write/replace a section in this file")
    args = parser.parse_args(argv)
    n = {"add1": 3000, "add2": 3000, "add10": 1000, "read": 3000, "read_long": 600}
    warmup, blocks = 100, args.blocks or (5 if args.quick else 50)
    if args.quick:
        n = {"add1": 50, "add2": 50, "add10": 20, "read": 50, "read_long": 10}
        warmup = 5
    n = {k: max(blocks, int(v * args.scale)) for k, v in n.items()}
    command = "python benchmarks/bench_langchain.py" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:])
    )
    # The frameworks' modules are many objects: frozen, they are not scanned again by the
    # gc.collect() before every timed block (which took ~0.15 s each).
    gc.collect()
    gc.freeze()
    started = time.perf_counter()
    with server_url(args.url) as url:
        env = environment(url)
        results = run(url, n, blocks, warmup)
    counts = ", ".join(f"{k} {v:,}" for k, v in n.items())
    text = (
        "## LangChain chat history\n\n"
        "RmemChatMessageHistory (default client, with local replicas, and `sync=False`) beside "
        "langchain-redis's RedisChatMessageHistory, all with `ttl=3600`, on the same server in "
        "alternating blocks, through LangChain's sync API and then its async API (rmem on an "
        "`rmem.AsyncClient`, native async; langchain-redis has no async methods, so LangChain "
        "runs its sync ones in the event loop's executor); see the docstring of the script "
        "and docs/integrations.md (LangChain section). rmem's TTL is sliding: its reads also "
        "restart the session's TTL (one more command in the same round trip), langchain-redis's "
        "do not. The first-read rows read as the first read of those messages in the process "
        "(rmem's `sync=False` reads decode each distinct stored message once per process, "
        "that memory cleared before every call; its default client reads another session "
        "at every call, one it holds no replica of yet).\n\n"
        f"Command: `{command}`\n\nEnvironment: {env}; {versions()}\n\n"
        f"Ops per row: {counts} (in {blocks} alternating blocks, after warm-up); "
        f"took {time.perf_counter() - started:.0f} s.\n\n{table(results)}\n"
    )
    print(text)
    if args.markdown:
        write_section(args.markdown, text, MARK_START, MARK_END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
