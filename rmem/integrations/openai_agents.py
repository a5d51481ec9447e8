"""OpenAI Agents SDK sessions stored in rmem: :class:`RmemSession`.

A drop-in for the SDK's ``RedisSession`` (``agents.extensions.memory``) that keeps the
conversation in an rmem session, so every process that opens the same session id sees the
same history, ``add_items`` is one atomic Lua script however many items it writes, and
``pop_item`` is atomic too::

    from agents import Agent, Runner
    from rmem.integrations.openai_agents import RmemSession

    session = RmemSession.from_url("user-123", url="redis://127.0.0.1:6379/0", ttl=3600)
    result = await Runner.run(agent, "Hello", session=session)
    await session.close()

Requires the extra: ``pip install 'rmem[openai-agents]'``; importing this module without it
raises :class:`MissingExtraError` (an ``ImportError`` and an ``rmem.RmemError``).

How an item is stored: an SDK item (a JSON-like dict of any type: messages, function calls
and their outputs, reasoning, tool calls, ...) becomes one :class:`rmem.Message` whose fields
are the item's own fields, so rmem readers see ``role`` and ``content`` as they are. rmem owns
a message's ``id`` and ``created_at`` (an SDK item's ``id`` such as ``"msg_..."`` or ``"fc_..."``
is not unique enough to deduplicate on); those, an item without a usable ``role`` (a
``function_call`` has none: the message takes the item's ``type`` as role), and any value rmem
types differently (a ``name`` that is not a string, a ``metadata`` that is not a dict) are
recorded in the message's ``openai_agents`` field, so reading gives back a dict equal to the
item that was written.

Reads: a client made with rmem's default ``sync=True`` serves the sessions it follows from its
local replica, kept coherent by pub/sub hints; a write by another process reaches it when the
hint does (milliseconds). Give ``redis_kwargs={"sync": False}`` (or a client made with
``sync=False``) to read through to Redis on every call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar, cast

import msgpack

from rmem._async.client import AsyncClient
from rmem._async.session import AsyncSession
from rmem._codec import packb
from rmem._errors import CorruptDataError, MissingExtraError, RmemError, ValidationError
from rmem._models import Message
from rmem._session_core import UNSET, Unset
from rmem._settings import Settings
from rmem._validate import MAX_DEPTH
from rmem.integrations._json import copy_plain
from rmem.integrations._session_io import (
    StoredForms,
    aextend_encoded,
    aread_forms,
    areplace,
    array_header,
    encode_many,
    prefix_namespace,
    replica_messages,
)

__all__ = [
    "ENVELOPE",
    "MissingExtraError",
    "RmemSession",
    "SessionClosedError",
    "item_to_message",
    "message_to_item",
]

_INSTALL_HINT: Final = "pip install 'rmem[openai-agents]'"


class SessionClosedError(RmemError, RuntimeError):
    """The session was closed (``close()``) and owned its connection: make a new one."""


# The SDK is imported after the error class exists, so a missing extra raises rmem's error.
try:
    from agents.memory.session_settings import (
        SessionSettings,
        coerce_session_settings,
        resolve_session_limit,
    )
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise MissingExtraError(
        f"rmem.integrations.openai_agents needs the OpenAI Agents SDK: {_INSTALL_HINT} ({exc})"
    ) from exc

if TYPE_CHECKING:
    from agents.items import TResponseInputItem

T = TypeVar("T")

ENVELOPE: Final = "openai_agents"  # message field recording what rmem could not keep as is
_FALLBACK_ROLE: Final = "item"
_MISSING: Final = object()
_PACKED_CACHE_MAX: Final = 10_000  # items whose encoded form a session keeps (then starts over)
_STORED_ITEMS_MAX_BYTES: Final = 32 * 2**20  # bound on _STORED_ITEMS (then it starts over)
# Message fields rmem assigns itself: an item's own values for them go into the envelope.
_RMEM_OWNED: Final = ("id", "created_at", ENVELOPE)


def item_to_message(item: object, index: int = 0) -> dict[str, Any]:
    """Map an SDK item to the fields of the rmem message that stores it (see module doc).

    The fields share nested values with ``item`` (``RmemSession.add_items`` copies first).

    Raises:
        ValidationError: ``item`` is not a dict with string keys.
    """
    if not isinstance(item, Mapping):
        raise ValidationError(f"item {index} must be a dict, not {type(item).__name__}")
    fields = dict(item)
    if not all(isinstance(key, str) for key in fields):
        raise ValidationError(f"item {index}: keys must be strings")
    return _to_fields(fields)


def _to_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """:func:`item_to_message` on an item with string keys that it changes into the fields."""
    kept: dict[str, Any] = {}
    for key in _RMEM_OWNED:
        if key in fields:
            kept[key] = fields.pop(key)
    name = fields.get("name", _MISSING)
    if name is not _MISSING and not isinstance(name, str):  # None too: rmem drops a None name
        kept["name"] = fields.pop("name")
    metadata = fields.get("metadata", _MISSING)
    if metadata is not _MISSING and not isinstance(metadata, dict):
        kept["metadata"] = fields.pop("metadata")
    absent: list[str] = []
    role = fields.get("role", _MISSING)
    if not (isinstance(role, str) and role.strip()):
        if role is _MISSING:
            absent.append("role")
        else:
            kept["role"] = role
        kind = fields.get("type")
        fields["role"] = kind if isinstance(kind, str) and kind.strip() else _FALLBACK_ROLE
    if "content" not in fields:
        absent.append("content")
    if kept or absent:
        envelope: dict[str, Any] = {}
        if kept:
            envelope["fields"] = kept
        if absent:
            envelope["absent"] = absent
        fields[ENVELOPE] = envelope
    return fields


def _copied_fields(item: Any, index: int) -> dict[str, Any]:
    """:func:`item_to_message` on an item of a plain copy (``_copy``), which it changes."""
    if type(item) is not dict:
        return item_to_message(item, index)  # raises: not a dict
    return _to_fields(item)


def _checked_fields(item: Any, index: int) -> dict[str, Any]:
    """:func:`item_to_message` on an item of a copy not proven plain, which it changes."""
    if type(item) is not dict or not all(type(key) is str for key in item):
        return item_to_message(item, index)  # raises: not a dict, or a key is not a str
    return _to_fields(item)


def message_to_item(message: Message) -> dict[str, Any]:
    """Return the SDK item stored as ``message`` (the inverse of :func:`item_to_message`).

    A message written by rmem directly (not through this adapter) comes back as its role,
    content, name, metadata and extra fields, without rmem's ``id`` and ``created_at``.
    The item shares nested values with ``message`` (``RmemSession`` returns copies).

    Raises:
        CorruptDataError: the message's ``openai_agents`` field is not one this module wrote.
    """
    item: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.name is not None:
        item["name"] = message.name
    if message.metadata is not None:
        item["metadata"] = message.metadata
    extra = message.__pydantic_extra__
    if extra:
        item.update(extra)
        envelope = item.pop(ENVELOPE, None)
        if envelope is not None:
            _apply_envelope(item, envelope, message.id)
    return item


def _stored_to_item(stored: dict[str, Any]) -> dict[str, Any]:
    """:func:`message_to_item` on a message's stored dict, which becomes the item."""
    mid = stored.pop("id")
    stored.pop("created_at", None)
    stored.setdefault("content", None)
    for declared in ("name", "metadata"):  # rmem reads a None one as absent
        if declared in stored and stored[declared] is None:
            del stored[declared]
    envelope = stored.pop(ENVELOPE, None)
    if envelope is not None:
        _apply_envelope(stored, envelope, mid)
    return stored


