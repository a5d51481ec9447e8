"""Act 4 of ``rmem demo``: Redis goes away, and comes back.

Two agent processes, a triager and a fixer, work one incident: each appends its messages to one
shared session at a steady pace, reads the last few after every append, and now and then
records a note as a memory. Once each has written a quarter of its messages, the demo SIGKILLs
its Redis (:meth:`rmem.server.EmbeddedRedis.kill`), as a crash would. The agents do not stop:
their next calls find Redis gone, their clients go ``degraded`` (``client.health().state``)
and answer every call from the local store, queueing the writes in an outbox. Once each agent
has written another quarter that way, the demo restarts Redis on the same port
(:meth:`~rmem.server.EmbeddedRedis.restart`); each client's recovery thread finds it, replays
its outbox and is ``connected`` again, and the agents write the rest on Redis. Each agent then
waits until its outbox is empty and reads the whole session.

Persistence, and why: the demo's Redis keeps an append-only file (AOF), and this act sets it to
fsync every write (``appendfsync always``) before the kill, as a deployment that must not lose
an acknowledged write runs it. Redis therefore loses nothing to the SIGKILL, and what the act
tests is rmem's share of the promise: every write a client acknowledged while Redis was away
reaches Redis, and exactly once, although a write in flight at the kill may have been applied
by Redis *and* answered locally (a replay is idempotent: message ids and stamps). Without
persistence Redis comes back empty and rmem writes back only what its replicas held
(``docs/reliability.md``, "Redis restarting empty"): a weaker promise, which this act would
not show honestly as "nothing lost".

The parent then reads the session straight from Redis, every stored entry (so a message stored
twice shows), and checks that each agent's acknowledged messages are all there, once each, in
the order the agent wrote them; that Redis holds as many messages marked "written while
degraded" as each agent wrote; that both agents read the same history as Redis holds; and that
every note is there. With ``--url`` the demo did not start the Redis and will not kill it: the
act is skipped.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from rmem.demo._runner import DemoContext, Link, Process, failed, percentile, run_processes

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    import rmem
    from rmem.server import EmbeddedRedis

OUTAGE_NAMESPACE = "demo-outage"
OUTAGE_SESSION_ID = "incident"
OUTAGE_AGENTS = ("triager", "fixer")
OUTAGE_LINES = {
    "triager": ("Triage {i}: read the error logs", "Triage {i}: narrowed down the cause"),
    "fixer": ("Fix {i}: patched the handler", "Fix {i}: reran the failing test"),
}
OUTAGE_WINDOW = 5  # messages each agent reads back after every append
NOTE_EVERY = 10  # an agent records a note after every NOTE_EVERY messages (fewer: more often)
MIN_MESSAGES = 8  # each agent writes at least this many: some before, during and after
RUN_SECONDS = 3.0  # the agents spread their messages over about this long, whatever --messages
RECOVERY_TIMEOUT = 15.0  # seconds an agent waits, once done, for its outbox to reach Redis
SKIP_REASON = (
    "it kills and restarts Redis, and --url names a Redis this demo did not start (it will not "
    "kill yours)"
)
_AWAY = frozenset({"client.degraded", "client.recovering"})
_STATE_KINDS = _AWAY | {"client.connected"}
_POLL = 0.01


@dataclass(frozen=True)
class Plan:
    """How the act runs for a given ``--messages``: each agent's share and the outage's."""

    messages: int  # each agent's
    kill_at: int  # Redis is killed once each agent has written this many
    degraded_quota: int  # and restarted once each has written this many more while degraded
    interval: float  # seconds between two messages of an agent
    note_every: int  # an agent records a note after every note_every messages

    @classmethod
    def for_messages(cls, count: int) -> Plan:
        messages = max(count, MIN_MESSAGES)
        quarter = messages // 4
        # A short run still records a few notes, some of them while Redis is away.
        note_every = max(2, min(NOTE_EVERY, quarter))
        return cls(messages, quarter, quarter, RUN_SECONDS / messages, note_every)


class Progress(NamedTuple):
    """What an agent attaches to its progress reports, for the parent's director."""

    written: int
    degraded: int  # messages written while degraded or recovering
    state: str


