"""Reliability benchmark: what rmem's fallback does through six Redis faults, measured.

Run from the repository root::

    python benchmarks/bench_reliability.py                        # full run (~1 min, 2 cores)
    python benchmarks/bench_reliability.py --quick                # shorter run (smoke test)
    python benchmarks/bench_reliability.py --markdown docs/reliability.md
    python benchmarks/bench_reliability.py --faults drop,blackhole

For each fault it starts a private Redis (``tests._faults.start_redis``) behind a
``FaultProxy``, and three writer processes (multiprocessing ``spawn``) that go through the
proxy with ``socket_timeout`` = ``connect_timeout`` = 0.3 s: two ``rmem.Client`` (replicas
and fallback on) that append numbered messages to their own session and to one shared session
and add memory records, and one redis-py client (no retries) that ``RPUSH``-es numbered ids,
for comparison. Every call is timed; every call that returned is an acknowledged write.

Once each rmem writer has made ``--warm`` iterations (so every row starts from sessions of the
same size), the fault is injected for ``--fault-seconds``, then healed; writers go on writing a
while, stop, and wait until ``health()`` says ``connected`` with ``pending_writes == 0``. A
fresh client straight on Redis (not through the proxy) then checks that no acknowledged write
is missing, that no message id is stored twice, and that each writer's own reads equal Redis.
Then small single-process scenarios check the fallback's rules (seeding cost, ``sync=False``,
a timed-out ``pop``, a late ``clear``/``delete``, an empty restart, ``journal_path``).

The faults: SIGKILL of Redis and restart from its AOF (``appendfsync always``); SIGSTOP for
longer than the socket timeout, then SIGCONT; the proxy resetting every connection
(``drop``); the proxy swallowing every byte with connections left open (``blackhole``, a
half-open link); 50 ms added each way (``latency``); and Redis restarting *empty* (no
persistence). It needs the embedded server (``pip install "rmem[server]"``) and cannot take
``--url``: it must be able to kill its Redis. It never asserts (exit code 0).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import multiprocessing as mp
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import redis

# Runnable as a file from a source checkout without installing rmem.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _reliability_worker as worker
from bench_sessions import environment, write_section

import rmem
from rmem.server import EmbeddedRedis
from tests._faults import FaultProxy, start_redis

MARK_START = "<!-- bench_reliability:start -->"
MARK_END = "<!-- bench_reliability:end -->"
BUDGET_P99_MS = 50.0
TIMEOUT = 0.3  # socket_timeout and connect_timeout of every writer
LATENCY = 0.05  # seconds added each way by the latency fault
READY_TIMEOUT = 60.0
IDLE_TIMEOUT = 90.0
CONVERGE_TIMEOUT = 10.0
WRITERS = ("w0", "w1")

Action = Callable[[EmbeddedRedis, FaultProxy], None]


@dataclass(frozen=True)
class Fault:
    key: str
    label: str
    aof: bool  # Redis persists with appendonly yes, appendfsync always
    inject: Action
    heal: Action


def _restart(server: EmbeddedRedis, proxy: FaultProxy) -> None:
    server.start()  # same port and directory; with AOF the data comes back, without it none


FAULTS = (
    Fault(
        "sigkill",
        "SIGKILL, restart from AOF",
        True,
        lambda s, p: s.kill(),
        _restart,
    ),
    Fault(
        "sigstop",
        "SIGSTOP > socket_timeout, SIGCONT",
        True,
        lambda s, p: s.pause(),
        lambda s, p: s.resume(),
    ),
    Fault("drop", "proxy drop (resets)", True, lambda s, p: p.drop(), lambda s, p: p.heal()),
    Fault(
        "blackhole",
        "proxy blackhole (half-open)",
        True,
        lambda s, p: p.blackhole(),
        lambda s, p: p.heal(),
    ),
    Fault(
        "latency",
        f"proxy latency {LATENCY * 1000:g} ms each way",
        True,
        lambda s, p: p.latency(LATENCY),
        lambda s, p: p.heal(),
    ),
    Fault(
        "empty",
        "Redis restarts EMPTY (no persistence)",
        False,
        lambda s, p: s.kill(),
        _restart,
    ),
)


@dataclass
class Phases:
    warm: int  # iterations each rmem writer makes before the fault (sessions of that size)
    fault: float
    after: float
    pause: float
    record_every: int = 5
    read_every: int = 10


@dataclass
class Outcome:
    fault: Fault
    t_fault: float
    t_heal: float
    reports: list[dict[str, Any]]
    raw: dict[str, Any] | None
    truth: dict[str, Any]
    raw_truth: list[str]
    converged: bool
    converge_seconds: float
    views: list[dict[str, Any]] = field(default_factory=list)


# ---------------------------------------------------------------------- process plumbing


def _recv(conn: Connection, expect: str, timeout: float, who: str) -> Any:
    if not conn.poll(timeout):
        raise RuntimeError(f"{who}: no {expect!r} within {timeout:g} s")
    message = conn.recv()
    if message[0] == "error":
        raise RuntimeError(message[1])
    if message[0] != expect:
        raise RuntimeError(f"{who}: expected {expect!r}, got {message[0]!r}")
    return message[1] if len(message) > 1 else None


@contextlib.contextmanager
def _writers(
    ctx: Any, url: str, namespace: str, phases: Phases, raw: bool
) -> Iterator[tuple[Any, list[Connection], Connection | None]]:
    stop = ctx.Event()
    procs, conns = [], []
    base = {
        "url": url,
        "namespace": namespace,
        "timeout": TIMEOUT,
        "pause": phases.pause,
        "record_every": phases.record_every,
        "read_every": phases.read_every,
        "warm": phases.warm,
    }
    for name in WRITERS:
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=worker.rmem_writer, args=(child, stop, {**base, "name": name}), daemon=True
        )
        proc.start()
        procs.append(proc)
        conns.append(parent)
    raw_conn = None
    if raw:
        raw_conn, child = ctx.Pipe()
        proc = ctx.Process(
            target=worker.raw_writer,
            args=(child, stop, {**base, "key": f"raw:{namespace}"}),
            daemon=True,
        )
        proc.start()
        procs.append(proc)
    try:
        yield stop, conns, raw_conn
    finally:
        stop.set()
        for conn in [*conns, *([raw_conn] if raw_conn else [])]:
            with contextlib.suppress(OSError):
                conn.send("exit")
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join()


# ---------------------------------------------------------------------- one fault


def run_fault(fault: Fault, phases: Phases, raw: bool) -> Outcome:
    ctx = mp.get_context("spawn")
    namespace = f"rel-{fault.key}-{uuid.uuid4().hex[:6]}"
    server = start_redis(appendonly=fault.aof, appendfsync="always")
    proxy = FaultProxy.in_front_of(server).start()
    try:
        with _writers(ctx, proxy.url, namespace, phases, raw) as (stop, conns, raw_conn):
            every = [*conns, *([raw_conn] if raw_conn else [])]
            for conn in every:
                _recv(conn, "ready", READY_TIMEOUT, "a writer")
            for conn in every:
                conn.send("go")
            for conn in conns:
                _recv(conn, "warm", READY_TIMEOUT, "a writer")
            t_fault = time.monotonic()
            fault.inject(server, proxy)
            time.sleep(phases.fault)
            fault.heal(server, proxy)
            t_heal = time.monotonic()  # Redis (or the link) serves again from here on
            time.sleep(phases.after)
            stop.set()
            reports = [
                _recv(c, "idle", IDLE_TIMEOUT, f"writer {WRITERS[i]}") for i, c in enumerate(conns)
            ]
            raw_report = _recv(raw_conn, "idle", IDLE_TIMEOUT, "raw") if raw_conn else None
            # Each writer's reads must equal Redis; replicas catch up asynchronously, so the
            # comparison is repeated for a while before it counts as not converged.
            started = time.monotonic()
            converged, views = False, []
            while True:
                for conn in conns:
                    conn.send("read")
                views = [_recv(c, "view", 30, "writer") for c in conns]
                truth, raw_truth = _truth(server.url, namespace, reports)
                converged = all(
                    _same(v, truth, r["name"]) for v, r in zip(views, reports, strict=True)
                )
                if converged or time.monotonic() - started > CONVERGE_TIMEOUT:
                    break
                time.sleep(0.2)
            return Outcome(
                fault,
                t_fault,
                t_heal,
                reports,
                raw_report,
                truth,
                raw_truth,
                converged,
                time.monotonic() - started,
                views,
            )
    finally:
        proxy.stop()
        server.close()


def _truth(
    url: str, namespace: str, reports: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[str]]:
    """What Redis holds, read straight from it (no proxy, no replica, no fallback)."""
    with rmem.Client.from_url(
        url, namespace=namespace, sync=False, fallback=False, search_engine="local"
    ) as client:
        sessions = {
            sid: [m.id for m in client.session(sid).messages()] for sid in (*WRITERS, worker.SHARED)
        }
        records: dict[str, str | None] = {}
        for report in reports:
            for rid, _ in report["acked"]["records"]:
                record = client.memories.get(rid)
                records[rid] = None if record is None else record.text
        count = client.memories.count()
    raw = redis.Redis.from_url(url)
    try:
        raw_ids = [x.decode() for x in raw.lrange(f"raw:{namespace}", 0, -1)]
    finally:
        raw.close()
    return {"sessions": sessions, "records": records, "count": count}, raw_ids


def _same(view: dict[str, Any], truth: dict[str, Any], name: str) -> bool:
    sessions = truth["sessions"]
    mine = {rid: text for rid, text in truth["records"].items() if rid in view["records"]}
    return (
        view["own"] == sessions[name]
        and view["shared"] == sessions[worker.SHARED]
        and view["records"] == mine
        and view["count"] == truth["count"]
    )


# ---------------------------------------------------------------------- figures


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class Row:
    label: str
    acked_during: int
    detect: float | None
    recover: float | None
    replayed: int
    replay_rate: float | None
    degraded_calls: int
    p50: float | None
    p99: float | None
    worst: float
    window: tuple[float, float] | None  # p50, p99 of every call started during the fault
    lost: int
    duplicates: int
    converged: bool
    outages: int
    stuck: int  # writes left in an outbox of a client that says "connected"
    errors: int
    raw_failed: int
    raw_acked_during: int
    raw_lost: int
    raw_worst: float
    lost_detail: dict[str, tuple[int, int]]  # category -> (acknowledged, present now)
    held: tuple[int, int]  # messages in one writer's own session and in the shared one
    by_rule: int  # lost writes the empty-restart rule does not cover (records never read)


def _first(events: list[tuple[float, str]], kind: str, after: float) -> float | None:
    return next((t for t, k in events if k == kind and t >= after), None)


def figures(o: Outcome) -> Row:
    t_fault, t_heal = o.t_fault, o.t_heal
    acked_during = degraded_calls = outages = errors = replayed = stuck = 0
    lat: list[float] = []
    window: list[float] = []
    worst = 0.0
    detects: list[float] = []
    recovers: list[float] = []
    recovery_time = 0.0
    for r in o.reports:
        for start, dur, op, ok, degraded in r["calls"]:
            if ok and op in worker.WRITE_OPS and t_fault <= start <= t_heal:
                acked_during += 1
            if t_fault <= start <= t_heal:
                window.append(dur)
            if degraded:
                degraded_calls += 1
                lat.append(dur)
            if start >= t_fault - TIMEOUT:
                worst = max(worst, dur)
        errors += sum(r["errors"].values())
        h = r["health"]
        outages += h["outages"]
        stuck += h["pending_writes"]
        replayed += h["replayed"]
        recovery_time += h["last_recovery_seconds"] or 0.0
        degraded_at = _first(r["events"], "client.degraded", t_fault - TIMEOUT)
        if degraded_at is not None:
            detects.append(max(0.0, degraded_at - t_fault))
            connected_at = _first(r["events"], "client.connected", t_heal)
            if connected_at is not None:
                recovers.append(connected_at - t_heal)
    truth = o.truth
    lost = duplicates = 0
    detail: dict[str, tuple[int, int]] = {}

    def tally(category: str, ids: list[str], present: set[str]) -> None:
        nonlocal lost
        found = sum(1 for i in ids if i in present)
        lost += len(ids) - found
        a, b = detail.get(category, (0, 0))
        detail[category] = (a + len(ids), b + found)

    for ids in truth["sessions"].values():
        duplicates += len(ids) - len(set(ids))
    shared = set(truth["sessions"][worker.SHARED])
    records = {rid for rid, text in truth["records"].items() if text is not None}
    for r in o.reports:
        own = set(truth["sessions"][r["name"]])
        acked = r["acked"]
        read = {rid for rid, _ in acked["records_read"]}
        for kind, present in (("own", own), ("shared", shared)):
            ids = acked[kind]
            tally("messages acked before the fault", [i for i, t in ids if t < t_fault], present)
            tally("messages acked from the fault on", [i for i, t in ids if t >= t_fault], present)
        ids = acked["records"]
        tally(
            "records acked before the fault, read back",
            [i for i, t in ids if t < t_fault and i in read],
            records,
        )
        tally(
            "records acked before the fault, never read",
            [i for i, t in ids if t < t_fault and i not in read],
            records,
        )
        tally("records acked from the fault on", [i for i, t in ids if t >= t_fault], records)
    raw_failed = raw_acked_during = raw_lost = 0
    raw_worst = 0.0
    if o.raw is not None:
        present = set(o.raw_truth)
        raw_lost = sum(1 for i, _ in o.raw["acked"] if i not in present)
        duplicates += len(o.raw_truth) - len(present)
        for start, dur, _op, ok, _ in o.raw["calls"]:
            if not ok and start >= t_fault - TIMEOUT:
                raw_failed += 1
            if ok and t_fault <= start <= t_heal:
                raw_acked_during += 1
            if start >= t_fault - TIMEOUT:
                raw_worst = max(raw_worst, dur)
    own_sizes = [sum(1 for _, t in r["acked"]["own"] if t < t_fault) for r in o.reports]
    shared_size = sum(sum(1 for _, t in r["acked"]["shared"] if t < t_fault) for r in o.reports)
    unread = detail.get("records acked before the fault, never read", (0, 0))
    return Row(
        label=o.fault.label,
        acked_during=acked_during,
        detect=max(detects) if detects else None,
        recover=max(recovers) if recovers and len(recovers) == len(detects) else None,
        replayed=replayed,
        replay_rate=replayed / recovery_time if replayed and recovery_time else None,
        degraded_calls=degraded_calls,
        p50=pct(lat, 50) if lat else None,
        p99=pct(lat, 99) if lat else None,
        worst=worst,
        window=(pct(window, 50), pct(window, 99)) if window else None,
        lost=lost,
        duplicates=duplicates,
        converged=o.converged,
        outages=outages,
        stuck=stuck,
        errors=errors,
        raw_failed=raw_failed,
        raw_acked_during=raw_acked_during,
        raw_lost=raw_lost,
        raw_worst=raw_worst,
        lost_detail=detail,
        held=(max(own_sizes, default=0), shared_size),
        by_rule=unread[0] - unread[1],
    )


# ---------------------------------------------------------------------- rule checks
# Small, deterministic scenarios behind the rules in docs/reliability.md; each returns one line
# of what was seen. They run in this process (plus one spawned process for the journal).


def _client(url: str, **options: Any) -> rmem.Client:
    options.setdefault("socket_timeout", TIMEOUT)
    options.setdefault("connect_timeout", TIMEOUT)
    return rmem.Client.from_url(url, namespace="rules", search_engine="local", **options)


def _direct(url: str) -> rmem.Client:
    return rmem.Client.from_url(
        url, namespace="rules", sync=False, fallback=False, search_engine="local"
    )


def _wait_back(client: rmem.Client, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = client.health()
        if health.state == "connected" and health.pending_writes == 0:
            return True
        time.sleep(0.02)
    return False


def _wait_replica(client: rmem.Client, sid: str, size: int, timeout: float = 10.0) -> None:
    """Wait until the client's replica of ``sid`` is caught up and holds ``size`` messages."""
    sync = client._sync
    assert sync is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client.session(sid).messages(last=1)  # keeps the replica wanted
        with sync.lock:
            replica = sync.session(client.namespace, sid)
            if replica is not None and len(replica.messages) == size:
                return
        time.sleep(0.02)
    raise RuntimeError(f"the replica of {sid!r} did not catch up within {timeout:g} s")


