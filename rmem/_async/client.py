"""The client: one connection pool, a current namespace, and the sessions in it."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Self

from rmem import _lua
from rmem._async._backend import AsyncBackend
from rmem._async.memories import AsyncMemories, SearchState
from rmem._async.session import AsyncSession
from rmem._errors import CorruptDataError, RmemError, UnavailableError, ValidationError
from rmem._hlc import Clock
from rmem._keys import SERVER_MARK, session_index, session_keys
from rmem._models import Event, Health
from rmem._replica import AsyncEventIterator, Listener, SyncEngine
from rmem._session_core import UNSET, TtlPolicy, Unset, parse_export, prepare_batch
from rmem._settings import Settings
from rmem._validate import check_namespace, check_session_id

_LIST_CHUNK = 1000  # sessions checked per round trip when listing

log = logging.getLogger("rmem.sessions")


class AsyncClient:
    """Entry point of rmem: the sessions and memories of one namespace in one Redis.

    Create with :meth:`from_url`; use as a context manager, or call :meth:`aclose`.
    Views made by :meth:`with_namespace` share this client's connections, clock and embedder.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        embedder: Any = None,
        _parent: AsyncClient | None = None,
        _namespace: str | None = None,
    ) -> None:
        self._backend: AsyncBackend
        self._clock: Clock
        self._sync: SyncEngine | None
        self._search_state: SearchState
        self._embedder: Any
        self._vector_dim: int | None
        self._warned: set[str]  # damaged listing entries already logged, for every view
        if _parent is not None:
            self._warned = _parent._warned
            self._backend = _parent._backend
            self._clock = _parent._clock
            self._sync = _parent._sync
            self._search_state = _parent._search_state
            self._embedder = _parent._embedder
            self._vector_dim = _parent._vector_dim
        else:
            self._warned = set()
            self._backend = AsyncBackend(settings or Settings())
            self._clock = Clock()
            self._sync = (
                SyncEngine(self._backend.settings, self._backend.store, node=self._clock.node)
                if self._backend.settings.sync
                else None
            )
            if self._backend.fallback is not None:
                self._backend.fallback.replicas = self._sync
                if self._sync is not None:
                    self._sync.on_connect = self._backend.fallback.check_remote
            self._search_state = SearchState()
            self._embedder = embedder
            self._vector_dim = _vector_dim(embedder, self._backend.settings.vector_dim)
        self._owner = _parent is None
        self._namespace = _namespace or self._backend.settings.namespace
        self._index = session_index(self._namespace)
        self._memories: AsyncMemories | None = None

    @classmethod
    def from_url(
        cls,
        url: str | None = None,
        *,
        namespace: str | None = None,
        embedder: Any = None,
        **options: Any,
    ) -> Self:
        """Connect lazily to ``url`` (default: ``RMEM_URL``, else redis://127.0.0.1:6379/0).

        Args:
            url: ``redis://``, ``rediss://`` or ``unix://`` URL.
            namespace: the namespace to start in (default ``RMEM_NAMESPACE`` or "default").
            embedder: an :class:`rmem.Embedder` (``dim`` and ``embed(texts)``) that turns
                memory texts and queries into vectors; None to give vectors yourself or
                search by text only.
            **options: any :class:`rmem.Settings` field (``pool_size``, ``socket_timeout``,
                ``max_message_bytes``, ``session_ttl``, ``memory_fields``, ...).

        Raises:
            ValidationError: an unknown option, a bad value, an unsupported URL, or an
                embedder without an int ``dim`` and an ``embed`` method.
        """
        return cls(Settings.from_url(url, namespace=namespace, **options), embedder=embedder)

    @property
    def namespace(self) -> str:
        """The namespace this client works in."""
        return self._namespace

    @property
    def node_id(self) -> str:
        """This client's node id: the tie-break of its clock stamps, and ``Event.origin``."""
        return self._clock.node

    @property
    def settings(self) -> Settings:
        """The settings the client was made with."""
        return self._backend.settings

    @property
    def embedder(self) -> Any:
        """The embedder given to :meth:`from_url`, or None."""
        return self._embedder

    @property
    def vector_dim(self) -> int | None:
        """Dimension of memory vectors: the embedder's ``dim``, else ``Settings.vector_dim``."""
        return self._vector_dim

    @property
    def memories(self) -> AsyncMemories:
        """The long-term memories of this client's namespace."""
        if self._memories is None:
            self._memories = AsyncMemories(self)
        return self._memories

    def __repr__(self) -> str:
        return f"<AsyncClient {self._backend.url} namespace={self._namespace!r}>"

    def with_namespace(self, namespace: str) -> Self:
        """Return a view of this client in ``namespace``, sharing its connections.

        Raises:
            ValidationError: ``namespace`` is not a valid name.
        """
        return type(self)(_parent=self, _namespace=check_namespace(namespace))

    def session(
        self,
        session_id: str,
        *,
        ttl: float | Unset | None = UNSET,
        sliding: bool | Unset = UNSET,
    ) -> AsyncSession:
        """Return a handle on session ``session_id`` (no I/O).

        Args:
            session_id: 1-256 characters, no control characters.
            ttl: seconds of idleness (sliding) or of life (absolute) before the session expires;
                None keeps it forever. When given, each write of this handle sets the
                session's policy; when omitted, the session keeps its policy, and a new one
                takes ``Settings.session_ttl``.
            sliding: True restarts the TTL on every read and write; False counts from creation.

        Raises:
            ValidationError: a bad session id, ttl or sliding value.
        """
        check_session_id(session_id, self._namespace)
        settings = self._backend.settings
        policy = TtlPolicy(ttl, sliding, settings.session_ttl, settings.session_sliding)
        return AsyncSession(self, session_id, policy)

    async def sessions(self) -> list[str]:
        """Return the ids of the live sessions of this namespace, oldest first.

        Reads the namespace's own listing (no SCAN of the keyspace) and drops from it the
        sessions that expired or were deleted. An entry that is not a session id (written into
        the listing by something else) is skipped and logged once (logger ``rmem.sessions``);
        a session whose keys are damaged is listed, and reading it raises.

        Raises:
            CorruptDataError: the listing key holds another type of value; ``key`` names it.
        """
        try:
            listed = await self._backend.call(
                "ZRANGE", self._index, 0, -1, "WITHSCORES", namespace=self._namespace
            )
        except CorruptDataError as exc:
            raise CorruptDataError(str(exc), namespace=self._namespace, key=self._index) from exc
        pairs = self._listed(listed)
        alive: list[str] = []
        gone: list[tuple[str, int]] = []
        for start in range(0, len(pairs), _LIST_CHUNK):
            chunk = pairs[start : start + _LIST_CHUNK]
            found = await self._alive([sid for sid, _ in chunk])
            for (sid, score), exists in zip(chunk, found, strict=True):
                if exists:
                    alive.append(sid)
                elif score is not None:
                    gone.append((sid, score))
        if gone:
            await self._unlist_sessions(gone)
        return alive

    def _listed(self, listed: Sequence[Any]) -> list[tuple[str, int | None]]:
        # The listing's (session id, creation ms) pairs; None for a score that is not a time,
        # so the entry is never pruned (sessions_prune matches the score it was given).
        out: list[tuple[str, int | None]] = []
        for member, score in _pairs(listed):
            try:
                sid = check_session_id(member.decode(), self._namespace)
            except (UnicodeDecodeError, ValidationError):
                self._warn(f"{member!r:.80}, which is not a session id")
                continue
            if not math.isfinite(score):
                self._warn(f"session {sid!r} with the score {score}, which is not a time")
                out.append((sid, None))
            else:
                out.append((sid, int(score)))
        return out

    def _warn(self, what: str) -> None:
        # Damage in the listing is reported once per client, not on every call.
        if what not in self._warned:
            self._warned.add(what)
            log.warning(
                "rmem: the session listing %s holds %s (written by something else?)",
                self._index,
                what,
            )

    async def _alive(self, session_ids: Sequence[str]) -> list[bool]:
        metas = [session_keys(self._namespace, sid).meta for sid in session_ids]
        try:
            found = await self._backend.batch(
                [("HEXISTS", meta, "created") for meta in metas], namespace=self._namespace
            )
            return [bool(exists) for exists in found]
        except CorruptDataError:
            pass  # a meta key of another type: it is there, damaged; look at the others
        kinds = await self._backend.batch(
            [("TYPE", meta) for meta in metas], namespace=self._namespace
        )
        hashes = [meta for meta, kind in zip(metas, kinds, strict=True) if _text(kind) == "hash"]
        found = await self._backend.batch(
            [("HEXISTS", meta, "created") for meta in hashes], namespace=self._namespace
        )
        exists = dict(zip(hashes, found, strict=True))
        return [
            bool(exists[meta]) if _text(kind) == "hash" else _text(kind) != "none"
            for meta, kind in zip(metas, kinds, strict=True)
        ]

    async def _list_session(
        self, session_id: str, created_ms: int, *, check_mark: bool = False
    ) -> None:
        listing = ("ZADD", self._index, "NX", created_ms, session_id)
        fallback = self._backend.fallback
        if not (check_mark and fallback is not None):
            await self._backend.call(*listing, namespace=self._namespace)
        else:
            # The append re-created a session this client's replica held as live: another
            # instance deleted it, or Redis lost its data. The marker tells which; when it is
            # gone the fallback writes back what the replica held (rmem._fallback).
            _, found = await self._backend.batch(
                [listing, ("GET", SERVER_MARK)], namespace=self._namespace
            )
            if fallback.check_found(found):
                return
        if check_mark and self._sync is not None:
            self._sync.forget_orphan(self._namespace, session_id)

    async def _unlist_sessions(self, entries: Sequence[tuple[str, int]]) -> None:
        args = [value for sid, score in entries for value in (sid, score)]
        await self._backend.run(
            _lua.SESSIONS_PRUNE, (self._index,), args, namespace=self._namespace
        )

    async def import_session(
        self, data: dict[str, Any], *, session_id: str | None = None
    ) -> AsyncSession:
        """Write an exported session (from ``Session.export()``) into this namespace.

        Messages already present (same id) are kept once, so importing twice is harmless.
        The session keeps its id (or takes ``session_id``), TTL policy and creation time.

        An export with no messages (of a cleared session, say) writes nothing: a session
        exists only once it holds a message. The returned handle then names a session that
        does not exist (``exists()`` is False, ``info()`` raises NotFoundError) until a message
        is appended through it, which applies the export's TTL policy; its creation time is
        the time of that append.

        Raises:
            ValidationError: the dict is not an rmem export, or a message in it is bad;
                nothing is written.
        """
        sid, ttl, sliding, created_ms, items = parse_export(data)
        sid = session_id if session_id is not None else sid
        session = self.session(sid, ttl=ttl, sliding=sliding)
        settings = self._backend.settings
        messages, payloads = prepare_batch(
            items, settings.max_message_bytes, settings.compress_threshold
        )
        if messages:
            await session._append(messages, payloads, created_ms)
        return session

    async def health(self) -> Health:
        """Report the client's state; when connected, probe Redis once (latency, version,
        whether search is available).

        With the fallback on, a probe that finds Redis unreachable moves the client to
        "degraded" like any other call. With ``fallback=False`` the state is "degraded" while
        Redis cannot be reached, and calls raise UnavailableError.
        """
        backend = self._backend
        if backend.memory:
            return Health(state="connected", url=backend.url, backend="memory")
        fallback = backend.fallback
        figures: dict[str, Any] = {}
        if fallback is not None:
            f = fallback.figures
            figures = {
                "pending_writes": fallback.pending,
                "last_error": fallback.last_error,
                "degraded_seconds": fallback.degraded_for(),
                "outages": f.outages,
                "replayed": f.replayed,
                "rejected": f.rejected,
                "last_recovery_seconds": f.last_recovery,
            }
            if fallback.active:
                return Health(state=fallback.state, url=backend.url, **figures)
        start = time.perf_counter()
        try:
            info, modules = await backend.probe()
        except RmemError as error:
            if fallback is None or not isinstance(error, UnavailableError):
                return Health(state="degraded", url=backend.url, last_error=str(error))
            fallback.degrade(error)
            return await self.health()
        latency = (time.perf_counter() - start) * 1000
        names = {_module_name(m) for m in modules or []}
        return Health(
            state="connected",
            url=backend.url,
            latency_ms=latency,
            redis_version=str(info.get("redis_version")),
            search=bool(names & {"search", "ft", "searchlight"}),
            search_engine=await self.memories._engine(),
            **figures,
        )

    def subscribe(self, callback: Callable[[Event], None]) -> Listener:
        """Call ``callback(event)`` for every change in this namespace, by any instance.

        Events arrive on rmem's sync thread, in the order Redis published them: keep the
        callback short (hand work to a queue). Returns a handle for :meth:`unsubscribe`.

        Raises:
            ValidationError: the client was made with ``sync=False``.
        """
        return self._engine().listen(self._namespace, callback)

    def unsubscribe(self, listener: Listener) -> None:
        """Stop the deliveries started by :meth:`subscribe`."""
        self._engine().unlisten(listener)

    def events(self) -> AsyncEventIterator:
        """Return an iterator of the change events of this namespace, from every instance.

        Use ``async with client.events() as events: async for event in events: ...``; events
        that arrive while nobody iterates are queued.

        Raises:
            ValidationError: the client was made with ``sync=False``.
        """
        return AsyncEventIterator(self._engine(), self._namespace)

    def wait_synced(self, timeout: float = 5.0) -> bool:
        """Block until the sync thread is subscribed to this namespace; False on timeout.

        Changes made by other instances after this returns True reach this client's
        subscribers. (Blocks the calling thread: it is meant for start-up and tests.)
        """
        return self._engine().wait_connected(self._namespace, timeout)

    def _engine(self) -> SyncEngine:
        if self._sync is None:
            raise ValidationError("this client was made with sync=False: it has no sync thread")
        return self._sync

    async def aclose(self) -> None:
        """Close the connections (only the client made by ``from_url`` owns them)."""
        if self._owner:
            if self._sync is not None:
                self._sync.close()
            await self._backend.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _pairs(flat: Sequence[Any]) -> list[tuple[bytes, float]]:
    # redis-py returns WITHSCORES replies as pairs already under RESP2 with callbacks, but
    # execute_command gives the raw flat list under some parsers: accept both.
    if flat and isinstance(flat[0], list | tuple):
        return [(p[0], float(p[1])) for p in flat]
    return [(flat[i], float(flat[i + 1])) for i in range(0, len(flat), 2)]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _module_name(entry: Any) -> str:
    if isinstance(entry, dict):
        name = entry.get(b"name", entry.get("name", b""))
    else:
        items = list(entry)
        name = items[items.index(b"name") + 1] if b"name" in items else b""
    return name.decode() if isinstance(name, bytes) else str(name)


def _vector_dim(embedder: Any, configured: int | None) -> int | None:
    if embedder is None:
        return configured
    dim = getattr(embedder, "dim", None)
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2:
        raise ValidationError(f"embedder.dim must be an int >= 2, not {dim!r}")
    if not callable(getattr(embedder, "embed", None)):
        raise ValidationError("the embedder has no embed(texts) method")
    if configured is not None and configured != dim:
        raise ValidationError(f"vector_dim={configured} but the embedder's dim is {dim}")
    return dim
