"""Time-ordered identifiers (UUIDv7 layout) for messages and records.

Ids sort by creation time as strings, and ids made in one process sort in creation order even
within one millisecond: the 12-bit ``rand_a`` field is a per-millisecond sequence that starts at
a random point, so two processes rarely collide and one process never does.

The 62 random bits come from ``random`` (reseeded from the OS in every forked child), not
``os.urandom``: ids must be unique, not secret, and a system call per id costs more than the
rest of ``new_id`` together.

:func:`new_ids` makes a batch's ids as that many :func:`new_id` calls would, with one lock and
one clock read: for a batch write (one id per message) the lock, the clock and formatting the
time fields were most of each id's cost.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Final

_lock = threading.Lock()
_bits = random.getrandbits
_last_ms = 0
_seq = 0

# The last 20 hex digits of an id: the version (7) and the 12-bit sequence, then the variant
# (0b10) and 62 random bits.
_TAIL: Final = 0x7000 << 64 | 0x8000_0000_0000_0000
_SEQ_ONE: Final = 1 << 64
_SEQ_MAX: Final = 0xFFF


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


def new_ids(count: int) -> list[str]:
    """Return ``count`` new ids, as ``count`` calls of :func:`new_id` would: in creation order
    (the list's order), unique, and ordered with the ids made before and after them."""
    global _last_ms, _seq
    if count <= 1:
        return [new_id()] if count == 1 else []  # new_id is the faster for one
    with _lock:  # new_id's rule, for count stamps at once
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            seq = _bits(11)
        else:
            ms, seq = _last_ms, _seq + 1
        # Past 0xFFF the count goes on in the next millisecond, as new_id's does.
        _last_ms, _seq = divmod((ms << 12) + seq + count - 1, _SEQ_MAX + 1)
    ids: list[str] = []
    prefix = ""
    tail = 0
    for _ in range(count):
        if not prefix or seq > _SEQ_MAX:
            if seq > _SEQ_MAX:
                ms, seq = ms + 1, 0
            prefix = f"{ms >> 16:08x}-{ms & 0xFFFF:04x}-"
            tail = _TAIL | seq << 64
        text = f"{tail | _bits(62):020x}"
        ids.append(f"{prefix}{text[:4]}-{text[4:8]}-{text[8:]}")
        seq += 1
        tail += _SEQ_ONE
    return ids
