"""The I/O-free half of sessions: input checks, packing, and reading script replies.

``_async/session.py`` (and the ``_sync`` code generated from it) only moves bytes; everything
that decides what is valid, how a message is encoded and what a reply means lives here, once.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from pydantic import ValidationError as PydanticValidationError

from rmem._codec import pack, unpack_many
from rmem._errors import CorruptDataError, ValidationError
from rmem._hlc import STAMP_LEN
from rmem._keys import SessionKeys
from rmem._models import Message, SessionInfo
from rmem._validate import _CONTROL_RE, check_plain, check_ttl

MAX_CREATED_AT = 253_402_300_799
"""Latest ``created_at`` an import may carry: the last second of year 9999."""

MAX_LAST = 2**62
"""``messages(last=...)`` beyond this reads the same as this (Redis takes 64-bit indexes)."""

EXPORT_FORMAT: Final = "rmem.session/1"


class Unset(enum.Enum):
    """Marker for "not given" where None already means something (``ttl=None``: keep forever)."""

    UNSET = "UNSET"


UNSET: Final = Unset.UNSET


class TtlPolicy:
    """The TTL arguments a session handle sends with each write.

    ``given`` is False when the handle named no TTL: the session then keeps the policy it has,
    and a new session takes the client's default (``Settings.session_ttl``).
    """

    __slots__ = ("args", "given", "sliding", "ttl_ms")

    def __init__(
        self,
        ttl: float | Unset | None,
        sliding: bool | Unset,
        default_ttl: float | None,
        default_sliding: bool,
    ) -> None:
        self.given = ttl is not UNSET or sliding is not UNSET
        self.ttl_ms = check_ttl(default_ttl if ttl is UNSET else ttl)
        chosen = default_sliding if sliding is UNSET else sliding
        if not isinstance(chosen, bool):
            raise ValidationError(f"sliding must be True or False, not {chosen!r}")
        self.sliding = chosen
        self.args: tuple[int, int, int] = (int(self.given), self.ttl_ms, int(chosen))


def coerce_message(item: object, where: str = "message") -> Message:
    """Turn a Message or a mapping into a validated Message, or raise ValidationError."""
    if type(item) is dict:
        plain = Message._plain(item)  # {"role": ..., "content": "..."}: nothing can fail
        if plain is not None:
            return plain
    if isinstance(item, Message):
        msg = item
        _check_built(msg, where)
    elif isinstance(item, Mapping):
        try:
            msg = Message.model_validate(item)
        except PydanticValidationError as exc:
            errors = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'message'}: {e['msg']}"
                for e in exc.errors()
            )
            raise ValidationError(f"invalid {where}: {errors}") from None
    else:
        raise ValidationError(
            f"{where} must be an rmem.Message or a mapping, not {type(item).__name__}"
        )
    if not isinstance(msg.role, str) or not msg.role.strip():
        raise ValidationError(f"invalid {where}: role must not be empty")
    content = msg.content
    if not isinstance(content, str):
        check_plain(content, f"{where} content")
    if msg.metadata is not None:
        check_plain(msg.metadata, f"{where} metadata")
    if msg.__pydantic_extra__:
        check_plain(msg.__pydantic_extra__, f"{where} field")
    return msg


def _check_built(msg: Message, where: str) -> None:
    # A Message made with model_construct (or mutated) skipped pydantic: check what the
    # storage format relies on, so a bad one cannot reach Redis.
    try:
        mid, role, created = msg.id, msg.role, msg.created_at
        name, metadata = msg.name, msg.metadata
    except AttributeError as exc:
        raise ValidationError(f"invalid {where}: {exc}") from None
    if not isinstance(mid, str) or not 1 <= len(mid) <= 256 or _CONTROL_RE.search(mid):
        raise ValidationError(
            f"invalid {where}: id must be a str of 1-256 characters without control characters"
        )
    if not isinstance(role, str):
        raise ValidationError(f"invalid {where}: role must be a str")
    if isinstance(created, bool) or not isinstance(created, int | float):
        raise ValidationError(f"invalid {where}: created_at must be a number")
    if not math.isfinite(created):
        raise ValidationError(f"invalid {where}: created_at must be finite")
    if name is not None and not isinstance(name, str):
        raise ValidationError(f"invalid {where}: name must be a str or None")
    if metadata is not None and not isinstance(metadata, dict):
        raise ValidationError(f"invalid {where}: metadata must be a dict or None")


def encode_message(
    msg: Message, max_bytes: int, compress_threshold: int, where: str = "message"
) -> bytes:
    """Pack a validated message; refuse it when its encoding exceeds ``max_bytes``."""
    try:
        return pack(msg.to_dict(), compress_threshold=compress_threshold, max_size=max_bytes)
    except ValidationError as exc:
        raise ValidationError(f"invalid {where}: {exc}") from None


def prepare_batch(
    items: Iterable[object], max_bytes: int, compress_threshold: int
) -> tuple[list[Message], list[bytes]]:
    """Validate and encode every item, or raise for the first bad one (nothing is sent then).

    Returns the messages and their encoded payloads, in order.
    """
    if isinstance(items, str | bytes | Mapping | Message):
        raise ValidationError("extend() takes an iterable of messages, not a single message")
    if not isinstance(items, Iterable):
        raise ValidationError(f"extend() takes an iterable of messages, not {type(items).__name__}")
    messages: list[Message] = []
    payloads: list[bytes] = []
    for index, item in enumerate(items):
        where = f"message {index}"
        msg = coerce_message(item, where)
        messages.append(msg)
        payloads.append(encode_message(msg, max_bytes, compress_threshold, where))
    return messages, payloads


BATCH_INDEX_LEN: Final = 6
"""Hex digits of a message's position inside its ``extend`` batch, after the stamp."""