# The items of stored messages that reads through to Redis (``sync=False``) met twice, packed,
# by the stored bytes (see StoredForms), shared by every session of the process (apps often
# make one per request).
_STORED_ITEMS: Final = StoredForms(_stored_to_item, _STORED_ITEMS_MAX_BYTES)


def _copy(items: Any) -> tuple[Any, bool]:
    """Deep-copy JSON-like values (tuples become lists), at C speed; True when the copy is
    proven plain enough that rmem's checks of its values need not walk them.

    rmem's local replica keeps the messages this process wrote and hands out shared instances,
    while SDK callers may change the items they passed or got: neither side may see the
    other's changes.

    The proof (``copy_plain``) bounds the nesting of ``items`` (the list counting as one
    level) by ``MAX_DEPTH - 1``: an item's field values then nest at most ``MAX_DEPTH - 3``
    levels, or ``MAX_DEPTH - 1`` once ``item_to_message`` moves one into the envelope
    (``{"fields": {key: value}}``), as :func:`encode_many`'s ``plain`` asks.

    Raises:
        ValidationError: a value msgpack cannot encode (an object, an int beyond 64 bits) or a
            dict key that is not a string.
    """
    try:
        return copy_plain(items, MAX_DEPTH - 1)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValidationError(f"items hold a value that cannot be stored: {exc}") from None