@dataclass
class OutageReport:
    """What an act 4 agent sends back: what it wrote, how it fared, what it read at the end."""

    name: str
    acked: list[str] = field(default_factory=list)  # ids of its acknowledged messages, in order
    degraded_writes: int = 0  # messages written while degraded or recovering
    notes: dict[str, str] = field(default_factory=dict)  # record id -> text
    degraded_ms: list[float] = field(default_factory=list)  # calls started while away
    degraded_state: str | None = None  # health().state just after its first degraded write
    events: list[tuple[str, float]] = field(default_factory=list)  # (kind, monotonic seconds)
    history: list[str] = field(default_factory=list)  # the session's message ids, read at the end
    notes_counted: int = 0  # memories.count() at the end
    outage_seconds: float = 0.0  # health().degraded_seconds at the end
    replayed: int = 0  # health().replayed at the end
    logged: list[str] = field(default_factory=list)  # rmem's warnings, as its logger wrote them


class _LogTap(logging.Handler):
    """Keeps rmem's warnings for the report, instead of the child's stderr."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class _StateWatch:
    """The client's state, from its ``client.*`` events.

    rmem delivers those on the thread that changes the state, before the call that changed it
    returns, so ``away`` is exact for the call that follows.
    """

    def __init__(self) -> None:
        self.away = False
        self.state = "connected"
        self.events: list[tuple[str, float]] = []

    def on_event(self, event: rmem.Event) -> None:
        if event.kind in _STATE_KINDS:
            self.events.append((event.kind, time.monotonic()))
            self.away = event.kind in _AWAY
            self.state = event.kind.removeprefix("client.")


def _agent(link: Link, plan: Plan) -> OutageReport:
    """Write this agent's messages at a steady pace, through the outage; then read it all."""
    import rmem

    name = link.name
    report = OutageReport(name)
    watch = _StateWatch()
    tap = _LogTap()
    logging.getLogger("rmem").addHandler(tap)

    def timed(call: Any, *args: Any, **kwargs: Any) -> Any:
        away = watch.away
        t0 = time.perf_counter()
        result = call(*args, **kwargs)
        if away:
            report.degraded_ms.append((time.perf_counter() - t0) * 1000)
        return result

    with rmem.Client.from_url(link.url, namespace=OUTAGE_NAMESPACE) as client:
        client.subscribe(watch.on_event)
        if not client.wait_synced(RECOVERY_TIMEOUT):
            raise TimeoutError("the sync thread did not subscribe")
        session, memories = client.session(OUTAGE_SESSION_ID), client.memories
        session.messages(last=OUTAGE_WINDOW)  # connect and open the replica before the start
        memories.count()
        link.ready()
        began = time.monotonic()
        for i in range(plan.messages):
            time.sleep(max(0.0, began + i * plan.interval - time.monotonic()))
            away = watch.away
            line = OUTAGE_LINES[name][i % len(OUTAGE_LINES[name])].format(i=i)
            # "degraded" is stored with the message, so that Redis itself can be asked
            # afterwards how many of those written while this client was degraded it holds.
            meta = {"seq": i, "agent": name, "degraded": away}
            message = {"role": "assistant", "name": name, "content": line, "metadata": meta}
            stored = timed(session.append, message)
            report.acked.append(stored.id)
            report.degraded_writes += away
            if away and report.degraded_state is None:
                report.degraded_state = client.health().state
            timed(session.messages, last=OUTAGE_WINDOW)
            if (i + 1) % plan.note_every == 0:
                text = f"{name}'s note {len(report.notes) + 1}, after message {i}"
                record = timed(memories.add, text, tags=[name], metadata=meta)
                report.notes[record.id] = text
            data = Progress(i + 1, report.degraded_writes, watch.state)
            link.progress(i + 1, _note(data), data=data)
        data = Progress(plan.messages, report.degraded_writes, watch.state)
        link.progress(plan.messages, _note(data), final=True, data=data)
        health = _wait_recovered(client)
        # The other agent may still be replaying: wait until its messages are here too.
        total = plan.messages * len(OUTAGE_AGENTS)
        deadline = time.monotonic() + RECOVERY_TIMEOUT
        history = session.messages()
        while len(history) < total and time.monotonic() < deadline:
            time.sleep(_POLL)
            history = session.messages()
        report.history = [m.id for m in history]
        report.notes_counted = memories.count()
        report.events = watch.events
        report.outage_seconds, report.replayed = health.degraded_seconds, health.replayed
        data = Progress(plan.messages, report.degraded_writes, watch.state)
        note = f"{_note(data)} · read {len(history)} back"
        link.progress(plan.messages, note, final=True, data=data)
    report.logged = tap.lines
    return report


