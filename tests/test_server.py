"""The embedded Redis launcher, against real redis-server processes (no mocks)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from rmem.server import EmbeddedRedis, ServerError, find_modules, find_redis_server

REPO_ROOT = Path(__file__).resolve().parents[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # An orphan reparented to a PID 1 that does not reap leaves a zombie: dead all the same.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_dead(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)


def _client(server: EmbeddedRedis, socket_timeout: float | None = None) -> redis.Redis:
    return redis.Redis.from_url(server.url, socket_timeout=socket_timeout, decode_responses=True)


def _subprocess_env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), path) if p)}


@pytest.fixture
def server() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis() as srv:
        yield srv


def test_start_ping_stop(server: EmbeddedRedis) -> None:
    assert server.is_running
    assert server.pid is not None
    assert server.url == f"redis://127.0.0.1:{server.port}/0"
    client = _client(server)
    assert client.ping() is True
    assert client.info("server")["redis_version"].startswith("8.2")
    assert client.info("server")["process_id"] == server.pid
    client.close()
    pid = server.pid
    server.stop()
    assert not server.is_running
    assert server.pid is None
    assert not _alive(pid)


def test_modules_loaded_by_default(server: EmbeddedRedis) -> None:
    client = _client(server)
    names = {m["name"].lower() for m in client.module_list()}
    assert "search" in names
    assert client.execute_command("FT._LIST") == []
    client.close()


def test_plain_redis_without_modules() -> None:
    with EmbeddedRedis(modules=False) as server:
        client = _client(server)
        names = {m["name"].lower() for m in client.module_list()}
        assert "search" not in names
        with pytest.raises(redis.ResponseError):
            client.execute_command("FT._LIST")
        client.close()


def test_find_helpers_return_real_files() -> None:
    binary = find_redis_server()
    assert os.access(binary, os.X_OK)
    modules = find_modules()
    assert any(path.endswith("redisearch.so") for path in modules)
    assert all(os.path.isfile(path) for path in modules)


def test_aof_always_survives_kill_and_restart(tmp_path: Path) -> None:
    with EmbeddedRedis(persistence="aof", appendfsync="always", dir=tmp_path) as server:
        client = _client(server)
        client.mset({f"k{i}": str(i) for i in range(100)})
        client.close()
        port, old_pid = server.port, server.pid
        server.kill()
        assert not server.is_running
        server.restart()
        assert (server.port, server.dir) == (port, str(tmp_path))
        assert server.pid != old_pid
        client = _client(server)
        assert client.dbsize() == 100
        assert client.get("k42") == "42"
        client.close()
    assert tmp_path.is_dir()  # a given dir is never removed


def test_no_persistence_restarts_empty(server: EmbeddedRedis) -> None:
    client = _client(server)
    client.set("k", "v")
    client.close()
    server.kill()
    server.restart()
    client = _client(server)
    assert client.dbsize() == 0
    client.close()


def test_restart_after_graceful_stop_keeps_aof_data(tmp_path: Path) -> None:
    with EmbeddedRedis(persistence="aof", dir=tmp_path) as server:
        client = _client(server)
        client.set("k", "v")
        client.close()
        server.stop()
        server.restart()
        client = _client(server)
        assert client.get("k") == "v"
        client.close()


def test_pause_times_out_and_resume_answers(server: EmbeddedRedis) -> None:
    client = _client(server, socket_timeout=0.3)
    assert client.ping() is True
    server.pause()
    with pytest.raises(redis.TimeoutError):
        client.ping()
    server.resume()
    client.close()  # the timed-out connection may hold a stale reply
    assert client.ping() is True
    client.close()


def test_paused_server_still_stops() -> None:
    server = EmbeddedRedis().start()
    pid = server.pid
    assert pid is not None
    server.pause()
    server.close()
    assert not _alive(pid)


def test_context_manager_leaves_nothing_behind() -> None:
    with EmbeddedRedis() as server:
        pid, directory = server.pid, server.dir
        assert pid is not None
        assert os.path.isdir(directory)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not os.path.exists(directory)
    with pytest.raises(ServerError):
        server.start()


def test_taken_port_is_a_clear_error(server: EmbeddedRedis) -> None:
    other = EmbeddedRedis(port=server.port, modules=False)
    with pytest.raises(ServerError, match="in use"):
        other.start()
    assert not other.is_running
    other.close()
    assert _client(server).ping() is True


def test_startup_failure_includes_log_tail() -> None:
    server = EmbeddedRedis(modules=False, extra_args=["--no-such-option", "x"])
    with pytest.raises(ServerError, match="no-such-option"):
        server.start()
    server.close()


def test_missing_binary_raises_server_error() -> None:
    server = EmbeddedRedis(redis_server="/nonexistent/redis-server", modules=False)
    with pytest.raises(ServerError, match="nonexistent"):
        server.start()
    server.close()


def test_no_orphan_when_owner_is_sigkilled(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import sys, time
        from rmem.server import EmbeddedRedis
        server = EmbeddedRedis(dir={str(tmp_path)!r}, modules=False).start()
        print(server.pid, flush=True)
        time.sleep(60)
        """
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, env=_subprocess_env(), text=True
    )
    try:
        assert owner.stdout is not None
        pid = int(owner.stdout.readline())
        assert _alive(pid)
        owner.kill()
        owner.wait(5)
        assert _wait_dead(pid), f"redis-server {pid} outlived its SIGKILLed owner"
    finally:
        owner.kill()
        owner.wait()
        if owner.stdout is not None:
            owner.stdout.close()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_cli_run_serves_until_signalled(tmp_path: Path, signum: signal.Signals) -> None:
    code = (
        "import argparse, sys\n"
        "from rmem import server\n"
        "parser = argparse.ArgumentParser()\n"
        "server.add_arguments(parser)\n"
        "sys.exit(server.run(parser.parse_args(sys.argv[1:])))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_subprocess_env(),
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("rmem: Redis 8.2"), line
        assert "with RediSearch" in line
        match = re.search(r"redis://\S+", line)
        assert match is not None, line
        client = redis.Redis.from_url(match.group(0))
        assert client.ping() is True
        pid = client.info("server")["process_id"]
        client.close()
        proc.send_signal(signum)
        assert proc.wait(10) == 0
        assert _wait_dead(pid, timeout=1.0)
        port = int(match.group(0).rsplit(":", 1)[1].split("/")[0])
        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection(("127.0.0.1", port), timeout=0.5),
        ):
            pass
    finally:
        proc.kill()
        _, err = proc.communicate()
    assert "Traceback" not in err, err
