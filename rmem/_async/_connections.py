"""The connections of one backend: a stack of idle ones that each round trip takes and returns.

redis-py's ``BlockingConnectionPool`` does the same job with work on every checkout that rmem
has no use for: metrics hooks, a queue guarded by a condition variable, a retry wrapper around
``connect()``, and in the asyncio pool a timeout context and a condition wait. On this
project's VM that cost ~20 µs of CPU per call in the sync client and ~50 µs in the async one,
on every append and read (docs/decisions.md, 27). What is kept: at most ``size`` connections,
callers wait up to ``timeout`` seconds for one, the newest idle connection is reused first, a
connection is checked before reuse (data left on it, or closed by the server: it is
reconnected), and a forked child never uses its parent's sockets.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from redis.asyncio import ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from rmem._errors import PoolTimeoutError

WAIT_STEP = 0.001
"""Seconds between two looks for a free connection while all ``size`` are in use."""


class AsyncConnections:
    """A LIFO stack of connections to one Redis, made from ``pool``'s connection class and
    options (parsed from the URL) and handed out one caller at a time.

    Callers pair every :meth:`get` with one :meth:`put`; a connection whose reply was not
    read to the end must be disconnected first (``put(conn, broken=True)``).
    """

    def __init__(self, pool: ConnectionPool, size: int, timeout: float) -> None:
        self._pool = pool
        self._size = size
        self._timeout = timeout
        self._idle: list[Any] = []
        self._open = 0  # connections made and not dropped: idle ones and those in use
        self._lock = asyncio.Lock()
        self._pid = os.getpid()
        self._closed = False

    async def get(self) -> Any:
        """Return a connected connection, waiting up to ``timeout`` for one to be free.

        Raises:
            redis.ConnectionError: none was free in time, or connecting failed.
        """
        deadline = 0.0
        while True:
            async with self._lock:
                if self._pid != os.getpid():
                    # A forked child: the sockets belong to the parent; start afresh.
                    self._idle, self._open, self._pid = [], 0, os.getpid()
                if self._idle:
                    conn = self._idle.pop()
                    break
                if self._open < self._size:
                    self._open += 1
                    conn = None
                    break
            now = time.monotonic()
            if not deadline:
                deadline = now + self._timeout
            elif now >= deadline:
                raise PoolTimeoutError(
                    f"No connection available: all {self._size} of the pool's connections "
                    f"stayed in use for {self._timeout} s (pool_size, pool_timeout)"
                )
            await asyncio.sleep(WAIT_STEP)
        if conn is None:
            try:
                conn = self._pool.connection_class(**self._pool.connection_kwargs)
            except BaseException:
                async with self._lock:
                    self._open -= 1
                raise
        try:
            await conn.connect()  # a no-op when connected
            try:
                stale = await _check(conn)()
            except (RedisConnectionError, RedisTimeoutError, OSError):
                stale = True
            if stale:  # a reply nobody read, or the server closed it while idle
                await conn.disconnect()
                await conn.connect()
        except BaseException:
            await self.put(conn, broken=True)
            raise
        return conn

    async def put(self, conn: Any, *, broken: bool = False) -> None:
        """Give back a connection from :meth:`get`; ``broken`` disconnects it first."""
        if broken or self._closed:
            await conn.disconnect()
        async with self._lock:
            if self._pid != os.getpid():
                return  # taken before a fork: not this process's to keep
            if self._closed:
                self._open -= 1
                return
            self._idle.append(conn)

    async def aclose(self) -> None:
        """Disconnect the idle connections; those in use are disconnected when put back."""
        async with self._lock:
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._closed = True
        for conn in idle:
            await conn.disconnect()


def _check(conn: Any) -> Any:
    # redis-py 8 names it can_read in both APIs; the asyncio API of redis-py 5-7 has only
    # can_read_destructive (the same check), which redis-py 8 deprecates.
    return getattr(conn, "can_read", None) or conn.can_read_destructive
