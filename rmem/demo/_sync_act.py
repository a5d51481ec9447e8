"""Act 3 of ``rmem demo``: two processes edit one session and one memory record, live.

Two editor processes, alpha and beta, each an ``rmem.Client`` with sync on (the default), take
turns in one namespace. On its turn an editor appends a message to the shared session and
rewrites the shared memory record (``add(id=...)`` the first time, ``update`` after); halfway,
alpha pops its message and appends an edited version. Before its next turn an editor waits
until the other's edit is in its own local replica. Each subscribes to the namespace's events,
and as each of the other's edits arrives, looks in its replica and measures how long after the
write it got there (writes carry ``time.monotonic_ns()``: one clock for every process on
Linux). At the end each reports what its replicas hold; the parent checks both against Redis,
read by a ``sync=False`` client, and that the record holds the newest write (last writer wins).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from rmem.demo._runner import DemoContext, Link, Process, failed, percentile, run_processes

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    import rmem
    from rmem._replica import SyncEngine

SYNC_NAMESPACE = "demo-sync"
SYNC_SESSION_ID = "live-edit"
RECORD_ID = "shared-plan"
EDITORS = ("alpha", "beta")  # alpha takes the even turns of the schedule, beta the odd ones
EDITOR = "alpha"  # the one who pops its message and appends an edited version
TURNS = 20  # turns of each editor
EDIT_TURN = TURNS // 2
SLOT_INTERVAL = 0.01  # seconds between turns: the run is paced, not a benchmark
# A turn starts at least this long after the other's edit arrived: the new message's stamp is
# then in a later millisecond, so pop() surely takes the editor's own newest message.
MIN_GAP = 0.002
CATCH_UP_TIMEOUT = 5.0  # seconds an editor waits for the other's edit to reach its replica
SYNC_RUN_TIMEOUT = 2 * TURNS * SLOT_INTERVAL + 3 * CATCH_UP_TIMEOUT
_POLL = 0.005  # seconds between looks at the replicas when no event arrives


def _writes(name: str) -> int:
    """The writes an editor makes: an append and a record write per turn, and the edit."""
    return 2 * TURNS + (2 if name == EDITOR else 0)


def _slot(metadata: dict[str, Any] | None) -> int:
    return int((metadata or {}).get("slot", -1))


@dataclass
class EditorReport:
    """What an act 3 editor process sends back: its writes, what it saw, its replicas."""

    name: str
    writes: int = 0
    record_stamps: list[str] = field(default_factory=list)  # of its own record writes
    edited: tuple[str, str] | None = None  # (popped message id, edited message id)
    seen_other: int = 0  # events of the other's writes
    delays_ms: list[float] = field(default_factory=list)  # write -> in this replica
    feed: list[tuple[str, int, str]] = field(default_factory=list)  # (event kind, slot, what)
    message_ids: list[str] = field(default_factory=list)  # the session replica at the end
    record: tuple[str, str] | None = None  # (text, stamp) in the record replica at the end


class _Watcher:
    """Follows this process's replicas: which of the other's edits are there, since when.

    ``on_event`` runs on rmem's sync thread, which has just caught the replicas up; the
    editor's thread also looks when no event comes (its own writes reload without one).
    """

    def __init__(self, client: rmem.Client, link: Link, other: str) -> None:
        sync = client._sync
        if sync is None:
            raise RuntimeError("act 3 needs a client with sync=True")
        self._sync: SyncEngine = sync
        self._namespace, self._node = client.namespace, client.node_id
        self._link, self._other = link, other
        self._cond = threading.Condition()
        self._held: dict[str, tuple[int, str]] = {}  # the other's messages: id -> slot, content
        self._seen: set[str] = set()  # message ids and record stamps already measured
        self._msg_slot = self._record_slot = -1  # newest slot each replica holds
        self.turns = 0
        self.events = 0
        self.delays_ms: list[float] = []
        self.feed: list[tuple[str, int, str]] = []

    def on_event(self, event: rmem.Event) -> None:
        if event.origin is None or event.origin == self._node:
            return
        with self._cond:
            self.events += 1
            changes = self._scan()
            if changes:
                self.feed.append((event.kind, changes[0][0], "; ".join(w for _, w in changes)))
            else:  # an earlier catch-up brought it (one catch-up reads every change so far)
                slot = self.feed[-1][1] if self.feed else -1
                self.feed.append((event.kind, slot, "(already in the replica)"))
            self._cond.notify_all()
        self._link.progress(self.turns, self.note())

    def note(self) -> str:
        last = f" · last {self.feed[-1][0]} {self.feed[-1][2]}" if self.feed else ""
        return f"turns · {self.events} of {self._other}'s edits seen{last}"

    def _scan(self) -> list[tuple[int, str]]:
        """Measure what arrived since the last look; return (slot, what) per change."""
        now = time.monotonic_ns()
        changes: list[tuple[int, str]] = []
        with self._sync.lock:
            replica = self._sync.session(self._namespace, SYNC_SESSION_ID)
            messages = None if replica is None else list(replica.messages)
        if messages is not None:
            held = {}
            for message in messages:
                slot = _slot(message.metadata)
                self._msg_slot = max(self._msg_slot, slot)
                if message.name != self._other:
                    continue
                held[message.id] = (slot, str(message.content))
                if message.id not in self._seen:
                    self._seen.add(message.id)
                    ms = (now - int((message.metadata or {})["sent_ns"])) / 1e6
                    self.delays_ms.append(ms)
                    changes.append((slot, f"+ {message.content!r} {ms:.2f} ms"))
            gone = [self._held[mid] for mid in self._held if mid not in held]
            changes += [(slot, f"- {content!r}") for slot, content in gone]
            self._held = held
        known, record = self._sync.record(self._namespace, RECORD_ID)
        if known and record is not None and record.stamp not in self._seen:
            self._seen.add(record.stamp)
            slot = _slot(record.metadata)
            self._record_slot = max(self._record_slot, slot)
            if record.metadata.get("by") == self._other:
                ms = (now - int(record.metadata["sent_ns"])) / 1e6
                self.delays_ms.append(ms)
                changes.append((slot, f"= {record.text!r} {ms:.2f} ms"))
        return changes

    def wait(self, ready: Any, timeout: float = CATCH_UP_TIMEOUT) -> bool:
        """Wait until ``ready()`` (called with the condition held); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._scan()
            while not ready():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if not self._cond.wait(min(left, _POLL)):
                    self._scan()
        return True

    def holds(self, slot: int) -> bool:
        """True once both replicas hold the edit of ``slot`` (or a later one)."""
        return self._msg_slot >= slot and self._record_slot >= slot

    def replicas(self) -> tuple[list[str], tuple[str, str] | None] | None:
        """The session's message ids and the record's (text, stamp); None while not fresh."""
        with self._sync.lock:
            replica = self._sync.session(self._namespace, SYNC_SESSION_ID)
            ids = None if replica is None else [m.id for m in replica.messages]
        known, record = self._sync.record(self._namespace, RECORD_ID)
        if ids is None or not known:
            return None
        return ids, None if record is None else (record.text, record.stamp)


