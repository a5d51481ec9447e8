"""Generate rmem/_sync from rmem/_async, so the sync API is never written by hand.

    python scripts/unasync.py          # rewrite rmem/_sync
    python scripts/unasync.py --check  # exit 1 if rmem/_sync is not what the sources give (CI)

The async code is written so that these plain token swaps give correct sync code: no
asyncio-only constructs outside the names below.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "rmem" / "_async"
TARGET = ROOT / "rmem" / "_sync"

# Order matters: longer, more specific patterns first.
SUBSTITUTIONS = [
    # A synchronous call cannot lose a cancellation (rmem/_cancel.py): the guard stays out.
    (r"(?m)^from rmem\._cancel import .*\n", ""),
    (r"(?m)^ *cancels = cancel_mark\(\)\n", ""),
    (r"(?m)^ *raise_lost_cancel\(cancels\).*\n", ""),
    (r"\bredis\.asyncio\.retry\b", "redis.retry"),
    (r"\bredis\.asyncio\b", "redis"),
    (r"\brmem\._async\b", "rmem._sync"),
    (r"\bAsyncClient\b", "Client"),
    (r"\bAsyncSession\b", "Session"),
    (r"\bAsyncBackend\b", "Backend"),
    (r"\bAsyncConnections\b", "Connections"),
    (r"\bAsyncMemories\b", "Memories"),
    (r"\bAsyncEventIterator\b", "EventIterator"),
    (r"\baembed_with\b", "embed_with"),
    (r"\basend_packed\b", "send_packed"),
    (r"\bAsyncIterator\b", "Iterator"),
    (r"\bAsyncIterable\b", "Iterable"),
    (r"\basync def\b", "def"),
    (r"\basync with\b", "with"),
    (r"\basync for\b", "for"),
    (r"\bawait ", ""),
    (r"\b__aenter__\b", "__enter__"),
    (r"\b__aexit__\b", "__exit__"),
    (r"\baclose\b", "close"),
    (r"\basyncio\.sleep\b", "time.sleep"),
    (r"\basyncio\.Lock\b", "threading.Lock"),
    (r"(?m)^import asyncio$", "import threading"),
]
HEADER = (
    "# Generated from rmem/_async/{name} by scripts/unasync.py: edit that file, not this one.\n"
)
PACKAGE_DOC = '"""Sync implementation, generated from ``rmem/_async`` by scripts/unasync.py."""\n'


def convert(text: str) -> str:
    """Return the sync version of one async source file."""
    for pattern, replacement in SUBSTITUTIONS:
        text = re.sub(pattern, replacement, text)
    return text


def expected() -> dict[Path, str]:
    """Map each file of rmem/_sync to the text it must have."""
    files = {}
    for path in sorted(SOURCE.glob("*.py")):
        if path.name == "__init__.py":
            files[TARGET / path.name] = HEADER.format(name=path.name) + PACKAGE_DOC
        else:
            text = path.read_text(encoding="utf-8")
            files[TARGET / path.name] = HEADER.format(name=path.name) + convert(text)
    return files


def main(argv: list[str]) -> int:
    check = "--check" in argv
    files = expected()
    stale = sorted(
        str(p.relative_to(ROOT))
        for p, text in files.items()
        if not p.exists() or p.read_text(encoding="utf-8") != text
    )
    extra = sorted(str(p.relative_to(ROOT)) for p in TARGET.glob("*.py") if p not in files)
    if check:
        if stale or extra:
            print("rmem/_sync is out of date; run: python scripts/unasync.py", file=sys.stderr)
            for name in stale + extra:
                print(f"  {name}", file=sys.stderr)
            return 1
        print(f"rmem/_sync is up to date ({len(files)} files)")
        return 0
    TARGET.mkdir(exist_ok=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    for name in extra:
        (ROOT / name).unlink()
    print(f"wrote {len(files)} files to {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