def _wait_recovered(client: rmem.Client) -> rmem.Health:
    """Wait until the client is connected with an empty outbox; its health then."""
    deadline = time.monotonic() + RECOVERY_TIMEOUT
    while True:
        health = client.health()
        if health.state == "connected" and health.pending_writes == 0:
            return health
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"still {health.state} with {health.pending_writes} writes pending "
                f"{RECOVERY_TIMEOUT:g} s after its last message"
            )
        time.sleep(_POLL)


def _note(data: Progress) -> str:
    return f"messages · {data.degraded} while degraded · {data.state}"


class _Outage:
    """The parent's side: kills Redis a quarter of the way in, restarts it after another."""

    def __init__(self, server: EmbeddedRedis, plan: Plan, console: Console) -> None:
        self.server, self.plan, self.console = server, plan, console
        self.killed_at: float | None = None  # monotonic
        self.back_at: float | None = None

    def __call__(self, latest: dict[str, Progress]) -> None:
        if len(latest) < len(OUTAGE_AGENTS) or self.back_at is not None:
            return
        plan = self.plan
        if self.killed_at is None:
            if all(data.written >= plan.kill_at for data in latest.values()):
                pid = self.server.pid
                self.server.kill()
                self.killed_at = time.monotonic()
                written = " and ".join(f"{n} {latest[n].written}" for n in OUTAGE_AGENTS)
                self.console.print(f"Killed Redis (SIGKILL to pid {pid}) with {written} written.")
        elif all(
            data.degraded >= plan.degraded_quota or data.written >= plan.messages
            for data in latest.values()
        ):
            began = time.monotonic()
            self.server.restart()
            self.back_at = time.monotonic()
            self.console.print(
                f"Restarted Redis after {began - self.killed_at:.2f} s down; it answered "
                f"{self.back_at - began:.2f} s later, with {_dbsize(self.server.url)} keys read "
                "back from its append-only file."
            )


def _dbsize(url: str) -> int:
    import redis

    with redis.Redis.from_url(url) as raw:
        return int(raw.dbsize())


class RedisView(NamedTuple):
    """The act's data as Redis holds it after the run."""

    stored: list[rmem.Message]  # every entry of the session's sorted set, in order
    read: list[str]  # message ids, as messages() of a fresh sync=False client returns them
    notes: dict[str, str | None]  # every agent's note id -> its text in Redis (None: missing)
    note_count: int  # memories.count()


def _redis_view(url: str, reports: dict[str, OutageReport]) -> RedisView:
    import redis

    import rmem
    from rmem._keys import session_keys
    from rmem._session_core import decode_members

    key = session_keys(OUTAGE_NAMESPACE, OUTAGE_SESSION_ID).msgs
    with redis.Redis.from_url(url) as raw:
        stored = decode_members(raw.zrange(key, 0, -1), key)
    with rmem.Client.from_url(url, namespace=OUTAGE_NAMESPACE, sync=False) as reader:
        read = [m.id for m in reader.session(OUTAGE_SESSION_ID).messages()]
        notes: dict[str, str | None] = {}
        for report in reports.values():
            for note_id in report.notes:
                record = reader.memories.get(note_id)
                notes[note_id] = None if record is None else record.text
        count = reader.memories.count()
    return RedisView(stored, read, notes, count)


class AgentCheck(NamedTuple):
    """One agent's messages in Redis, against what it acknowledged."""

    in_redis: int  # entries of this agent in the session's sorted set
    lost: int  # acknowledged ids not in Redis
    doubled: int  # entries beyond the first of an id
    in_order: bool  # its distinct ids in Redis are its acknowledged ids, in order
    degraded_in_redis: int  # entries marked as written while degraded
    same_history: bool  # what it read at the end is what Redis holds


def _check_agent(report: OutageReport, view: RedisView) -> AgentCheck:
    entries = [m for m in view.stored if m.name == report.name]
    ids = [m.id for m in entries]
    distinct = list(dict.fromkeys(ids))
    return AgentCheck(
        in_redis=len(entries),
        lost=len(set(report.acked) - set(ids)),
        doubled=len(ids) - len(distinct),
        in_order=distinct == report.acked,
        degraded_in_redis=sum(1 for m in entries if (m.metadata or {}).get("degraded") is True),
        same_history=report.history == [m.id for m in view.stored],
    )


