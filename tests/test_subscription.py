"""The sync thread's pub/sub connection (rmem._subscription), on a real Redis and on fakeredis.

The socket reader parses the server's replies itself, so these tests hold it to what Redis
sends: confirmations, messages in order with their bytes intact (however the stream is cut
into reads), pongs, and a closed connection reported as one.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import fakeredis
import pytest
import redis

import rmem
from rmem._subscription import Pushed, Subscription, open_subscription

Opened = tuple[Subscription, Any]  # the subscription and a client that publishes to it


@pytest.fixture(params=["socket-resp2", "socket-resp3", "fakeredis"])
def opened(request: pytest.FixtureRequest, redis_url: str) -> Iterator[Opened]:
    # rmem's sync thread speaks RESP2; RESP3 (redis-py 8's default) pushes in another frame.
    if request.param.startswith("socket"):
        client: Any = redis.Redis.from_url(redis_url, protocol=int(request.param[-1]))
        subscription = open_subscription(client)
    else:
        client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
        subscription = open_subscription(client, fake=True)
    try:
        yield subscription, client
    finally:
        subscription.close()
        client.close()


def read_until(
    subscription: Subscription, done: Callable[[list[Pushed]], bool], timeout: float = 5.0
) -> list[Pushed]:
    pushed: list[Pushed] = []
    deadline = time.monotonic() + timeout
    while not done(pushed):
        assert time.monotonic() < deadline, f"only {pushed!r} arrived"
        pushed += subscription.read(0.05)
    return pushed


def subscribed(subscription: Subscription, *channels: str) -> None:
    subscription.subscribe(*channels)
    confirmed = read_until(subscription, lambda p: len(p) >= len(channels))
    assert [(kind, channel) for kind, channel, _ in confirmed] == [
        ("subscribe", c.encode()) for c in channels
    ]


def test_messages_arrive_in_order_with_their_bytes_intact(opened: Opened) -> None:
    subscription, client = opened
    channel = f"ch-{uuid.uuid4().hex}"
    subscribed(subscription, channel)
    payloads = [b"a\nb", b"\xff\x00 not utf-8", b"", "é".encode()] + [b"%d" % i for i in range(50)]
    pipe = client.pipeline(transaction=False)
    for payload in payloads:
        pipe.publish(channel, payload)
    pipe.execute()
    pushed = read_until(subscription, lambda p: len(p) >= len(payloads))
    assert pushed == [("message", channel.encode(), payload) for payload in payloads]


def test_a_message_larger_than_one_read_arrives_whole(opened: Opened) -> None:
    subscription, client = opened
    channel = f"ch-{uuid.uuid4().hex}"
    subscribed(subscription, channel)
    big = bytes(range(256)) * 2000  # 512 KB: many reads of the 64 KB buffer
    client.publish(channel, big)
    client.publish(channel, b"after")
    pushed = read_until(subscription, lambda p: len(p) >= 2)
    assert pushed == [("message", channel.encode(), big), ("message", channel.encode(), b"after")]


def test_a_ping_is_answered_with_a_pong(opened: Opened) -> None:
    subscription, _ = opened
    subscribed(subscription, f"ch-{uuid.uuid4().hex}")
    subscription.ping()
    assert [kind for kind, _, _ in read_until(subscription, bool)] == ["pong"]


def test_a_read_with_nothing_pushed_waits_its_timeout_and_returns_nothing(opened: Opened) -> None:
    subscription, _ = opened
    subscribed(subscription, f"ch-{uuid.uuid4().hex}")
    started = time.monotonic()
    assert subscription.read(0.2) == []
    assert time.monotonic() - started >= 0.15


def test_the_connection_is_made_with_the_clients_settings(redis_url: str, raw: Any) -> None:
    name = f"rmem-sub-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/3", client_name=name)
    subscription = open_subscription(client)
    try:
        subscribed(subscription, f"ch-{uuid.uuid4().hex}")
        (entry,) = [c for c in raw.client_list(_type="pubsub") if c["name"] == name]
        assert entry["db"] == "3"
    finally:
        subscription.close()
        client.close()


def test_a_connection_the_server_closes_raises_connection_error(redis_url: str, raw: Any) -> None:
    name = f"rmem-sub-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url, client_name=name)
    subscription = open_subscription(client)
    try:
        subscribed(subscription, f"ch-{uuid.uuid4().hex}")
        (entry,) = [c for c in raw.client_list(_type="pubsub") if c["name"] == name]
        raw.client_kill_filter(_id=entry["id"])
        with pytest.raises(redis.ConnectionError):
            read_until(subscription, lambda p: False)
    finally:
        subscription.close()
        client.close()


def test_a_pong_that_arrives_while_a_subscription_is_confirmed_counts(
    opened: Opened, redis_url: str
) -> None:
    # The sync thread sends a heartbeat PING and may subscribe to a new namespace before its
    # pong is read: the pong read while waiting for the confirmation must still count, or the
    # heartbeat takes the connection for dead and reconnects for nothing.
    subscription, _ = opened
    with rmem.Client.from_url(redis_url, namespace=f"sub-{uuid.uuid4().hex[:8]}") as c:
        channel = f"rmem-test-pong-{uuid.uuid4().hex}"
        subscription.ping()
        subscription.subscribe(channel)
        assert c._sync._confirm(subscription, {channel}) is True
        subscription.subscribe(channel + "-2")
        assert c._sync._confirm(subscription, {channel + "-2"}) is False
