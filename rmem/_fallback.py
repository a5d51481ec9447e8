"""Local fallback: keep working while Redis is unreachable, and lose nothing.

States: ``connected`` → ``degraded`` (Redis unreachable) → ``recovering`` (replaying) →
``connected``. One :class:`Fallback` per client (namespace views share it), for both APIs.

- **Detection.** The first call that finds Redis unreachable (refused, reset, timed out) moves
  the client to ``degraded`` and is itself answered locally. From then on every call goes
  straight to the local store: no socket timeout is waited on again (the circuit is open).
- **Degraded.** Calls run rmem's own Lua scripts on the in-process store
  (:class:`~rmem._local.LocalStore`), so every operation keeps its semantics. The first time
  a session or a namespace's memories are touched, the store is seeded from this client's
  replicas (what it last saw of them). Each write is queued in the outbox, and also in the
  journal file when ``journal_path`` is set, before the call returns.
- **Recovery.** A background thread probes Redis with exponential backoff (tenacity). Once it
  answers, the state is ``recovering``: the thread replays the outbox in order through the
  same scripts. Every entry carries its original stamp and message ids, so replaying twice is
  harmless, and writes other instances made meanwhile merge by last-writer-wins and message-id
  union. Calls keep going to the local store (and the outbox) until the outbox is empty; then,
  under the same lock the writes take, the client is ``connected`` again, the local store is
  emptied and every replica reloads from Redis.
- **Redis came back empty.** A marker key holds a token the client saw when it first reached
  Redis. Missing at recovery means Redis lost its data (restarted without persistence, or was
  flushed): the client writes back what its replicas hold, each with its original stamps,
  before replaying the outbox (decisions #22 states the limits).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgpack
import redis
import tenacity
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, ResponseError
from redis.retry import Retry

from rmem import _lua
from rmem._errors import RmemError
from rmem._keys import (
    SERVER_MARK,
    memory_key,
    memory_keys,
    parse_key_scope,
    session_index,
    session_keys,
    sync_channel,
)
from rmem._local import LocalStore
from rmem._lua import Arg, ScriptCall, Step, commands_of
from rmem._memory_core import MemoryRecord, check_vector, record_fields, text_digest
from rmem._models import EventKind
from rmem._session_core import HEAD_LEN, decode_message, encode_message
from rmem._settings import Settings

log = logging.getLogger("rmem.fallback")

State = Literal["connected", "degraded", "recovering"]
_STATE_EVENTS: dict[State, EventKind] = {
    "connected": "client.connected",
    "degraded": "client.degraded",
    "recovering": "client.recovering",
}
_READ_ONLY = frozenset({"session_read", "session_sync", "memory_count"})
_WRITE_COMMANDS = frozenset({b"ZADD", b"ZREM", b"DEL", b"HSET", b"HDEL", b"UNLINK"})
_REPLAY_CHUNK = 200  # outbox entries per round trip while replaying
# The scripts that take the session scripts' common arguments (lua/_session.lua), whose fifth
# is the stamp bound: a replayed call sends it with an 'r' before it.
_SESSION_SCRIPTS = frozenset(
    {"session_append", "session_clear", "session_delete", "session_expire", "session_pop"}
)
# Where the memory scripts take their stamp bound (lua/memory_*.lua, the sync channel first).
_MEMORY_BOUND = {"memory_put": 3, "memory_delete": 2, "memory_update": 5}
_PROBE_MAX_WAIT = 1.0  # longest pause between two probes of an unreachable Redis


@dataclass(frozen=True, slots=True)
class Entry:
    """One queued write: a script (by name) or a plain command, with its keys and arguments."""

    seq: int
    script: str  # '' for a plain command (its words are all in args)
    keys: tuple[str, ...]
    args: tuple[Arg, ...]

    def pack(self) -> bytes:
        data: bytes = msgpack.packb(
            [self.script, list(self.keys), list(self.args)], use_bin_type=True
        )
        return data

    @classmethod
    def unpack(cls, seq: int, data: bytes) -> Entry:
        script, keys, args = msgpack.unpackb(data, raw=False, strict_map_key=False)
        return cls(seq, script, tuple(keys), tuple(args))

    def command(self) -> tuple[Arg, ...]:
        return commands_of([_as_step(self)])[0]


@dataclass(slots=True)
class Figures:
    """Counters behind ``Client.health()``."""

    replayed: int = 0  # outbox entries written to Redis by recoveries
    rejected: int = 0  # entries Redis refused on replay (logged; e.g. a stamp it no longer takes)
    reseeded: int = 0  # commands and scripts sent to write back what an emptied Redis lost
    outages: int = 0
    degraded_total: float = 0.0  # seconds spent degraded or recovering, past outages
    last_recovery: float | None = None  # seconds the last recovery took, probe to connected


class Fallback:
    """The state machine, outbox and recovery thread of one client (thread-safe)."""

    def __init__(
        self,
        settings: Settings,
        store: LocalStore,
        replicas: Any,  # the client's SyncEngine, or None
    ) -> None:
        self.settings = settings
        self.store = store
        self.replicas = replicas
        self.state: State = "connected"
        self.last_error: str | None = None
        self.figures = Figures()
        self.mark: str | None = None  # the marker token seen in Redis; None: not checked yet
        self.mark_token = secrets.token_hex(8)
        self._since: float | None = None  # monotonic time the current outage began
        self._outbox: deque[Entry] = deque()
        self._seq = 0
        self._seeded: set[tuple[str, str | None]] = set()
        self._touching: set[str] = set()  # sessions with a touch in the outbox
        self._held_sessions: dict[tuple[str, str], Any] = {}
        self._held_records: dict[str, list[MemoryRecord]] = {}
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self._journal: Any = None
        if settings.journal_path:
            from rmem._journal import Journal

            self._journal = Journal(Path(settings.journal_path))
            pending = [Entry.unpack(seq, data) for seq, data in self._journal.pending()]
            if pending:
                # Writes acknowledged by a process that stopped while degraded: serve them
                # locally at once, and replay them as soon as Redis answers.
                self._outbox.extend(pending)
                self._seq = pending[-1].seq
                with store.lock:
                    store.pipeline([_as_step(e) for e in pending])
                self.state = "recovering"
                self._since = time.monotonic()
                self.last_error = f"{len(pending)} writes recovered from {settings.journal_path}"
                self._start()

    # ------------------------------------------------------------------ state

    @property
    def active(self) -> bool:
        """True while calls are served by the local store (degraded or recovering)."""
        return self.state != "connected"

    @property
    def pending(self) -> int:
        """Writes waiting in the outbox."""
        return len(self._outbox)

    def degraded_for(self) -> float:
        """Seconds spent away from Redis: past outages plus the current one."""
        since = self._since
        current = 0.0 if since is None else time.monotonic() - since
        return self.figures.degraded_total + current

    def degrade(self, error: BaseException | str) -> None:
        """Record that Redis is unreachable; start serving locally and probing for Redis."""
        with self.store.lock:
            self.last_error = str(error)
            if self.state != "connected":
                return
            self._since = time.monotonic()
            self.figures.outages += 1
            self._snapshot()
            self._set_state("degraded")
            self._start()
        log.warning("rmem: Redis unreachable (%s); serving from the local store", error)

    def check_remote(self, remote: Any) -> None:
        """Go degraded (and so recover) when Redis lost the marker this client saw.

        The sync thread calls this on every reconnect: a Redis restarted empty between two
        calls is otherwise never noticed, since the connection pool reconnects quietly.
        """
        if self.mark is not None and self.state == "connected":
            self.check_found(remote.get(SERVER_MARK))

    def check_found(self, found: Any) -> bool:
        """Go degraded (and so recover) when ``found``, the marker key's value just read from
        Redis, is not the token this client saw. Returns True when it went degraded.
        """
        if self.mark is None or self.state != "connected":
            return False
        if found is not None and _text(found) == self.mark:
            return False
        # Gone, or replaced by a client that recovered first: either way Redis lost data.
        self.degrade("Redis came back without its data (the marker key changed)")
        return True

    def _set_state(self, state: State) -> None:
        # Lock held.
        self.state = state
        if self.replicas is not None:
            self.replicas.emit_all(_STATE_EVENTS[state], self.settings.namespace)

    # ------------------------------------------------------------------ local calls

    def pipeline(self, steps: Sequence[Step], namespace: str | None) -> list[Any] | None:
        """Run steps on the local store, seeding it first; queue the writes among them.

        Returns None when the client is connected again by the time the lock is taken: the
        caller then sends the steps to Redis (an entry queued now would never be replayed).
        """
        with self.store.lock:
            if not self.active:
                return None
            self._seed(steps)
            replies = self.store.pipeline(steps, namespace=namespace)
            self._queue(steps, replies)
            return replies

    def batch(self, commands: Sequence[Sequence[Arg]], namespace: str | None) -> list[Any] | None:
        """Run plain commands on the local store (parsed replies), queueing the writes.

        Returns None when the client is connected again (as :meth:`pipeline`).
        """
        with self.store.lock:
            if not self.active:
                return None
            self._seed(commands)
            replies = self.store.batch(commands, namespace=namespace)
            self._queue(commands, replies)
            return replies

    def _queue(self, steps: Sequence[Step], replies: Sequence[Any]) -> None:
        # Store lock held: the local write and its outbox entry are taken together, so the
        # outbox order is the order the local store applied them in.
        for step, reply in zip(steps, replies, strict=True):
            entry = self._entry(step, reply)
            if entry is None:
                continue
            if entry.script == "session_touch":
                # One queued touch per session is enough: replaying it restarts the TTL, and
                # an agent reading a session in a loop must not grow the outbox.
                if entry.keys[0] in self._touching:
                    continue
                self._touching.add(entry.keys[0])
            if self._journal is not None:
                entry = Entry(self._journal.append(entry.pack()), *_fields(entry))
            else:
                self._seq += 1
                entry = Entry(self._seq, *_fields(entry))
            self._outbox.append(entry)

    def _entry(self, step: Step, reply: Any) -> Entry | None:
        if isinstance(step, ScriptCall):
            name = step.script.name
            if name in _READ_ONLY:
                return None
            args = tuple(step.args)
            if name == "session_pop":
                if reply is None:
                    return None
                # Replayed as "remove this message": popping the newest again in Redis could
                # take another instance's message.
                message = decode_message(reply, step.keys[1])
                args = (*args[:5], message.id)
            return Entry(0, name, tuple(step.keys), args)
        words = tuple(step)
        head = words[0]
        word = head.encode() if isinstance(head, str) else head
        if not isinstance(word, bytes) or word.upper() not in _WRITE_COMMANDS:
            return None
        return Entry(0, "", (), words)

    # ------------------------------------------------------------------ seeding

    def _seed(self, steps: Sequence[Step]) -> None:
        # Store lock held. What this client last saw of a session or a namespace's records
        # goes into the local store the first time a degraded call touches it.
        if self.replicas is None:
            return
        for step in steps:
            keys = step.keys if isinstance(step, ScriptCall) else [_text(w) for w in step[1:2]]
            for key in keys:
                scope = parse_key_scope(key)
                if scope is None or scope in self._seeded:
                    continue
                self._seeded.add(scope)
                calls = self._seed_calls(*scope)
                if calls:
                    self.store.pipeline(calls)

    def _snapshot(self) -> None:
        # Store lock held. What the replicas hold as the outage begins: the seed of the local
        # store, and what is written back if Redis returns empty. Taken now because the sync
        # thread may reload the replicas from an emptied Redis before the recovery runs.
        if self.replicas is None:
            return
        self._held_sessions = {
            (r.namespace, r.session_id): r for r in self.replicas.sessions_held()
        }
        self._held_records = self.replicas.all_records_copy()

    def _seed_calls(self, namespace: str, session_id: str | None) -> list[Step]:
        if session_id is not None:
            replica = self._held_sessions.get((namespace, session_id))
            return [] if replica is None else local_session_seed(replica, self.settings)
        return record_seed(namespace, self._held_records.get(namespace, []), self.settings)

    # ------------------------------------------------------------------ recovery thread

    def _start(self) -> None:
        # Store lock held.
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="rmem-fallback", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the recovery thread (the outbox stays in the journal, if there is one)."""
        self._closed.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        if self._journal is not None:
            self._journal.close()

    def _run(self) -> None:
        retrying = tenacity.Retrying(
            wait=tenacity.wait_random_exponential(multiplier=0.02, max=_PROBE_MAX_WAIT),
            retry=tenacity.retry_if_exception_type((redis.RedisError, OSError, RmemError)),
            stop=lambda _: self._closed.is_set(),
            sleep=self._pause,
            reraise=True,
        )
        remote: redis.Redis | None = None
        try:
            for attempt in retrying:
                with attempt:
                    if remote is None:
                        remote = _connect(self.settings)
                    try:
                        self._recover(remote)
                    except (redis.RedisError, OSError) as exc:
                        with self.store.lock:
                            self.last_error = f"{type(exc).__name__}: {exc}"
                            if self.state == "recovering":
                                self._set_state("degraded")
                        raise
        except Exception as exc:  # closed while Redis was away, or a bug: never die silently
            if not self._closed.is_set():
                log.exception("rmem fallback recovery stopped: %s", exc)
        finally:
            if remote is not None:
                with contextlib.suppress(Exception):
                    remote.close()

    def _pause(self, seconds: float) -> None:
        self._closed.wait(seconds)  # close() ends the wait at once

    def _recover(self, remote: redis.Redis) -> None:
        start = time.monotonic()
        remote.ping()
        with self.store.lock:
            if self.state == "degraded":
                self._set_state("recovering")
        self._check_mark(remote)
        while not self._closed.is_set():
            with self.store.lock:
                batch = [self._outbox[i] for i in range(min(_REPLAY_CHUNK, len(self._outbox)))]
                if not batch:
                    self._finish(start)
                    return
            replies = _run_commands(remote, [e.command() for e in batch])
            for entry, reply in zip(batch, replies, strict=True):
                if isinstance(reply, ResponseError):
                    self.figures.rejected += 1
                    log.warning("rmem: Redis refused replayed write %s: %s", entry.script, reply)
            with self.store.lock:
                for entry in batch:
                    self._outbox.popleft()
                    if entry.script == "session_touch":
                        self._touching.discard(entry.keys[0])
                self.figures.replayed += len(batch)
                if self._journal is not None:
                    self._journal.ack(batch[-1].seq)

    def _finish(self, start: float) -> None:
        # Store lock held, outbox empty: no write can slip between this and the next call.
        self.store.flush()
        self._seeded.clear()
        if self._since is not None:
            self.figures.degraded_total += time.monotonic() - self._since
        self._since = None
        self.figures.last_recovery = time.monotonic() - start
        if self.replicas is not None:
            self.replicas.reload_all()
        self._set_state("connected")
        log.warning("rmem: Redis is back; %d writes replayed", self.figures.replayed)

    def _check_mark(self, remote: redis.Redis) -> None:
        found = remote.get(SERVER_MARK)
        seen = None if found is None else _text(found)
        if seen is not None and (self.mark is None or seen == self.mark):
            self.mark = seen
            return
        if self.mark is not None and self.replicas is not None:
            # The marker this client saw is gone: Redis lost its data. Write back what the
            # replicas hold, with the original stamps, before the outbox.
            calls: list[Step] = []
            for replica in self._held_sessions.values():
                calls += session_seed(replica, self.settings)
                calls.append(
                    (
                        "ZADD",
                        session_index(replica.namespace),
                        "NX",
                        replica.created,
                        replica.session_id,
                    )
                )
            for namespace, records in self._held_records.items():
                calls += record_seed(namespace, records, self.settings)
            for start in range(0, len(calls), _REPLAY_CHUNK):
                chunk = calls[start : start + _REPLAY_CHUNK]
                _run_commands(remote, commands_of(chunk))
            self.figures.reseeded += len(calls)
            log.warning("rmem: Redis came back empty; wrote back %d held items", len(calls))
        # A token no client saw before: the one this client left first may be the very marker
        # every other client holds, and each of them must find it changed.
        self.mark_token = secrets.token_hex(8)
        token = remote.set(SERVER_MARK, self.mark_token, nx=True, get=True)
        self.mark = self.mark_token if token is None else _text(token)


