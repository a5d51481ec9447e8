"""Public data types: messages, session info, health."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rmem._ids import new_id
from rmem._validate import _CONTROL_RE

__all__ = ["Event", "EventKind", "Health", "Message", "SessionInfo"]

_FIELD_SET = frozenset(("id", "role", "content", "created_at", "name", "metadata"))
_PLAIN_KEYS = frozenset(("role", "content"))


class Message(BaseModel):
    """One message of a session.

    Unknown fields are kept and round-trip exactly, so framework items (OpenAI Agents items,
    LangChain messages) survive storage. Values must be JSON-like: str-keyed dicts, lists,
    str, int, float, bool, None (tuples come back as lists).

    Attributes:
        role: who spoke ("user", "assistant", "system", "tool", ...); required, not blank.
            ``role``, ``id`` and ``name`` must be ``str`` (bytes are refused).
        content: a string or structured content (lists and dicts of JSON-like values).
        id: time-ordered unique id, assigned when absent (1-256 characters, no control
            characters); appending the same id twice stores the message once.
        created_at: Unix time in seconds (finite), assigned when absent.
        name: optional author name.
        metadata: optional free-form dict.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    # Strict: bytes are not text here (lax pydantic would decode them), nor "12.5" a time.
    role: str = Field(strict=True)
    content: Any = None
    id: str = Field(default_factory=new_id, min_length=1, max_length=256, strict=True)
    created_at: float = Field(default_factory=time.time, allow_inf_nan=False, strict=True)
    name: str | None = Field(None, strict=True)
    metadata: dict[str, Any] | None = Field(None, strict=True)

    @field_validator("id")
    @classmethod
    def _id_printable(cls, value: str) -> str:
        if _CONTROL_RE.search(value):
            raise ValueError("id must not contain control characters")
        return value

    @field_validator("role")
    @classmethod
    def _role_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("role must not be empty")
        return value

    def to_dict(self) -> dict[str, Any]:
        """Return the message as a plain dict (declared fields, then unknown fields)."""
        data: dict[str, Any] = {
            "id": self.id,
            "role": self.role,
            "content": self.content,
            "created_at": self.created_at,
        }
        if self.name is not None:
            data["name"] = self.name
        if self.metadata is not None:
            data["metadata"] = self.metadata
        extra = self.__pydantic_extra__
        if extra:
            data.update(extra)
        return data

    @classmethod
    def _plain(cls, given: dict[str, Any]) -> Message | None:
        """The message ``model_validate(given)`` makes when ``given`` is exactly a ``role`` that
        is a non-blank ``str``, and optionally a ``content`` that is a ``str`` or None; else None.

        The append path's common case, made without pydantic's validation (~2x faster): with
        such input no rule can fail, and the instance state is what pydantic would set
        (declared fields in order, defaults from the same factories, ``fields_set`` = keys).
        """
        if not given.keys() <= _PLAIN_KEYS:
            return None
        role = given.get("role")
        content = given.get("content")
        if type(role) is not str or not role.strip():
            return None
        if content is not None and type(content) is not str:
            return None
        msg = cls.__new__(cls)
        set_state = object.__setattr__
        state = {
            "role": role,
            "content": content,
            "id": new_id(),
            "created_at": time.time(),
            "name": None,
            "metadata": None,
        }
        set_state(msg, "__dict__", state)
        set_state(msg, "__pydantic_extra__", {})
        set_state(msg, "__pydantic_fields_set__", set(given))
        set_state(msg, "__pydantic_private__", None)
        return msg

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> Message:
        """Rebuild a message from a dict rmem stored itself (validated on the way in)."""
        return cls.from_stored_many([data])[0]

    @classmethod
    def from_stored_many(cls, items: list[dict[str, Any]]) -> list[Message]:
        """Rebuild messages from dicts rmem stored itself (taking ownership), skipping validation.

        Reading the last 20 messages is on every agent turn's path; setting instance state
        directly costs half of pydantic's ``model_construct``.
        """
        new, set_state, fields_of = cls.__new__, object.__setattr__, _FIELD_SET
        all_fields = set(_FIELD_SET)
        out = []
        for data in items:
            msg = new(cls)
            if data.keys() <= fields_of:
                # The decoded dict is ours: it becomes the instance state as it is.
                state, extra = data, {}
                if len(state) < 6:
                    state.setdefault("content", None)
                    state.setdefault("name", None)
                    state.setdefault("metadata", None)
            else:
                extra = {k: v for k, v in data.items() if k not in fields_of}
                state = {k: v for k, v in data.items() if k in fields_of}
                state.setdefault("content", None)
                state.setdefault("name", None)
                state.setdefault("metadata", None)
            state.setdefault("created_at", 0.0)
            set_state(msg, "__dict__", state)
            set_state(msg, "__pydantic_extra__", extra)
            set_state(msg, "__pydantic_fields_set__", all_fields.copy())
            set_state(msg, "__pydantic_private__", None)
            out.append(msg)
        return out


