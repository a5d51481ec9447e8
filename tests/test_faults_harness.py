"""The fault-injection toolkit does what the fallback tests rely on, proven with redis-py alone.

Proxy tests sit in front of the shared ``redis_server`` (a proxy cannot harm it); tests that
kill, freeze or restart a process start their own server with :func:`start_redis`.
"""

from __future__ import annotations

import contextlib
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from rmem.server import EmbeddedRedis
from tests._faults import (
    AOF_DIR_NAME,
    FaultProxy,
    restart,
    restart_empty,
    sigcont,
    sigkill,
    sigstop,
    start_redis,
)

TIMEOUT = 0.5
# "Fails fast" means well before the socket timeout would have fired.
FAST = TIMEOUT / 2


def _redis(port: int) -> redis.Redis:
    # redis-py 8 retries 10 times with backoff by default, which would hide every fault.
    return redis.Redis(
        port=port,
        socket_timeout=TIMEOUT,
        socket_connect_timeout=TIMEOUT,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )


def _connection(port: int) -> redis.Connection:
    conn = redis.Connection(
        port=port, socket_timeout=TIMEOUT, retry=Retry(NoBackoff(), 0), decode_responses=True
    )
    conn.connect()
    return conn


def _round_trip(conn: redis.Connection, *args: str) -> object:
    conn.send_command(*args)
    return conn.read_response()


def _wait_for(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


@pytest.fixture
def key() -> str:
    return f"faults:{uuid.uuid4().hex[:12]}"


@pytest.fixture
def proxy(redis_server: EmbeddedRedis) -> Iterator[FaultProxy]:
    with FaultProxy.in_front_of(redis_server) as made:
        yield made


@pytest.fixture
def via_proxy(proxy: FaultProxy) -> Iterator[redis.Redis]:
    with _redis(proxy.port) as client:
        assert client.ping() is True
        yield client


@pytest.fixture
def own_server() -> Iterator[EmbeddedRedis]:
    with start_redis() as server:
        yield server


def test_healthy_proxy_forwards_commands_pipelines_and_large_values(
    proxy: FaultProxy, via_proxy: redis.Redis, key: str
) -> None:
    big = "x" * (3 << 20)  # larger than the proxy's high-water mark and socket buffers
    via_proxy.set(key, big)
    assert via_proxy.get(key) == big
    pipe = via_proxy.pipeline(transaction=False)
    for _ in range(200):
        pipe.incr(f"{key}:n")
    assert pipe.execute() == list(range(1, 201))
    assert proxy.url_for(3) == f"redis://127.0.0.1:{proxy.port}/3"
    with redis.Redis.from_url(proxy.url_for(3), decode_responses=True) as db3:
        db3.set(key, "in db 3")
        assert via_proxy.get(key) == big  # db 0 untouched
        db3.delete(key)
    via_proxy.delete(key, f"{key}:n")


def test_healthy_proxy_forwards_pubsub(proxy: FaultProxy, via_proxy: redis.Redis, key: str) -> None:
    pubsub = via_proxy.pubsub()
    try:
        pubsub.subscribe(key)
        confirmation = pubsub.get_message(timeout=TIMEOUT)
        assert confirmation is not None
        assert confirmation["type"] == "subscribe"
        assert via_proxy.publish(key, "hello") == 1
        message = pubsub.get_message(timeout=TIMEOUT)
        assert message is not None
        assert (message["type"], message["data"]) == ("message", "hello")
        assert proxy.connections == 2  # the command connection and the subscriber
    finally:
        pubsub.close()


def test_proxy_serves_many_concurrent_connections(proxy: FaultProxy, key: str) -> None:
    conns = [_connection(proxy.port) for _ in range(64)]
    try:
        _wait_for(lambda: proxy.connections == 64)
        for i, conn in enumerate(conns):  # all 64 requests in flight at once
            conn.send_command("INCRBY", key, i)
        replies = [conn.read_response() for conn in conns]
        assert all(reply >= i for i, reply in enumerate(replies))  # each saw its own INCRBY
        assert max(replies) == sum(range(64))
    finally:
        for conn in conns:
            conn.disconnect()
    _wait_for(lambda: proxy.connections == 0)
    with _redis(proxy.port) as client:
        client.delete(key)


def test_drop_fails_fast_until_heal(proxy: FaultProxy, via_proxy: redis.Redis) -> None:
    proxy.drop()
    assert proxy.connections == 0
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        via_proxy.ping()
    with _redis(proxy.port) as fresh, pytest.raises(redis.ConnectionError):
        fresh.ping()  # new connections are refused too
    assert time.monotonic() - started < FAST
    proxy.heal()
    assert via_proxy.ping() is True


def test_blackhole_times_out_until_heal(
    proxy: FaultProxy, via_proxy: redis.Redis, key: str
) -> None:
    via_proxy.set(key, "before")
    proxy.blackhole()
    assert proxy.connections == 1  # the connection stays open: half-open, not refused
    started = time.monotonic()
    with pytest.raises(redis.TimeoutError):
        via_proxy.get(key)
    assert time.monotonic() - started >= TIMEOUT * 0.9
    with _redis(proxy.port) as fresh, pytest.raises(redis.TimeoutError):
        fresh.ping()  # a new connection is accepted, then nothing answers
    proxy.heal()
    assert via_proxy.get(key) == "before"
    via_proxy.delete(key)


def test_latency_delays_each_direction_and_keeps_order(
    proxy: FaultProxy, via_proxy: redis.Redis, key: str
) -> None:
    delay = 0.05
    proxy.latency(delay)
    started = time.monotonic()
    assert via_proxy.ping() is True
    assert time.monotonic() - started >= 2 * delay  # once on the way in, once on the way out

    # A chunk sent after the latency drops must not overtake one still held: if it did, the
    # GET would reach Redis before the SET and read nothing.
    conn = _connection(proxy.port)
    try:
        proxy.latency(0.2)
        started = time.monotonic()
        conn.send_command("SET", key, "first")
        time.sleep(0.05)  # let the proxy read the SET while the 0.2 s latency applies
        proxy.latency(0)
        conn.send_command("GET", key)
        assert conn.read_response() == "OK"
        assert conn.read_response() == "first"
        assert time.monotonic() - started >= 0.2
    finally:
        conn.disconnect()
    proxy.heal()
    via_proxy.delete(key)


def test_reset_connections_breaks_each_once_then_reconnects(
    proxy: FaultProxy, via_proxy: redis.Redis
) -> None:
    conn = _connection(proxy.port)
    old_id = via_proxy.client_id()
    proxy.reset_connections()
    assert proxy.connections == 0
    try:
        with pytest.raises(redis.ConnectionError):
            _round_trip(conn, "PING")
    finally:
        conn.disconnect()
    # redis-py's pool notices the reset socket before reuse and reconnects by itself; the
    # proxy accepts the new connection normally. Should the reset reach the socket only after
    # the pool's check, the first call fails once instead.
    with contextlib.suppress(redis.ConnectionError):
        via_proxy.ping()
    assert via_proxy.ping() is True
    assert via_proxy.client_id() != old_id
    assert proxy.connections == 1


def test_stopped_proxy_refuses_connections(redis_server: EmbeddedRedis) -> None:
    proxy = FaultProxy.in_front_of(redis_server).start()
    with _redis(proxy.port) as client:
        assert client.ping() is True
        proxy.stop()
        with pytest.raises(redis.ConnectionError):
            client.ping()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT).close()