def _edit(link: Link, name: str) -> EditorReport:
    """Take this editor's turns; then report what its replicas hold."""
    import rmem

    index = EDITORS.index(name)
    other = EDITORS[1 - index]
    report = EditorReport(name)
    with rmem.Client.from_url(link.url, namespace=SYNC_NAMESPACE) as client:
        watcher = _Watcher(client, link, other)
        client.subscribe(watcher.on_event)
        if not client.wait_synced(CATCH_UP_TIMEOUT):
            raise TimeoutError("the sync thread did not subscribe")
        session, memories = client.session(SYNC_SESSION_ID), client.memories
        session.messages()  # open the replicas: read through once, then kept current
        memories.get(RECORD_ID)
        memories.search("plan", k=1, mode="text")  # make or check the index before timing
        if not watcher.wait(lambda: watcher.replicas() is not None):
            raise TimeoutError("the replicas did not catch up before the start")
        link.ready()
        began = time.monotonic()
        for turn in range(TURNS):
            slot = 2 * turn + index
            if slot and not watcher.wait(lambda s=slot: watcher.holds(s - 1)):
                raise TimeoutError(f"{other}'s edit {slot - 1} never reached this replica")
            time.sleep(max(began + slot * SLOT_INTERVAL - time.monotonic(), MIN_GAP))
            content = f"turn {turn} from {name}"
            message = session.append(_message(name, content, slot))
            report.writes += 1
            if name == EDITOR and turn == EDIT_TURN:
                popped = session.pop()
                if popped is None or popped.id != message.id:
                    raise RuntimeError(f"pop() took {popped!r}, not {name}'s newest message")
                edited = session.append(_message(name, f"{content}, edited", slot))
                report.writes += 2
                report.edited = (popped.id, edited.id)
            text = f"plan v{slot}, by {name}"
            meta = {"by": name, "slot": slot, "sent_ns": time.monotonic_ns()}
            if turn == 0:
                record = memories.add(text, id=RECORD_ID, metadata=meta)
            else:
                record = memories.update(RECORD_ID, text=text, metadata=meta)
            report.record_stamps.append(record.stamp)
            report.writes += 1
            watcher.turns = turn + 1
            link.progress(watcher.turns, watcher.note())
        # The last turn's edit, whoever made it, and every event of the other's writes.
        last = 2 * TURNS - 1
        if not watcher.wait(lambda: watcher.holds(last) and watcher.events >= _writes(other)):
            raise TimeoutError(f"the replicas never held edit {last} and all of {other}'s edits")
        fresh = watcher.wait(lambda: watcher.replicas() is not None)
        held = watcher.replicas() if fresh else None
        if held is None:
            raise TimeoutError("the replicas did not catch up at the end")
        report.message_ids, report.record = held
        report.seen_other = watcher.events
        report.delays_ms, report.feed = watcher.delays_ms, watcher.feed
    link.progress(TURNS, watcher.note(), final=True)
    return report


