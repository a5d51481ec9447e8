"""The ``rmem`` command line and ``rmem demo``, run as a user runs them: in a subprocess."""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis as redis_py
from rich.console import Console

import rmem
from rmem._keys import session_keys
from rmem._session_core import decode_members
from rmem.demo import (
    AGENTS,
    EDITOR,
    EDITORS,
    EMBED_DIM,
    NAMESPACE,
    NOTE_COUNT,
    OUTAGE_AGENTS,
    OUTAGE_NAMESPACE,
    OUTAGE_SESSION_ID,
    RECORD_ID,
    RESEARCH_NAMESPACE,
    SESSION_ID,
    SKIP_REASON,
    SYNC_NAMESPACE,
    SYNC_SESSION_ID,
    TOPICS,
    TURNS,
    DemoContext,
    Plan,
    act_redis_goes_away,
)
from rmem.embedders import HashEmbedder
from rmem.server import EmbeddedRedis

REPO_ROOT = Path(__file__).resolve().parents[1]
MESSAGES = 20
MEMORY_ROWS = (
    "notes written",
    "notes found by the writer",
    "searches (hybrid, k=3)",
    "add p50 (ms)",
    "add p99 (ms)",
    "search p50 (ms)",
    "search p99 (ms)",
    "first seen p50 (ms)",
    "first seen max (ms)",
)
FIRST_THREE = (
    "act 1 (two agents, one session); "
    "act 2 (a researcher and a writer, one memory namespace); "
    "act 3 (two processes editing one session and one record, live)"
)
FINAL_OK = f"OK: all four acts passed: {FIRST_THREE}; act 4 (Redis goes away)."
# With --url the demo does not kill a Redis it did not start.
FINAL_OK_URL = f"OK: three acts passed: {FIRST_THREE}; skipped: act 4 (Redis goes away)."
OUTAGE_ROWS = (
    "messages acked",
    "of them written while degraded",
    "health().state while away",
    "in Redis afterwards",
    "marked written while degraded",
    "acked but missing",
    "stored twice",
    "in the agent's order",
    "outage s (health().degraded_seconds)",
    "replayed (health().replayed)",
    "degraded calls",
    "degraded-call p99 ms",
    "slowest degraded call ms",
    "read the history Redis holds",
)
ACT_3_OK = (
    rf"^OK: both replicas equal Redis: {2 * TURNS} messages in one order, with {EDITOR}'s edit; "
    rf"record {RECORD_ID} is 'plan v{2 * TURNS - 1}, by {EDITORS[1]}', "
    rf"the newest of {2 * TURNS} writes \(last writer wins\)\.$"
)


