"""Every bad input raises rmem.ValidationError before anything is written."""

from __future__ import annotations

from typing import Any

import pytest

import rmem
from tests.conftest import Api

BAD_SESSION_IDS: list[Any] = ["", "x" * 257, "a\x00b", "line\nbreak", "tab\there", "\x7f", 5, None]
BAD_MESSAGES: list[Any] = [
    {},  # no role
    {"role": ""},
    {"role": "   "},
    {"role": None},
    {"role": 3},
    {"role": "user", "content": b"bytes"},
    {"role": "user", "content": {1: "int key"}},
    {"role": "user", "content": {"a": {1, 2}}},
    {"role": "user", "content": object()},
    {"role": "user", "content": 2**70},
    {"role": "user", "metadata": "not a dict"},
    {"role": "user", "extra": b"x"},
    {"role": "user", "id": ""},
    {"role": "user", "id": "x" * 300},
    {"role": "user", "created_at": "yesterday"},
    "just a string",
    42,
]

LOCAL_BACKEND = True  # also run on mem://, the local backend (see conftest)


def _populated(api: Api) -> Any:
    s = api.client().session("guarded", ttl=300)
    s.extend([{"role": "user", "content": "one"}, {"role": "assistant", "content": "two"}])
    return s


def _snapshot(s: Any) -> tuple[Any, ...]:
    info = s.info()
    return (s.messages(), info.message_count, info.size_bytes, info.revision)


@pytest.mark.parametrize("sid", BAD_SESSION_IDS)
def test_bad_session_id(api: Api, sid: Any) -> None:
    with pytest.raises(rmem.ValidationError):
        api.client().session(sid)


def test_longest_session_id_is_accepted(api: Api) -> None:
    s = api.client().session("é" * 256)
    s.append({"role": "user"})
    assert s.count() == 1


@pytest.mark.parametrize("message", BAD_MESSAGES, ids=repr)
def test_bad_message_changes_nothing(api: Api, message: Any) -> None:
    s = _populated(api)
    before = _snapshot(s)
    with pytest.raises(rmem.ValidationError):
        s.append(message)
    assert _snapshot(s) == before


@pytest.mark.parametrize("message", BAD_MESSAGES[:6], ids=repr)
def test_one_bad_item_refuses_the_whole_batch(api: Api, message: Any) -> None:
    s = _populated(api)
    before = _snapshot(s)
    with pytest.raises(rmem.ValidationError):
        s.extend([{"role": "user", "content": "fine"}, message, {"role": "user"}])
    assert _snapshot(s) == before


def test_extend_refuses_a_single_message(api: Api) -> None:
    s = _populated(api)
    with pytest.raises(rmem.ValidationError):
        s.extend({"role": "user"})


def test_message_over_the_size_limit(api: Api) -> None:
    c = api.client(max_message_bytes=10_000)
    s = c.session("limit")
    s.append({"role": "user", "content": "x" * 9_000})
    before = _snapshot(s)
    with pytest.raises(rmem.ValidationError, match=r"the limit is 10000 \(max_message_bytes\)"):
        s.append({"role": "user", "content": "y" * 20_000})
    # a value msgpack cannot hold is not a size problem: the error does not name the setting
    with pytest.raises(rmem.ValidationError, match="cannot be encoded") as info:
        s.append({"role": "user", "content": 2**70})
    assert "max_message_bytes" not in str(info.value)
    # compressible content is judged by its real size, not its compressed size
    with pytest.raises(rmem.ValidationError, match="limit"):
        s.append({"role": "user", "content": "z" * 50_000})
    assert _snapshot(s) == before


def test_default_limit_is_one_mebibyte(api: Api) -> None:
    s = api.client().session("mib")
    with pytest.raises(rmem.ValidationError):
        s.append({"role": "user", "content": "q" * (1024 * 1024 + 1)})
    assert s.exists() is False


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf"), "60", True])
def test_bad_ttl(api: Api, ttl: Any) -> None:
    c = api.client()
    with pytest.raises(rmem.ValidationError):
        c.session("t", ttl=ttl)
    s = c.session("t")
    s.append({"role": "user"})
    with pytest.raises(rmem.ValidationError):
        s.expire(ttl)


@pytest.mark.parametrize("last", [-1, 1.5, "5", True])
def test_bad_last(api: Api, last: Any) -> None:
    with pytest.raises(rmem.ValidationError):
        _populated(api).messages(last=last)


@pytest.mark.parametrize("namespace", ["", "a/b", "{x}", "sp ace", "-lead", "x" * 129, 7])
def test_bad_namespace(api: Api, namespace: Any) -> None:
    with pytest.raises(rmem.ValidationError):
        api.client().with_namespace(namespace)
    with pytest.raises(rmem.ValidationError):
        rmem.Client.from_url(api.url, namespace=namespace)


@pytest.mark.parametrize(
    "options",
    [{"url": "http://x"}, {"pool_size": 0}, {"socket_timeout": -1}, {"no_such_option": 1}],
)
def test_bad_client_options(options: dict[str, Any]) -> None:
    url = options.pop("url", "redis://127.0.0.1:1/0")
    with pytest.raises(rmem.ValidationError):
        rmem.Client.from_url(url, **options)
