"""Fault injection for the fallback tests: a TCP proxy that breaks the link to Redis, and
controls that crash, freeze and restart a Redis process.

Network faults (:class:`FaultProxy`, put between a client and any Redis server):

- ``drop()``: every connection is reset and new ones are reset on accept, so clients fail fast
  with ``ConnectionError``, as when the server is gone.
- ``reset_connections()``: every open connection is reset once; new ones work, so a client
  that reconnects recovers, as after a Redis restart or a load-balancer idle cut.
- ``blackhole()``: connections stay open and nothing moves, so clients block until their own
  socket timeout, as with a half-open link or a dead peer behind a firewall.
- ``latency(seconds)``: every chunk waits that long in each direction, in order.
- ``heal()``: back to normal forwarding.

Process faults (:func:`sigkill`, :func:`sigstop`, :func:`sigcont`, :func:`restart`,
:func:`restart_empty`) act on a private :class:`~rmem.server.EmbeddedRedis` made by
:func:`start_redis`; never use them on the shared ``redis_server`` fixture.

Example::

    with start_redis() as server, FaultProxy.in_front_of(server) as proxy:
        client = redis.Redis.from_url(proxy.url, socket_timeout=0.5)
        proxy.blackhole()  # client.ping() now raises redis.TimeoutError
        proxy.heal()
"""

from __future__ import annotations

import collections
import contextlib
import errno
import os
import selectors
import shutil
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Literal, Self, cast

from rmem.server import EmbeddedRedis

__all__ = [
    "AOF_DIR_NAME",
    "FaultProxy",
    "restart",
    "restart_empty",
    "sigcont",
    "sigkill",
    "sigstop",
    "start_redis",
]

CHUNK_SIZE = 65536
# Bytes queued in one direction before the proxy stops reading the sender: a slow or
# blackholed reader must push back on the writer instead of growing memory without bound.
HIGH_WATER = 1 << 20
LISTEN_BACKLOG = 1024
CONTROL_TIMEOUT = 5.0
# Redis 7+ keeps the AOF in this subdirectory of --dir (the default ``appenddirname``).
AOF_DIR_NAME = "appendonlydir"
RDB_FILE_NAME = "dump.rdb"

_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE
_CONNECTING = (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN)

_Mode = Literal["forward", "drop", "blackhole"]


def _abort(sock: socket.socket) -> None:
    # SO_LINGER 0 turns close() into an RST: the peer's next call fails at once instead of
    # reading a clean EOF it might mistake for the end of a reply.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class _Pipe:
    """One direction of a link: chunks read from ``src``, each with the time it may leave."""

    __slots__ = ("blocked", "dst", "eof", "link", "queue", "queued", "src")

    def __init__(self, link: _Link, src: socket.socket, dst: socket.socket) -> None:
        self.link = link
        self.src = src
        self.dst = dst
        self.queue: collections.deque[tuple[float, memoryview]] = collections.deque()
        self.queued = 0
        self.eof = False  # src closed its side; close the link once the queue drains
        self.blocked = False  # dst's send buffer is full; wait for it to become writable


class _Link:
    """A client connection and the upstream connection it is forwarded to."""

    __slots__ = ("blackholed", "client", "closed", "connected", "down", "up", "upstream")

    def __init__(self, client: socket.socket, upstream: socket.socket | None) -> None:
        self.client = client
        self.upstream = upstream
        self.connected = False
        self.blackholed = upstream is None
        self.closed = False
        # A blackholed link opened during blackhole() has no upstream and so no pipes.
        self.up = _Pipe(self, client, upstream) if upstream is not None else None
        self.down = _Pipe(self, upstream, client) if upstream is not None else None


