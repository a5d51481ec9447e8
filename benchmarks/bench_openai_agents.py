"""OpenAI Agents SDK session benchmark: rmem's RmemSession beside the SDK's own RedisSession.

Run from the repository root::

    python benchmarks/bench_openai_agents.py                    # full run (~1-2 min on 2 cores)
    python benchmarks/bench_openai_agents.py --quick            # small run (the smoke test)
    python benchmarks/bench_openai_agents.py --url redis://127.0.0.1:6379/0 --markdown out.md

Without ``--url`` it starts its own embedded Redis (``rmem.server.EmbeddedRedis``); both
session classes talk to that one server in the same run. Every operation of one class and the
same operation of the other run in alternating blocks (50 per row by default: rmem, SDK, rmem,
...; the starting contender rotates), so machine noise hits both alike. Each call is awaited
on one event loop and timed with ``perf_counter_ns`` with the GC off, after warm-up. (This is
``bench_sessions.measure`` for coroutines: timing a sync wrapper would add an event-loop entry,
about 20 µs here, to every call of both.)

The workload, the same for both classes:

- ``add_items(1 item)``: one user message of 200 characters;
- ``add_items(10 items)``: one agent turn: a user message, two reasoning items, two function
  calls and their outputs, a web search call and two assistant messages;
- ``get_items()`` and ``get_items(limit=20)`` on a 100-item history (ten such turns).

Both are made the way their docs show: ``RmemSession.from_url(sid, url=...)`` and
``RedisSession.from_url(sid, url=...)``, each owning its connection pool. Three configurations
run: no TTL (both classes' default); ``ttl=3600`` (RmemSession's TTL is sliding, the SDK's is
refreshed by writes); and no TTL with the rmem client made with ``sync=False``. In the first
two, RmemSession reads come from rmem's local replica of the session (the client default,
``sync=True``: kept current by pub/sub, and by this process's own writes); with
``sync=False`` every RmemSession call goes to Redis, as every RedisSession call does; there
rmem still decodes each distinct stored item once per process after reading it twice (the
adapter keeps its form, packed, by the stored bytes), and one more row reads the whole
history as the first read of those items in the process (that memory cleared before every
call). The default client (no TTL) also gets a first-read row: every call reads another
100-item session, which this process has not read before, so rmem's client has no replica of
it yet (it reads Redis, and its sync thread builds the replica in the background); the
sessions of this row share one client per side (see ``_first_reads``). The issue's target,
rmem at least 2x faster at p50 on the main write and read, is reported per row and never
asserted (exit code 0).

Not the same TTL work on both sides: RmemSession's TTL is sliding, so each of its reads also
restarts the session's TTL (the touch script, one more command in the read's one round
trip; sent with no TTL too, since the stored policy decides), while RedisSession's reads
never touch a TTL and its writes refresh it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.metadata
import sys
import time
import uuid
from pathlib import Path
from typing import Any

# Runnable as a file from a source checkout without installing rmem.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from agents.extensions.memory.redis_session import RedisSession
from bench_sessions import AsyncOp, Result, ameasure, environment, server_url, write_section

from rmem.integrations.openai_agents import RmemSession

X = "\u00d7"  # multiplication sign
MARK_START = "<!-- bench_openai_agents:start -->"
MARK_END = "<!-- bench_openai_agents:end -->"
TARGET = 2.0  # the issue: rmem at least 2x faster than the framework's Redis implementation
HISTORY_TURNS = 10
TEXT = ("The agent reads the ticket, plans its next step and replies. " * 6)[:200]
USER_ITEM: dict[str, Any] = {"role": "user", "content": TEXT}
TURN: list[dict[str, Any]] = [
    {"role": "user", "content": TEXT},
    {
        "id": "rs_01",
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": TEXT[:120]}],
        "encrypted_content": "gAAAAB" + "x" * 240,
    },
    {
        "id": "fc_01",
        "type": "function_call",
        "call_id": "call_01",
        "name": "get_weather",
        "arguments": '{"city": "Paris", "unit": "celsius"}',
        "status": "completed",
    },
    {"type": "function_call_output", "call_id": "call_01", "output": '{"temp": 21, "sky": "sun"}'},
    {
        "id": "fc_02",
        "type": "function_call",
        "call_id": "call_02",
        "name": "get_forecast",
        "arguments": '{"city": "Paris", "days": 3}',
        "status": "completed",
    },
    {"type": "function_call_output", "call_id": "call_02", "output": TEXT},
    {
        "id": "rs_02",
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": TEXT[:80]}],
    },
    {
        "id": "ws_01",
        "type": "web_search_call",
        "status": "completed",
        "action": {"type": "search", "query": "Paris weather this week"},
    },
    {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": TEXT[:60], "annotations": [], "logprobs": []}],
    },
    {
        "id": "msg_02",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": TEXT, "annotations": [], "logprobs": []}],
    },
]
OPS = ("add_items(1 item)", "add_items(10 items)", "get_items()", "get_items(limit=20)")
# With sync=False, get_items() once more as the first read of those items in the process: rmem
# decodes each distinct stored message once per process after reading it twice (the adapter's
# StoredForms), so this row clears that memory before every call. The SDK keeps nothing.
COLD = "get_items() (first read in this process)"
CONFIGS = ("no TTL", "ttl=3600", "no TTL, rmem sync=False")
RMEM, SDK = "RmemSession", "RedisSession"


def _first_read(session: RmemSession) -> AsyncOp:
    """``session.get_items`` with rmem's per-process memory of decoded items cleared first."""
    import rmem.integrations.openai_agents as adapter

    # Trees before StoredForms decoded every read anew: there every read is a first read.
    forms = getattr(adapter, "_STORED_ITEMS", None)

    async def read() -> Any:
        if forms is not None:
            forms.clear()
        return await session.get_items()

    return read


