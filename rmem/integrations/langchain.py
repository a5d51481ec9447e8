"""LangChain chat message history on an rmem session (``pip install 'rmem[langchain]'``).

:class:`RmemChatMessageHistory` is a ``langchain_core`` ``BaseChatMessageHistory``, a drop-in
for ``langchain_redis.RedisChatMessageHistory`` (same ``session_id``, ``redis_url`` and
``ttl`` arguments) that keeps every field of every message::

    from langchain_core.messages import AIMessage, HumanMessage
    from rmem.integrations.langchain import RmemChatMessageHistory

    history = RmemChatMessageHistory("user-123", redis_url="redis://127.0.0.1:6379/0", ttl=3600)
    history.add_messages([HumanMessage("hi"), AIMessage("hello!")])   # one atomic round trip
    history.messages                                                  # oldest first

Each LangChain message is one rmem message: ``role`` is the OpenAI-style role ("user",
"assistant", "system", "tool", ...), ``content`` and ``name`` are the message's, and the other
fields of ``message.model_dump()`` (tool calls, usage and response metadata, additional kwargs,
...) are kept as extra fields beside ``lc_type`` (the LangChain type) and ``lc_id`` (the
message's own id; rmem gives every stored message its own ``id``). Messages that other rmem
code wrote into the same session (``{"role": "user", "content": "hi"}``) are read as the
matching LangChain message.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, Final, Self, TypeVar, get_args, get_type_hints, is_typeddict

import msgpack
from pydantic import BaseModel as PydanticBaseModel

from rmem._async.client import AsyncClient
from rmem._async.session import AsyncSession
from rmem._codec import packb
from rmem._errors import CorruptDataError, MissingExtraError, ValidationError
from rmem._models import Message
from rmem._session_core import UNSET, Unset
from rmem._settings import Settings
from rmem._sync.client import Client
from rmem._sync.session import Session
from rmem.integrations._session_io import (
    StoredForms,
    aextend_encoded,
    aread_forms,
    array_header,
    encode_many,
    extend_encoded,
    prefix_namespace,
    read_forms,
    replica_messages,
)

__all__ = [
    "MissingExtraError",
    "RmemChatMessageHistory",
    "from_rmem",
    "to_langchain",
    "to_rmem",
]


try:
    from langchain_core.chat_history import BaseChatMessageHistory
    from langchain_core.messages import (
        AIMessage,
        AIMessageChunk,
        BaseMessage,
        ChatMessage,
        ChatMessageChunk,
        FunctionMessage,
        FunctionMessageChunk,
        HumanMessage,
        HumanMessageChunk,
        SystemMessage,
        SystemMessageChunk,
        ToolMessage,
        ToolMessageChunk,
        messages_from_dict,
    )
    from langchain_core.runnables.config import run_in_executor
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise MissingExtraError(
        "rmem.integrations.langchain needs langchain-core: pip install 'rmem[langchain]'"
    ) from exc

_T = TypeVar("_T")


def _read_through(settings: Settings) -> Settings:
    """``settings`` without local replicas (where this rmem has them)."""
    if "sync" in Settings.model_fields:
        return settings.model_copy(update={"sync": False})
    return settings


# LangChain message type (chunk types reduced to their base) -> rmem role, and back.
_ROLE_OF: Final = {
    "human": "user",
    "ai": "assistant",
    "system": "system",
    "tool": "tool",
    "function": "function",
    "remove": "remove",
}
_TYPE_OF: Final = {"user": "human", "assistant": "ai", "system": "system", "developer": "system"}
_CHUNK: Final = "MessageChunk"
# Fields of model_dump() that become rmem's own fields (or are rebuilt from them).
_MAPPED: Final = frozenset(("type", "content", "name", "id"))
# Message fields rmem declares or this module uses: a LangChain field of the same name (none
# today) is kept under "lc_fields" instead of being mixed up with them.
_RESERVED: Final = frozenset(
    ("id", "role", "content", "created_at", "name", "metadata", "lc_type", "lc_id", "lc_fields")
)


def _base_type(lc_type: str) -> str:
    """``"AIMessageChunk"`` -> ``"ai"``; plain types are returned as they are."""
    if lc_type.endswith(_CHUNK):
        return lc_type[: -len(_CHUNK)].lower()
    return lc_type


def to_rmem(message: BaseMessage, where: str = "message") -> dict[str, Any]:
    """Turn a LangChain message into the rmem message dict stored for it (no I/O).

    Raises:
        ValidationError: ``message`` is not a LangChain ``BaseMessage``, or is of a type
            LangChain's ``messages_from_dict`` cannot rebuild (a subclass with its own type).
    """
    if not isinstance(message, BaseMessage):
        raise ValidationError(
            f"{where} must be a LangChain BaseMessage, not {type(message).__name__}"
        )
    lc_type = message.type
    if lc_type not in _READABLE:
        raise ValidationError(
            f"{where} is of type {lc_type!r}, which LangChain's messages_from_dict cannot read "
            "back: storing it would make the history unreadable"
        )
    data = message.model_dump()
    base = _base_type(lc_type)
    role = _ROLE_OF.get(base, lc_type)
    if base == "chat" and isinstance(data.get("role"), str) and data["role"].strip():
        role = data.pop("role")
    out: dict[str, Any] = {"role": role, "content": data["content"], "lc_type": lc_type}
    if data.get("name") is not None:
        out["name"] = data["name"]
    if data.get("id") is not None:
        out["lc_id"] = data["id"]
    clashes: dict[str, Any] = {}
    for key, value in data.items():
        if key in _MAPPED:
            continue
        if key in _RESERVED:
            clashes[key] = value
        else:
            out[key] = value
    if clashes:
        out["lc_fields"] = clashes
    return out


def from_rmem(message: Message) -> dict[str, Any]:
    """Turn a stored rmem message into a ``messages_from_dict`` item (no I/O).

    Messages written by this module come back exactly; others are mapped by role ("user" ->
    human, "assistant" -> ai, "system", "tool" with a ``tool_call_id``, "function" with a
    name, any other role -> a chat message), with their other fields in ``additional_kwargs``.
    The item shares nested values with ``message``.
    """
    return _item_of(message.to_dict())[0]


def _item_of(stored: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """``from_rmem`` on a message's stored dict, which it takes over; also returns its id."""
    lc_type = stored.pop("lc_type", None)
    mid = stored.pop("id", "?")
    if not isinstance(lc_type, str):
        message = Message.from_stored_many([{"id": mid, **stored}])[0]
        return _foreign(message, dict(message.__pydantic_extra__ or {})), mid
    role = stored.pop("role", None)
    stored.pop("created_at", None)
    stored.pop("metadata", None)
    lc_id = stored.pop("lc_id", None)  # before lc_fields, which may hold a field named lc_id
    clashes = stored.pop("lc_fields", None)
    if isinstance(clashes, dict):
        stored.update(clashes)
    data = stored
    data.setdefault("content", None)
    data.setdefault("name", None)
    data["id"] = lc_id
    data["type"] = lc_type
    if _base_type(lc_type) == "chat":
        data.setdefault("role", role)
    return {"type": lc_type, "data": data}, mid