def _message(name: str, content: str, slot: int) -> dict[str, Any]:
    meta = {"slot": slot, "sent_ns": time.monotonic_ns()}
    return {"role": "assistant", "name": name, "content": content, "metadata": meta}


class RedisState(NamedTuple):
    """The session's message ids and the record's (text, stamp), as Redis holds them."""

    message_ids: list[str]
    record: tuple[str, str] | None


def _redis_state(url: str) -> RedisState:
    import rmem

    with rmem.Client.from_url(url, namespace=SYNC_NAMESPACE, sync=False) as reader:
        ids = [m.id for m in reader.session(SYNC_SESSION_ID).messages()]
        record = reader.memories.get(RECORD_ID)
    return RedisState(ids, None if record is None else (record.text, record.stamp))


def _check(reports: dict[str, EditorReport], redis: RedisState) -> tuple[list[str], list[str]]:
    """Return the editors whose replicas differ from Redis, and every problem found."""
    differ, problems = [], []
    for name, report in reports.items():
        if report.message_ids != redis.message_ids:
            differ.append(name)
            problems.append(
                f"{name}'s session replica holds {len(report.message_ids)} messages "
                f"{_sample(report.message_ids)}, Redis {len(redis.message_ids)} "
                f"{_sample(redis.message_ids)}"
            )
        if report.record != redis.record:
            differ.append(name)
            problems.append(f"{name}'s record replica holds {report.record}, Redis {redis.record}")
        other = next(editor for editor in EDITORS if editor != name)
        if report.seen_other != _writes(other):
            problems.append(f"{name} saw {report.seen_other} of {other}'s {_writes(other)} edits")
    if len(redis.message_ids) != 2 * TURNS:
        problems.append(f"the session holds {len(redis.message_ids)} messages, not {2 * TURNS}")
    edited = reports[EDITOR].edited
    if edited is None or edited[0] in redis.message_ids or edited[1] not in redis.message_ids:
        problems.append(f"the session does not hold {EDITOR}'s edit in place of its message")
    newest = max(stamp for report in reports.values() for stamp in report.record_stamps)
    if redis.record is None or redis.record[1] != newest:
        problems.append(f"the record holds {redis.record}, not the newest write ({newest})")
    return sorted(set(differ)), problems


