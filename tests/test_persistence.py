"""Sessions live in Redis, not in the process: a new process and a restarted client see them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import rmem
from rmem.server import EmbeddedRedis

ROOT = Path(__file__).resolve().parent.parent


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_message_written_by_one_process_is_read_by_a_new_one(
    redis_url: str, namespace: str
) -> None:
    _run(
        f"""
        import rmem
        with rmem.Client.from_url({redis_url!r}, namespace={namespace!r}) as c:
            c.session("handoff").append({{"role": "user", "content": "from process one"}})
        """
    )
    out = _run(
        f"""
        import rmem
        with rmem.Client.from_url({redis_url!r}, namespace={namespace!r}) as c:
            print(c.session("handoff").messages()[0].content)
            print(c.sessions())
        """
    )
    assert out.splitlines() == ["from process one", "['handoff']"]


def test_session_survives_a_client_restart(redis_url: str, namespace: str) -> None:
    first = rmem.Client.from_url(redis_url, namespace=namespace)
    first.session("restart").extend(
        [{"role": "user", "content": "a"}, {"role": "ai", "content": "b"}]
    )
    first.close()
    second = rmem.Client.from_url(redis_url, namespace=namespace)
    assert [m.content for m in second.session("restart").messages()] == ["a", "b"]
    second.close()


def test_session_survives_a_redis_restart_with_aof() -> None:
    with EmbeddedRedis(persistence="aof", appendfsync="always") as server:
        with rmem.Client.from_url(server.url, namespace="aof") as c:
            c.session("durable", ttl=3600).append({"role": "user", "content": "kept"})
        server.kill()
        server.restart()
        with rmem.Client.from_url(server.url, namespace="aof") as c:
            s = c.session("durable")
            assert [m.content for m in s.messages()] == ["kept"]
            assert c.sessions() == ["durable"]
            info = s.info()
            assert info.ttl is not None and 3500 < info.ttl <= 3600