def _ids(client: rmem.Client, sid: str) -> list[str]:
    return [m.id for m in client.session(sid).messages()]


def _msg(mid: str) -> dict[str, str]:
    return {"role": "user", "content": mid, "id": mid}


def check_seed_cost(sizes: tuple[int, ...]) -> list[str]:
    """Time of the first degraded call on a session the client holds a replica of."""
    lines = []
    for size in sizes:
        for how in ("append", "extend"):
            with start_redis() as server, FaultProxy.in_front_of(server) as proxy:
                client = _client(proxy.url)
                client.wait_synced(10)
                big, probe = client.session("big"), client.session("probe")
                big.messages()
                probe.append(_msg("p0"))
                if how == "append":
                    for n in range(size):
                        big.append(_msg(f"m{n}"))
                else:
                    big.extend([_msg(f"m{n}") for n in range(size)])
                _wait_replica(client, "big", size)
                proxy.drop()
                probe.append(_msg("p1"))  # detection (and seeding of the tiny session)
                t0 = time.perf_counter()
                big.append(_msg("x1"))
                first = time.perf_counter() - t0
                t0 = time.perf_counter()
                big.append(_msg("x2"))
                second = time.perf_counter() - t0
                seen = len(big.messages())
                proxy.heal()
                _wait_back(client)
                client.close()
            built = "one append each" if how == "append" else "one extend()"
            lines.append(
                f"session of {size:,} messages ({built}): first degraded call "
                f"{first * 1000:.0f} ms, the next {second * 1000:.1f} ms; degraded "
                f"messages() returned {seen:,}"
            )
    return lines