def _rmem(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return _python("-m", "rmem", *args, timeout=timeout)


def _python(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    path = os.environ.get("PYTHONPATH", "")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), path) if p),
        "PYTHONIOENCODING": "utf-8",
        "COLUMNS": "120",  # keep table rows and OK lines on one line each
    }
    return subprocess.run(
        [sys.executable, *args],
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


def _memory_rows(output: str) -> dict[str, float]:
    """The memory act's table, as {measure: value}."""
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│")]
        if len(cells) == 4 and cells[1] in MEMORY_ROWS:
            rows[cells[1]] = float(cells[2])
    return rows


def _sync_rows(output: str) -> dict[str, list[str]]:
    """The sync act's table, as {editor: [edits made, other's seen, p50, p99, == Redis]}."""
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│")]
        if len(cells) == 8 and cells[1] in EDITORS:
            rows[cells[1]] = cells[2:7]
    return rows


def _outage_rows(output: str) -> dict[str, list[str]]:
    """The outage act's table, as {measure: [first agent's value, second agent's]}."""
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│")]
        if len(cells) == 5 and cells[1] in OUTAGE_ROWS:
            rows[cells[1]] = cells[2:4]
    return rows


def _check_demo_output(
    result: subprocess.CompletedProcess[str], messages: int, *, embedded: bool = True
) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout
    assert re.search(rf"^OK: {2 * messages} messages from 2 processes", result.stdout, re.M)
    _check_session_table(result.stdout, messages)
    _check_memory_table(result.stdout)
    act_2_ok = rf"^OK: {NOTE_COUNT} notes from the researcher, all found by the writer"
    assert re.search(act_2_ok, result.stdout, re.M)
    _check_sync_table(result.stdout)
    assert re.search(r"^replicas == Redis: yes$", result.stdout, re.M)
    assert re.search(ACT_3_OK, result.stdout, re.M), result.stdout
    if embedded:
        _check_outage_table(result.stdout, Plan.for_messages(messages))
        act_4_ok = rf"^OK: Redis holds all {2 * Plan.for_messages(messages).messages} "
        assert re.search(act_4_ok + "acknowledged messages once each", result.stdout, re.M)
        assert result.stdout.rstrip().splitlines()[-1] == FINAL_OK
    else:
        assert f"Skipped: {SKIP_REASON}." in " ".join(result.stdout.split())
        assert "Killed Redis" not in result.stdout
        assert result.stdout.rstrip().splitlines()[-1] == FINAL_OK_URL


def _check_outage_table(output: str, plan: Plan) -> dict[str, list[str]]:
    rows = _outage_rows(output)
    assert set(rows) == set(OUTAGE_ROWS), output
    for column in (0, 1):
        value = {label: cells[column] for label, cells in rows.items()}
        assert int(value["messages acked"]) == int(value["in Redis afterwards"]) == plan.messages
        degraded = int(value["of them written while degraded"])
        assert 0 < degraded == int(value["marked written while degraded"])
        assert value["health().state while away"] == "degraded"
        assert (value["acked but missing"], value["stored twice"]) == ("0", "0")
        assert value["in the agent's order"] == value["read the history Redis holds"] == "yes"
        assert int(value["replayed (health().replayed)"]) >= degraded
        assert float(value["outage s (health().degraded_seconds)"]) > 0
        p99, slowest = value["degraded-call p99 ms"], value["slowest degraded call ms"]
        assert 0 < float(p99) <= float(slowest)
    return rows


def _check_session_table(output: str, messages: int) -> None:
    rows = _table_rows(output)
    assert set(rows) == {*AGENTS, "total"}, output
    for agent in AGENTS:
        written, seen, size, *latencies = rows[agent]
        assert int(written) == messages
        assert 0 <= int(seen) <= messages
        assert int(size) > 0
        assert all(float(ms) > 0 for ms in latencies)
    assert int(rows["total"][0]) == 2 * messages
    assert int(rows["total"][2]) == sum(int(rows[agent][2]) for agent in AGENTS)


def _check_memory_table(output: str) -> None:
    rows = _memory_rows(output)
    assert set(rows) == set(MEMORY_ROWS), output
    assert rows["notes written"] == rows["notes found by the writer"] == NOTE_COUNT == 60
    # The writer searches each topic at least until that topic's last note arrives.
    assert rows["searches (hybrid, k=3)"] >= NOTE_COUNT / len(TOPICS)
    for low, high in (("add p50", "add p99"), ("search p50", "search p99")):
        assert 0 < rows[f"{low} (ms)"] <= rows[f"{high} (ms)"]
    assert 0 < rows["first seen p50 (ms)"] <= rows["first seen max (ms)"]


def _check_sync_table(output: str) -> None:
    rows = _sync_rows(output)
    assert set(rows) == set(EDITORS), output
    made = {editor: 2 * TURNS + (2 if editor == EDITOR else 0) for editor in EDITORS}
    for editor, other in (EDITORS, EDITORS[::-1]):
        edits, seen, p50, p99, same = rows[editor]
        assert int(edits) == made[editor]
        assert int(seen) == made[other]  # every edit of the other arrived as an event
        assert 0 < float(p50) <= float(p99)
        assert same == "yes"


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
    _check_demo_output(first, MESSAGES, embedded=False)
    assert "Starting an embedded Redis" not in first.stdout
    # A second run starts from a clean session and namespace instead of finding the first
    # run's messages and notes.
    second = _rmem("demo", "--messages", "7", "--url", redis_url, "--quiet")
    _check_demo_output(second, 7, embedded=False)
    assert f"Deleted the session {NAMESPACE}/{SESSION_ID} left by an earlier run" in second.stdout
    assert f"Forgot {NOTE_COUNT} memories of namespace {RESEARCH_NAMESPACE}" in second.stdout
    deleted = f"Deleted the session {SYNC_NAMESPACE}/{SYNC_SESSION_ID} left by an earlier run"
    assert deleted in second.stdout
    embedder = HashEmbedder(EMBED_DIM)
    with (
        rmem.Client.from_url(redis_url, namespace=NAMESPACE) as client,
        rmem.Client.from_url(redis_url, namespace=RESEARCH_NAMESPACE, embedder=embedder) as shared,
        rmem.Client.from_url(redis_url, namespace=SYNC_NAMESPACE, sync=False) as edited,
    ):
        session = client.session(SESSION_ID)
        try:
            messages = session.messages()
            assert len(messages) == 14
            assert sorted(m.name or "" for m in messages) == sorted(AGENTS * 7)
            info = session.info()
            assert info.ttl_policy == 3600
            assert shared.memories.count() == NOTE_COUNT
            hits = shared.memories.search("Jupiter largest planet", k=1, tags=["astronomy"])
            assert [hit.record.text for hit in hits] == [
                "Jupiter is the largest planet in the Solar System."
            ]
            assert hits[0].record.metadata["source"] == "nasa.gov"
            assert edited.session(SYNC_SESSION_ID).count() == 2 * TURNS
            record = edited.memories.get(RECORD_ID)
            assert record is not None and record.text == f"plan v{2 * TURNS - 1}, by {EDITORS[1]}"
        finally:
            session.delete()
            shared.memories.forget(all=True)
            edited.session(SYNC_SESSION_ID).delete()
            edited.memories.delete(RECORD_ID)


def test_demo_fails_when_the_writer_misses_notes(redis_url: str) -> None:
    # A writer with no time to search finds nothing: the act must say FAILED, the run exit 1.
    code = (
        "import sys, rmem.cli, rmem.demo\n"
        "rmem.demo.WRITER_TIMEOUT = 0.0\n"
        "sys.exit(rmem.cli.main(sys.argv[1:]))\n"
    )
    result = _python("-c", code, "demo", "--messages", "3", "--url", redis_url, "--quiet")
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"^OK: 6 messages from 2 processes", result.stdout, re.M)  # act 1 still ran
    missed = rf"^FAILED: the writer never found {NOTE_COUNT} of the notes within 0 s"
    assert re.search(missed, result.stdout, re.M)
    assert result.stdout.rstrip().splitlines()[-1] == (
        "FAILED: act 2 (a researcher and a writer, one memory namespace)."
    )
    with rmem.Client.from_url(
        redis_url, namespace=RESEARCH_NAMESPACE, embedder=HashEmbedder(EMBED_DIM)
    ) as shared:
        shared.memories.forget(all=True)


