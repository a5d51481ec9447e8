"""A fast answer to "is this storable?" for the adapters' hot write paths.

rmem stores JSON-like values only (``rmem._validate.check_plain``: str-keyed dicts, lists,
tuples, str, int, float, bool and None, at most ``MAX_DEPTH`` levels deep). That check accepts
subclasses and any ``Mapping``, so it pays an ``isinstance`` against ABCs for every value.
Framework values are almost always exact builtin types: :func:`is_plain` walks those at a
fraction of the cost and says False for anything else, which the caller then hands to
``check_plain`` for the exact verdict and error message.
"""

from __future__ import annotations

from typing import Any, Final

from rmem._validate import check_plain

__all__ = ["check_json", "is_plain"]

_SCALARS: Final = frozenset((str, int, float, bool, type(None)))
_FAST_DEPTH: Final = 64  # deeper values go to check_plain (which allows up to MAX_DEPTH)


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