def check_sync_false() -> list[str]:
    """What a degraded client reads back, with and without replicas."""
    lines = []
    for sync in (True, False):
        with start_redis() as server, FaultProxy.in_front_of(server) as proxy:
            client = _client(proxy.url, sync=sync)
            if sync:
                client.wait_synced(10)
            session = client.session("s")
            session.messages()
            for n in range(5):
                session.append(_msg(f"before-{n}"))
            if sync:
                _wait_replica(client, "s", 5)
            proxy.drop()
            session.append(_msg("during-0"))
            degraded = _ids(client, "s")
            proxy.heal()
            back = _wait_back(client)
            after = _ids(client, "s")
            client.close()
        lines.append(
            f"sync={sync}: 5 messages written, Redis dropped, 1 more written; degraded "
            f"messages() returned {len(degraded)} ({', '.join(degraded)}); after recovery "
            f"({'connected' if back else 'NOT back'}) {len(after)}"
        )
    return lines


def check_pop() -> list[str]:
    """A call that timed out (a pop above all): Redis may or may not have applied it."""
    lines = []
    with start_redis() as server, FaultProxy.in_front_of(server) as proxy:
        plain = _client(proxy.url, fallback=False, sync=False)
        plain.session("t").append(_msg("t0"))
        server.pause()
        try:
            plain.session("t").append(_msg("t1"))
            raised = "nothing"
        except rmem.RmemError as exc:
            raised = type(exc).__name__
        time.sleep(TIMEOUT)
        server.resume()
        with _direct(server.url) as direct:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and len(_ids(direct, "t")) < 2:
                time.sleep(0.02)
            final = _ids(direct, "t")
        plain.close()
    lines.append(
        f"fallback=False, SIGSTOP: append('t1') raised {raised}; after SIGCONT Redis holds {final}"
    )
    with start_redis() as server, FaultProxy.in_front_of(server) as proxy:
        a, b = _client(proxy.url), _client(proxy.url)
        for c in (a, b):
            c.wait_synced(10)
            c.session("p").messages()
        a.session("p").extend([_msg("m1"), _msg("m2"), _msg("m3")])
        a.session("warm-up").pop()  # loads the pop script: a NOSCRIPT reply would run nothing
        time.sleep(0.3)
        server.pause()
        b.session("p").append(_msg("late"))  # times out: B goes degraded, queues it
        popped = a.session("p").pop()  # times out too: A pops its own local copy
        server.resume()
        back = _wait_back(a) and _wait_back(b)
        with _direct(server.url) as direct:
            final = _ids(direct, "p")
        a.close()
        b.close()
    lines.append(
        f"SIGSTOP: A and B hold m1..m3; B appends 'late', A pops, both calls time out and are "
        f"answered locally (A popped {popped.id if popped else None}); SIGCONT; both "
        f"{'back' if back else 'NOT back'}: Redis holds {final}"
    )
    # A slow link: the pop reaches Redis (and runs there) after A gave up on it.
    slow = TIMEOUT * 2 / 3
    with start_redis() as server, FaultProxy.in_front_of(server) as proxy:
        a = _client(proxy.url)
        a.wait_synced(10)
        a.session("p").messages()
        a.session("p").extend([_msg("m1"), _msg("m2"), _msg("m3")])
        a.session("warm-up").pop()  # loads the pop script: a NOSCRIPT reply would run nothing
        time.sleep(0.3)
        with _direct(server.url) as b:
            proxy.latency(slow)
            b.session("p").append(_msg("late"))  # acknowledged by Redis
            popped = a.session("p").pop()  # runs in Redis after A's timeout; A pops locally
            proxy.heal()
            back = _wait_back(a)
            final = _ids(b, "p")
        a.close()
    lines.append(
        f"{slow * 1000:.0f} ms each way on A's link: B (on Redis) appends 'late'; A pops, its "
        f"call times out and is answered locally (popped {popped.id if popped else None}) "
        f"while Redis runs the original pop; A {'back' if back else 'NOT back'}: Redis holds "
        f"{final}"
    )
    return lines


