"""The LangGraph store's item cache: a get of an item this process read before, from memory.

Shared by ``RmemStore`` and ``AsyncRmemStore`` through :class:`~rmem.integrations.
_langgraph_core.StoreCore`; no I/O. It keeps, per item (``<encoded namespace>/<key>``), what
the last read from Redis found: the packed value and its times, or that the item was absent.
It is coherent the way rmem's session replicas are (docs/decisions.md, 34):

- every write of an item goes through ``lua/lgstore_put.lua``, which publishes one hint
  naming the items it wrote or deleted on the rmem namespace's sync channel; the client's sync
  thread (:class:`~rmem._replica.SyncEngine`) passes it to :meth:`ItemCache.drop`;
- it serves only while that thread is connected and the channel's subscription confirmed,
  within one epoch (one subscription); when a hint may have been missed (a lost connection,
  a new epoch, a recovery from the fallback) it drops everything, and it never serves while
  the client is degraded;
- a read fills it only when nothing was dropped since a ticket taken before the read's round
  trip (a generation counter): a hint that arrived meanwhile may be newer than the read;
- this client's own writes drop their items before and after the script, in every store on
  the client (:meth:`SyncEngine.items_changed`), so its own writes are read back at once;
- items with a TTL are never kept: they expire without a hint, and a read of one must restart
  its TTL in Redis. An absent item is kept: only a put, which publishes, brings it back.

Values are kept packed (immutable bytes) and unpacked for each hit, so a caller that changes
``item.value`` changes its own copy only.
"""

from __future__ import annotations

import enum
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Literal, NamedTuple

from rmem._replica import SyncEngine

MAX_CACHED_ITEMS = 10_000
"""Most items one store keeps (least recently read dropped first)."""


class Cached(NamedTuple):
    """An item as the cache keeps it: its packed value and its times."""

    packed: bytes
    created: datetime
    updated: datetime


class _Missing(enum.Enum):
    MISSING = 0


MISSING: Literal[_Missing.MISSING] = _Missing.MISSING
"""What :meth:`ItemCache.lookup` gives for an item it cannot serve."""

Found = Cached | None | Literal[_Missing.MISSING]
"""An item kept (:class:`Cached`), kept as absent (None), or not served (:data:`MISSING`)."""


class Ticket(NamedTuple):
    """Taken before a read's round trip; a fill with it is refused if anything was dropped
    since, or the subscription it was taken under is gone."""

    epoch: int
    gen: int


class ItemCache:
    """The items of one store that it may serve without a round trip. Thread-safe.

    Args:
        engine: the client's sync engine, whose thread delivers the store's item hints.
        namespace: the rmem namespace the store lives in (its sync channel).
        degraded: whether the client serves calls from its local fallback store now.
        size: most items kept.
    """

    def __init__(
        self,
        engine: SyncEngine,
        namespace: str,
        degraded: Callable[[], bool],
        size: int = MAX_CACHED_ITEMS,
    ) -> None:
        self._engine = engine
        self._namespace = namespace
        self._degraded = degraded
        self._size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[str, Cached | None] = OrderedDict()
        self._epoch: int | None = None  # the subscription every kept item was read under
        self._gen = 0  # bumped by every drop: a fill whose ticket predates one is refused
        # Subscribe now, so that the store's first reads can already fill the cache.
        engine.watch_items(namespace, self)

    def lookup(self, refs: Sequence[str]) -> tuple[list[Found], Ticket | None]:
        """Return what the cache may serve of ``refs`` (:data:`MISSING` where it may not),
        and a ticket for filling the others after reading them from Redis (None: do not)."""
        epoch = None if self._degraded() else self._engine.watch_items(self._namespace, self)
        with self._lock:
            if epoch != self._epoch:
                # Another subscription (or none): what was read under the last may be stale.
                self._items.clear()
                self._epoch = epoch
                self._gen += 1
            if epoch is None:
                return [MISSING] * len(refs), None
            found: list[Found] = []
            for ref in refs:
                entry = self._items.get(ref, MISSING)
                if entry is not MISSING:
                    self._items.move_to_end(ref)
                found.append(entry)
            return found, Ticket(epoch, self._gen)

    def fill(self, ticket: Ticket, ref: str, entry: Cached | None) -> None:
        """Keep what a read begun with ``ticket`` found of ``ref`` (None: absent), unless a
        drop or a new subscription came in between."""
        if self._degraded():
            return  # read from the local fallback store: not what Redis holds
        epoch = self._engine.watch_items(self._namespace, self)
        with self._lock:
            if epoch != ticket.epoch or self._epoch != epoch or self._gen != ticket.gen:
                return
            self._items[ref] = entry
            self._items.move_to_end(ref)
            if len(self._items) > self._size:
                self._items.popitem(last=False)

    def changed(self, refs: Sequence[str]) -> None:
        """This client writes (or wrote) ``refs``: drop them in every store on the client."""
        self._engine.items_changed(self._namespace, refs)

    def drop(self, refs: Sequence[str] | None) -> None:
        """Forget ``refs``, or everything when None (see :class:`~rmem._replica.ItemWatcher`)."""
        with self._lock:
            self._gen += 1
            if refs is None:
                self._items.clear()
            else:
                for ref in refs:
                    self._items.pop(ref, None)

    def __len__(self) -> int:
        return len(self._items)
