"""How the vendored LangChain tests make their histories: RmemChatMessageHistory on the run's Redis.

The vendored tests built ``InMemoryChatMessageHistory`` objects (or small in-test classes);
where they did, they call :func:`new_history` instead. Each history made here is closed after
its test (async tests: in their own event loop, see ``conftest.py``).
"""

from __future__ import annotations

import importlib.metadata
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

    from rmem.integrations.langchain import RmemChatMessageHistory


def _version(name: str) -> tuple[int, ...]:
    try:
        text = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return (0,)
    return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())


LC_VERSION = _version("langchain-core")

# Set by the autouse fixture in conftest.py for the running test.
STATE: dict[str, Any] = {}


def new_namespace() -> str:
    """A namespace no other test uses (LangChain's tests reuse session ids like "1")."""
    return f"lc-{uuid.uuid4().hex[:12]}"


def new_history(
    session_id: str = "session", namespace: str | None = None
) -> RmemChatMessageHistory:
    """An empty RmemChatMessageHistory, made from the test run's Redis URL."""
    from rmem.integrations.langchain import RmemChatMessageHistory

    history = RmemChatMessageHistory(
        session_id, STATE["redis_url"], namespace=namespace or new_namespace()
    )
    STATE["created"].append(history)
    return history


class MessagesView:
    """A read-only list view of a history's messages (stands in for a test's own ``store``)."""

    def __init__(self, history: RmemChatMessageHistory) -> None:
        self._history = history

    def __len__(self) -> int:
        return len(self._history.messages)

    def __getitem__(self, index: int) -> BaseMessage:
        return self._history.messages[index]


class HistoryOf:
    """Equal to a history holding exactly ``messages`` (stands in for comparing two
    ``InMemoryChatMessageHistory`` objects, which compares their message lists)."""

    def __init__(self, messages: list[BaseMessage]) -> None:
        self.messages = messages

    def __eq__(self, other: object) -> bool:
        from rmem.integrations.langchain import RmemChatMessageHistory

        if isinstance(other, RmemChatMessageHistory):
            return other.messages == self.messages
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"HistoryOf({self.messages!r})"
