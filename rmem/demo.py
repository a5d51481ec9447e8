"""``rmem demo``: rmem at work, in acts, against a real Redis.

Act 1 spawns two agent processes, a planner and a coder, that write to the same session at the
same time. Each appends its messages, reads the last few after every append, and counts the
other agent's messages it sees there. The parent shows their progress live, then a table of
counts and latencies, and checks from a fresh client that nothing was lost or reordered.

The demo starts its own embedded Redis (``rmem.server.EmbeddedRedis``) unless ``--url`` names
one. It needs the ``demo`` extra: ``pip install "rmem[demo]"``. An act is a function taking a
:class:`DemoContext` and returning True when its checks passed; add new ones to :data:`ACTS`.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import multiprocessing
import queue
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rmem.server import EmbeddedRedis

if TYPE_CHECKING:
    from multiprocessing.context import SpawnProcess
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Event

    from rich.console import Console
    from rich.table import Table

__all__ = ["ACTS", "DemoContext", "add_arguments", "run"]

INSTALL_HINT = 'the demo needs rich: pip install "rmem[demo]"'
NAMESPACE = "demo"
SESSION_ID = "shared-chat"
SESSION_TTL = 3600.0
WINDOW = 5  # messages each agent reads back after every append
AGENTS = ("planner", "coder")
LINES = {
    "planner": ("Plan step {i}: split the task", "Plan step {i}: review the tests"),
    "coder": ("Commit {i}: implement the step", "Commit {i}: fix the failing test"),
}
DEFAULT_MESSAGES = 200
READY_TIMEOUT = 60.0  # seconds for both agents to start and connect
RUN_TIMEOUT_PER_MESSAGE = 0.05  # generous: a write and a read take well under 1 ms locally
PROGRESS_INTERVAL = 0.02  # seconds between progress reports from an agent
JOIN_TIMEOUT = 5.0
LATENCY_COLUMNS = ("append p50", "append p99", "read p50", "read p99")
EXIT_GRACE = 0.5  # seconds a dead agent's last report may still be in flight


@dataclass
class DemoContext:
    """What every act gets: where Redis is, how big to make the run, where to print."""

    url: str
    messages: int
    console: Console
    live: bool  # show live progress (a terminal and no --quiet)
    server: EmbeddedRedis | None  # the embedded server, None with --url


@dataclass
class AgentReport:
    """What an agent process sends back when it is done."""

    name: str
    written: int = 0
    seen_other: int = 0
    bytes_written: int = 0
    append_ms: list[float] = field(default_factory=list)
    read_ms: list[float] = field(default_factory=list)


def _agent_main(name: str, url: str, count: int, events: Queue[Any], start: Event) -> None:
    """Entry point of an agent process (spawned, so it imports rmem afresh)."""
    # Ctrl-C reaches the whole process group; the parent decides when agents stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        events.put(("done", name, _agent_run(name, url, count, events, start)))
    except Exception as exc:
        events.put(("error", name, f"{type(exc).__name__}: {exc}"))


def _agent_run(name: str, url: str, count: int, events: Queue[Any], start: Event) -> AgentReport:
    import rmem
    from rmem._session_core import encode_message

    other = next(agent for agent in AGENTS if agent != name)
    report = AgentReport(name)
    seen: set[str] = set()
    with rmem.Client.from_url(url, namespace=NAMESPACE) as client:
        limit, threshold = client.settings.max_message_bytes, client.settings.compress_threshold
        session = client.session(SESSION_ID, ttl=SESSION_TTL)
        session.messages(last=WINDOW)  # connect and load the read script before timing
        events.put(("ready", name, None))
        if not start.wait(READY_TIMEOUT):
            raise TimeoutError("the demo never gave the start signal")
        last_report = 0.0
        for i in range(count):
            line = LINES[name][i % len(LINES[name])].format(i=i)
            meta = {"seq": i, "agent": name}
            message = {"role": "assistant", "name": name, "content": line, "metadata": meta}
            t0 = time.perf_counter()
            stored = session.append(message)
            t1 = time.perf_counter()
            window = session.messages(last=WINDOW)
            t2 = time.perf_counter()
            report.append_ms.append((t1 - t0) * 1000)
            report.read_ms.append((t2 - t1) * 1000)
            report.bytes_written += len(encode_message(stored, limit, threshold))
            seen.update(m.id for m in window if m.name == other)
            report.written, report.seen_other = i + 1, len(seen)
            if t2 - last_report >= PROGRESS_INTERVAL:
                events.put(("progress", name, (report.written, report.seen_other)))
                last_report = t2
    return report


def _run_agents(ctx: DemoContext) -> tuple[dict[str, AgentReport], list[str], float]:
    """Run the agent processes with live progress; return reports, errors and seconds taken."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    mp = multiprocessing.get_context("spawn")
    events: Queue[Any] = mp.Queue()
    start = mp.Event()
    procs: dict[str, SpawnProcess] = {
        name: mp.Process(
            target=_agent_main,
            args=(name, ctx.url, ctx.messages, events, start),
            name=f"rmem-demo-{name}",
            daemon=True,
        )
        for name in AGENTS
    }
    reports: dict[str, AgentReport] = {}
    errors: dict[str, str] = {}
    ready: set[str] = set()
    exited: dict[str, float] = {}
    began = time.perf_counter()
    deadline = time.monotonic() + READY_TIMEOUT
    progress = Progress(
        TextColumn("{task.description:>8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("messages · {task.fields[seen]} of the other agent's seen"),
        console=ctx.console,
        disable=not ctx.live,
    )
    finished = False
    try:
        for proc in procs.values():
            proc.start()
        with progress:
            tasks = {name: progress.add_task(name, total=ctx.messages, seen=0) for name in AGENTS}
            while len(reports) < len(AGENTS) and not errors:  # one failure ends the act
                if time.monotonic() > deadline:
                    waiting = sorted(set(AGENTS) - set(reports))
                    errors.update({name: "timed out" for name in waiting})
                    break
                # An agent that died without a word: whatever it sent was in the pipe before it
                # exited, so once it has been dead for a while no report is coming.
                for name, proc in procs.items():
                    if proc.exitcode is not None and name not in reports:
                        died = exited.setdefault(name, time.monotonic())
                        if time.monotonic() - died > EXIT_GRACE:
                            errors[name] = f"agent process exited with code {proc.exitcode}"
                try:
                    kind, name, payload = events.get(timeout=0.1)
                except queue.Empty:
                    continue
                if kind == "ready":
                    ready.add(name)
                    if ready == set(AGENTS):
                        start.set()
                        began = time.perf_counter()
                        deadline = time.monotonic() + 30 + RUN_TIMEOUT_PER_MESSAGE * ctx.messages
                elif kind == "progress":
                    progress.update(tasks[name], completed=payload[0], seen=payload[1])
                elif kind == "done":
                    reports[name] = payload
                    progress.update(tasks[name], completed=payload.written, seen=payload.seen_other)
                else:
                    errors[name] = str(payload)
        elapsed = time.perf_counter() - began
        finished = not errors
    finally:
        _stop(list(procs.values()), graceful=finished)
        events.close()
    return reports, [f"agent {name}: {error}" for name, error in errors.items()], elapsed


def _stop(procs: list[SpawnProcess], *, graceful: bool) -> None:
    """Join every process; terminate, then kill, whatever does not exit in time."""
    for proc in procs:
        if proc.pid is None:
            continue  # never started
        proc.join(JOIN_TIMEOUT if graceful else 0.1)
        if proc.is_alive():
            proc.terminate()
            proc.join(JOIN_TIMEOUT)
        if proc.is_alive():
            proc.kill()
            proc.join()


def _percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile (0.0 for no samples)."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(len(ordered) * pct / 100)) - 1]


def _table(reports: list[AgentReport], elapsed: float) -> Table:
    from rich.table import Table

    caption = f"latencies in ms, measured by each agent; wall time {elapsed:.2f} s"
    table = Table(title="Two agents, one session", caption=caption)
    table.add_column("agent")
    for header in ("written", "other's seen", "bytes", *LATENCY_COLUMNS):
        table.add_column(header, justify="right")
    total = AgentReport("total")
    for report in reports:
        total.written += report.written
        total.seen_other += report.seen_other
        total.bytes_written += report.bytes_written
        total.append_ms += report.append_ms
        total.read_ms += report.read_ms
    for row in [*reports, total]:
        latencies = [
            f"{_percentile(samples, pct):.3f}"
            for samples in (row.append_ms, row.read_ms)
            for pct in (50, 99)
        ]
        cells = (row.name, f"{row.written}", f"{row.seen_other}", f"{row.bytes_written}")
        table.add_row(*cells, *latencies, end_section=row is reports[-1])
    return table


def _verify(url: str, reports: dict[str, AgentReport], count: int) -> list[str]:
    """Read the session back from a fresh client; return what is wrong (empty: all good)."""
    import rmem

    with rmem.Client.from_url(url, namespace=NAMESPACE) as client:
        session = client.session(SESSION_ID)
        messages = session.messages()
        info = session.info()
        listed = SESSION_ID in client.sessions()
    expected = count * len(AGENTS)
    problems = []
    if len(messages) != expected:
        problems.append(f"the session holds {len(messages)} messages, expected {expected}")
    for name in AGENTS:
        seqs = [(m.metadata or {}).get("seq") for m in messages if m.name == name]
        if seqs != list(range(count)):
            problems.append(f"{name}'s messages are not 0..{count - 1} in order: {seqs[:10]}...")
    if info.message_count != len(messages):
        problems.append(
            f"info() counts {info.message_count} messages, messages() returned {len(messages)}"
        )
    written = sum(report.bytes_written for report in reports.values())
    if info.size_bytes != written:
        problems.append(f"info() counts {info.size_bytes} bytes, the agents wrote {written}")
    if info.ttl_policy != SESSION_TTL:
        problems.append(f"info() reports TTL {info.ttl_policy}, the agents set {SESSION_TTL:g}")
    if not listed:
        problems.append(f"client.sessions() does not list {SESSION_ID!r}")
    return problems


def act_shared_session(ctx: DemoContext) -> bool:
    """Two agent processes append to one session at once; nothing is lost or reordered."""
    import rmem

    console, count = ctx.console, ctx.messages
    with rmem.Client.from_url(ctx.url, namespace=NAMESPACE) as client:
        if client.session(SESSION_ID).delete():
            console.print(f"Deleted the session {NAMESPACE}/{SESSION_ID} left by an earlier run.")
    console.print(
        f"Spawning {len(AGENTS)} agent processes, {' and '.join(AGENTS)}. Each opens session "
        f"{NAMESPACE}/{SESSION_ID} and appends {count} messages; after every append it reads "
        f"the last {WINDOW} and counts the other agent's messages it sees there."
    )
    reports, errors, elapsed = _run_agents(ctx)
    if errors:
        console.print(f"[bold red]FAILED:[/] {'; '.join(errors)}", soft_wrap=True)
        return False
    console.print(_table([reports[name] for name in AGENTS], elapsed))
    console.print("Reading the session back from a fresh client to check it...")
    problems = _verify(ctx.url, reports, count)
    if problems:
        console.print(f"[bold red]FAILED:[/] {'; '.join(problems)}", soft_wrap=True)
        return False
    console.print(
        f"[bold green]OK:[/] {count * len(AGENTS)} messages from {len(AGENTS)} processes in one "
        f"session, each agent's {count} in its own order; info() agrees (count, bytes, TTL).",
        soft_wrap=True,
    )
    return True


ACTS: list[tuple[str, Callable[[DemoContext], bool]]] = [
    ("two agents, one session", act_shared_session),
]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``rmem demo`` options to ``parser`` (used by ``rmem.cli``)."""
    parser.add_argument(
        "--messages",
        type=_positive_int,
        default=DEFAULT_MESSAGES,
        metavar="N",
        help="messages each agent writes (default: %(default)s)",
    )
    parser.add_argument("--url", help="use this Redis instead of starting an embedded one")
    parser.add_argument(
        "--quiet",
        "--no-progress",
        action="store_true",
        help="no live progress (the default when stdout is not a terminal)",
    )


def run(args: argparse.Namespace) -> int:
    """Run every act of the demo; return 0 when all their checks pass, else 1.

    Agents are started with multiprocessing's "spawn": called from Python code, call it under
    ``if __name__ == "__main__":`` (``rmem demo`` and ``python -m rmem demo`` do).

    Raises:
        ServerError: the embedded Redis could not start.
    """
    try:
        from rich.console import Console
        from rich.markup import escape
    except ImportError:
        print(f"rmem: {INSTALL_HINT}", file=sys.stderr)
        return 1
    import rmem

    console = Console(highlight=False)
    live = not args.quiet and console.is_terminal
    results: list[bool] = []
    with contextlib.ExitStack() as stack:
        server: EmbeddedRedis | None = None
        url: str | None = args.url
        if url is None:
            console.print("Starting an embedded Redis 8.2 with RediSearch (as `rmem server` does).")
            server = stack.enter_context(EmbeddedRedis())
            url = server.url
        with rmem.Client.from_url(url) as client:
            health = client.health()
        if health.state == "connected":
            search = "with" if health.search else "without"
            console.print(f"Redis {health.redis_version} ({search} search) is up at {escape(url)}.")
            ctx = DemoContext(url, args.messages, console, live, server)
            for number, (title, act) in enumerate(ACTS, 1):
                console.rule(f"Act {number}: {title}")
                results.append(act(ctx))
        else:
            console.print(
                f"[bold red]FAILED:[/] cannot reach {escape(health.url)}: {health.last_error}",
                soft_wrap=True,
            )
    if server is not None:
        console.print("Stopped the embedded Redis and removed its temp dir.")
    return 0 if results and all(results) else 1