def check_clear() -> list[str]:
    """A clear or delete made while degraded, replayed after another instance's writes."""
    lines = []
    for op in ("clear", "delete"):
        with start_redis() as server, FaultProxy.in_front_of(server) as proxy:
            a = _client(proxy.url)
            a.wait_synced(10)
            a.session("c").messages()
            a.session("c").extend([_msg("a1"), _msg("a2")])
            _wait_replica(a, "c", 2)
            with _direct(server.url) as b:
                proxy.drop()
                a.session("c").append(_msg("a3"))  # A is degraded from here on
                b.session("c").append(_msg(f"b-before-{op}"))
                time.sleep(0.01)
                result = getattr(a.session("c"), op)()
                time.sleep(0.01)
                b.session("c").append(_msg(f"b-after-{op}"))
                proxy.heal()
                back = _wait_back(a)
                final = _ids(b, "c")
            a.close()
        lines.append(
            f"A (degraded, holding a1 a2 a3) calls {op}() -> {result}; B (on Redis) appended "
            f"one message just before that call and one just after; A "
            f"{'back' if back else 'NOT back'}: Redis holds {final}"
        )
    return lines


def check_empty() -> list[str]:
    """What comes back after Redis restarts empty: held vs not held, noticed vs not."""
    lines = []
    for noticed in (True, False):
        with start_redis() as server, FaultProxy.in_front_of(server) as proxy:
            a = _client(proxy.url)
            a.wait_synced(10)
            a.session("read").messages()  # opens a replica
            a.session("read").append(_msg("r1"))
            a.session("written").append(_msg("w1"))  # written, never read: no replica
            a.memories.add("read back", id="rec-read")
            a.memories.get("rec-read")
            a.memories.add("never read", id="rec-unread")
            _wait_replica(a, "read", 1)
            sync = a._sync
            assert sync is not None
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not sync.record("rules", "rec-read")[0]:
                time.sleep(0.02)  # the sync thread loads the record into the replica
            held = a.memories.get("rec-read")
            time.sleep(0.5)  # so that a reset created_at shows
            server.kill()
            if noticed:
                a.session("written").append(_msg("w-down"))  # fails over: degraded
            server.start()  # empty: no persistence
            a.session("written").append(_msg("w-up"))
            if not noticed:  # the sync thread finds the marker changed when it reconnects
                until = time.monotonic() + 10
                while time.monotonic() < until and a.health().outages == 0:
                    time.sleep(0.05)
            outages = a.health().outages
            back = _wait_back(a)
            with _direct(server.url) as direct:
                got = {sid: _ids(direct, sid) for sid in ("read", "written")}
                records = [r for r in ("rec-read", "rec-unread") if direct.memories.get(r)]
                back_rec = direct.memories.get("rec-read")
            a.close()
        how = (
            "a call made while Redis was down (client degraded)"
            if noticed
            else "Redis restarted between two calls"
        )
        moved = ""
        if held is not None and back_rec is not None:
            moved = (
                f" (its created_at moved by {back_rec.created_at - held.created_at:+.2f} s, "
                f"stamp {'kept' if back_rec.stamp == held.stamp else 'changed'})"
            )
        lines.append(
            f"{how}: outages={outages}, {'back' if back else 'NOT back'}; session read before: "
            f"{got['read']}, session only written: {got['written']}, records: {records}{moved}"
        )
    return lines