async def _first_reads(
    url: str, ns: str, count: int, closing: list[Any]
) -> tuple[AsyncOp, AsyncOp]:
    """``get_items()`` of ``count`` sessions of 100 items each, a new one every call: the first
    read of each in this process (the default rmem client then has no replica of it yet).

    Each side reads through one client shared by its sessions, as a server handling many
    conversations does: an ``rmem.AsyncClient`` (the default, keeping replicas) and one
    ``redis.asyncio`` client for the SDK's sessions. rmem's histories are written by another
    client, so the reading one holds nothing of them before its first read.
    """
    import redis.asyncio

    import rmem

    writer = rmem.AsyncClient.from_url(url, namespace=ns, sync=False)
    reader = rmem.AsyncClient.from_url(url, namespace=ns)
    sdk_client = redis.asyncio.Redis.from_url(url)
    closing.extend((writer, reader, sdk_client))
    ids = [f"first-{i}" for i in range(count)]
    ours = [RmemSession(sid, client=reader) for sid in ids]
    theirs = [RedisSession(sid, redis_client=sdk_client, key_prefix=f"{ns}:sdk") for sid in ids]
    for sid, sdk_session in zip(ids, theirs, strict=True):
        written = RmemSession(sid, client=writer)
        for _ in range(HISTORY_TURNS):
            await written.add_items(TURN)
            await sdk_session.add_items(TURN)
    closing.extend(theirs)  # cleared at the end; RmemSession.clear_session via the writer
    closing.extend(RmemSession(sid, client=writer) for sid in ids)

    def next_read(sessions: list[Any]) -> AsyncOp:
        it = iter(sessions)
        return lambda: next(it).get_items()

    return next_read(ours), next_read(theirs)


def row_name(contender: str, op: str, config: str) -> str:
    return f"{contender}.{op}, {config}"


async def run_config(
    url: str, config: str, n: dict[str, int], blocks: int, warmup: int
) -> list[Result]:
    ttl = 3600 if config == "ttl=3600" else None
    options = {"sync": False} if "sync=False" in config else {}
    ns = f"bench-oa-{uuid.uuid4().hex[:8]}"
    made: list[Any] = []
    closing: list[Any] = []  # clients and sessions of the first-read row

    def pair(sid: str) -> tuple[RmemSession, RedisSession]:
        ours = RmemSession.from_url(sid, url=url, redis_kwargs=options, namespace=ns, ttl=ttl)
        theirs = RedisSession.from_url(sid, url=url, key_prefix=f"{ns}:sdk", ttl=ttl)
        made.extend((ours, theirs))
        return ours, theirs

    results: list[Result] = []
    try:
        add1 = pair("add1")
        add10 = pair("add10")
        read = pair("read")
        for session in read:
            for _ in range(HISTORY_TURNS):
                await session.add_items(TURN)
        assert await read[0].get_items() == await read[1].get_items()  # same history both sides
        ops: dict[str, tuple[AsyncOp, AsyncOp]] = {
            OPS[0]: (
                lambda: add1[0].add_items([USER_ITEM]),
                lambda: add1[1].add_items([USER_ITEM]),
            ),
            OPS[1]: (lambda: add10[0].add_items(TURN), lambda: add10[1].add_items(TURN)),
            OPS[2]: (read[0].get_items, read[1].get_items),
            OPS[3]: (lambda: read[0].get_items(limit=20), lambda: read[1].get_items(limit=20)),
        }
        if "sync=False" in config:
            ops[COLD] = (_first_read(read[0]), read[1].get_items)
        elif ttl is None:
            ops[COLD] = await _first_reads(url, ns, warmup + n[COLD], closing)
        for op, (ours_op, theirs_op) in ops.items():
            rows = {row_name(RMEM, op, config): ours_op, row_name(SDK, op, config): theirs_op}
            samples = await ameasure(rows, n[op], blocks, warmup)
            per_call = 10 if op == OPS[1] else 1
            results += [Result(name, samples[name], per_call) for name in rows]
    finally:
        for session in made:
            await session.clear_session()
            await session.close()
        for thing in reversed(closing):  # sessions first, then their clients
            if hasattr(thing, "clear_session"):
                await thing.clear_session()
            else:
                await thing.aclose()
    return results


