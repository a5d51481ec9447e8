"""Session storage below rmem's public ``Session`` API, shared by the session adapters.

The LangChain and OpenAI Agents adapters build the fields of each rmem message themselves and
want them back as plain dicts. Through ``Session.extend`` every message would be validated
by pydantic and walked for JSON-only values a second time (15-25 µs a message, most of the
client CPU of a batch write), and through ``Session.messages`` every stored message would
become an ``rmem.Message`` only to be taken apart again (5-6 µs a message, more than the
decoding itself). This module does the same storage work without those layers:

- :func:`encode` checks one message's fields by rmem's rules (the same checks and errors as
  ``Session.extend``) and packs them; a walk over exact JSON types answers for ordinary
  values, and anything unusual is left to rmem's own check;
- :func:`extend_encoded` / :func:`aextend_encoded` append encoded messages: one script run,
  as ``Session.extend``;
- :func:`replica_messages` gives what ``Session.messages`` gives from the client's local
  replica while that is caught up (no I/O); otherwise :func:`read_members` /
  :func:`aread_members` fetch the session's stored members in the one round trip
  ``Session.messages`` makes (the range read and the sliding-TTL touch, pipelined), and
  :func:`read_stored` / :func:`aread_stored` return them decoded as fresh dicts. A first read
  in a process (no replica yet, or ``sync=False``) then skips building ``rmem.Message``s;
- :class:`StoredForms` turns stored members into an adapter's own objects (items, LangChain
  message dicts), keeping, per process, the packed form of each member read twice;
- :func:`replace_call` builds the one script run that replaces a session's messages
  (``lua/agentsession_replace.lua``: ``session_clear`` then ``session_append``).

This is the one place the adapters use rmem's private session internals (``_append``,
``_write_args``, ``_keys``, ``_backend``, ``_sync``, ``_damage``, ``_clock``, ``_policy``)
and the stored member layout: keep it in step with ``rmem/_async/session.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar, cast

import msgpack

from rmem import _lua
from rmem._async.session import AsyncSession
from rmem._codec import pack, packb
from rmem._errors import BackendError, CorruptDataError, ValidationError
from rmem._ids import new_ids
from rmem._keys import SessionKeys
from rmem._lua import ScriptCall
from rmem._models import Message
from rmem._session_core import HEAD_LEN, append_args, check_last, decode_dicts
from rmem._settings import Settings
from rmem._sync.session import Session
from rmem._validate import check_namespace, check_plain
from rmem.integrations._json import is_plain

AGENTSESSION_REPLACE: Final = _lua.script("agentsession_replace")

# The fields rmem declares on a message; everything else is kept as an extra field.
_DECLARED: Final = frozenset(("id", "role", "content", "created_at", "name", "metadata"))
_new, _set = Message.__new__, object.__setattr__
T = TypeVar("T")


def prefix_namespace(key_prefix: object, *, strip: bool = False) -> str:
    """The rmem namespace a framework's ``key_prefix`` argument stands for: the prefix itself,
    or with ``strip`` without its trailing ``:``s (unless that leaves nothing).

    Raises:
        ValidationError: that is not a valid rmem namespace; the message names the key_prefix.
    """
    namespace = key_prefix
    if strip and isinstance(key_prefix, str):
        namespace = key_prefix.rstrip(":") or key_prefix
    try:
        return check_namespace(namespace)
    except ValidationError as exc:
        raise ValidationError(
            f"key_prefix {key_prefix!r} is taken as the rmem namespace: {exc}"
        ) from None


def encode(fields: dict[str, Any], settings: Settings, where: str) -> tuple[Message, bytes]:
    """Check and pack one message, as ``Session.extend`` does with a dict; no I/O.

    ``fields`` holds ``role`` and the message's other fields but no ``id`` or
    ``created_at`` (rmem assigns both); the message takes ownership of it and of the values
    in it. Returns the message and its encoded payload, for :func:`extend_encoded`.

    Raises:
        ValidationError: a blank or non-str ``role``, a ``name`` that is not a str, a
            ``metadata`` that is not a dict, a value that is not JSON-like, or an encoding
            over ``settings.max_message_bytes``: the same errors ``Session.extend`` raises.
    """
    messages, payloads = encode_many((fields,), _as_fields, settings, lambda _: where)
    return messages[0], payloads[0]


def _as_fields(fields: dict[str, Any], index: int) -> dict[str, Any]:
    return fields


def encode_many(
    values: Sequence[T],
    to_fields: Callable[[T, int], dict[str, Any]],
    settings: Settings,
    where: Callable[[int], str],
    *,
    plain: bool = False,
) -> tuple[list[Message], list[bytes]]:
    """:func:`encode` for a batch: the messages of ``to_fields(value, index)`` for each value.

    Each value is made into its fields, then checked and packed, before the next value is
    looked at (so a batch with several bad values raises what checking them one by one
    raises); ``where(index)`` names a bad one. The ids of the batch are made at once
    (``new_ids``). ``plain=True`` says the caller proved that every field's value holds only
    exact JSON types (str-keyed dicts, lists, str, int, float, bool, None) nested at most
    ``MAX_DEPTH - 1`` levels (the value counting as one), which every check of the values
    accepts: they are then not walked again.

    Raises:
        ValidationError: what ``to_fields`` raises, or what :func:`encode` raises for a value.
    """
    count = len(values)
    ids = new_ids(count)
    threshold, max_size = settings.compress_threshold, settings.max_message_bytes
    clock, new, set_ = time.time, _new, _set
    messages: list[Message] = []
    payloads: list[bytes] = []
    for index in range(count):
        fields = to_fields(values[index], index)
        # What is left of fields once rmem's declared ones are taken out is the extra ones.
        role = fields.pop("role", None)
        if not isinstance(role, str) or not role.strip():
            raise ValidationError(f"invalid {where(index)}: role must be a non-empty str")
        name = fields.pop("name", None)
        if name is not None and not isinstance(name, str):
            raise ValidationError(f"invalid {where(index)}: name must be a str or None")
        metadata = fields.pop("metadata", None)
        if metadata is not None and not isinstance(metadata, dict):
            raise ValidationError(f"invalid {where(index)}: metadata must be a dict or None")
        content = fields.pop("content", None)
        if "id" in fields or "created_at" in fields:  # rmem assigns both
            fields.pop("id", None)
            fields.pop("created_at", None)
        mid, created = ids[index], clock()
        # The stored form, in Message.to_dict's order: declared fields, then the extra ones.
        stored: dict[str, Any] = {
            "id": mid,
            "role": role,
            "content": content,
            "created_at": created,
        }
        if name is not None:
            stored["name"] = name
        if metadata is not None:
            stored["metadata"] = metadata
        if fields:
            stored.update(fields)
        if not plain and not is_plain(stored):
            # What Session.extend checks, on the same values (its depth limit, its errors).
            if not isinstance(content, str):
                check_plain(content, f"{where(index)} content")
            if metadata is not None:
                check_plain(metadata, f"{where(index)} metadata")
            if fields:
                check_plain(fields, f"{where(index)} field")
        try:
            payloads.append(pack(stored, compress_threshold=threshold, max_size=max_size))
        except ValidationError as exc:
            raise ValidationError(f"invalid {where(index)}: {exc}") from None
        # The message those bytes decode to, made as Message.from_stored_many makes one (its
        # state set directly: every value was checked above).
        message = new(Message)
        set_(
            message,
            "__dict__",
            {
                "id": mid,
                "role": role,
                "content": content,
                "created_at": created,
                "name": name,
                "metadata": metadata,
            },
        )
        set_(message, "__pydantic_extra__", fields)
        set_(message, "__pydantic_fields_set__", set(_DECLARED))
        set_(message, "__pydantic_private__", None)
        messages.append(message)
    return messages, payloads


def extend_encoded(session: Session, messages: list[Message], payloads: list[bytes]) -> None:
    """Append messages made by :func:`encode`: ``session.extend`` without checking them again."""
    if messages:
        session._append(messages, payloads)


async def aextend_encoded(
    session: AsyncSession, messages: list[Message], payloads: list[bytes], *, owned: bool = False
) -> None:
    """Async :func:`extend_encoded`.

    ``owned=True`` promises that the values inside ``messages`` are referenced by nothing else
    and are exactly what decoding ``payloads`` gives (they come from a msgpack copy): the
    writer's replica then keeps these messages instead of decoding the payloads again.
    """
    if messages:
        await session._append(messages, payloads, owned=owned)


def array_header(n: int) -> bytes:
    """The msgpack header of an array of ``n`` elements (to join packed values as one)."""
    if n <= 15:
        return bytes((0x90 | n,))
    if n <= 0xFFFF:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def _read_steps(keys: SessionKeys, count: int) -> tuple[tuple[str, str, int, int], ScriptCall]:
    # What Session.messages sends: the range, and the touch a sliding TTL needs, in one trip.
    return (
        ("ZRANGE", keys.msgs, -count if count else 0, -1),
        ScriptCall(_lua.SESSION_TOUCH, keys, (1,)),  # a read: the time left is not used
    )


def replica_messages(
    session: Session | AsyncSession, last: int | None = None
) -> list[Message] | None:
    """What ``session.messages(last)`` returns, from the client's local replica of the
    session while that is caught up (no I/O; the replica's shared instances); else None.

    None also opens the replica for the next reads, as ``session.messages()`` does; a client
    without replicas (``sync=False``) or serving from its fallback always gives None.

    Raises:
        ValidationError: ``last`` is not a non-negative int.
    """
    count = check_last(last)
    if count == 0 and last == 0:
        return []
    return session._replica_messages(count)


def read_members(session: Session, last: int | None = None) -> list[bytes]:
    """The stored members of a session's messages (or of its ``last`` ones), oldest first,
    read from Redis (or the fallback's local store) whether or not the client keeps
    replicas. Restarts a sliding TTL as ``session.messages()`` does, in the same one round
    trip.

    Raises:
        ValidationError: ``last`` is not a non-negative int.
        CorruptDataError: a session key holds something rmem did not write (names the key).
    """
    count = check_last(last)
    if count == 0 and last == 0:
        return []
    try:
        members, _ = session._backend.pipeline(
            _read_steps(session._keys, count), namespace=session._namespace, session=session._id
        )
    except (BackendError, CorruptDataError) as exc:
        raise session._damage(exc) from exc
    return cast("list[bytes]", members)


async def aread_members(session: AsyncSession, last: int | None = None) -> list[bytes]:
    """Async :func:`read_members`."""
    count = check_last(last)
    if count == 0 and last == 0:
        return []
    try:
        members, _ = await session._backend.pipeline(
            _read_steps(session._keys, count), namespace=session._namespace, session=session._id
        )
    except (BackendError, CorruptDataError) as exc:
        raise await session._damage(exc) from exc
    return cast("list[bytes]", members)


def read_stored(session: Session, last: int | None = None) -> list[dict[str, Any]]:
    """:func:`read_members`, decoded: the stored dicts, every one new (the caller owns it).

    Raises:
        ValidationError: ``last`` is not a non-negative int.
        CorruptDataError: a stored message does not decode (names the key).
    """
    return decode_stored(read_members(session, last), session._keys.msgs)


async def aread_stored(session: AsyncSession, last: int | None = None) -> list[dict[str, Any]]:
    """Async :func:`read_stored`."""
    return decode_stored(await aread_members(session, last), session._keys.msgs)


def read_forms(session: Session, forms: StoredForms, last: int | None = None) -> list[Any]:
    """:func:`read_members`, made into ``forms``' objects.

    Raises:
        ValidationError: ``last`` is not a non-negative int.
        CorruptDataError: a stored message does not decode, or the form refused it.
    """
    return forms(read_members(session, last), session._keys.msgs)


async def aread_forms(
    session: AsyncSession, forms: StoredForms, last: int | None = None
) -> list[Any]:
    """Async :func:`read_forms`."""
    return forms(await aread_members(session, last), session._keys.msgs)


def decode_stored(members: Sequence[Any], key: str) -> list[dict[str, Any]]:
    """Decode sorted-set members into the stored dicts, checked as rmem checks them on read.

    Raises:
        CorruptDataError: a member is not an rmem message (names ``key``).
    """
    try:
        payloads = [m[m.index(b"\0", HEAD_LEN) + 1 :] for m in members]
    except (ValueError, TypeError, AttributeError):
        raise CorruptDataError(f"an entry of {key} is not an rmem message", key=key) from None
    return decode_dicts(payloads, key)


class StoredForms:
    """An adapter's objects for stored messages, made from bytes it keeps for messages it rereads.

    Reading through to Redis (``sync=False``) fetches every message of the range on every
    call, and an agent reads the same history again on every turn. What an adapter makes of
    a message (an SDK item, a LangChain message dict) depends on the member's bytes alone, so
    once a member has been read twice its form is kept, msgpack-encoded and keyed by those
    exact bytes, and later reads make the objects of all the known members, new, in one
    ``msgpack`` call (for an SDK item ~1 µs instead of ~5 µs of decoding, checking and
    rebuilding). A member read for the first time is only remembered (packing its form would
    make a read that is never repeated slower), and every member without a kept form is
    decoded and checked by :func:`decode_stored`, so damage is reported as it always is.
    Redis stays the truth: only the decoding is skipped, never the read.

    The kept bytes (members and forms) are bounded by ``max_bytes``; past it, it starts over.
    Thread-safe enough for its use: a lost or repeated entry only costs a decode.

    Args:
        form: makes the adapter's object from a stored dict it takes over; the object must
            be made of msgpack types (a tuple comes back as a list).
        max_bytes: bound on the kept bytes.
    """

    def __init__(self, form: Callable[[dict[str, Any]], Any], max_bytes: int) -> None:
        self._form = form
        self._max = max_bytes
        # member -> its packed form, or b"" for a member read once (no form is b"").
        self._packed: dict[bytes, bytes] = {}
        self._size = 0

    def clear(self) -> None:
        """Forget every member (the next reads of each decode it again)."""
        self._packed = {}
        self._size = 0

    def __call__(self, members: Sequence[bytes], key: str) -> list[Any]:
        """The forms of ``members``, in order; every object new (the caller owns it).

        Raises:
            CorruptDataError: a member is not an rmem message (names ``key``), or the form
                refused it.
        """
        packed = self._packed
        get = packed.get
        known = [get(m) for m in members]
        missing = [m for m, f in zip(members, known, strict=True) if not f]
        if not missing:
            return _unpack_array(cast("list[bytes]", known))
        made = [self._form(stored) for stored in decode_stored(missing, key)]
        size = 0
        for member, obj in zip(missing, made, strict=True):
            if get(member) is None:  # first read: remember it
                packed[member] = b""
                size += len(member)
            else:  # read again: keep its form for the next reads
                data = packed[member] = packb(obj)
                size += len(data)
        self._size += size
        if self._size > self._max:
            self.clear()
        if len(missing) == len(members):
            return made
        hits = iter(_unpack_array([f for f in known if f]))
        fresh = iter(made)
        return [next(hits) if f else next(fresh) for f in known]


def _unpack_array(parts: Sequence[bytes]) -> list[Any]:
    """New objects from msgpack-encoded values, in one call."""
    items: list[Any] = msgpack.unpackb(b"".join((array_header(len(parts)), *parts)), raw=False)
    return items


def replace_call(
    session: Session | AsyncSession, messages: list[Message], payloads: list[bytes]
) -> ScriptCall:
    """The script run that replaces every message of ``session`` by ``messages`` (non-empty).

    It clears the session (``session_clear``, stamped first) and appends the new messages
    (``session_append``, stamped after) in one script: no reader ever sees it in between.
    """
    clock = session._clock
    clear = session._write_args(clock.now_text())
    stamp = clock.now_text()
    pairs, _ = append_args(messages, payloads, stamp)
    append = session._write_args(stamp, *session._policy.args, -1, *pairs)
    return ScriptCall(AGENTSESSION_REPLACE, session._keys, (len(clear), *clear, *append))


async def areplace(session: AsyncSession, messages: list[Message], payloads: list[bytes]) -> None:
    """Replace every message of ``session`` by ``messages`` (non-empty) in one atomic script.

    Raises:
        UnavailableError: Redis cannot be reached (nothing changed, or all of it did).
    """
    call = replace_call(session, messages, payloads)
    try:
        (reply,) = await session._backend.pipeline(
            (call,), namespace=session._namespace, session=session._id
        )
    except (BackendError, CorruptDataError) as exc:
        raise await session._damage(exc) from exc
    finally:
        if session._sync is not None:
            # Two changes at once (or a reply lost after Redis ran them): the replica catches
            # up from Redis rather than guess; the sync thread ignores this client's own hints.
            session._sync.changed_session(session._namespace, session._id)
    appended = reply[1]
    if int(appended[0]):  # the append created the session: list it in its namespace
        await session._client._list_session(session._id, int(appended[1]))