def _problems(
    reports: dict[str, OutageReport], checks: dict[str, AgentCheck], view: RedisView, plan: Plan
) -> list[str]:
    """Everything that is wrong (empty: the act passed)."""
    problems = []
    for name, report in reports.items():
        check = checks[name]
        if len(report.acked) != plan.messages:
            problems.append(f"{name} acknowledged {len(report.acked)} of {plan.messages} messages")
        if check.lost:
            problems.append(f"{check.lost} of {name}'s acknowledged messages are not in Redis")
        if check.doubled:
            problems.append(f"{check.doubled} of {name}'s messages are stored twice in Redis")
        if not check.in_order:
            problems.append(f"{name}'s messages in Redis are not the ones it wrote, in its order")
        if report.degraded_writes == 0:
            problems.append(f"{name} wrote nothing while degraded: the outage never reached it")
        elif report.degraded_state != "degraded":
            problems.append(f"{name}'s health() said {report.degraded_state!r} during the outage")
        if check.degraded_in_redis != report.degraded_writes:
            problems.append(
                f"Redis holds {check.degraded_in_redis} of {name}'s messages written while "
                f"degraded, it wrote {report.degraded_writes}"
            )
        if not check.same_history:
            problems.append(
                f"{name} read {len(report.history)} messages at the end, not the "
                f"{len(view.stored)} Redis holds in its order"
            )
        if report.notes_counted != view.note_count:
            problems.append(
                f"{name} counted {report.notes_counted} notes, Redis holds {view.note_count}"
            )
    total = plan.messages * len(OUTAGE_AGENTS)
    if len(view.stored) != total:
        problems.append(f"the session holds {len(view.stored)} entries, expected {total}")
    if view.read != [m.id for m in view.stored]:
        problems.append("messages() from a fresh client differs from the stored entries")
    written = {note_id: text for r in reports.values() for note_id, text in r.notes.items()}
    missing = [note_id for note_id, text in written.items() if view.notes.get(note_id) != text]
    if missing:
        problems.append(f"{len(missing)} of {len(written)} notes are missing or changed in Redis")
    if view.note_count != len(written):
        problems.append(f"memories.count() is {view.note_count}, the agents wrote {len(written)}")
    return problems


def _outage_table(
    reports: list[OutageReport], checks: dict[str, AgentCheck], elapsed: float
) -> Table:
    from rich.table import Table

    caption = (
        "while degraded: written with the client degraded or recovering (answered locally); "
        "in Redis: read back from the session's sorted set, every entry; degraded calls: "
        f"appends, reads and note adds started while degraded; wall time {elapsed:.2f} s"
    )
    # One column per agent: a dozen measures side by side would not fit a terminal.
    table = Table(title="Redis goes away: two agents, one session", caption=caption)
    table.add_column("measure")
    for report in reports:
        table.add_column(report.name, justify="right")
    rows: list[tuple[str, Callable[[OutageReport, AgentCheck], str]]] = [
        ("messages acked", lambda r, c: f"{len(r.acked)}"),
        ("  of them written while degraded", lambda r, c: f"{r.degraded_writes}"),
        ("health().state while away", lambda r, c: r.degraded_state or "never away"),
        ("in Redis afterwards", lambda r, c: f"{c.in_redis}"),
        ("  marked written while degraded", lambda r, c: f"{c.degraded_in_redis}"),
        ("  acked but missing", lambda r, c: f"{c.lost}"),
        ("  stored twice", lambda r, c: f"{c.doubled}"),
        ("  in the agent's order", lambda r, c: "yes" if c.in_order else "no"),
        ("outage s (health().degraded_seconds)", lambda r, c: f"{r.outage_seconds:.2f}"),
        ("replayed (health().replayed)", lambda r, c: f"{r.replayed}"),
        ("degraded calls", lambda r, c: f"{len(r.degraded_ms)}"),
        ("degraded-call p99 ms", lambda r, c: f"{percentile(r.degraded_ms, 99):.3f}"),
        ("slowest degraded call ms", lambda r, c: f"{max(r.degraded_ms, default=0.0):.3f}"),
        ("read the history Redis holds", lambda r, c: "yes" if c.same_history else "no"),
    ]
    for label, cell in rows:
        table.add_row(
            label,
            *(cell(report, checks[report.name]) for report in reports),
            end_section=label in ("health().state while away", "  in the agent's order"),
        )
    return table


