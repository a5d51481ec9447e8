"""rmem on a plain Redis 7 without the search module (Debian's redis-server 7.0).

The server comes from :mod:`tests._plain_redis` (fetched once per machine); without one, these
tests run on the embedded Redis 8.2 started without its modules and the version test skips.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

import rmem
from rmem._lua import all_scripts
from rmem.server import EmbeddedRedis
from tests._plain_redis import PlainRedis, plain_redis_binary, why_unavailable


@pytest.fixture(scope="module")
def plain() -> PlainRedis | None:
    return plain_redis_binary()


@pytest.fixture(scope="module")
def server(plain: PlainRedis | None) -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(redis_server=plain.path if plain else None, modules=False) as started:
        yield started


@pytest.fixture
def raw(server: EmbeddedRedis) -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(server.url)
    yield conn
    conn.close()


def test_server_is_the_plain_redis_found(plain: PlainRedis | None, raw: redis.Redis) -> None:
    if plain is None:
        pytest.skip(f"no plain Redis 6/7 ({why_unavailable()}); ran Redis 8.2 without modules")
    version = str(raw.info("server")["redis_version"])
    assert version == plain.version, plain.describe()
    if plain.source in ("cache", "download"):  # Debian bookworm's package
        assert version.startswith("7."), plain.describe()


def test_search_module_is_absent(raw: redis.Redis) -> None:
    with pytest.raises(redis.ResponseError, match=r"(?i)unknown command"):
        raw.execute_command("FT._LIST")  # type: ignore[no-untyped-call]  # untyped in redis-py


def test_every_lua_script_compiles(raw: redis.Redis) -> None:
    """SCRIPT LOAD of every script in lua/, including those no test below runs yet."""
    failed = {}
    for script in all_scripts():
        try:
            raw.script_load(script.source)
        except redis.ResponseError as exc:
            failed[script.name] = str(exc)
    assert not failed


def test_session_round_trip(server: EmbeddedRedis) -> None:
    with rmem.Client.from_url(server.url, namespace="x") as client:
        session = client.session("s")
        session.append({"role": "user", "content": "hi"})
        messages = session.messages()
        assert [(m.role, m.content) for m in messages] == [("user", "hi")]
        assert client.health().search is False


def test_every_session_script_runs(server: EmbeddedRedis) -> None:
    """Each of rmem's Lua scripts runs once, so one needing Redis 7.4+/8 fails here."""
    with rmem.Client.from_url(server.url, namespace="every-script") as client:
        session = client.session("a", ttl=60, sliding=True)
        first = session.append({"role": "user", "content": "one", "id": "m1"})  # session_append
        session.append({"role": "user", "content": "one", "id": "m1"})  # deduplicated
        session.extend([{"role": "assistant", "content": "two"}, {"role": "user", "content": "3"}])
        assert session.messages(last=3)[0].id == first.id  # session_touch
        assert session.info().message_count == 3  # session_read
        assert session.pop() is not None  # session_pop
        assert session.touch()
        assert session.expire(None)  # session_expire
        assert session.clear() == 2  # session_clear
        client.session("b").append({"role": "user", "content": "b"})
        assert client.session("b").delete()  # session_delete, then sessions_prune
        assert client.sessions() == ["a"]