# ---------------------------------------------------------------------- seeds


def session_seed(replica: Any, settings: Settings) -> list[Step]:
    """One ``session_seed`` script that writes a replica's session back into Redis as it was:
    messages with their stamps and batch indexes, times, revision and TTL. It adds to what
    Redis holds by then, so a write-back that races an append re-creating the session counts
    every message once."""
    if not replica.exists or not replica.messages:
        return []
    newest = bytes(replica.prefixes[-1][:36]).decode()
    args: list[Arg] = [sync_channel(replica.namespace), replica.session_id]
    args += [settings.change_log_maxlen, newest, settings.max_stamp_ahead_ms]
    args += [replica.created, replica.updated or replica.created, max(replica.rev, 0)]
    args += [replica.ttl_ms, int(replica.sliding), _remaining_ms(replica)]
    for message_id, member in _members(replica, settings):
        args += [message_id, member]
    keys = session_keys(replica.namespace, replica.session_id)
    return [ScriptCall(_lua.SESSION_SEED, keys, args)]


def local_session_seed(replica: Any, settings: Settings) -> list[Step]:
    """Plain commands that write a replica's session into the local store, where nothing of
    it is yet (a scope is seeded once, before its first local call). What ``session_seed``
    writes, without its merge: in the local store's embedded Lua, the script takes 2-5 times
    as long, and the first degraded call of a long session waits for it."""
    if not replica.exists or not replica.messages:
        return []
    keys = session_keys(replica.namespace, replica.session_id)
    remaining = _remaining_ms(replica)
    meta: list[Arg] = ["HSET", keys.meta, "v", 2, "created", replica.created]
    meta += ["updated", replica.updated or replica.created, "rev", max(replica.rev, 0)]
    meta += ["ttl", replica.ttl_ms, "sliding", int(replica.sliding)]
    members: list[Arg] = ["ZADD", keys.msgs]
    size = 0
    for message_id, member in _members(replica, settings):
        size += len(member) - HEAD_LEN - len(message_id) - 1
        members += [0, member]
        meta += ["#" + message_id, member[:36].decode()]
    now_ms = int(time.time() * 1000)
    meta += ["count", len(replica.messages), "bytes", size]
    meta += ["anchor", now_ms + remaining - replica.ttl_ms if replica.ttl_ms else now_ms]
    calls: list[Step] = [meta, members]
    if replica.ttl_ms > 0:
        calls += [("PEXPIRE", keys.meta, remaining), ("PEXPIRE", keys.msgs, remaining)]
    return calls