def _print_events(console: Console, reports: list[OutageReport], outage: _Outage) -> None:
    """Each agent's state changes, in seconds after the kill, and what rmem logged."""
    from rich.markup import escape

    if outage.killed_at is None:
        return
    width = max(len(report.name) for report in reports)
    for report in reports:
        steps = " → ".join(
            f"{kind.removeprefix('client.')} +{at - outage.killed_at:.2f} s"
            for kind, at in report.events
        )
        console.print(f"  {report.name:<{width}}  {steps or 'no state change'}", soft_wrap=True)
        for line in report.logged:
            console.print(f"  {'':<{width}}  {escape(line)}", soft_wrap=True)


def _fsync_always(url: str) -> bool:
    """Make the server fsync its AOF on every write; False when it keeps no AOF."""
    import redis

    with redis.Redis.from_url(url, decode_responses=True) as raw:
        if raw.config_get("appendonly").get("appendonly") != "yes":
            return False
        raw.config_set("appendfsync", "always")
    return True


def act_redis_goes_away(ctx: DemoContext) -> bool | None:
    """Two agents write through a SIGKILL of Redis and its restart; nothing lost or doubled.

    Returns None (skipped) when the demo did not start its Redis (``--url``).
    """
    import rmem
    from rmem._errors import ServerError

    console, server = ctx.console, ctx.server
    if server is None:
        console.print(f"Skipped: {SKIP_REASON}.", soft_wrap=True)
        return None
    if not _fsync_always(ctx.url):
        return failed(
            console, ["the demo's Redis keeps no append-only file: it would come back empty"]
        )
    with rmem.Client.from_url(ctx.url, namespace=OUTAGE_NAMESPACE, sync=False) as client:
        if client.session(OUTAGE_SESSION_ID).delete():
            where = f"{OUTAGE_NAMESPACE}/{OUTAGE_SESSION_ID}"
            console.print(f"Deleted the session {where} left by an earlier run.")
        client.memories.forget(all=True)
    plan = Plan.for_messages(ctx.messages)
    first, second = OUTAGE_AGENTS
    console.print(
        "The demo's Redis keeps an append-only file; from now on it fsyncs it on every write "
        "(appendfsync always), so that Redis itself loses nothing it acknowledged to the coming "
        f"SIGKILL. Spawning {first} and {second}: each appends {plan.messages} messages to "
        f"session {OUTAGE_NAMESPACE}/{OUTAGE_SESSION_ID}, one every "
        f"{plan.interval * 1000:.0f} ms, reading the last {OUTAGE_WINDOW} after each and "
        f"recording a note every {plan.note_every}. The demo kills Redis once each has written "
        f"{plan.kill_at}, and restarts it once each has written {plan.degraded_quota} more "
        "while degraded."
    )
    outage = _Outage(server, plan, console)
    specs = [Process(name, _agent, plan, plan.messages) for name in OUTAGE_AGENTS]
    run_timeout = 30 + 2 * RUN_SECONDS + 2 * RECOVERY_TIMEOUT
    try:
        reports, errors, elapsed = run_processes(ctx, specs, run_timeout, outage)
    except ServerError as exc:
        return failed(console, [f"Redis did not restart: {exc}"])
    finally:
        if not server.is_running:  # the agents failed while it was down
            with contextlib.suppress(ServerError):
                server.restart()
    if errors:
        return failed(console, [f"agent {error}" for error in errors])
    ordered = [reports[name] for name in OUTAGE_AGENTS]
    console.print("State changes (seconds after the kill), and what rmem logged:")
    _print_events(console, ordered, outage)
    console.print("Reading the session and the notes straight from Redis...")
    view = _redis_view(ctx.url, reports)
    checks = {name: _check_agent(reports[name], view) for name in OUTAGE_AGENTS}
    console.print(_outage_table(ordered, checks, elapsed))
    problems = _problems(reports, checks, view, plan)
    if problems:
        return failed(console, problems)
    degraded = sum(report.degraded_writes for report in ordered)
    console.print(
        f"[bold green]OK:[/] Redis holds all {len(view.stored)} acknowledged messages once "
        f"each, in each agent's order, {degraded} of them written while degraded, and "
        f"all {len(view.notes)} notes; both agents read the same {len(view.stored)} messages.",
        soft_wrap=True,
    )
    return True