def _foreign(message: Message, extra: dict[str, Any]) -> dict[str, Any]:
    """A message other rmem code wrote: map it by role onto the nearest LangChain type."""
    content = message.content
    if content is None:
        content = ""
    elif not isinstance(content, str) and not (
        isinstance(content, list) and all(isinstance(p, str | dict) for p in content)
    ):
        content = json.dumps(content, ensure_ascii=False)
    if message.metadata is not None:
        extra["metadata"] = message.metadata
    data: dict[str, Any] = {"content": content, "id": message.id, "name": message.name}
    role = message.role
    lc_type = _TYPE_OF.get(role)
    if role == "tool" and isinstance(extra.get("tool_call_id"), str):
        lc_type, data["tool_call_id"] = "tool", extra.pop("tool_call_id")
    elif role == "function" and message.name:
        lc_type = "function"
    if lc_type is None:
        lc_type, data["role"] = "chat", role
    data["additional_kwargs"] = extra
    return {"type": lc_type, "data": data}


def to_langchain(
    messages: Sequence[Message], namespace: str | None = None, session: str | None = None
) -> list[BaseMessage]:
    """Rebuild LangChain messages from stored rmem messages (no I/O).

    The LangChain messages share nothing with ``messages`` (rmem's local replica hands out
    shared ``Message`` instances: changing a returned message must not change it). A message
    this module wrote holds a whole ``model_dump()`` of its class: when the class keeps plain
    data only (as every LangChain message class does today), it is rebuilt by setting its
    state, as pydantic's validation would, without validating again (reading a history is
    on every turn's path, and validation costs 10-25 µs a message). Anything else goes
    through ``messages_from_dict``.

    Raises:
        CorruptDataError: a message written as a LangChain message no longer validates.
    """
    if not messages:
        return []
    # One deep copy of them all, at C speed.
    packed = packb([_item_of(m.to_dict()) for m in messages])
    return _build(msgpack.unpackb(packed, raw=False), namespace, session)


