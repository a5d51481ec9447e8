"""rmem's own connection stack (rmem/_async/_connections.py, docs/decisions.md 27).

Connections are reused, at most ``pool_size`` are open and callers beyond that wait up to
``pool_timeout``; a connection the server closed while idle is replaced without the caller
noticing; ``close()`` disconnects them; a forked child opens its own.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

import pytest
import redis

import rmem
from tests.conftest import Api


def _named(raw: redis.Redis, name: str) -> list[dict[str, Any]]:
    return [c for c in raw.client_list() if c.get("name") == name]


def _client(api: Api, name: str, **options: Any) -> Any:
    # client_name reaches every connection rmem makes (CLIENT SETNAME in the handshake).
    url = f"{api.url}{'&' if '?' in api.url else '?'}client_name={name}"
    options.setdefault("sync", False)
    options.setdefault("namespace", api.namespace)
    if api.flavour == "async":
        from tests.conftest import AsyncDriver

        assert api._loop is not None
        made: Any = AsyncDriver(rmem.AsyncClient.from_url(url, **options), api._loop)
    else:
        made = rmem.Client.from_url(url, **options)
    api._clients.append(made)
    return made


def test_one_connection_serves_calls_one_after_another(api: Api, raw: redis.Redis) -> None:
    c = _client(api, "seq")
    s = c.session("s")
    for i in range(20):
        s.append({"role": "user", "content": i})
        s.messages(last=2)
        s.info()
    assert len(_named(raw, "seq")) == 1


def test_close_disconnects(api: Api, raw: redis.Redis) -> None:
    c = _client(api, "closing")
    c.session("s").append({"role": "user"})
    assert len(_named(raw, "closing")) == 1
    c.close()
    deadline = time.monotonic() + 5
    while _named(raw, "closing") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _named(raw, "closing") == []


def test_a_connection_the_server_closed_is_replaced(api: Api, raw: redis.Redis) -> None:
    c = _client(api, "killed")
    s = c.session("s")
    s.append({"role": "user", "content": "before"})
    (victim,) = _named(raw, "killed")
    raw.client_kill_filter(_id=victim["id"])
    # Let the close reach the client's socket (an async client's event loop runs meanwhile,
    # as it does in an application between two calls).
    if api._loop is not None:
        api._loop.run_until_complete(asyncio.sleep(0.05))
    else:
        time.sleep(0.05)
    s.append({"role": "user", "content": "after"})
    assert [m.content for m in s.messages()] == ["before", "after"]
    assert c.health().state == "connected"


def test_pool_size_bounds_the_connections_and_callers_wait(
    redis_url: str, namespace: str, raw: redis.Redis
) -> None:
    url = f"{redis_url}?client_name=bounded"
    with rmem.Client.from_url(url, namespace=namespace, sync=False, pool_size=2) as c:
        errors: list[BaseException] = []
        peak = [0]
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], len(_named(raw, "bounded")))
                time.sleep(0.002)

        def work(i: int) -> None:
            try:
                s = c.session(f"s{i}")
                for j in range(30):
                    s.append({"role": "user", "content": j})
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        watcher = threading.Thread(target=watch)
        watcher.start()
        workers = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        stop.set()
        watcher.join()
        assert errors == []
        assert 1 <= peak[0] <= 2
        assert all(c.session(f"s{i}").count() == 30 for i in range(8))


def test_a_caller_waits_at_most_pool_timeout(redis_url: str, namespace: str) -> None:
    with rmem.Client.from_url(
        redis_url, namespace=namespace, sync=False, fallback=False, pool_size=1, pool_timeout=0.2
    ) as c:
        c.session("s").append({"role": "user"})
        held = c._backend._connections.get()  # the only connection, taken
        try:
            start = time.monotonic()
            with pytest.raises(rmem.UnavailableError, match="No connection available"):
                c.session("s").append({"role": "user"})
            assert 0.2 <= time.monotonic() - start < 2
        finally:
            c._backend._connections.put(held)
        c.session("s").append({"role": "user"})  # free again
        assert c.session("s").count() == 2


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_full_pool_raises_and_never_engages_the_fallback(
    redis_url: str, namespace: str, flavour: str
) -> None:
    # More calls in flight than pool_size is the client's own load, not Redis down: serving
    # them locally would hide writes from every other instance until a replay.
    options = {"namespace": namespace, "sync": False, "pool_size": 1, "pool_timeout": 0.2}
    if flavour == "sync":
        c = rmem.Client.from_url(redis_url, **options)
        s = c.session("s")
        s.append({"role": "user"})
        held = c._backend._connections.get()  # the only connection, taken
        with pytest.raises(rmem.PoolTimeoutError, match="pool_size"):
            s.append({"role": "user", "content": "refused"})
        assert c._backend.degraded is False
        c._backend._connections.put(held)
        s.append({"role": "user", "content": "after"})
        assert [m.content for m in s.messages()] == [None, "after"]
        c.close()
        return

    async def scenario() -> None:
        async with rmem.AsyncClient.from_url(redis_url, **options) as ac:
            s = ac.session("s")
            await s.append({"role": "user"})
            held = await ac._backend._connections.get()
            with pytest.raises(rmem.PoolTimeoutError, match="pool_size"):
                await s.append({"role": "user", "content": "refused"})
            assert ac._backend.degraded is False
            await ac._backend._connections.put(held)
            await s.append({"role": "user", "content": "after"})
            assert [m.content for m in await s.messages()] == [None, "after"]

    asyncio.run(scenario())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_opens_its_own_connection(
    redis_url: str, namespace: str, raw: redis.Redis
) -> None:
    url = f"{redis_url}?client_name=forking"
    with rmem.Client.from_url(url, namespace=namespace, sync=False, fallback=False) as c:
        s = c.session("s")
        s.append({"role": "user", "content": "parent"})
        pid = os.fork()
        if pid == 0:  # the child: must not use the parent's socket
            code = 1
            try:
                s.append({"role": "user", "content": "child"})
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        s.append({"role": "user", "content": "parent again"})
        assert [m.content for m in s.messages()] == ["parent", "child", "parent again"]


def test_commands_are_packed_as_redis_py_packs_them() -> None:
    from rmem._sync._backend import _pack

    conn = redis.Connection(protocol=3)
    commands = [
        ("EVALSHA", "a" * 40, 1, "k", b"\x00\xffbytes", -1, 2**63, 0.1, "é"),
        ["ZRANGE", "k", -20, -1],
    ]
    assert b"".join(_pack(conn, commands)) == b"".join(conn.pack_commands(commands))
    with pytest.raises(redis.DataError):  # what redis-py raises for an argument it refuses
        _pack(conn, [("SET", "k", None)])  # type: ignore[list-item]