class FaultProxy:
    """A loopback TCP proxy in front of a Redis server whose link can be broken on demand.

    It listens on ``127.0.0.1`` on an ephemeral port from construction on (connections made
    before :meth:`start` wait in the backlog) and forwards each client connection to its own
    upstream connection from one background thread (``selectors``, ``TCP_NODELAY`` both
    ways). Healthy forwarding adds roughly 0.1 ms per round trip.

    The fault methods are synchronous: when they return, the proxy already acts on them
    (connections are closed, the mode applies to the next byte and the next accept). They
    are safe to call from any thread.

    Closing: an EOF from either side closes the link gracefully once the bytes already read
    were forwarded; a reset from either side, a failed upstream connect (the server is down)
    and the faults themselves reset the client connection (RST), so clients fail fast.

    Args:
        target_host: the Redis server's address.
        target_port: the Redis server's port.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self._family = socket.AF_INET6 if ":" in target_host else socket.AF_INET
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(LISTEN_BACKLOG)
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._interest: dict[socket.socket, int] = {}
        self._links: set[_Link] = set()
        self._waiting: set[_Pipe] = set()  # pipes whose head chunk is delayed by latency()
        self._mode: _Mode = "forward"
        self._latency = 0.0
        self._accepted = 0
        self._controls: collections.deque[tuple[Callable[[], None], threading.Event]] = (
            collections.deque()
        )
        self._stopping = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    @classmethod
    def in_front_of(cls, server: EmbeddedRedis) -> FaultProxy:
        """A (not yet started) proxy for a started :class:`EmbeddedRedis`."""
        if server.port is None:
            raise ValueError("start the server first: its port is not known yet")
        return cls(server.host, server.port)

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``: the proxy's URL for database 0."""
        return self.url_for(0)

    def url_for(self, db: int = 0) -> str:
        """The proxy's URL for database ``db``."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    @property
    def connections(self) -> int:
        """Client connections open right now (forwarded or blackholed)."""
        return len(self._links)

    @property
    def accepted(self) -> int:
        """Client connections accepted since construction, those reset by drop() included."""
        return self._accepted

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Self:
        """Start forwarding in a daemon thread; a no-op when already started.

        Raises:
            RuntimeError: the proxy was stopped; make a new one.
        """
        if self._stopping:
            raise RuntimeError("this FaultProxy is stopped; create a new one")
        if self._thread is None:
            self._selector.register(self._listener, _READ)
            self._selector.register(self._wake_r, _READ)
            self._thread = threading.Thread(
                target=self._run, name=f"FaultProxy:{self.port}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Reset every connection, close the listener and join the thread; idempotent."""
        if self._closed:
            return
        if self._thread is not None and self._thread.is_alive():
            self._call(self._request_stop)
            self._thread.join(CONTROL_TIMEOUT)
        self._stopping = True
        self._closed = True
        self._shutdown()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        latency = f" +{self._latency * 1000:g}ms" if self._latency else ""
        return (
            f"<FaultProxy 127.0.0.1:{self.port} -> {self.target_host}:{self.target_port} "
            f"{self._mode}{latency} connections={self.connections}>"
        )

    # -- faults ------------------------------------------------------------------------

    def drop(self) -> None:
        """Reset every open connection and reset new ones on accept until :meth:`heal`."""
        self._call(self._do_drop)

    def reset_connections(self) -> None:
        """Reset every open connection once; new connections are forwarded normally."""
        self._call(self._abort_all)

    def blackhole(self) -> None:
        """Stop forwarding in both directions; existing and new connections stay open.

        Bytes that arrive meanwhile are discarded, so a blackholed connection can never carry
        a valid stream again: :meth:`heal` closes it.
        """
        self._call(self._do_blackhole)

    def latency(self, seconds: float) -> None:
        """Hold every chunk ``seconds`` in each direction (a round trip gains twice that).

        Order is kept: lowering the latency never lets a chunk overtake an earlier one.

        Raises:
            ValueError: ``seconds`` is negative.
        """
        if seconds < 0:
            raise ValueError(f"latency must be >= 0, not {seconds}")

        def apply() -> None:
            self._latency = float(seconds)

        self._call(apply)

    def heal(self) -> None:
        """Forward normally again without latency; closes (resets) blackholed connections.

        Connections that were only delayed keep their queued chunks, which still leave at
        their scheduled time; dropped ones are gone already.
        """
        self._call(self._do_heal)

    # -- control plumbing (the caller's thread) ----------------------------------------

    def _call(self, fn: Callable[[], None]) -> None:
        thread = self._thread
        if thread is None or not thread.is_alive() or thread is threading.current_thread():
            if self._failure is not None:
                raise RuntimeError("the FaultProxy thread died") from self._failure
            fn()  # no loop to race with
            return
        done = threading.Event()
        self._controls.append((fn, done))
        with contextlib.suppress(BlockingIOError):
            self._wake_w.send(b"\0")
        if not done.wait(CONTROL_TIMEOUT):
            if self._failure is not None:
                raise RuntimeError("the FaultProxy thread died") from self._failure
            raise RuntimeError(f"the FaultProxy thread did not answer in {CONTROL_TIMEOUT}s")

    # -- the loop (the proxy's thread) -------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stopping:
                for key, mask in self._selector.select(self._next_timeout()):
                    if key.fileobj is self._listener:
                        self._accept()
                    elif key.fileobj is self._wake_r:
                        self._run_controls()
                    else:
                        self._on_event(key.data, cast(socket.socket, key.fileobj), mask)
                if self._waiting:
                    self._release_due()
        except BaseException as exc:
            self._failure = exc
            raise
        finally:
            self._run_controls()  # release callers waiting on a control that will not run

    def _request_stop(self) -> None:
        self._stopping = True

    def _run_controls(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self._wake_r.recv(4096):
                pass
        while self._controls:
            fn, done = self._controls.popleft()
            try:
                if self._failure is None:
                    fn()
            finally:
                done.set()

    def _shutdown(self) -> None:
        self._abort_all()
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()
        self._selector.close()

    def _next_timeout(self) -> float | None:
        if not self._waiting:
            return None
        due = min(pipe.queue[0][0] for pipe in self._waiting)
        return max(0.0, due - time.monotonic())

    def _release_due(self) -> None:
        now = time.monotonic()
        for pipe in [p for p in self._waiting if p.queue[0][0] <= now]:
            link = pipe.link
            if not link.closed:
                self._flush(pipe)
                self._refresh(link)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # EMFILE and friends: the client sees a refused or stalled connect
            self._accepted += 1
            if self._mode == "drop":
                _abort(client)
                continue
            client.setblocking(False)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._mode == "blackhole":
                link = _Link(client, None)
            else:
                upstream = socket.socket(self._family, socket.SOCK_STREAM)
                upstream.setblocking(False)
                upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                link = _Link(client, upstream)
                err = upstream.connect_ex((self.target_host, self.target_port))
                if err == 0:
                    link.connected = True
                elif err not in _CONNECTING:
                    _abort(client)
                    upstream.close()
                    continue
            self._links.add(link)
            self._refresh(link)

    def _on_event(self, link: _Link, sock: socket.socket, mask: int) -> None:
        if link.closed:
            return  # closed by an earlier event of the same select() batch
        if sock is link.upstream and not link.connected:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self._close(link, abort=True)  # the server is down: fail the client fast
                return
            link.connected = True
            if link.up is not None:
                self._flush(link.up)
        else:
            if mask & _READ:
                self._read(link, sock)
            outbound = link.up if sock is link.upstream else link.down
            if mask & _WRITE and not link.closed and outbound is not None:
                self._flush(outbound)
        self._refresh(link)

    def _read(self, link: _Link, sock: socket.socket) -> None:
        try:
            data = sock.recv(CHUNK_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(link, abort=True)
            return
        if link.blackholed:
            if not data:
                self._close(link, abort=False)
            return  # swallowed: nothing crosses a blackhole
        pipe = link.up if sock is link.client else link.down
        assert pipe is not None  # only blackholed links lack pipes
        if not data:
            pipe.eof = True
        else:
            # Only the head of this FIFO is ever sent, so a chunk queued after the latency
            # dropped still waits behind an earlier, longer-held one: order is kept.
            pipe.queue.append((time.monotonic() + self._latency, memoryview(data)))
            pipe.queued += len(data)
        self._flush(pipe)

    def _flush(self, pipe: _Pipe) -> None:
        link = pipe.link
        if pipe is link.up and not link.connected:
            return  # sent once the upstream connect completes
        pipe.blocked = False
        now = time.monotonic()
        queue = pipe.queue
        while queue:
            release, data = queue[0]
            if release > now:
                break
            try:
                sent = pipe.dst.send(data)
            except (BlockingIOError, InterruptedError):
                pipe.blocked = True
                break
            except OSError:
                self._close(link, abort=True)
                return
            pipe.queued -= sent
            if sent < len(data):
                queue[0] = (release, data[sent:])
                pipe.blocked = True
                break
            queue.popleft()
        if queue and not pipe.blocked:
            self._waiting.add(pipe)
        else:
            self._waiting.discard(pipe)
        if pipe.eof and not queue:
            self._close(link, abort=False)

    def _refresh(self, link: _Link) -> None:
        # Register exactly the events that can make progress, so select() never spins on a
        # socket that is writable but has nothing due, or readable while its queue is full.
        if link.closed:
            return
        if link.up is None or link.down is None or link.upstream is None or link.blackholed:
            self._watch(link, link.client, _READ)
            if link.upstream is not None:
                self._watch(link, link.upstream, _READ if link.connected else _WRITE)
            return
        self._watch(link, link.client, self._events(link.up, link.down))
        upstream = self._events(link.down, link.up) if link.connected else _WRITE
        self._watch(link, link.upstream, upstream)

    @staticmethod
    def _events(inbound: _Pipe, outbound: _Pipe) -> int:
        events = 0
        if not inbound.eof and inbound.queued < HIGH_WATER:
            events |= _READ
        if outbound.blocked:
            events |= _WRITE
        return events

    def _watch(self, link: _Link, sock: socket.socket, events: int) -> None:
        current = self._interest.get(sock, 0)
        if events == current:
            return
        if current == 0:
            self._selector.register(sock, events, link)
        elif events == 0:
            self._selector.unregister(sock)
        else:
            self._selector.modify(sock, events, link)
        if events:
            self._interest[sock] = events
        else:
            del self._interest[sock]

    def _close(self, link: _Link, *, abort: bool) -> None:
        if link.closed:
            return
        link.closed = True
        self._links.discard(link)
        for pipe in (link.up, link.down):
            if pipe is not None:
                self._waiting.discard(pipe)
        for sock in (link.client, link.upstream):
            if sock is None:
                continue
            if self._interest.pop(sock, 0):
                self._selector.unregister(sock)
            if abort:
                _abort(sock)
            else:
                sock.close()

    def _abort_all(self) -> None:
        for link in list(self._links):
            self._close(link, abort=True)

    def _do_drop(self) -> None:
        self._mode = "drop"
        self._abort_all()

    def _do_blackhole(self) -> None:
        self._mode = "blackhole"
        for link in self._links:
            link.blackholed = True
            for pipe in (link.up, link.down):
                if pipe is not None:
                    pipe.queue.clear()
                    pipe.queued = 0
                    pipe.blocked = False
                    self._waiting.discard(pipe)
            self._refresh(link)

    def _do_heal(self) -> None:
        self._mode = "forward"
        self._latency = 0.0
        for link in [link for link in self._links if link.blackholed]:
            self._close(link, abort=True)


# -- Redis process controls ----------------------------------------------------------------


def start_redis(
    port: int | None = None,
    *,
    appendonly: bool = False,
    dir: Path | None = None,
    appendfsync: Literal["always", "everysec"] = "always",
    modules: bool = False,
) -> EmbeddedRedis:
    """Start a private Redis for a test that crashes, freezes or restarts it.

    Close it with ``server.close()`` or use it as a context manager. It keeps its port and
    directory across :func:`restart`. Call it from a thread that outlives the server (the
    test's own thread): on Linux the server is killed when the thread that started it exits.

    Args:
        port: fixed TCP port; ``None`` picks a free one.
        appendonly: enable the AOF so data survives :func:`sigkill` and :func:`restart`.
        dir: data directory, kept afterwards; ``None`` uses a temp dir removed on close.
        appendfsync: AOF fsync policy; ``"always"`` loses nothing to a SIGKILL.
        modules: load RediSearch and RedisJSON (slower to start; off for plain fault tests).

    Raises:
        rmem.ServerError: the server could not start.
    """
    server = EmbeddedRedis(
        port=port,
        persistence="aof" if appendonly else "none",
        appendfsync=appendfsync,
        modules=modules,
        dir=dir,
    )
    return server.start()


def sigkill(server: EmbeddedRedis) -> None:
    """Crash the server with SIGKILL and reap it: no shutdown, no final AOF flush."""
    server.kill()


def sigstop(server: EmbeddedRedis) -> None:
    """Freeze the server with SIGSTOP: the kernel still accepts connections, nothing answers."""
    server.pause()


def sigcont(server: EmbeddedRedis) -> None:
    """Thaw a server frozen by :func:`sigstop`."""
    server.resume()


def restart(server: EmbeddedRedis, *, crash: bool = False) -> EmbeddedRedis:
    """Restart the server on the same port and directory.

    With AOF the data comes back; without persistence the server comes back empty.

    Args:
        crash: SIGKILL a running server instead of shutting it down gracefully.
    """
    if crash:
        server.kill()
    return server.restart()


def restart_empty(server: EmbeddedRedis) -> EmbeddedRedis:
    """Crash the server, delete its AOF and RDB files, and start it empty on the same port.

    Only the default file names (``appendonlydir/`` and ``dump.rdb`` in ``server.dir``) are
    removed; the log is kept.
    """
    server.kill()
    shutil.rmtree(os.path.join(server.dir, AOF_DIR_NAME), ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(server.dir, RDB_FILE_NAME))
    return server.start()
