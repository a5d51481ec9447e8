"""Client settings: one typed object, read from arguments, ``RMEM_*`` variables and defaults."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rmem._codec import DEFAULT_COMPRESS_THRESHOLD
from rmem._errors import ValidationError
from rmem._validate import check_namespace

DEFAULT_URL = "redis://127.0.0.1:6379/0"
DEFAULT_NAMESPACE = "default"
DEFAULT_POOL_SIZE = 64
DEFAULT_SOCKET_TIMEOUT = 5.0
DEFAULT_CONNECT_TIMEOUT = 2.0
DEFAULT_POOL_TIMEOUT = 10.0
DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024
DEFAULT_HNSW_M = 16
DEFAULT_HNSW_EF_CONSTRUCTION = 200
DEFAULT_HNSW_EF_RUNTIME = 100
DEFAULT_CHANGE_LOG_MAXLEN = 10_000
DEFAULT_MAX_STAMP_AHEAD_MS = 60_000
DEFAULT_SESSION_CHANGE_LOG_MAXLEN = 1000
DEFAULT_TOMBSTONE_TTL = 86_400.0
DEFAULT_SYNC_HEARTBEAT = 1.0
DEFAULT_SYNC_OWN_HINT_PAUSE = 0.001
MAX_VECTOR_DIM = 4096

_FIELD_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

_SCHEMES = ("redis://", "rediss://", "unix://", "memory://")


class Settings(BaseSettings):
    """Everything a client needs to know; every field can come from ``RMEM_<FIELD>``.

    Attributes:
        url: ``redis://``, ``rediss://`` (TLS) or ``unix://`` URL (env ``RMEM_URL``), or
            ``memory://`` for the in-process store alone (``memory://<name>`` is shared by the
            clients of one process that name it).
        namespace: the namespace a client starts in.
        pool_size: most connections the client opens; callers wait for a free one.
        pool_timeout: seconds a caller waits for a free connection.
        socket_timeout: seconds to wait for a reply before giving up.
        connect_timeout: seconds to wait for a connection.
        max_message_bytes: largest encoded message accepted (default 1 MiB).
        compress_threshold: payloads at least this large are lz4-compressed.
        session_ttl: TTL in seconds given to new sessions whose handle names none (None: keep).
        session_sliding: whether such sessions use a sliding TTL.
        vector_dim: dimension of memory vectors when no embedder gives one (None: the
            embedder's ``dim``; without either, memories are searched by text only).
        memory_fields: metadata keys declared for ``where=`` equality filters; each is
            indexed (as an exact-match tag) from the str, int, float or bool value it holds.
        search_engine: "auto" (RediSearch when the server has it, else in process),
            "redisearch" (fail if the server lacks it) or "local" (always in process).
        hnsw_m, hnsw_ef_construction, hnsw_ef_runtime: HNSW vector index parameters.
        change_log_maxlen: approximate length at which a namespace's change log is trimmed.
        session_change_log_maxlen: approximate length at which a session's change log is
            trimmed; a replica further behind than this reloads the session.
        tombstone_ttl: seconds a deleted session's tombstone is kept (a delayed write stamped
            before the delete is refused while it lasts).
        sync: keep local replicas of the sessions and records this client reads, kept
            current by pub/sub hints and the change logs (reads are then served in process
            while the replica is known to be caught up).
        sync_max_sessions: most sessions a client keeps replicas of (least recently read
            dropped first).
        sync_heartbeat: seconds between pings on the pub/sub connection; a connection that
            does not answer within ``socket_timeout`` is replaced (replicas read through to
            Redis until caught up again).
        sync_own_hint_pause: seconds the sync thread waits before reading again after a
            wake-up that brought only this client's own session hints (which need no work),
            so a busy writer's hints are read in batches; a change from another client can
            reach the replica this much later. 0 reads each hint as it comes.
        fallback: when Redis cannot be reached, serve calls from the local store and queue
            the writes for Redis (True), or raise UnavailableError (False).
        journal_path: a file where writes made while Redis is unreachable are also kept, so a
            process that stops before Redis returns loses none of them (None: memory only).
        max_stamp_ahead_ms: a write whose clock stamp is further ahead of the Redis server's
            clock than this is refused with ValidationError (a host clock far in the future
            would otherwise win every conflict).
    """

    model_config = SettingsConfigDict(env_prefix="RMEM_", frozen=True, extra="forbid")

    url: str = DEFAULT_URL
    namespace: str = DEFAULT_NAMESPACE
    pool_size: int = Field(DEFAULT_POOL_SIZE, ge=1)
    pool_timeout: float = Field(DEFAULT_POOL_TIMEOUT, gt=0)
    socket_timeout: float = Field(DEFAULT_SOCKET_TIMEOUT, gt=0)
    connect_timeout: float = Field(DEFAULT_CONNECT_TIMEOUT, gt=0)
    max_message_bytes: int = Field(DEFAULT_MAX_MESSAGE_BYTES, ge=64)
    compress_threshold: int = Field(DEFAULT_COMPRESS_THRESHOLD, ge=16)
    session_ttl: float | None = Field(None, gt=0)
    session_sliding: bool = True
    vector_dim: int | None = Field(None, ge=2, le=MAX_VECTOR_DIM)
    memory_fields: tuple[str, ...] = ()
    search_engine: Literal["auto", "redisearch", "local"] = "auto"
    hnsw_m: int = Field(DEFAULT_HNSW_M, ge=2, le=512)
    hnsw_ef_construction: int = Field(DEFAULT_HNSW_EF_CONSTRUCTION, ge=1, le=4096)
    hnsw_ef_runtime: int = Field(DEFAULT_HNSW_EF_RUNTIME, ge=1, le=4096)
    change_log_maxlen: int = Field(DEFAULT_CHANGE_LOG_MAXLEN, ge=100)
    max_stamp_ahead_ms: int = Field(DEFAULT_MAX_STAMP_AHEAD_MS, ge=0)
    session_change_log_maxlen: int = Field(DEFAULT_SESSION_CHANGE_LOG_MAXLEN, ge=10)
    tombstone_ttl: float = Field(DEFAULT_TOMBSTONE_TTL, gt=0)
    sync: bool = True
    sync_heartbeat: float = Field(DEFAULT_SYNC_HEARTBEAT, gt=0)
    sync_own_hint_pause: float = Field(DEFAULT_SYNC_OWN_HINT_PAUSE, ge=0, le=1)
    sync_max_sessions: int = Field(10_000, ge=1)
    fallback: bool = True
    journal_path: str | None = None

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if not url.startswith(_SCHEMES):
            raise ValueError(
                f"unsupported URL {url!r}: use redis://, rediss://, unix:// or memory://"
            )
        return url

    @field_validator("namespace", mode="before")
    @classmethod
    def _valid_namespace(cls, namespace: object) -> str:
        # Before pydantic's coercion, which would decode b"ns": with_namespace refuses it too.
        return check_namespace(namespace)

    @field_validator("memory_fields")
    @classmethod
    def _valid_fields(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            if not _FIELD_NAME_RE.fullmatch(name):
                raise ValueError(
                    f"memory field {name!r} must be 1-64 characters of A-Z a-z 0-9 _, "
                    "not starting with a digit"
                )
        if len(set(names)) != len(names):
            raise ValueError(f"memory_fields has duplicates: {names!r}")
        return names

    @classmethod
    def from_url(cls, url: str | None = None, **overrides: Any) -> Settings:
        """Build settings from ``url`` (or ``RMEM_URL``, or the default) plus overrides.

        Raises:
            ValidationError: an unknown option or a bad value, with the reason.
        """
        values = {k: v for k, v in overrides.items() if v is not None}
        if url is not None:
            values["url"] = url
        try:
            return cls(**values)
        except ValidationError:
            raise
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise ValidationError(f"invalid client settings: {exc}") from None


def redacted(url: str) -> str:
    """Return ``url`` with any password replaced by ``***`` (safe for errors and logs)."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user + ':' if user else ':'}***@{host}"
