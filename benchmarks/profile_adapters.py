"""Where the time of the adapters' closest rows goes: round trips, server, client CPU.

Run from the repository root (needs the three frameworks and their Redis implementations, as
the ``bench_*`` scripts do)::

    python benchmarks/profile_adapters.py                    # ~1-2 min on 2 cores
    python benchmarks/profile_adapters.py --n 1000           # fewer calls per row
    python benchmarks/profile_adapters.py --quick            # small run (the smoke test)
    python benchmarks/profile_adapters.py --markdown docs/integrations.md

Starts its own embedded Redis. For every adapter row of the ``bench_*`` scripts that is not
clearly 2x faster than the framework's own Redis implementation, it runs rmem's call and the
framework's beside a bare ``PING`` through the same client library, with the workloads of
those scripts, and reports per call:

- ``p50 µs``: wall time, in alternating blocks (as the ``bench_*`` scripts);
- ``mean µs``, ``CPU µs``: wall and this thread's CPU time (``time.thread_time``: the
  client's Python and its system calls) per call, each the median over the blocks of the
  block's mean; ``+n``: CPU of the process's other threads (rmem's replica thread, which the
  default client also runs);
- ``round trips``: sends to Redis (counted on redis-py's ``send_packed_command`` and on
  rmem's async send, ``rmem._wire.asend_packed``);
- ``commands``: the commands Redis ran per call (``INFO commandstats``, a script's own
  commands included), over separate calls;
- ``server µs``: CPU time of Redis's main thread per call over those calls (Linux
  ``/proc/<pid>/task/<pid>/schedstat``): the commands, and the server's own reads and writes;
- ``wait µs``: what is left, mean minus CPU minus server: the wake-ups of both processes.

On the project's VM most of a bare ``PING``'s time is CPU: ~100 µs of the client's (the
system calls of one send and one receive) and ~25 µs of the server's. A round trip is
therefore priced at a ``PING``'s mean through the same client library, less its server
time; the bound: a call cannot take less than its round trips at that price plus its own
server time, i.e. doing no more client work than ``PING``s do. The framework's time divided
by that floor is the best ratio any client code could reach against it with that server
work. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import redis.asyncio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_langchain as blc
import bench_langgraph as blg
import bench_openai_agents as boa
from bench_sessions import environment, write_section
from langgraph.store.base import PutOp

import rmem
from rmem.integrations.langchain import RmemChatMessageHistory
from rmem.integrations.langgraph import RmemStore
from rmem.integrations.openai_agents import RmemSession
from rmem.server import EmbeddedRedis

X = "\u00d7"  # multiplication sign
MARK_START = "<!-- profile_adapters:start -->"
MARK_END = "<!-- profile_adapters:end -->"
BLOCKS = 20
SERVER_CALLS = 1000  # calls per row for the commands and server columns (default)
SKIP_STATS = ("cmdstat_config", "cmdstat_info", "cmdstat_hello", "cmdstat_client")


@dataclass
class Row:
    """One measured call."""

    group: str
    name: str
    call: Callable[[], Any]  # sync call, or a coroutine function when is_async
    is_async: bool = False
    baseline: str = ""  # the PING row of the same client library
    samples: list[int] = field(default_factory=list)
    # Per block of calls: mean wall, CPU of this thread, CPU of the process's other threads.
    blocks: list[tuple[float, float, float]] = field(default_factory=list)
    trips: float = 0.0
    commands: float = 0.0
    server_us: float = 0.0

    def p50(self) -> float:
        ordered = sorted(self.samples)
        return ordered[len(ordered) // 2] / 1000 if ordered else 0.0

    def _block_median(self, i: int) -> float:
        ordered = sorted(b[i] for b in self.blocks)
        return ordered[len(ordered) // 2] / 1000 if ordered else 0.0

    def mean(self) -> float:
        """Mean wall µs per call (median over the blocks: a stalled block does not count)."""
        return self._block_median(0)

    def cpu(self) -> float:
        """This thread's CPU µs per call, as :meth:`mean`."""
        return self._block_median(1)

    def other_cpu(self) -> float:
        """CPU µs per call of the process's other threads, as :meth:`mean`."""
        return self._block_median(2)

    def wait(self) -> float:
        """What is left of the mean wall time: neither this thread's CPU nor Redis's."""
        return max(0.0, self.mean() - self.cpu() - self.server_us)