def _apply_envelope(item: dict[str, Any], envelope: object, message_id: str) -> None:
    absent = envelope.get("absent", ()) if isinstance(envelope, dict) else None
    kept = envelope.get("fields", {}) if isinstance(envelope, dict) else None
    if not isinstance(absent, list | tuple) or not isinstance(kept, dict):
        raise CorruptDataError(
            f"message {message_id!r} has an {ENVELOPE!r} field this adapter did not write"
        )
    for key in absent:
        item.pop(key, None)
    item.update(kept)


class RmemSession:
    """An OpenAI Agents SDK ``Session`` backed by an rmem session.

    Implements the SDK's ``Session`` protocol (``session_id``, ``session_settings``,
    ``get_items``, ``add_items``, ``pop_item``, ``clear_session``) plus ``close`` and ``ping``
    like the SDK's ``RedisSession``, and the hook its compaction uses to replace a history
    atomically (``_atomic_replace_items``). Making one does no I/O.

    Args:
        session_id: the conversation id (1-256 characters, no control characters).
        client: the :class:`rmem.AsyncClient` to use; the caller keeps owning it
            (``close()`` leaves it open). Without one, a client is made from ``RMEM_URL`` and
            the session owns it. :meth:`from_url` takes a URL instead.
        namespace: the rmem namespace of the session (default: the client's).
        key_prefix: accepted for ``RedisSession`` compatibility; used as the namespace.
        ttl: seconds before an idle (sliding) or any (absolute) session expires; None keeps
            it forever; omitted, the session keeps its stored policy (a new one takes
            ``Settings.session_ttl``).
        sliding: True (the default) restarts the TTL on every read and write.
        session_settings: the SDK's ``SessionSettings`` (or a dict), e.g. a default ``limit``.

    Raises:
        ValidationError: a bad session id, namespace, ttl, or a client that is not an
            ``rmem.AsyncClient``; both ``namespace`` and ``key_prefix``.
    """

    session_id: str
    session_settings: SessionSettings | None

    def __init__(
        self,
        session_id: str,
        *,
        client: AsyncClient | None = None,
        namespace: str | None = None,
        key_prefix: str | None = None,
        ttl: float | Unset | None = UNSET,
        sliding: bool | Unset = UNSET,
        session_settings: SessionSettings | dict[str, Any] | None = None,
    ) -> None:
        if namespace is not None and key_prefix is not None:
            raise ValidationError("give namespace or key_prefix (its alias), not both")
        if client is not None and not isinstance(client, AsyncClient):
            raise ValidationError(
                f"client must be an rmem.AsyncClient, not {type(client).__name__} "
                "(or use RmemSession.from_url(session_id, url=...))"
            )
        chosen = namespace if key_prefix is None else prefix_namespace(key_prefix)
        owns = client is None
        root = client if client is not None else AsyncClient.from_url()  # connects lazily
        view = root if chosen is None else root.with_namespace(chosen)
        handle = view.session(session_id, ttl=ttl, sliding=sliding)
        self.session_id = session_id
        self.session_settings = (
            coerce_session_settings(session_settings)
            if session_settings is not None
            else SessionSettings()
        )
        self._root = root
        self._settings: Settings = root.settings
        self._client = view
        self._session = handle
        self._ttl = ttl
        self._sliding = sliding
        self._owns_client = owns
        self._closed = False
        self._client_released = False
        # Each message's item, msgpack-encoded, by (message id, created_at): a message never
        # changes, so a read turns the messages it gets into new items in one C call.
        self._packed: dict[tuple[str, float], bytes] = {}
        # redis-py's async connections belong to one event loop: the session's pooled client
        # serves the loop it was made in, or else the first loop that uses it (see _run).
        self._loop: asyncio.AbstractEventLoop | None = _running_loop()

    @classmethod
    def from_url(
        cls,
        session_id: str,
        *,
        url: str | None = None,
        redis_kwargs: Mapping[str, Any] | None = None,
        session_settings: SessionSettings | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Self:
        """Make a session that owns a new client for ``url`` (``RedisSession.from_url``'s shape).

        Args:
            session_id: the conversation id.
            url: ``redis://``, ``rediss://`` or ``unix://`` URL (default ``RMEM_URL``).
            redis_kwargs: client options: any :class:`rmem.Settings` field (``pool_size``,
                ``socket_timeout``, ``max_message_bytes``, ...).
            session_settings: the SDK's ``SessionSettings`` (or a dict).
            **kwargs: ``namespace``, ``key_prefix``, ``ttl``, ``sliding`` (see the class).

        Raises:
            ValidationError: a bad URL, option, session id, namespace or ttl.
        """
        client = AsyncClient.from_url(url, **dict(redis_kwargs or {}))  # connects lazily
        session = cls(session_id, client=client, session_settings=session_settings, **kwargs)
        session._owns_client = True
        return session

    @property
    def client(self) -> AsyncClient:
        """The rmem client (a view in the session's namespace)."""
        return self._client

    @property
    def rmem_session(self) -> AsyncSession:
        """The rmem session handle, for ``info()``, ``export()``, ``expire()`` and the like."""
        return self._session

    @property
    def namespace(self) -> str:
        """The rmem namespace the session lives in."""
        return self._client.namespace

    def __repr__(self) -> str:
        return f"<RmemSession {self.namespace}/{self.session_id}>"

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """Return the history, oldest first: all of it, or the latest ``limit`` items.

        ``limit`` None uses ``session_settings.limit``; a limit of 0 or less gives ``[]``.
        Restarts a sliding TTL.

        Raises:
            ValidationError: ``limit`` is not an int.
            SessionClosedError: the session was closed.
            CorruptDataError: a stored message cannot be decoded.
        """
        self._check_open()
        count = resolve_session_limit(limit, self.session_settings)
        if count is not None:
            if isinstance(count, bool) or not isinstance(count, int):
                raise ValidationError(f"limit must be an int or None, not {count!r}")
            if count <= 0:
                return []
        last: int | None = count
        return cast("list[TResponseInputItem]", await self._run(lambda c, s: self._read(s, last)))

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append ``items`` in order, atomically, in one round trip (one Lua script).

        The call is stored whole or not at all, and its items stay together: another
        process's items never land between them.

        Raises:
            ValidationError: ``items`` is not a list of dicts, or an item holds a value that is
                not JSON-like or is over ``max_message_bytes``; nothing is written then.
            SessionClosedError: the session was closed.
        """
        self._check_open()
        if isinstance(items, str | bytes | Mapping) or not isinstance(items, list | tuple):
            raise ValidationError(f"items must be a list of dicts, not {type(items).__name__}")
        if not items:
            return
        messages, payloads = self._encode(items)
        # The messages hold a private msgpack copy of the items (_copy): the replica may keep
        # them as they are.
        await self._run(lambda c, s: aextend_encoded(s, messages, payloads, owned=True))

    async def _atomic_replace_items(self, items: list[TResponseInputItem]) -> bool:
        """Replace the whole history by ``items`` in one atomic step; the SDK's compaction hook.

        ``OpenAIResponsesCompactionSession`` calls this (as it does on the SDK's own
        ``RedisSession``) instead of ``clear_session()`` then ``add_items()``: no reader ever
        sees the session empty or half written, and a failure leaves the old history. Returns
        False, so that the SDK uses those two public methods, for a subclass that overrides
        either of them (its storage transforms must apply).

        Raises:
            ValidationError: an item is not storable; nothing is changed then.
            SessionClosedError: the session was closed.
        """
        cls = type(self)
        if cls.add_items is not RmemSession.add_items or (
            cls.clear_session is not RmemSession.clear_session
        ):
            return False
        self._check_open()
        messages, payloads = self._encode(items)
        if not messages:
            await self._run(lambda c, s: s.delete())  # what clear_session() does
        else:
            await self._run(lambda c, s: areplace(s, messages, payloads))
        return True

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove and return the newest item atomically; None when the session is empty.

        Raises:
            SessionClosedError: the session was closed.
        """
        self._check_open()
        message = await self._run(lambda c, s: s.pop())
        return None if message is None else cast("TResponseInputItem", message_to_item(message))

    async def clear_session(self) -> None:
        """Delete the session and all its items (a later ``add_items`` starts a new one).

        Raises:
            SessionClosedError: the session was closed.
        """
        self._check_open()
        await self._run(lambda c, s: s.delete())

    async def ping(self) -> bool:
        """Return True when Redis answers, False when it cannot be reached.

        Raises:
            SessionClosedError: the session was closed.
        """
        self._check_open()
        health = await self._run(lambda c, s: c.health())
        return health.state == "connected"

    async def close(self) -> None:
        """Close the connections when the session made its own client (``from_url``).

        A session given a ``client`` leaves it open and stays usable. A session that owns its
        client cannot be used after this (``SessionClosedError``); closing twice is harmless.
        """
        if not self._owns_client:
            return
        self._closed = True
        if not self._client_released:
            await self._root.aclose()
            self._client_released = True

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _encode(self, items: object) -> tuple[list[Message], list[bytes]]:
        """Check and pack a list of items, or raise before anything is written."""
        if isinstance(items, str | bytes | Mapping) or not isinstance(items, list | tuple):
            raise ValidationError(f"items must be a list of dicts, not {type(items).__name__}")
        # Copies first: the stored messages own their values (and bad values fail here).
        copied, plain = _copy(items)
        to_fields = _copied_fields if plain else _checked_fields
        return encode_many(copied, to_fields, self._settings, _item_where, plain=plain)

    async def _read(self, session: AsyncSession, last: int | None) -> list[dict[str, Any]]:
        served = replica_messages(session, last)
        if served is not None:  # the client's local replica is caught up
            return self._items(served)
        # Read from Redis (no replica yet, or sync=False): the stored dicts become the items
        # without becoming Messages; an item read before is made from its kept packed form
        # (_STORED_ITEMS) instead of being decoded again.
        return await aread_forms(session, _STORED_ITEMS, last)

    def _items(self, messages: list[Message]) -> list[dict[str, Any]]:
        # New dicts and lists for every call, never shared with rmem's replica or earlier
        # results: the items are decoded from bytes.
        packed = self._packed
        if len(packed) > _PACKED_CACHE_MAX:
            packed.clear()
        parts = [array_header(len(messages))]
        for message in messages:
            key = (message.id, message.created_at)
            data = packed.get(key)
            if data is None:
                data = packed[key] = packb(message_to_item(message))
            parts.append(data)
        items: list[dict[str, Any]] = msgpack.unpackb(b"".join(parts), raw=False)
        return items

    def _check_open(self) -> None:
        if self._closed:
            raise SessionClosedError(
                "RmemSession is closed", namespace=self.namespace, session=self.session_id
            )

    async def _run(self, op: Callable[[AsyncClient, AsyncSession], Awaitable[T]]) -> T:
        # A call from another loop than the session's (Runner.run_sync in a worker thread, a
        # thread pool) gets a short-lived client of its own, opened and closed on that loop.
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        if loop is self._loop:
            return await op(self._client, self._session)
        settings = self._root.settings.model_copy(update={"sync": False})  # no replica thread
        async with AsyncClient(settings) as temp:
            view = temp.with_namespace(self.namespace)
            handle = view.session(self.session_id, ttl=self._ttl, sliding=self._sliding)
            return await op(view, handle)


def _item_where(index: int) -> str:
    return f"item {index}"


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # made outside any event loop
        return None
