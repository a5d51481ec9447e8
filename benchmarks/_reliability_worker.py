"""Writer processes of ``bench_reliability.py`` (started with multiprocessing ``spawn``).

:func:`rmem_writer` drives one ``rmem.Client`` (sync API, replicas on, fallback on) through a
fault: it appends numbered messages to its own session and to a session shared with the other
writer, adds memory records, and times every call. :func:`raw_writer` does the same kind of
writes with redis-py alone (``RPUSH`` of numbered ids, no retries), for comparison.

:func:`journal_writer` writes while Redis is unreachable and then dies without closing its
client (``os._exit``), for the ``journal_path`` check.

Protocol over the pipe (parent → child / child → parent): the child sends ``("ready",)``,
waits for ``"go"``, sends ``("warm",)`` after ``warm`` iterations, writes until the shared
``stop`` event is set, then waits until its client is connected with an empty outbox and sends
``("idle", report)``. It then answers each ``"read"`` with ``("view", view)`` (what its own
reads return now) until ``"exit"``.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as EventType
from typing import Any

SHARED = "shared"
# Operation codes in the call log (one small int per call keeps the pipe traffic small).
OPS = ("append own", "append shared", "memories.add", "memories.get", "messages(last=10)")
WRITE_OPS = frozenset({0, 1, 2})
IDLE_TIMEOUT = 15.0  # a client still not back by then is reported as such


class _Capture(logging.Handler):
    """Keeps rmem's warnings and errors for the report instead of printing them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{time.monotonic():.3f} {record.levelname} {record.getMessage()}")


def _fail(conn: Connection, where: str) -> None:
    conn.send(("error", f"{where}:\n{traceback.format_exc()}"))


def rmem_writer(conn: Connection, stop: EventType, cfg: dict[str, Any]) -> None:
    """One rmem client writing through the fault; see the module docstring."""
    try:
        _rmem_writer(conn, stop, cfg)
    except Exception:
        _fail(conn, f"rmem writer {cfg.get('name')}")


