"""The sync thread's pub/sub connection: subscribe, ping, and read what the server pushes.

A process that writes receives its own hints: one pub/sub message per write it makes. Read
through redis-py's ``PubSub.get_message``, each message cost the sync thread ~150 µs of CPU
on the project's 2-core VM (two or three ``poll`` calls, a peeking ``recv`` to check the
socket is open, two ``settimeout`` calls and the Python around them), and that thread holds
the GIL the writing thread needs next. :class:`SocketSubscription` reads the socket itself:
one ``poll`` that waits, one ``recv_into``, replies parsed by hiredis (``redis[hiredis]`` is
a dependency of rmem). The connection is still made by redis-py, from the client's own
connection settings, so TLS, AUTH, a database number and a client name apply unchanged; only
the reading is rmem's (docs/decisions.md, decision 35).

A client on fakeredis (local mode) has no socket: :class:`PubSubSubscription` serves it
through redis-py's ``PubSub``, with the same interface.
"""

from __future__ import annotations

import select
import ssl
from collections.abc import Callable
from typing import Any, Protocol

import hiredis
import redis

# (kind, channel, data): kind is "message", "subscribe" or "pong" (other kinds pass as read).
Pushed = tuple[str, bytes, Any]

_KINDS = {b"message": "message", b"subscribe": "subscribe", b"pong": "pong"}
_BUFFER = 65536


class Subscription(Protocol):
    def subscribe(self, *channels: str) -> None: ...
    def ping(self) -> None: ...
    def read(self, timeout: float) -> list[Pushed]: ...
    def close(self) -> None: ...


def open_subscription(redis_client: Any, *, fake: bool = False) -> Subscription:
    """A connected subscription made with ``redis_client``'s connection settings.

    ``fake``: ``redis_client`` is a fakeredis client (it has no socket to read).
    """
    if fake:
        return PubSubSubscription(redis_client.pubsub())
    pool = redis_client.connection_pool
    return SocketSubscription(pool.connection_class(**pool.connection_kwargs))


class SocketSubscription:
    """A redis-py connection whose pushed replies rmem reads from the socket with hiredis."""

    def __init__(self, connection: Any) -> None:  # a redis-py Connection (untyped)
        self._connection = connection
        connection.connect()
        sock = getattr(connection, "_sock", None)
        if sock is None:
            connection.disconnect()
            raise redis.ConnectionError("the pub/sub connection has no socket to read")
        self._sock = sock
        self._tls = isinstance(sock, ssl.SSLSocket)
        self._ready = _waiter(sock)
        self._reader = hiredis.Reader()
        self._buffer = bytearray(_BUFFER)
        self._view = memoryview(self._buffer)

    def subscribe(self, *channels: str) -> None:
        self._connection.send_command("SUBSCRIBE", *channels)

    def ping(self) -> None:
        self._connection.send_command("PING")

    def read(self, timeout: float) -> list[Pushed]:
        """What the server pushed, waiting up to ``timeout`` seconds for the first of it."""
        pushed = self._parsed()
        if pushed:
            return pushed
        if not (self._tls and self._sock.pending()) and not self._ready(timeout):
            return pushed
        try:
            n = self._sock.recv_into(self._buffer)
        except (OSError, ValueError) as exc:
            raise redis.ConnectionError(f"the pub/sub connection failed: {exc}") from exc
        if n == 0:
            raise redis.ConnectionError("the server closed the pub/sub connection")
        self._reader.feed(self._view, 0, n)  # type: ignore[arg-type]  # takes any buffer
        return self._parsed()

    def _parsed(self) -> list[Pushed]:
        pushed: list[Pushed] = []
        reader = self._reader
        while (reply := reader.gets()) is not False:
            if isinstance(reply, hiredis.ReplyError):
                raise redis.ResponseError(str(reply))
            if reply == b"PONG":  # a PING's answer on a RESP3 connection
                pushed.append(("pong", b"", reply))
                continue
            if not isinstance(reply, list) or len(reply) < 2:
                raise redis.ConnectionError(f"unexpected pub/sub reply {reply!r}")
            kind = reply[0]
            pushed.append((_KINDS.get(kind) or kind.decode(errors="replace"), reply[1], reply[-1]))
        return pushed

    def close(self) -> None:
        self._connection.disconnect()


def _waiter(sock: Any) -> Callable[[float], bool]:
    """A function that waits up to its argument, in seconds, for ``sock`` to be readable."""
    if hasattr(select, "poll"):
        poll = select.poll()
        poll.register(sock.fileno(), select.POLLIN)
        return lambda timeout: bool(poll.poll(timeout * 1000))
    return lambda timeout: bool(select.select([sock], [], [], timeout)[0])  # no poll: Windows


class PubSubSubscription:
    """redis-py's ``PubSub`` behind the same interface (for fakeredis, which has no socket)."""

    def __init__(self, pubsub: Any) -> None:
        self._pubsub = pubsub

    def subscribe(self, *channels: str) -> None:
        self._pubsub.subscribe(*channels)

    def ping(self) -> None:
        self._pubsub.ping()

    def read(self, timeout: float) -> list[Pushed]:
        pushed: list[Pushed] = []
        message = self._pubsub.get_message(timeout=timeout)
        while message is not None:
            pushed.append((message["type"], message["channel"], message["data"]))
            message = self._pubsub.get_message(timeout=0)
        return pushed

    def close(self) -> None:
        self._pubsub.close()
