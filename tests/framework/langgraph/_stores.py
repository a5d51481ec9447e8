"""How the vendored LangGraph store tests get an rmem store: the only rmem-specific code here.

Upstream tests build ``InMemoryStore()`` / ``PostgresStore.from_conn_string(...)`` inside
their bodies and fixtures; the vendored copies build :class:`RmemTestStore` (or call
:func:`store_url`) instead. Each store gets a fresh rmem namespace on the test run's Redis,
and everything it created is dropped when the test ends (see ``conftest.py``).
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import rmem
from rmem._keys import store_keys
from rmem.integrations.langgraph import RmemStore

VECTOR_TYPES = ["vector", "halfvec"]  # as langgraph-checkpoint-postgres's tests/conftest.py

_url: list[str] = []
_namespaces: list[str] = []
_clients: list[rmem.Client] = []


def store_url() -> str:
    """The Redis URL of the running test (set by the autouse fixture in conftest.py)."""
    return _url[-1]


def fresh_namespace() -> str:
    """A new rmem namespace for one store; its keys and indexes are dropped after the test."""
    name = f"lg-{uuid.uuid4().hex[:12]}"
    _namespaces.append(name)
    return name


class RmemTestStore(RmemStore):
    """An RmemStore on the test Redis, in a fresh namespace: stands in for InMemoryStore."""

    def __init__(self, **kwargs: Any) -> None:
        client = rmem.Client.from_url(store_url(), namespace=fresh_namespace())
        _clients.append(client)
        super().__init__(client, **kwargs)


def cleanup() -> None:
    """Close the clients made for a test and drop its stores' indexes and items."""
    while _clients:
        _clients.pop().close()
    if not _namespaces:
        return
    with rmem.Client.from_url(store_url()) as client:
        raw = client._backend
        while _namespaces:
            keys = store_keys(_namespaces.pop())
            for index in (keys.item_index, keys.vector_index):
                with contextlib.suppress(rmem.RmemError):  # never created
                    raw.call("FT.DROPINDEX", index, "DD")
            raw.call("DEL", keys.registry, keys.meta)
