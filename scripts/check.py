"""Run every check CI runs, in order, stopping at the first failure.

    python scripts/check.py            # lint, format, types, generated code, then the test suite
    python scripts/check.py -k ttl     # extra arguments go to pytest

Run it from the repository root inside the project's virtualenv (the README's test command does).
pytest runs last, so its summary line is the last thing printed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    py = sys.executable
    steps = [
        ("ruff check", [py, "-m", "ruff", "check", "."]),
        ("ruff format --check", [py, "-m", "ruff", "format", "--check", "."]),
        ("mypy --strict rmem", [py, "-m", "mypy"]),
        ("sync code generated from async", [py, "scripts/unasync.py", "--check"]),
        ("pytest", [py, "-m", "pytest", *argv]),
    ]
    for name, command in steps:
        print(f"==> {name}", flush=True)
        start = time.monotonic()
        code = subprocess.call(command, cwd=ROOT)
        if code != 0 or name != "pytest":  # nothing after pytest's own summary line
            print(f"<== {name}: exit {code} in {time.monotonic() - start:.1f}s", flush=True)
        if code != 0:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
