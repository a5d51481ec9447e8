"""Behaviour of sessions, run on both the sync and the async API against a real Redis."""

from __future__ import annotations

import json

import pytest

import rmem
from rmem._keys import session_keys
from tests.conftest import Api

LOCAL_BACKEND = True  # also run on mem://, the local backend (see conftest)


def test_append_assigns_id_and_time_and_reads_back(api: Api) -> None:
    s = api.client().session("chat")
    m = s.append({"role": "user", "content": "hi"})
    assert isinstance(m, rmem.Message)
    assert m.id and m.created_at > 0
    [back] = s.messages()
    assert back == m


def test_messages_in_order_and_last_n(api: Api) -> None:
    s = api.client().session("chat")
    sent = s.extend([{"role": "user", "content": f"m{i}"} for i in range(30)])
    assert [m.content for m in s.messages()] == [f"m{i}" for i in range(30)]
    assert [m.content for m in s.messages(last=5)] == [f"m{i}" for i in range(25, 30)]
    assert s.messages(last=0) == []
    assert s.messages(last=100) == sent
    assert s.count() == 30


def test_unknown_fields_and_structured_content_round_trip(api: Api) -> None:
    s = api.client().session("items")
    item = {
        "role": "assistant",
        "content": [{"type": "output_text", "text": "ok", "annotations": []}],
        "type": "message",
        "status": "completed",
        "tool_calls": [{"id": "call_1", "function": {"name": "f", "arguments": '{"a": 1}'}}],
        "name": "bot",
        "metadata": {"score": 0.5, "nested": {"ok": True, "none": None}},
        "unicode": "héllo ✓ 😀",
    }
    s.append(item)
    [back] = s.messages()
    dumped = back.to_dict()
    for key, value in item.items():
        assert dumped[key] == value
    assert json.loads(json.dumps(s.export()))["messages"][0] == dumped


def test_message_id_appended_twice_is_stored_once(api: Api) -> None:
    s = api.client().session("retry")
    first = s.append({"role": "user", "content": "once", "id": "msg-1"})
    again = s.append({"role": "user", "content": "once", "id": "msg-1"})
    assert again.id == first.id
    s.extend([{"role": "user", "content": "x", "id": "msg-1"}, {"role": "user", "id": "msg-2"}])
    assert [m.id for m in s.messages()] == ["msg-1", "msg-2"]
    info = s.info()
    assert info.message_count == 2


def test_duplicate_ids_inside_one_batch(api: Api) -> None:
    s = api.client().session("batch")
    s.extend([{"role": "user", "id": "a"}, {"role": "user", "id": "a"}, {"role": "user"}])
    assert s.count() == 2


def test_pop_returns_newest_and_none_when_empty(api: Api) -> None:
    s = api.client().session("pop")
    assert s.pop() is None
    s.extend([{"role": "user", "content": "1"}, {"role": "assistant", "content": "2"}])
    popped = s.pop()
    assert popped is not None and popped.content == "2"
    assert [m.content for m in s.messages()] == ["1"]
    info = s.info()
    assert info.message_count == 1
    # the popped id is free again: appending it stores it anew
    s.append(popped)
    assert [m.content for m in s.messages()] == ["1", "2"]
    assert s.pop().content == "2"
    assert s.pop().content == "1"
    assert s.pop() is None
    assert s.info().message_count == 0
    assert s.info().size_bytes == 0


def test_info_counts_bytes_and_times(api: Api) -> None:
    s = api.client().session("info", ttl=100)
    with pytest.raises(rmem.NotFoundError):
        s.info()
    s.extend([{"role": "user", "content": "a" * 100}, {"role": "user", "content": "b"}])
    info = s.info()
    assert info.id == "info"
    assert info.namespace == api.namespace
    assert info.message_count == 2
    assert info.size_bytes > 100
    assert info.created_at <= info.updated_at
    assert info.ttl is not None and 99 <= info.ttl <= 100
    assert info.ttl_policy == 100
    assert info.sliding is True
    assert info.revision == 1