class SessionInfo(BaseModel):
    """What ``Session.info()`` reports about a session.

    Attributes:
        id: the session id.
        namespace: the namespace it lives in.
        message_count: messages stored now.
        size_bytes: encoded size of those messages.
        created_at: Unix time (seconds) of the first write.
        updated_at: Unix time (seconds) of the last write.
        ttl: seconds left before the session expires, or None when it is kept forever.
        ttl_policy: the configured TTL in seconds, or None.
        sliding: True when reads and writes restart the TTL.
        revision: counts every change made to the session.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    namespace: str
    message_count: int
    size_bytes: int
    created_at: float
    updated_at: float
    ttl: float | None
    ttl_policy: float | None
    sliding: bool
    revision: int


class Health(BaseModel):
    """What ``Client.health()`` reports.

    Attributes:
        state: "connected" (Redis answers), "degraded" (it does not: calls are served by the
            local store and writes queue in the outbox) or "recovering" (Redis answers again
            and the outbox is being replayed). A ``memory://`` client is always "connected".
        url: the Redis URL, without password (``memory://`` for the local backend).
        backend: "redis", or "memory" for a ``memory://`` client.
        latency_ms: round-trip time of the health probe, when connected.
        redis_version: the server's version, when connected.
        search: True when the server has the query engine (RediSearch).
        search_engine: what serves ``memories.search``: "redisearch" (the server) or
            "local" (in process: no search module, ``search_engine="local"``, or degraded).
        pending_writes: writes made while degraded that Redis has not received yet.
        last_error: why Redis was last found unreachable, if it ever was.
        degraded_seconds: time this client has spent degraded or recovering, in total.
        outages: how many times the client went degraded.
        replayed: writes replayed to Redis by recoveries.
        rejected: replayed writes Redis refused (each is logged).
        last_recovery_seconds: how long the last recovery took, first answer to connected.
    """

    model_config = ConfigDict(frozen=True)

    state: Literal["connected", "degraded", "recovering"]
    url: str
    backend: Literal["redis", "memory"] = "redis"
    latency_ms: float | None = None
    redis_version: str | None = None
    search: bool = False
    search_engine: Literal["redisearch", "local"] = "local"
    pending_writes: int = 0
    last_error: str | None = None
    degraded_seconds: float = 0.0
    outages: int = 0
    replayed: int = 0
    rejected: int = 0
    last_recovery_seconds: float | None = None


EventKind = Literal[
    "session.append",
    "session.pop",
    "session.clear",
    "session.policy",
    "session.delete",
    "session.expire",
    "memory.put",
    "memory.delete",
    "memory.expire",
    "client.degraded",
    "client.recovering",
    "client.connected",
]


class Event(BaseModel):
    """A change made by any instance, delivered by ``client.subscribe`` and ``client.events``.

    Attributes:
        kind: what happened: ``session.append``, ``session.pop``, ``session.clear``,
            ``session.policy`` (TTL policy set), ``session.delete``, ``session.expire``,
            ``memory.put`` (added or updated), ``memory.delete``, ``memory.expire``; and this
            client's own fallback states: ``client.degraded`` (Redis unreachable, calls served
            locally), ``client.recovering`` (replaying), ``client.connected`` (back).
        namespace: the namespace it happened in.
        session_id: the session, for ``session.*`` events.
        record_id: the memory record, for ``memory.*`` events.
        stamp: the writer's hybrid logical clock stamp (None for expiries).
        origin: the node id of the writing client (None for expiries); compare with
            ``client.node_id`` to tell this client's own changes apart.
        change_id: the change log entry of the change (None for expiries).
    """

    model_config = ConfigDict(frozen=True)

    kind: EventKind
    namespace: str
    session_id: str | None = None
    record_id: str | None = None
    stamp: str | None = None
    origin: str | None = None
    change_id: str | None = None
