"""The I/O-free half of sessions: input checks, packing, and reading script replies.

``_async/session.py`` (and the ``_sync`` code generated from it) only moves bytes; everything
that decides what is valid, how a message is encoded and what a reply means lives here, once.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from pydantic import ValidationError as PydanticValidationError

from rmem._codec import pack, unpack_many
from rmem._errors import CorruptDataError, ValidationError
from rmem._hlc import STAMP_LEN
from rmem._models import Message, SessionInfo
from rmem._validate import check_plain, check_ttl

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
    if isinstance(item, Message):
        msg = item
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


def encode_message(
    msg: Message, max_bytes: int, compress_threshold: int, where: str = "message"
) -> bytes:
    """Pack a validated message; refuse it when its encoding exceeds ``max_bytes``."""
    try:
        return pack(msg.to_dict(), compress_threshold=compress_threshold, max_size=max_bytes)
    except ValidationError as exc:
        raise ValidationError(f"invalid {where}: {exc} (max_message_bytes)") from None


def prepare_batch(
    items: Iterable[object], max_bytes: int, compress_threshold: int
) -> tuple[list[Message], list[bytes]]:
    """Validate and encode every item, or raise for the first bad one (nothing is sent then).

    Returns the messages and their encoded payloads, in order.
    """
    if isinstance(items, str | bytes | Mapping | Message):
        raise ValidationError("extend() takes an iterable of messages, not a single message")
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
    try:
        items = unpack_many(payloads)
    except CorruptDataError as exc:
        raise CorruptDataError(f"message in {key} is corrupt: {exc}", key=key) from None
    for data in items:
        if type(data) is not dict or type(data.get("role")) is not str or "id" not in data:
            raise CorruptDataError(f"message in {key} is not an rmem message", key=key)
    return Message.from_stored_many(items)


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


_HEADER = 8  # count, bytes, created, updated, ttl, sliding, revision, remaining ms


def parse_read(
    reply: Sequence[Any], namespace: str, session_id: str, log_key: str
) -> tuple[SessionInfo | None, list[Message]]:
    """Split a session_read reply into the session's info and its decoded messages."""
    if not reply:
        return None, []
    count, size, created, updated, ttl, sliding, rev, remaining = reply[:_HEADER]
    info = SessionInfo(
        id=session_id,
        namespace=namespace,
        message_count=int(count),
        size_bytes=int(size),
        created_at=int(created) / 1000,
        updated_at=int(updated) / 1000,
        ttl=int(remaining) / 1000 if int(remaining) >= 0 else None,
        ttl_policy=int(ttl) / 1000 if int(ttl) > 0 else None,
        sliding=bool(int(sliding)),
        revision=int(rev),
    )
    return info, decode_members(reply[_HEADER:], log_key)


def check_last(last: object) -> int:
    """Turn ``messages(last=...)`` into session_read's count argument (0 = all)."""
    if last is None:
        return 0
    if isinstance(last, bool) or not isinstance(last, int) or last < 0:
        raise ValidationError(f"last must be a non-negative int or None, not {last!r}")
    return last


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
    if created is not None and (isinstance(created, bool) or not isinstance(created, int | float)):
        raise ValidationError("exported 'created_at' must be a number")
    created_ms = int(created * 1000) if created else 0
    if not isinstance(session_id, str):
        raise ValidationError("exported session has no string 'id'")
    return session_id, ttl, sliding, created_ms, messages
