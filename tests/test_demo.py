"""The ``rmem`` command line and ``rmem demo``, run as a user runs them: in a subprocess."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import rmem
from rmem.demo import AGENTS, NAMESPACE, SESSION_ID

REPO_ROOT = Path(__file__).resolve().parents[1]
MESSAGES = 20


def _rmem(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    path = os.environ.get("PYTHONPATH", "")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), path) if p),
        "PYTHONIOENCODING": "utf-8",
        "COLUMNS": "120",  # keep table rows on one line each
    }
    return subprocess.run(
        [sys.executable, "-m", "rmem", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO_ROOT,
    )


def _table_rows(output: str) -> dict[str, list[str]]:
    """The demo's result table, as {agent: [written, other's seen, bytes, 4 latencies]}."""
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in re.split(r"[│|]", line)]
        if len(cells) == 10 and cells[1] in (*AGENTS, "total"):
            rows[cells[1]] = cells[2:9]
    return rows


def _check_demo_output(result: subprocess.CompletedProcess[str], messages: int) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout
    assert re.search(rf"^OK: {2 * messages} messages from 2 processes", result.stdout, re.M)
    rows = _table_rows(result.stdout)
    assert set(rows) == {*AGENTS, "total"}, result.stdout
    for agent in AGENTS:
        written, seen, size, *latencies = rows[agent]
        assert int(written) == messages
        assert 0 <= int(seen) <= messages
        assert int(size) > 0
        assert all(float(ms) > 0 for ms in latencies)
    assert int(rows["total"][0]) == 2 * messages
    assert int(rows["total"][2]) == sum(int(rows[agent][2]) for agent in AGENTS)


def test_demo_on_its_own_embedded_redis() -> None:
    result = _rmem("demo", "--messages", str(MESSAGES), "--quiet")
    _check_demo_output(result, MESSAGES)
    assert "Starting an embedded Redis" in result.stdout
    # The demo's server is gone once the demo has exited.
    match = re.search(r"is up at redis://127\.0\.0\.1:(\d+)/0", result.stdout)
    assert match, result.stdout
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", int(match[1])), 1):
        pass


def test_demo_on_a_given_redis_twice(redis_url: str) -> None:
    first = _rmem("demo", "--messages", str(MESSAGES), "--url", redis_url, "--no-progress")
    _check_demo_output(first, MESSAGES)
    assert "Starting an embedded Redis" not in first.stdout
    # A second run starts from a clean session instead of finding the first run's messages.
    second = _rmem("demo", "--messages", "7", "--url", redis_url, "--quiet")
    _check_demo_output(second, 7)
    assert "left by an earlier run" in second.stdout
    with rmem.Client.from_url(redis_url, namespace=NAMESPACE) as client:
        session = client.session(SESSION_ID)
        try:
            messages = session.messages()
            assert len(messages) == 14
            assert sorted(m.name or "" for m in messages) == sorted(AGENTS * 7)
            info = session.info()
            assert info.ttl_policy == 3600
        finally:
            session.delete()


def test_demo_reports_an_unreachable_redis() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the demo runs: nothing listens
    result = _rmem("demo", "--messages", "3", "--url", f"redis://127.0.0.1:{port}/0", "--quiet")
    assert result.returncode == 1
    assert "FAILED: cannot reach" in result.stdout


def test_demo_refuses_a_bad_message_count() -> None:
    result = _rmem("demo", "--messages", "0")
    assert result.returncode == 2
    assert "--messages: must be at least 1" in result.stderr


def test_version() -> None:
    result = _rmem("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"rmem {rmem.__version__}"


def test_server_help() -> None:
    result = _rmem("server", "--help")
    assert result.returncode == 0, result.stderr
    for option in ("--port", "--aof", "--dir", "--no-modules"):
        assert option in result.stdout


def test_a_command_is_required() -> None:
    result = _rmem()
    assert result.returncode == 2
    assert "server" in result.stderr
    assert "demo" in result.stderr