def _rmem_writer(conn: Connection, stop: EventType, cfg: dict[str, Any]) -> None:
    import rmem

    capture = _Capture()
    logging.getLogger("rmem").addHandler(capture)
    logging.getLogger("rmem").propagate = False
    name: str = cfg["name"]
    client = rmem.Client.from_url(
        cfg["url"],
        namespace=cfg["namespace"],
        socket_timeout=cfg["timeout"],
        connect_timeout=cfg["timeout"],
        search_engine="local",
    )
    events: list[tuple[float, str]] = []

    def on_event(event: rmem.Event) -> None:
        if event.kind.startswith("client."):
            events.append((time.monotonic(), event.kind))

    client.subscribe(on_event)
    if not client.wait_synced(10):
        raise RuntimeError("the sync thread did not subscribe within 10 s")
    fallback = client._backend.fallback
    assert fallback is not None
    own, shared, memories = client.session(name), client.session(SHARED), client.memories
    own.messages()  # opens the replicas the fallback seeds from
    shared.messages()
    conn.send(("ready",))
    if conn.recv() != "go":
        return

    # One row per call: start (monotonic s), duration (s), op code, ok, degraded at start.
    calls: list[tuple[float, float, int, bool, bool]] = []
    errors: dict[str, int] = {}
    # Acknowledged writes: (id, monotonic time the call started).
    acked: dict[str, list[tuple[str, float]]] = {
        "own": [],
        "shared": [],
        "records": [],
        "records_read": [],
    }
    pause, every_record, every_read = cfg["pause"], cfg["record_every"], cfg["read_every"]

    def timed(op: int, fn: Any, *args: Any, **kwargs: Any) -> float | None:
        """Run one call; return its start time when it returned (acknowledged), else None."""
        degraded = fallback.state != "connected"
        start = time.monotonic()
        t0 = time.perf_counter()
        try:
            fn(*args, **kwargs)
            ok = True
        except Exception as exc:  # counted and reported: with the fallback on, none expected
            ok = False
            key = f"{OPS[op]}: {type(exc).__name__}: {exc}"[:200]
            errors[key] = errors.get(key, 0) + 1
        calls.append((start, time.perf_counter() - t0, op, ok, degraded))
        return start if ok else None

    n = 0
    while not stop.is_set():
        n += 1
        mid = f"{name}-o-{n:06d}"
        at = timed(0, own.append, {"role": "user", "content": f"own {n}", "id": mid})
        if at is not None:
            acked["own"].append((mid, at))
        sid = f"{name}-s-{n:06d}"
        at = timed(1, shared.append, {"role": "assistant", "content": f"shared {n}", "id": sid})
        if at is not None:
            acked["shared"].append((sid, at))
        if n % every_record == 0:
            rid = f"{name}-r-{n:06d}"
            at = timed(2, memories.add, f"note {n} from {name}", id=rid, tags=[name])
            if at is not None:
                acked["records"].append((rid, at))
                # Every other record is read back: only records a client has read are in its
                # replica, which is what it can write back to a Redis that came back empty.
                if (n // every_record) % 2 == 0 and timed(3, memories.get, rid) is not None:
                    acked["records_read"].append((rid, at))
        if n % every_read == 0:
            timed(4, own.messages, last=10)
            timed(4, shared.messages, last=10)
        if n == cfg["warm"]:
            conn.send(("warm",))  # the parent injects the fault once every writer is here
        if pause:
            time.sleep(pause)
    stopped = time.monotonic()

    deadline = stopped + IDLE_TIMEOUT
    health = client.health()
    while not (health.state == "connected" and health.pending_writes == 0):
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
        health = client.health()
    conn.send(
        (
            "idle",
            {
                "name": name,
                "iterations": n,
                "stopped": stopped,
                "idle": time.monotonic(),
                "health": health.model_dump(),
                "reseeded": fallback.figures.reseeded,
                "events": events,
                "calls": calls,
                "errors": errors,
                "acked": acked,
                "log": capture.lines,
            },
        )
    )
    while True:
        command = conn.recv()
        if command != "read":
            break
        records: dict[str, str | None] = {}
        for rid, _ in acked["records"]:
            record = memories.get(rid)
            records[rid] = None if record is None else record.text
        view = {
            "own": [m.id for m in own.messages()],
            "shared": [m.id for m in shared.messages()],
            "records": records,
            "count": memories.count(),
            "state": fallback.state,
        }
        conn.send(("view", view))
    client.close()


def raw_writer(conn: Connection, stop: EventType, cfg: dict[str, Any]) -> None:
    """redis-py alone: RPUSH numbered ids, no retries; what an app without rmem sees."""
    try:
        _raw_writer(conn, stop, cfg)
    except Exception:
        _fail(conn, "raw writer")


def _raw_writer(conn: Connection, stop: EventType, cfg: dict[str, Any]) -> None:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    raw = redis.Redis.from_url(
        cfg["url"],
        socket_timeout=cfg["timeout"],
        socket_connect_timeout=cfg["timeout"],
        retry=Retry(NoBackoff(), 0),  # redis-py 8 retries 3 times by default
    )
    key = cfg["key"]
    raw.ping()
    conn.send(("ready",))
    if conn.recv() != "go":
        return
    calls: list[tuple[float, float, int, bool, bool]] = []
    errors: dict[str, int] = {}
    acked: list[tuple[str, float]] = []
    n = 0
    while not stop.is_set():
        n += 1
        mid = f"raw-{n:06d}"
        start = time.monotonic()
        t0 = time.perf_counter()
        try:
            raw.rpush(key, mid)
            ok = True
            acked.append((mid, start))
        except redis.RedisError as exc:
            ok = False
            kind = type(exc).__name__
            errors[kind] = errors.get(kind, 0) + 1
        calls.append((start, time.perf_counter() - t0, 0, ok, False))
        if cfg["pause"]:
            time.sleep(cfg["pause"])
    conn.send(("idle", {"name": "raw", "calls": calls, "errors": errors, "acked": acked}))
    while conn.recv() == "read":
        conn.send(("view", {}))
    raw.close()


def journal_writer(
    conn: Connection, url: str, namespace: str, journal: str | None, ids: list[str]
) -> None:
    """Append ``ids`` to session "j" (Redis is unreachable: all go to the outbox), then die."""
    import rmem

    logging.getLogger("rmem").setLevel(logging.ERROR)
    client = rmem.Client.from_url(
        url,
        namespace=namespace,
        socket_timeout=0.3,
        connect_timeout=0.3,
        journal_path=journal,
        sync=False,
    )
    session = client.session("j")
    for mid in ids:
        session.append({"role": "user", "content": mid, "id": mid})
    health = client.health()
    conn.send((health.state, health.pending_writes))
    conn.close()
    os._exit(0)  # as a crash: no close(), no chance to replay
