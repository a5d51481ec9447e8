# Generated from rmem/_async/_backend.py by scripts/unasync.py: edit that file, not this one.
"""The connection to Redis: runs scripts and commands, turns redis-py errors into rmem's.

When Redis cannot be reached and the fallback is on, calls are served by the local store
instead (see :mod:`rmem._fallback`); a ``memory://`` backend has only the local store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import hiredis
from redis import BlockingConnectionPool, Redis
from redis.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError, ResponseError

from rmem._sync._connections import Connections
from rmem._errors import PoolTimeoutError, UnavailableError, from_redis_error
from rmem._fallback import Fallback
from rmem._keys import SERVER_MARK
from rmem._local import MEMORY_SCHEME, LocalStore, memory_server
from rmem._lua import Arg, Script, ScriptCall, Step, commands_of
from rmem._settings import Settings, redacted
from rmem._wire import send_packed

# hiredis (a dependency, through redis[hiredis]) packs commands; its stubs type the argument
# as a one-element tuple.
_hiredis_pack: Any = hiredis.pack_command


def _raw(response: Any, **options: Any) -> Any:
    return response


def _first_key(steps: Sequence[ScriptCall | Sequence[Arg]]) -> str | None:
    for step in steps:
        if isinstance(step, ScriptCall) and step.keys:
            return step.keys[0]
    return None


class Backend:
    """One connection pool to one Redis, shared by a client and its namespace views.

    redis-py's own retries are off: a blind retry of a non-idempotent script (``pop``) could
    apply it twice. Callers retry only what is safe to repeat.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = redacted(settings.url)
        self.memory = settings.url.startswith(MEMORY_SCHEME)
        self.store: LocalStore | None = None
        self.fallback: Fallback | None = None
        self.where = "memory"
        url = settings.url
        if self.memory:
            self.store = LocalStore(memory_server(settings.url), self.url)
            url = "redis://127.0.0.1:1/0"  # an idle pool that is never used
        elif settings.fallback:
            self.fallback = Fallback(settings, LocalStore(where="local fallback store"), None)
        no_retry = Retry(NoBackoff(), 0)
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=settings.pool_size,
            timeout=settings.pool_timeout,
            socket_timeout=settings.socket_timeout,
            socket_connect_timeout=settings.connect_timeout,
            retry=no_retry,
            # RESP3 on every redis-py version rmem supports: search replies come as maps,
            # which rmem parses itself (see _search_redis).
            protocol=3,
        )
        kwargs = pool.connection_kwargs
        if not self.memory:
            self.where = str(kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}")
        # The redis-py client parses replies (its response callbacks); the round trips go over
        # rmem's own connections (see _connections).
        self.redis = Redis(connection_pool=pool, retry=no_retry)
        self._connections = Connections(pool, settings.pool_size, settings.pool_timeout)
        # Stream replies stay as hiredis gives them (nested lists): rmem reads one field per
        # entry, and redis-py's default turns every entry into a dict first.
        for command in ("XRANGE", "XREVRANGE"):
            self.redis.set_response_callback(command, _raw)

    def run(
        self,
        script: Script,
        keys: Sequence[str],
        args: Sequence[Arg],
        *,
        namespace: str | None = None,
        session: str | None = None,
    ) -> Any:
        """Run ``script`` with EVALSHA, loading it once if the server does not know it yet.

        A script refused with NOSCRIPT did not run, so sending it again is safe even for
        operations that are not idempotent (``pop``).
        """
        replies = self.pipeline(
            (ScriptCall(script, keys, args),), namespace=namespace, session=session
        )
        return replies[0]

    @property
    def local(self) -> bool:
        """True while calls are served by the local store (``memory://``, or degraded)."""
        return self.memory or (self.fallback is not None and self.fallback.active)

    @property
    def degraded(self) -> bool:
        """True while Redis is unreachable and calls go to the fallback's local store."""
        fallback = self.fallback
        return fallback is not None and fallback.active

    def _unreachable(self, exc: UnavailableError) -> bool:
        # True when the call should be served locally instead of raising. A pool with no free
        # connection is this client's own load, not Redis down: that raises.
        if self.fallback is None or isinstance(exc, PoolTimeoutError):
            return False
        self.fallback.degrade(exc)
        return True

    def probe(self) -> tuple[Any, Any]:
        """Return ``INFO server`` and ``MODULE LIST``, always from Redis (never the local store).

        Raises:
            UnavailableError: Redis cannot be reached (the fallback is not engaged by this).
        """
        try:
            info, modules = self._round_trip(
                (("INFO", "server"), ("MODULE", "LIST")), parse=True
            )
            for reply in (info, modules):
                if isinstance(reply, Exception):
                    raise reply
        except (RedisError, OSError) as exc:
            raise from_redis_error(exc, self.where) from exc
        return info, modules

    def call(self, *command: Arg, namespace: str | None = None) -> Any:
        """Run one plain Redis command."""
        if self.store is not None:
            return self.store.call(*command, namespace=namespace)
        return (self.batch([command], namespace=namespace))[0]

    def batch(
        self, commands: Sequence[Sequence[Arg]], *, namespace: str | None = None
    ) -> list[Any]:
        """Run many plain commands in one pipeline (one round trip, no transaction)."""
        if self.store is not None:
            return self.store.batch(commands, namespace=namespace)
        fallback = self.fallback
        while True:
            if fallback is not None and fallback.active:
                served = fallback.batch(commands, namespace)
                if served is not None:
                    return served
            try:
                # Errors come back as replies, as Redis sent them.
                replies = self._round_trip(commands, parse=True)
            except (RedisError, OSError) as exc:
                error = from_redis_error(exc, self.where, namespace=namespace)
                if not (isinstance(error, UnavailableError) and self._unreachable(error)):
                    raise error from exc
                continue
            for reply in replies:
                if isinstance(reply, Exception):
                    raise from_redis_error(reply, self.where, namespace=namespace) from reply
            return replies

    def pipeline(
        self,
        steps: Sequence[ScriptCall | Sequence[Arg]],
        *,
        namespace: str | None = None,
        session: str | None = None,
    ) -> list[Any]:
        """Run steps in one round trip (no transaction); return their raw replies in order.

        A :class:`ScriptCall` step runs as EVALSHA. If the server does not know a script yet,
        the scripts are loaded and every step is sent once more, so only idempotent steps
        belong here. Replies are not post-processed by redis-py's response callbacks.
        """
        if self.store is not None:
            return self.store.pipeline(steps, namespace=namespace)
        fallback = self.fallback
        while True:
            if fallback is not None and fallback.active:
                served = fallback.pipeline(steps, namespace)
                if served is not None:
                    return served
            try:
                return self._remote_pipeline(steps, namespace, session)
            except UnavailableError as error:
                if not self._unreachable(error):
                    raise

    def _remote_pipeline(
        self, steps: Sequence[Step], namespace: str | None, session: str | None
    ) -> list[Any]:
        fallback = self.fallback
        commands = commands_of(steps)
        marking = fallback is not None and fallback.mark is None
        if marking:
            # Once per client: leave (or read) the marker that tells a recovery whether Redis
            # came back with its data (see rmem._fallback).
            assert fallback is not None
            commands.insert(0, ("SET", SERVER_MARK, fallback.mark_token, "NX", "GET"))
        for attempt in (1, 2):
            replies = self._send(commands, steps, namespace, session)
            if marking:
                assert fallback is not None
                mark, replies = replies[0], replies[1:]
                if not isinstance(mark, Exception):
                    fallback.mark = fallback.mark_token if mark is None else _text(mark)
                commands, marking = commands[1:], False
            failed = [r for r in replies if isinstance(r, Exception)]
            if not failed:
                return replies
            if attempt == 1 and all(isinstance(r, NoScriptError) for r in failed):
                # Loaded on Redis itself, never through ``call``: the fallback may have gone
                # degraded since the first attempt (the sync thread found Redis restarted
                # empty), and the local store would then take these loads in Redis's place.
                loads = [
                    ("SCRIPT", "LOAD", step.script.source)
                    for step in steps
                    if isinstance(step, ScriptCall)
                ]
                loaded = self._send(loads, steps, namespace, session)
                failed = [r for r in loaded if isinstance(r, Exception)]
                if not failed:
                    continue
            raise from_redis_error(
                failed[0], self.where, namespace=namespace, session=session, key=_first_key(steps)
            ) from failed[0]
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(
        self,
        commands: Sequence[Sequence[Arg]],
        steps: Sequence[Step],
        namespace: str | None,
        session: str | None,
    ) -> list[Any]:
        # One round trip to Redis, with a failure to reach it raised as rmem's error.
        try:
            return self._round_trip(commands)
        except (RedisError, OSError) as exc:
            raise from_redis_error(
                exc, self.where, namespace=namespace, session=session, key=_first_key(steps)
            ) from exc

    def _round_trip(
        self, commands: Sequence[Sequence[Arg]], *, parse: bool = False
    ) -> list[Any]:
        # Sends the commands in one write and reads one reply each, on one connection; a
        # command Redis refused has its error in its place. parse: replies go through
        # redis-py's response callbacks (as its own commands and pipelines give them);
        # otherwise they stay as the parser gives them. redis-py's Pipeline does the same
        # with several times the Python work per call, and every append and read comes here.
        connections = self._connections
        conn = connections.get()
        try:
            send_packed(conn, _pack(conn, commands))
            replies: list[Any] = []
            for command in commands:
                try:
                    if parse:
                        name = str(command[0])  # rmem names commands with str
                        replies.append(self.redis.parse_response(conn, name))
                    else:
                        replies.append(conn.read_response())
                except ResponseError as exc:
                    replies.append(exc)  # the connection stays in step: the reply was read
        except BaseException:
            # Replies may still be in flight: this connection cannot be reused as it is.
            connections.put(conn, broken=True)
            raise
        connections.put(conn)
        return replies

    def close(self) -> None:
        """Close every connection of the pool, and stop the fallback's recovery thread."""
        if self.fallback is not None:
            self.fallback.close()
        if self.store is not None:
            self.store.close()
        self._connections.close()
        self.redis.close()
        self.redis.connection_pool.disconnect()


def _pack(conn: Any, commands: Sequence[Sequence[Arg]]) -> list[bytes]:
    # hiredis packs the same bytes as redis-py's packer (which calls it too) in a third of the
    # time; for an argument hiredis refuses, redis-py's packer raises its DataError.
    try:
        return [b"".join([_hiredis_pack(c if type(c) is tuple else tuple(c)) for c in commands])]
    except TypeError:
        packed: list[bytes] = conn.pack_commands(commands)
        return packed


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
