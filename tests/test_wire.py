"""rmem's asyncio send (rmem/_wire.py): redis-py's send, errors and all, without its task.

The timeout and cancellation cases need a write that cannot finish: a Redis of their own is
stopped (SIGSTOP) once the connection is made, so it reads nothing, the kernel's buffers fill
and the write waits, as it would on a server that hangs.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
import redis.asyncio
import redis.exceptions

from rmem._wire import asend_packed, send_packed
from rmem.server import EmbeddedRedis

BIG = [b"x" * (1 << 20)] * 64  # 64 MiB: more than the socket buffers hold
SCRATCH = "test-wire-scratch"  # a plain key for the send test, outside rmem's key schema


@pytest.fixture(scope="module")
def own_redis() -> Iterator[EmbeddedRedis]:
    """A Redis these tests may stop."""
    with EmbeddedRedis(modules=False) as server:
        yield server


@contextmanager
def stopped(server: EmbeddedRedis) -> Iterator[None]:
    """``server`` stopped (it reads and answers nothing) for the block."""
    pid = server.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _conn(url: str, timeout: float = 5) -> redis.asyncio.Connection:
    conn: redis.asyncio.Connection = redis.asyncio.ConnectionPool.from_url(
        url, socket_timeout=timeout
    ).make_connection()
    return conn


def test_commands_sent_on_a_connected_connection_are_answered(redis_url: str) -> None:
    async def main() -> None:
        conn = _conn(redis_url)
        await conn.connect()
        await asend_packed(conn, conn.pack_commands([("SET", SCRATCH, "v"), ("PING",)]))
        assert await conn.read_response() == b"OK"
        assert await conn.read_response() == b"PONG"
        await asend_packed(conn, conn.pack_commands([("GETDEL", SCRATCH)]))
        assert await conn.read_response() == b"v"
        await conn.disconnect()

    asyncio.run(main())


def test_a_connection_not_yet_connected_is_connected_first(redis_url: str) -> None:
    async def main() -> None:
        conn = _conn(redis_url)
        assert not conn.is_connected
        await asend_packed(conn, conn.pack_commands([("PING",)]))
        assert conn.is_connected
        assert await conn.read_response() == b"PONG"
        await conn.disconnect()

    asyncio.run(main())


def test_a_write_past_the_socket_timeout_raises_redis_timeout_and_disconnects(
    own_redis: EmbeddedRedis,
) -> None:
    async def main() -> None:
        conn = _conn(own_redis.url, timeout=0.2)
        await conn.connect()
        loop = asyncio.get_running_loop()
        with stopped(own_redis):
            started = loop.time()
            with pytest.raises(redis.exceptions.TimeoutError, match="Timeout writing to socket"):
                await asend_packed(conn, BIG)
            took = loop.time() - started
        assert 0.15 < took < 5
        assert not conn.is_connected

    asyncio.run(main())


def test_a_cancelled_write_is_cancelled_and_disconnects(own_redis: EmbeddedRedis) -> None:
    async def main() -> None:
        conn = _conn(own_redis.url, timeout=30)
        await conn.connect()
        with stopped(own_redis):
            task = asyncio.create_task(asend_packed(conn, BIG))
            await asyncio.sleep(0.2)
            assert not task.done()  # the write waits on the full buffers
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert not conn.is_connected

    asyncio.run(main())


def test_a_write_on_a_connection_the_server_closed_raises_connection_error(
    redis_url: str,
) -> None:
    async def main() -> None:
        conn = _conn(redis_url)
        await conn.connect()
        await asend_packed(conn, conn.pack_commands([("CLIENT", "ID")]))
        client_id = await conn.read_response()
        killer = redis.asyncio.Redis.from_url(redis_url)
        assert await killer.client_kill_filter(_id=client_id) == 1
        await killer.aclose()
        # The kill reaches this side as EOF, then a reset once it writes again: a write fails
        # within a few tries (the first may still land in the socket's buffer).
        failed: redis.exceptions.ConnectionError | None = None
        for _ in range(50):
            try:
                await asend_packed(conn, conn.pack_commands([("PING",)]))
            except redis.exceptions.ConnectionError as exc:
                failed = exc
                break
            await asyncio.sleep(0.01)
        assert failed is not None
        assert isinstance(failed.__cause__, OSError)
        assert not conn.is_connected

    asyncio.run(main())


def test_the_sync_send_is_redis_py_s(redis_url: str) -> None:
    conn = redis.ConnectionPool.from_url(redis_url).make_connection()
    send_packed(conn, conn.pack_commands([("PING",)]))
    assert conn.read_response() == b"PONG"
    conn.disconnect()