# The LangChain form of the local replica's messages, packed, by the identity of rmem's
# shared (and never changed) Message instances: a read from the replica is then one C call
# that makes new objects, whichever history object reads (apps make one per request).
_REPLICA_FORMS: dict[int, tuple[Message, bytes]] = {}
_REPLICA_FORMS_MAX: Final = 8192  # then it starts over


def _from_replica(messages: Sequence[Message], namespace: str, session: str) -> list[BaseMessage]:
    """:func:`to_langchain` for the messages rmem's local replica handed out."""
    forms = _REPLICA_FORMS
    if len(forms) > _REPLICA_FORMS_MAX:
        forms.clear()
    parts = [array_header(len(messages))]
    for message in messages:
        form = forms.get(id(message))
        if form is None or form[0] is not message:
            # The entry keeps the message alive, so its id() is not reused meanwhile.
            packed = packb(_item_of(message.to_dict()))
            form = forms[id(message)] = (message, packed)
        parts.append(form[1])
    return _build(msgpack.unpackb(b"".join(parts), raw=False), namespace, session)


# The same for reads through to Redis (sync=False), by the stored bytes: a stored message read
# twice is kept in its LangChain form, packed (see StoredForms).
_STORED_FORMS: Final = StoredForms(_item_of, 32 * 2**20)


def _build(
    items: Iterable[Sequence[Any]], namespace: str | None, session: str | None
) -> list[BaseMessage]:
    """LangChain messages from ``(messages_from_dict item, rmem id)`` pairs they take over."""
    out: list[BaseMessage] = []
    for item, mid in items:
        built = _rebuild(item["type"], item["data"])
        if built is None:
            try:
                built = messages_from_dict([item])[0]
            except Exception as exc:  # validators raise KeyError, TypeError, ... on bad data
                where = f"session {namespace}/{session}" if session else "the session"
                raise CorruptDataError(
                    f"message {mid} in {where} is not a LangChain message: {exc}",
                    namespace=namespace,
                    session=session,
                ) from None
        out.append(built)
    return out


_CLASSES: Final[dict[str, type[BaseMessage]]] = {
    cls.model_fields["type"].default: cls
    for cls in (
        AIMessage,
        AIMessageChunk,
        ChatMessage,
        ChatMessageChunk,
        FunctionMessage,
        FunctionMessageChunk,
        HumanMessage,
        HumanMessageChunk,
        SystemMessage,
        SystemMessageChunk,
        ToolMessage,
        ToolMessageChunk,
    )
}
# The types messages_from_dict rebuilds: the classes above and RemoveMessage.
_READABLE: Final = frozenset((*_CLASSES, "remove"))
_Layout = tuple[tuple[str, ...], frozenset[str], dict[str, Any] | None]
_PLAIN: dict[type[BaseMessage], _Layout | None] = {}


def _rebuild(lc_type: str, data: dict[str, Any]) -> BaseMessage | None:
    """Build the message from a complete ``model_dump()`` by setting its state; None if unsure."""
    cls = _CLASSES.get(lc_type)
    if cls is None:
        return None
    if cls not in _PLAIN:
        _PLAIN[cls] = _plain_layout(cls)
    layout = _PLAIN[cls]
    if layout is None or data.keys() != layout[1]:
        return None  # another version's fields, or a partial dict: validate it
    msg = cls.__new__(cls)
    object.__setattr__(msg, "__dict__", {name: data[name] for name in layout[0]})  # field order
    object.__setattr__(msg, "__pydantic_fields_set__", set(layout[1]))
    object.__setattr__(msg, "__pydantic_extra__", None if layout[2] is None else {})
    object.__setattr__(msg, "__pydantic_private__", None)
    return msg


def _plain_layout(cls: type[BaseMessage]) -> _Layout | None:
    """The field names of ``cls`` (in order, and as a set) and its extras' initial value, when
    its state is plain data.

    None when the class has private attributes or a field that can hold a pydantic model
    (``model_dump()`` turns those into dicts, which validation would turn back).
    """
    if cls.__private_attributes__:
        return None
    if any(_holds_model(f.annotation) for f in cls.model_fields.values()):
        return None
    extra: dict[str, Any] | None = {} if cls.model_config.get("extra") == "allow" else None
    return tuple(cls.model_fields), frozenset(cls.model_fields), extra