HEAD_LEN: Final = STAMP_LEN + BATCH_INDEX_LEN
"""Length of ``<stamp><batch index>``, where a member's message id starts."""


def member(stamp: str, index: int, message_id: str, payload: bytes) -> bytes:
    """Return the sorted-set member that stores a message: ``<stamp><index><id>\0<payload>``.

    All members score 0, so Redis orders them by bytes: by stamp (fixed width), then by the
    message's index in its batch (every message of one ``extend`` shares one stamp, so a
    batch stays contiguous whatever other writers do), then by id. Message ids hold no
    control characters, so the first NUL after the head ends the id.
    """
    return b"".join((member_head(stamp, index, message_id), b"\0", payload))


def member_head(stamp: str, index: int, message_id: str) -> bytes:
    """Return ``<stamp><index><id>``: what identifies a message in the change log."""
    return f"{stamp}{index:06x}{message_id}".encode()


def stored_heads(reply: Sequence[Any], stamp: str, heads: list[bytes]) -> list[bytes] | None:
    """The heads ``session_append`` stored a batch under, when it moved the batch's stamp.

    A write made now goes after everything its session holds (``lua/_session.lua``): when the
    session held a message, clear, delete or policy stamped at or after ``stamp``, the script
    rewrote the batch's stamp and returns the new one last. None when it kept ``stamp``.
    """
    moved = reply[9]
    moved = moved.decode() if isinstance(moved, bytes) else str(moved)
    if moved == stamp:
        return None
    head = moved.encode()
    return [head + h[STAMP_LEN:] for h in heads]


def member_prefix(raw: bytes) -> bytes:
    """Return ``<stamp><index><id>`` of a stored member."""
    return raw[: raw.index(b"\0", HEAD_LEN)]


def member_payload(raw: bytes) -> bytes:
    """Return the encoded message of a member."""
    return raw[raw.index(b"\0", HEAD_LEN) + 1 :]