def test_demo_fails_when_a_replica_differs_from_redis(redis_url: str) -> None:
    # The parent's view of Redis loses a message: both replicas now differ from it, and act 3
    # must say so, in the table and on a FAILED line, and the run exit 1.
    code = (
        "import sys, rmem.cli, rmem.demo._sync_act as act\n"
        "read = act._redis_state\n"
        "def lossy(url):\n"
        "    state = read(url)\n"
        "    return state._replace(message_ids=state.message_ids[1:])\n"
        "act._redis_state = lossy\n"
        "sys.exit(rmem.cli.main(sys.argv[1:]))\n"
    )
    result = _python("-c", code, "demo", "--messages", "3", "--url", redis_url, "--quiet")
    assert result.returncode == 1, result.stdout + result.stderr
    rows = _sync_rows(result.stdout)
    assert {editor: row[-1] for editor, row in rows.items()} == dict.fromkeys(EDITORS, "no")
    assert re.search(r"^replicas == Redis: no$", result.stdout, re.M)
    for editor in EDITORS:
        held, lost = 2 * TURNS, 2 * TURNS - 1
        differs = rf"{editor}'s session replica holds {held} messages .*, Redis {lost} "
        assert re.search(differs, result.stdout), result.stdout
    assert result.stdout.rstrip().splitlines()[-1] == (
        "FAILED: act 3 (two processes editing one session and one record, live)."
    )


def _run_outage_act(server: EmbeddedRedis, messages: int) -> tuple[bool | None, str]:
    """Run act 4 in this process on ``server``; its result and what it printed."""
    out = io.StringIO()
    console = Console(file=out, width=120, highlight=False)
    ok = act_redis_goes_away(DemoContext(server.url, messages, console, False, server))
    return ok, out.getvalue()


