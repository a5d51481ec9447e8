"""The rmem exception tree.

Every error rmem raises is an :class:`RmemError`; raw redis-py exceptions never reach users::

    RmemError
    ├── ValidationError        bad input; raised before anything is written (also a ValueError)
    ├── NotFoundError          the session or record does not exist (also a LookupError)
    ├── UnavailableError       Redis cannot be reached; names the host
    │   └── PoolTimeoutError   no pooled connection came free in time (the fallback stays off)
    ├── CorruptDataError       a value in Redis does not decode or has the wrong type; names the key
    ├── BackendError           Redis answered with an error rmem did not expect
    ├── SchemaMismatchError    a namespace's search index has another dimension or schema
    └── ServerError            the embedded Redis server could not start or stop

Errors carry context (``namespace``, ``session``, ``key``) as attributes where it applies.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "CorruptDataError",
    "NotFoundError",
    "PoolTimeoutError",
    "RmemError",
    "SchemaMismatchError",
    "ServerError",
    "UnavailableError",
    "ValidationError",
]


class RmemError(Exception):
    """Base class of every error raised by rmem.

    Attributes:
        namespace: the namespace the failing call worked in, when known.
        session: the session id the failing call worked on, when known.
        key: the Redis key involved, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        namespace: str | None = None,
        session: str | None = None,
        key: str | None = None,
    ) -> None:
        super().__init__(message)
        self.namespace = namespace
        self.session = session
        self.key = key


class ValidationError(RmemError, ValueError):
    """Input was refused before anything was written; nothing changed."""


class NotFoundError(RmemError, LookupError):
    """The session or record asked for does not exist (or has expired)."""


class UnavailableError(RmemError):
    """Redis cannot be reached (refused, timed out, or the connection dropped)."""


class PoolTimeoutError(UnavailableError):
    """No connection of the client's pool came free within ``pool_timeout``: the client has more
    calls in flight than ``pool_size``. Redis is not down, so the fallback does not take over;
    raise ``pool_size`` or ``pool_timeout``, or make fewer calls at once."""


class CorruptDataError(RmemError):
    """A value stored in Redis cannot be decoded, or a key of rmem's holds another type of
    value (``WRONGTYPE``); ``key`` names where it was found."""


class MissingExtraError(RmemError, ImportError):
    """An rmem adapter was imported without the install extra it needs; the message names it."""


class BackendError(RmemError):
    """Redis answered with an error that rmem does not map to a more specific class."""


class SchemaMismatchError(RmemError):
    """The search index of a namespace exists with a schema this client cannot use.

    Raised instead of searching an index that would silently return nothing (another vector
    dimension, distance metric or field type). ``expected`` and ``found`` describe both sides.
    """

    def __init__(
        self, message: str, *, expected: str, found: str, namespace: str | None = None
    ) -> None:
        super().__init__(message, namespace=namespace)
        self.expected = expected
        self.found = found


class ServerError(RmemError, RuntimeError):
    """The embedded Redis server (``rmem.server``) could not be found, started or stopped."""


def from_redis_error(
    exc: BaseException,
    where: str,
    *,
    namespace: str | None = None,
    session: str | None = None,
    key: str | None = None,
) -> RmemError:
    """Map a redis-py (or socket) exception to the rmem error users see; the one place that does.

    ``where`` names the server (host:port or socket path) for connection errors.
    """
    # Imported here so the error tree stays importable without touching redis-py internals.
    from redis import exceptions as rx

    ctx = {"namespace": namespace, "session": session, "key": key}
    if isinstance(exc, rx.ConnectionError | rx.TimeoutError | OSError | TimeoutError):
        return UnavailableError(f"cannot reach Redis at {where}: {exc}", **ctx)
    if isinstance(exc, rx.BusyLoadingError):
        return UnavailableError(f"Redis at {where} is loading its dataset: {exc}", **ctx)
    message = str(exc)
    if message.startswith("RMEM_VALIDATION"):
        return ValidationError(message.partition(" ")[2], **ctx)
    if message.startswith("RMEM_CORRUPT "):
        # 'RMEM_CORRUPT <key>\t<what>' from a script (lua/_damage.lua). The script knows which
        # key is damaged; ``key`` is only the first key of the operation.
        damaged, _, what = message.removeprefix("RMEM_CORRUPT ").partition("\t")
        return CorruptDataError(
            f"{damaged}: {what} (written by something else?)", **{**ctx, "key": damaged}
        )
    if message.startswith("WRONGTYPE"):
        # Something else wrote a key of rmem's with another type; callers that can tell
        # which key (``key`` is only the first of the operation) name it precisely.
        return CorruptDataError(
            f"a key holds the wrong kind of value for rmem (written by something else?): {message}",
            **ctx,
        )
    return BackendError(f"Redis at {where} answered with an error: {message}", **ctx)