def append_args(
    messages: Sequence[Message], payloads: Sequence[bytes], stamp: str
) -> tuple[list[str | bytes], list[bytes]]:
    """Return session_append's flat ``(id, member)`` arguments and each message's head."""
    if len(messages) > 16**BATCH_INDEX_LEN:
        raise ValidationError(f"extend() takes at most {16**BATCH_INDEX_LEN} messages at once")
    args: list[str | bytes] = []
    heads: list[bytes] = []
    for index, (msg, payload) in enumerate(zip(messages, payloads, strict=True)):
        head = member_head(stamp, index, msg.id)
        heads.append(head)
        args.append(msg.id)
        args.append(head + b"\0" + payload)
    return args, heads


def decode_messages(payloads: Sequence[bytes], key: str) -> list[Message]:
    """Decode stored payloads into Messages, naming ``key`` when one is damaged."""
    return Message.from_stored_many(decode_dicts(payloads, key))


def decode_dicts(payloads: Sequence[bytes], key: str) -> list[dict[str, Any]]:
    """Decode stored payloads into the dicts rmem stored, checked as messages (fresh dicts the
    caller owns), naming ``key`` when one is damaged."""
    try:
        items = unpack_many(payloads)
    except CorruptDataError as exc:
        raise CorruptDataError(f"message in {key} is corrupt: {exc}", key=key) from None
    for data in items:
        if (
            type(data) is not dict
            or type(data.get("role")) is not str
            or type(data.get("id")) is not str
            or type(data.get("created_at", 0.0)) not in _NUMBER_TYPES
            or type(data.get("name")) not in _OPTIONAL_STR
            or type(data.get("metadata")) not in _OPTIONAL_DICT
        ):
            raise CorruptDataError(f"message in {key} is not an rmem message", key=key)
    return items


_NUMBER_TYPES: Final = (float, int)
_OPTIONAL_STR: Final = (str, type(None))
_OPTIONAL_DICT: Final = (dict, type(None))


def decode_message(payload: bytes, key: str) -> Message:
    """Decode one stored payload into a Message, naming ``key`` when it is damaged."""
    return decode_messages([payload], key)[0]


def decode_members(members: Sequence[Any], key: str) -> list[Message]:
    """Decode sorted-set members (``<stamp><id>\0<payload>``), in the order given."""
    try:
        payloads = [m[m.index(b"\0", HEAD_LEN) + 1 :] for m in members]
    except (ValueError, TypeError, AttributeError):
        raise CorruptDataError(f"an entry of {key} is not an rmem message", key=key) from None
    return decode_messages(payloads, key)


_READ_FIELDS: Final = ("count", "bytes", "created", "updated", "ttl", "sliding", "rev", "pttl")
_HEADER = len(_READ_FIELDS)  # session_read's reply starts with these, then the members


def parse_read(
    reply: Sequence[Any], namespace: str, session_id: str, keys: SessionKeys
) -> tuple[SessionInfo | None, list[Message]]:
    """Split a session_read reply into the session's info and its decoded messages.

    Raises:
        CorruptDataError: the meta hash holds a field that is not a number (the script then
            returns a short header), or a message does not decode.
    """
    if not reply:
        return None, []
    try:
        count, size, created, updated, ttl, sliding, rev, remaining = (
            int(value) for value in reply[:_HEADER]
        )
    except (ValueError, TypeError):
        # The script stops its reply at the first field that is not a number.
        field = _READ_FIELDS[len(reply)] if len(reply) < _HEADER else "?"
        raise CorruptDataError(
            f"field {field!r} of session meta hash {keys.meta} is not a number",
            namespace=namespace,
            session=session_id,
            key=keys.meta,
        ) from None
    info = SessionInfo(
        id=session_id,
        namespace=namespace,
        message_count=count,
        size_bytes=size,
        created_at=created / 1000,
        updated_at=updated / 1000,
        ttl=remaining / 1000 if remaining >= 0 else None,
        ttl_policy=ttl / 1000 if ttl > 0 else None,
        sliding=bool(sliding),
        revision=rev,
    )
    return info, decode_members(reply[_HEADER:], keys.msgs)


