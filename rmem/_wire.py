"""Sending packed commands on one of the backend's redis-py connections.

redis-py's asyncio connection runs every send through ``asyncio.wait_for`` when it has a
socket timeout (rmem always sets one). On Python 3.11 ``wait_for`` runs the send as a new
task: one more pass of the event loop and ~20 µs of CPU per round trip on this project's VM,
for a write that almost never waits (docs/decisions.md, 39). :func:`asend_packed` makes the
same write in the caller's task, waits (under ``asyncio.timeout``) only when the kernel did
not take all of it, and raises redis-py's errors with its disconnect on failure. The sync
client keeps redis-py's send (a blocking ``sendall``, no extra cost); ``scripts/unasync.py``
maps one name to the other.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


async def asend_packed(conn: Any, packed: list[bytes]) -> None:
    """Write ``packed`` (what ``conn.pack_commands`` gives) on ``conn``, a redis.asyncio
    connection: ``conn.send_packed_command(packed)`` without a task of its own.

    A connection that is not connected, or that has a health check interval, goes through
    redis-py's own send, which connects it or checks it first.

    Raises:
        redis.TimeoutError: the write did not finish within the socket timeout.
        redis.ConnectionError: the write failed.
        Either way, and on a cancellation, the connection is disconnected (as redis-py does)
        and what it had not yet written is dropped: part of the commands may have gone out.
    """
    writer = getattr(conn, "_writer", None)
    if writer is None or conn.health_check_interval:
        await conn.send_packed_command(packed)
        return
    try:
        writer.writelines(packed)
        transport = writer.transport
        # Most writes end here: the transport handed every byte to the kernel at once, so
        # there is nothing to wait for (and no timer to set). Otherwise wait for the rest to
        # go out, or for drain to raise what ended the connection.
        if transport.get_write_buffer_size() or transport.is_closing():
            async with asyncio.timeout(conn.socket_timeout):
                await writer.drain()
    except TimeoutError:  # before OSError: TimeoutError is one
        await _drop(conn, writer)
        raise RedisTimeoutError("Timeout writing to socket") from None
    except OSError as exc:
        await _drop(conn, writer)
        raise RedisConnectionError(f"Error while writing to socket: {exc}") from exc
    except BaseException:
        await _drop(conn, writer)
        raise


async def _drop(conn: Any, writer: Any) -> None:
    # What is still buffered is dropped, not flushed: on a server that hangs, a plain close
    # would keep the socket open until the buffer drains, which may be never.
    writer.transport.abort()
    await conn.disconnect(nowait=True)


def send_packed(conn: Any, packed: list[bytes]) -> None:
    """Write ``packed`` on ``conn``, a redis-py connection (the sync :func:`asend_packed`)."""
    conn.send_packed_command(packed)
