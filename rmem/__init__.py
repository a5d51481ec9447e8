"""rmem: Redis-native distributed memory for AI agents.

Sessions (conversation histories) shared by every process that opens them, and long-term
memories searched by meaning and by words, stored in Redis and written atomically by Lua
scripts. ``Client`` and ``AsyncClient`` have the same methods; the sync
one is generated from the async one.

    import rmem
    with rmem.Client.from_url("redis://127.0.0.1:6379/0", namespace="acme") as client:
        s = client.session("user-123", ttl=3600)
        s.append({"role": "user", "content": "hi"})
        s.messages(last=20)
"""

from __future__ import annotations

import importlib.metadata as _metadata

from rmem._async.client import AsyncClient
from rmem._async.memories import AsyncMemories
from rmem._async.session import AsyncSession
from rmem._errors import (
    BackendError,
    CorruptDataError,
    MissingExtraError,
    NotFoundError,
    PoolTimeoutError,
    RmemError,
    SchemaMismatchError,
    ServerError,
    UnavailableError,
    ValidationError,
)
from rmem._memory_core import MemoryRecord, SearchHit
from rmem._models import Event, EventKind, Health, Message, SessionInfo
from rmem._replica import AsyncEventIterator, EventIterator
from rmem._settings import Settings
from rmem._sync.client import Client
from rmem._sync.memories import Memories
from rmem._sync.session import Session
from rmem.embedders import Embedder

try:
    __version__ = _metadata.version("rmem")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = [
    "AsyncClient",
    "AsyncEventIterator",
    "AsyncMemories",
    "AsyncSession",
    "BackendError",
    "Client",
    "CorruptDataError",
    "Embedder",
    "Event",
    "EventIterator",
    "EventKind",
    "Health",
    "Memories",
    "MemoryRecord",
    "Message",
    "MissingExtraError",
    "NotFoundError",
    "PoolTimeoutError",
    "RmemError",
    "SchemaMismatchError",
    "SearchHit",
    "ServerError",
    "Session",
    "SessionInfo",
    "Settings",
    "UnavailableError",
    "ValidationError",
    "__version__",
]