def table(results: list[Result]) -> str:
    by = {r.name: r for r in results}
    lines = [
        "| operation | p50 µs | p95 µs | p99 µs | throughput | SDK÷rmem p50 | SDK÷rmem p99 "
        f"| target ≥ {TARGET:g}{X} |",
        "|---|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in results:
        unit = "items/s" if r.per_call > 1 else "ops/s"
        cells = [r.name] + [f"{r.pct(p):,.0f}" for p in (50, 95, 99)]
        cells.append(f"{r.rate():,.0f} {unit}")
        if r.name.startswith(RMEM):
            sdk = by[SDK + r.name[len(RMEM) :]]
            ratios = [sdk.pct(p) / r.pct(p) for p in (50, 99)]
            verdict = "pass" if ratios[0] >= TARGET else "FAIL"
            cells += [f"{ratios[0]:.2f}{X}", f"{ratios[1]:.2f}{X}", f"**{verdict}**"]
        else:
            cells += ["", "", ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def versions() -> str:
    found = []
    for dist in ("rmem", "openai-agents"):
        try:
            found.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{dist} (source tree)")
    return ", ".join(found)


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="Redis to use (default: start an embedded one)")
    parser.add_argument("--quick", action="store_true", help="a small run (smoke test)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every op count")
    parser.add_argument(
        "--blocks", type=int, help="alternating blocks per row (default 50; 4 with --quick)"
    )
    parser.add_argument("--markdown", type=Path, help="write/replace a section in this file")
    args = parser.parse_args(args_list)
    n = dict(zip((*OPS, COLD), (2000, 1000, 1000, 2000, 300), strict=True))
    warmup, blocks = 100, args.blocks or (4 if args.quick else 50)
    if args.quick:
        n, warmup = dict(zip((*OPS, COLD), (40, 20, 20, 40, 8), strict=True)), 5
    n = {k: max(blocks, int(v * args.scale)) for k, v in n.items()}
    # The frameworks' modules are many objects: frozen, they are not scanned again by the
    # gc.collect() before every timed block (which took ~0.15 s each).
    gc.collect()
    gc.freeze()
    started = time.perf_counter()
    with server_url(args.url) as url:
        env = environment(url)
        results: list[Result] = []
        for config in CONFIGS:
            results += asyncio.run(run_config(url, config, n, blocks, warmup))
    counts = ", ".join(f"{k} {v:,}" for k, v in n.items())
    command = " ".join(["python benchmarks/bench_openai_agents.py", *args_list])
    text = (
        "## OpenAI Agents SDK session\n\n"
        "RmemSession (default client, reading from rmem's local replica, and `sync=False`) "
        "beside the SDK's RedisSession, both from `from_url`, on the same server in "
        "alternating blocks; see the script's docstring and "
        "docs/integrations.md (OpenAI Agents SDK section). RmemSession's reads also restart "
        "the session's sliding TTL (one more command in the same round trip, sent in every "
        "configuration), RedisSession's do not. The first-read rows read a history for "
        "the first time in the process: with `sync=False`, the same one with rmem's "
        "per-process memory of decoded items cleared before every call; with the default "
        "client (no TTL), another session at every call, each side through one client shared "
        "by all of them, so rmem's client holds no replica of it yet.\n\n"
        f"Command: `{command}`\n\nEnvironment: {env}; {versions()}\n\n"
        f"Calls per row: {counts} (in {blocks} alternating blocks, after warm-up); "
        f"took {time.perf_counter() - started:.0f} s. `get_items` reads a "
        f"{HISTORY_TURNS * len(TURN)}-item history; a row's throughput counts items for "
        f"`add_items(10 items)`.\n\n{table(results)}\n"
    )
    print(text)
    if args.markdown:
        write_section(args.markdown, text, MARK_START, MARK_END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
