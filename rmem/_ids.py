"""Time-ordered identifiers (UUIDv7 layout) for messages and records.

Ids sort by creation time as strings, and ids made in one process sort in creation order even
within one millisecond: the 12-bit ``rand_a`` field is a per-millisecond sequence that starts at
a random point, so two processes rarely collide and one process never does.

The 62 random bits come from ``random`` (reseeded from the OS in every forked child), not
``os.urandom``: ids must be unique, not secret, and a system call per id costs more than the
rest of ``new_id`` together.
"""

from __future__ import annotations

import random
import threading
import time

_lock = threading.Lock()
_bits = random.getrandbits
_last_ms = 0
_seq = 0


def new_id() -> str:
    """Return a new time-ordered id, a 36-character UUIDv7 string."""
    global _last_ms, _seq
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms = ms
            _seq = _bits(11)  # start low enough to leave room to count up
        else:
            # Same millisecond (or the wall clock stepped back): keep counting from the last
            # stamp so ids stay ordered within the process.
            _seq += 1
            if _seq > 0xFFF:
                _last_ms += 1
                _seq = 0
            ms = _last_ms
        seq = _seq
    rand = _bits(62)
    return (
        f"{ms >> 16:08x}-{ms & 0xFFFF:04x}-{0x7000 | seq:04x}-"
        f"{0x8000 | rand >> 48:04x}-{rand & 0xFFFF_FFFF_FFFF:012x}"
    )
