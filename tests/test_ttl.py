"""TTL semantics against a real Redis: sliding, absolute, persistent, and the listing."""

from __future__ import annotations

import time

from rmem._keys import session_keys
from tests.conftest import Api

TTL = 0.6  # seconds: long enough to be reliable, short enough to keep the suite fast

LOCAL_BACKEND = True  # also run on mem://, the local backend (see conftest)


def _keys_left(api: Api, namespace: str, sid: str) -> int:
    raw = api.raw()
    try:
        return int(raw.exists(*session_keys(namespace, sid)))
    finally:
        raw.close()


def test_sliding_session_left_alone_is_gone_with_all_keys(api: Api) -> None:
    c = api.client()
    s = c.session("idle", ttl=TTL)
    s.extend([{"role": "user"}, {"role": "assistant"}])
    assert _keys_left(api, api.namespace, "idle") == 3
    assert c.sessions() == ["idle"]
    time.sleep(TTL + 0.3)
    assert _keys_left(api, api.namespace, "idle") == 0
    assert s.exists() is False
    assert s.messages() == []
    assert c.sessions() == []


def test_reads_keep_a_sliding_session_alive(api: Api) -> None:
    s = api.client().session("busy", ttl=TTL)
    s.append({"role": "user", "content": "keep me"})
    for _ in range(5):  # 5 x 0.3 s = 1.5 s, well past one TTL
        time.sleep(TTL / 2)
        assert [m.content for m in s.messages(last=1)] == ["keep me"]
    assert s.exists()


def test_touch_keeps_a_sliding_session_alive(api: Api) -> None:
    s = api.client().session("touched", ttl=TTL)
    s.append({"role": "user"})
    for _ in range(4):
        time.sleep(TTL / 2)
        assert s.touch() is True
    assert s.exists()
    assert api.client().session("never").touch() is False


def test_absolute_session_expires_while_in_use(api: Api) -> None:
    s = api.client().session("fixed", ttl=TTL, sliding=False)
    s.append({"role": "user"})
    started = time.monotonic()
    # Neither writes nor reads extend an absolute TTL. The writes stop just short of the
    # expiry: one sent after it would create the session anew, as it should.
    while time.monotonic() < started + TTL - 0.15:
        s.append({"role": "user"})
        s.messages()
        time.sleep(0.05)
    deadline = started + TTL + 0.5
    while time.monotonic() < deadline and s.exists():
        s.messages()
        time.sleep(0.02)
    assert s.exists() is False
    assert _keys_left(api, api.namespace, "fixed") == 0


def test_expire_none_makes_a_session_persistent(api: Api) -> None:
    c = api.client()
    s = c.session("forever", ttl=TTL)
    s.append({"role": "user"})
    assert s.expire(None) is True
    info = s.info()
    assert info.ttl is None and info.ttl_policy is None
    time.sleep(TTL + 0.3)
    assert s.exists()
    assert _keys_left(api, api.namespace, "forever") == 3


def test_expire_sets_a_new_ttl_on_every_key(api: Api) -> None:
    s = api.client().session("later")
    s.append({"role": "user"})
    assert s.info().ttl is None
    assert s.expire(TTL) is True
    assert 0 < s.info().ttl <= TTL  # type: ignore[operator]
    time.sleep(TTL + 0.3)
    assert _keys_left(api, api.namespace, "later") == 0
    assert api.client().session("missing").expire(10) is False


def test_default_handle_keeps_the_stored_policy(api: Api) -> None:
    c = api.client()
    c.session("policy", ttl=100, sliding=False).append({"role": "user"})
    plain = c.session("policy")  # names no TTL: must not make the session persistent
    plain.append({"role": "user"})
    info = plain.info()
    assert info.ttl_policy == 100 and info.sliding is False and info.ttl is not None


def test_client_default_ttl_applies_to_new_sessions(api: Api) -> None:
    c = api.client(session_ttl=50)
    s = c.session("defaulted")
    s.append({"role": "user"})
    assert s.info().ttl_policy == 50


def test_expired_session_starts_fresh_when_written_again(api: Api) -> None:
    c = api.client()
    s = c.session("again", ttl=TTL)
    s.extend([{"role": "user", "content": "old"}] * 1 + [{"role": "user", "content": "old2"}])
    time.sleep(TTL + 0.3)
    s.append({"role": "user", "content": "new"})
    assert [m.content for m in s.messages()] == ["new"]
    assert s.info().message_count == 1
    assert c.sessions() == ["again"]
