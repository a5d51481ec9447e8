"""The local store: an in-process Redis (fakeredis) that runs rmem's own Lua scripts.

It serves ``memory://`` clients, and a client whose Redis is unreachable (see
:mod:`rmem._fallback`). Running the very scripts Redis runs, on fakeredis with Lua (lupa),
keeps the semantics identical by construction: one implementation of every write, one
behavioural test suite for both backends (decisions #22).

Calls are synchronous even for the async client: the store is memory, a call is a few hundred
microseconds of Python, and a plain lock (not an asyncio one) is what lets a write and its
outbox entry be taken together from any thread.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import fakeredis
from redis.exceptions import NoScriptError, RedisError, ResponseError

from rmem._errors import from_redis_error
from rmem._lua import Arg, ScriptCall, Step, commands_of

_NAMED: dict[str, fakeredis.FakeServer] = {}
_NAMED_LOCK = threading.Lock()
MEMORY_SCHEME = "memory://"


def _raw(response: Any, **options: Any) -> Any:
    return response


def memory_server(url: str) -> fakeredis.FakeServer:
    """Return the in-process server of a ``memory://`` URL.

    ``memory://`` alone is private to the client that opens it; ``memory://<name>`` is shared
    by every client of this process that names it (handy for tests and for several agents in
    one process).
    """
    name = url[len(MEMORY_SCHEME) :].strip("/")
    if not name:
        return fakeredis.FakeServer()
    with _NAMED_LOCK:
        server = _NAMED.get(name)
        if server is None:
            server = _NAMED[name] = fakeredis.FakeServer()
        return server


class LocalStore:
    """One in-process Redis and a client on it. Thread-safe; every call holds :attr:`lock`."""

    def __init__(self, server: fakeredis.FakeServer | None = None, where: str = "memory") -> None:
        self.server = server or fakeredis.FakeServer()
        self.where = where
        self.lock = threading.RLock()
        # Any: redis-py's sync client is untyped where rmem calls it.
        self.redis: Any = fakeredis.FakeRedis(server=self.server, protocol=3)
        for command in ("XRANGE", "XREVRANGE"):
            self.redis.set_response_callback(command, _raw)

    def pipeline(self, steps: Sequence[Step], *, namespace: str | None = None) -> list[Any]:
        """Run steps and return their raw replies, as the Redis backend's pipeline does."""
        commands = commands_of(steps)
        with self.lock:
            for attempt in (1, 2):
                replies = self._round_trip(commands)
                failed = [r for r in replies if isinstance(r, Exception)]
                if not failed:
                    return replies
                if attempt == 1 and all(isinstance(r, NoScriptError) for r in failed):
                    for step in steps:
                        if isinstance(step, ScriptCall):
                            self.redis.execute_command("SCRIPT", "LOAD", step.script.source)
                    continue
                raise from_redis_error(failed[0], self.where, namespace=namespace) from failed[0]
        raise AssertionError("unreachable")  # pragma: no cover

    def call(self, *command: Arg, namespace: str | None = None) -> Any:
        """Run one plain command, with redis-py's reply parsing (as ``Backend.call``)."""
        with self.lock:
            try:
                return self.redis.execute_command(*command)
            except RedisError as exc:
                raise from_redis_error(exc, self.where, namespace=namespace) from exc

    def batch(
        self, commands: Sequence[Sequence[Arg]], *, namespace: str | None = None
    ) -> list[Any]:
        """Run many plain commands, with redis-py's reply parsing (as ``Backend.batch``)."""
        with self.lock:
            try:
                pipe = self.redis.pipeline(transaction=False)
                for command in commands:
                    pipe.execute_command(*command)
                # As Backend.batch: errors as Redis sent them (raise_on_error would prefix
                # each with its position in the pipeline, hiding WRONGTYPE).
                replies = list(pipe.execute(raise_on_error=False))
            except RedisError as exc:
                raise from_redis_error(exc, self.where, namespace=namespace) from exc
        for reply in replies:
            if isinstance(reply, RedisError):
                raise from_redis_error(reply, self.where, namespace=namespace) from reply
        return replies

    def _round_trip(self, commands: Sequence[Sequence[Arg]]) -> list[Any]:
        pool = self.redis.connection_pool
        conn: Any = pool.get_connection()
        try:
            conn.send_packed_command(conn.pack_commands(commands))
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(conn.read_response())
                except ResponseError as exc:
                    replies.append(exc)
            return replies
        finally:
            pool.release(conn)

    def flush(self) -> None:
        """Forget everything the store holds."""
        with self.lock:
            self.redis.flushall()

    def close(self) -> None:
        """Close the store's client (the server lives on while another client names it)."""
        self.redis.close()
