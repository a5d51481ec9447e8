"""Hybrid logical clock stamps: last-writer-wins order that every instance agrees on.

A :class:`Stamp` is ``(wall_ms, counter, node)``. Stamps are totally ordered by those three
fields in turn: wall time first, so the order follows real time whenever clocks are roughly in
sync; the counter to order events inside one millisecond or while the wall clock lags a stamp
seen from elsewhere; the node id last, so two writers can never tie.

Text form (what Redis stores and Lua compares)::

    018f3c2a9b10-000000-9f86d081884c7d65
    └─ wall_ms ─┘ └ctr─┘ └──── node ────┘
     12 hex       6 hex      16 hex          STAMP_LEN = 36 characters

Every field is fixed width and lowercase, so plain string ``<`` / ``>`` on two encodings gives
the same answer as comparing the stamps. That must also hold inside Lua, where ``<`` on
strings is ``strcoll`` and Redis sets ``LC_COLLATE`` from its environment: even a locale that
skips ``-`` when collating sees the same hex digits (digits before letters in every common
locale) at the same positions, so it agrees with byte order. A Lua script gets the wall time
back with::

    local wall_ms = tonumber(string.sub(s, 1, 12), 16)

48 bits of milliseconds last until the year 10889 and fit exactly in a Lua number (a double),
so that conversion never rounds. The script can compare ``wall_ms`` with Redis ``TIME`` to
refuse stamps from too far in the future; :func:`too_far_ahead` is the same rule in Python.

:data:`ZERO` is the encoding of the least stamp; every :class:`Clock` issues stamps strictly
above it, so it serves as "never written".

This module does no I/O; :class:`Clock` reads only the wall clock it is given.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from rmem._errors import ValidationError

__all__ = [
    "MAX_COUNTER",
    "MAX_WALL_MS",
    "NODE_LEN",
    "STAMP_LEN",
    "STAMP_RE",
    "ZERO",
    "ZERO_STAMP",
    "Clock",
    "Stamp",
    "new_node_id",
    "parse_stamp",
    "too_far_ahead",
]

STAMP_LEN: Final = 36
"""Length of an encoded stamp: 12 + 1 + 6 + 1 + 16 characters."""

NODE_LEN: Final = 16
"""Length of a node id: lowercase hex characters (64 random bits)."""

MAX_WALL_MS: Final = 16**12 - 1
"""Largest wall time a stamp can carry (12 hex digits of milliseconds)."""

MAX_COUNTER: Final = 16**6 - 1
"""Largest counter a stamp can carry (6 hex digits)."""

_NODE_RE: Final = re.compile(r"[0-9a-f]{16}")
_STAMP_RE: Final = re.compile(r"([0-9a-f]{12})-([0-9a-f]{6})-([0-9a-f]{16})")
STAMP_RE: Final = _STAMP_RE
"""The canonical text of a stamp (``fullmatch`` it; the groups are wall, counter, node)."""


def _check_node(node: object) -> str:
    # isinstance first: a regex on a non-str would raise TypeError, not our error.
    if not isinstance(node, str) or _NODE_RE.fullmatch(node) is None:
        raise ValidationError(f"node id must be {NODE_LEN} lowercase hex characters, got {node!r}")
    return node


@dataclass(frozen=True, slots=True, order=True)
class Stamp:
    """One hybrid logical clock reading, ordered by ``(wall_ms, counter, node)``.

    Args:
        wall_ms: milliseconds since the Unix epoch, ``0 <= wall_ms <= MAX_WALL_MS``.
        counter: events within that millisecond, ``0 <= counter <= MAX_COUNTER``.
        node: the issuing node's id, 16 lowercase hex characters; breaks ties.

    Raises:
        ValidationError: a field is out of range or the node id is malformed, so the stamp
            could not be encoded at fixed width.
    """

    wall_ms: int
    counter: int
    node: str

    def __post_init__(self) -> None:
        # Checked here so that no Stamp exists whose encoding would break the fixed width
        # that Lua comparisons rely on.
        if type(self.wall_ms) is not int or not 0 <= self.wall_ms <= MAX_WALL_MS:
            raise ValidationError(f"stamp wall_ms out of range: {self.wall_ms!r}")
        if type(self.counter) is not int or not 0 <= self.counter <= MAX_COUNTER:
            raise ValidationError(f"stamp counter out of range: {self.counter!r}")
        _check_node(self.node)

    def encode(self) -> str:
        """Return the 36-character text form, whose string order equals stamp order."""
        return f"{self.wall_ms:012x}-{self.counter:06x}-{self.node}"


ZERO_STAMP: Final = Stamp(0, 0, "0" * NODE_LEN)
"""The least possible stamp; no :class:`Clock` ever issues it."""

ZERO: Final = ZERO_STAMP.encode()
"""Encoding of :data:`ZERO_STAMP`; sorts before every other encoded stamp."""


def parse_stamp(text: str | bytes) -> Stamp:
    """Parse the text form made by :meth:`Stamp.encode` (bytes as read from Redis, or str).

    Raises:
        ValidationError: ``text`` is not exactly the canonical form: wrong length, a wrong
            separator, uppercase or any other non-hex character, or not str/bytes.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise ValidationError(f"malformed clock stamp {text[:64]!r}: not ASCII") from None
    if not isinstance(text, str):
        raise ValidationError(f"clock stamp must be str or bytes, got {type(text).__name__}")
    # Only the canonical form is accepted: a second spelling of the same stamp (uppercase,
    # padding) would compare differently as a string inside Lua.
    match = _STAMP_RE.fullmatch(text)
    if match is None:
        raise ValidationError(
            f"malformed clock stamp {text[:64]!r}: expected {STAMP_LEN} characters "
            "like '018f3c2a9b10-000000-9f86d081884c7d65'"
        )
    wall, counter, node = match.groups()
    return Stamp(int(wall, 16), int(counter, 16), node)


