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

Act 3 spawns two editor processes, alpha and beta, each a client with local replicas (sync on),
that take turns editing one session (a message per turn; alpha once pops its message and
appends an edited version) and one memory record (rewritten every turn, so last writer wins).
Each follows the other's edits through events and measures how long each took to reach its own
replica. The parent checks both replicas against Redis, read by a ``sync=False`` client.

Act 4 takes Redis away. A triager and a fixer append to one session at a steady pace (with a
note in memory now and then); a quarter of the way in the demo SIGKILLs its Redis, the agents
carry on degraded (their calls answered locally, writes queued), and a quarter later the demo
restarts Redis from its append-only file. Each client replays its outbox and is connected
again; the parent reads the session straight from Redis and checks that every acknowledged
message is there once, in each agent's order, and that both agents read the same history.

The demo starts its own embedded Redis (``rmem.server.EmbeddedRedis``) unless ``--url`` names
one. That Redis keeps an append-only file (``appendfsync everysec``, which act 4 tightens to
``always`` before its kill; see :mod:`rmem.demo._outage_act` for why). With ``--url`` act 4 is
skipped: the demo does not kill a Redis it did not start. It needs the ``demo`` extra:
``pip install "rmem[demo]"``; its embedder is :class:`rmem.embedders.HashEmbedder`, so no
model is needed. An act is a function taking a :class:`DemoContext` and returning True when
its checks passed, False when they failed, None when it was skipped (it says why); add new
ones to :data:`ACTS`.

The package: ``_runner`` (the :class:`DemoContext` every act gets, and the runner of an act's
processes), ``_session_act`` (act 1), ``_findings`` and ``_memory_act`` (act 2), ``_sync_act``
(act 3), ``_outage_act`` (act 4), and this module, the command, which re-exports their public
names.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable

from rmem.demo._findings import FINDINGS, NOTE_COUNT, TOPIC_BY_TAG, TOPICS, Topic
from rmem.demo._memory_act import (
    EMBED_DIM,
    MEMORY_RUN_TIMEOUT,
    NOTE_INTERVAL,
    POLL_PAUSE,
    RESEARCH_NAMESPACE,
    RESEARCHER,
    SEARCH_K,
    WRITER,
    WRITER_TIMEOUT,
    ResearcherReport,
    WriterReport,
    act_shared_memories,
)
from rmem.demo._outage_act import (
    MIN_MESSAGES,
    NOTE_EVERY,
    OUTAGE_AGENTS,
    OUTAGE_NAMESPACE,
    OUTAGE_SESSION_ID,
    RECOVERY_TIMEOUT,
    RUN_SECONDS,
    SKIP_REASON,
    OutageReport,
    Plan,
    act_redis_goes_away,
)
from rmem.demo._runner import (
    EXIT_GRACE,
    JOIN_TIMEOUT,
    PROGRESS_INTERVAL,
    READY_TIMEOUT,
    DemoContext,
)
from rmem.demo._session_act import (
    AGENTS,
    DEFAULT_MESSAGES,
    LATENCY_COLUMNS,
    LINES,
    NAMESPACE,
    RUN_TIMEOUT_PER_MESSAGE,
    SESSION_ID,
    SESSION_TTL,
    WINDOW,
    AgentReport,
    act_shared_session,
)
from rmem.demo._sync_act import (
    EDIT_TURN,
    EDITOR,
    EDITORS,
    RECORD_ID,
    SLOT_INTERVAL,
    SYNC_NAMESPACE,
    SYNC_RUN_TIMEOUT,
    SYNC_SESSION_ID,
    TURNS,
    EditorReport,
    act_live_edits,
)
from rmem.server import EmbeddedRedis