def check_journal(tmp: Path) -> list[str]:
    """A process that dies while degraded, with and without journal_path."""
    lines = []
    ctx = mp.get_context("spawn")
    for journal in (str(tmp / "rmem.journal"), None):
        with start_redis() as server, FaultProxy.in_front_of(server) as proxy:
            proxy.drop()
            ids = ["j1", "j2", "j3"]
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=worker.journal_writer,
                args=(child, proxy.url, "rules", journal, ids),
            )
            proc.start()
            state = _recv_plain(parent, 30)
            proc.join(10)
            proxy.heal()
            reopened = "no second process"
            if journal is not None:
                with _client(proxy.url, journal_path=journal, sync=False) as again:
                    back = _wait_back(again)
                    reopened = (
                        f"a new client on the same journal_path replayed them "
                        f"({'connected' if back else 'NOT back'})"
                    )
            with _direct(server.url) as direct:
                final = _ids(direct, "j")
        lines.append(
            f"journal_path={'set' if journal else 'None'}: 3 writes acknowledged while "
            f"Redis was unreachable ({state[0]}, pending_writes={state[1]}), then os._exit; "
            f"{reopened}; Redis holds {final}"
        )
    return lines


def _recv_plain(conn: Connection, timeout: float) -> Any:
    if not conn.poll(timeout):
        raise RuntimeError(f"no answer within {timeout:g} s")
    return conn.recv()


