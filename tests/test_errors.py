"""Failures users can meet: unreachable Redis, damaged data. Never a raw redis-py exception."""

from __future__ import annotations

import socket

import pytest
import redis

import rmem
from rmem._keys import session_keys
from rmem.server import EmbeddedRedis


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_redis_raises_unavailable_naming_the_host() -> None:
    # fallback=False: no local store, every call raises.
    port = _closed_port()
    with rmem.Client.from_url(
        f"redis://127.0.0.1:{port}/0", connect_timeout=0.5, fallback=False
    ) as c:
        s = c.session("x")
        with pytest.raises(rmem.UnavailableError, match=f"127.0.0.1:{port}") as info:
            s.append({"role": "user"})
        assert isinstance(info.value, rmem.RmemError)
        assert not isinstance(info.value, redis.RedisError)
        assert info.value.session == "x"
        with pytest.raises(rmem.UnavailableError):
            s.messages()
        with pytest.raises(rmem.UnavailableError):
            c.sessions()
        health = c.health()
        assert health.state == "degraded"
        assert health.pending_writes == 0
        assert health.last_error is not None and str(port) in health.last_error


def test_password_is_not_shown_in_errors() -> None:
    port = _closed_port()
    with rmem.Client.from_url(f"redis://user:s3cret@127.0.0.1:{port}/0", fallback=False) as c:
        with pytest.raises(rmem.UnavailableError) as info:
            c.session("x").count()
        assert "s3cret" not in str(info.value)
        assert "s3cret" not in repr(c)


def test_paused_server_times_out_as_unavailable() -> None:
    with (
        EmbeddedRedis(modules=False) as server,
        rmem.Client.from_url(server.url, socket_timeout=0.3, fallback=False) as c,
    ):
        s = c.session("slow")
        s.append({"role": "user"})
        server.pause()
        try:
            with pytest.raises(rmem.UnavailableError):
                s.append({"role": "user"})
            with pytest.raises(rmem.UnavailableError):
                s.messages(last=5)
        finally:
            server.resume()
        # connections that timed out mid-reply are dropped, never reused out of step
        for _ in range(5):
            assert s.count() >= 1
            assert len(s.messages(last=5)) >= 1


def test_corrupt_payload_names_the_key(client: rmem.Client, redis_url: str) -> None:
    s = client.session("damaged")
    s.append({"role": "user", "content": "fine"})
    keys = session_keys(client.namespace, "damaged")
    raw = redis.Redis.from_url(redis_url)
    raw.zadd(keys.msgs, {b"ffffffffffff-000000-0000000000000000bogus\0\x07garbage": 0})
    raw.close()
    with pytest.raises(rmem.CorruptDataError) as info:
        s.messages()
    assert info.value.key == keys.msgs
    assert keys.msgs in str(info.value)
    other = client.session("healthy")
    other.append({"role": "user"})
    assert other.count() == 1  # other sessions stay readable


def test_scripts_are_reloaded_after_script_flush(client: rmem.Client, redis_url: str) -> None:
    s = client.session("flushed")
    s.append({"role": "user"})
    raw = redis.Redis.from_url(redis_url)
    raw.script_flush()
    raw.close()
    s.append({"role": "user"})
    assert s.count() == 2
    raw = redis.Redis.from_url(redis_url)
    raw.script_flush()
    raw.close()
    assert len(s.messages(last=5)) == 2  # the pipelined read path reloads its script too
