"""Act 1 of ``rmem demo``: two agent processes, a planner and a coder, share one session.

Each appends its messages, reads the last few after every append, and counts the other agent's
messages it sees there. The parent shows their progress live, then a table of counts and
latencies, and checks from a fresh client that nothing was lost or reordered.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rmem.demo._runner import DemoContext, Link, Process, failed, percentile, run_processes

if TYPE_CHECKING:
    from rich.table import Table

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
RUN_TIMEOUT_PER_MESSAGE = 0.05  # generous: a write and a read take well under 1 ms locally
LATENCY_COLUMNS = ("append p50", "append p99", "read p50", "read p99")


@dataclass
class AgentReport:
    """What an act 1 agent process sends back when it is done."""

    name: str
    written: int = 0
    seen_other: int = 0
    bytes_written: int = 0
    append_ms: list[float] = field(default_factory=list)
    read_ms: list[float] = field(default_factory=list)


def _agent_run(link: Link, count: int) -> AgentReport:
    """Append ``count`` messages to the shared session, reading the last few after each."""
    import rmem
    from rmem._session_core import encode_message

    name = link.name
    other = next(agent for agent in AGENTS if agent != name)
    report = AgentReport(name)
    seen: set[str] = set()
    with rmem.Client.from_url(link.url, namespace=NAMESPACE) as client:
        limit, threshold = client.settings.max_message_bytes, client.settings.compress_threshold
        session = client.session(SESSION_ID, ttl=SESSION_TTL)
        session.messages(last=WINDOW)  # connect and load the read script before timing
        link.ready()
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
            link.progress(report.written, _agent_note(report))
    link.progress(report.written, _agent_note(report), final=True)
    return report


def _agent_note(report: AgentReport) -> str:
    return f"messages · {report.seen_other} of the other agent's seen"


def _session_table(reports: list[AgentReport], elapsed: float) -> Table:
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
            f"{percentile(samples, pct):.3f}"
            for samples in (row.append_ms, row.read_ms)
            for pct in (50, 99)
        ]
        cells = (row.name, f"{row.written}", f"{row.seen_other}", f"{row.bytes_written}")
        table.add_row(*cells, *latencies, end_section=row is reports[-1])
    return table


def _verify_session(url: str, reports: dict[str, AgentReport], count: int) -> list[str]:
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
    specs = [Process(name, _agent_run, count, count) for name in AGENTS]
    run_timeout = 30 + RUN_TIMEOUT_PER_MESSAGE * count
    reports, errors, elapsed = run_processes(ctx, specs, run_timeout)
    if errors:
        return failed(console, [f"agent {error}" for error in errors])
    console.print(_session_table([reports[name] for name in AGENTS], elapsed))
    console.print("Reading the session back from a fresh client to check it...")
    problems = _verify_session(ctx.url, reports, count)
    if problems:
        return failed(console, problems)
    console.print(
        f"[bold green]OK:[/] {count * len(AGENTS)} messages from {len(AGENTS)} processes in one "
        f"session, each agent's {count} in its own order; info() agrees (count, bytes, TTL).",
        soft_wrap=True,
    )
    return True