def check_last(last: object) -> int:
    """Turn ``messages(last=...)`` into session_read's count argument (0 = all)."""
    if last is None:
        return 0
    if isinstance(last, bool) or not isinstance(last, int) or last < 0:
        raise ValidationError(f"last must be a non-negative int or None, not {last!r}")
    return min(last, MAX_LAST)


def export_session(info: SessionInfo, messages: list[Message]) -> dict[str, Any]:
    """Return a JSON-able dict that ``import_session`` turns back into the same session."""
    return {
        "format": EXPORT_FORMAT,
        "namespace": info.namespace,
        "id": info.id,
        "created_at": info.created_at,
        "updated_at": info.updated_at,
        "ttl": info.ttl_policy,
        "sliding": info.sliding,
        "messages": [m.to_dict() for m in messages],
    }


def parse_export(data: object) -> tuple[str, float | None, bool, int, list[object]]:
    """Check an exported session dict; return (id, ttl, sliding, created ms, messages)."""
    if not isinstance(data, Mapping):
        raise ValidationError(f"import_session takes an exported dict, not {type(data).__name__}")
    if data.get("format") != EXPORT_FORMAT:
        raise ValidationError(
            f"unknown export format {data.get('format')!r} (expected {EXPORT_FORMAT!r})"
        )
    session_id = data.get("id")
    messages = data.get("messages")
    if not isinstance(messages, list):
        raise ValidationError("exported session has no 'messages' list")
    ttl = data.get("ttl")
    check_ttl(ttl)
    sliding = data.get("sliding", True)
    if not isinstance(sliding, bool):
        raise ValidationError("exported 'sliding' must be a bool")
    created = data.get("created_at")
    if created is not None and (
        isinstance(created, bool)
        or not isinstance(created, int | float)
        or not 0 <= created <= MAX_CREATED_AT  # also refuses NaN
    ):
        raise ValidationError(
            f"exported 'created_at' must be Unix seconds from 0 to {MAX_CREATED_AT}, "
            f"not {created!r}"
        )
    created_ms = -1 if created is None else int(created * 1000)  # -1: the session starts now
    if not isinstance(session_id, str):
        raise ValidationError("exported session has no string 'id'")
    return session_id, ttl, sliding, created_ms, messages


SESSION_KEY_TYPES: Final = ("hash", "zset", "stream")
"""The Redis type of each of a session's keys (meta, msgs, changes)."""

META_NUMBERS: Final = (
    "v",
    "created",
    "updated",
    "anchor",
    "count",
    "bytes",
    "rev",
    "ttl",
    "sliding",
)
"""Meta hash fields that the scripts read as integers."""


def find_damage(
    keys: SessionKeys,
    types: Sequence[Any],
    numbers: Sequence[Any] | None,
    namespace: str,
    session_id: str,
) -> CorruptDataError | None:
    """Name the damaged key of a session that a script failed on, or None if all look sound.

    ``types`` are the TYPE replies for ``keys``; ``numbers`` the values of the meta hash's
    ``META_NUMBERS`` fields (None when the meta hash was not read).
    """
    ctx = {"namespace": namespace, "session": session_id}
    for key, found, wanted in zip(keys, types, SESSION_KEY_TYPES, strict=True):
        kind = found.decode() if isinstance(found, bytes) else str(found)
        if kind not in ("none", wanted):
            return CorruptDataError(
                f"{key} holds a {kind}, not the {wanted} rmem keeps there", key=key, **ctx
            )
    for name, value in zip(META_NUMBERS, numbers or (), strict=False):
        if value is not None and not _is_int(value):
            return CorruptDataError(
                f"field {name!r} of {keys.meta} holds {value!r}, not an integer",
                key=keys.meta,
                **ctx,
            )
    return None


def _is_int(value: Any) -> bool:
    # The rule of lua/_meta.lua: a decimal integer of at most 18 characters, as HINCRBY keeps.
    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    digits = text[1:] if text[:1] == "-" else text
    return len(text) <= 18 and digits.isascii() and digits.isdigit()