def _sample(ids: list[str]) -> str:
    return f"[{', '.join(ids[:2])}, ...]" if len(ids) > 2 else f"{ids}"


def _sync_table(reports: list[EditorReport], differ: list[str], elapsed: float) -> Table:
    from rich.table import Table

    caption = (
        "p50/p99: propagation, from the other process's write to this process's replica "
        f"(one clock for both); wall time {elapsed:.2f} s"
    )
    table = Table(title="Two processes, one session and one record, live", caption=caption)
    table.add_column("editor")
    for header in ("edits made", "other's seen", "p50 (ms)", "p99 (ms)"):
        table.add_column(header, justify="right")
    table.add_column("replica == Redis", justify="center")
    for report in reports:
        table.add_row(
            report.name,
            f"{report.writes}",
            f"{report.seen_other}",
            f"{percentile(report.delays_ms, 50):.3f}",
            f"{percentile(report.delays_ms, 99):.3f}",
            "no" if report.name in differ else "yes",
        )
    return table


def _print_edit(console: Console, watcher: EditorReport) -> None:
    """Show the events of the edited turn as the other editor saw them arrive."""
    from rich.markup import escape

    feed = watcher.feed
    # One catch-up reads every change so far, so which event brought what varies by run.
    start = next((i for i, line in enumerate(feed) if line[1] == 2 * EDIT_TURN), None)
    if start is None:
        return
    end = next((i for i in range(start, len(feed)) if feed[i][0] == "memory.put"), len(feed))
    console.print(f"{watcher.name}'s view of {EDITOR}'s turn {EDIT_TURN}, as its events arrived:")
    for kind, _, what in feed[start : end + 1]:
        console.print(f"  {kind:<15} {escape(what)}", soft_wrap=True)


def act_live_edits(ctx: DemoContext) -> bool:
    """Two processes edit one session and one record, each following the other live."""
    from rich.markup import escape

    import rmem

    console = ctx.console
    with rmem.Client.from_url(ctx.url, namespace=SYNC_NAMESPACE, sync=False) as client:
        if client.session(SYNC_SESSION_ID).delete():
            console.print(
                f"Deleted the session {SYNC_NAMESPACE}/{SYNC_SESSION_ID} left by an earlier run."
            )
        client.memories.delete(RECORD_ID)
    alpha, beta = EDITORS
    console.print(
        f"Spawning {alpha} and {beta}, two processes with local replicas (sync=True) in "
        f"namespace {SYNC_NAMESPACE}. They take {TURNS} turns each, one every "
        f"{SLOT_INTERVAL * 1000:g} ms: a message to session {SYNC_SESSION_ID} and a rewrite of "
        f"record {RECORD_ID}; on turn {EDIT_TURN} {EDITOR} pops its message and appends an "
        "edited one. Each follows the other's edits as events and times their arrival in its "
        "own replica."
    )
    specs = [Process(name, _edit, name, TURNS) for name in EDITORS]
    reports, errors, elapsed = run_processes(ctx, specs, SYNC_RUN_TIMEOUT)
    if errors:
        return failed(console, [f"editor {error}" for error in errors])
    console.print("Reading the session and the record from Redis (a sync=False client)...")
    redis = _redis_state(ctx.url)
    differ, problems = _check(reports, redis)
    console.print(_sync_table([reports[name] for name in EDITORS], differ, elapsed))
    _print_edit(console, reports[next(name for name in EDITORS if name != EDITOR)])
    console.print(f"replicas == Redis: {'no' if differ else 'yes'}")
    if problems:
        return failed(console, problems)
    text = redis.record[0] if redis.record else ""
    console.print(
        f"[bold green]OK:[/] both replicas equal Redis: {len(redis.message_ids)} messages in one "
        f"order, with {EDITOR}'s edit; record {RECORD_ID} is {escape(repr(text))}, "
        f"the newest of {2 * TURNS} writes (last writer wins).",
        soft_wrap=True,
    )
    return True