# Every public name the demo had when it was one module, so rmem.demo.<name> keeps working.
__all__ = [
    "ACTS",
    "AGENTS",
    "DEFAULT_MESSAGES",
    "EDITOR",
    "EDITORS",
    "EDIT_TURN",
    "EMBED_DIM",
    "EXIT_GRACE",
    "FINDINGS",
    "INSTALL_HINT",
    "JOIN_TIMEOUT",
    "LATENCY_COLUMNS",
    "LINES",
    "MEMORY_RUN_TIMEOUT",
    "MIN_MESSAGES",
    "NAMESPACE",
    "NOTE_COUNT",
    "NOTE_EVERY",
    "NOTE_INTERVAL",
    "OUTAGE_AGENTS",
    "OUTAGE_NAMESPACE",
    "OUTAGE_SESSION_ID",
    "POLL_PAUSE",
    "PROGRESS_INTERVAL",
    "READY_TIMEOUT",
    "RECORD_ID",
    "RECOVERY_TIMEOUT",
    "RESEARCHER",
    "RESEARCH_NAMESPACE",
    "RUN_SECONDS",
    "RUN_TIMEOUT_PER_MESSAGE",
    "SEARCH_K",
    "SESSION_ID",
    "SESSION_TTL",
    "SKIP_REASON",
    "SLOT_INTERVAL",
    "SYNC_NAMESPACE",
    "SYNC_RUN_TIMEOUT",
    "SYNC_SESSION_ID",
    "TOPICS",
    "TOPIC_BY_TAG",
    "TURNS",
    "WINDOW",
    "WRITER",
    "WRITER_TIMEOUT",
    "AgentReport",
    "DemoContext",
    "EditorReport",
    "OutageReport",
    "Plan",
    "ResearcherReport",
    "Topic",
    "WriterReport",
    "act_live_edits",
    "act_redis_goes_away",
    "act_shared_memories",
    "act_shared_session",
    "add_arguments",
    "run",
]

INSTALL_HINT = 'the demo needs rich: pip install "rmem[demo]"'


# An act returns True (its checks passed), False (they failed) or None (skipped, said why).
ACTS: list[tuple[str, Callable[[DemoContext], bool | None]]] = [
    ("two agents, one session", act_shared_session),
    ("a researcher and a writer, one memory namespace", act_shared_memories),
    ("two processes editing one session and one record, live", act_live_edits),
    ("Redis goes away", act_redis_goes_away),
]

_COUNTS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


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
        help="messages each agent writes in acts 1 and 4 (default: %(default)s)",
    )
    parser.add_argument("--url", help="use this Redis instead of starting an embedded one")
    parser.add_argument(
        "--quiet",
        "--no-progress",
        action="store_true",
        help="no live progress (the default when stdout is not a terminal)",
    )


def _summary(results: list[bool | None]) -> str:
    """The last line of the demo: which acts passed (or were skipped), by title."""
    titles = [f"act {n} ({title})" for n, (title, _) in enumerate(ACTS, 1)]
    if results and all(ok is not False for ok in results) and len(results) == len(ACTS):
        passed = [title for title, ok in zip(titles, results, strict=True) if ok]
        skipped = [title for title, ok in zip(titles, results, strict=True) if ok is None]
        if skipped:
            which = f"{_count(len(passed))} act{'s' if len(passed) != 1 else ''}"
        else:
            which = {1: "the act", 2: "both acts"}.get(len(ACTS), f"all {_count(len(ACTS))} acts")
        line = f"[bold green]OK:[/] {which} passed: {'; '.join(passed)}"
        return f"{line}; skipped: {'; '.join(skipped)}." if skipped else f"{line}."
    failed = [title for title, ok in zip(titles, results, strict=False) if ok is False]
    return f"[bold red]FAILED:[/] {'; '.join(failed) or 'no act ran'}."


def _count(n: int) -> str:
    return _COUNTS[n] if n < len(_COUNTS) else f"{n}"


def run(args: argparse.Namespace) -> int:
    """Run every act of the demo; return 0 when the checks of all that ran pass, else 1.

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
    results: list[bool | None] = []
    with contextlib.ExitStack() as stack:
        server: EmbeddedRedis | None = None
        url: str | None = args.url
        if url is None:
            console.print("Starting an embedded Redis 8.2 with RediSearch (as `rmem server` does).")
            # An append-only file, so that act 4's SIGKILL is a crash Redis recovers from.
            server = stack.enter_context(EmbeddedRedis(persistence="aof"))
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
    return 0 if results and all(ok is not False for ok in results) else 1