def test_sigkill_and_restart_with_aof_keep_an_always_fsynced_key(tmp_path: Path, key: str) -> None:
    with (
        start_redis(appendonly=True, dir=tmp_path) as server,
        FaultProxy.in_front_of(server) as proxy,
        _redis(proxy.port) as client,
    ):
        port = server.port
        client.set(key, "durable")
        sigkill(server)
        assert not server.is_running
        started = time.monotonic()
        with pytest.raises(redis.ConnectionError):
            client.ping()  # through the proxy too: a dead server fails fast
        assert time.monotonic() - started < FAST
        restart(server)
        assert server.port == port
        assert client.get(key) == "durable"  # the proxy reaches the restarted server
        assert (tmp_path / AOF_DIR_NAME).is_dir()


def test_restart_without_persistence_comes_back_empty(own_server: EmbeddedRedis, key: str) -> None:
    with _redis(own_server.port or 0) as client:
        client.set(key, "gone")
        restart(own_server)
        assert client.dbsize() == 0
        client.set(key, "gone again")
        restart(own_server, crash=True)
        assert client.dbsize() == 0


def test_restart_empty_discards_aof_data(tmp_path: Path, key: str) -> None:
    with start_redis(appendonly=True, dir=tmp_path) as server, _redis(server.port or 0) as client:
        client.set(key, "durable")
        restart(server, crash=True)
        assert client.get(key) == "durable"
        restart_empty(server)
        assert client.dbsize() == 0
        client.set(key, "new")  # still an AOF server after the wipe
        restart(server, crash=True)
        assert client.get(key) == "new"


def test_sigstop_times_out_and_sigcont_recovers(own_server: EmbeddedRedis, key: str) -> None:
    with _redis(own_server.port or 0) as client:
        client.set(key, "v1")
        sigstop(own_server)
        with pytest.raises(redis.TimeoutError):
            client.set(key, "v2")
        with _redis(own_server.port or 0) as fresh, pytest.raises(redis.TimeoutError):
            fresh.ping()  # the kernel still accepts connections for a frozen server
        sigcont(own_server)
        # redis-py dropped the timed-out connection: a stale "OK" would fail this ECHO.
        assert client.echo("thawed") == "thawed"
        client.set(key, "v3")
        assert client.get(key) == "v3"