def rule_checks(quick: bool, tmp: Path) -> list[tuple[str, list[str]]]:
    sizes = (100, 1000) if not quick else (100,)
    return [
        ("first degraded call on a session (seeding from the replica)", check_seed_cost(sizes)),
        ("what a degraded client reads", check_sync_false()),
        ("a timed-out call has an unknown outcome; pop", check_pop()),
        ("clear and delete replayed later", check_clear()),
        ("Redis restarting empty (held before: session 'read' r1, record rec-read)", check_empty()),
        ("journal_path and a process that dies while degraded", check_journal(tmp)),
    ]


# ---------------------------------------------------------------------- report


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:.1f}"


def _s(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.2f}"


def _lost(r: Row) -> str:
    if r.lost == 0:
        return "0"
    if r.by_rule:
        return f"**{r.lost:,}** ({r.by_rule:,} by the rule, {r.lost - r.by_rule:,} not)"
    return f"**{r.lost:,}**"


def table(rows: list[Row]) -> str:
    lines = [
        "| fault | msgs held at fault (own / shared) | writes acked during fault | detect s | "
        "recover s | replayed | replay /s | calls degraded | degraded p50 ms | "
        "degraded p99 ms | worst call ms | all calls during fault p50 / p99 ms | "
        "lost | dups | converged | raw redis-py: failed / acked during / lost |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|",
    ]
    for r in rows:
        p99 = _ms(r.p99)
        if r.p99 is not None:
            ok = r.p99 * 1000 <= BUDGET_P99_MS
            p99 += " pass" if ok else " **FAIL**"
        rate = "—" if r.replay_rate is None else f"{r.replay_rate:,.0f}"
        lines.append(
            "| "
            + " | ".join(
                [
                    r.label,
                    f"{r.held[0]:,} / {r.held[1]:,}",
                    f"{r.acked_during:,}",
                    _s(r.detect),
                    f"**never**: {r.stuck} write(s) stuck in the outbox"
                    if r.stuck
                    else _s(r.recover),
                    f"{r.replayed:,}",
                    rate,
                    f"{r.degraded_calls:,}",
                    _ms(r.p50),
                    p99,
                    _ms(r.worst),
                    "—" if r.window is None else f"{_ms(r.window[0])} / {_ms(r.window[1])}",
                    _lost(r),
                    f"{r.duplicates:,}",
                    "yes" if r.converged else "**no**",
                    f"{r.raw_failed:,} / {r.raw_acked_during:,} / {r.raw_lost:,}",
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def detail_table(row: Row) -> str:
    lines = ["| acknowledged writes | acked | in Redis after recovery |", "|---|--:|--:|"]
    for category, (acked, present) in row.lost_detail.items():
        lines.append(f"| {category} | {acked:,} | {present:,} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter phases (smoke test)")
    parser.add_argument(
        "--faults",
        default=",".join(f.key for f in FAULTS),
        help="comma-separated subset of: " + ", ".join(f.key for f in FAULTS),
    )
    parser.add_argument("--fault-seconds", type=float, help="fault duration (1.5 s; 1.0 quick)")
    parser.add_argument(
        "--warm", type=int, help="iterations per writer before the fault (200; 100 quick)"
    )
    parser.add_argument("--pause", type=float, default=0.002, help="sleep between iterations")
    parser.add_argument("--no-raw", action="store_true", help="skip the redis-py writer")
    parser.add_argument("--no-rules", action="store_true", help="skip the rule checks")
    parser.add_argument("--verbose", action="store_true", help="print the writers' rmem logs")
    parser.add_argument("--markdown", type=Path, help="write/replace a section in this file")
    parser.add_argument("--dump", type=Path, help="write every raw outcome to this JSON file")
    args = parser.parse_args(argv)
    wanted = [k.strip() for k in args.faults.split(",") if k.strip()]
    unknown = set(wanted) - {f.key for f in FAULTS}
    if unknown:
        parser.error(f"unknown faults: {', '.join(sorted(unknown))}")
    phases = (
        Phases(warm=args.warm or 100, fault=args.fault_seconds or 1.0, after=0.6, pause=args.pause)
        if args.quick
        else Phases(
            warm=args.warm or 200, fault=args.fault_seconds or 1.5, after=1.0, pause=args.pause
        )
    )
    if not args.verbose:  # the rule checks' own clients would warn on every outage they cause
        logging.getLogger("rmem").setLevel(logging.ERROR)
    started = time.perf_counter()
    with start_redis() as probe:
        env = environment(probe.url)
    rows: list[Row] = []
    notes: list[str] = []
    dumps: list[dict[str, Any]] = []
    for fault in FAULTS:
        if fault.key not in wanted:
            continue
        outcome = run_fault(fault, phases, raw=not args.no_raw)
        row = figures(outcome)
        rows.append(row)
        if args.dump:
            dumps.append({**vars(outcome), "fault": fault.key})
        print(
            f"{fault.key}: lost {row.lost}, duplicates {row.duplicates}, "
            f"converged {row.converged}, recover {_s(row.recover)} s",
            flush=True,
        )
        for r in outcome.reports:
            for error, count in r["errors"].items():
                notes.append(f"{fault.key} {r['name']}: {count} x {error}")
            for line in r["log"]:
                if args.verbose or " ERROR " in line:
                    print(f"  {fault.key} {r['name']} log: {line}", flush=True)
            h = r["health"]
            if h["state"] != "connected" or h["pending_writes"]:
                notes.append(
                    f"{fault.key} {r['name']}: still {h['state']} with pending_writes="
                    f"{h['pending_writes']} {worker.IDLE_TIMEOUT:g} s after the writes stopped"
                )
            if r["health"]["rejected"]:
                notes.append(f"{fault.key} {r['name']}: {r['health']['rejected']} rejected")
            if fault.key == "empty":
                notes.append(f"{fault.key} {r['name']}: {r['reseeded']} scripts written back")
        if row.outages > len(WRITERS) and fault.key != "latency":
            notes.append(f"{fault.key}: {row.outages} outages for {len(WRITERS)} clients")
        if not outcome.converged:
            notes.append(f"{fault.key}: not converged after {outcome.converge_seconds:.1f} s")
        if fault.key == "empty":
            notes.append("empty restart, what came back:\n\n" + detail_table(row))
    checks: list[tuple[str, list[str]]] = []
    if not args.no_rules:
        with tempfile.TemporaryDirectory(prefix="rmem-rel-") as tmp:
            checks = rule_checks(args.quick, Path(tmp))
    took = time.perf_counter() - started
    command = " ".join(["python benchmarks/bench_reliability.py", *(argv or sys.argv[1:])])
    text = (
        f"Environment: {env}\n\n"
        f"Command: `{command}`; "
        f"2 rmem writers{'' if args.no_raw else ' + 1 redis-py writer'} (separate processes) "
        "through a fault proxy, "
        f"socket_timeout = connect_timeout = {TIMEOUT:g} s; the fault starts once each rmem "
        f"writer made {phases.warm} iterations (its own session then holds {phases.warm} "
        f"messages, the shared one {2 * phases.warm}) and lasts {phases.fault:g} s; writers "
        f"go on {phases.after:g} s after the heal; "
        f"{phases.pause * 1000:g} ms pause per iteration; took {took:.0f} s.\n\n"
        f"{table(rows)}\n"
    )
    if notes:
        text += (
            "\n"
            + "\n".join(
                f"- {n}" if not n.startswith("empty restart") else f"\n{n}\n" for n in notes
            )
            + "\n"
        )
    if checks:
        text += "\nRule checks (one scenario each, same settings):\n"
        for title, lines in checks:
            text += f"\n- **{title}**\n" + "".join(f"  - {line}\n" for line in lines)
    print(text)
    if args.dump:
        args.dump.write_text(json.dumps(dumps), encoding="utf-8")
    if args.markdown:
        write_section(args.markdown, text, MARK_START, MARK_END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
