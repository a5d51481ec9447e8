"""coerce_message's fast path (Message._plain) makes what pydantic's validation makes.

A dict that is exactly a ``role`` and an optional ``content`` (str or None) skips pydantic
(docs/decisions.md, 26); every other input takes the validating path. Both must give the same
message (state, fields set, extras) or the same error.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import rmem
from rmem._models import Message
from rmem._session_core import coerce_message

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

roles = st.one_of(st.text(max_size=8), st.sampled_from(["user", " ", "", "\t"]), st.integers())
contents = st.one_of(st.none(), st.text(max_size=8), st.integers(), st.lists(st.text(max_size=3)))
items = st.fixed_dictionaries(
    {"role": roles},
    optional={"content": contents, "name": st.none(), "extra": st.integers()},
)


def _slow(item: Any) -> Message | str:
    original = Message._plain
    try:
        Message._plain = classmethod(lambda cls, given: None)  # type: ignore[assignment]
        return coerce_message(item)
    except rmem.ValidationError as exc:
        return str(exc)
    finally:
        Message._plain = original  # type: ignore[method-assign]


def _fast(item: Any) -> Message | str:
    try:
        return coerce_message(item)
    except rmem.ValidationError as exc:
        return str(exc)


@given(items)
def test_the_fast_path_makes_what_validation_makes(item: dict[str, Any]) -> None:
    fast, slow = _fast(dict(item)), _slow(dict(item))
    if isinstance(slow, str):
        assert fast == slow
        return
    assert isinstance(fast, Message)
    assert list(fast.__dict__) == list(slow.__dict__)
    assert fast.model_dump(exclude={"id", "created_at"}) == slow.model_dump(
        exclude={"id", "created_at"}
    )
    assert fast.model_dump(exclude_unset=True).keys() == slow.model_dump(exclude_unset=True).keys()
    assert fast.__pydantic_fields_set__ == slow.__pydantic_fields_set__
    assert fast.__pydantic_extra__ == slow.__pydantic_extra__
    assert UUID7.match(fast.id) and type(fast.created_at) is float


@pytest.mark.parametrize(
    "item",
    [{"role": "user"}, {"role": "user", "content": "hi"}, {"content": None, "role": "tool"}],
)
def test_the_common_shapes_take_the_fast_path(item: dict[str, Any]) -> None:
    assert Message._plain(item) is not None


@pytest.mark.parametrize(
    "item",
    [
        {"role": " "},
        {"role": b"user"},
        {"role": "user", "content": ["a"]},
        {"role": "user", "id": "x"},
        {"role": "user", "content": "x", "metadata": {}},
    ],
)
def test_other_shapes_are_validated(item: dict[str, Any]) -> None:
    assert Message._plain(item) is None
