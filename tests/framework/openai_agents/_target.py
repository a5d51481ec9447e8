"""Where the vendored SDK tests keep their sessions: the harness's Redis, a namespace per test.

The SDK's tests build ``RedisSession`` objects on fakeredis or on ``redis://localhost:6379/15``;
the vendored copies build :class:`RmemSession` objects through these helpers instead. Every
session and client made here is closed when the test ends, on the test's own event loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import rmem

if TYPE_CHECKING:
    from rmem.integrations.openai_agents import RmemSession

_state: dict[str, Any] = {}


def bind(url: str, namespace: str) -> None:
    """Point the helpers at ``url`` and a namespace of the current test."""
    _state.update(url=url, namespace=namespace, opened=[])


def url() -> str:
    """The harness's Redis URL."""
    return str(_state["url"])


def namespace(key_prefix: str | None = None) -> str:
    """The test's namespace, or one under it for a ``key_prefix`` (tests stay isolated)."""
    base = str(_state["namespace"])
    return base if key_prefix is None else f"{base}.{key_prefix}"


def session(session_id: str, *, key_prefix: str | None = None, **kwargs: Any) -> RmemSession:
    """An RmemSession that owns its client (like ``RedisSession.from_url``)."""
    from rmem.integrations.openai_agents import RmemSession

    made = RmemSession.from_url(session_id, url=url(), key_prefix=namespace(key_prefix), **kwargs)
    _state["opened"].append(made)
    return made


def client() -> rmem.AsyncClient:
    """An rmem client the test passes to sessions (the caller-owned ``redis_client``)."""
    made = rmem.AsyncClient.from_url(url(), namespace=namespace())
    _state["opened"].append(made)
    return made


async def close_all() -> None:
    """Close what the test opened (sessions first; closing twice is harmless)."""
    opened = _state.get("opened", [])
    for obj in reversed(opened):
        if not isinstance(obj, rmem.AsyncClient):
            await obj.close()
    for obj in opened:
        if isinstance(obj, rmem.AsyncClient):
            await obj.aclose()
    opened.clear()
