"""Time-ordered identifiers (UUIDv7 layout) for messages and records.

Ids sort by creation time as strings, and ids made in one process sort in creation order even
within one millisecond: the 12-bit ``rand_a`` field is a per-millisecond sequence that starts at
a random point, so two processes rarely collide and one process never does.
"""

from __future__ import annotations

import os
import threading
import time

_lock = threading.Lock()
_last_ms = 0
_seq = 0


def new_id() -> str:
    """Return a new time-ordered id, a 36-character UUIDv7 string."""
    global _last_ms, _seq
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms = ms
            _seq = int.from_bytes(os.urandom(2), "big") & 0x7FF  # leave room to count up
        else:
            # Same millisecond (or the wall clock stepped back): keep counting from the last
            # stamp so ids stay ordered within the process.
            _seq += 1
            if _seq > 0xFFF:
                _last_ms += 1
                _seq = 0
            ms = _last_ms
        seq = _seq
    rand = int.from_bytes(os.urandom(8), "big") & 0x3FFF_FFFF_FFFF_FFFF
    value = (ms << 80) | (0x7 << 76) | (seq << 64) | (0b10 << 62) | rand
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