def test_exists_clear_delete(api: Api) -> None:
    c = api.client()
    s = c.session("life")
    assert s.exists() is False
    assert s.delete() is False
    with pytest.raises(rmem.NotFoundError):
        s.clear()
    s.extend([{"role": "user"}, {"role": "user"}])
    assert s.exists() is True
    assert s.clear() == 2
    assert s.exists() is True
    assert s.messages() == []
    assert s.count() == 0
    assert c.sessions() == ["life"]
    assert s.delete() is True
    assert s.exists() is False
    assert c.sessions() == []


def test_delete_removes_every_key(api: Api) -> None:
    s = api.client().session("keys")
    s.append({"role": "user"})
    keys = session_keys(api.namespace, "keys")
    raw = api.raw()
    assert raw.exists(*keys) == 3
    s.delete()
    # Only a tombstone remains (so a delayed older append cannot resurrect the session), and
    # it expires on its own.
    assert raw.exists(keys.msgs) == 0
    assert set(raw.hgetall(keys.meta)) == {b"v", b"rev", b"del"}
    for key in (keys.meta, keys.changes):
        assert 0 < raw.pttl(key) <= 86_400_000
    assert not s.exists()
    assert s.messages() == []
    raw.close()


def test_sessions_lists_namespace_only(api: Api) -> None:
    c = api.client()
    for sid in ["a", "b", "c"]:
        c.session(sid).append({"role": "user"})
    other = c.with_namespace(api.namespace + "-other")
    other.session("z").append({"role": "user"})
    assert c.sessions() == ["a", "b", "c"]
    assert other.sessions() == ["z"]
    assert other.namespace == api.namespace + "-other"
    assert c.namespace == api.namespace


def test_namespaces_do_not_share_sessions(api: Api) -> None:
    c = api.client()
    c.session("same").append({"role": "user", "content": "from a"})
    other = c.with_namespace(api.namespace + "-b")
    assert other.session("same").messages() == []
    other.session("same").append({"role": "user", "content": "from b"})
    assert [m.content for m in c.session("same").messages()] == ["from a"]


def test_export_import_round_trip(api: Api) -> None:
    c = api.client()
    s = c.session("exp", ttl=500, sliding=False)
    s.extend([{"role": "user", "content": "q", "x": 1}, {"role": "assistant", "content": "a"}])
    data = s.export()
    assert json.loads(json.dumps(data)) == data
    copy = c.with_namespace(api.namespace + "-copy").import_session(data)
    assert copy.messages() == s.messages()
    info = copy.info()
    assert info.ttl_policy == 500 and info.sliding is False
    assert info.created_at == s.info().created_at
    # importing twice stores nothing new
    c.with_namespace(api.namespace + "-copy").import_session(data)
    assert copy.count() == 2


def test_import_refuses_bad_data_and_writes_nothing(api: Api) -> None:
    c = api.client()
    with pytest.raises(rmem.ValidationError):
        c.import_session({"format": "other"})
    with pytest.raises(rmem.ValidationError):
        c.import_session([])
    bad = {"format": "rmem.session/1", "id": "x", "messages": [{"role": "user"}, {"role": ""}]}
    with pytest.raises(rmem.ValidationError):
        c.import_session(bad)
    assert c.sessions() == []


def test_message_objects_and_dicts_are_both_accepted(api: Api) -> None:
    s = api.client().session("types")
    s.append(rmem.Message(role="system", content="be brief"))
    s.append({"role": "user", "content": None})
    assert [m.role for m in s.messages()] == ["system", "user"]


def test_session_survives_a_new_client(api: Api) -> None:
    api.client().session("keep").append({"role": "user", "content": "remember me"})
    fresh = api.client()
    assert [m.content for m in fresh.session("keep").messages()] == ["remember me"]


def test_large_message_is_compressed_and_round_trips(api: Api) -> None:
    s = api.client().session("big")
    text = "lorem ipsum dolor " * 20_000
    s.append({"role": "user", "content": text})
    assert s.messages()[0].content == text
    assert s.info().size_bytes < len(text) // 4  # lz4 shrank the repetitive payload


def test_health_reports_connected_server(api: Api) -> None:
    h = api.client().health()
    assert h.state == "connected"
    if api.backend == "memory":
        assert (h.backend, h.search_engine, h.pending_writes) == ("memory", "local", 0)
        return
    assert h.redis_version is not None and h.redis_version.startswith("8.")
    assert h.search is True
    assert h.latency_ms is not None and h.latency_ms >= 0
