"""Input checks shared by every API: all run before anything is sent to Redis."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from rmem._errors import ValidationError

MAX_SESSION_ID_LENGTH = 256
MAX_NAMESPACE_LENGTH = 128
MAX_TTL = 10 * 365 * 24 * 3600  # seconds
MAX_DEPTH = 256
"""Most levels of nesting a stored value may have (msgpack decodes at most 1024)."""

_NAMESPACE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]*")
# C0 and C1 control characters, DEL, and the Unicode line/paragraph separators.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def check_namespace(namespace: object) -> str:
    """Return ``namespace`` if it is a valid namespace name, else raise ValidationError.

    A namespace is 1-128 characters of ``A-Z a-z 0-9 _ . : -``, starting with a letter or digit.
    """
    if not isinstance(namespace, str):
        raise ValidationError(f"namespace must be a str, not {type(namespace).__name__}")
    if len(namespace) > MAX_NAMESPACE_LENGTH or not _NAMESPACE_RE.fullmatch(namespace):
        raise ValidationError(
            f"invalid namespace {namespace!r}: use 1-{MAX_NAMESPACE_LENGTH} characters of "
            "A-Z a-z 0-9 _ . : - starting with a letter or digit",
            namespace=namespace,
        )
    return namespace


def check_session_id(session_id: object, namespace: str | None = None) -> str:
    """Return ``session_id`` if valid: a non-empty str of at most 256 characters, no controls."""
    if not isinstance(session_id, str):
        raise ValidationError(
            f"session id must be a str, not {type(session_id).__name__}", namespace=namespace
        )
    if not session_id:
        raise ValidationError("session id must not be empty", namespace=namespace)
    if len(session_id) > MAX_SESSION_ID_LENGTH:
        raise ValidationError(
            f"session id is {len(session_id)} characters long; the limit is "
            f"{MAX_SESSION_ID_LENGTH}",
            namespace=namespace,
        )
    if _CONTROL_RE.search(session_id):
        raise ValidationError(
            f"session id {session_id!r} contains a control character", namespace=namespace
        )
    check_unicode(session_id, "session id", namespace)
    return session_id


def check_unicode(value: str, what: str, namespace: str | None = None) -> str:
    """Return ``value`` if it encodes to UTF-8 (no lone surrogates), else raise ValidationError.

    Keys and fields are sent as UTF-8: a lone surrogate would fail inside redis-py instead.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            f"{what} {value!r} is not valid Unicode (it holds a lone surrogate)",
            namespace=namespace,
        ) from None
    return value


def check_ttl(ttl: object) -> int:
    """Convert a TTL in seconds (int or float, > 0) or None to milliseconds; None gives 0."""
    if ttl is None:
        return 0
    if isinstance(ttl, bool) or not isinstance(ttl, int | float):
        raise ValidationError(f"ttl must be seconds (int or float) or None, not {ttl!r}")
    if not math.isfinite(ttl) or ttl <= 0:
        raise ValidationError(f"ttl must be a positive number of seconds or None, not {ttl!r}")
    if ttl > MAX_TTL:
        # Lua formats numbers with 14 significant digits: a bound keeps deadlines exact.
        raise ValidationError(f"ttl {ttl!r} is too large (at most {MAX_TTL} seconds, 10 years)")
    return math.ceil(ttl * 1000)


def check_plain(value: Any, where: str) -> None:
    """Refuse anything that would not survive a JSON export: only str-keyed dicts, lists,
    tuples, str, int, float, bool and None are storable (bytes, sets and objects are not), at
    most ``MAX_DEPTH`` levels deep (which also refuses a container that holds itself)."""
    if value is None or isinstance(value, str | int | float):
        return
    # Iterative, depth first: a deep or cyclic value reaches the limit without recursing.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if item is None or isinstance(item, str | int | float):
            continue
        if depth > MAX_DEPTH:
            raise ValidationError(f"{where}: nested more than {MAX_DEPTH} levels deep")
        if isinstance(item, Mapping):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise ValidationError(
                        f"{where}: dict keys must be str, not {type(key).__name__}"
                    )
                stack.append((child, depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((child, depth + 1) for child in item)
        else:
            raise ValidationError(
                f"{where}: a {type(item).__name__} cannot be stored (use JSON types)"
            )
