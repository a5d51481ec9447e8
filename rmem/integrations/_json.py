"""A fast answer to "is this storable?" for the adapters' hot write paths.

rmem stores JSON-like values only (``rmem._validate.check_plain``: str-keyed dicts, lists,
tuples, str, int, float, bool and None, at most ``MAX_DEPTH`` levels deep). That check accepts
subclasses and any ``Mapping``, so it pays an ``isinstance`` against ABCs for every value.
Framework values are almost always exact builtin types: :func:`is_plain` walks those at a
fraction of the cost and says False for anything else, which the caller then hands to
``check_plain`` for the exact verdict and error message.

A value that is copied through msgpack anyway (the OpenAI Agents adapter copies every batch)
needs no walk at all: :func:`copy_plain` proves the copy plain from the packed bytes.
"""

from __future__ import annotations

from typing import Any, Final

import msgpack

from rmem._codec import packb
from rmem._validate import check_plain

__all__ = ["check_json", "copy_plain", "is_plain"]

_SCALARS: Final = frozenset((str, int, float, bool, type(None)))
_FAST_DEPTH: Final = 64  # deeper values go to check_plain (which allows up to MAX_DEPTH)
# The first byte of every msgpack map or array: fixmap, fixarray, array 16/32, map 16/32.
_CONTAINER_HEADS: Final = bytes((*range(0x80, 0xA0), 0xDC, 0xDD, 0xDE, 0xDF))
# An empty bin (bytes) or an empty ext, as msgpack packs them: the only bin and ext data that
# unpacking with max_bin_len=0 and max_ext_len=0 lets through.
_BIN8, _EXT8 = b"\xc4", b"\xc7"
_EMPTY_BIN: Final = _BIN8 + b"\x00"
_EMPTY_EXT: Final = _EXT8 + b"\x00"
# Every byte but those looked for: deleting them leaves a short string to search.
_UNWATCHED: Final = bytes(sorted(set(range(256)) - set(_CONTAINER_HEADS + _BIN8 + _EXT8)))


def is_plain(value: Any, depth: int = 0) -> bool:
    """True when ``value`` holds only exact JSON types and is not deep; False: "ask
    ``check_plain``" (a subclass, a non-str key, bytes, an object, a deep or cyclic value)."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if depth > _FAST_DEPTH:
        return False
    if kind is dict:
        for key, child in value.items():
            if type(key) is not str:
                return False
            if type(child) not in _SCALARS and not is_plain(child, depth + 1):
                return False
        return True
    if kind is list or kind is tuple:
        for child in value:
            if type(child) not in _SCALARS and not is_plain(child, depth + 1):
                return False
        return True
    return False


def check_json(value: Any, where: str) -> None:
    """``check_plain(value, where)``, fast for exact JSON types.

    Raises:
        ValidationError: ``value`` is not storable (``check_plain``'s error).
    """
    if not is_plain(value):
        check_plain(value, where)


def copy_plain(value: Any, max_depth: int) -> tuple[Any, bool]:
    """A deep copy of ``value`` through msgpack (tuples become lists), and True when the copy
    is proven to hold only exact JSON types (str-keyed dicts, lists, str, int, float, bool,
    None) nested at most ``max_depth`` levels (``value`` itself counting as one).

    False means "not proven": walk the copy (``is_plain``, ``check_plain``) for the verdict.
    The proof costs two C calls over the packed bytes instead of a walk in Python. After the
    round trip every value is an exact msgpack type, and the only ones that are not JSON types
    are bytes (bin) and ext values (``msgpack.Timestamp``, ``msgpack.ExtType``): unpacking
    with ``max_bin_len=0`` and ``max_ext_len=0`` refuses every one that is not empty, and an
    empty one has a two-byte encoding that is looked for. Every level of nesting starts with a
    container's head byte, so no more such bytes than ``max_depth`` bounds the depth (text
    that is not ASCII holds such bytes too: then the answer may be False for a plain value).

    Raises:
        TypeError, ValueError, OverflowError: what msgpack raises for a value it cannot pack
            or unpack (an object, an int beyond 64 bits, a non-str, non-bytes dict key, ...),
            exactly as ``msgpack.unpackb(msgpack.packb(value, use_bin_type=True), raw=False)``.
    """
    packed = packb(value)
    try:
        copy = msgpack.unpackb(packed, raw=False, max_bin_len=0, max_ext_len=0)
    except ValueError:  # bin or ext data (or an error unpacking below raises again)
        return msgpack.unpackb(packed, raw=False), False
    # The bytes looked for, in one C pass (searching all of packed for two-byte strings
    # costs several times more); the rare batch with an 0xc4 or 0xc7 byte is searched.
    watched = packed.translate(None, _UNWATCHED)
    if _BIN8 in watched or _EXT8 in watched:
        if _EMPTY_BIN in packed or _EMPTY_EXT in packed:
            return copy, False
        watched = watched.translate(None, _BIN8 + _EXT8)
    return copy, len(watched) <= max_depth