class TripCounter:
    """Counts sends to Redis: redis-py's sync and async ``send_packed_command``, and rmem's
    async backend's own send (``rmem._wire.asend_packed``, counted once when it hands the
    send to redis-py's)."""

    def __init__(self) -> None:
        self.count = 0
        self._in_rmem_send = False

    @contextmanager
    def counting(self) -> Iterator[None]:
        from redis.asyncio.connection import AbstractConnection as AsyncConnection
        from redis.connection import AbstractConnection

        import rmem._async._backend as async_backend

        sync_send = AbstractConnection.send_packed_command
        async_send = AsyncConnection.send_packed_command
        rmem_send = async_backend.asend_packed
        counter = self

        def send(conn: Any, *args: Any, **kwargs: Any) -> Any:
            counter.count += 1
            return sync_send(conn, *args, **kwargs)

        async def asend(conn: Any, *args: Any, **kwargs: Any) -> Any:
            if not counter._in_rmem_send:
                counter.count += 1
            return await async_send(conn, *args, **kwargs)

        async def rmem_asend(conn: Any, packed: list[bytes]) -> None:
            counter.count += 1
            counter._in_rmem_send = True
            try:
                await rmem_send(conn, packed)
            finally:
                counter._in_rmem_send = False

        AbstractConnection.send_packed_command = send  # type: ignore[method-assign]
        AsyncConnection.send_packed_command = asend  # type: ignore[method-assign]
        async_backend.asend_packed = rmem_asend
        try:
            yield
        finally:
            AbstractConnection.send_packed_command = sync_send  # type: ignore[method-assign]
            AsyncConnection.send_packed_command = async_send  # type: ignore[method-assign]
            async_backend.asend_packed = rmem_send


def commands_run(raw: redis.Redis) -> int:
    """Commands Redis ran since the last reset (a script's own commands included)."""
    stats = raw.info("commandstats")
    return sum(int(stat["calls"]) for name, stat in stats.items() if name not in SKIP_STATS)


def server_cpu_ns(pid: int) -> int:
    """CPU time so far of the main thread of process ``pid`` (Linux schedstat), in ns.

    Redis runs every command there (RediSearch's queries and indexing included, without
    its worker threads); its other threads (background frees, the module's garbage
    collector) work for all clients at once.
    """
    return int(Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()[0])


def cpu_clocks() -> tuple[int, int]:
    return time.thread_time_ns(), time.process_time_ns()


