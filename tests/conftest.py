"""Test harness: one real Redis 8.2 (with RediSearch) per test run, started by rmem itself.

Every test gets its own namespace, so tests never see each other's keys without flushing.
Behavioural tests take the ``api`` fixture and run twice: once on ``rmem.Client`` and once on
``rmem.AsyncClient`` (driven to completion by :class:`AsyncDriver`), so one test body proves
both APIs. A module that sets ``LOCAL_BACKEND = True`` runs its ``api`` and ``mem_api`` tests
on the local backend (``memory://``, the store the fallback uses) as well: one behavioural
suite for both backends.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis as redis_py

import rmem
from rmem.server import EmbeddedRedis
from tests._plain_redis import plain_redis_binary, why_unavailable

_PLAIN_REDIS_USED = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    """The embedded Redis shared by the whole run (RMEM_TEST_URL points tests elsewhere)."""
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture(scope="session")
def redis_url(redis_server: EmbeddedRedis) -> str:
    return os.environ.get("RMEM_TEST_URL") or redis_server.url


@pytest.fixture(scope="session")
def plain_redis_url(
    request: pytest.FixtureRequest, record_testsuite_property: Callable[[str, object], None]
) -> Iterator[str]:
    """A Redis without the search module, for rmem's in-process search path.

    Debian's redis-server 7.0 when it can be found or fetched (see tests/_plain_redis.py),
    otherwise the embedded Redis 8.2 started without its modules. Which one ran is shown at
    the end of the run.
    """
    plain = plain_redis_binary()
    if plain is not None:
        which = plain.describe()
    else:
        which = f"embedded Redis 8.2 without modules (no plain Redis 6/7: {why_unavailable()})"
    request.config.stash[_PLAIN_REDIS_USED] = which
    record_testsuite_property("plain_redis", which)
    with EmbeddedRedis(redis_server=plain.path if plain else None, modules=False) as server:
        yield server.url


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    which = config.stash.get(_PLAIN_REDIS_USED, None)
    if which is not None:
        terminalreporter.write_line(f"plain_redis_url ran on: {which}")


@pytest.fixture
def namespace() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def client(redis_url: str, namespace: str) -> Iterator[rmem.Client]:
    with rmem.Client.from_url(redis_url, namespace=namespace) as c:
        yield c


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis_py.Redis]:
    """A plain redis-py client on the test server, to look at or damage keys directly."""
    conn = redis_py.Redis.from_url(redis_url)
    yield conn
    conn.close()


@pytest.fixture
def pair(redis_url: str, namespace: str) -> Iterator[tuple[rmem.Client, rmem.Client]]:
    """Two instances (own node id, sync thread and replicas each) on one namespace, synced."""
    a = rmem.Client.from_url(redis_url, namespace=namespace)
    b = rmem.Client.from_url(redis_url, namespace=namespace)
    assert a.node_id != b.node_id
    assert a.wait_synced() and b.wait_synced()
    yield a, b
    a.close()
    b.close()


class AsyncDriver:
    """Wraps an async rmem object so its coroutines run to completion on one event loop.

    Methods that return another rmem async object (a session, a namespace view) come back
    wrapped too, so a test written against the sync API drives the async one unchanged.
    """

    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._target = target
        self._loop = loop

    def _wrap(self, value: Any) -> Any:
        if inspect.iscoroutine(value):
            value = self._loop.run_until_complete(value)
        if isinstance(value, rmem.AsyncClient | rmem.AsyncSession | rmem.AsyncMemories):
            return AsyncDriver(value, self._loop)
        return value

    def __getattr__(self, name: str) -> Any:
        if name == "close":
            name = "aclose"
        attr = getattr(self._target, name)
        if isinstance(attr, rmem.AsyncMemories):
            return AsyncDriver(attr, self._loop)
        if not callable(attr):
            return attr
        return lambda *args, **kwargs: self._wrap(attr(*args, **kwargs))

    def __enter__(self) -> AsyncDriver:
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.run_until_complete(self._target.aclose())


class Api:
    """Makes clients of one flavour (sync or async) for a behavioural test."""

    def __init__(
        self, flavour: str, url: str, namespace: str, engine: str = "redisearch", **defaults: Any
    ) -> None:
        self.backend = "memory" if flavour.startswith("memory") else "redis"
        flavour = flavour.removeprefix("memory-")
        if self.backend == "memory":
            url = f"memory://{namespace}"  # named: every client of the test shares one store
        self.flavour = flavour
        self.url = url
        self.namespace = namespace
        self.engine = engine
        self.defaults = defaults
        self._loop = asyncio.new_event_loop() if flavour == "async" else None
        self._clients: list[Any] = []

    def client(self, namespace: str | None = None, **options: Any) -> Any:
        ns = namespace or self.namespace
        options = {**self.defaults, **options}
        if self._loop is None:
            made: Any = rmem.Client.from_url(self.url, namespace=ns, **options)
        else:
            made = AsyncDriver(
                rmem.AsyncClient.from_url(self.url, namespace=ns, **options), self._loop
            )
        self._clients.append(made)
        return made

    def raw(self) -> Any:
        """A plain redis-py client on the store the test's clients use (close it after)."""
        if self.backend == "memory":
            import fakeredis

            from rmem._local import memory_server

            return fakeredis.FakeRedis(server=memory_server(self.url))
        return redis_py.Redis.from_url(self.url)

    def close(self) -> None:
        for made in self._clients:
            made.close()
        if self._loop is not None:
            self._loop.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    local = getattr(metafunc.module, "LOCAL_BACKEND", False)
    if "api" in metafunc.fixturenames:
        flavours = ["sync", "async"] + (["memory-sync", "memory-async"] if local else [])
        metafunc.parametrize("api", flavours, indirect=True)
    if "mem_api" in metafunc.fixturenames:
        engines = MEMORY_ENGINES + (["memory"] if local else [])
        params = [(e, f) for e in engines for f in ("sync", "async")]
        metafunc.parametrize("mem_api", params, indirect=True, ids=[f"{e}-{f}" for e, f in params])


@pytest.fixture
def api(request: pytest.FixtureRequest, redis_url: str, namespace: str) -> Iterator[Api]:
    made = Api(request.param, redis_url, namespace)
    yield made
    made.close()


MEMORY_ENGINES = ["redisearch", "local", "plain"]


@pytest.fixture
def mem_api(request: pytest.FixtureRequest, redis_url: str, namespace: str) -> Iterator[Api]:
    """Clients for the memory behavioural suite, on every search engine and both APIs.

    ``redisearch``: Redis 8.2 with RediSearch; ``local``: the same server with search forced
    in process; ``plain``: a Redis without the search module (Debian's 7.0 when available).
    """
    engine, flavour = request.param
    if engine == "memory":
        made = Api(f"memory-{flavour}", "", namespace, "local")
        yield made
        made.close()
        return
    if engine == "plain":
        url = request.getfixturevalue("plain_redis_url")
        defaults: dict[str, Any] = {"search_engine": "auto"}
    else:
        url = redis_url
        defaults = {"search_engine": engine}
    made = Api(flavour, url, namespace, engine, **defaults)
    yield made
    made.close()