def new_node_id() -> str:
    """Return a fresh random node id: 16 lowercase hex characters (64 bits from the OS)."""
    # 64 random bits make two nodes sharing an id (which would let their stamps tie) a
    # practical impossibility, even across many short-lived processes.
    return secrets.token_hex(NODE_LEN // 2)


def too_far_ahead(stamp: Stamp, now_ms: int, bound_ms: int) -> bool:
    """Tell whether ``stamp`` lies more than ``bound_ms`` milliseconds after ``now_ms``.

    The same rule the Lua scripts apply with Redis ``TIME``: a writer whose clock runs far
    ahead would otherwise win every last-writer-wins comparison until real time caught up.

    Args:
        stamp: the stamp to check.
        now_ms: the reference time in milliseconds since the Unix epoch.
        bound_ms: how far ahead of ``now_ms`` a stamp may be; ``0`` allows none.

    Raises:
        ValidationError: ``bound_ms`` is negative.
    """
    if bound_ms < 0:
        raise ValidationError(f"bound_ms must not be negative, got {bound_ms}")
    return stamp.wall_ms - now_ms > bound_ms


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Clock:
    """A hybrid logical clock for one node; safe to share between threads.

    Every stamp it issues is strictly greater than the one before, whatever the wall clock
    does (stand still, step back), and greater than every remote stamp passed to
    :meth:`observe`.

    When the counter would pass :data:`MAX_COUNTER` (more than 16.7 million events within one
    millisecond, or while the wall clock lags) the clock moves ``wall_ms`` on by one and
    restarts the counter at zero. Growing the counter a digit instead would break the fixed
    width that string comparison in Lua depends on; borrowing a millisecond keeps stamps
    increasing and only runs the logical time a little ahead of the wall clock.

    Args:
        node: this node's id, 16 lowercase hex characters; a random one when omitted.
        wall: returns the wall-clock time in milliseconds since the Unix epoch; defaults to
            the system clock. Tests pass a fake one.

    Raises:
        ValidationError: ``node`` is malformed.
    """

    __slots__ = ("_counter", "_issued", "_lock", "_node", "_wall", "_wall_ms")

    def __init__(self, node: str | None = None, *, wall: Callable[[], int] | None = None) -> None:
        self._node = new_node_id() if node is None else _check_node(node)
        self._wall = _wall_ms if wall is None else wall
        self._lock = threading.Lock()
        # The last stamp issued, as plain ints (ZERO's before any): the hot path formats its
        # text without building a Stamp.
        self._wall_ms = 0
        self._counter = 0
        self._issued = False

    @property
    def node(self) -> str:
        """This clock's node id."""
        return self._node

    @property
    def last(self) -> Stamp | None:
        """The last stamp issued by :meth:`now` or :meth:`observe`, or ``None`` before any."""
        with self._lock:
            return Stamp(self._wall_ms, self._counter, self._node) if self._issued else None

    def now(self) -> Stamp:
        """Issue a stamp for a local event (a write about to be sent).

        Raises:
            ValidationError: the wall clock read beyond :data:`MAX_WALL_MS`, or the clock
                cannot advance past :data:`MAX_WALL_MS` (only after observing such a stamp).
        """
        with self._lock:
            wall, counter = self._advance(None)
        return Stamp(wall, counter, self._node)

    def now_text(self) -> str:
        """Issue a stamp like :meth:`now` and return its text form (the write path's call)."""
        with self._lock:
            wall, counter = self._advance(None)
        return f"{wall:012x}-{counter:06x}-{self._node}"

    def observe(self, remote: Stamp) -> Stamp:
        """Merge a stamp received from another node and issue a stamp for the receive event.

        The result is strictly greater than ``remote`` and than the last stamp this clock
        issued, so a write made after seeing ``remote`` always wins over it.

        Raises:
            ValidationError: as for :meth:`now`, e.g. ``remote`` already carries
                :data:`MAX_WALL_MS` and :data:`MAX_COUNTER`, so nothing can follow it.
        """
        with self._lock:
            wall, counter = self._advance(remote)
        return Stamp(wall, counter, self._node)

    def _advance(self, remote: Stamp | None) -> tuple[int, int]:
        # Caller holds the lock. Standard HLC (Kulkarni et al. 2014): the logical time is the
        # largest of local, remote and physical time; the counter continues from whichever
        # of local and remote shares that time, and restarts when physical time is ahead.
        physical = self._wall()
        if physical > MAX_WALL_MS:
            raise ValidationError(f"wall clock reading out of range: {physical!r}")
        # Before the first stamp, act as if ZERO had been issued: the first stamp is then
        # strictly above ZERO even if the wall clock reads 0.
        last_wall, last_counter = self._wall_ms, self._counter
        wall = max(last_wall, physical)
        if remote is not None:
            wall = max(wall, remote.wall_ms)
        counter = -1  # +1 below gives 0 when physical time alone is ahead
        if wall == last_wall:
            counter = last_counter
        if remote is not None and wall == remote.wall_ms:
            counter = max(counter, remote.counter)
        counter += 1
        if counter > MAX_COUNTER:
            if wall == MAX_WALL_MS:
                raise ValidationError("clock exhausted: no stamp can follow the last one")
            wall, counter = wall + 1, 0
        self._wall_ms, self._counter, self._issued = wall, counter, True
        return wall, counter