def time_sync(rows: list[Row], n: int, warmup: int) -> None:
    for row in rows:
        for _ in range(warmup):
            row.call()
    per_block = max(1, n // BLOCKS)
    clock = time.perf_counter_ns
    for block in range(BLOCKS):
        shift = block % len(rows)
        for row in rows[shift:] + rows[:shift]:
            call, out = row.call, row.samples
            gc.collect()
            gc.disable()
            try:
                thread0, process0 = cpu_clocks()
                for _ in range(per_block):
                    t0 = clock()
                    call()
                    out.append(clock() - t0)
                thread1, process1 = cpu_clocks()
            finally:
                gc.enable()
            wall = sum(out[-per_block:])
            other = (process1 - process0) - (thread1 - thread0)
            row.blocks.append(
                (wall / per_block, (thread1 - thread0) / per_block, other / per_block)
            )


async def time_async(rows: list[Row], n: int, warmup: int) -> None:
    for row in rows:
        for _ in range(warmup):
            await row.call()
    per_block = max(1, n // BLOCKS)
    clock = time.perf_counter_ns
    for block in range(BLOCKS):
        shift = block % len(rows)
        for row in rows[shift:] + rows[:shift]:
            call, out = row.call, row.samples
            gc.collect()
            gc.disable()
            try:
                thread0, process0 = cpu_clocks()
                for _ in range(per_block):
                    t0 = clock()
                    await call()
                    out.append(clock() - t0)
                thread1, process1 = cpu_clocks()
            finally:
                gc.enable()
            wall = sum(out[-per_block:])
            other = (process1 - process0) - (thread1 - thread0)
            row.blocks.append(
                (wall / per_block, (thread1 - thread0) / per_block, other / per_block)
            )


def count_sync(
    rows: list[Row], raw: redis.Redis, counter: TripCounter, pid: int, calls: int
) -> None:
    for row in rows:
        with counter.counting():
            counter.count = 0
            for _ in range(20):
                row.call()
            row.trips = counter.count / 20
        raw.config_resetstat()
        cpu0 = server_cpu_ns(pid)
        for _ in range(calls):
            row.call()
        cpu1 = server_cpu_ns(pid)
        row.commands = commands_run(raw) / calls
        row.server_us = (cpu1 - cpu0) / calls / 1000


async def count_async(
    rows: list[Row], raw: redis.Redis, counter: TripCounter, pid: int, calls: int
) -> None:
    for row in rows:
        with counter.counting():
            counter.count = 0
            for _ in range(20):
                await row.call()
            row.trips = counter.count / 20
        raw.config_resetstat()
        cpu0 = server_cpu_ns(pid)
        for _ in range(calls):
            await row.call()
        cpu1 = server_cpu_ns(pid)
        row.commands = commands_run(raw) / calls
        row.server_us = (cpu1 - cpu0) / calls / 1000


# ---------------------------------------------------------------- the three frameworks


def langchain_rows(url: str, stack: ExitStack) -> list[Row]:
    from langchain_redis import RedisChatMessageHistory

    tag = uuid.uuid4().hex[:8]
    default = stack.enter_context(rmem.Client.from_url(url, namespace=f"prof-lc-{tag}"))
    nosync = stack.enter_context(
        rmem.Client.from_url(url, namespace=f"prof-lc-{tag}-ns", sync=False)
    )
    lcr_redis = redis.Redis.from_url(url, protocol=2)  # as bench_langchain gives it
    stack.callback(lcr_redis.close)
    made: list[Any] = []

    def lcr(name: str) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            history = RedisChatMessageHistory(
                name,
                redis_client=lcr_redis,
                ttl=3600,
                key_prefix=f"prof-lc-{tag}:",
                index_name=f"idx:prof-lc-{tag}",
            )
        made.append(history)
        return history

    def drop() -> None:
        for history in made:
            history.clear()
        made[0].index.delete(drop=True)
        for client in (default, nosync):
            for sid in client.sessions():
                client.session(sid).delete()

    stack.callback(drop)
    rows = [Row("LangChain", "redis-py PING (RESP2, as langchain-redis)", lcr_redis.ping)]
    ping = (("PING",),)
    rows.append(Row("LangChain", "rmem sync backend PING", lambda: nosync._backend.pipeline(ping)))
    base_lcr, base_rmem = rows[0].name, rows[1].name
    for size in (1, 2):
        msgs = blc.turns(size)
        ours = RmemChatMessageHistory(f"w{size}", client=nosync, ttl=3600)
        ours_default = RmemChatMessageHistory(f"w{size}", client=default, ttl=3600)
        theirs = lcr(f"w{size}")
        op = f"add_messages([{size}])"
        rows += [
            Row("LangChain", f"rmem sync=False {op}", lambda o=ours, m=msgs: o.add_messages(m)),
            Row("LangChain", f"rmem {op}", lambda o=ours_default, m=msgs: o.add_messages(m)),
            Row("LangChain", f"langchain-redis {op}", lambda t=theirs, m=msgs: t.add_messages(m)),
        ]
        rows[-3].baseline = rows[-2].baseline = base_rmem
        rows[-1].baseline = base_lcr
    for size in blc.HISTORIES:
        history = blc.turns(size)
        ours = RmemChatMessageHistory(f"r{size}", client=nosync, ttl=3600)
        theirs = lcr(f"r{size}")
        ours.add_messages(history)
        theirs.add_messages(history)
        op = f"messages ({size} in history)"
        rows += [
            Row(
                "LangChain", f"rmem sync=False {op}", lambda o=ours: o.messages, baseline=base_rmem
            ),
            Row(
                "LangChain", f"langchain-redis {op}", lambda t=theirs: t.messages, baseline=base_lcr
            ),
        ]
    return rows


async def openai_rows(url: str, stack: list[Any]) -> list[Row]:
    from agents.extensions.memory.redis_session import RedisSession

    ns = f"prof-oa-{uuid.uuid4().hex[:8]}"
    sdk_redis = redis.asyncio.Redis.from_url(url)  # what RedisSession.from_url makes
    rows = [Row("OpenAI Agents", "redis.asyncio PING (as RedisSession)", sdk_redis.ping, True)]
    probe = RmemSession.from_url("probe", url=url, redis_kwargs={"sync": False}, namespace=ns)
    stack += [probe, sdk_redis]
    ping = (("PING",),)
    rows.append(
        Row(
            "OpenAI Agents",
            "rmem async backend PING",
            lambda: probe.client._backend.pipeline(ping),
            True,
        )
    )
    base_sdk, base_rmem = rows[0].name, rows[1].name

    def pair(sid: str, sync: bool = False) -> tuple[RmemSession, RedisSession]:
        options = {} if sync else {"sync": False}
        ours = RmemSession.from_url(sid, url=url, redis_kwargs=options, namespace=ns, ttl=None)
        theirs = RedisSession.from_url(sid, url=url, key_prefix=f"{ns}:sdk", ttl=None)
        stack.extend((ours, theirs))
        return ours, theirs

    add, add_default = pair("add10"), pair("add10d", sync=True)
    rows += [
        Row(
            "OpenAI Agents",
            "RmemSession sync=False add_items(10)",
            lambda: add[0].add_items(boa.TURN),
            True,
            base_rmem,
        ),
        Row(
            "OpenAI Agents",
            "RmemSession add_items(10)",
            lambda: add_default[0].add_items(boa.TURN),
            True,
            base_rmem,
        ),
        Row(
            "OpenAI Agents",
            "RedisSession add_items(10)",
            lambda: add[1].add_items(boa.TURN),
            True,
            base_sdk,
        ),
    ]
    read = pair("read")
    for session in read:
        for _ in range(boa.HISTORY_TURNS):
            await session.add_items(boa.TURN)
    for limit in (None, 20):
        op = "get_items()" if limit is None else f"get_items(limit={limit})"
        rows += [
            Row(
                "OpenAI Agents",
                f"RmemSession sync=False {op}",
                lambda n=limit: read[0].get_items(n),
                True,
                base_rmem,
            ),
            Row(
                "OpenAI Agents",
                f"RedisSession {op}",
                lambda n=limit: read[1].get_items(n),
                True,
                base_sdk,
            ),
        ]
    return rows


def langgraph_rows(url: str, stack: ExitStack) -> list[Row]:
    from langgraph.store.redis import RedisStore

    run = uuid.uuid4().hex[:8]
    ours = stack.enter_context(RmemStore.from_conn_string(url, namespace=f"prof-lg-{run}"))
    theirs = stack.enter_context(
        RedisStore.from_conn_string(
            url, store_prefix=f"proflg_{run}", vector_prefix=f"proflg_vec_{run}"
        )
    )
    data = blg.make_items(500)
    for store in (ours, theirs):
        store.setup()
        for start in range(0, len(data), 100):
            store.batch([PutOp(ns, key, value) for ns, key, value in data[start : start + 100]])
    raw = redis.Redis.from_url(url)  # what RedisStore.from_conn_string makes
    stack.callback(raw.close)

    def drop() -> None:
        for index in (ours._core.keys.item_index, f"proflg_{run}", f"proflg_vec_{run}"):
            with contextlib.suppress(redis.ResponseError):  # not every store made each
                raw.execute_command("FT.DROPINDEX", index, "DD")  # type: ignore[no-untyped-call]
        for key in raw.scan_iter(match=f"rmem:{{prof-lg-{run}}}:*", count=1000):
            raw.delete(key)

    stack.callback(drop)
    ours_cycle, theirs_cycle = itertools.cycle(data), itertools.cycle(data)
    ping = (("PING",),)
    return [
        Row("LangGraph", "redis-py PING (as RedisStore)", raw.ping),
        Row("LangGraph", "rmem sync backend PING", lambda: ours._client._backend.pipeline(ping)),
        Row(
            "LangGraph",
            "RmemStore.get",
            lambda: ours.get(*next(ours_cycle)[:2]),
            baseline="rmem sync backend PING",
        ),
        Row(
            "LangGraph",
            "RedisStore.get",
            lambda: theirs.get(*next(theirs_cycle)[:2]),
            baseline="redis-py PING (as RedisStore)",
        ),
    ]


# ---------------------------------------------------------------- report

PAIRS = (
    ("rmem sync=False add_messages([1])", "langchain-redis add_messages([1])"),
    ("rmem add_messages([1])", "langchain-redis add_messages([1])"),
    ("rmem sync=False add_messages([2])", "langchain-redis add_messages([2])"),
    ("rmem add_messages([2])", "langchain-redis add_messages([2])"),
    ("rmem sync=False messages (20 in history)", "langchain-redis messages (20 in history)"),
    ("rmem sync=False messages (200 in history)", "langchain-redis messages (200 in history)"),
    ("RmemSession sync=False add_items(10)", "RedisSession add_items(10)"),
    ("RmemSession add_items(10)", "RedisSession add_items(10)"),
    ("RmemSession sync=False get_items()", "RedisSession get_items()"),
    ("RmemSession sync=False get_items(limit=20)", "RedisSession get_items(limit=20)"),
    ("RmemStore.get", "RedisStore.get"),
)


def report(rows: list[Row]) -> str:
    by = {(r.group, r.name): r for r in rows}
    lines = [
        "| call | p50 µs | mean µs | CPU µs | round trips | commands | server µs | wait µs |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        cpu = f"{r.cpu():,.0f}"
        if r.other_cpu() >= 5:
            cpu += f" (+{r.other_cpu():,.0f})"
        lines.append(
            f"| {r.group}: {r.name} | {r.p50():,.0f} | {r.mean():,.0f} | {cpu} | {r.trips:g} "
            f"| {r.commands:.1f} | {r.server_us:,.1f} | {r.wait():,.0f} |"
        )
    lines += [
        "",
        "| rmem row | framework ÷ rmem, p50 | framework ÷ rmem, mean | rmem floor µs "
        "| framework ÷ floor (mean): best possible |",
        "|---|--:|--:|--:|--:|",
    ]
    for ours_name, theirs_name in PAIRS:
        group = next(g for g, n in by if n == ours_name)
        ours, theirs = by[group, ours_name], by[group, theirs_name]
        ping = by[group, ours.baseline]
        # Every round trip costs what a PING costs beyond its server time, then the call's
        # own server time: the call with no more client work than PINGs.
        floor = ours.trips * (ping.mean() - ping.server_us) + ours.server_us
        # A call served from memory (no round trip, no server work) has no floor to price.
        best = f"{theirs.mean() / floor:.2f}{X}" if floor > 0 else "no round trip"
        lines.append(
            f"| {group}: {ours.name} | {theirs.p50() / ours.p50():.2f}{X} "
            f"| {theirs.mean() / ours.mean():.2f}{X} | {floor:,.0f} | {best} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="timed calls per row (default 2000)")
    parser.add_argument("--quick", action="store_true", help="a small run (smoke test)")
    parser.add_argument("--markdown", type=Path, help="write/replace a section in this file")
    args = parser.parse_args(argv)
    n, server_calls, warmup = (40, 40, 5) if args.quick else (args.n, SERVER_CALLS, 100)
    # The frameworks' modules are many objects: frozen, they are not scanned again by the
    # gc.collect() before every timed block (which took ~0.15 s each).
    gc.collect()
    gc.freeze()
    started = time.perf_counter()
    counter = TripCounter()
    with EmbeddedRedis() as server:
        url = server.url
        env = environment(url)
        pid = server.pid
        assert pid is not None
        raw = redis.Redis.from_url(url)
        rows: list[Row] = []
        with ExitStack() as stack:
            lc = langchain_rows(url, stack)
            time_sync(lc, n, warmup)
            count_sync(lc, raw, counter, pid, server_calls)
            rows += lc

        async def agents() -> list[Row]:
            made: list[Any] = []
            try:
                oa = await openai_rows(url, made)
                await time_async(oa, n, warmup)
                await count_async(oa, raw, counter, pid, server_calls)
                return oa
            finally:
                for thing in made:
                    if isinstance(thing, RmemSession | _redis_session_type()):
                        await thing.clear_session()
                        await thing.close()
                    else:
                        await thing.aclose()

        rows += asyncio.run(agents())
        with ExitStack() as stack:
            lg = langgraph_rows(url, stack)
            time_sync(lg, n, warmup)
            count_sync(lg, raw, counter, pid, server_calls)
            rows += lg
        raw.close()
    command = " ".join(["python benchmarks/profile_adapters.py", *(argv or sys.argv[1:])])
    text = (
        f"Command: `{command}`\n\nEnvironment: {env}\n\n{n:,} timed calls per row in "
        f"{BLOCKS} alternating blocks per framework; {server_calls:,} more for the server "
        f"columns; took {time.perf_counter() - started:.0f} s.\n\n{report(rows)}\n"
    )
    print(text)
    if args.markdown:
        write_section(args.markdown, text, MARK_START, MARK_END)
    return 0


def _redis_session_type() -> type:
    from agents.extensions.memory.redis_session import RedisSession

    return RedisSession


if __name__ == "__main__":
    sys.exit(main())
