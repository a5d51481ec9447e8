"""The checked-in benchmarks run and print every row (no timing assertions)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SESSION_ROWS = (
    "append",
    "raw XADD",
    "raw pipeline TIME+HMGET+ZADD+HSET+XADD+PUBLISH",
    "extend(100)",
    "raw pipeline 100\u00d7XADD",
    "messages(last=20)",
    "raw XREVRANGE COUNT 20",
    "raw XREVRANGE COUNT 20 + msgpack decode",
    "messages(last=20), caught-up replica",
    "info()",
    "raw pipeline HGETALL+PTTL",
)
SEARCH_ROWS = (
    "search(mode='vector', k=10)",
    "raw FT.SEARCH KNN 10",
    "search(mode='text', k=10)",
    "raw FT.SEARCH BM25STD LIMIT 10",
    "search(mode='hybrid', k=10)",
    "raw pipeline FT.SEARCH KNN + BM25STD",
    "search(mode='vector', k=10, tags=[1 tag])",
    "raw FT.SEARCH KNN 10 + tag filter",
    "local search(mode='vector', k=10)",
    "local search(mode='text', k=10)",
    "local search(mode='hybrid', k=10)",
)


def quick_run(
    script: str, redis_url: str, report: Path, timeout: int
) -> tuple[str, list[list[str]]]:
    """Run ``script --quick`` against the test server; return its output and table rows."""
    report.write_text("# Benchmarks\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, script, "--quick", "--url", redis_url, "--markdown", str(report)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [
        [cell.strip() for cell in line.split("|")[1:-1]]
        for line in proc.stdout.splitlines()
        if line.startswith("| ") and not line.startswith("| operation")
    ]
    assert "Environment: Python" in proc.stdout
    assert "budget" in proc.stdout
    assert report.read_text(encoding="utf-8").startswith("# Benchmarks\n")
    return proc.stdout, rows


def test_bench_sessions_quick_run_prints_every_row(redis_url: str, tmp_path: Path) -> None:
    report = tmp_path / "bench.md"
    _, rows = quick_run("benchmarks/bench_sessions.py", redis_url, report, timeout=60)
    assert [row[0].strip("`") for row in rows] == list(SESSION_ROWS)
    written = report.read_text(encoding="utf-8")
    assert "<!-- bench_sessions:start -->" in written
    assert "| `extend(100)` |" in written


def test_bench_search_quick_run_prints_every_row(redis_url: str, tmp_path: Path) -> None:
    report = tmp_path / "bench.md"
    out, rows = quick_run("benchmarks/bench_search.py", redis_url, report, timeout=120)
    assert [row[0].strip("`") for row in rows] == list(SEARCH_ROWS)
    for row in rows:  # records, p50, p95, p99 and throughput are numbers
        assert all(cell.replace(",", "").isdigit() for cell in row[1:5]), row
        assert row[5].endswith("ops/s"), row
    assert "HNSW (rmem Settings defaults): M=16" in out
    written = report.read_text(encoding="utf-8")
    assert written.count("<!-- bench_search:start -->") == 1
    assert written.rstrip().endswith("<!-- bench_search:end -->")
    assert "| `search(mode='hybrid', k=10)` |" in written


def test_bench_sync_quick_run_measures_every_path(redis_url: str, tmp_path: Path) -> None:
    report = tmp_path / "bench.md"
    _, rows = quick_run("benchmarks/bench_sync.py", redis_url, report, timeout=120)
    rows = [row for row in rows if not row[0].startswith("path")]
    assert [row[0] for row in rows] == [
        "append → other process's replica",
        "append → replica of a process that is itself appending",
        "raw PUBLISH → other process's subscriber",
    ]
    for row in rows:  # p50, p95, p99 and max are positive numbers of ms
        values = [float(cell) for cell in row[1:5]]
        assert 0 < values[0] <= values[1] <= values[2] <= values[3], row
    assert "<!-- bench_sync:start -->" in report.read_text(encoding="utf-8")


def test_bench_reliability_quick_run_loses_nothing_under_a_dropped_link(tmp_path: Path) -> None:
    # Starts its own Redis servers: faults need a server it can kill and a proxy in front.
    report = tmp_path / "reliability.md"
    report.write_text("# Reliability\n", encoding="utf-8")
    proc = subprocess.run(
        [
            sys.executable,
            "benchmarks/bench_reliability.py",
            "--quick",
            "--faults",
            "drop,empty",
            "--no-rules",
            "--markdown",
            str(report),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    rows = {
        cells[0]: cells
        for line in proc.stdout.splitlines()
        if line.startswith("| ") and not line.startswith("| fault")
        for cells in [[cell.strip() for cell in line.split("|")[1:-1]]]
    }
    assert set(rows) >= {"proxy drop (resets)", "Redis restarts EMPTY (no persistence)"}
    drop = rows["proxy drop (resets)"]
    header = next(line for line in proc.stdout.splitlines() if line.startswith("| fault"))
    columns = [cell.strip() for cell in header.split("|")[1:-1]]
    figures = dict(zip(columns, drop, strict=True))
    assert int(figures["writes acked during fault"].replace(",", "")) > 0  # it did write, degraded
    assert (figures["lost"], figures["dups"], figures["converged"]) == ("0", "0", "yes")
    empty = dict(zip(columns, rows["Redis restarts EMPTY (no persistence)"], strict=True))
    assert (empty["dups"], empty["converged"]) == ("0", "yes")
    assert "<!-- bench_reliability:start -->" in report.read_text(encoding="utf-8")


def test_profile_append_stages_run_on_the_current_script() -> None:
    # The stage cuts find session_append.lua's lines by their text: a change to the script
    # that moves them must update STAGES in the profiler.
    proc = _profile("profile_append.py", "--n", "100", "--stages", "--rounds", "1", "--seed", "3")
    assert "| raw EVALSHA session_append |" in proc.stdout
    assert "| + PEXPIRE x3, reply (whole script) |" in proc.stdout


def test_profile_sync_thread_reports_both_clients() -> None:
    proc = _profile("profile_sync_thread.py", "--n", "50", "--blocks", "2", "--replicas", "20")
    rows = [line.split("|")[1].strip() for line in proc.stdout.splitlines()[2:]]
    assert rows == ["sync=True", "sync=False"]


def _profile(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a profiler from benchmarks/ (it starts its own Redis); it must exit 0."""
    proc = subprocess.run(
        [sys.executable, f"benchmarks/{script}", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc
