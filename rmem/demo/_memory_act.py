"""Act 2 of ``rmem demo``: a researcher and a writer share a memory namespace.

The researcher records findings (:mod:`rmem.demo._findings`) on a few topics, one every few
milliseconds, tagged by topic. At the same time the writer works through an outline per topic,
searching the namespace (hybrid, k=3, filtered by the topic's tag) for the next point it lacks
and drafting a paragraph from what it finds, until it has found every note. Each note carries
the time it was added, so the writer measures how long a note took to reach it through Redis.
A fresh client then checks the count and each topic's tag filter.
"""

from __future__ import annotations

import contextlib
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rmem.demo._findings import NOTE_COUNT, TOPIC_BY_TAG, TOPICS
from rmem.demo._runner import DemoContext, Link, Process, failed, percentile, run_processes

if TYPE_CHECKING:
    from rich.table import Table

    import rmem

RESEARCH_NAMESPACE = "demo-research"
RESEARCHER, WRITER = "researcher", "writer"
EMBED_DIM = 256  # every client of the namespace must embed alike: the index has one dimension
SEARCH_K = 3
NOTE_INTERVAL = 0.02  # seconds between findings: the writer must search while notes arrive
POLL_PAUSE = 0.002  # the writer's pause after a round that found nothing new
WRITER_TIMEOUT = 10.0  # seconds the writer searches before giving up on missing notes
MEMORY_RUN_TIMEOUT = WRITER_TIMEOUT + 5.0


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


def _research(link: Link, interval: float) -> ResearcherReport:
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


def _write(link: Link, timeout: float) -> WriterReport:
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
        ("add p50 (ms)", f"{percentile(researcher.add_ms, 50):.3f}"),
        ("add p99 (ms)", f"{percentile(researcher.add_ms, 99):.3f}"),
        ("search p50 (ms)", f"{percentile(writer.search_ms, 50):.3f}"),
        ("search p99 (ms)", f"{percentile(writer.search_ms, 99):.3f}"),
        ("first seen p50 (ms)", f"{percentile(delays, 50):.3f}"),
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

    from rmem import demo

    # Read from the package, and only now: ``rmem.demo.WRITER_TIMEOUT`` is the knob callers set
    # (the tests set it to 0 to make the writer miss notes), as when the demo was one module.
    writer_timeout = demo.WRITER_TIMEOUT
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
        Process(RESEARCHER, _research, NOTE_INTERVAL, NOTE_COUNT),
        Process(WRITER, _write, writer_timeout, NOTE_COUNT),
    ]
    reports, errors, elapsed = run_processes(ctx, specs, MEMORY_RUN_TIMEOUT)
    if errors:
        return failed(console, errors)
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
        why = f" within {writer_timeout:g} s" if writer.timed_out else ""
        problems.append(f"the writer never found {len(unseen)} of the notes{why}")
    console.print("Checking the namespace from a fresh client...")
    problems += _verify_memories(ctx.url, researcher)
    if problems:
        return failed(console, problems)
    p50 = percentile(list(writer.first_seen_ms.values()), 50)
    console.print(
        f"[bold green]OK:[/] {NOTE_COUNT} notes from the {RESEARCHER}, all found by the "
        f"{WRITER} in another process (first seen after {p50:.1f} ms at p50); count() agrees "
        f"and each topic's tag filter returns exactly its notes.",
        soft_wrap=True,
    )
    return True