def _stored(url: str) -> list[rmem.Message]:
    """Every entry of act 4's session in Redis, duplicates included, in stored order."""
    key = session_keys(OUTAGE_NAMESPACE, OUTAGE_SESSION_ID).msgs
    with redis_py.Redis.from_url(url) as raw:
        return decode_members(raw.zrange(key, 0, -1), key)


def test_redis_goes_away_and_no_acknowledged_message_is_lost_or_doubled() -> None:
    messages = 20
    plan = Plan.for_messages(messages)
    with EmbeddedRedis(persistence="aof") as server:
        pid = server.pid
        ok, output = _run_outage_act(server, messages)
        assert ok is True, output
        assert server.pid != pid  # Redis really was killed and restarted during the act
        stored = _stored(server.url)
        with rmem.Client.from_url(server.url, namespace=OUTAGE_NAMESPACE, sync=False) as reader:
            read = [m.id for m in reader.session(OUTAGE_SESSION_ID).messages()]
            notes = reader.memories.count()
    # What Redis holds, counted here: every message of each agent once, in the agent's order.
    assert len(stored) == len(OUTAGE_AGENTS) * plan.messages, output
    assert len({m.id for m in stored}) == len(stored)
    assert read == [m.id for m in stored]
    rows = _check_outage_table(output, plan)
    for column, agent in enumerate(OUTAGE_AGENTS):
        mine = [m for m in stored if m.name == agent]
        assert [(m.metadata or {})["seq"] for m in mine] == list(range(plan.messages))
        # Some were written while the agent was degraded; the table counts them as Redis does.
        degraded = sum(1 for m in mine if (m.metadata or {})["degraded"] is True)
        assert degraded > 0
        assert int(rows["of them written while degraded"][column]) == degraded
    assert notes == len(OUTAGE_AGENTS) * (plan.messages // plan.note_every)
    assert "Killed Redis (SIGKILL" in output
    assert re.search(r"^Restarted Redis after [\d.]+ s down", output, re.M), output


def test_redis_goes_away_fails_loudly_on_a_lost_or_doubled_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # After the agents are done, Redis loses one of the triager's messages and gets a second
    # copy of one of the fixer's (another stamp, same id): the act must say FAILED.
    from rmem.demo import _outage_act

    read = _outage_act._redis_view

    def damaged(url: str, reports: dict[str, _outage_act.OutageReport]) -> _outage_act.RedisView:
        key = session_keys(OUTAGE_NAMESPACE, OUTAGE_SESSION_ID).msgs
        with redis_py.Redis.from_url(url) as raw:
            members = raw.zrange(key, 0, -1)
            names = [m.name for m in decode_members(members, key)]
            lost = members[names.index(OUTAGE_AGENTS[0])]
            copied = members[names.index(OUTAGE_AGENTS[1])]
            raw.zrem(key, lost)
            raw.zadd(key, {b"~" + copied[1:]: 0})  # sorts last: a later stamp
        return read(url, reports)

    monkeypatch.setattr(_outage_act, "_redis_view", damaged)
    with EmbeddedRedis(persistence="aof") as server:
        ok, output = _run_outage_act(server, 8)
    assert ok is False, output
    triager, fixer = OUTAGE_AGENTS
    assert f"1 of {triager}'s acknowledged messages are not in Redis" in output
    assert f"1 of {fixer}'s messages are stored twice in Redis" in output
    rows = _outage_rows(output)
    assert rows["acked but missing"] == ["1", "0"]
    assert rows["stored twice"] == ["0", "1"]
    assert re.search(r"^FAILED: ", output, re.M)


def test_redis_goes_away_is_skipped_without_a_server_to_kill() -> None:
    # As with --url: no server of its own. It says why and touches nothing (nothing listens
    # on port 1).
    out = io.StringIO()
    console = Console(file=out, width=200, highlight=False)
    ctx = DemoContext("redis://127.0.0.1:1/0", 3, console, False, None)
    assert act_redis_goes_away(ctx) is None
    assert out.getvalue().strip() == f"Skipped: {SKIP_REASON}."


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
