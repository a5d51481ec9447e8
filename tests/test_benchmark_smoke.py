"""The checked-in session benchmark runs and prints every row (no timing assertions)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ROWS = (
    "append",
    "raw XADD",
    "raw pipeline XADD+HSET+HINCRBY+PEXPIRE\u00d73",
    "extend(100)",
    "raw pipeline 100\u00d7XADD",
    "messages(last=20)",
    "raw XREVRANGE COUNT 20",
    "raw XREVRANGE COUNT 20 + msgpack decode",
    "info()",
    "raw pipeline HGETALL+PTTL",
)


def test_bench_sessions_quick_run_prints_every_row(redis_url: str, tmp_path: Path) -> None:
    report = tmp_path / "bench.md"
    report.write_text("# Benchmarks\n", encoding="utf-8")
    script = "benchmarks/bench_sessions.py"
    proc = subprocess.run(
        [sys.executable, script, "--quick", "--url", redis_url, "--markdown", str(report)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    names = [
        line.split("|")[1].strip().strip("`")
        for line in proc.stdout.splitlines()
        if line.startswith("| ") and not line.startswith("| operation")
    ]
    assert names == list(ROWS)
    assert "Environment: Python" in proc.stdout
    assert "budget" in proc.stdout
    written = report.read_text(encoding="utf-8")
    assert written.startswith("# Benchmarks\n")
    assert "<!-- bench_sessions:start -->" in written
    assert "| `extend(100)` |" in written
