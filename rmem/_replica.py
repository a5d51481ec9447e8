"""Local replicas: the sessions and memory records a client reads, kept in process.

One :class:`SyncEngine` per client (namespace views share it) runs a daemon thread that

- holds a pub/sub connection subscribed to the sync channel of each namespace in use
  (``rmem:{ns}:sync``, where every write script publishes a hint) and to the server's
  ``expired`` key events;
- applies hints: a session change above the replica's revision, or a memory change after the
  replica's change-log position, makes the thread catch the replica up from the change log
  (``session_sync`` / ``XRANGE``); a log trimmed past the replica makes it reload;
- on a lost or silent connection (heartbeat pings) marks every replica stale, so reads go to
  Redis, then reconnects with backoff, resubscribes, and catches every replica up;
- sends the TTL touches owed by sliding sessions that were read locally, at most every
  ``min(1 s, ttl / 10)`` per session;
- delivers :class:`~rmem.Event` objects to subscribers;
- passes the item hints of the LangGraph store (``lua/lgstore_put.lua``) to the item caches
  that watch the namespace (:meth:`SyncEngine.watch_items`), and tells them to drop
  everything whenever a hint may have been missed.

A replica serves a read only while it is *fresh*: the thread is subscribed, the replica was
caught up after the subscription was confirmed, and no hint for it is waiting. Pub/sub is a
hint, the change log is the truth. A client's own write is applied to its replica when the
replica held the revision just before it, otherwise the replica goes stale until caught up;
either way a process never reads older data than its own last write.

Reads take a lock and touch only memory: no I/O, so the async client can call them from its
event loop.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import dataclasses
import logging
import os
import queue
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from rmem import _lua
from rmem._codec import pack, unpack
from rmem._errors import CorruptDataError, RmemError
from rmem._hlc import STAMP_RE
from rmem._keys import (
    expired_channel,
    memory_key,
    memory_keys,
    parse_memory_key,
    parse_session_key,
    parse_sync_channel,
    session_keys,
    sync_channel,
)
from rmem._memory_core import MemoryRecord, decode_record
from rmem._models import Event, EventKind, Message, SessionInfo
from rmem._session_core import decode_members, member_prefix
from rmem._settings import Settings
from rmem._subscription import Subscription, open_subscription

log = logging.getLogger("rmem.sync")

_POLL = 0.02  # seconds the thread waits for a hint before looking at its other work
_DELTA_LIMIT = 1000  # changes a catch-up reads before reloading the session instead
_TTL_MARGIN = 0.05  # seconds before a mirrored expiry at which a replica stops serving
_MAX_BACKOFF = 2.0
# What decoding damaged data raises: one session or record that does not decode is left out
# of the replicas, and the thread syncs the others on.
_DAMAGE = (CorruptDataError, ValueError, TypeError, LookupError)
_SESSION_KINDS: dict[str, EventKind] = {
    "a": "session.append",
    "r": "session.pop",
    "c": "session.clear",
    "p": "session.policy",
    "d": "session.delete",
}
_MEMORY_KINDS: dict[str, EventKind] = {
    "put": "memory.put",
    "del": "memory.delete",
    "exp": "memory.expire",
}
# An item hint of the LangGraph store: ``lg`` then, per changed item, ``\n<byte length>\n<path>/
# <key>`` (lua/lgstore_put.lua). Its kind is neither a session's nor a memory's.
_ITEM_HINT = b"lg"


@dataclass(slots=True)
class SessionReplica:
    """One session as this process last saw it (guarded by the engine's lock)."""

    namespace: str
    session_id: str
    prefixes: list[bytes] = field(default_factory=list)  # <stamp><id>, sorted
    messages: list[Message] = field(default_factory=list)  # same order as prefixes
    exists: bool = False
    count: int = 0
    size: int = 0
    created: int = 0
    updated: int = 0
    ttl_ms: int = 0
    sliding: bool = False
    rev: int = -1
    change_id: str = ""
    deadline: float | None = None  # monotonic time the session expires in Redis, None = never
    epoch: int = -1  # the subscription this replica was caught up under
    dirty: bool = True  # a change is known that the replica does not hold yet
    touch_due: bool = False
    last_touch: float = 0.0
    gen: int = 0  # bumped by each write of this client: a catch-up begun before it is void
    retry_at: float = 0.0  # a replica that failed to decode waits until then to try again

    def add(self, prefix: bytes, message: Message) -> None:
        at = bisect.bisect_left(self.prefixes, prefix)
        if at < len(self.prefixes) and self.prefixes[at] == prefix:
            return  # already held (a catch-up replaying a change this replica applied)
        self.prefixes.insert(at, prefix)
        self.messages.insert(at, message)

    def remove(self, prefix: bytes) -> None:
        at = bisect.bisect_left(self.prefixes, prefix)
        if at < len(self.prefixes) and self.prefixes[at] == prefix:
            del self.prefixes[at]
            del self.messages[at]

    def clear(self) -> None:
        self.prefixes.clear()
        self.messages.clear()

    def drop_through(self, stamp: bytes | None) -> None:
        # A clear or delete removes the messages stamped up to its own stamp; later ones stay.
        if stamp is None:
            self.clear()
            return
        at = bisect.bisect_left(self.prefixes, stamp + b"\xff")
        del self.prefixes[:at]
        del self.messages[:at]


@dataclass(slots=True)
class RecordReplica:
    """The memory records of one namespace this process has read (guarded by the lock)."""

    records: dict[str, MemoryRecord | None] = field(default_factory=dict)  # None = absent
    wanted: set[str] = field(default_factory=set)  # ids to load
    log_id: str | None = None  # newest change applied; None = not started
    epoch: int = -1
    dirty: bool = True
    gen: int = 0  # bumped by each write of this client: a catch-up begun before it is void
    retry_at: float = 0.0  # a namespace whose change log Redis refused waits until then


class ItemWatcher(Protocol):
    """What watches the item hints of a namespace (the LangGraph store's item cache)."""

    def drop(self, refs: Sequence[str] | None) -> None:
        """Forget the items ``refs`` (``<path>/<key>``), or every item when None.

        Called on the sync thread, or on the thread of a write of this client; must not block.
        """


class Listener:
    """A subscriber: a callback and the namespace whose events it receives."""

    __slots__ = ("callback", "namespace")

    def __init__(self, namespace: str, callback: Callable[[Event], None]) -> None:
        self.namespace = namespace
        self.callback = callback


class SyncEngine:
    """Keeps local replicas current; see the module docstring. Thread-safe."""

    def __init__(self, settings: Settings, store: Any = None, node: str | None = None) -> None:
        self._settings = settings
        self._store = store  # the LocalStore of a memory:// client: sync against it
        # The node id of the client's clock: its stamps end with it. A session hint of this
        # client's own write is not caught up from Redis: the writer applies its reply to the
        # replica (applied_append), or marks the replica stale when it cannot.
        self._node = node
        # Called with the thread's connection each time it (re)connects, before any replica is
        # caught up: the fallback checks there whether Redis came back without its data.
        self.on_connect: Callable[[Any], None] | None = None
        self._max_sessions = settings.sync_max_sessions
        self._expired = expired_channel(_db(settings.url))
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.RLock()
        self._sessions: OrderedDict[tuple[str, str], SessionReplica] = OrderedDict()
        # The sessions whose replicas may need a catch-up, and those that may owe a TTL
        # touch: the thread looks at these alone, not at every replica, on each wake-up.
        self._pending: set[tuple[str, str]] = set()
        self._touches: set[tuple[str, str]] = set()
        self._records: dict[str, RecordReplica] = {}
        # What a replica held when this client's append re-created its session before it
        # was due to expire: kept until the marker check tells whether Redis lost its data.
        self._orphans: dict[tuple[str, str], SessionReplica] = {}
        self._namespaces: set[str] = set()
        self._subscribed: set[str] = set()
        self._listeners: list[Listener] = []
        # Held weakly: a store dropped by its user stops being told of hints.
        self._item_watchers: dict[str, weakref.WeakSet[ItemWatcher]] = {}
        self._epoch = 0
        self._connected = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._redis: redis.Redis | None = None
        self._warned: set[str] = set()  # damaged sessions and records already logged
        self.last_error: str | None = None

    # ------------------------------------------------------------------ lifecycle

    def _start(self) -> None:
        # Called with the lock held. A forked child inherits no thread: start afresh.
        if self._pid != os.getpid():
            self._reset()
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._run, name="rmem-sync", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the thread and drop every replica."""
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        with self._lock:
            self._sessions.clear()
            self._records.clear()
            self._listeners.clear()

    @property
    def connected(self) -> bool:
        """True while the pub/sub connection is up and subscribed."""
        return self._connected

    def _want(self, namespace: str) -> None:
        # Lock held.
        self._namespaces.add(namespace)
        self._start()

    # ------------------------------------------------------------------ session reads

    def _fresh(self, replica: SessionReplica, now: float) -> bool:
        return (
            self._connected
            and replica.epoch == self._epoch
            and not replica.dirty
            and replica.namespace in self._subscribed
            and (replica.deadline is None or now < replica.deadline - _TTL_MARGIN)
        )

    def session(self, namespace: str, session_id: str) -> SessionReplica | None:
        """Return the fresh replica of a session, or None (then open it for next time).

        The caller reads it while holding :attr:`lock`; a sliding session read this way owes
        Redis a TTL touch, which the thread sends.
        """
        key = (namespace, session_id)
        replica = self._sessions.get(key)
        if replica is None:
            self._open_session(key)
            return None
        self._sessions.move_to_end(key)
        if not self._fresh(replica, time.monotonic()):
            return None
        if replica.sliding and replica.ttl_ms > 0:
            replica.touch_due = True
            self._touches.add(key)
        return replica

    @property
    def lock(self) -> threading.RLock:
        """The lock that guards every replica."""
        return self._lock

    def _stale(self, replica: SessionReplica) -> None:
        # Lock held. The replica stops serving until the thread has caught it up.
        replica.dirty = True
        self._pending.add(replica_key(replica))

    def _open_session(self, key: tuple[str, str]) -> None:
        self._sessions[key] = SessionReplica(*key)
        self._pending.add(key)
        while len(self._sessions) > self._max_sessions:
            self._sessions.popitem(last=False)
        self._want(key[0])

    def applied_append(
        self,
        namespace: str,
        session_id: str,
        reply: Sequence[Any],
        decode: Callable[[], Sequence[Message]],
        prefixes: Sequence[bytes],
        policy: tuple[int, int, int],
    ) -> bool:
        """Apply this client's own append to its replica (or mark the replica stale).

        ``decode`` returns the appended messages as the replica keeps them; it is called only
        when the replica takes them.

        Returns True when the append re-created a session the replica held, live as far as
        this client knew: another instance deleted it, or Redis lost its data. The caller
        then checks the marker (:meth:`Fallback.check_found`); what the replica held stays
        in the fallback's snapshot until :meth:`forget_orphan` says it is not needed.
        """
        key = (namespace, session_id)
        with self._lock:
            replica = self._sessions.get(key)
            if replica is None:
                return False
            created, created_ms, count, size, rev, added, change, now_ms, left = reply[:9]
            rev, added = int(rev), int(added)
            replica.gen += 1
            orphaned = False
            if int(created):
                # The session did not exist before this append (never, expired or deleted):
                # it now holds these messages alone, whatever the replica held before.
                if replica.exists and replica.messages and not _expired(replica):
                    self._orphans[key] = _copy(replica)
                    orphaned = True
                replica.clear()
                replica.exists, replica.rev = False, rev - 1
            if not (replica.exists or int(created)) or replica.rev != rev - 1:
                if rev > replica.rev:
                    self._stale(replica)
                return orphaned
            if added != len(prefixes):
                self._stale(replica)
                return orphaned
            for prefix, message in zip(prefixes, decode(), strict=True):
                replica.add(prefix, message)
            replica.rev, replica.change_id = rev, _text(change)
            replica.count, replica.size, replica.updated = int(count), int(size), int(now_ms)
            if int(created):
                replica.exists, replica.created = True, int(created_ms)
                replica.ttl_ms, replica.sliding = policy[1], bool(policy[2])
            elif policy[0]:
                self._stale(replica)  # the policy may or may not have won: ask Redis
            if replica.sliding and replica.ttl_ms > 0 and int(left) >= 0:
                # When the keys expire: ttl from now, or a little sooner when the append left
                # a TTL restarted moments before as it was (decision 30).
                replica.deadline = time.monotonic() + int(left) / 1000
            if len(replica.messages) != replica.count:
                self._stale(replica)
            return orphaned

    def forget_orphan(self, namespace: str, session_id: str) -> None:
        """Drop what :meth:`applied_append` kept of a session: Redis did not lose it."""
        with self._lock:
            self._orphans.pop((namespace, session_id), None)

    def changed_session(self, namespace: str, session_id: str) -> None:
        """Mark a session's replica stale after this client changed it (pop, clear, ...)."""
        with self._lock:
            replica = self._sessions.get((namespace, session_id))
            if replica is not None:
                self._stale(replica)
                replica.gen += 1

    # ------------------------------------------------------------------ fallback

    def session_copy(self, namespace: str, session_id: str) -> SessionReplica | None:
        """A copy of what this client last saw of a session (fresh or not), or None."""
        with self._lock:
            replica = self._sessions.get((namespace, session_id))
            if replica is None or replica.rev < 0:
                return None
            return _copy(replica)

    def sessions_held(self) -> list[SessionReplica]:
        """Copies of every session replica that holds a live session, for the fallback.

        A session an append re-created while its replica still held it (see
        :meth:`applied_append`) comes back whole: the history held before, then what was
        appended since. The kept histories are handed over once.
        """
        with self._lock:
            held = {
                key: _copy(r)
                for key, r in self._sessions.items()
                if r.exists and r.rev >= 0 and not _expired(r)
            }
            for key, orphan in self._orphans.items():
                held[key] = _rejoined(orphan, held.get(key))
            self._orphans.clear()
            return list(held.values())

    def records_copy(self, namespace: str) -> list[MemoryRecord]:
        """The live records this client last saw in ``namespace``."""
        with self._lock:
            replica = self._records.get(namespace)
            found = [] if replica is None else list(replica.records.values())
        now = time.time()
        return [r for r in found if r is not None and not (r.expires_at and r.expires_at <= now)]

    def all_records_copy(self) -> dict[str, list[MemoryRecord]]:
        """:meth:`records_copy` of every namespace this client read records of."""
        with self._lock:
            namespaces = list(self._records)
        return {ns: self.records_copy(ns) for ns in namespaces}

    def reload_all(self) -> None:
        """Forget every replica's position: each reloads from Redis before serving again.

        Called when the client is back on Redis after an outage: what the replicas took in
        meanwhile came from the local store, whose change-log positions mean nothing to Redis.
        """
        with self._lock:
            for replica in self._sessions.values():
                replica.rev, replica.change_id, replica.epoch = -1, "", -1
                replica.exists = False
                replica.clear()
                replica.gen += 1
                self._stale(replica)
            for records in self._records.values():
                records.wanted |= {rid for rid in records.records}
                records.records.clear()
                records.log_id, records.epoch, records.dirty = None, -1, True
                records.gen += 1
        self._items_lost()

    def emit_all(self, kind: EventKind, namespace: str) -> None:
        """Deliver an event about this client itself to every subscriber, on this thread."""
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener.callback(Event(kind=kind, namespace=listener.namespace))
            except Exception:  # a subscriber's bug must not stop the caller
                log.exception("rmem event callback %r failed", listener.callback)

    # ------------------------------------------------------------------ memory reads

    def record(self, namespace: str, record_id: str) -> tuple[bool, MemoryRecord | None]:
        """Return ``(True, record or None)`` when the replica knows ``record_id`` and is fresh.

        Otherwise returns ``(False, None)`` and asks the thread to load the record.
        """
        with self._lock:
            replica = self._records.get(namespace)
            if replica is None:
                replica = self._records[namespace] = RecordReplica()
                self._want(namespace)
            if (
                self._connected
                and replica.epoch == self._epoch
                and not replica.dirty
                and namespace in self._subscribed
                and record_id in replica.records
            ):
                found = replica.records[record_id]
                if found is not None and found.expires_at and found.expires_at <= time.time():
                    return True, None
                return True, found
            if record_id not in replica.records:
                replica.wanted.add(record_id)
            return False, None

    def changed_records(
        self, namespace: str, ids: Sequence[str], written: Sequence[MemoryRecord] = ()
    ) -> None:
        """Note records this client just wrote: ``ids`` all it wrote, ``written`` those of
        them known to be stored as given (not deduplicated, not beaten by a newer write).

        Each is loaded again by the thread. Meanwhile a record of ``written`` is held as this
        client wrote it; the others are forgotten (a read goes to Redis). The replica so holds
        what this client wrote as well as what it read, from the moment the write returns:
        what the fallback writes back if Redis comes back empty (rmem._fallback).
        """
        with self._lock:
            replica = self._records.get(namespace)
            if replica is None:
                replica = self._records[namespace] = RecordReplica()
                self._want(namespace)
            replica.gen += 1
            for rid in ids:
                replica.records.pop(rid, None)
                replica.wanted.add(rid)
            for record in written:
                # As Redis gives it back (tuples in metadata read back as lists), and a copy:
                # the caller's record shares its dicts and lists.
                stored = unpack(pack(record.metadata)) if record.metadata else {}
                replica.records[record.id] = record.model_copy(
                    update={"metadata": stored}, deep=True
                )

    # ------------------------------------------------------------------ store item hints

    def watch_items(self, namespace: str, watcher: ItemWatcher) -> int | None:
        """Return the epoch under which ``watcher`` may trust a read of ``namespace``, or None.

        The first call registers ``watcher`` (held weakly) and returns None: from then on it
        is told, on the sync thread, of every item hint of ``namespace`` (``drop(refs)``), and
        of every moment one may have been missed (``drop(None)``: a lost connection, a new
        subscription, a recovery from the fallback). Later calls return the current epoch
        while the thread is connected and the namespace's channel is subscribed and confirmed,
        as a session replica is fresh only then: a read sent after this returned misses no
        hint of a later change, unless the epoch has changed by the time it is used.
        """
        watchers = self._item_watchers.get(namespace)
        with self._lock:
            if self._pid != os.getpid() or watchers is None or watcher not in watchers:
                self._want(namespace)  # a forked child starts afresh here, watchers and all
                self._item_watchers.setdefault(namespace, weakref.WeakSet()).add(watcher)
                return None
            if self._connected and namespace in self._subscribed:
                return self._epoch
            return None

    def items_changed(self, namespace: str, refs: Sequence[str] | None) -> None:
        """Tell every watcher of ``namespace`` that items changed (this client's own write).

        Every store on this client sees its own writes at once; other clients see them when
        the write's hint arrives.
        """
        with self._lock:
            watchers = list(self._item_watchers.get(namespace, ()))
        for watcher in watchers:
            watcher.drop(refs)

    def _items_lost(self) -> None:
        # Hints may have been missed: every watcher forgets everything.
        with self._lock:
            watchers = [w for found in self._item_watchers.values() for w in found]
        for watcher in watchers:
            watcher.drop(None)

    # ------------------------------------------------------------------ events

    def listen(self, namespace: str, callback: Callable[[Event], None]) -> Listener:
        """Deliver the events of ``namespace`` to ``callback`` (on the sync thread)."""
        listener = Listener(namespace, callback)
        with self._lock:
            self._listeners.append(listener)
            self._want(namespace)
        return listener

    def unlisten(self, listener: Listener) -> None:
        """Stop delivering events to ``listener``."""
        with self._lock, contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def wait_connected(self, namespace: str, timeout: float) -> bool:
        """Block until the thread is subscribed to ``namespace``; False on timeout."""
        with self._lock:
            self._want(namespace)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._connected and namespace in self._subscribed:
                return True
            time.sleep(0.005)
        return False

    def _emit(self, event: Event) -> None:
        with self._lock:
            listeners = [x for x in self._listeners if x.namespace == event.namespace]
        for listener in listeners:
            try:
                listener.callback(event)
            except Exception:  # a subscriber's bug must not stop sync
                log.exception("rmem event callback %r failed", listener.callback)

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        backoff = 0.05
        while not self._closed:
            subscription = None
            try:
                if self._redis is None:
                    self._redis = _connect(self._settings, self._store)
                subscription = open_subscription(self._redis, fake=self._store is not None)
                self._serve(subscription)
                backoff = 0.05
            except (redis.RedisError, OSError, RmemError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.info("rmem sync connection lost (%s); replicas read through", exc)
            except Exception as exc:  # keep syncing whatever happens; never die silently
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("rmem sync thread error")
            finally:
                with self._lock:
                    self._connected = False
                    self._subscribed = set()
                self._items_lost()
                if subscription is not None:
                    with contextlib.suppress(Exception):
                        subscription.close()
            if not self._closed:
                time.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
        if self._redis is not None:
            with contextlib.suppress(Exception):
                self._redis.close()

    def _serve(self, subscription: Subscription) -> None:
        redis_client = self._redis
        assert redis_client is not None
        expired = self._expired
        if self.on_connect is not None:
            self.on_connect(redis_client)
        subscription.subscribe(expired)
        self._confirm(subscription, {expired})
        with self._lock:
            self._epoch += 1
            self._subscribed = set()
            self._pending.update(self._sessions)  # each catches up under the new subscription
        self._items_lost()
        heartbeat = self._settings.sync_heartbeat
        timeout = self._settings.socket_timeout
        window = self._settings.sync_own_hint_pause
        last_ping = last_pong = time.monotonic()
        while not self._closed:
            with self._lock:
                missing = self._namespaces - self._subscribed
            if missing:
                channels = {sync_channel(ns) for ns in missing}
                subscription.subscribe(*channels)
                if self._confirm(subscription, channels):
                    last_pong = time.monotonic()
                with self._lock:
                    self._subscribed |= missing
                    self._connected = True
            elif not self._connected:
                with self._lock:
                    self._connected = True
            self._catch_up(redis_client)
            own = others = 0
            for kind, channel, data in subscription.read(_POLL):
                if kind == "message":
                    if self._on_message(redis_client, channel, data):
                        own += 1
                    else:
                        others += 1
                elif kind == "pong":
                    last_pong = time.monotonic()
            now = time.monotonic()
            if now - last_ping >= heartbeat:
                if last_pong < last_ping and now - last_ping > timeout:
                    raise redis.ConnectionError("the pub/sub connection stopped answering")
                subscription.ping()
                last_ping = now
            self._send_touches(redis_client, now)
            if own and not others and window:
                # Only this client's own hints, which need no work: a writing thread's next
                # hints are read together after a pause, not each on a wake-up of its own
                # that holds the GIL as the writer's reply comes in (decision 37).
                time.sleep(window)

    def _confirm(self, subscription: Subscription, channels: set[str]) -> bool:
        # Hints are only trusted once the server confirmed the subscription: a replica caught
        # up after that point misses no later change. Returns whether a heartbeat's pong
        # came meanwhile (dropped, it would look like a dead connection).
        waiting, ponged = set(channels), False
        deadline = time.monotonic() + self._settings.socket_timeout
        while waiting:
            if time.monotonic() > deadline:
                raise redis.TimeoutError(f"no confirmation of SUBSCRIBE {sorted(waiting)}")
            for kind, channel, data in subscription.read(_POLL):
                if kind == "subscribe":
                    waiting.discard(_text(channel))
                elif kind == "message":
                    self._on_message(self._redis, channel, data)
                elif kind == "pong":
                    ponged = True
        return ponged

    def _on_message(self, redis_client: Any, raw_channel: Any, data: Any) -> bool:
        """Act on a pushed message; True when it was this client's own session hint."""
        channel = _text(raw_channel)
        if isinstance(data, str):
            data = data.encode()
        namespace = parse_sync_channel(channel)
        if namespace is not None and data[: len(_ITEM_HINT) + 1] == _ITEM_HINT + b"\n":
            refs = _parse_item_hint(data)
            if refs is None:
                # Not rmem's, yet shaped like an item hint: forget every item, to be safe.
                self._foreign(channel)
            self.items_changed(namespace, refs)
            return False
        # A foreign message need not be UTF-8.
        data = data.decode(errors="replace")
        if namespace is not None:
            hint = _parse_hint(data)
            if hint is None:
                # Published by something else: not a change rmem made, so nothing to sync.
                self._foreign(channel)
                return False
            kind, stamp, rev, change, item = hint
            if kind in _SESSION_KINDS:
                own = stamp[-16:] == self._node
                if not own:
                    self._on_session_hint(redis_client, namespace, item, rev)
                if self._listeners:  # an event is only built for someone to receive it
                    self._emit(
                        Event(
                            kind=_SESSION_KINDS[kind],
                            namespace=namespace,
                            session_id=item,
                            stamp=stamp,
                            origin=stamp[-16:],
                            change_id=change,
                        )
                    )
                return own
            if kind in _MEMORY_KINDS:
                self._on_memory_hint(redis_client, namespace, change)
                if self._listeners:
                    self._emit(
                        Event(
                            kind=_MEMORY_KINDS[kind],
                            namespace=namespace,
                            record_id=item,
                            stamp=stamp or None,
                            origin=stamp[-16:] or None,
                            change_id=change,
                        )
                    )
            return False
        if channel == self._expired:
            self._on_expired(data)
        return False

    def _foreign(self, channel: str) -> None:
        if channel not in self._warned:
            self._warned.add(channel)
            log.warning("rmem ignores a message on %s that is not a sync hint", channel)

    def _on_expired(self, key: str) -> None:
        session = parse_session_key(key)
        if session is not None:
            with self._lock:
                replica = self._sessions.get(session)
                if replica is not None:
                    # Redis published the expiry before it ran any later write, but this
                    # client applies its own appends at once: the session may already be
                    # re-created here. So the replica reloads (reads go to Redis until then).
                    replica.exists = False
                    replica.clear()
                    replica.count = replica.size = 0
                    replica.deadline = None
                    replica.rev, replica.change_id = -1, ""
                    self._stale(replica)
                interested = session[0] in self._namespaces
            if interested:
                self._emit(
                    Event(kind="session.expire", namespace=session[0], session_id=session[1])
                )
            return
        record = parse_memory_key(key)
        if record is not None:
            with self._lock:
                records = self._records.get(record[0])
                if records is not None and record[1] in records.records:
                    records.records[record[1]] = None
                interested = record[0] in self._namespaces
            if interested:
                self._emit(Event(kind="memory.expire", namespace=record[0], record_id=record[1]))

    # ------------------------------------------------------------------ catching up

    def _on_session_hint(self, redis_client: Any, namespace: str, sid: str, rev: int) -> None:
        with self._lock:
            replica = self._sessions.get((namespace, sid))
            if replica is None or rev <= replica.rev:
                return
            self._stale(replica)
        self._sync_sessions(redis_client, [replica])

    def _on_memory_hint(self, redis_client: Any, namespace: str, change: str) -> None:
        with self._lock:
            replica = self._records.get(namespace)
            if replica is None or replica.log_id is None:
                return
            if replica.log_id and not _after(change, replica.log_id):
                return
            replica.dirty = True
        self._sync_records(redis_client, namespace, replica)

    def _catch_up(self, redis_client: Any) -> None:
        now = time.monotonic()
        with self._lock:
            sessions = []
            for key in list(self._pending):
                r = self._sessions.get(key)
                if r is None or not (r.dirty or r.epoch != self._epoch):
                    self._pending.discard(key)  # evicted, or caught up since
                elif r.namespace in self._subscribed and r.retry_at <= now:
                    sessions.append(r)
            namespaces = [
                (ns, r)
                for ns, r in self._records.items()
                if (r.dirty or r.epoch != self._epoch or r.wanted)
                and ns in self._subscribed
                and r.retry_at <= now
            ]
        if sessions:
            self._sync_sessions(redis_client, sessions)
        for namespace, replica in namespaces:
            self._sync_records(redis_client, namespace, replica)

    def _sync_sessions(self, redis_client: Any, replicas: Sequence[SessionReplica]) -> None:
        with self._lock:
            epoch = self._epoch
            requests = [(r, r.change_id if r.epoch >= 0 else "", r.gen) for r in replicas]
        script = _lua.SESSION_SYNC
        for start in range(0, len(requests), 100):
            chunk = requests[start : start + 100]
            replies = _run_scripts(
                redis_client,
                script,
                [
                    (session_keys(r.namespace, r.session_id), (since, _DELTA_LIMIT))
                    for r, since, _ in chunk
                ],
            )
            with self._lock:
                for (replica, since, gen), reply in zip(chunk, replies, strict=True):
                    if replica.gen != gen:
                        continue  # this client wrote meanwhile: catch up again next round
                    try:
                        if isinstance(reply, Exception):
                            raise reply  # Redis refused this session's sync (WRONGTYPE, ...)
                        caught_up = self._apply_sync(replica, since, reply)
                    except (redis.ResponseError, *_DAMAGE) as exc:
                        self._drop_session(replica, exc)
                        continue
                    if caught_up:
                        replica.epoch = epoch
                        replica.dirty = False
                    else:
                        replica.change_id = ""  # reload next round
                        replica.epoch = -1

    def _drop_session(self, replica: SessionReplica, exc: Exception) -> None:
        # Lock held. The session is damaged (or Redis refused to read it): forget what the
        # replica holds, which may be half updated, so reads go to Redis (and raise there,
        # naming the key) and the next catch-up reloads it whole; other sessions sync on.
        self._warn("/".join(replica_key(replica)), "session", exc)
        replica.clear()
        replica.exists, replica.count, replica.size = False, 0, 0
        replica.rev, replica.change_id, replica.epoch = -1, "", -1
        self._stale(replica)
        replica.retry_at = time.monotonic() + _MAX_BACKOFF

    def _warn(self, what: str, kind: str, exc: Exception) -> None:
        # Once per damaged session or record and client: a replica retries, the log need not.
        if what not in self._warned:
            self._warned.add(what)
            log.warning("rmem cannot replicate %s %s: %s", kind, what, exc)

    def _apply_sync(self, replica: SessionReplica, since: str, reply: Sequence[Any]) -> bool:
        # Lock held. Returns False when the replica must reload. Raises CorruptDataError, or a
        # ValueError, TypeError or LookupError for a reply that damage made malformed.
        if not int(reply[0]):
            rev = int(reply[1])
            if rev < replica.rev:
                return True  # an own write moved past this snapshot
            replica.exists = False
            replica.clear()
            replica.count = replica.size = 0
            replica.rev, replica.change_id, replica.deadline = rev, _text(reply[2]), None
            return True
        count, size, created, updated, ttl, sliding, rev, remaining = (int(x) for x in reply[1:9])
        if rev < replica.rev or (rev == replica.rev and replica.exists and since):
            return True  # nothing newer than what the replica holds
        newest, mode = _text(reply[9]), _text(reply[10])
        key = session_keys(replica.namespace, replica.session_id).msgs
        if mode == "full":
            members = reply[11:]
            replica.prefixes = [member_prefix(m) for m in members]
            replica.messages = decode_members(members, key)
        else:
            i = 11
            while i < len(reply):
                kind, n = _text(reply[i]), int(reply[i + 1])
                items = reply[i + 2 : i + 2 + n]
                i += 2 + n
                if kind == "a":
                    for prefix, message in zip(
                        [member_prefix(m) for m in items], decode_members(items, key), strict=True
                    ):
                        replica.add(prefix, message)
                elif kind == "r":
                    for prefix in items:
                        replica.remove(bytes(prefix))
                elif kind in ("c", "d"):
                    replica.drop_through(bytes(items[0]) if items else None)
        replica.exists = True
        replica.count, replica.size, replica.created, replica.updated = (
            count,
            size,
            created,
            updated,
        )
        replica.ttl_ms, replica.sliding, replica.rev = ttl, bool(sliding), rev
        replica.change_id = newest
        replica.deadline = None if remaining < 0 else time.monotonic() + remaining / 1000
        return len(replica.messages) == count

    def _sync_records(self, redis_client: Any, namespace: str, replica: RecordReplica) -> None:
        keys = memory_keys(namespace)
        with self._lock:
            epoch, log_id, gen = self._epoch, replica.log_id, replica.gen
            reload_ids = set(replica.wanted)
        pipe = redis_client.pipeline(transaction=False)
        pipe.xrevrange(keys.log, "+", "-", count=1)
        if log_id:
            pipe.xrange(keys.log, log_id, "+", count=_DELTA_LIMIT + 1)
        newest_reply, *since = replies = pipe.execute(raise_on_error=False)
        refused = next((r for r in replies if isinstance(r, Exception)), None)
        if refused is not None:
            if not isinstance(refused, redis.ResponseError):
                raise refused
            # The change log is damaged (a key of another type, written by something else):
            # the namespace's records cannot be kept current, so reads of them go to Redis
            # (and raise there, naming the key); the other namespaces sync on.
            self._warn(keys.log, "the records of", refused)
            with self._lock:
                replica.dirty = True
                replica.retry_at = time.monotonic() + _MAX_BACKOFF
            return
        newest = _text(newest_reply[0][0]) if newest_reply else ""
        entries = since[0] if since else []
        if (
            not log_id
            or not entries
            or _text(entries[0][0]) != log_id
            or len(entries) > _DELTA_LIMIT
        ):
            # Never started, or the log was trimmed past this replica: reload every record.
            with self._lock:
                reload_ids |= set(replica.records)
        else:
            with self._lock:
                for entry in entries[1:]:
                    rid = _text(entry[1].get(b"i", b""))  # no id: an entry rmem did not write
                    if rid in replica.records:
                        reload_ids.add(rid)
            newest = _text(entries[-1][0])
        ids = sorted(reload_ids)
        pipe = redis_client.pipeline(transaction=False)
        for rid in ids:
            pipe.hgetall(memory_key(namespace, rid))
        # A key of another type answers with an error of its own; the others still load.
        found = pipe.execute(raise_on_error=False) if ids else []
        with self._lock:
            if replica.gen != gen:
                return  # this client wrote meanwhile: what was read may predate it; go again
            for rid, fields in zip(ids, found, strict=True):
                key = memory_key(namespace, rid)
                replica.wanted.discard(rid)
                try:
                    if isinstance(fields, Exception):
                        raise fields
                    record = decode_record(namespace, key, fields) if fields else None
                except (redis.ResponseError, *_DAMAGE) as exc:
                    # Not held: a read of it goes to Redis and raises there, naming the key.
                    self._warn(key, "record", exc)
                    replica.records.pop(rid, None)
                    continue
                replica.records[rid] = record
            replica.log_id = newest
            replica.epoch = epoch
            replica.dirty = False

    def _send_touches(self, redis_client: Any, now: float) -> None:
        with self._lock:
            due = []
            for key in list(self._touches):
                r = self._sessions.get(key)
                if r is None or not r.touch_due:
                    self._touches.discard(key)
                elif now - r.last_touch >= min(1.0, r.ttl_ms / 10_000):
                    self._touches.discard(key)
                    r.touch_due, r.last_touch = False, now
                    due.append(r)
        if not due:
            return
        replies = _run_scripts(
            redis_client,
            _lua.SESSION_TOUCH,
            [(session_keys(r.namespace, r.session_id), ()) for r in due],
        )
        with self._lock:
            for replica, remaining in zip(due, replies, strict=True):
                left = -2 if isinstance(remaining, Exception) else int(remaining)
                if left == -2:  # gone, or refused: the next read goes to Redis
                    self._stale(replica)
                elif left >= 0:
                    replica.deadline = now + left / 1000


# ---------------------------------------------------------------------- events for users


class EventIterator:
    """Blocking iterator over change events (``Client.events()``); close it when done."""

    def __init__(self, engine: SyncEngine, namespace: str) -> None:
        self._queue: queue.Queue[Event] = queue.Queue()
        self._engine = engine
        self._listener = engine.listen(namespace, self._queue.put)

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        return self._queue.get()

    def get(self, timeout: float | None = None) -> Event | None:
        """Return the next event, or None when none arrives within ``timeout`` seconds."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        """Stop receiving events."""
        self._engine.unlisten(self._listener)

    def __enter__(self) -> EventIterator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncEventIterator:
    """Async iterator over change events (``AsyncClient.events()``); close it when done."""

    def __init__(self, engine: SyncEngine, namespace: str) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._engine = engine
        self._listener = engine.listen(namespace, self._deliver)

    def _deliver(self, event: Event) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed
            self._loop.call_soon_threadsafe(self._queue.put_nowait, event)

    def __aiter__(self) -> AsyncEventIterator:
        return self

    async def __anext__(self) -> Event:
        return await self._queue.get()

    def close(self) -> None:
        """Stop receiving events."""
        self._engine.unlisten(self._listener)

    async def __aenter__(self) -> AsyncEventIterator:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------- helpers


def replica_info(replica: SessionReplica) -> SessionInfo:
    """Build the ``info()`` of a fresh replica (lock held)."""
    remaining = None
    if replica.deadline is not None:
        remaining = max(0.0, replica.deadline - time.monotonic())
    return SessionInfo(
        id=replica.session_id,
        namespace=replica.namespace,
        message_count=replica.count,
        size_bytes=replica.size,
        created_at=replica.created / 1000,
        updated_at=replica.updated / 1000,
        ttl=remaining,
        ttl_policy=replica.ttl_ms / 1000 if replica.ttl_ms > 0 else None,
        sliding=replica.sliding,
        revision=replica.rev,
    )


def _expired(replica: SessionReplica) -> bool:
    return replica.deadline is not None and replica.deadline <= time.monotonic()


def _rejoined(orphan: SessionReplica, current: SessionReplica | None) -> SessionReplica:
    # What a replica held before an append re-created its session, joined with what the
    # replica took since (the new session's messages, policy and times). Revisions only grow.
    if current is None:
        return orphan
    joined = _copy(current)
    joined.prefixes, joined.messages = list(orphan.prefixes), list(orphan.messages)
    for prefix, message in zip(current.prefixes, current.messages, strict=True):
        joined.add(prefix, message)
    joined.created = orphan.created
    joined.rev = orphan.rev + max(current.rev, 0)
    joined.count = len(joined.messages)
    return joined


def _copy(replica: SessionReplica) -> SessionReplica:
    # Lock held. Messages are frozen: sharing them is safe.
    copy = dataclasses.replace(replica)
    copy.prefixes, copy.messages = list(replica.prefixes), list(replica.messages)
    return copy


def replica_key(replica: SessionReplica) -> tuple[str, str]:
    """Return ``(namespace, session id)`` of a replica."""
    return replica.namespace, replica.session_id


def _connect(settings: Settings, store: Any = None) -> redis.Redis:
    if store is not None:
        import fakeredis

        fake: redis.Redis = fakeredis.FakeRedis(server=store.server)
        return fake
    return redis.Redis.from_url(
        settings.url,
        socket_timeout=settings.socket_timeout,
        socket_connect_timeout=settings.connect_timeout,
        retry=Retry(NoBackoff(), 0),
        protocol=2,
    )


def _run_scripts(
    redis_client: Any, script: _lua.Script, calls: Sequence[tuple[Sequence[str], Sequence[Any]]]
) -> list[Any]:
    # Returns one reply per call; a call Redis refused (a key of another type, ...) has its
    # error in its place, so one damaged session cannot stop the others.
    for attempt in (1, 2):
        pipe = redis_client.pipeline(transaction=False)
        for keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        replies = list(pipe.execute(raise_on_error=False))
        missing = [r for r in replies if isinstance(r, redis.exceptions.NoScriptError)]
        if not missing:
            return replies
        if attempt == 2:
            raise missing[0]
        redis_client.script_load(script.source)
    raise AssertionError("unreachable")  # pragma: no cover


def _db(url: str) -> int:
    if url.startswith("memory://"):
        return 0
    pool = redis.ConnectionPool.from_url(url)
    return int(pool.connection_kwargs.get("db", 0) or 0)


def _parse_hint(data: str) -> tuple[str, str, int, str, str] | None:
    """A sync hint ``<kind>\\n<stamp>\\n<rev>\\n<change id>\\n<item>`` (lua/_session.lua,
    lua/_memory.lua) as its parts, or None for a message that is not one. (An item hint of
    the LangGraph store has the kind ``lg``, which is neither: see :func:`_parse_item_hint`.)"""
    parts = data.split("\n", 4)
    if len(parts) != 5 or not parts[2].isdigit() or not parts[2].isascii():
        return None
    kind, stamp, rev, change, item = parts
    if kind in _SESSION_KINDS:
        if not item or not STAMP_RE.fullmatch(stamp):
            return None
    elif kind not in _MEMORY_KINDS:
        return None
    return kind, stamp, int(rev), change, item


def _parse_item_hint(data: bytes) -> list[str] | None:
    """The items (``<path>/<key>``) an item hint of the LangGraph store names, or None for a
    message that only looks like one. Lengths are in bytes: keys may hold any character."""
    refs: list[str] = []
    at, end = len(_ITEM_HINT), len(data)
    try:
        while at < end:
            if data[at : at + 1] != b"\n":
                return None
            newline = data.index(b"\n", at + 1)
            size = data[at + 1 : newline]
            if not size.isdigit():
                return None
            at = newline + 1 + int(size)
            if at > end:
                return None
            refs.append(data[newline + 1 : at].decode())
    except ValueError:  # no length, or not UTF-8
        return None
    return refs or None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


def _stream_id(value: str) -> tuple[int, int]:
    ms, _, seq = value.partition("-")
    return int(ms), int(seq or 0)


def _after(a: str, b: str) -> bool:
    return _stream_id(a) > _stream_id(b)