def _holds_model(annotation: Any, seen: frozenset[Any] = frozenset()) -> bool:
    if annotation in seen:
        return False
    if isinstance(annotation, type) and issubclass(annotation, PydanticBaseModel):
        return True
    if is_typeddict(annotation):
        hints = get_type_hints(annotation)
        return any(_holds_model(h, seen | {annotation}) for h in hints.values())
    return any(_holds_model(arg, seen) for arg in get_args(annotation))


def _encode(
    messages: Sequence[BaseMessage], settings: Settings
) -> tuple[list[Message], list[bytes]]:
    """Check and pack every message of a batch, or raise for the first bad one."""
    if isinstance(messages, BaseMessage):
        raise ValidationError("add_messages() takes a sequence of messages, not one message")
    batch = messages if isinstance(messages, list | tuple) else list(messages)
    return encode_many(batch, _fields_of, settings, _message_where)


def _fields_of(message: BaseMessage, index: int) -> dict[str, Any]:
    return to_rmem(message, f"message {index}")


def _message_where(index: int) -> str:
    return f"message {index}"


class RmemChatMessageHistory(BaseChatMessageHistory):
    """A LangChain chat message history stored in an rmem session.

    Every process (and every API replica) that opens the same ``session_id`` in the same
    namespace sees the same history: a client made with ``sync=False`` reads Redis on every
    call and sees every write at once; a default client answers from its local replica, which
    always holds this process's own writes and follows other processes' within milliseconds
    (their change notice; docs/integrations.md). ``add_messages`` writes all its messages in
    one atomic round trip, in the order Redis runs the calls: writers in other processes never
    split a batch, and nothing is lost.
    The async methods (``aget_messages``, ``aadd_messages``, ``aclear``) use an
    ``rmem.AsyncClient`` when the history was given one; otherwise they run the sync method
    in an executor, as LangChain's default does, so one client (and its local replica) serves
    both and every read sees the history's own writes. Given only an ``AsyncClient``, the
    sync methods use a client the history makes from the same settings, reading through to
    Redis.

    Args:
        session_id: the session's id (1-256 characters, no control characters).
        redis_url: ``redis://``, ``rediss://`` or ``unix://`` URL; the history then owns its
            client (release it with :meth:`close` or a ``with`` block). Default:
            ``RMEM_URL``, else ``redis://127.0.0.1:6379/0``. Ignored when a client is given.
        ttl: seconds before the session expires (sliding: of idleness; absolute: of life);
            None keeps it forever. Omitted: the session keeps its policy (a new session takes
            ``Settings.session_ttl``, by default none).
        sliding: True (the default) restarts the TTL on every read and write.
        client: an ``rmem.Client`` or ``rmem.AsyncClient`` to share; the history does not
            close it.
        async_client: an ``rmem.AsyncClient`` to use for the async methods beside ``client``.
        namespace: the namespace of the session (default: the client's, or ``RMEM_NAMESPACE``).
        key_prefix: langchain-redis's way of separating histories; taken as the namespace
            (without a trailing ``:``) when ``namespace`` is not given.
        **options: any ``rmem.Settings`` option (``pool_size``, ``socket_timeout``, ...) for
            the clients made from ``redis_url``.

    Raises:
        ValidationError: a bad session id, ttl, namespace or option.
    """

    def __init__(
        self,
        session_id: str,
        redis_url: str | None = None,
        *,
        ttl: float | Unset | None = UNSET,
        sliding: bool | Unset = UNSET,
        client: Client | AsyncClient | None = None,
        async_client: AsyncClient | None = None,
        namespace: str | None = None,
        key_prefix: str | None = None,
        **options: Any,
    ) -> None:
        if namespace is None and key_prefix is not None:
            namespace = prefix_namespace(key_prefix, strip=True)
        if isinstance(client, AsyncClient):
            if async_client is not None:
                raise ValidationError("give the AsyncClient as client= or async_client=, not both")
            client, async_client = None, client
        if client is not None and not isinstance(client, Client):
            raise ValidationError(
                f"client must be an rmem.Client or rmem.AsyncClient, not {type(client).__name__}"
            )
        if async_client is not None and not isinstance(async_client, AsyncClient):
            raise ValidationError(
                f"async_client must be an rmem.AsyncClient, not {type(async_client).__name__}"
            )
        super().__init__()
        self._owned: list[Client] = []
        if client is None and async_client is None:
            client = Client(Settings.from_url(redis_url, namespace=namespace, **options))
            self._owned.append(client)
        elif options:
            raise ValidationError(
                f"options {sorted(options)} apply to clients made from redis_url; "
                "this history was given a client"
            )
        if client is None:
            assert async_client is not None
            # Sync calls need a sync pool of their own. It reads through to Redis, so it sees
            # at once what the async client wrote (its own local replica would lag until the
            # change notice arrived).
            client = Client(_read_through(async_client.settings))
            self._owned.append(client)
        if namespace is not None:
            client = client.with_namespace(namespace)
            async_client = async_client.with_namespace(namespace) if async_client else None
        elif async_client is not None and client.namespace != async_client.namespace:
            if client not in self._owned:
                raise ValidationError(
                    f"client is in namespace {client.namespace!r} and async_client in "
                    f"{async_client.namespace!r}; give namespace= to choose one"
                )
            client = client.with_namespace(async_client.namespace)
        self.session_id = session_id
        self._settings = client.settings
        self._session: Session = client.session(session_id, ttl=ttl, sliding=sliding)
        self._async_session: AsyncSession | None = (
            async_client.session(session_id, ttl=ttl, sliding=sliding) if async_client else None
        )

    @property
    def id(self) -> str:
        """The session id (as ``RedisChatMessageHistory.id``)."""
        return self.session_id

    @property
    def namespace(self) -> str:
        """The rmem namespace the session lives in."""
        return self._session.namespace

    @property
    def session(self) -> Session:
        """The underlying ``rmem.Session`` (for ``info()``, ``export()``, ``expire()``, ...)."""
        return self._session

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """Every message of the session, oldest first (restarts a sliding TTL).

        Raises:
            CorruptDataError: a stored message cannot be decoded.
            UnavailableError: Redis cannot be reached.
        """
        served = replica_messages(self._session)
        if served is not None:  # the client's local replica is caught up
            return _from_replica(served, self.namespace, self.session_id)
        forms = read_forms(self._session, _STORED_FORMS)
        return _build(forms, self.namespace, self.session_id)

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append ``messages`` in order, in one atomic round trip.

        Raises:
            ValidationError: an item is not a LangChain message, or holds data that is not
                JSON-like, or is over ``max_message_bytes``; nothing is written then.
            UnavailableError: Redis cannot be reached.
        """
        batch, payloads = _encode(messages, self._settings)
        try:
            extend_encoded(self._session, batch, payloads)
        finally:
            self._wrote(self._session)

    def clear(self) -> None:
        """Delete the session and every message in it (nothing happens when it is empty)."""
        try:
            self._session.delete()
        finally:
            self._wrote(self._session)

    def _wrote(self, through: Session | AsyncSession) -> None:
        # A write through one of this history's two clients: the other one's local replica
        # must not serve the session until it has caught up (the change notice may not have
        # reached it yet), so a read through either client sees the history's own writes.
        for session in (self._session, self._async_session):
            if session is not None and session is not through and session._sync is not None:
                session._sync.changed_session(session.namespace, session.id)

    async def aget_messages(self) -> list[BaseMessage]:
        """Async :attr:`messages`."""
        session = self._async_session
        if session is None:
            return await self._in_executor(lambda: self.messages)
        served = replica_messages(session)
        if served is not None:
            return _from_replica(served, self.namespace, self.session_id)
        return _build(await aread_forms(session, _STORED_FORMS), self.namespace, self.session_id)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Async :meth:`add_messages`: one atomic round trip."""
        batch, payloads = _encode(messages, self._settings)
        if not batch:
            return
        if self._async_session is None:
            await self._in_executor(lambda: extend_encoded(self._session, batch, payloads))
            return
        try:
            await aextend_encoded(self._async_session, batch, payloads)
        finally:
            self._wrote(self._async_session)

    async def aclear(self) -> None:
        """Async :meth:`clear`."""
        if self._async_session is None:
            await self._in_executor(self._session.delete)
            return
        try:
            await self._async_session.delete()
        finally:
            self._wrote(self._async_session)

    def __len__(self) -> int:
        """How many messages the session holds (as ``RedisChatMessageHistory``)."""
        return self._session.count()

    def close(self) -> None:
        """Close the client this history made, if any (clients given to it stay open)."""
        for made in self._owned:
            made.close()

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<RmemChatMessageHistory {self.namespace}/{self.session_id}>"

    @staticmethod
    async def _in_executor(call: Callable[[], _T]) -> _T:
        return await run_in_executor(None, call)
