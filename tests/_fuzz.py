"""Shared strategies and oracles of the fuzz tests (tests/test_fuzz_*.py).

The oracles restate the documented input rules independently of rmem's code, so a fuzz test
proves that rmem refuses exactly what the rules refuse, not merely that it refuses something.
"""

from __future__ import annotations

import math
import re
from typing import Any

import msgpack
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

MAX_DEPTH = 256  # docs/decisions.md, 24: JSON-like values nest at most this deep
MAX_TTL = 10 * 365 * 24 * 3600


def fuzz_settings(max_examples: int) -> Any:
    """Reproducible settings: fixed seed, no example database, no deadline (real Redis)."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# ---------------------------------------------------------------- text

# Every code point, lone surrogates and controls included.
any_char = st.characters(exclude_categories=())
TRICKY = ["", " ", "\x00", "a\x00b", "\ud800", "x\udfff", "é", "𝄞", "\u2028", "\x7f", "\t"]
any_text = st.text(any_char, max_size=12) | st.sampled_from(TRICKY)
clean_text = st.text(max_size=12)  # no surrogates (Hypothesis' default alphabet)

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def encodable(text: str) -> bool:
    """Whether ``text`` has a UTF-8 form (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def valid_ttl(ttl: Any) -> bool:
    """TTLs: None, or a finite number of seconds (not a bool) in (0, 10 years]."""
    if ttl is None:
        return True
    number = isinstance(ttl, int | float) and not isinstance(ttl, bool)
    return number and math.isfinite(ttl) and 0 < ttl <= MAX_TTL


def valid_id(value: object) -> bool:
    """Session and record ids: a str of 1-256 characters, no controls, valid Unicode."""
    return (
        isinstance(value, str)
        and 1 <= len(value) <= 256
        and not _CONTROL.search(value)
        and encodable(value)
    )


# ---------------------------------------------------------------- values

INT64_MIN, UINT64_MAX = -(2**63), 2**64 - 1
scalars = (
    st.none()
    | st.booleans()
    | st.integers(INT64_MIN, UINT64_MAX)
    | st.floats()  # NaN and infinities included: msgpack keeps them bit for bit
    | clean_text
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(clean_text, inner, max_size=4)
    ),
    max_leaves=12,
)


class Opaque:
    """An object no codec should store."""

    def __repr__(self) -> str:
        return "Opaque()"


def nested(depth: int) -> list[Any]:
    """A list nested ``depth`` levels deep (itself counted)."""
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def cycle() -> list[Any]:
    value: list[Any] = []
    value.append(value)
    return value


bad_leaves = st.one_of(
    st.binary(max_size=4),
    st.frozensets(st.integers(0, 3), max_size=2),
    st.builds(Opaque),
    st.integers(UINT64_MAX + 1, 2**80),
    st.integers(-(2**80), INT64_MIN - 1),
    st.complex_numbers(max_magnitude=4, allow_nan=False),
    st.sampled_from(["\ud800", "ok \udfff"]),
    st.builds(nested, st.sampled_from([MAX_DEPTH + 1, 1100])),
    st.builds(cycle),
)
bad_values = st.recursive(
    bad_leaves,
    lambda inner: (
        st.lists(inner, min_size=1, max_size=2).flatmap(
            lambda xs: st.lists(json_values, max_size=2).map(lambda ys: [*ys, *xs])
        )
        | st.dictionaries(clean_text, inner, min_size=1, max_size=2)
        | st.builds(lambda k, v: {k: v}, st.integers() | st.binary(max_size=2), json_values)
        | st.builds(lambda k, v: {k: v}, st.just("\ud800"), json_values)
    ),
    max_leaves=3,
)
# Values of the wrong type for a scalar argument (a ttl, a flag, a count...).
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**80), 2**80),
    st.floats(),
    any_text,
    st.binary(max_size=4),
    st.builds(Opaque),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(clean_text, st.integers(), max_size=2),
)


def is_plain(value: Any) -> bool:
    """Whether ``value`` is storable: JSON-like types only (tuples allowed), str keys, text
    with a UTF-8 form, 64-bit ints, at most MAX_DEPTH levels of nesting."""

    def ok(item: Any, depth: int) -> bool:
        if item is None or isinstance(item, bool | float):
            return True
        if isinstance(item, int):
            return INT64_MIN <= item <= UINT64_MAX
        if isinstance(item, str):
            return encodable(item)
        if depth >= MAX_DEPTH:
            return False
        if isinstance(item, list | tuple):
            return all(ok(x, depth + 1) for x in item)
        if isinstance(item, dict):
            return all(
                isinstance(k, str) and encodable(k) and ok(v, depth + 1) for k, v in item.items()
            )
        return False

    return ok(value, 0)


def plain(value: Any) -> Any:
    """``value`` as it reads back: tuples become lists."""
    if isinstance(value, list | tuple):
        return [plain(x) for x in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def same(a: Any, b: Any) -> bool:
    """Equality that tells types apart (1, 1.0 and True differ) and takes NaN as equal."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def frozen(value: Any) -> bytes:
    """A byte image of ``value`` for before/after comparisons (NaN-safe)."""
    return msgpack.packb(value, use_bin_type=True, default=repr)


def cases(**fields: tuple[Any, Any]) -> Any:
    """Keyword arguments, each drawn from its (valid, anything) pair of strategies.

    A third of the cases are all valid, a third have one argument drawn from anything, and a
    third draw every argument from anything: accepted calls stay common enough to check
    round trips, and every argument still meets every kind of junk.
    """

    @st.composite
    def draw_case(draw: st.DrawFn) -> dict[str, Any]:
        mode = draw(st.sampled_from(["valid", "one", "any"]))
        odd = draw(st.sampled_from(sorted(fields))) if mode == "one" else None
        return {
            name: draw(anything if mode == "any" or name == odd else valid)
            for name, (valid, anything) in fields.items()
        }

    return draw_case()
