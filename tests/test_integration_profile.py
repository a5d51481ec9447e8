"""benchmarks/profile_adapters.py: the breakdown behind docs/integrations.md's ratios runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

for module in ("langchain_redis", "langgraph.store.redis", "agents.extensions.memory"):
    pytest.importorskip(module)

ROOT = Path(__file__).resolve().parent.parent


def test_profile_quick_run_reports_every_row(tmp_path: Path) -> None:
    report = tmp_path / "doc.md"
    report.write_text("# Doc\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "benchmarks/profile_adapters.py", "--quick", "--markdown", str(report)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from profile_adapters import PAIRS
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    lines = done.stdout.splitlines()
    for ours, theirs in PAIRS:
        # Both calls measured (p50, CPU, round trips, server) and the pair's bound computed.
        assert any(line.startswith("| ") and f": {theirs} |" in line for line in lines), theirs
        (bound,) = [
            line
            for line in lines
            if line.startswith("| ") and f": {ours} | " in line and line.count("|") == 6
        ]
        assert bound.rstrip(" |").endswith("\u00d7")
    # Every rmem write is one round trip, whichever send path its client takes (redis-py's,
    # or the async backend's own): a send the profile failed to count would lower the floor.
    trips = {
        cells[0]: cells[4]
        for cells in (line.split(" | ") for line in lines)
        if len(cells) == 8 and "add_" in cells[0] and "rmem" in cells[0].lower()
    }
    assert trips, lines
    assert set(trips.values()) == {"1"}, trips
    written = report.read_text(encoding="utf-8")
    assert written.startswith("# Doc\n")
    assert written.count("<!-- profile_adapters:start -->") == 1
    assert "Command: `python benchmarks/profile_adapters.py --quick" in written