def _remaining_ms(replica: Any) -> int:
    if replica.deadline is None:
        return int(replica.ttl_ms)
    return max(1, int((replica.deadline - time.monotonic()) * 1000))


def _members(replica: Any, settings: Settings) -> list[tuple[str, bytes]]:
    """(message id, stored member) of each message a replica holds, as an append stored it."""
    found = []
    for prefix, message in zip(replica.prefixes, replica.messages, strict=True):
        payload = encode_message(message, settings.max_message_bytes, settings.compress_threshold)
        found.append((bytes(prefix[HEAD_LEN:]).decode(), bytes(prefix) + b"\0" + payload))
    return found


def record_seed(namespace: str, records: Sequence[MemoryRecord], settings: Settings) -> list[Step]:
    """One ``memory_put`` that writes ``records`` back with their original stamps and times.

    ``memory_put`` writes ``created`` and ``updated`` first and the record's own fields after
    them, and HSET keeps the last value of a field given twice: the two pairs appended here
    put back the times the record had, where a put would give it the server's now. The call
    is marked as replayed: a record some client wrote since wins over the held one.
    """
    if not records:
        return []
    keys = [*memory_keys(namespace), *(memory_key(namespace, r.id) for r in records)]
    args: list[Arg] = [sync_channel(namespace), 0]
    args += [settings.change_log_maxlen, settings.max_stamp_ahead_ms]
    now = time.time()
    for r in records:
        vector = None if r.vector is None else check_vector(r.vector, len(r.vector), namespace)
        fields = record_fields(
            r.text, r.tags, r.metadata, vector, namespace, settings.memory_fields
        )
        fields += ["created", str(round(r.created_at * 1000))]
        fields += ["updated", str(round(r.updated_at * 1000))]
        ttl_ms = 0 if r.expires_at is None else max(1, int((r.expires_at - now) * 1000))
        args += [r.id, r.stamp, text_digest(r.text), ttl_ms, len(fields) // 2, *fields]
    return [ScriptCall(_lua.MEMORY_PUT, keys, replayed_args("memory_put", args))]


# ---------------------------------------------------------------------- helpers


def _fields(entry: Entry) -> tuple[str, tuple[str, ...], tuple[Arg, ...]]:
    return entry.script, entry.keys, entry.args


def _as_step(entry: Entry) -> Step:
    """The call that replays ``entry`` (into Redis, or into a fresh local store)."""
    if not entry.script:
        return entry.args
    return ScriptCall(
        _lua.script(entry.script), entry.keys, replayed_args(entry.script, entry.args)
    )


def replayed_args(script: str, args: Sequence[Arg]) -> tuple[Arg, ...]:
    """``args`` of a session or memory script call marked as replayed: the call was made
    while Redis was unreachable, so its stamp, not the order Redis runs it in, places it (last
    writer wins against what others wrote meanwhile; see ``lua/_stamp.lua``). Other calls,
    and calls marked already (a journal written by an earlier process), are returned as given.
    """
    marked = list(args)
    if script in _SESSION_SCRIPTS:
        _mark(marked, 4)
    elif script in _MEMORY_BOUND:
        _mark(marked, _MEMORY_BOUND[script])
    elif script == "agentsession_replace":  # (n, session_clear's n args, session_append's)
        n = int(marked[0])
        _mark(marked, 1 + 4)
        _mark(marked, 1 + n + 4)
    return tuple(marked)


def _mark(args: list[Arg], index: int) -> None:
    bound = _text(args[index])
    if not bound.startswith("r"):
        args[index] = "r" + bound


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _connect(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(
        settings.url,
        socket_timeout=settings.socket_timeout,
        socket_connect_timeout=settings.connect_timeout,
        retry=Retry(NoBackoff(), 0),
    )


def _run_commands(remote: redis.Redis, commands: Sequence[Sequence[Arg]]) -> list[Any]:
    """Run commands in one pipeline; scripts Redis does not know yet are loaded and resent.

    Every command here is idempotent (a stamped script or a replay), so resending is safe.
    """
    for attempt in (1, 2):
        pipe = remote.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)  # type: ignore[no-untyped-call]
        replies = pipe.execute(raise_on_error=False)
        if attempt == 1 and any(isinstance(r, NoScriptError) for r in replies):
            for command in commands:
                if command[0] == "EVALSHA":
                    for s in _lua.all_scripts():
                        if s.sha == command[1]:
                            remote.script_load(s.source)
            continue
        for reply in replies:
            if isinstance(reply, (redis.ConnectionError, redis.TimeoutError)):
                raise reply
        return list(replies)
    raise AssertionError("unreachable")  # pragma: no cover
